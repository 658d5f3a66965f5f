"""What the console's browser tests share besides fixtures: the running server, and where
screenshots for the docs go."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def _screenshot_dir() -> Path | None:
    # Off by default: a test run leaves the working tree as it found it. The README's
    # pictures are made with FUNDPOOL_CONSOLE_SCREENSHOTS=docs/img.
    named = os.environ.get("FUNDPOOL_CONSOLE_SCREENSHOTS")
    return (REPO / named if not Path(named).is_absolute() else Path(named)) if named else None


def save_screenshot(page: Any, name: str, *, settle_ms: int = 0) -> None:
    """The page's viewport as `name` in $FUNDPOOL_CONSOLE_SCREENSHOTS (a folder, relative to
    the repository or absolute), when it is set, `settle_ms` after it is asked for (a chart's
    first frame, a scroll: nothing a test asserts waits on this pause)."""
    folder = _screenshot_dir()
    if folder is None:
        return
    if settle_ms:
        page.wait_for_timeout(settle_ms)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name))


@dataclass(frozen=True)
class Server:
    base: str
    data_dir: Path
    log: Path
    users: dict[str, tuple[str, str]]  # role -> (username, password)

    def url(self, path: str) -> str:
        return self.base + path

    def token(self, role: str = "admin") -> str:
        username, password = self.users[role]
        return self.sign_in(username, password)

    def sign_in(self, username: str, password: str) -> str:
        answer = httpx.post(self.url("/v1/sessions"),
                            json={"username": username, "password": password}, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["token"])

    def api(self, role: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30,
                            headers={"Authorization": f"Bearer {self.token(role)}"})

    def log_tail(self, chars: int = 4_000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


# --- what every browser test does ----------------------------------------------------------

EXPECT_TIMEOUT_MS = 30_000  # the server and its simulator share the machine with the browser


def expect(target: Any) -> Any:
    """Playwright's `expect`, waiting as long as a busy machine needs."""
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    return playwright_expect(target)


def goto(page: Any, server: Server, path: str) -> None:
    """Open a console page and wait until its websocket is up (events reach the server)."""
    page.goto(server.url(path))
    page.wait_for_function("() => window.did_handshake === true")


def sign_in(page: Any, server: Server, role: str) -> str:
    """Sign in as the server's user of `role` through the login page; its username."""
    username, password = server.users[role]
    goto(page, server, "/console/login")
    page.get_by_test_id("username").fill(username)
    page.get_by_test_id("password").fill(password)
    page.get_by_test_id("submit").click()
    page.wait_for_url(server.url("/console/"))
    page.wait_for_function("() => window.did_handshake === true")
    return username
