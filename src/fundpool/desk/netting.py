"""Continuous net settlement between the pool's participants (treasury/netting.py).

Participants are the pool's merchants (their claim on the pool, `merchant:<id>:<asset>:payable`,
is their liquidity) and the partners the desk's file names (partner pools, agents: each has
`partner:<id>:<asset>:payable`, opened by the desk). An obligation (payer owes payee an amount
of one asset) is recorded `queued`. A cycle takes the queued obligations of one asset, nets
them multilaterally and settles only the net positions, in ONE ledger transaction through
`netting:<pool>:<asset>:clearing` (each payer's net to clearing, clearing to each payee's net:
the clearing account ends every cycle at zero). A participant whose balance cannot cover its
net debit is short of liquidity: gridlock resolution settles the largest feasible subset
(every balance stays >= 0) and the rest stays queued for the next cycle.

A cycle is written `settling` with its obligations before its ledger entry, whose idempotency
key is `net-<cycle id>`, then `settled` with the obligations: a crash in between is finished by
the next cycle (the entry replays, never posts twice). Efficiency = 1 - (sum of positive net
positions) / gross, per cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from fundpool.core.actor import Actor
from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Account, Posting
from fundpool.desk.fx import actor_text
from fundpool.desk.ports import DeskAction, DeskObject, DeskStore
from fundpool.ledger.service import Ledger
from fundpool.pool.accounts import asset_segment, merchant_payable
from fundpool.pool.config import FundpoolConfig, OwnerKind, PoolConfig
from fundpool.treasury import netting

OBLIGATION, CYCLE = "obligation", "cycle"
QUEUED, SETTLED = "queued", "settled"
SETTLING = "settling"
OBLIGATIONS_PER_CALL_MAX = 10_000
OBLIGATIONS_PER_CYCLE_MAX = 100_000


class InvalidNetting(FundpoolError):
    code = "invalid_netting"
    title = "the obligation or cycle is not valid"


def partner_account(partner: str, asset: str) -> str:
    return f"partner:{partner}:{asset_segment(asset)}:payable"


def clearing_account(pool: str, asset: str) -> str:
    return f"netting:{pool}:{asset_segment(asset)}:clearing"


def partner_opening(pool: str, partner: str, asset: str) -> Account:
    """A partner's account as the desk opens it (the same flags every time: opening it again
    then changes nothing)."""
    return Account(partner_account(partner, asset), asset=asset,
                   metadata={"pool": pool, "partner": partner})


@dataclass(frozen=True, slots=True)
class ObligationRequest:
    payer: str
    payee: str
    asset: str
    amount_minor: int
    reference: str | None = None


class NettingDesk:
    def __init__(self, ledger: Ledger, store: DeskStore, config: FundpoolConfig,
                 pool: PoolConfig, partners: Sequence[str], *, clock: Clock,
                 ids: IdSource) -> None:
        self.ledger = ledger
        self.store = store
        self.config = config
        self.pool = pool
        self.clock = clock
        self.ids = ids
        self.merchants = {o.id for o in config.owners if o.kind is OwnerKind.MERCHANT}
        self.partners = set(partners)
        channels = {c.id: c for c in config.channels}
        self.assets = sorted({code for cid in pool.channels for code in channels[cid].assets})

    @property
    def participants(self) -> list[str]:
        return sorted(self.merchants | self.partners)

    def account(self, participant: str, asset: str) -> str:
        if participant in self.merchants:
            return merchant_payable(participant, asset)
        return partner_account(participant, asset)

    def balance(self, participant: str, asset: str) -> int:
        try:
            return self.ledger.balance(self.account(participant, asset), asset).available
        except FundpoolError:  # a partner's account not opened yet: it holds nothing
            return 0

    # --- obligations ------------------------------------------------------------------------

    def record(self, requests: Sequence[ObligationRequest], *, actor: Actor | None = None
               ) -> list[DeskObject]:
        """Queue obligations for the next cycle; all or none (each is checked first)."""
        if not requests or len(requests) > OBLIGATIONS_PER_CALL_MAX:
            raise InvalidNetting("between 1 and 10,000 obligations per call",
                                 obligations=len(requests),
                                 obligations_max=OBLIGATIONS_PER_CALL_MAX)
        known = set(self.participants)
        for index, r in enumerate(requests):
            for who in (r.payer, r.payee):
                if who not in known:
                    raise netting.UnknownParticipant(participant=who, obligation=index)
            if r.asset not in self.assets:
                raise InvalidNetting("the pool holds no such asset", asset=r.asset,
                                     obligation=index)
            if r.payer == r.payee or r.amount_minor <= 0:
                raise netting.InvalidObligation(
                    "an obligation is between two participants, for a positive amount",
                    obligation=index)
        now = self.clock.now_us()
        objects = [DeskObject(self.pool.id, OBLIGATION, self.ids.new_id(now), QUEUED, now, now,
                              actor, {"payer": r.payer, "payee": r.payee, "asset": r.asset,
                                      "amount_minor": str(r.amount_minor),
                                      "reference": r.reference})
                   for r in requests]
        self.store.add(objects, DeskAction(now, "netting.record", OBLIGATION, objects[0].id,
                                           actor, {"pool": self.pool.id,
                                                   "obligations": len(objects)}))
        return objects

    def queued(self, asset: str | None = None, limit: int = OBLIGATIONS_PER_CYCLE_MAX
               ) -> list[DeskObject]:
        found = self.store.find(self.pool.id, OBLIGATION, [QUEUED], limit)
        found.sort(key=lambda o: (o.created_at_us, o.id))  # first come, first settled
        return [o for o in found if asset is None or o.body["asset"] == asset]

    def cycles(self, limit: int = 100) -> list[DeskObject]:
        return self.store.find(self.pool.id, CYCLE, None, limit)

    # --- a cycle ----------------------------------------------------------------------------

    def run_cycle(self, asset: str, *, actor: Actor | None = None) -> DeskObject:
        """Net and settle the queued obligations of `asset` (finishing an interrupted cycle
        first)."""
        if asset not in self.assets:
            raise InvalidNetting("the pool holds no such asset", asset=asset)
        for stuck in self.store.find(self.pool.id, CYCLE, [SETTLING], 10):
            if stuck.body["asset"] == asset:
                self._finish(stuck, actor)
        queued = self.queued(asset)
        obligations = [netting.Obligation(o.body["payer"], o.body["payee"],
                                          int(o.body["amount_minor"])) for o in queued]
        participants = sorted({p for ob in obligations for p in (ob.payer, ob.payee)})
        for who in participants:
            if who not in self.merchants:  # a merchant's payable is the pool's own
                self.ledger.open_account(partner_opening(self.pool.id, who, asset))
        self.ledger.open_account(Account(clearing_account(self.pool.id, asset), asset=asset,
                                         metadata={"pool": self.pool.id}))
        balances = {who: self.balance(who, asset) for who in participants}
        gross = netting.net(obligations)
        result = netting.settle(obligations, balances)
        settled = [queued[i] for i in result.settled]
        now = self.clock.now_us()
        cycle_id = self.ids.new_id(now)
        positions = {p: n for p, n in result.positions.items() if n != 0}
        body: dict[str, Any] = {
            "asset": asset, "obligations": len(queued), "settled": len(settled),
            "queued": len(queued) - len(settled),
            "gross_minor": str(gross.gross_minor), "net_minor": str(gross.net_minor),
            "efficiency": str(gross.efficiency),
            "settled_gross_minor": str(sum(obligations[i].amount_minor
                                           for i in result.settled)),
            "settled_efficiency": str(result.efficiency),
            "positions": {p: str(n) for p, n in sorted(positions.items())},
            "obligation_ids": [o.id for o in settled],
            "short": sorted(p for p in participants
                            if balances[p] + gross.positions.get(p, 0) < 0)}
        cycle = DeskObject(self.pool.id, CYCLE, cycle_id, SETTLING, now, now, actor, body)
        self.store.add([cycle], DeskAction(now, "netting.cycle", CYCLE, cycle_id, actor,
                                           {"pool": self.pool.id, "asset": asset,
                                            "settled": len(settled),
                                            "queued": body["queued"]}))
        return self._finish(cycle, actor)

    def _finish(self, cycle: DeskObject, actor: Actor | None) -> DeskObject:
        asset = cycle.body["asset"]
        clearing = clearing_account(self.pool.id, asset)
        # Net payers first, then net payees: in chunks, clearing never goes below zero.
        positions = sorted(((int(t), who) for who, t in cycle.body["positions"].items()))
        postings = [Posting(self.account(who, asset), clearing, asset, -n)
                    for n, who in positions if n < 0]
        postings += [Posting(clearing, self.account(who, asset), asset, n)
                     for n, who in positions if n > 0]
        entry_id = None
        for start in range(0, len(postings), 250):
            chunk = postings[start:start + 250]
            # One transaction per 250 positions (the ledger's bound per transaction): the
            # clearing account holds the payers' money until the last chunk pays it out; the
            # chunks have keys of their own, so a retry replays those already posted.
            entry = self.ledger.transfer(
                chunk, metadata={"kind": "netting_cycle", "cycle": cycle.id,
                                 "actor": actor_text(actor)},
                idempotency_key=f"net-{cycle.id}-{start // 250}")
            entry_id = entry_id or entry.id
        now = self.clock.now_us()
        ids = cycle.body["obligation_ids"]
        objects = self.store.get_many(OBLIGATION, ids)
        self.store.move_many([o.moved(SETTLED, now, cycle=cycle.id) for o in objects], QUEUED,
                             None)
        done = cycle.moved(SETTLED, now, entry_id=entry_id)
        self.store.move(done, SETTLING, DeskAction(
            now, "netting.settle", CYCLE, cycle.id, actor,
            {"pool": self.pool.id, "asset": asset, "entry_id": entry_id}))
        return done


def efficiency_text(value: str) -> str:
    """An efficiency kept as a fraction's text, as a percentage with two decimals."""
    f = Fraction(value)
    return f"{float(f * 100):.2f} %"  # display only: never an amount
