"""An API server on the example pool for tests: the app `fundpool serve` runs, on a fresh SQLite
store whose pool is initialised as `fundpool pool init` does it, and keys by role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from fundpool.auth.roles import Role
from fundpool.compose import build_app
from fundpool.ledger.service import Ledger
from fundpool.pool.setup import init_pool
from fundpool.runtime import SystemClock, system_ids
from fundpool.server.settings import Settings
from fundpool.server.v1.context import Api

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pool.toml"
PROBLEM_JSON = "application/problem+json"


class Server:
    """A running app and a client; `as_role` gives the headers of a new key with that role."""

    def __init__(self, app: FastAPI, client: TestClient) -> None:
        self.app = app
        self.client = client
        self.admin = self.as_role(Role.ADMIN)

    @property
    def api(self) -> Api:
        api: Api = self.app.state.api
        return api

    def as_role(self, *roles: Role) -> dict[str, str]:
        _, token = self.api.auth.create_key(
            f"test-{'-'.join(roles)}", list(roles), now_us=self.api.clock.now_us())
        return {"Authorization": f"Bearer {token}"}

    def fund(self, channel: str, asset: str, amount: str) -> None:
        """Money on a rail of the main pool, from the outside world: an admin's adjustment
        (the pool's accounts move through its services, raw only so)."""
        response = self.client.post("/v1/ledger/transactions", headers=self.admin, json={
            "postings": [{"source": f"world:{channel}",
                          "destination": f"pool:main:{asset.lower()}:{channel}:available",
                          "asset": asset, "amount": amount}],
            "reason": "test set-up: the pool's float"})
        assert response.status_code == 201, response.text

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        response = self.client.get(path, headers=headers or self.admin, params=params)
        assert response.status_code == 200, response.text
        return response.json()


@contextmanager
def running_server(data_dir: Path, **settings: Any) -> Iterator[Server]:
    settings.setdefault("engine", False)  # payments moved step by step (see api_app)
    app = build_app(Settings(data_dir=data_dir, config=EXAMPLE, access_log=False, **settings))
    api: Api = app.state.api
    init_pool(Ledger(api.store, SystemClock(), system_ids()), api.config)
    with TestClient(app) as client:
        yield Server(app, client)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body
