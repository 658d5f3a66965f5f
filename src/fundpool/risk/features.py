"""What the risk rules know of the past: sliding windows, day totals, duplicates, payee
profiles, kept in memory by the one engine that screens a pool's payments.

Every payout the engine decides is observed (held and blocked ones too: an attempt counts
towards a velocity, day-total or duplicate rule, and links its payee to its account, whether
or not it went through); a payee's profile (first payout, destinations, amounts) learns from
payouts that were not blocked, and unlearns one a risk officer rejects (`unlearn`), so a
payee whose first payout was rejected as fraud is new again. Deposits and transfers between
the pool's channels are not counted: the features are a payee's. The state is rebuilt
from the store's payments of the look-back (`RiskEngine.rebuild`) at start and after a
transaction that observed payments was rolled back, so it never counts what did not commit
for long, and a restart loses nothing.

Each query is O(1) amortised: a window keeps its running count and sums and drops what fell
out of it when asked, so a decision with thirty rules costs microseconds however busy a payee
is.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

DAY_US = 86_400_000_000


@dataclass(slots=True)
class _Window:
    span_us: int
    items: deque[tuple[int, str, int]] = field(default_factory=deque)  # (at, asset, amount)
    count: int = 0
    sums: dict[str, int] = field(default_factory=dict)

    def drop_before(self, at_us: int) -> None:
        edge = at_us - self.span_us
        items = self.items
        while items and items[0][0] <= edge:
            _, asset, amount = items.popleft()
            self.count -= 1
            self.sums[asset] -= amount

    def add(self, at_us: int, asset: str, amount: int) -> None:
        items = self.items
        if not items or items[-1][0] <= at_us:
            items.append((at_us, asset, amount))
        else:  # decided after a later-created one (a backlog, another process): keep order
            index = len(items) - 1
            while index > 0 and items[index - 1][0] > at_us:
                index -= 1
            items.insert(index, (at_us, asset, amount))
        self.count += 1
        self.sums[asset] = self.sums.get(asset, 0) + amount


@dataclass(slots=True)
class PayeeProfile:
    """A payee's payouts in one asset: how many, their mean (exact: a sum and a count), where
    it was last paid and when that last changed."""

    first_at_us: int
    count: int = 0
    total: int = 0
    destination: str | None = None  # where it was last paid
    changed_at_us: int | None = None  # when that replaced an earlier destination

    @property
    def mean(self) -> int:
        return self.total // self.count if self.count else 0


@dataclass(frozen=True, slots=True)
class Seen:
    """One payment as the features see it."""

    at_us: int
    kind: str
    asset: str
    amount: int
    payee: str | None
    initiator: str | None
    destination: str | None
    reference: str | None
    channel: str | None = None  # the rail the caller named (None: left to routing)


class Features:
    """The state the rules read. `windows` are the spans the active policy asks for."""

    def __init__(self, windows: frozenset[int] = frozenset()) -> None:
        self._spans = windows
        self._windows: dict[tuple[str, str, int], _Window] = {}
        self._days: dict[tuple[int, str, str, str], int] = {}  # (day, per, key, asset) -> sum
        self._duplicates: dict[tuple[str, str, int, str], int] = {}  # -> last at
        self._profiles: dict[tuple[str, str], PayeeProfile] = {}  # (payee, asset)
        self._payees: set[str] = set()
        # Payees linked through the accounts they are paid into (a union-find over payee and
        # destination nodes; each root keeps how many payees its component holds).
        self._parent: dict[str, str] = {}
        self._ring_payees: dict[str, int] = {}
        self._day = -1
        self.observed = 0

    @property
    def spans(self) -> frozenset[int]:
        return self._spans

    # --- queries (this payment not yet included) ---

    def window(self, per: str, key: str | None, span_us: int, at_us: int
               ) -> tuple[int, dict[str, int]]:
        """(count, sums by asset) of the payments per `per` = `key` in the `span_us` before
        `at_us`."""
        if key is None:
            return 0, {}
        window = self._windows.get((per, key, span_us))
        if window is None:
            return 0, {}
        window.drop_before(at_us)
        return window.count, window.sums

    def day_total(self, per: str, key: str | None, asset: str, at_us: int) -> int:
        if key is None:
            return 0
        return self._days.get((at_us // DAY_US, per, key, asset), 0)

    def last_duplicate(self, payee: str | None, asset: str, amount: int,
                       reference: str | None) -> int | None:
        """When the same payee, asset, amount and reference was last seen."""
        if payee is None:
            return None
        return self._duplicates.get((payee, asset, amount, reference or ""))

    def profile(self, payee: str | None, asset: str) -> PayeeProfile | None:
        return None if payee is None else self._profiles.get((payee, asset))

    def known_payee(self, payee: str | None) -> bool:
        return payee is not None and payee in self._payees

    def _root(self, node: str) -> str | None:
        parent = self._parent
        if node not in parent:
            return None
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    def ring_size(self, payee: str | None, destination: str | None) -> int:
        """How many payees the payee's component holds once this payout links it to
        `destination`: payees paid into a shared account, and payees sharing those."""
        if payee is None or destination is None:
            return 0
        mine, theirs = self._root("p:" + payee), self._root("d:" + destination)
        size = 1 if mine is None else self._ring_payees[mine]
        if theirs is not None and theirs != mine:
            size += self._ring_payees[theirs]
        return size

    def _link(self, payee: str, destination: str) -> None:
        parent, counts = self._parent, self._ring_payees
        p, d = "p:" + payee, "d:" + destination
        if p not in parent:
            parent[p] = p
            counts[p] = 1
        if d not in parent:
            parent[d] = d
            counts[d] = 0
        a, b = self._root(p), self._root(d)
        if a is None or b is None or a == b:
            return
        if counts[a] < counts[b]:
            a, b = b, a
        parent[b] = a
        counts[a] += counts.pop(b)

    # --- learning ---

    def observe(self, seen: Seen, *, learn: bool) -> None:
        """Count a decided payout in the windows, day totals and duplicates; learn the
        payee's profile from it when `learn` (it was not blocked). Other kinds are not
        counted."""
        if seen.kind != "payout":
            return
        self.observed += 1
        at_us = seen.at_us
        day = at_us // DAY_US
        if day != self._day:
            self._day = day
            self._days = {k: v for k, v in self._days.items() if k[0] >= day - 1}
        keys = (("payee", seen.payee), ("initiator", seen.initiator),
                ("destination", seen.destination), ("channel", seen.channel))
        for per, key in keys:
            if key is None:
                continue
            for span in self._spans:
                window = self._windows.get((per, key, span))
                if window is None:
                    window = self._windows[(per, key, span)] = _Window(span)
                window.drop_before(at_us)
                window.add(at_us, seen.asset, seen.amount)
            day_key = (day, per, key, seen.asset)
            self._days[day_key] = self._days.get(day_key, 0) + seen.amount
        if seen.payee is None:
            return
        if seen.kind == "payout" and seen.destination is not None:
            self._link(seen.payee, seen.destination)
        self._duplicates[(seen.payee, seen.asset, seen.amount, seen.reference or "")] = at_us
        if not learn:
            return
        self._payees.add(seen.payee)
        profile = self._profiles.get((seen.payee, seen.asset))
        if profile is None:
            profile = self._profiles[(seen.payee, seen.asset)] = PayeeProfile(at_us)
        profile.count += 1
        profile.total += seen.amount
        if seen.destination is not None and seen.destination != profile.destination:
            if profile.destination is not None:
                profile.changed_at_us = at_us
            profile.destination = seen.destination

    def unlearn(self, payee: str, asset: str, amount: int) -> None:
        """Take back a payout a risk officer rejected from its payee's profile: its amount
        from the mean, and the payee is new again when nothing else taught it."""
        profile = self._profiles.get((payee, asset))
        if profile is None:
            return
        profile.count -= 1
        profile.total -= amount
        if profile.count <= 0:
            del self._profiles[(payee, asset)]
            if not any(key[0] == payee for key in self._profiles):
                self._payees.discard(payee)
