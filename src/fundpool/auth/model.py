"""Who may call and what they may do: API keys, users and sessions as values, and the checks
of what a person types for them (usernames, passwords, key names, roles, scopes). No I/O: the
credentials are kept by `fundpool.stores.auth_sql.AuthStore`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fundpool.auth.errors import (
    KEY_NAME_CHARS_MAX,
    PASSWORD_CHARS_MAX,
    PASSWORD_CHARS_MIN,
    InvalidKeyName,
    InvalidRoles,
    InvalidUsername,
    WeakPassword,
)
from fundpool.auth.roles import Permission, Role
from fundpool.core.actor import Actor

US_PER_S = 1_000_000
SESSION_TTL_S_DEFAULT = 8 * 3600
SESSION_TTL_S_MAX = 30 * 24 * 3600
ROTATION_GRACE_S_MAX = 30 * 24 * 3600
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# A dummy hash to compare with when no row has the id, so both paths do the same work.
_NO_SECRET_HASH = "0" * 64
# The auth changes one read returns at most: the API's largest page (1,000) and the one after
# it, which says whether there is a next page.
CHANGES_LIMIT_MAX = 1_001

# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling and what they may do: an API key, or a user through a session."""

    kind: Literal["key", "user"]
    id: str  # the key's id or the user's id
    name: str  # the key's name or the username
    roles: frozenset[Role]
    permissions: frozenset[Permission]
    session_id: str | None = None
    csrf_hash: str | None = None  # sessions only
    expires_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as it may be shown: never its secret, nor the secret's hash."""

    id: str
    name: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...] | None
    created_at_us: int
    expires_at_us: int | None
    revoked_at_us: int | None
    replaced_by: str | None
    created_by: str  # the creator's name as text (`user:alice`, `cli:root`; older rows: `cli`)
    creator: Actor | None = None  # who created it; None for a key from before actors were kept

    def state(self, now_us: int) -> Literal["active", "expired", "revoked"]:
        if self.revoked_at_us is not None:
            return "revoked"
        if self.expires_at_us is not None and now_us >= self.expires_at_us:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as it may be shown: never the password hash."""

    id: str
    username: str
    roles: tuple[str, ...]
    disabled: bool
    created_at_us: int
    creator: Actor | None = None  # who added the user; None for one from before actors were kept


# What `auth_changes` records, by target: every change to a key or a user, in the transaction
# that makes it.
KEY_ACTIONS = ("key.created", "key.rotated", "key.revoked")
USER_ACTIONS = ("user.created", "user.roles_changed", "user.password_changed",
                "user.disabled")
ACTIONS = (*KEY_ACTIONS, *USER_ACTIONS)


@dataclass(frozen=True, slots=True)
class AuthChange:
    """One change to a key or a user: what, to which, by whom and when. `details` holds the
    change's facts (a key's roles, a user's roles before and after, the key a rotation made),
    never a secret or a password."""

    id: int  # increasing: the order changes were recorded in
    at_us: int
    action: str  # one of ACTIONS
    target_kind: Literal["key", "user"]
    target_id: str  # the key's or the user's id
    target_name: str  # the key's name or the username
    actor: Actor | None  # None: no actor was recorded (shown as unknown)
    details: Mapping[str, Any] = field(default_factory=dict)


# --- validation ------------------------------------------------------------------------------


def check_roles(roles: Iterable[str]) -> tuple[Role, ...]:
    """Known roles, sorted and without repeats; none at all is `InvalidRoles`."""
    checked: set[Role] = set()
    for role in roles:
        try:
            checked.add(Role(role))
        except ValueError:
            raise InvalidRoles(f"unknown role {role!r}", role=role,
                               known=[r.value for r in Role]) from None
    if not checked:
        raise InvalidRoles("give at least one role", known=[r.value for r in Role])
    return tuple(sorted(checked))


def check_scopes(scopes: Iterable[str] | None) -> tuple[Permission, ...] | None:
    """Known permissions, sorted and without repeats; None is no narrowing. An empty list
    would leave a key that can do nothing, which is always a mistake."""
    if scopes is None:
        return None
    checked: set[Permission] = set()
    for scope in scopes:
        try:
            checked.add(Permission(scope))
        except ValueError:
            raise InvalidRoles(f"unknown scope {scope!r}", scope=scope,
                               known=[p.value for p in Permission]) from None
    if not checked:
        raise InvalidRoles("an empty scope list grants nothing; omit scopes instead")
    return tuple(sorted(checked))


def check_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidUsername(username=username[:80])
    return username


def check_password(password: str) -> str:
    if not PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX:
        raise WeakPassword(characters=len(password))
    return password


def check_key_name(name: str) -> str:
    if not 1 <= len(name) <= KEY_NAME_CHARS_MAX or not name.isprintable():
        raise InvalidKeyName(name=name[:80])
    return name


def _join(values: Iterable[str]) -> str:
    return ",".join(sorted(values))


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(value for value in (text or "").split(",") if value)


def _known_roles(values: Iterable[str]) -> frozenset[Role]:
    # A role this version does not know (written by a newer one) grants nothing: fail closed.
    known = {r.value for r in Role}
    return frozenset(Role(value) for value in values if value in known)


def _known_scopes(values: Iterable[str] | None) -> frozenset[Permission] | None:
    # An unknown scope narrows to nothing more than the known ones do: fail closed as well.
    if values is None:
        return None
    known = {p.value for p in Permission}
    return frozenset(Permission(value) for value in values if value in known)


# --- tables ----------------------------------------------------------------------------------

