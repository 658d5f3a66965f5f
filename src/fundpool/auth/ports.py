"""What the entry points ask of where the credentials are kept: the API's gate and routes, and
`fundpool keys | users`. The console signs in through the API, so it asks nothing directly.

The store implements this protocol (`stores/auth_sql.py`, `AuthStore`); the composition root
(`fundpool.compose.auth_store`) hands it to the server's `Api` and to the CLI, so neither imports
it. Every time is integer microseconds since the epoch (UTC), passed in as `now_us`; a failed
check raises a subclass of `AuthenticationFailed` (errors.py).

Every change takes the `actor` who makes it (fundpool.core.actor): the store records it in the
change's own transaction, in the trail `changes()` reads. The entry points always pass theirs
(the API: the caller; the CLI: the operating-system user); the default, `SYSTEM`, is for set-up
code such as the demo's users and the tests' keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from fundpool.auth.model import ApiKeyInfo, AuthChange, Principal, UserInfo
from fundpool.core.actor import SYSTEM, Actor


class AuthStore(Protocol):
    # --- API keys ---

    def create_key(
        self, name: str, roles: Iterable[str], *, scopes: Iterable[str] | None = None,
        expires_at_us: int | None = None, now_us: int, actor: Actor = SYSTEM,
    ) -> tuple[ApiKeyInfo, str]:
        """A new key and its token, shown this once: only a hash of its secret is kept."""
        ...

    def keys(self) -> list[ApiKeyInfo]:
        """Every API key, oldest first."""
        ...

    def key(self, key_id: str) -> ApiKeyInfo: ...

    def revoke_key(self, key_id: str, *, now_us: int, actor: Actor = SYSTEM) -> ApiKeyInfo: ...

    def rotate_key(self, key_id: str, *, now_us: int, grace_s: int = 0,
                   actor: Actor = SYSTEM) -> tuple[ApiKeyInfo, str]:
        """A new key in the old one's place; the old one works for `grace_s` more seconds."""
        ...

    def authenticate_key(self, token: str, *, now_us: int) -> Principal: ...

    # --- users ---

    def add_user(self, username: str, password: str, roles: Iterable[str], *, now_us: int,
                 actor: Actor = SYSTEM) -> UserInfo: ...

    def users(self) -> list[UserInfo]:
        """Every user, by username."""
        ...

    def set_roles(self, username: str, roles: Iterable[str], *, now_us: int,
                  actor: Actor = SYSTEM) -> UserInfo: ...

    def set_password(self, username: str, password: str, *, now_us: int,
                     actor: Actor = SYSTEM) -> UserInfo:
        """A new password; every session of the user's ends."""
        ...

    def disable_user(self, username: str, *, now_us: int, actor: Actor = SYSTEM) -> UserInfo: ...

    # --- the trail of changes ---

    def changes(self, *, target_kind: str | None = None, target_id: str | None = None,
                limit: int = 100, before: int | None = None) -> list[AuthChange]:
        """Changes to keys and users, newest first; `before`: the id of the last one seen."""
        ...

    # --- sessions ---

    def login(self, username: str, password: str, *, now_us: int, ttl_s: int = ...
              ) -> tuple[Principal, str, str]:
        """(principal, session token, CSRF token) for a username and password."""
        ...

    def authenticate_session(self, token: str, *, now_us: int) -> Principal: ...

    def check_csrf(self, principal: Principal, csrf_token: str | None) -> bool: ...

    def logout(self, session_id: str, *, now_us: int) -> None: ...

    def close(self) -> None: ...
