"""Continuous multilateral net settlement of one asset per cycle, and gridlock resolution.

**Netting.** Each obligation moves `amount_minor` from its payer to its payee. A participant's
net position over a set of obligations is what it receives minus what it pays: positive is a
receivable, negative a payable, and the positions add up to 0. Settling the net positions
instead of every obligation moves `net_minor` (the sum of the receivables) instead of
`gross_minor` (the sum of the obligations); `efficiency` is 1 − net/gross, 0 when nothing
is owed. An obligation is refused (`invalid_obligation`) when its payer is its payee or its
amount is not a positive int, and, when the participants are given, one that names another
participant is refused (`unknown_participant`), with its index.

**Gridlock resolution.** A participant is short when its balance plus its net position is
below 0. `settle` finds a set of obligations that every participant can settle from its
balance, and queues the rest, by the algorithm of Bech & Soramäki (2001) and Güntzer,
Jungnickel and Leclerc (1998):

1. Start with every obligation in the settled set.
2. While some participant is short, take its outgoing obligations out of the set one at a
   time, **largest first** (ties: the latest, highest index, first), until it is not short.
   Taking one out lowers its payee's position, which may make the payee short in turn; only
   the payee's position changes, so each step is O(1), and an obligation is taken out at
   most once. Largest first frees the most room per obligation taken out, so the fewest
   wait, and it makes the answer maximal without a second pass (step 3). Its cost is that
   the queue holds the large obligations: in bench/netting.py (1.3 % of what each owes held
   as balance) it queues ~10 % of the obligations and ~58 % of their value, where latest
   first, then adding back, queues ~8 % and ~50 %, but takes out ~95 % of the obligations
   before it adds most of them back, and is several times slower.
3. The answer is already maximal: no single queued obligation can be added back without
   making its payer short. When a payer's last obligation was taken out its room was below 0
   just before, so its room is below that obligation's amount, the smallest it has queued
   (the others went out before it, being larger); and a payer's room only falls after that.
   So a final pass that tries to add back each queued obligation would add none: `settle`
   checks that instead of running it, payer by payer.

Which short participant is served first does not change the queue: taking out only lowers
the others' room, so each one ends at the fewest obligations it must give up (the least
fixed point). The settled set is feasible and maximal, not the largest possible (finding that
is NP-hard). Balances are never negative (`invalid_balance`), and every participant of an
obligation has a balance (`unknown_participant`). `settle` checks, before it answers, that
every balance after is >= 0, that they add up to what the balances added up to before, and
maximality.

Inside, obligations are read once into columns (payer and payee as participant numbers,
amount), and positions are lists of ints: a cycle of a million obligations nets in well under
a second, and a value per step would cost more than the netting itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain, compress
from operator import attrgetter, eq

from fundpool.core.errors import FundpoolError, invariant
from fundpool.core.money import AMOUNT_MAX_MINOR

# A cycle's bound: ten times the benchmark's million, as a plain list of values it is ~1 GB.
NETTING_OBLIGATIONS_MAX = 10_000_000
_FLIP = bytes.maketrans(b"\x00\x01", b"\x01\x00")  # queued flags to settled flags


class InvalidObligation(FundpoolError):
    code = "invalid_obligation"
    title = "a netting obligation needs two different participants and a positive amount"


class UnknownParticipant(FundpoolError):
    code = "unknown_participant"
    title = "the obligation names a participant that is not in this netting cycle"


class InvalidBalance(FundpoolError):
    code = "invalid_balance"
    title = "a participant's balance is an int of minor units, never negative"


class TooManyObligations(FundpoolError):
    code = "too_many_obligations"
    title = "the netting cycle holds more obligations than a cycle may"


@dataclass(frozen=True, slots=True)
class Obligation:
    payer: str
    payee: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class NetResult:
    positions: dict[str, int]  # receivable > 0, payable < 0; they add up to 0
    gross_minor: int
    net_minor: int  # the sum of the receivables
    efficiency: Fraction  # 1 − net/gross, 0 when gross is 0
    obligation_count: int


@dataclass(frozen=True, slots=True)
class GridlockResult:
    settled: tuple[int, ...]  # indexes into the obligations, ascending
    queued: tuple[int, ...]  # the rest, ascending
    positions: dict[str, int]  # net positions over the settled obligations
    balances_after: dict[str, int]  # every participant's balance + position, all >= 0
    gross_minor: int  # of the settled obligations
    net_minor: int  # of the settled obligations
    efficiency: Fraction  # of the settled obligations
    queued_minor: int


def net(obligations: Sequence[Obligation],
        participants: Collection[str] | None = None) -> NetResult:
    """The net positions of `obligations`; with `participants`, every one of them has a
    position (0 when it has no obligation) and no other participant may appear."""
    cycle = _Cycle(obligations, participants)
    positions = cycle.positions()
    net_minor = sum(position for position in positions if position > 0)
    invariant(sum(positions) == 0, "net positions add up to 0")
    return NetResult(dict(zip(cycle.names, positions, strict=True)), cycle.gross_minor,
                     net_minor, _efficiency(net_minor, cycle.gross_minor), len(obligations))


def settle(obligations: Sequence[Obligation], balances: Mapping[str, int]) -> GridlockResult:
    """Settle the obligations that the participants' `balances` allow, queue the rest (see the
    module's docstring for the algorithm and its order)."""
    for participant, balance in balances.items():
        if type(balance) is not int or not 0 <= balance <= AMOUNT_MAX_MINOR:
            raise InvalidBalance(participant=participant, balance=repr(balance))
    cycle = _Cycle(obligations, balances)
    amounts = cycle.amounts
    count = len(amounts)
    # `room[p]`: participant p's balance + its position over the settled set; short below 0.
    room = [balances[name] + position
            for name, position in zip(cycle.names, cycle.positions(), strict=True)]
    queued, outgoing, kept = _take_out(cycle, room)
    for payer, mine in enumerate(outgoing):
        invariant(kept[payer] == len(mine) or room[payer] < amounts[mine[kept[payer]]],
                  "no queued obligation could be added back (maximality)")

    settled_indexes = tuple(compress(range(count), queued.translate(_FLIP)))
    queued_indexes = tuple(compress(range(count), queued))
    queued_minor = sum(compress(amounts, queued))
    settled_gross = cycle.gross_minor - queued_minor
    balances_after = dict(zip(cycle.names, room, strict=True))
    positions = {name: room[p] - balances[name] for p, name in enumerate(cycle.names)}
    invariant(min(room, default=0) >= 0, "no balance is negative after settlement")
    invariant(sum(room) == sum(balances.values()),
              "settlement moves money between participants and creates none")
    net_minor = sum(position for position in positions.values() if position > 0)
    return GridlockResult(settled_indexes, queued_indexes, positions, balances_after,
                          settled_gross, net_minor, _efficiency(net_minor, settled_gross),
                          queued_minor)


def _take_out(cycle: _Cycle, room: list[int]) -> tuple[bytearray, list[list[int]], list[int]]:
    """Step 2: until no participant is short, take out a short one's largest obligation.
    Returns the queued flags, each payer's outgoing obligations and how many of them are kept:
    a payer's list is sorted smallest first (ties in index order) once it is first short, and
    its queued obligations are then the list's tail from `kept[payer]`."""
    amounts, payees = cycle.amounts, cycle.payees
    queued = bytearray(len(amounts))  # 1: taken out of the settled set
    outgoing: list[list[int]] = [[] for _ in cycle.names]
    for index, payer in enumerate(cycle.payers):
        outgoing[payer].append(index)
    kept = [len(mine) for mine in outgoing]
    short = [p for p, left in enumerate(room) if left < 0]
    ordered = bytearray(len(outgoing))  # 1: the payer's list is sorted by amount
    while short:
        payer = short.pop()
        mine = outgoing[payer]
        if not ordered[payer]:
            mine.sort(key=amounts.__getitem__)  # stable: ties stay in index order
            ordered[payer] = 1
        cut = kept[payer]
        left = room[payer]
        while left < 0:
            cut -= 1  # never below 0: with no outgoing obligation, room >= balance >= 0
            index = mine[cut]
            amount, payee = amounts[index], payees[index]
            queued[index] = 1
            left += amount
            was = room[payee]
            room[payee] = was - amount
            if was >= 0 > was - amount:  # the payee just became short
                short.append(payee)
        room[payer] = left
        kept[payer] = cut
    return queued, outgoing, kept


class _Cycle:
    """The obligations as columns (payer and payee as participant numbers, amounts), once each
    obligation is checked. Columns are read by `map` over C getters: a million obligations
    cost a few tens of milliseconds to read, and a Python loop runs only where it must."""

    def __init__(self, obligations: Sequence[Obligation],
                 known: Collection[str] | None) -> None:
        if len(obligations) > NETTING_OBLIGATIONS_MAX:
            raise TooManyObligations(obligations=len(obligations),
                                     obligations_max=NETTING_OBLIGATIONS_MAX)
        payers: list[str] = list(map(attrgetter("payer"), obligations))
        payees: list[str] = list(map(attrgetter("payee"), obligations))
        amounts: list[int] = list(map(attrgetter("amount_minor"), obligations))
        if (set(map(type, amounts)) - {int} or set(map(type, payers)) - {str}
                or set(map(type, payees)) - {str} or any(map(eq, payers, payees))
                or (amounts and (min(amounts) <= 0 or max(amounts) > AMOUNT_MAX_MINOR))):
            _refuse(obligations)
        numbers: dict[str, int] = {}
        if known is None:
            # participants in the order they first appear
            names = list(dict.fromkeys(chain.from_iterable(zip(payers, payees, strict=True))))
        else:
            names = list(dict.fromkeys(known))
            if not set(payers).issubset(names) or not set(payees).issubset(names):
                _refuse_unknown(payers, payees, set(names))
        numbers = {name: number for number, name in enumerate(names)}
        self.names = names
        self.payers = list(map(numbers.__getitem__, payers))
        self.payees = list(map(numbers.__getitem__, payees))
        self.amounts = amounts
        self.gross_minor = sum(amounts)

    def positions(self) -> list[int]:
        """Every participant's net position over all the obligations, by number."""
        positions = [0] * len(self.names)
        for payer, payee, amount in zip(self.payers, self.payees, self.amounts, strict=True):
            positions[payer] -= amount
            positions[payee] += amount
        return positions


def _refuse(obligations: Sequence[Obligation]) -> None:
    """Raise the precise refusal for the first obligation that is not valid."""
    for index, obligation in enumerate(obligations):
        payer, payee, amount = obligation.payer, obligation.payee, obligation.amount_minor
        if type(payer) is not str or type(payee) is not str:
            raise InvalidObligation("a payer and a payee are participants' names",
                                    obligation_index=index)
        if payer == payee:
            raise InvalidObligation("an obligation's payer and payee are two participants",
                                    obligation_index=index, participant=payer)
        if type(amount) is not int:
            raise InvalidObligation("an amount is an int of minor units (never a float)",
                                    obligation_index=index, amount=repr(amount))
        if not 0 < amount <= AMOUNT_MAX_MINOR:
            raise InvalidObligation("an obligation's amount is positive and representable",
                                    obligation_index=index, amount_minor=amount)
    invariant(False, "_refuse is called only when an obligation is not valid")


def _refuse_unknown(payers: Sequence[str], payees: Sequence[str], known: set[str]) -> None:
    for index, (payer, payee) in enumerate(zip(payers, payees, strict=True)):
        for participant in (payer, payee):
            if participant not in known:
                raise UnknownParticipant(participant=participant, obligation_index=index)
    invariant(False, "_refuse_unknown is called only when a participant is unknown")


def _efficiency(net_minor: int, gross_minor: int) -> Fraction:
    return Fraction(0) if gross_minor == 0 else 1 - Fraction(net_minor, gross_minor)
