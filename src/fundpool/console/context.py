"""What every console page works with: who is signed in, in which language, and a client of
the API acting as them.

The console is a client of the API, in the same process: each page calls `/v1` through the
Python client (`fundpool.client.AsyncClient`) over an in-process ASGI transport, with the
signed-in user's session token as its bearer credential. So every figure it shows is the
API's answer and every action it takes passes the API's gate and the route's one permission:
a role that may not do a thing gets the API's 403 whatever the page shows, and the page hides
what the roles do not allow only so that nobody is offered it.

Session tokens stay in this process's memory, keyed by the browser's id (NiceGUI's signed
browser cookie), never on disk; a restart signs everyone out. A session the API no longer
accepts (expired, signed out elsewhere, user disabled) sends the browser to the sign-in page
with a message.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from fundpool.client import AsyncClient
from fundpool.console.format import LOCALES, Locale

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fundpool.server.v1.context import Api

CONSOLE_PATH = "/console"
CLIENT_TIMEOUT_S = 30.0
SESSIONS_MAX = 10_000  # browsers signed in at once per process; the oldest is signed out


@dataclass(frozen=True, slots=True)
class Signed:
    token: str
    username: str
    roles: tuple[str, ...]
    permissions: frozenset[str]

    def may(self, permission: str) -> bool:
        return permission in self.permissions


@dataclass
class Console:
    app: FastAPI
    api: Api
    sessions: dict[str, Signed] = field(default_factory=dict)
    ended: dict[str, str] = field(default_factory=dict)  # browser -> why its session ended
    locales: dict[str, Locale] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, signed: Signed | None) -> AsyncClient:
        """A client of this server's API as `signed` (None: anonymous, to sign in)."""
        transport = httpx.ASGITransport(app=self.app)
        return AsyncClient("http://console.fundpool", None if signed is None else signed.token,
                           timeout=CLIENT_TIMEOUT_S, retries=1, transport=transport)

    def signed(self, browser: str) -> Signed | None:
        with self._lock:
            return self.sessions.get(browser)

    def sign_in(self, browser: str, signed: Signed) -> None:
        with self._lock:
            self.sessions.pop(browser, None)
            self.ended.pop(browser, None)
            if len(self.sessions) >= SESSIONS_MAX:
                self.sessions.pop(next(iter(self.sessions)))
            self.sessions[browser] = signed

    def sign_out(self, browser: str) -> Signed | None:
        with self._lock:
            self.ended.pop(browser, None)
            return self.sessions.pop(browser, None)

    def end(self, browser: str, token: str) -> None:
        """The API no longer accepts `token` (expired, revoked, user disabled): forget it, and
        remember why for the browser's next page. A newer session of the browser stays."""
        with self._lock:
            signed = self.sessions.get(browser)
            if signed is not None and signed.token == token:
                del self.sessions[browser]
                if len(self.ended) >= SESSIONS_MAX:
                    self.ended.pop(next(iter(self.ended)))
                self.ended[browser] = "expired"

    def why_signed_out(self, browser: str) -> str:
        """Why the browser has no session: `expired` once after `end`, else `required`."""
        with self._lock:
            return self.ended.pop(browser, "required")

    def locale(self, browser: str) -> Locale:
        return self.locales.get(browser, "en")

    def set_locale(self, browser: str, locale: str) -> None:
        if locale in LOCALES:
            with self._lock:
                if len(self.locales) >= SESSIONS_MAX:
                    self.locales.pop(next(iter(self.locales)))
                self.locales[browser] = "zh-CN" if locale == "zh-CN" else "en"

    @property
    def pool_ids(self) -> list[str]:
        return [pool.id for pool in self.api.config.pools]

    @property
    def channel_ids(self) -> list[str]:
        return [channel.id for channel in self.api.config.channels]

    def scales(self) -> Mapping[str, int]:
        return {asset.code: asset.scale for asset in self.api.config.assets}


_console: Console | None = None


def install(console: Console) -> None:
    global _console
    _console = console


def current() -> Console:
    if _console is None:
        raise RuntimeError("the console is not mounted on an app (fundpool.console.mount)")
    return _console
