"""ledger/adjustments.py and pool/ownership.py as values: which postings are adjustments, what
they record, and what is refused; and, on both stores, that an adjustment's entry keeps the
chain verifiable."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fundpool.core.actor import Actor, cli_actor
from fundpool.core.errors import InvalidMetadata
from fundpool.core.ledger.model import (
    METADATA_VALUE_LENGTH_MAX,
    Account,
    CreatePending,
    Posting,
    PostPending,
    Reverse,
    Transfer,
    VoidPending,
)
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.adjustments import (
    REASON_CHARS_MAX,
    AdjustmentPermissionRequired,
    AdjustmentReasonRequired,
    actor_text,
    adjustment_of,
    checked,
    touched,
    with_original_actor,
)
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.pool.accounts import (
    PoolState,
    exposure_merchant,
    merchant_payable,
    pool_account,
    world_account,
)
from fundpool.pool.ownership import owned_by_service, service_owned

POOL = pool_account("main", "USD", "bank-a", PoolState.AVAILABLE)
WORLD = world_account("bank-a")
ADMIN = Actor("user", "u-1", "ops.admin", ("admin",), session_id="s-1", request_id="req-1")


def move(source: str, destination: str, **metadata: str) -> Transfer:
    return Transfer((Posting(source, destination, "USD", 100),), metadata)


def test_the_services_accounts_are_the_pools_merchants_and_exposures() -> None:
    owned = [POOL, pool_account("main", "USDT.TRON", "tron", PoolState.FEES),
             merchant_payable("m42", "USD"), exposure_merchant("main", "USD", "m42")]
    assert all(owned_by_service(a) for a in owned)
    theirs = [WORLD, "customer:c1", "treasury:exact:usd", "poolside:x", "merchants:x"]
    assert not any(owned_by_service(a) for a in theirs)
    assert service_owned([WORLD, POOL, POOL, "customer:c1"]) == [POOL]


def test_a_posting_between_other_accounts_is_unchanged() -> None:
    command = move(WORLD, "customer:c1", ticket="T-1")
    assert checked(command, touched(command, _NoLookups()), owned=owned_by_service,
                   may_adjust=False, reason=None, actor=ADMIN) is command
    # A blank reason says nothing: still an ordinary transfer.
    assert checked(command, ("customer:c1",), owned=owned_by_service, may_adjust=False,
                   reason="  ", actor=ADMIN) is command


@pytest.mark.parametrize("reason", [None, "", "  \t", "a reason"])
def test_without_the_permission_the_pools_money_does_not_move(reason: str | None) -> None:
    command = move(WORLD, POOL)
    with pytest.raises(AdjustmentPermissionRequired) as refused:
        checked(command, touched(command, _NoLookups()), owned=owned_by_service,
                may_adjust=False, reason=reason, actor=ADMIN)
    assert refused.value.facts == {"permission": "ledger:adjust", "accounts": [POOL]}


@pytest.mark.parametrize("reason", [None, "", " \n ", "x" * (REASON_CHARS_MAX + 1), "a\x00b"])
def test_with_the_permission_it_needs_a_reason(reason: str | None) -> None:
    with pytest.raises(AdjustmentReasonRequired):
        checked(move(POOL, WORLD), (POOL, WORLD), owned=owned_by_service, may_adjust=True,
                reason=reason, actor=ADMIN)


def test_an_adjustment_records_its_reason_and_actor() -> None:
    command = move(WORLD, POOL, ticket="OPS-1")
    made = checked(command, (WORLD, POOL), owned=owned_by_service, may_adjust=True,
                   reason="  float correction ", actor=ADMIN)
    assert isinstance(made, Transfer)
    assert made.postings == command.postings
    assert made.metadata["ticket"] == "OPS-1"
    assert made.metadata["kind"] == "adjustment"
    assert made.metadata["reason"] == "float correction"
    assert json.loads(made.metadata["actor"]) == ADMIN.to_dict()
    assert adjustment_of(made.metadata) == {"reason": "float correction",
                                            "actor": ADMIN.to_dict()}
    # A reason on other accounts records the same (it asks to be recorded), with no
    # permission needed: nothing a service owns moves.
    noted = checked(move(WORLD, "customer:c1"), (WORLD, "customer:c1"),
                    owned=owned_by_service, may_adjust=False, reason="why", actor=ADMIN)
    assert adjustment_of(noted.metadata) == {"reason": "why", "actor": ADMIN.to_dict()}


@pytest.mark.parametrize("metadata", [{"kind": "payout"}, {"reason": "x"}, {"actor": "me"}])
def test_the_recorders_keys_are_not_the_callers(metadata: dict[str, str]) -> None:
    with pytest.raises(InvalidMetadata):
        checked(move(WORLD, POOL, **metadata), (WORLD, POOL), owned=owned_by_service,
                may_adjust=True, reason="ok", actor=ADMIN)


def test_nothing_claims_to_be_an_adjustment_it_is_not() -> None:
    with pytest.raises(InvalidMetadata):
        checked(move(WORLD, "customer:c1", kind="adjustment"), (WORLD, "customer:c1"),
                owned=owned_by_service, may_adjust=True, reason=None, actor=ADMIN)
    # Any other kind is the caller's own business.
    plain = move(WORLD, "customer:c1", kind="refund")
    assert checked(plain, (WORLD,), owned=owned_by_service, may_adjust=False, reason=None,
                   actor=ADMIN) is plain
    assert adjustment_of(plain.metadata) is None
    assert adjustment_of({"kind": "adjustment", "actor": "not json"}) == {"reason": None,
                                                                          "actor": None}


def test_a_long_actor_is_cut_to_a_metadata_value() -> None:
    long = Actor("user", "u" * 36, '"' * 200, ("admin", "approver", "auditor", "cashier",
                                               "risk", "viewer"), session_id="s" * 64,
                 request_id="r" * 128)
    text = actor_text(long)
    assert len(text) <= METADATA_VALUE_LENGTH_MAX
    kept = json.loads(text)
    assert (kept["kind"], kept["id"], kept["request_id"]) == ("user", "u" * 36, "r" * 128)
    assert kept["name"]
    assert set(kept["name"]) == {'"'}
    assert json.loads(actor_text(cli_actor("ops"))) == cli_actor("ops").to_dict()


def test_a_retry_takes_the_first_requests_actor_only_from_the_same_principal() -> None:
    first = checked(move(WORLD, POOL), (POOL,), owned=owned_by_service, may_adjust=True,
                    reason="r", actor=ADMIN)
    recorded = _Recorded({"kind": "transfer", "metadata": dict(first.metadata)})
    retry = checked(move(WORLD, POOL), (POOL,), owned=owned_by_service, may_adjust=True,
                    reason="r", actor=ADMIN.with_request("req-2"))
    again = with_original_actor(retry, recorded)  # type: ignore[arg-type]
    assert again is not None
    assert again.metadata == first.metadata
    other = Actor("user", "u-2", "someone", ("admin",), request_id="req-3")
    theirs = checked(move(WORLD, POOL), (POOL,), owned=owned_by_service, may_adjust=True,
                     reason="r", actor=other)
    assert with_original_actor(theirs, recorded) is None  # type: ignore[arg-type]
    assert with_original_actor(retry, None) is None
    plain = _Recorded({"kind": "transfer", "metadata": {}})
    assert with_original_actor(retry, plain) is None  # type: ignore[arg-type]


def test_touched_reads_a_reservation_or_an_entry(ledger: Ledger) -> None:
    _open(ledger)
    ledger.transfer([Posting(WORLD, POOL, "USD", 1_000)])
    pending = ledger.create_pending(Posting(POOL, "customer:c1", "USD", 100), timeout_s=60)
    entry = ledger.transfer([Posting(WORLD, "customer:c1", "USD", 5)])
    for command in (PostPending(pending.id), VoidPending(pending.id)):
        assert touched(command, ledger) == {POOL, "customer:c1"}
    assert touched(Reverse(entry.id), ledger) == {WORLD, "customer:c1"}
    assert touched(CreatePending(Posting(WORLD, POOL, "USD", 1), 60), ledger) == {WORLD, POOL}
    assert touched(PostPending("no-such-pending"), ledger) == frozenset()
    assert touched(Reverse("no-such-entry"), ledger) == frozenset()


def test_an_adjustments_entry_keeps_the_chain_verifiable(ledger: Ledger) -> None:
    _open(ledger)
    command = checked(move(WORLD, POOL), (WORLD, POOL), owned=owned_by_service,
                      may_adjust=True, reason='float "correction" — 修正', actor=ADMIN)
    recorded = ledger.execute(command)
    assert recorded is not None
    assert adjustment_of(recorded.body["metadata"]) == {
        "reason": 'float "correction" — 修正', "actor": ADMIN.to_dict()}
    stored = ledger.entry(recorded.id)
    assert stored is not None
    assert stored.body == recorded.body
    report = verify(ledger.store)
    assert report.ok, report.problem


# --- helpers ---------------------------------------------------------------------------------


class _NoLookups:
    def pending(self, pending_id: str) -> None:
        raise AssertionError("a transfer reads nothing")

    def entry(self, entry_id: str) -> None:
        raise AssertionError("a transfer reads nothing")


class _Recorded:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body


def _open(ledger: Ledger) -> None:
    ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
    for address in (WORLD, POOL, "customer:c1"):
        ledger.open_account(Account(address))
