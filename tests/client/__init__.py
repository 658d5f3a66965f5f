"""A real fundpool server for the client's tests: uvicorn in a thread, on a free port, over a
SQLite ledger holding the example pool (as `fundpool pool init` makes it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from fundpool.compose import build_app, open_ledger_store
from fundpool.ledger.service import Ledger
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.runtime import SystemClock, system_ids
from fundpool.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "pool.toml"
START_S_MAX = 20.0
STOP_S_MAX = 20.0


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: FastAPI
    data_dir: Path
    admin_key: str
    viewer_key: str

    def key(self, name: str, roles: list[str]) -> str:
        api = self.app.state.api
        _, token = api.auth.create_key(name, roles, now_us=api.clock.now_us())
        return str(token)


def init_ledger(data_dir: Path) -> None:
    """The example pool in a new SQLite ledger, as `fundpool pool init` makes it."""
    store = open_ledger_store(data_dir=data_dir, db_url=None)
    try:
        store.initialise()
        init_pool(Ledger(store, SystemClock(), system_ids()), load_config(CONFIG))
    finally:
        store.close()


@contextmanager
def live_server(data_dir: Path) -> Iterator[LiveServer]:
    init_ledger(data_dir)
    # No payment engine: these tests move payments step by step, through the client and the
    # CLI alike (tests/server/test_engine_serve.py runs the engine).
    app = build_app(Settings(data_dir=data_dir, config=CONFIG, access_log=False,
                             log_level="warning", engine=False))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]},
                              name="fundpool-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_S_MAX
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    api = app.state.api
    now_us = api.clock.now_us()
    _, admin = api.auth.create_key("tests-admin", ["admin"], now_us=now_us)
    _, viewer = api.auth.create_key("tests-viewer", ["viewer"], now_us=now_us)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app, data_dir, admin, viewer)
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_S_MAX)
        listener.close()
    # A server still running would hold its ledger and serve the next module's requests.
    assert not thread.is_alive(), f"the test server did not stop within {STOP_S_MAX:g} s"
