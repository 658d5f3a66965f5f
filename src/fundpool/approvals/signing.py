"""What an approver signs, and the checks of a signature and of a public key.

The signed bytes are a digest of the payment as it is to be approved (docs/approvals.md):

    digest = SHA-256(b"fundpool approval v1\\n" + canonical JSON of the document)

The document names the decision, the payment, its round (the event sequence number at which it
began to wait), what moves (kind, asset, amount, fee), to whom (counterparty, destination), on
which rail, and under which approval rules and risk policy. Ed25519 signs the 32 digest bytes.
Canonical JSON is the ledger's (docs/adr/0003): keys sorted, no white space, UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fundpool.approvals.model import (
    Decision,
    InvalidPublicKey,
    InvalidSignature,
    SignatureMismatch,
)
from fundpool.payments.model import Payment

DOMAIN = b"fundpool approval v1\n"
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
PUBLIC_KEY_TEXT_MAX = 4096  # characters of a public key as given (base64 or PEM)


def canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                      ).encode("utf-8")


def document(payment: Payment, round_: int, rules_version: int, risk_policy_version: int | None,
             decision: Decision = Decision.APPROVE) -> dict[str, Any]:
    """What an approver approves (or rejects): every field that, changed, makes it another
    payment."""
    return {
        "decision": decision.value, "payment": payment.id, "pool": payment.pool,
        "round": round_, "kind": payment.kind.value, "asset": payment.asset,
        "amount_minor": payment.amount_minor, "fee_minor": payment.fee_minor,
        "counterparty": payment.counterparty, "destination": payment.destination,
        "channel": payment.channel, "destination_channel": payment.destination_channel,
        "rules_version": rules_version, "risk_policy_version": risk_policy_version,
    }


def digest_of(doc: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(DOMAIN + canonical(doc)).digest()


def key_id_of(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def key_id_of_private(private_key: Ed25519PrivateKey) -> str:
    return key_id_of(raw_public(private_key))


def parse_public_key(text: str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given as base64 (WebCrypto's raw export) or as
    PEM (SubjectPublicKeyInfo); any other key type or length is `invalid_public_key`."""
    if not isinstance(text, str) or not text.strip() or len(text) > PUBLIC_KEY_TEXT_MAX:
        raise InvalidPublicKey("give the public key as base64 of 32 bytes, or as PEM",
                               field="public_key")
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            loaded = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as error:
            raise InvalidPublicKey(f"the PEM does not hold a public key: {error}",
                                   field="public_key") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise InvalidPublicKey(
                f"the key is {type(loaded).__name__.removesuffix('PublicKey') or 'other'}, "
                "not Ed25519", field="public_key", key_type=type(loaded).__name__)
        return loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raw = _b64(text, "public_key", InvalidPublicKey)
    if len(raw) != PUBLIC_KEY_BYTES:
        raise InvalidPublicKey(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, not "
                               f"{len(raw)}", field="public_key", length=len(raw))
    return raw


def parse_signature(text: object) -> bytes:
    if not isinstance(text, str) or not text:
        raise InvalidSignature("the signature is base64 text", field="signature")
    raw = _b64(text, "signature", InvalidSignature)
    if len(raw) != SIGNATURE_BYTES:
        raise InvalidSignature(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes, not "
                               f"{len(raw)}", field="signature", length=len(raw))
    return raw


def verify(public_key: bytes, signature: bytes, digest: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, digest)
    except CryptoInvalidSignature:
        raise SignatureMismatch() from None


def sign(private_key: Ed25519PrivateKey, digest: bytes) -> str:
    """The base64 signature of `digest` (the CLI's and the simulator's way; the console signs
    in the browser)."""
    return base64.b64encode(private_key.sign(digest)).decode("ascii")


def raw_public(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """An approver's key file (PKCS#8 PEM, as the console exports it)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise InvalidPublicKey(f"the key file is not an unencrypted PKCS#8 PEM key: {error}",
                               field="key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidPublicKey("the key file holds another kind of key, not Ed25519",
                               field="key", key_type=type(key).__name__)
    return key


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _b64(text: str, name: str, error: type[InvalidPublicKey] | type[InvalidSignature]) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
        except (binascii.Error, ValueError):
            raise error(f"{name} is not base64", field=name) from None
