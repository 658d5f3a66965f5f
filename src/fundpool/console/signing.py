"""The browser's signing key, from the console's Python side: the script that holds it
(static/signing.js, served by the console) and the calls into it.

The key pair is made, kept (IndexedDB, per signed-in username) and used in the browser; this
module only asks the browser to do so and reads what it answers: the key's id, name and raw
public key (base64), or a signature (base64) of a digest. The private key never reaches the
server, except that nothing stops its owner from exporting it to a file of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nicegui import app, ui

from fundpool.console.context import CONSOLE_PATH

SCRIPT = Path(__file__).with_name("static") / "signing.js"
SCRIPT_PATH = "/_fundpool/signing.js"  # under the console's mount path
CALL_TIMEOUT_S = 15.0  # a key made or a digest signed is milliseconds; a busy browser is slower
_served = False


def serve() -> None:
    """Serve the script (once per process, when the pages are registered)."""
    global _served
    if not _served:
        app.add_static_file(local_file=SCRIPT, url_path=SCRIPT_PATH, max_cache_age=60)
        _served = True


def load() -> None:
    """Put the script in this page's head (the pages that sign or manage keys)."""
    ui.add_head_html(f'<script src="{CONSOLE_PATH}{SCRIPT_PATH}"></script>')


@dataclass(frozen=True, slots=True)
class BrowserKey:
    """The key this browser holds for a user (its private half stays in the browser)."""

    key_id: str
    name: str
    public_key: str  # base64 of the 32 raw bytes
    created_at: str


@dataclass(frozen=True, slots=True)
class Failure:
    """What the browser could not do: `unsupported` (no WebCrypto Ed25519), `no_key`,
    `not_pem`, `not_pkcs8`, `not_ed25519`, `storage`, `sign_failed`, `no_answer` …"""

    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Signature:
    key_id: str
    signature: str  # base64 of 64 bytes


async def _call(function: str, *args: object) -> dict[str, Any]:
    code = f"window.fundpoolSigning.{function}({', '.join(json.dumps(a) for a in args)})"
    try:
        answer = await ui.run_javascript(
            f"(window.fundpoolSigning ? {code} : Promise.resolve({{error: 'not_loaded'}}))",
            timeout=CALL_TIMEOUT_S)
    except TimeoutError:
        return {"error": "no_answer"}
    return answer if isinstance(answer, dict) else {"error": "no_answer"}


def _key(answer: dict[str, Any]) -> BrowserKey | Failure | None:
    if "error" in answer:
        return Failure(str(answer["error"]), str(answer.get("detail") or ""))
    key = answer.get("key")
    if not isinstance(key, dict):
        return None
    return BrowserKey(str(key["keyId"]), str(key.get("name") or ""), str(key["publicKey"]),
                      str(key.get("createdAt") or ""))


async def browser_key(username: str) -> BrowserKey | Failure | None:
    """The key this browser holds for `username`; None: none."""
    return _key(await _call("info", username))


async def create_key(username: str, name: str) -> BrowserKey | Failure:
    """A new key pair for `username`, kept in this browser (it replaces one kept before)."""
    made = _key(await _call("create", username, name))
    return made if made is not None else Failure("storage")


async def sign(username: str, digest_hex: str) -> Signature | Failure:
    """`digest_hex` (the API's 32 bytes) signed with the browser's key of `username`."""
    answer = await _call("sign", username, digest_hex)
    if "error" in answer:
        return Failure(str(answer["error"]), str(answer.get("detail") or ""))
    return Signature(str(answer["keyId"]), str(answer["signature"]))


async def export_key(username: str) -> str | Failure:
    """Download the key as a PKCS#8 PEM file in the browser; its file name."""
    answer = await _call("exportPem", username)
    if "error" in answer:
        return Failure(str(answer["error"]), str(answer.get("detail") or ""))
    return str(answer.get("filename") or "")


async def forget_key(username: str) -> Failure | None:
    answer = await _call("forget", username)
    return Failure(str(answer["error"])) if "error" in answer else None
