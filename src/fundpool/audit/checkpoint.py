"""Signed checkpoints: the log's size and root at an instant, signed with the log's Ed25519 key.

The signed bytes are this text, UTF-8, each line ending with a line feed:

    fundpool-audit-checkpoint v1
    <size, decimal>
    <root, 64 lower-case hex digits>
    <at_us, decimal microseconds since the epoch, UTC>
    <key id, 16 hex digits>

The key id is the first 16 hex digits of SHA-256 of the raw 32-byte public key. The private
key is a PEM PKCS8 file (`<data dir>/audit-log.key` by default, mode 0600, created on first
use; $FUNDPOOL_AUDIT_KEY names another). A published checkpoint is a JSON file
(`checkpoint-<size>.json`) holding the same fields and the signature in hex.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from fundpool.audit.merkle import HASH_BYTES
from fundpool.core.errors import FundpoolError

HEADER = "fundpool-audit-checkpoint v1"
KEY_FILE = "audit-log.key"
KEY_ENV = "FUNDPOOL_AUDIT_KEY"
PUBLISH_ENV = "FUNDPOOL_AUDIT_PUBLISH_DIR"
KEY_ID_HEX = 16
SIGNATURE_BYTES = 64


class AuditKeyError(FundpoolError):
    code = "audit_key_error"
    title = "the audit log's signing key cannot be read or made"


class MalformedCheckpoint(FundpoolError):
    code = "malformed_checkpoint"
    title = "the checkpoint is not one this code can read"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_HEX]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def checkpoint_text(size: int, root: bytes, at_us: int, kid: str) -> bytes:
    return f"{HEADER}\n{size}\n{root.hex()}\n{at_us}\n{kid}\n".encode()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    size: int
    root: bytes
    at_us: int
    key_id: str
    signature: bytes

    def text(self) -> bytes:
        return checkpoint_text(self.size, self.root, self.at_us, self.key_id)

    def signed_by(self, public: Ed25519PublicKey) -> bool:
        """Whether the signature is `public`'s over this checkpoint's text (and the key id
        is that key's)."""
        if self.key_id != key_id(public) or len(self.signature) != SIGNATURE_BYTES:
            return False
        try:
            public.verify(self.signature, self.text())
        except InvalidSignature:
            return False
        return True

    def malformed(self) -> str | None:
        """Why the checkpoint cannot be a real one, or None."""
        if self.size < 0:
            return f"its size is negative ({self.size})"
        if len(self.root) != HASH_BYTES:
            return f"its root is {len(self.root)} bytes, not {HASH_BYTES}"
        if len(self.signature) != SIGNATURE_BYTES:
            return f"its signature is {len(self.signature)} bytes, not {SIGNATURE_BYTES}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "root": self.root.hex(), "at_us": self.at_us,
                "key_id": self.key_id, "signature": self.signature.hex(),
                "text": self.text().decode()}

    @classmethod
    def from_dict(cls, doc: Any) -> Checkpoint:
        try:
            size, at_us = doc["size"], doc["at_us"]
            if type(size) is not int or type(at_us) is not int:
                raise TypeError("size and at_us are integers")
            return cls(size, bytes.fromhex(doc["root"]), at_us, str(doc["key_id"]),
                       bytes.fromhex(doc["signature"]))
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedCheckpoint(reason=str(error)) from None


class LogKey:
    """The log's signing key."""

    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None) -> None:
        self.private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)
        self.path = path

    def sign(self, size: int, root: bytes, at_us: int) -> Checkpoint:
        signature = self.private.sign(checkpoint_text(size, root, at_us, self.key_id))
        return Checkpoint(size, root, at_us, self.key_id, signature)

    def public_doc(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "algorithm": "ed25519",
                "public_key_pem": public_pem(self.public),
                "public_key_hex": public_raw(self.public).hex()}

    @classmethod
    def generate(cls) -> LogKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> LogKey:
        """The key in the PEM PKCS8 file at `path`, made (mode 0600) if there is none."""
        if not path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            path.parent.mkdir(parents=True, exist_ok=True)
            try:  # O_EXCL: two processes starting together keep the one that won
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return cls.load(path)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
                out.flush()
                os.fsync(out.fileno())
            return cls(key, path)
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> LogKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as error:
            raise AuditKeyError(path=str(path), reason=str(error)) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditKeyError("the audit key is not an Ed25519 key", path=str(path))
        return cls(key, path)


def load_public_key(text: str | bytes) -> Ed25519PublicKey:
    """A public key from PEM (public or private), or the raw 32 bytes as hex or base64."""
    import base64
    import binascii

    raw = text.encode() if isinstance(text, str) else text
    stripped = raw.strip()
    if stripped.startswith(b"-----BEGIN"):
        if b"PRIVATE" in stripped:
            private = serialization.load_pem_private_key(stripped, password=None)
            if isinstance(private, Ed25519PrivateKey):
                return private.public_key()
        else:
            public = serialization.load_pem_public_key(stripped)
            if isinstance(public, Ed25519PublicKey):
                return public
        raise AuditKeyError("the key is not an Ed25519 key")
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            value = decode(stripped.decode())
        except (ValueError, binascii.Error):
            continue
        if len(value) == 32:
            return Ed25519PublicKey.from_public_bytes(value)
    raise AuditKeyError("not a PEM key, nor 32 bytes in hex or base64")


def publish(checkpoint: Checkpoint, directory: Path) -> Path:
    """Write `checkpoint` to `directory` as `checkpoint-<size>.json` (atomically: a reader
    never sees half a file). An existing file for the size is left as it is."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"checkpoint-{checkpoint.size:012d}.json"
    if target.exists():
        return target
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(checkpoint.to_dict(), sort_keys=True, indent=1) + "\n",
                       encoding="utf-8")
    os.replace(partial, target)
    return target


def published(directory: Path) -> list[Checkpoint | str]:
    """Every checkpoint published in `directory`, by file name; a file that does not read as
    one is given as its name."""
    found: list[Checkpoint | str] = []
    for path in sorted(directory.glob("checkpoint-*.json")):
        try:
            found.append(Checkpoint.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, MalformedCheckpoint):
            found.append(path.name)
    return found
