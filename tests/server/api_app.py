"""An API app on a fresh SQLite store with its pool opened, and one key per role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from fundpool.auth.roles import Role
from fundpool.compose import build_app
from fundpool.ledger.service import Ledger
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.runtime import SystemClock, system_ids
from fundpool.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "pool.toml"


@dataclass
class ApiApp:
    app: FastAPI
    keys: dict[str, str]  # role -> bearer token

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def api_app(data_dir: Path, **settings: object) -> ApiApp:
    """The API on its own: no payment engine unless `engine=True`, so that a test moves its
    payments step by step (tests/server/test_engine_serve.py runs the engine in a real
    `fundpool serve`)."""
    settings.setdefault("engine", False)
    settings.setdefault("access_log", False)
    app = build_app(Settings(data_dir=data_dir, config=CONFIG,
                             **settings))  # type: ignore[arg-type]
    api = app.state.api
    init_pool(Ledger(api.store, SystemClock(), system_ids()), load_config(CONFIG))
    keys = {}
    for role in Role:
        _, token = api.auth.create_key(f"test-{role}", [role], now_us=api.clock.now_us())
        keys[str(role)] = token
    return ApiApp(app, keys)
