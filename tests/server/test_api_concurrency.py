"""The API under concurrent load, and through a worker's crash, on a real `fundpool serve
--workers 4` over PostgreSQL.

Eight client threads, each on one keep-alive connection, send 1,000 transfers apiece between
customers who start with small balances (so some fail for insufficient funds), plus deposits,
withdrawals and two-posting transfers. Every transfer has its own `Idempotency-Key`; about one
in ten is sent twice: later by the same client, or at the same instant by two clients (both
wait at a barrier, then send). The ledger afterwards must hold exactly what the clients were
told: each acknowledged key once, with the entry id they were given, and balances equal to the
initial funding plus the acknowledged transfers, to the minor unit.

The crash test kills a worker (SIGKILL) a third of the way into the same load (8 clients x
1,000 transfers), the worker holding the most client connections; clients retry connection
errors and 5xx with the same key until they get an answer. After a restart of the server,
nothing acknowledged is missing or doubled and the chain verifies.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fundpool.core.ledger.canonical import decode_body
from fundpool.core.money import format_amount
from fundpool.runtime import SystemClock
from fundpool.stores.auth_sql import AuthStore
from fundpool.stores.postgres import PostgresStore
from tests.conftest import PG_URL, new_pg_schema, require_postgres
from tests.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "pool.toml"
FUNDPOOL = Path(sys.executable).with_name("fundpool")

WORKERS = 4
CLIENTS = 8
TRANSFERS_PER_CLIENT = 1_000
# The crash happens under the same load as the concurrency test (the "under that load").
CRASH_TRANSFERS_PER_CLIENT = TRANSFERS_PER_CLIENT
CUSTOMERS = 24
WORLD = "world:bench"
ASSET_SCALES = {"USD": 2, "USDT": 6}
FUNDING_MINOR = {"USD": 200_00, "USDT": 200_000_000}
CONCURRENT_DUPLICATE_SHARE = 0.05
LATER_RETRY_SHARE = 0.05
LATER_RETRY_STEPS_MAX = 5
SEED = 20_261_124

ATTEMPTS_MAX = 200  # per request, through a crash and the worker's restart
RETRY_PAUSE_S = 0.05
REQUEST_TIMEOUT_S = 30
BARRIER_WAIT_S = 30
SERVER_READY_S = 90
SERVER_STOP_S = 30
WORKER_START_S = 60  # every worker listening: /readyz answers as soon as the first is
WORKER_RESTART_S = 30
KILL_AT_SHARE = 0.35  # of the requests answered: mid-load
PAGE_LIMIT = 1_000

Posting = tuple[str, str, str, int]  # source, destination, asset, amount_minor


# --- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    key: str
    postings: tuple[Posting, ...]

    def body(self) -> bytes:
        return json.dumps({"postings": [
            {"source": s, "destination": d, "asset": a,
             "amount": format_amount(m, ASSET_SCALES[a])} for s, d, a, m in self.postings
        ]}).encode()


@dataclass(frozen=True)
class Step:
    spec: Spec
    together: threading.Barrier | None = None  # sent at the same instant by another client


def customer(index: int) -> str:
    return f"customer:c{index:02d}"


def random_spec(rng: random.Random, key: str) -> Spec:
    asset = rng.choice(sorted(ASSET_SCALES))
    amount = rng.randrange(1, FUNDING_MINOR[asset] // 3)
    a, b, c = rng.sample(range(CUSTOMERS), 3)
    roll = rng.random()
    if roll < 0.70:
        postings: tuple[Posting, ...] = ((customer(a), customer(b), asset, amount),)
    elif roll < 0.80:  # all or nothing: b pays c only if a pays b
        other = rng.choice(sorted(ASSET_SCALES))
        postings = ((customer(a), customer(b), asset, amount),
                    (customer(b), customer(c), other,
                     rng.randrange(1, FUNDING_MINOR[other] // 3)))
    elif roll < 0.90:
        postings = ((WORLD, customer(a), asset, amount),)
    else:
        postings = ((customer(a), WORLD, asset, amount),)
    return Spec(key, postings)


def make_plan(seed: int, prefix: str, transfers_per_client: int
              ) -> tuple[list[list[Step]], list[threading.Barrier]]:
    """Each client's steps. A step sent by two clients together sits in both lanes under the
    same order key, and every lane is sorted by it, so the clients meet at their barriers in
    one global order and never wait for each other in a cycle."""
    rng = random.Random(seed)
    lanes: list[list[tuple[tuple[int, int, int, int], Step]]] = [[] for _ in range(CLIENTS)]
    barriers = []
    tie = 0
    for client in range(CLIENTS):
        for i in range(transfers_per_client):
            spec = random_spec(rng, f"{prefix}-{client}-{i}")
            roll = rng.random()
            tie += 1
            if roll < CONCURRENT_DUPLICATE_SHARE:
                partner = rng.choice([c for c in range(CLIENTS) if c != client])
                barrier = threading.Barrier(2)
                barriers.append(barrier)
                step = Step(spec, barrier)
                lanes[client].append(((i, client, 0, tie), step))
                lanes[partner].append(((i, client, 0, tie), step))
                continue
            lanes[client].append(((i, client, 0, tie), Step(spec)))
            if roll < CONCURRENT_DUPLICATE_SHARE + LATER_RETRY_SHARE:
                later = i + rng.randrange(LATER_RETRY_STEPS_MAX + 1)
                lanes[client].append(((later, client, 1, tie), Step(spec)))
    return [[step for _, step in sorted(lane, key=lambda item: item[0])] for lane in lanes], \
        barriers


# --- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    key: str
    status: int
    entry_id: str | None
    code: str | None
    replayed: bool


class Client:
    """One keep-alive connection. A request that meets a connection error, a 5xx or a 429 is
    sent again, with the same key and body, until it is answered."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}",
                        "Content-Type": "application/json"}
        self.connection: http.client.HTTPConnection | None = None
        self.connection_errors = 0
        self.server_errors = 0

    def _connection(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                         timeout=REQUEST_TIMEOUT_S)
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def call(self, method: str, path: str, body: bytes | None = None,
             key: str | None = None) -> tuple[int, dict[str, str], Any]:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        for _ in range(ATTEMPTS_MAX):
            try:
                connection = self._connection()
                connection.request(method, path, body, headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self.connection_errors += 1
                self.close()
                time.sleep(RETRY_PAUSE_S)
                continue
            if response.status >= 500 or response.status == 429:
                self.server_errors += 1
                time.sleep(RETRY_PAUSE_S)
                continue
            found = {name.lower(): value for name, value in response.getheaders()}
            return response.status, found, json.loads(data) if data else None
        raise AssertionError(f"{method} {path} ({key}): no answer after {ATTEMPTS_MAX} tries")

    def get(self, path: str) -> Any:
        status, _, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body

    def post(self, path: str, document: object, key: str) -> Any:
        status, _, body = self.call("POST", path, json.dumps(document).encode(), key)
        assert status in (200, 201), (path, status, body)
        return body

    def transfer(self, spec: Spec) -> Answer:
        status, headers, body = self.call("POST", "/v1/ledger/transactions", spec.body(),
                                          spec.key)
        replayed = headers.get("idempotent-replayed") == "true"
        if status in (200, 201):
            return Answer(spec.key, status, body["id"], None, replayed)
        return Answer(spec.key, status, None, body.get("code"), replayed)


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def server_environment(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNDPOOL_")}
    env.update({
        "FUNDPOOL_DB_URL": db_url,
        # The test measures correctness, not the throttle: no request may be refused for rate.
        "FUNDPOOL_RATE_LIMIT_PER_S": "1000000",
        "FUNDPOOL_RATE_LIMIT_BURST": "1000000",
        "FUNDPOOL_ACCESS_LOG": "false",
    })
    return env


@contextmanager
def serving(db_url: str, log: Path) -> Iterator[Server]:
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(FUNDPOOL), "serve", "--port", str(port), "--workers", str(WORKERS),
             "--config", str(CONFIG), "--log-level", "info"],
            stdout=out, stderr=out, env=server_environment(db_url))
    server = Server(port, process, log)
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server)


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + SERVER_READY_S
    while True:
        assert server.process.poll() is None, server.text()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                connection.close()
                return
            connection.close()
        except (OSError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline, "fundpool serve did not become ready\n" + \
            server.text()
        time.sleep(0.2)


def stop(server: Server) -> None:
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=SERVER_STOP_S)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def workers_of(server: Server) -> set[int]:
    """The uvicorn worker processes: the serve process's children that listen on its port."""
    return {pid for pid in children(server.pid) if _socket_inodes(pid) & _listening(server)}


def all_workers(server: Server, *, within_s: float, what: str) -> set[int]:
    """The serve process's workers once all `WORKERS` listen."""

    def listening() -> set[int] | None:
        workers = workers_of(server)
        return workers if len(workers) == WORKERS else None

    return wait_until(listening, within_s=within_s, what=what, poll_s=0.2, detail=server.text)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _tcp_rows(state: str, local_port: int) -> list[list[str]]:
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == state and int(fields[1].split(":")[1], 16) == local_port:
            rows.append(fields)
    return rows


def _listening(server: Server) -> set[str]:
    return {fields[9] for fields in _tcp_rows("0A", server.port)}


def busiest_worker(server: Server) -> int:
    """The worker holding the most established client connections: killing it cuts requests
    in flight, whichever worker the kernel handed each connection to."""
    established = {fields[9] for fields in _tcp_rows("01", server.port)}
    workers = workers_of(server)
    assert workers, server.text()
    return max(sorted(workers), key=lambda pid: len(_socket_inodes(pid) & established))


def writer_workers(server: Server) -> list[int]:
    """The workers elected writer worker so far, in order (each says so in the log)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", server.text())
    return [int(pid) for pid in re.findall(r"writer_worker\s+pid=(\d+)", text)]


def writer_worker(server: Server) -> int:
    elected = writer_workers(server)
    assert elected, server.text()
    return elected[-1]


# --- the load --------------------------------------------------------------------------------


@dataclass
class Load:
    answers: list[Answer] = field(default_factory=list)
    connection_errors: int = 0
    server_errors: int = 0
    concurrent_pairs_met: int = 0
    elapsed_s: float = 0.0


def run_load(port: int, token: str, lanes: list[list[Step]], barriers: list[threading.Barrier],
             during: Callable[[Callable[[], int]], None] | None = None) -> Load:
    """Every lane on its own client thread; `during(answered)` runs beside them (the crash)."""
    answered = [0] * len(lanes)
    results: list[list[Answer]] = [[] for _ in lanes]
    clients = [Client(port, token) for _ in lanes]
    met = [0] * len(lanes)
    failures: list[BaseException] = []
    stop = threading.Event()

    def give_up(error: BaseException) -> None:
        failures.append(error)
        stop.set()
        for barrier in barriers:
            barrier.abort()

    def drive(index: int) -> None:
        client = clients[index]
        try:
            for step in lanes[index]:
                if stop.is_set():
                    return
                if step.together is not None:
                    try:
                        step.together.wait(BARRIER_WAIT_S)
                        met[index] += 1
                    except threading.BrokenBarrierError:
                        pass  # the partner failed or is stuck: send alone all the same
                results[index].append(client.transfer(step.spec))
                answered[index] += 1
        except BaseException as error:
            give_up(error)
        finally:
            client.close()

    threads = [threading.Thread(target=drive, args=(i,), name=f"client-{i}")
               for i in range(len(lanes))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        if during is not None:
            during(lambda: sum(answered))
    except BaseException as error:
        give_up(error)
    finally:
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    return Load([a for lane in results for a in lane],
                sum(c.connection_errors for c in clients),
                sum(c.server_errors for c in clients),
                sum(met) // 2, time.monotonic() - started)


# --- set-up and checks -----------------------------------------------------------------------


@dataclass
class Case:
    """What the clients know: every spec by key, and the set-up transfers acknowledged."""

    db_url: str
    schema: str
    token: str
    specs: dict[str, Spec] = field(default_factory=dict)
    funding: list[tuple[Spec, str]] = field(default_factory=list)


def new_case() -> Case:
    schema = new_pg_schema()
    store = PostgresStore(PG_URL, schema=schema)
    store.initialise()
    try:
        _, token = AuthStore.beside(store).create_key(
            "concurrency-test", ["admin"], now_us=SystemClock().now_us())
    finally:
        store.close()
    separator = "&" if "?" in PG_URL else "?"
    return Case(f"{PG_URL}{separator}schema={schema}", schema, token)


def drop(case: Case) -> None:
    store = PostgresStore(PG_URL, schema=case.schema)
    try:
        store.drop_schema()
    finally:
        store.close()


def open_and_fund(client: Client, case: Case) -> None:
    for code, scale in ASSET_SCALES.items():
        client.post("/v1/ledger/assets", {"code": code, "scale": scale, "kind": "fiat"},
                    f"asset-{code}")
    client.post("/v1/ledger/accounts", {"address": WORLD}, "open-world")
    for i in range(CUSTOMERS):
        # Multi-asset and never negative (the default for an account outside world:).
        client.post("/v1/ledger/accounts", {"address": customer(i)}, f"open-{i}")
        for code in ASSET_SCALES:
            spec = Spec(f"fund-{i}-{code}", ((WORLD, customer(i), code, FUNDING_MINOR[code]),))
            answer = client.transfer(spec)
            assert answer.status == 201, answer
            assert answer.entry_id is not None
            case.funding.append((spec, answer.entry_id))


def read_balances(client: Client) -> dict[tuple[str, str], tuple[int, int]]:
    """(posted, available) minor units of every account in every asset it holds, by the API."""
    page = client.get(f"/v1/ledger/accounts?limit={PAGE_LIMIT}")
    assert page["next_cursor"] is None
    balances = {}
    for account in page["data"]:
        address = account["address"]
        for row in client.get(f"/v1/ledger/accounts/{address}/balances")["balances"]:
            balances[address, row["asset"]] = (int(row["posted_minor"]),
                                               int(row["available_minor"]))
    return balances


def journal_transfers(case: Case) -> dict[str, list[tuple[str, tuple[Posting, ...]]]]:
    """Idempotency key -> [(entry id, postings)] of every transfer in the journal."""
    store = PostgresStore(PG_URL, schema=case.schema)
    found: dict[str, list[tuple[str, tuple[Posting, ...]]]] = defaultdict(list)
    try:
        for entry in store.entries():
            if entry.kind != "transfer":
                continue
            body = decode_body(entry.canonical)
            postings = tuple((p["source"], p["destination"], p["asset"], int(p["amount_minor"]))
                             for p in body["postings"])
            found[str(body["idempotency_key"])].append((entry.id, postings))
    finally:
        store.close()
    return found


def check_ledger(client: Client, case: Case, load: Load, *, crashed: bool) -> set[str]:
    """Everything the clients were told is in the ledger, once, and nothing else is; returns
    the keys that were applied."""
    by_key: dict[str, list[Answer]] = defaultdict(list)
    for answer in load.answers:
        by_key[answer.key].append(answer)
    assert set(by_key) == set(case.specs), "a planned transfer has no answer"

    acknowledged: dict[str, str] = {spec.key: entry for spec, entry in case.funding}
    for key, answers in by_key.items():
        statuses = Counter(a.status for a in answers)
        assert set(statuses) <= {200, 201, 409}, (key, answers)
        assert all(a.code == "insufficient_funds" for a in answers if a.status == 409), answers
        assert all(a.replayed == (a.status == 200) for a in answers), answers
        ids = {a.entry_id for a in answers if a.entry_id is not None}
        assert len(ids) <= 1, f"{key} was answered with two entries: {answers}"
        # Without a crash, the one request that applied it answered 201; with one, that
        # answer may have died with the worker and only replays (200) reached the client.
        assert statuses[201] == (1 if ids else 0) or (crashed and statuses[201] == 0), answers
        if ids:
            acknowledged[key] = ids.pop()

    journal = journal_transfers(case)
    doubled = {key: found for key, found in journal.items() if len(found) != 1}
    assert not doubled, f"keys applied more than once: {list(doubled.items())[:3]}"
    assert set(journal) == set(acknowledged), (
        f"applied, never acknowledged: {sorted(set(journal) - set(acknowledged))[:5]}; "
        f"acknowledged, not applied: {sorted(set(acknowledged) - set(journal))[:5]}")
    specs = {**case.specs, **{spec.key: spec for spec, _ in case.funding}}
    for key, [(entry_id, postings)] in journal.items():
        assert entry_id == acknowledged[key], (key, entry_id, acknowledged[key])
        assert postings == specs[key].postings, (key, postings, specs[key].postings)

    expected: dict[tuple[str, str], int] = defaultdict(int)
    for key in acknowledged:
        for source, destination, asset, amount in specs[key].postings:
            expected[source, asset] -= amount
            expected[destination, asset] += amount
    balances = read_balances(client)
    for asset in ASSET_SCALES:
        assert sum(posted for (_, code), (posted, _) in balances.items() if code == asset) == 0
    for (address, asset), (posted, available) in balances.items():
        if address.startswith("customer:"):
            assert posted >= 0, (address, asset, posted)
            assert available >= 0, (address, asset, available)
    for where in set(balances) | set(expected):
        assert balances.get(where, (0, 0))[0] == expected.get(where, 0), where

    verified = client.get("/v1/ledger/verify")
    assert verified["ok"] is True, verified
    assert verified["problem"] is None
    return set(acknowledged)


def check_load_shape(load: Load, case: Case, barriers: list[threading.Barrier]) -> None:
    """The load did what it was for: failures, replays and duplicates sent together."""
    statuses = Counter(a.status for a in load.answers)
    assert statuses[409] > len(case.specs) // 50, statuses  # customers ran out, often
    assert statuses[201] > len(case.specs) // 2, statuses
    assert statuses[200] > len(case.specs) // 50, statuses
    assert load.concurrent_pairs_met > len(barriers) // 2, (load.concurrent_pairs_met,
                                                            len(barriers))


@pytest.fixture
def case() -> Iterator[Case]:
    require_postgres()
    made = new_case()
    try:
        yield made
    finally:
        drop(made)


# --- the tests -------------------------------------------------------------------------------


def test_eight_clients_a_thousand_transfers_each(case: Case, tmp_path: Path) -> None:
    lanes, barriers = make_plan(SEED, "t", TRANSFERS_PER_CLIENT)
    case.specs = {step.spec.key: step.spec for lane in lanes for step in lane}
    with serving(case.db_url, tmp_path / "serve.log") as server:
        client = Client(server.port, case.token)
        open_and_fund(client, case)
        load = run_load(server.port, case.token, lanes, barriers)
        check_load_shape(load, case, barriers)
        assert load.server_errors == 0, server.text()
        applied = check_ledger(client, case, load, crashed=False)
        print(f"{len(load.answers)} answers in {load.elapsed_s:.1f} s "
              f"({len(load.answers) / load.elapsed_s:.0f}/s), {len(applied)} transfers "
              f"applied, {dict(Counter(a.status for a in load.answers))}, "
              f"{load.concurrent_pairs_met} pairs sent together")
        client.close()
    log = server.text()
    assert server.process.returncode in (0, -signal.SIGTERM), log
    assert "Traceback" not in log, log


@pytest.mark.parametrize("victim", ["busiest", "writer"])
def test_a_worker_killed_mid_load_loses_and_doubles_nothing(case: Case, tmp_path: Path,
                                                            victim: str) -> None:
    """`busiest`: the worker holding the most client connections. `writer`: the writer
    worker the others hand their commands to (server/v1/handoff.py), whose death is
    `store_error` for what it had not answered, and another worker's election."""
    lanes, barriers = make_plan(SEED + 1, "k", CRASH_TRANSFERS_PER_CLIENT)
    case.specs = {step.spec.key: step.spec for lane in lanes for step in lane}
    planned = sum(len(lane) for lane in lanes)
    killed: dict[str, Any] = {}
    with serving(case.db_url, tmp_path / "serve.log") as server:
        client = Client(server.port, case.token)
        open_and_fund(client, case)
        before = all_workers(server, within_s=WORKER_START_S,
                             what=f"all {WORKERS} workers to listen")

        def crash(answered: Callable[[], int]) -> None:
            deadline = time.monotonic() + 60
            while answered() < planned * KILL_AT_SHARE:
                assert time.monotonic() < deadline, "the load did not progress"
                time.sleep(0.01)
            pid = busiest_worker(server) if victim == "busiest" else writer_worker(server)
            killed.update(pid=pid, at_answered=answered())
            os.kill(pid, signal.SIGKILL)

        load = run_load(server.port, case.token, lanes, barriers, during=crash)
        after = all_workers(server, within_s=WORKER_RESTART_S,
                            what="uvicorn's supervisor to replace the killed worker")
        assert killed["pid"] not in after
        assert after - before, (before, after)
        log = server.text()
        assert f"Child process [{killed['pid']}] died" in log, log
        assert "Traceback" not in log, log
        # The kill cut requests in flight: clients saw their connection fail (or, for those
        # the writer worker had in hand from other workers, a store_error), and retried.
        cut = load.connection_errors + (load.server_errors if victim == "writer" else 0)
        assert cut > 0, (killed, load.connection_errors, load.server_errors)
        if victim == "writer":
            assert len(writer_workers(server)) == 2, log  # the first, and the one after it
        check_load_shape(load, case, barriers)
        client.close()

    with serving(case.db_url, tmp_path / "serve-again.log") as server:
        client = Client(server.port, case.token)
        applied = check_ledger(client, case, load, crashed=True)
        print(f"killed worker {killed['pid']} after {killed['at_answered']} answers; "
              f"{load.connection_errors} connection errors and {load.server_errors} 5xx "
              f"retried; {len(load.answers)} answers in {load.elapsed_s:.1f} s, "
              f"{len(applied)} transfers applied")
        client.close()
    assert "Traceback" not in server.text(), server.text()
    verify = subprocess.run(
        [str(FUNDPOOL), "ledger", "verify", "--db-url", case.db_url, "--json"],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("FUNDPOOL_")})
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["ok"] is True, verify.stdout
