"""`fundpool.client` against a real server (uvicorn in a thread, SQLite, the example pool), and
its retry policy against mock transports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from openpyxl import load_workbook

from fundpool.approvals.model import NotWaiting
from fundpool.auth.errors import InvalidCredentials
from fundpool.client import (
    ApiError,
    AsyncClient,
    BadRequest,
    BatchTransfer,
    Client,
    Conflict,
    IdempotencyConflict,
    InsufficientFunds,
    NotFound,
    PermissionDenied,
    Posting,
    RateLimited,
    ServerError,
    Unauthorized,
    UnknownAccount,
    Unreachable,
    domain_class,
    error_from_problem,
)
from fundpool.client.approvals import ApprovalOut
from fundpool.core.errors import AlreadyReversed, FundpoolError, UnknownAsset
from fundpool.payments.model import PaymentIdempotencyConflict
from tests.client import LiveServer, live_server
from tests.server.signing import Codes, public_b64, sign_digest
from tests.waiting import wait_for_clock_past

WORLD = "world:bank-a"
USD = "pool:main:usd:bank-a:available"
USD_LOCKED = "pool:main:usd:bank-a:locked"
ETH_WORLD = "world:eth-l1"
ETH = "pool:main:eth:eth-l1:available"
# The pool's accounts move through its services; a raw posting on them is an admin's
# adjustment, with a reason (ledger/adjustments.py).
SET_UP = "test set-up: the pool in a known state"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("client") / "data") as live:
        yield live


@pytest.fixture
def api(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key, backoff_s=0.0) as client:
        yield client


def fund(api: Client, amount: str = "100.00", address: str = USD) -> None:
    api.transfer([Posting(WORLD, address, "USD", amount)], reason=SET_UP)


def available(api: Client, address: str, asset: str) -> str:
    found = api.balances(address)
    return next((b.available for b in found.balances if b.asset == asset), "0")


# --- amounts and idempotency -------------------------------------------------------------------


def test_transfers_move_exact_decimal_amounts(api: Client) -> None:
    api.open_account("treasury:exact:usd", "USD")
    api.open_account("treasury:exact:eth", "ETH")
    for amount in ("0.10", Decimal("0.20")):
        entry = api.transfer([Posting(WORLD, "treasury:exact:usd", "USD", amount)])
        assert entry.status == "applied"
    assert available(api, "treasury:exact:usd", "USD") == "0.30"

    wei = "1.000000000000000001"
    entry = api.transfer([{"source": ETH_WORLD, "destination": "treasury:exact:eth",
                           "asset": "ETH", "amount": wei}], metadata={"why": "test"})
    assert entry.postings[0].amount == wei
    assert entry.postings[0].amount_minor == "1000000000000000001"
    assert entry.metadata == {"why": "test"}
    balance = api.balances("treasury:exact:eth").balances[0]
    assert (balance.available, balance.available_minor) == (wei, "1000000000000000001")


def test_float_amounts_are_refused_before_anything_is_sent(server: LiveServer) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"nothing may be sent: {request.method} {request.url}")

    with pytest.raises(TypeError, match="float"):
        Posting(WORLD, USD, "USD", 1.5)  # type: ignore[arg-type]
    with Client(server.url, server.admin_key, transport=httpx.MockTransport(refuse)) as api:
        with pytest.raises(TypeError, match="float"):
            api.transfer([{"source": WORLD, "destination": USD, "asset": "USD", "amount": 0.1}])
        with pytest.raises(TypeError, match="int"):
            api.transfer([{"source": WORLD, "destination": USD, "asset": "USD", "amount": 10}])
        with pytest.raises(TypeError, match="float"):
            api.post_pending("p", 2.5)  # type: ignore[arg-type]


def test_the_same_idempotency_key_returns_the_same_entry(api: Client) -> None:
    before = Decimal(available(api, USD, "USD"))
    posting = Posting(WORLD, USD, "USD", "7.25")
    first = api.transfer([posting], idempotency_key="same-key-1", reason=SET_UP)
    again = api.transfer([posting], idempotency_key="same-key-1", reason=SET_UP)
    assert (first.status, again.status) == ("applied", "replayed")
    assert again.id == first.id
    assert again.seq == first.seq
    assert Decimal(available(api, USD, "USD")) == before + Decimal("7.25")

    with pytest.raises(IdempotencyConflict) as caught:
        api.transfer([Posting(WORLD, USD, "USD", "7.26")], idempotency_key="same-key-1",
                     reason=SET_UP)
    assert isinstance(caught.value, Conflict)
    assert caught.value.status == 409


class DropFirstAnswer(httpx.HTTPTransport):
    """Delivers the first POST to the server, then loses its answer (a reset connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method != "POST":
            return response
        self.keys.append(request.headers.get("Idempotency-Key"))
        if len(self.keys) == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection reset after the server answered",
                                  request=request)
        return response


def test_a_retry_after_a_lost_answer_does_not_transfer_twice(
    server: LiveServer, api: Client
) -> None:
    before = Decimal(available(api, USD, "USD"))
    head = api.transactions(limit=1).data[0].seq
    dropping = DropFirstAnswer()
    with Client(server.url, server.admin_key, transport=dropping, backoff_s=0.0) as flaky:
        entry = flaky.transfer([Posting(WORLD, USD, "USD", "3.00")], reason=SET_UP)
    # The first attempt was applied; its retry, with the same key, found it (an adjustment
    # too: the retry's new request id does not make it another request).
    assert entry.status == "replayed"
    assert len(dropping.keys) == 2
    assert dropping.keys[0] is not None
    assert dropping.keys[0] == dropping.keys[1]
    assert entry.idempotency_key == dropping.keys[0]
    assert Decimal(available(api, USD, "USD")) == before + Decimal("3.00")
    assert [e.id for e in api.transactions(limit=10).data if e.seq > head] == [entry.id]


def test_each_call_draws_its_own_key(server: LiveServer, api: Client) -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> None:
        seen.append(request.headers["Idempotency-Key"])

    with Client(server.url, server.admin_key) as keyed:
        keyed._http.event_hooks["request"] = [record]
        first = keyed.transfer([Posting(WORLD, USD, "USD", "1.00")], reason=SET_UP)
        second = keyed.transfer([Posting(WORLD, USD, "USD", "1.00")], reason=SET_UP)
    assert len(set(seen)) == 2
    assert first.id != second.id
    assert second.status == "applied"


# --- errors ----------------------------------------------------------------------------------


def test_domain_errors_are_raised_as_the_domain_classes_with_their_facts(api: Client) -> None:
    api.open_account("treasury:poor", "USD")
    with pytest.raises(InsufficientFunds) as caught:
        api.transfer([Posting("treasury:poor", WORLD, "USD", "5.00")])
    error = caught.value
    assert error.code == "insufficient_funds"
    assert isinstance(error, Conflict)
    assert isinstance(error, ApiError)
    assert error.status == 409
    assert error.facts["account"] == "treasury:poor"
    assert error.facts["requested_minor"] == 500
    assert error.facts["available_minor"] == 0
    assert error.request_id
    assert error.to_dict()["code"] == "insufficient_funds"
    assert "insufficient_funds" in str(error)

    with pytest.raises(UnknownAccount) as missing:
        api.balances("treasury:nobody")
    assert missing.value.facts == {"address": "treasury:nobody"}
    assert isinstance(missing.value, NotFound)
    assert missing.value.status == 404

    with pytest.raises(UnknownAsset):
        api.transfer([Posting(WORLD, USD, "XAU", "1")])

    with pytest.raises(NotFound) as no_route:
        api.transaction("no-such-entry")
    assert no_route.value.code == "unknown_transaction"


def test_a_bad_key_is_401_and_a_viewer_key_is_403(server: LiveServer) -> None:
    wrong = server.admin_key[:-1] + ("A" if server.admin_key[-1] != "A" else "B")
    with Client(server.url, wrong) as api, pytest.raises(Unauthorized) as caught:
        api.me()
    assert caught.value.status == 401
    assert caught.value.code == "invalid_credentials"
    assert isinstance(caught.value, InvalidCredentials)

    with Client(server.url) as anonymous, pytest.raises(Unauthorized):
        anonymous.balances(USD)

    with Client(server.url, server.viewer_key) as viewer:
        assert viewer.me().roles == ["viewer"]
        assert viewer.balances(USD).address == USD  # reading is allowed
        with pytest.raises(PermissionDenied) as refused:
            viewer.transfer([Posting(WORLD, USD, "USD", "1.00")])
    assert refused.value.status == 403
    assert refused.value.code == "forbidden"
    assert refused.value.facts["permission"] == "ledger:write"


def test_shared_codes_map_to_the_core_class() -> None:
    assert domain_class("idempotency_conflict") is IdempotencyConflict
    assert domain_class("insufficient_funds") is InsufficientFunds
    assert domain_class("no_such_code") is None
    error = error_from_problem({"code": "idempotency_conflict", "status": 409,
                                "title": "t", "detail": "d", "facts": {"detail": "a fact"}})
    assert isinstance(error, IdempotencyConflict)
    assert not isinstance(error, PaymentIdempotencyConflict)
    assert error.facts == {"detail": "a fact"}  # a fact may be named like an argument
    assert error.detail == "d"


def test_http_only_codes_are_status_family_errors() -> None:
    error = error_from_problem({"code": "too_many_requests", "detail": "slow down",
                                "facts": {"retry_after_s": 2}}, status=429)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 2.0
    assert type(error).__name__ == "TooManyRequests"
    server = error_from_problem({}, status=502)
    assert isinstance(server, ServerError)
    assert server.code == "bad_gateway"
    assert isinstance(error_from_problem({"code": "internal_error"}, status=500), FundpoolError)


# --- retries ---------------------------------------------------------------------------------


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "application/problem+json",
                                           **headers},
                          content=json.dumps({"type": f"/problems/{code}", "title": code,
                                              "status": status, "detail": code,
                                              "code": code}).encode())


Answer = Callable[[], httpx.Response | Exception]


def scripted(answers: list[Answer]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport that gives `answers` in turn (an exception: the connection failed)."""
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        answer = answers[len(sent) - 1]()
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), sent


def test_retries_keep_the_key_and_honour_retry_after() -> None:
    transport, sent = scripted([
        lambda: problem(503, "store_error"),
        lambda: problem(429, "too_many_requests", **{"Retry-After": "0"}),
        lambda: problem(409, "idempotency_in_progress"),
        lambda: httpx.ConnectError("connection refused"),
        lambda: httpx.Response(201, json={"status": "applied",
                                          "asset": {"code": "USD", "scale": 2, "kind": "fiat"}}),
    ])
    with Client("http://fundpool.test", "k", retries=4, backoff_s=0.0,
                transport=transport) as api:
        result = api.define_asset("USD", 2, "fiat")
    assert result.status == "applied"
    assert len(sent) == 5
    assert len({request.headers["Idempotency-Key"] for request in sent}) == 1


def test_other_answers_are_not_retried_and_retries_end() -> None:
    transport, sent = scripted([lambda: problem(409, "insufficient_funds")] * 3)
    with Client("http://fundpool.test", "k", backoff_s=0.0, transport=transport) as api, \
            pytest.raises(InsufficientFunds):
        api.transfer([Posting("a", "b", "USD", "1")])
    assert len(sent) == 1

    transport, sent = scripted([lambda: problem(504, "gateway_timeout")] * 3)
    with Client("http://fundpool.test", "k", retries=2, backoff_s=0.0,
                transport=transport) as api, pytest.raises(ServerError) as caught:
        api.assets()
    assert len(sent) == 3
    assert caught.value.status == 504

    transport, sent = scripted([lambda: problem(429, "too_many_requests",
                                                **{"Retry-After": "3600"})])
    with Client("http://fundpool.test", "k", backoff_s=0.0, transport=transport) as api, \
            pytest.raises(RateLimited) as limited:
        api.assets()
    assert limited.value.retry_after == 3600.0  # longer than the client waits: raised
    assert len(sent) == 1


def test_no_server_is_unreachable() -> None:
    with Client("http://127.0.0.1:9", "k", retries=1, backoff_s=0.0, timeout=2.0) as api, \
            pytest.raises(Unreachable) as caught:
        api.me()
    assert caught.value.code == "unreachable"
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


# --- lists, two-phase, reversals, credentials --------------------------------------------------


def test_pagination_iterators_return_every_account_exactly_once(api: Client) -> None:
    everything = [a.address for a in api.accounts(limit=1_000).data]
    assert len(everything) > 50
    paged = [a.address for a in api.iter_accounts(limit=7)]
    assert paged == sorted(everything)
    assert len(set(paged)) == len(paged)
    backwards = [a.address for a in api.iter_accounts(sort="-address", limit=9)]
    assert backwards == sorted(everything, reverse=True)
    usd = [a.address for a in api.iter_accounts(prefix="pool:main:usd:", asset="USD", limit=4)]
    assert usd == sorted(a for a in everything if a.startswith("pool:main:usd:"))

    journal = list(api.iter_transactions(limit=13))
    assert [e.seq for e in journal] == list(range(journal[0].seq, 0, -1))
    fund(api, "1.00")
    fund(api, "2.00")
    history = list(api.iter_history(USD, limit=1))
    assert len({row.seq for row in history}) == len(history)
    assert [row.seq for row in history] == sorted((row.seq for row in history), reverse=True)


def test_two_phase_transfers_and_reversals(api: Client) -> None:
    fund(api, "50.00")
    created = api.create_pending(Posting(USD, USD_LOCKED, "USD", "20.00"), timeout_s=600,
                                 reason=SET_UP)
    assert created.pending_id is not None
    assert api.pending(created.pending_id).state == "pending"
    posted = api.post_pending(created.pending_id, "12.50", reason=SET_UP)
    assert (posted.posted, posted.released) == ("12.50", "7.50")
    assert posted.adjustment is not None
    assert posted.adjustment.reason == SET_UP
    with pytest.raises(FundpoolError) as finished:
        api.void_pending(created.pending_id, reason=SET_UP)
    assert finished.value.code == "pending_already_finished"

    another = api.create_pending({"source": USD, "destination": USD_LOCKED, "asset": "USD",
                                  "amount": "1.00"}, reason=SET_UP)
    assert another.pending_id is not None
    voided = api.void_pending(another.pending_id, metadata={"why": "test"}, reason=SET_UP)
    assert voided.released == "1.00"

    moved = api.transfer([Posting(WORLD, USD, "USD", "4.00")], reason=SET_UP)
    reversal = api.reverse(moved.id, reason=SET_UP)
    assert reversal.reverses == moved.id
    with pytest.raises(AlreadyReversed):
        api.reverse(moved.id, reason=SET_UP)
    assert api.transaction(moved.id).id == moved.id


def test_batches_report_each_transfer(api: Client) -> None:
    api.open_account("treasury:batch", "USD")
    result = api.transfer_batch([
        [Posting(WORLD, "treasury:batch", "USD", "1.00")],
        BatchTransfer([Posting("treasury:batch", WORLD, "USD", "9.00")]),
    ], idempotency_key="batch-1")
    assert (result.applied, result.rejected) == (1, 1)
    failed = result.results[1].error
    assert failed is not None
    error = error_from_problem(failed.model_dump())
    assert isinstance(error, InsufficientFunds)
    again = api.transfer_batch([[Posting(WORLD, "treasury:batch", "USD", "1.00")]],
                               idempotency_key="batch-1")
    assert again.replayed == 1


def test_verify_pools_and_the_pool_view(api: Client) -> None:
    report = api.verify()
    assert report.ok
    assert report.problem is None
    (pool,) = api.pools()
    assert pool.id == "main"
    view = api.pool_view("main")
    assert view.pool == "main"
    assert view.reporting_currency == "USD"


def test_the_pool_view_at_a_past_seq_or_instant(api: Client) -> None:
    fund(api, "40.00")
    then = api.pool_view("main")
    then_at = api.transactions(limit=1).data[0].at
    assert api.pool_view("main", seq=then.as_of_seq) == then
    wait_for_clock_past(then_at)  # later entries carry a later instant
    fund(api, "2.50")
    api.transfer([Posting(USD, USD_LOCKED, "USD", "1.25")], reason=SET_UP)
    now = api.pool_view("main")
    assert now.as_of_seq == then.as_of_seq + 2
    assert now.assets != then.assets
    assert api.pool_view("main", seq=then.as_of_seq) == then
    assert api.pool_view("main", at=then_at) == then
    moment = datetime.fromisoformat(then_at.replace("Z", "+00:00"))
    assert api.pool_view("main", at=moment.astimezone(timezone(timedelta(hours=8)))) == then
    with pytest.raises(BadRequest) as caught:
        api.pool_view("main", at=then_at, seq=1)
    assert caught.value.code == "conflicting_parameters"
    with pytest.raises(BadRequest) as caught:
        api.pool_view("main", seq=now.as_of_seq + 1_000)
    assert (caught.value.code, caught.value.facts["head_seq"]) == ("seq_beyond_head",
                                                                   now.as_of_seq)
    with pytest.raises(ValueError, match="aware"):
        api.pool_view("main", at=datetime(2026, 1, 1))  # naive: refused


def test_keys_and_sessions(server: LiveServer, api: Client) -> None:
    created = api.create_key("client-test", ["viewer"])
    assert created.token.startswith("fpk_")
    listed = api.keys()
    assert created.key.id in {k.id for k in listed}
    with Client(server.url, created.token) as viewer:
        assert viewer.me().name == "client-test"
    rotated = api.rotate_key(created.key.id, grace_s=0)
    assert rotated.token != created.token
    revoked = api.revoke_key(rotated.key.id)
    assert revoked.state == "revoked"

    api.create_user("client-cashier", "a long enough password", ["cashier"])
    api.open_account("treasury:cashier", "USD")
    with Client(server.url) as person:
        session = person.login("client-cashier", "a long enough password")
        assert session.token.startswith("fps_")
        me = person.me()
        assert (me.kind, me.name) == ("user", "client-cashier")
        assert person.transfer([Posting(WORLD, "treasury:cashier", "USD", "1.00")]
                               ).status == "applied"
        # The pool's money is not a cashier's to move by hand, reason or not.
        with pytest.raises(PermissionDenied) as refused:
            person.transfer([Posting(WORLD, USD, "USD", "1.00")], reason="top-up")
        assert refused.value.code == "adjustment_permission_required"
        person.logout()
        with pytest.raises(Unauthorized):
            person.me()


# --- payments, channels, monitoring ---------------------------------------------------------

IBAN = "DE89370400440532013000"
# Line 5 needs an approver (USD 10,000 and up); line 6 has a formula and too many decimals.
PAYOUTS = b"""payee,account,amount,asset,reference,channel
Alice,DE89370400440532013000,120.50,EUR,inv-1,
Bob,GB29NWBK60161331926819,99.00,EUR,inv-2,sepa
Carol,US-ACCT-1,250.00,USD,inv-3,rtp
Dora,US-ACCT-2,25000.00,USD,inv-4,
=HYPERLINK("x"),ACC,1.005,USD,inv-5,
"""


@dataclass(frozen=True)
class ClientSigner:
    """A client's principal with a TOTP authenticator and a registered signing key."""

    api: Client
    private: Ed25519PrivateKey
    key_id: str

    def sign(self, payment_id: str) -> ApprovalOut:
        view = self.api.approval(payment_id)
        return self.api.sign_approval(payment_id, self.key_id,
                                      sign_digest(self.private, view.digest), view.digest)


def enrol(api: Client) -> ClientSigner:
    """Begin TOTP enrolment and register a new key with a code, through the client."""
    begun = api.begin_totp()
    assert begun.secret is not None
    private = Ed25519PrivateKey.generate()
    key = api.register_signing_key(public_b64(private), "laptop", Codes(begun.secret).code())
    assert key.active
    assert api.totp_status().enrolled
    return ClientSigner(api, private, key.id)


def test_payments_are_created_read_listed_and_moved(server: LiveServer,
                                                    api: Client) -> None:
    # Enough on each rail for both 25,000.00 payouts below on any one of them: which rail the
    # router picks depends on the hour (bank-a's cut-off closes at 21:00 UTC), and the second
    # must not find every rail short.
    for channel, asset in (("sepa", "EUR"), ("rtp", "USD"), ("bank-a", "USD")):
        api.transfer([Posting(f"world:{channel}", f"pool:main:{asset.lower()}:{channel}:"
                              "available", asset, "100000.00")], reason=SET_UP)
    created = api.create_payment("payout", "USD", Decimal("12.50"), counterparty="Bob",
                                 metadata={"order": "42"}, idempotency_key="payment-1",
                                 destination=IBAN)
    assert created.destination == IBAN
    assert created.initiated_by is not None
    assert created.initiated_by.kind == "key"
    assert (created.state, created.amount, created.amount_minor) == ("initiated", "12.50",
                                                                     "1250")
    again = api.create_payment("payout", "USD", "12.50", counterparty="Bob",
                               metadata={"order": "42"}, idempotency_key="payment-1",
                               destination=IBAN)
    assert again.id == created.id
    with pytest.raises(IdempotencyConflict):
        api.create_payment("payout", "USD", "12.51", idempotency_key="payment-1",
                           destination=IBAN)

    detail = api.payment(created.id)
    assert [event.action for event in detail.events] == ["create"]
    assert [e.to for e in api.payment_events(created.id)] == ["initiated"]
    assert created.id in [p.id for p in api.iter_payments(state="initiated", limit=1)]
    cancelled = api.cancel_payment(created.id, "changed our mind")
    assert cancelled.state == "cancelled"
    admin = enrol(api)
    with pytest.raises(NotWaiting) as illegal:
        admin.sign(created.id)
    assert isinstance(illegal.value, Conflict)
    assert illegal.value.facts["state"] == "cancelled"

    batch = api.upload_payouts(PAYOUTS)
    assert (batch.valid_count, batch.invalid_count) == (4, 1)
    rows = {row.line: row for row in batch.rows}
    assert [e.code for e in rows[6].errors] == ["formula_injection", "bad_amount"]
    waiting = rows[5].payment_id
    assert waiting is not None
    assert rows[5].state == "pending_approval"
    # Four eyes: the uploader (this admin key) may not sign its own payout; another may.
    with pytest.raises(PermissionDenied) as own:
        admin.sign(waiting)
    assert own.value.code == "self_approval"
    assert api.approval(waiting).stages[0].signed == []
    approver = api.create_key("client-approver", ["approver"])
    with Client(server.url, approver.token, backoff_s=0.0) as second:
        signer = enrol(second)
        approved = signer.sign(waiting)
        assert (approved.state, approved.payment["state"]) == ("approved", "approved")
        assert [s.key_id for s in approved.stages[0].signed] == [signer.key_id]
        with pytest.raises(NotWaiting):
            signer.sign(waiting)
    declined = api.upload_payouts(PAYOUTS.replace(b"inv-4", b"inv-4b"))
    to_decline = next(row.payment_id for row in declined.rows if row.line == 5)
    assert to_decline is not None
    with Client(server.url, approver.token, backoff_s=0.0) as second:
        rejected = second.reject_approval(to_decline, "payee not on the vendor list")
    assert (rejected.state, rejected.payment["state"]) == ("rejected", "rejected")
    assert rejected.rejections[0].note == "payee not on the vendor list"
    progress = api.payout_batch(batch.batch_id)
    assert (progress.total, progress.by_state) == (4, {"approved": 4})
    # Sent again (as text this time), the file pays no row twice.
    assert api.upload_payouts(PAYOUTS.decode()).payment_ids == batch.payment_ids
    dry = api.upload_payouts(PAYOUTS, dry_run=True)
    assert (dry.dry_run, dry.payment_ids, dry.progress) == (True, [], None)


def test_the_reconciliation_export_as_csv_and_xlsx(server: LiveServer, api: Client) -> None:
    # Creation refuses a payout beyond the pool's available funds.
    api.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available", "USD", "10.00")],
                 reason=SET_UP)
    first = api.create_payment("payout", "USD", "3.30", counterparty="=2+5",
                               reference="export-1", destination=IBAN)
    second = api.create_payment("payout", "USD", Decimal("0.07"), counterparty="Eve",
                                destination=IBAN)
    since = datetime.fromisoformat(first.created_at.replace("Z", "+00:00"))
    until = datetime.fromisoformat(second.created_at.replace("Z", "+00:00")) \
        + timedelta(microseconds=1)
    data = api.export_payments(since, until, "csv")
    assert isinstance(data, bytes)
    table = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert table[0][:3] == ["payment_id", "created_at", "kind"]
    rows = {row[0]: row for row in table[1:]}
    assert [row[0] for row in table[1:]] == [first.id, second.id]
    assert rows[first.id][5:10] == ["3.30", "0.00", "", "'=2+5", "export-1"]
    # `to` is excluded: ending at the second payment's creation leaves it out.
    before_second = api.export_payments(first.created_at, second.created_at, "csv")
    assert second.id.encode() not in before_second
    assert first.id.encode() in before_second

    workbook = load_workbook(io.BytesIO(api.export_payments(since, until, "xlsx", pool="main")))
    values = [[cell.value or "" for cell in row] for row in workbook.active.iter_rows()]
    assert values == table
    with pytest.raises(BadRequest) as caught:
        api.export_payments(until, since, "csv")
    assert caught.value.code == "invalid_period"
    with pytest.raises(BadRequest) as caught:
        api.export_payments(since, since + timedelta(days=32), "csv")
    assert caught.value.code == "invalid_period"
    with pytest.raises(NotFound):
        api.export_payments(since, until, "csv", pool="nope")

    async def run() -> bytes:
        async with AsyncClient(server.url, server.viewer_key) as aio:
            return await aio.export_payments(first.created_at, until, "csv")

    assert asyncio.run(run()) == data


def test_channels_and_monitoring(api: Client) -> None:
    channels = {c.id: c for c in api.channels()}
    assert channels["bank-a"].name == "Bank A wire"
    assert api.channel("sepa").assets == ["EUR"]
    assert list(api.iter_route_decisions(limit=2)) is not None
    assert list(api.iter_channel_batches(limit=2)) is not None
    figures = api.figures("main", hours=1)
    assert figures.pool == "main"
    assert api.kpi_templates()
    assert api.kpis("main").pool == "main"
    assert api.alerts(state="active").data == []
    assert list(api.iter_alerts()) == []
    assert api.slos().slos == []
    assert isinstance(api.series_metrics("main"), list)


# --- the async client ------------------------------------------------------------------------


def test_the_async_client_does_the_same(server: LiveServer, api: Client) -> None:
    async def run() -> None:
        async with AsyncClient(server.url, server.admin_key, backoff_s=0.0) as aio:
            await aio.open_account("treasury:async", "USD")
            entry = await aio.transfer([Posting(WORLD, "treasury:async", "USD", "0.07")],
                                       idempotency_key="async-1")
            again = await aio.transfer([Posting(WORLD, "treasury:async", "USD", "0.07")],
                                       idempotency_key="async-1")
            assert (entry.status, again.status, again.id) == ("applied", "replayed", entry.id)
            balances = await aio.balances("treasury:async")
            assert balances.balances[0].available == "0.07"
            with pytest.raises(InsufficientFunds) as caught:
                await aio.transfer([Posting("treasury:async", WORLD, "USD", "0.08")])
            assert caught.value.facts["requested_minor"] == 8
            assert isinstance(caught.value, ApiError)
            assert caught.value.request_id
            addresses = [a.address async for a in aio.iter_accounts(limit=11)]
            assert addresses == [a.address for a in api.iter_accounts(limit=1_000)]
            with pytest.raises(TypeError, match="float"):
                aio.transfer([{"source": WORLD, "destination": USD, "asset": "USD",
                               "amount": 0.5}])
        async with AsyncClient(server.url, server.viewer_key) as viewer:
            with pytest.raises(PermissionDenied):
                await viewer.transfer([Posting(WORLD, USD, "USD", "1.00")])

    asyncio.run(run())


def test_the_async_client_in_process(server: LiveServer) -> None:
    """`httpx.ASGITransport` serves the app without a socket (its lifespan already runs in
    the server's thread)."""

    async def run() -> None:
        transport = httpx.ASGITransport(app=server.app)
        async with AsyncClient("http://fundpool.test", server.admin_key,
                               transport=transport) as aio:
            assert (await aio.me()).name == "tests-admin"
            assert [p.id for p in await aio.pools()] == ["main"]

    asyncio.run(run())


def test_urls_and_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="http"):
        Client("127.0.0.1:8000")
    with pytest.raises(ValueError, match="retries"):
        Client("http://x", retries=99)
