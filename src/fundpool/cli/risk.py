"""`fundpool risk ...`: policies, the review queue, sanctions lists and the party registry, on
a local store (docs/risk.md).

    fundpool risk check policy.yaml                   # exit 2 with the line at fault
    fundpool risk draft policy.yaml --note "burst rule"
    fundpool risk backtest policy.yaml --days 7
    fundpool risk policies | policy 3 | diff 3 | activate 3 | rollback
    fundpool risk load-list ofac sdn.csv              # refused whole if malformed
    fundpool risk lists
    fundpool risk screen "Vladimir Poutine"
    fundpool risk cases                               # the review queue, most urgent first
    fundpool risk case <id>
    fundpool risk claim|comment|escalate|release|reject <id> --note "..."
    fundpool risk party "Ada Ltd" --kyc verified --country GB
    fundpool risk rings --minutes 60                  # payees sharing accounts

Actions are recorded as the operating-system user's (the CLI's actor). A policy version is
never activated by its author, whatever its role: the local CLI (the operating-system user)
activates a version someone else drafted (docs/approvals.md, separation of duties).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fundpool import compose
from fundpool.cli.actor import local_actor
from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption
from fundpool.cli.output import log_to_stderr
from fundpool.cli.pool_options import ConfigOption, PoolOption, config_path
from fundpool.cli.session import Session, session
from fundpool.ledger.docs import iso
from fundpool.pool.config import load_config
from fundpool.runtime import SystemClock

if TYPE_CHECKING:
    from fundpool.risk.service import RiskService

app = typer.Typer(name="risk", no_args_is_help=True,
                  help="Risk control: policies, the review queue, sanctions lists, parties.")


@app.callback()
def main() -> None:
    """Risk control: policies, the review queue, sanctions lists, parties."""
    log_to_stderr()  # --json stays one document on stdout

FileArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
NoteOption = Annotated[str | None, typer.Option("--note", help="Why (kept with the action).")]


def _service(s: Session, config: Path | None, pool: str | None) -> RiskService:
    declared = load_config(config_path(config))
    return compose.risk_service(
        s.store, declared,
        lambda pool_id: compose.payment_service(s.store, declared, declared.pool(pool_id)),
        clock=SystemClock())


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --- policies --------------------------------------------------------------------------------


@app.command("check")
def check(file: FileArgument, config: ConfigOption = None, data_dir: DataDirOption = None,
          db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Check a policy file: its summary and its diff against the active policy."""
    with session(data_dir, db_url, as_json) as s:
        doc = _service(s, config, None).validate(_read(file))
        s.emit(doc, ["valid", *doc["diff"]])


@app.command("draft")
def draft(file: FileArgument, note: NoteOption = None, config: ConfigOption = None,
          data_dir: DataDirOption = None, db_url: DbUrlOption = None,
          as_json: JsonOption = False) -> None:
    """Save a checked policy file as the next version, a draft."""
    with session(data_dir, db_url, as_json) as s:
        version = _service(s, config, None).draft(_read(file), local_actor(), note)
        s.emit(version.to_dict(text=False), f"draft version {version.version}")


@app.command("policies")
def list_policies(config: ConfigOption = None, data_dir: DataDirOption = None,
                  db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Every policy version, newest first."""
    with session(data_dir, db_url, as_json) as s:
        versions = _service(s, config, None).policies()
        table = Table("version", "state", "created", "by", "activated", "note")
        for v in versions:
            table.add_row(str(v.version), v.state.value, iso(v.created_at_us),
                          v.created_by.name,
                          "" if v.activated_at_us is None else iso(v.activated_at_us),
                          v.note or "")
        s.emit({"data": [v.to_dict(text=False) for v in versions]}, table)


@app.command("policy")
def show(version: int, config: ConfigOption = None, data_dir: DataDirOption = None,
         db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """One version's text."""
    with session(data_dir, db_url, as_json) as s:
        found = _service(s, config, None).policy(version)
        s.emit(found.to_dict(), found.text)


@app.command("diff")
def diff(version: int, against: Annotated[int | None, typer.Option("--against")] = None,
         config: ConfigOption = None, data_dir: DataDirOption = None,
         db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """A version against another (default: the active one)."""
    with session(data_dir, db_url, as_json) as s:
        lines = _service(s, config, None).diff(version, against)
        s.emit({"diff": lines}, "\n".join(lines) or "no difference")


@app.command("activate")
def activate(version: int, config: ConfigOption = None, data_dir: DataDirOption = None,
             db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Activate a draft (the active one is retired)."""
    with session(data_dir, db_url, as_json) as s:
        found = _service(s, config, None).activate(version, local_actor())
        s.emit(found.to_dict(text=False), f"version {found.version} is active")


@app.command("rollback")
def rollback(config: ConfigOption = None, data_dir: DataDirOption = None,
             db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Activate again the version that was active before the current one."""
    with session(data_dir, db_url, as_json) as s:
        found = _service(s, config, None).rollback(local_actor())
        s.emit(found.to_dict(text=False), f"version {found.version} is active again")


@app.command("backtest")
def backtest(file: FileArgument, days: Annotated[int, typer.Option("--days")] = 7,
             config: ConfigOption = None, pool: PoolOption = None,
             data_dir: DataDirOption = None, db_url: DbUrlOption = None,
             as_json: JsonOption = False) -> None:
    """Replay the last days of payments through the active policy and this file."""
    with session(data_dir, db_url, as_json) as s:
        result = _service(s, config, pool).backtest(_read(file), days, pool).to_dict()
        table = Table("policy", "allow", "review", "hold", "block", "tp", "fp", "fn", "tn")
        for name in ("active", "draft"):
            outcomes = result["outcomes"][name]
            matrix = result["confusion"][name]
            table.add_row(name, *(str(outcomes.get(o, 0))
                                  for o in ("allow", "review", "hold", "block")),
                          *(str(matrix[m]) for m in ("tp", "fp", "fn", "tn")))
        s.emit(result, [table, f"{result['payments']} payments, {result['changed_count']} "
                               f"decisions would change, {result['labelled']} labelled"])


# --- lists and screening ---------------------------------------------------------------------


@app.command("load-list")
def load(name: str, file: FileArgument,
         fmt: Annotated[str | None, typer.Option("--format", help="ftm or sdn")] = None,
         config: ConfigOption = None, data_dir: DataDirOption = None,
         db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Load or replace a sanctions list, then screen every known counterparty again."""
    with session(data_dir, db_url, as_json) as s:
        done = _service(s, config, None).load_list(name, file.read_bytes(), local_actor(),
                                                   fmt)
        record = done.record
        s.emit(done.to_dict(),
               [f"{record.name}: {record.entries} entries ({record.format})",
                f"{done.rescreened} known names screened against it, "
                f"{len(done.new_hits)} new hit(s)",
                *(f"  {hit['name']}: {hit['hits'][0]['name']} ({hit['hits'][0]['score']})"
                  for hit in done.new_hits)])


@app.command("lists")
def show_lists(config: ConfigOption = None, data_dir: DataDirOption = None,
               db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """The lists loaded."""
    with session(data_dir, db_url, as_json) as s:
        records = _service(s, config, None).store.lists()
        table = Table("name", "format", "entries", "loaded", "by")
        for r in records:
            table.add_row(r.name, r.format, str(r.entries), iso(r.loaded_at_us),
                          r.loaded_by.name)
        s.emit({"data": [r.to_dict() for r in records]}, table)


@app.command("screen")
def screen(name: str, threshold: Annotated[int, typer.Option("--threshold")] = 85,
           config: ConfigOption = None, data_dir: DataDirOption = None,
           db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """A name against the loaded lists, each hit with why."""
    with session(data_dir, db_url, as_json) as s:
        hits = _service(s, config, None).screen(name, threshold)
        table = Table("score", "entry", "name", "why")
        for h in hits:
            table.add_row(str(h["score"]), h["entry_id"], h["name"], h["explanation"])
        s.emit({"hits": hits}, table if hits else "no hit")


@app.command("rings")
def rings(minutes: Annotated[int, typer.Option("--minutes")] = 30,
          min_payees: Annotated[int, typer.Option("--min-payees")] = 3,
          config: ConfigOption = None, pool: PoolOption = None,
          data_dir: DataDirOption = None, db_url: DbUrlOption = None,
          as_json: JsonOption = False) -> None:
    """Suspected fraud rings: payees linked by the accounts, names, devices and IPs their
    recent payouts share."""
    with session(data_dir, db_url, as_json) as s:
        found = _service(s, config, pool).rings(minutes, pool, min_payees)
        table = Table("ring", "payees", "shared", "payouts")
        for ring in found[:50]:
            table.add_row(ring.id, ", ".join(ring.payees[:8]) +
                          (" …" if len(ring.payees) > 8 else ""),
                          ", ".join(f"{a} {v} ({n})" for a, v, n in ring.shared[:4]),
                          str(ring.payouts))
        s.emit({"data": [r.to_dict() for r in found], "count": len(found)},
               table if found else "no ring")


# --- the review queue ------------------------------------------------------------------------


@app.command("cases")
def cases(state: Annotated[list[str] | None, typer.Option("--state")] = None,
          config: ConfigOption = None, data_dir: DataDirOption = None,
          db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """The review queue, the most urgent first (default: open, claimed, escalated)."""
    with session(data_dir, db_url, as_json) as s:
        found = _service(s, config, None).cases(
            states=state or ["open", "claimed", "escalated"])
        now = SystemClock().now_us()
        table = Table("case", "payment", "kind", "state", "due", "why")
        for c in found:
            table.add_row(c.id, c.payment_id, c.kind, c.state.value,
                          iso(c.due_at_us) + (" (breached)" if now > c.due_at_us else ""),
                          c.summary)
        s.emit({"data": [c.to_dict(now) for c in found]}, table)


def _case(action: str, case_id: str, note: str | None, config: Path | None,
          data_dir: Path | None, db_url: str | None, as_json: bool) -> None:
    with session(data_dir, db_url, as_json) as s:
        service = _service(s, config, None)
        actor = local_actor()
        if action != "show":
            calls: dict[str, Any] = {
                "claim": lambda: service.claim(case_id, actor),
                "comment": lambda: service.comment(case_id, actor, note),
                "escalate": lambda: service.escalate(case_id, actor, note),
                "release": lambda: service.release(case_id, actor, note),
                "reject": lambda: service.reject(case_id, actor, note),
            }
            calls[action]()
        case = service.case(case_id)
        notes = service.notes(case_id)
        table = Table("seq", "at", "by", "action", "note")
        for n in notes:
            table.add_row(str(n.seq), iso(n.at_us), n.actor.name, n.action, n.note or "")
        s.emit({**case.to_dict(), "notes": [n.to_dict() for n in notes]},
               [f"case {case.id}: {case.state.value} ({case.summary})", table])


@app.command("case")
def case_show(case_id: str, config: ConfigOption = None, data_dir: DataDirOption = None,
              db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """A case and its notes."""
    _case("show", case_id, None, config, data_dir, db_url, as_json)


@app.command("claim")
def case_claim(case_id: str, config: ConfigOption = None, data_dir: DataDirOption = None,
               db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Take a case."""
    _case("claim", case_id, None, config, data_dir, db_url, as_json)


@app.command("comment")
def case_comment(case_id: str, note: NoteOption = None, config: ConfigOption = None,
                 data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                 as_json: JsonOption = False) -> None:
    """Add a note."""
    _case("comment", case_id, note, config, data_dir, db_url, as_json)


@app.command("escalate")
def case_escalate(case_id: str, note: NoteOption = None, config: ConfigOption = None,
                  data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                  as_json: JsonOption = False) -> None:
    """Escalate, with a note."""
    _case("escalate", case_id, note, config, data_dir, db_url, as_json)


@app.command("release")
def case_release(case_id: str, note: NoteOption = None, config: ConfigOption = None,
                 data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                 as_json: JsonOption = False) -> None:
    """Release the payment (the engine routes it), with a note."""
    _case("release", case_id, note, config, data_dir, db_url, as_json)


@app.command("reject")
def case_reject(case_id: str, note: NoteOption = None, config: ConfigOption = None,
                data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                as_json: JsonOption = False) -> None:
    """Reject the payment, with a note."""
    _case("reject", case_id, note, config, data_dir, db_url, as_json)


@app.command("party")
def party_set(name: str,
              kyc: Annotated[str, typer.Option("--kyc", help="none, pending, rejected, "
                                                     "expired or verified")],
              country: Annotated[str | None, typer.Option("--country")] = None,
              config: ConfigOption = None, data_dir: DataDirOption = None,
              db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Record a counterparty's KYC/KYB state and country."""
    with session(data_dir, db_url, as_json) as s:
        party = _service(s, config, None).set_party(name, kyc, country, local_actor())
        s.emit(party.to_dict(), f"{party.name}: kyc {party.kyc}, country {party.country}")
