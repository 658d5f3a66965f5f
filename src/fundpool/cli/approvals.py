"""`fundpool approve` and `fundpool approvals ...`: signed approvals from the command line, on
a local store or on a server (`--url`, with an API key or a session token in `--api-key`).

    fundpool approvals keygen --out ~/.fundpool/approver.pem     # a new Ed25519 key file
    fundpool approvals totp                                      # begin TOTP enrolment
    fundpool approvals register-key --key ~/.fundpool/approver.pem --totp 123456
    fundpool approvals list                                      # the inbox
    fundpool approvals show <payment>                            # the document and digest
    fundpool approve <payment> --key ~/.fundpool/approver.pem [--totp 123456]
    fundpool approvals reject <payment> --reason "wrong payee"
    fundpool approvals cancel <payment> --reason "..."           # in the delay window
    fundpool approvals rules-check|rules-draft FILE; rules-versions; rules-diff V
    fundpool approvals rules-vote V --totp 123456

The private key never leaves the file: the command signs the digest the server (or the local
store) gives, and sends the signature. The key file is PKCS#8 PEM, the form the console exports.
On a local store the actor is the operating-system user (`cli:<user>`); its keys and TOTP are
its own.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fundpool import compose
from fundpool.cli.actor import local_actor
from fundpool.cli.options import ApiKeyOption, DataDirOption, DbUrlOption, JsonOption, UrlOption
from fundpool.cli.output import emit, log_to_stderr, report_error
from fundpool.cli.pool_options import ConfigOption, PoolOption, config_path
from fundpool.cli.session import session
from fundpool.core.errors import FundpoolError
from fundpool.pool.config import load_config
from fundpool.runtime import SystemClock

if TYPE_CHECKING:
    from fundpool.approvals.service import ApprovalService
    from fundpool.client import Client

app = typer.Typer(name="approvals", no_args_is_help=True,
                  help="Signed approvals: keys, TOTP, the inbox, rules.")

KeyFileOption = Annotated[Path, typer.Option(
    "--key", exists=True, dir_okay=False, readable=True,
    help="Your Ed25519 private key (PKCS#8 PEM, as `keygen` writes and the console exports).")]
TotpOption = Annotated[str | None, typer.Option("--totp", help="A current TOTP code.")]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why (kept with it).")]
FileArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


@app.callback()
def main() -> None:
    """Signed approvals: keys, TOTP, the inbox, rules."""
    log_to_stderr()


class Target:
    """Where the command acts: a local store's approvals service, or a server's client."""

    def __init__(self, service: ApprovalService | None, client: Client | None,
                 as_json: bool) -> None:
        self.service = service
        self.client = client
        self.json = as_json
        self.actor = local_actor()

    def emit(self, doc: Any, human: Any = None) -> None:
        emit(doc, human, self.json)


@contextmanager
def target(url: str | None, api_key: str | None, data_dir: Path | None, db_url: str | None,
           config: Path | None, as_json: bool) -> Iterator[Target]:
    if url is not None:
        from fundpool.client import Client

        if data_dir is not None or db_url is not None:
            raise typer.BadParameter("--url acts on a server: leave out --data-dir and "
                                     "--db-url", param_hint="'--url'")
        try:
            with Client(url, api_key, timeout=30.0) as client:
                yield Target(None, client, as_json)
        except FundpoolError as error:
            report_error(error, as_json)
            raise typer.Exit(2) from None
        return
    with session(data_dir, db_url, as_json) as s:
        declared = load_config(config_path(config))
        service = compose.approval_service(
            s.store, declared,
            lambda pool_id: compose.payment_service(s.store, declared, declared.pool(pool_id)),
            clock=SystemClock())
        yield Target(service, None, as_json)


def _local_view(t: Target, payment_id: str) -> dict[str, Any]:
    from fundpool.approvals.service import ApprovalView

    assert t.service is not None
    view: ApprovalView = t.service.view(payment_id, t.actor)
    return {"payment": view.payment.id, "state": view.state, "round": view.round,
            "digest": view.digest.hex(), "document": dict(view.document),
            "stage": view.stage,
            "stages": [{**v.stage.to_doc(), "eligible": v.eligible, "done": v.done,
                        "signed": [s.approver.name for s in v.signed]} for v in view.stages],
            "totp_required": bool(view.plan and view.plan.totp_required),
            "delay": None if view.delay is None else {
                "release_at_us": view.delay.release_at_us, "state": view.delay.state.value}}


def _view(t: Target, payment_id: str) -> dict[str, Any]:
    if t.client is not None:
        return t.client.approval(payment_id).model_dump(mode="json")
    return _local_view(t, payment_id)


def _key(path: Path) -> Any:
    from fundpool.approvals.signing import load_private_key

    return load_private_key(path.read_bytes())


def _lines(doc: dict[str, Any]) -> list[str]:
    lines = [f"payment {doc.get('payment') if isinstance(doc.get('payment'), str) else ''}"
             f"  state {doc.get('state')}  round {doc.get('round')}"]
    for index, stage in enumerate(doc.get("stages") or []):
        signed = stage.get("signed") or []
        names = [s if isinstance(s, str) else s.get("name") for s in signed]
        lines.append(f"  stage {index}: {stage.get('name')} — {len(names)} of "
                     f"{stage.get('approvers')} ({', '.join(map(str, names)) or 'none yet'})")
    lines.append(f"  digest {doc.get('digest')}")
    return lines


# --- approving -------------------------------------------------------------------------------


def approve(
    payment_id: Annotated[str, typer.Argument(help="The payment waiting for approval.")],
    key: KeyFileOption,
    totp: TotpOption = None,
    note: Annotated[str | None, typer.Option("--note")] = None,
    config: ConfigOption = None,
    pool: PoolOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a payment waiting for approval with your Ed25519 key file.

    The digest of the payment as it is now is read, signed here, and the signature sent; the
    last signature approves it. The private key never leaves the file."""
    from fundpool.approvals.signing import key_id_of_private, sign

    private = _key(key)
    key_id = key_id_of_private(private)
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        doc = _view(t, payment_id)
        digest = bytes.fromhex(str(doc["digest"]))
        signature = sign(private, digest)
        if t.client is not None:
            done = t.client.sign_approval(payment_id, key_id, signature, digest.hex(),
                                          totp=totp, note=note).model_dump(mode="json")
        else:
            assert t.service is not None
            t.service.sign(payment_id, t.actor, key_id=key_id, signature=signature,
                           digest=digest.hex(), code=totp, note=note)
            done = _local_view(t, payment_id)
        t.emit(done, _lines(done))


@app.command("show")
def show(payment_id: Annotated[str, typer.Argument()], config: ConfigOption = None,
         data_dir: DataDirOption = None, db_url: DbUrlOption = None, url: UrlOption = None,
         api_key: ApiKeyOption = None, as_json: JsonOption = False) -> None:
    """A payment's approval: the document signed, its digest, the stages and who signed."""
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        doc = _view(t, payment_id)
        t.emit(doc, _lines(doc))


@app.command("list")
def inbox(pool: PoolOption = None, config: ConfigOption = None, data_dir: DataDirOption = None,
          db_url: DbUrlOption = None, url: UrlOption = None, api_key: ApiKeyOption = None,
          as_json: JsonOption = False) -> None:
    """The payments waiting for approval, oldest first."""
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        if t.client is not None:
            items = [a.model_dump(mode="json") for a in t.client.approvals(pool).items]
        else:
            assert t.service is not None
            items = [_local_view(t, v.payment.id) for v in t.service.inbox(pool)]
        t.emit({"items": items}, [line for doc in items for line in _lines(doc)]
               or ["nothing waits for approval"])


@app.command("reject")
def reject(payment_id: Annotated[str, typer.Argument()], reason: ReasonOption = None,
           config: ConfigOption = None, data_dir: DataDirOption = None,
           db_url: DbUrlOption = None, url: UrlOption = None, api_key: ApiKeyOption = None,
           as_json: JsonOption = False) -> None:
    """An approver's no: the payment is rejected (say why)."""
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        if t.client is not None:
            t.client.reject_approval(payment_id, reason or "")
        else:
            assert t.service is not None
            t.service.reject(payment_id, t.actor, reason)
        doc = _view(t, payment_id)
        t.emit(doc, _lines(doc))


@app.command("cancel")
def cancel(payment_id: Annotated[str, typer.Argument()], reason: ReasonOption = None,
           config: ConfigOption = None, data_dir: DataDirOption = None,
           db_url: DbUrlOption = None, url: UrlOption = None, api_key: ApiKeyOption = None,
           as_json: JsonOption = False) -> None:
    """Cancel an approved payment during its delay window (a role the rule names)."""
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        if t.client is not None:
            t.client.cancel_approval(payment_id, reason)
        else:
            assert t.service is not None
            t.service.cancel(payment_id, t.actor, reason)
        doc = _view(t, payment_id)
        t.emit(doc, _lines(doc))


# --- keys and TOTP ---------------------------------------------------------------------------


@app.command("keygen")
def keygen(out: Annotated[Path, typer.Option("--out", help="Where to write the key file.")],
           as_json: JsonOption = False) -> None:
    """A new Ed25519 key file (mode 0600) and its public key, to register."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fundpool.approvals.signing import key_id_of_private, private_pem, raw_public

    if out.exists():
        raise typer.BadParameter(f"{out} exists: not overwritten", param_hint="'--out'")
    key = Ed25519PrivateKey.generate()
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(private_pem(key))
    public = base64.b64encode(raw_public(key)).decode("ascii")
    emit({"key_file": str(out), "key_id": key_id_of_private(key), "public_key": public},
         [f"wrote {out}", f"public key {public}", f"key id {key_id_of_private(key)}"], as_json)


@app.command("totp")
def begin_totp(config: ConfigOption = None, data_dir: DataDirOption = None,
               db_url: DbUrlOption = None, url: UrlOption = None,
               api_key: ApiKeyOption = None, as_json: JsonOption = False) -> None:
    """Begin TOTP enrolment: the secret and its otpauth URI (shown this once); the first
    code, with `register-key`, confirms it."""
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        if t.client is not None:
            doc = t.client.begin_totp().model_dump(mode="json")
        else:
            assert t.service is not None
            doc = t.service.begin_totp(t.actor)
        t.emit(doc, [f"secret {doc.get('secret')}", f"uri {doc.get('uri')}"])


@app.command("register-key")
def register_key(key: KeyFileOption, totp: TotpOption = None,
                 name: Annotated[str, typer.Option("--name")] = "cli",
                 config: ConfigOption = None, data_dir: DataDirOption = None,
                 db_url: DbUrlOption = None, url: UrlOption = None,
                 api_key: ApiKeyOption = None, as_json: JsonOption = False) -> None:
    """Register the public key of a key file, confirmed by a TOTP code."""
    from fundpool.approvals.signing import raw_public

    public = base64.b64encode(raw_public(_key(key))).decode("ascii")
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        if t.client is not None:
            doc = t.client.register_signing_key(public, name, totp or "").model_dump(
                mode="json")
        else:
            assert t.service is not None
            found = t.service.register_key(t.actor, public, name, totp)
            doc = {"id": found.id, "name": found.name, "public_key": public}
        t.emit(doc, [f"registered key {doc.get('id')} ({doc.get('name')})"])


@app.command("keys")
def keys(config: ConfigOption = None, data_dir: DataDirOption = None,
         db_url: DbUrlOption = None, url: UrlOption = None, api_key: ApiKeyOption = None,
         as_json: JsonOption = False) -> None:
    """Your signing keys."""
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        if t.client is not None:
            found = [k.model_dump(mode="json") for k in t.client.my_signing_keys()]
        else:
            assert t.service is not None
            found = [{"id": k.id, "name": k.name, "revoked_at_us": k.revoked_at_us}
                     for k in t.service.signing_keys(t.actor)]
        t.emit({"data": found}, [f"{k['id']}  {k['name']}"
                                 f"{'  (revoked)' if k.get('revoked_at_us') else ''}"
                                 for k in found] or ["no keys"])


# --- rules -----------------------------------------------------------------------------------


@app.command("rules-check")
def rules_check(file: FileArgument, config: ConfigOption = None,
                data_dir: DataDirOption = None, db_url: DbUrlOption = None,
                as_json: JsonOption = False) -> None:
    """Check a rules file (exit 2 with the line at fault) and show its diff."""
    with target(None, None, data_dir, db_url, config, as_json) as t:
        assert t.service is not None
        doc = t.service.validate(file.read_text(encoding="utf-8"))
        t.emit(doc, ["valid", doc["diff"]])


@app.command("rules-draft")
def rules_draft(file: FileArgument, note: Annotated[str | None, typer.Option("--note")] = None,
                config: ConfigOption = None, data_dir: DataDirOption = None,
                db_url: DbUrlOption = None, url: UrlOption = None,
                api_key: ApiKeyOption = None, as_json: JsonOption = False) -> None:
    """Save a rules file as the next version, a draft."""
    text = file.read_text(encoding="utf-8")
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        if t.client is not None:
            doc = t.client.draft_approval_rules(text, note).model_dump(mode="json")
        else:
            assert t.service is not None
            found = t.service.draft(text, t.actor, note)
            doc = {"version": found.version, "state": found.state.value}
        t.emit(doc, [f"version {doc['version']}: {doc['state']}"])


@app.command("rules-versions")
def rules_versions(config: ConfigOption = None, data_dir: DataDirOption = None,
                   db_url: DbUrlOption = None, url: UrlOption = None,
                   api_key: ApiKeyOption = None, as_json: JsonOption = False) -> None:
    """Every version, newest first."""
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        if t.client is not None:
            found = [v.model_dump(mode="json") for v in t.client.approval_rules()]
        else:
            assert t.service is not None
            found = [{"version": v.version, "state": v.state.value, "author": v.author.name,
                      "votes": [x.voter.name for x in t.service.store.votes(v.version)]}
                     for v in t.service.store.versions()]
        t.emit({"data": found}, [f"v{v['version']}  {v['state']}" for v in found]
               or ["no versions"])


@app.command("rules-diff")
def rules_diff(version: Annotated[int, typer.Argument()],
               against: Annotated[int | None, typer.Option("--against")] = None,
               config: ConfigOption = None, data_dir: DataDirOption = None,
               db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """A version's diff against the active one (or `--against`)."""
    with target(None, None, data_dir, db_url, config, as_json) as t:
        assert t.service is not None
        text = t.service.diff(version, against)
        t.emit({"diff": text}, [text or "no difference"])


@app.command("rules-vote")
def rules_vote(version: Annotated[int, typer.Argument()], totp: TotpOption = None,
               config: ConfigOption = None, data_dir: DataDirOption = None,
               db_url: DbUrlOption = None, url: UrlOption = None,
               api_key: ApiKeyOption = None, as_json: JsonOption = False) -> None:
    """Vote to activate a draft (never your own), with a TOTP code."""
    with target(url, api_key, data_dir, db_url, config, as_json) as t:
        if t.client is not None:
            doc = t.client.approve_approval_rules(version, totp or "").model_dump(mode="json")
        else:
            assert t.service is not None
            found = t.service.vote(version, t.actor, totp)
            doc = {"version": found.version, "state": found.state.value}
        t.emit(doc, [f"version {doc['version']}: {doc['state']}"])
