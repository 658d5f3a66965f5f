"""`fundpool audit ...`: the audit log as a transparency log, on a local store (docs/audit.md).

    fundpool audit sync                            # collect every source's new records
    fundpool audit checkpoint --publish DIR        # sign (size, root) when the log grew
    fundpool audit status
    fundpool audit verify [--published DIR]        # exit 1 with every finding named
    fundpool audit proof 42                        # against the latest checkpoint
    fundpool audit consistency 100 250
    fundpool audit entries --actor ada --action payment.approve --limit 20
    fundpool audit export --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z --out x.jsonl
    fundpool audit public-key > audit-log.pub.pem

The signing key is `audit-log.key` beside the SQLite file (or $FUNDPOOL_AUDIT_KEY, `--key`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fundpool import compose
from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption, parse_instant
from fundpool.cli.output import log_to_stderr
from fundpool.cli.session import Session, session
from fundpool.ledger.docs import iso

if TYPE_CHECKING:
    from fundpool.audit.service import AuditService

app = typer.Typer(name="audit", no_args_is_help=True,
                  help="The audit log: sync, checkpoints, proofs, verification, export.")

KeyOption = Annotated[Path | None, typer.Option(
    "--key", help="The log's signing key (PEM PKCS8; default: $FUNDPOOL_AUDIT_KEY, then "
    "audit-log.key beside the SQLite store). Made on first use.", show_default=False)]
PublishOption = Annotated[Path | None, typer.Option(
    "--publish", help="Write each checkpoint to this directory (default: "
    "$FUNDPOOL_AUDIT_PUBLISH_DIR).", show_default=False)]


@app.callback()
def main() -> None:
    """The audit log: sync, checkpoints, proofs, verification, export."""
    log_to_stderr()


def _audit(s: Session, key: Path | None, data_dir: Path | None,
           publish: Path | None = None) -> AuditService:
    return compose.audit_service(s.store, key=key, data_dir=data_dir, publish_dir=publish)


def _position(audit: AuditService, text: str | None, default: int) -> int:
    """A seq, or the first seq after an ISO time."""
    if text is None:
        return default
    if text.strip().lstrip("-").isdigit():
        return int(text)
    return audit.store.seq_at(parse_instant(text) - 1)


@app.command("sync")
def sync(key: KeyOption = None, data_dir: DataDirOption = None, db_url: DbUrlOption = None,
         as_json: JsonOption = False) -> None:
    """Append what every source recorded since the last sync."""
    with session(data_dir, db_url, as_json) as s:
        doc = _audit(s, key, data_dir).sync()
        s.emit(doc, f"appended {sum(doc['appended'].values())} "
               f"({', '.join(f'{k} {v}' for k, v in doc['appended'].items())}); "
               f"size {doc['size']}")


@app.command("checkpoint")
def checkpoint(publish: PublishOption = None, force: Annotated[bool, typer.Option(
        "--force", help="Sign one even if the log did not grow.")] = False,
        key: KeyOption = None, data_dir: DataDirOption = None, db_url: DbUrlOption = None,
        as_json: JsonOption = False) -> None:
    """Sync, then sign a checkpoint of the log if it grew (and publish it)."""
    with session(data_dir, db_url, as_json) as s:
        audit = _audit(s, key, data_dir, publish)
        audit.sync()
        made, new = audit.checkpoint(force=force)
        s.emit({**made.to_dict(), "new": new},
               f"{'signed' if new else 'unchanged'}: size {made.size}, root {made.root.hex()}, "
               f"key {made.key_id}")


@app.command("status")
def status(key: KeyOption = None, data_dir: DataDirOption = None, db_url: DbUrlOption = None,
           as_json: JsonOption = False) -> None:
    """The log's size, its latest checkpoint, how far behind each source it is."""
    with session(data_dir, db_url, as_json) as s:
        doc = _audit(s, key, data_dir).status()
        table = Table("source", "cursor", "head", "behind")
        for source, lag in doc["sources"].items():
            if lag is None:
                table.add_row(source, "-", "-", "(no table)")
            else:
                table.add_row(source, str(lag["cursor"]), str(lag["head"]), str(lag["behind"]))
        latest = doc["latest_checkpoint"]
        head = (f"size {doc['size']}; latest checkpoint "
                + ("none" if latest is None else f"{latest['size']} at {iso(latest['at_us'])}"))
        s.emit(doc, [head, table])


@app.command("verify")
def verify(published: Annotated[Path | None, typer.Option(
        "--published", help="Also compare the checkpoints published in this directory.")]
        = None, key: KeyOption = None, data_dir: DataDirOption = None,
        db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Recompute every leaf, node and checked root; check the checkpoints' signatures and
    their consistency. Exit 1 with each finding named."""
    with session(data_dir, db_url, as_json) as s:
        report = _audit(s, key, data_dir).verify(published)
        lines = [f"{f.code}: {f.detail}" for f in report.findings]
        verdict = (f"ok: {report.size} entries, {report.checkpoints} checkpoints"
                   if report.ok else f"FAILED: {sum(report.counts.values())} finding(s)")
        s.emit(report.to_dict(), [verdict, *lines])
    if not report.ok:
        raise typer.Exit(1)


@app.command("proof")
def proof(seq: int, key: KeyOption = None, data_dir: DataDirOption = None,
          db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """An entry and its inclusion proof against the latest checkpoint."""
    with session(data_dir, db_url, as_json) as s:
        doc = _audit(s, key, data_dir).inclusion(seq)
        s.emit(doc, [f"seq {seq} in a tree of size {doc['tree_size']}, root "
                     f"{doc['checkpoint']['root']}", f"leaf {doc['entry']['leaf_hash']}",
                     *doc["proof"]])


@app.command("consistency")
def consistency(first: int, second: int, key: KeyOption = None, data_dir: DataDirOption = None,
                db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """The consistency proof between the trees of two sizes."""
    with session(data_dir, db_url, as_json) as s:
        doc = _audit(s, key, data_dir).consistency(first, second)
        s.emit(doc, [f"{first} -> {second}: {doc['first_root']} -> {doc['second_root']}",
                     *doc["proof"]])


@app.command("entries")
def entries(actor: Annotated[str | None, typer.Option(help="An actor's id, name or kind:id.")]
            = None,
            object_: Annotated[str | None, typer.Option(
                "--object", help="KIND or KIND:ID, e.g. payment:0193…")] = None,
            action: Annotated[str | None, typer.Option()] = None,
            from_: Annotated[str | None, typer.Option("--from", help="ISO time")] = None,
            to: Annotated[str | None, typer.Option("--to", help="ISO time")] = None,
            limit: Annotated[int, typer.Option(min=1, max=1_000)] = 50,
            key: KeyOption = None, data_dir: DataDirOption = None, db_url: DbUrlOption = None,
            as_json: JsonOption = False) -> None:
    """Search the log's entries, oldest first."""
    from fundpool.audit.ports import Search

    kind, _, object_id = (object_ or "").partition(":")
    search = Search(actor=actor, object_kind=kind or None, object_id=object_id or None,
                    action=action, from_us=None if from_ is None else parse_instant(from_),
                    to_us=None if to is None else parse_instant(to), limit=limit)
    with session(data_dir, db_url, as_json) as s:
        found = _audit(s, key, data_dir).entries(search)
        table = Table("seq", "at", "action", "object", "actor")
        for entry in found:
            record = entry.record()
            who = record["actor"]
            table.add_row(str(entry.seq), iso(entry.at_us), record["action"],
                          f"{record['object']['kind']}:{record['object']['id']}",
                          "-" if who is None else f"{who['name']} ({who['kind']}:{who['id']})")
        s.emit({"data": [e.to_dict() for e in found]}, table)


@app.command("export")
def export(from_: Annotated[str | None, typer.Option(
        "--from", help="A seq, or an ISO time (the first entry after it).")] = None,
        to: Annotated[str | None, typer.Option(
            "--to", help="A seq (excluded), or an ISO time (entries up to it).")] = None,
        out: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")]
        = None, key: KeyOption = None, data_dir: DataDirOption = None,
        db_url: DbUrlOption = None) -> None:
    """The entries of a range as JSON lines, each with its inclusion proof, the checkpoints
    and their consistency proofs, and a trailer (check with tools/verify_audit_export.py)."""
    with session(data_dir, db_url, False) as s:
        audit = _audit(s, key, data_dir)
        first = _position(audit, from_, 0)
        end = (audit.store.size() if to is None else int(to)
               if to.strip().isdigit() else audit.store.seq_at(parse_instant(to)))
        lines = audit.export(first, end)
        if out is None:
            for line in lines:
                sys.stdout.write(line)
            return
        partial = out.with_name(out.name + ".partial")
        with partial.open("w", encoding="utf-8") as target:
            for line in lines:
                target.write(line)
        partial.replace(out)
        typer.echo(f"exported seq {first} to {end - 1} to {out}", err=True)


@app.command("public-key")
def public_key(key: KeyOption = None, data_dir: DataDirOption = None,
               db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """The log's public key (PEM), and its id."""
    with session(data_dir, db_url, as_json) as s:
        doc = _audit(s, key, data_dir).public_key()
        s.emit(doc, doc["public_key_pem"].rstrip("\n"))
