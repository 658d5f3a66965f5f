"""Token formats and how their secrets and users' passwords are hashed.

An API key is the text `fpk_<key_id>_<secret>` and a session token `fps_<session_id>_<secret>`:
the id finds the row, the secret proves possession. Only `sha256(secret)` is stored. The secrets
are 256 random bits, so a fast hash loses nothing (nobody can guess a preimage) and keeps every
request cheap; a password is low-entropy and chosen by a person, so it gets argon2id, slow and
memory-hard, with argon2-cffi's defaults (RFC 9106's second recommended profile).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fundpool.auth.errors import Unauthenticated

KEY_PREFIX = "fpk"
SESSION_PREFIX = "fps"
ID_BYTES = 8  # 16 hex characters: rows are found by id, guessing one gains nothing
SECRET_BYTES = 32  # 256 bits: `token_urlsafe(32)` is 43 characters
CSRF_BYTES = 24
TOKEN_TEXT_MAX = 128  # longer text is refused before any work is done on it

_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def new_id() -> str:
    """A fresh row id: 16 lowercase hex characters."""
    return secrets.token_hex(ID_BYTES)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(CSRF_BYTES)


def format_token(prefix: str, token_id: str, secret: str) -> str:
    """`fpk_<id>_<secret>` (or `fps_...`); `prefix` is given with or without its `_`."""
    return f"{prefix.removesuffix('_')}_{token_id}_{secret}"


def parse_token(text: str, prefix: str) -> tuple[str, str]:
    """(id, secret) of a token with `prefix` ("fpk" or "fps", with or without the trailing
    `_`). Anything else is `Unauthenticated`: malformed credentials are no credentials."""
    stem = prefix.removesuffix("_") + "_"
    if len(text) > TOKEN_TEXT_MAX or not text.startswith(stem):
        raise Unauthenticated("the credentials are not a token of the expected kind",
                              expected=stem + "...")
    token_id, separator, secret = text[len(stem):].partition("_")
    if not separator or not _ID.fullmatch(token_id) or not _SECRET.fullmatch(secret):
        raise Unauthenticated("the credentials are not a token of the expected kind",
                              expected=stem + "...")
    return token_id, secret


def hash_secret(secret: str) -> str:
    """sha256 of a token's secret (or a CSRF token), as hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Whether `secret` hashes to `stored_hash`, in time that does not depend on where they
    differ."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    """Whether `password` is the one `password_hash` was made from. A damaged hash matches
    nothing."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (then a login rehashes)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def verify_dummy_password(password: str) -> None:
    """Spend the time a real verification takes, for a user who does not exist: the answer's
    timing must not tell which usernames exist."""
    global _dummy_hash
    if _dummy_hash is None:
        # Any thread may make it; they all make an equivalent one.
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(SECRET_BYTES))
    password_matches(_dummy_hash, password)

