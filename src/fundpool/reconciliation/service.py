"""Reconciliation: statements from the bank or the chain against the books, per channel.

- **import** a file (camt.053/054, MT940, CSV with a saved mapping, a chain transfer list):
  parsed and checked whole before anything is stored (`recon.formats`, `channels.iso20022`);
  the same file or statement twice is refused (`duplicate_statement`); then a match run.
- **match**: the channel's open statement lines against its book items (items.py) over the
  period its statements cover (`recon.matching`: by reference, then by amount and date within
  the channel's tolerance; 1:1, 1:N, N:1, N:M; more than one candidate is ambiguous, never a
  guess; the rest are breaks). Matched and resolved are final; ambiguous items and breaks are
  looked at again by every run, so tomorrow's statement can still match today's break.
- **expected payments**: announced incoming funds, matched against credit lines and deposits
  as they arrive (`recon.expected`); an unannounced credit stays a break, to be identified.
- **resolve** a break or an ambiguous item: with a note (its actor kept), or by booking the
  difference (a bank charge, an FX difference, a credit identified) as a ledger adjustment
  through the ledger's adjustment rules, which then matches the line it was booked for.
- **balances**: each statement's opening and closing balance against the ledger's balance of
  the channel at the statement's times (model.BalanceCheck).

Every action is recorded with its actor in `recon_actions`, which the audit log reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fundpool.core.actor import Actor
from fundpool.core.clock import Clock, IdSource
from fundpool.payments.ports import PaymentStore
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import ChannelConfig, FundpoolConfig, PoolConfig
from fundpool.recon.expected import Credit, ExpectedPayment, match_expected
from fundpool.recon.matching import match
from fundpool.recon.model import (
    DAY_US,
    Ambiguous,
    Break,
    BreakReason,
    DuplicateStatement,
    FileFormat,
    FileRefused,
    LineStatus,
    MatchRule,
    Shape,
    Side,
    StatementFile,
    StatementLine,
    Tolerance,
    payment_id_of,
)
from fundpool.reconciliation.files import parse_file
from fundpool.reconciliation.items import adjustment_id, adjustment_items, items_of
from fundpool.reconciliation.model import (
    LOOKBACK_DAYS,
    NOTE_CHARS_MAX,
    PAGE_MAX,
    RUN_ITEMS_MAX,
    ActionRecord,
    BalanceCheck,
    Expected,
    ExpectedState,
    FileRecord,
    ImportReport,
    InvalidExpected,
    MatchRow,
    NoteRequired,
    NothingToBook,
    NotOpen,
    Resolution,
    ResolutionAction,
    RunReport,
    State,
    StateRow,
    StoredLine,
    StoredStatement,
    UnknownChannel,
    UnknownRecord,
)
from fundpool.reconciliation.ports import Books, ReconStore

OPEN_STATES = (State.AMBIGUOUS, State.BREAK)


class ReconService:
    def __init__(self, store: ReconStore, payments: PaymentStore, books: Books,
                 config: FundpoolConfig, pool: PoolConfig, clock: Clock, ids: IdSource,
                 *, mapping_of: Callable[[str], Any] | None = None) -> None:
        self.store = store
        self.payments = payments
        self.books = books
        self.config = config
        self.pool = pool
        self.clock = clock
        self.ids = ids
        self.scales = {asset.code: asset.scale for asset in config.assets}
        self._mapping_of = mapping_of

    def _new_id(self) -> str:
        return self.ids.new_id(self.clock.now_us())

    # --- the channel --------------------------------------------------------------------------

    def channel(self, channel_id: str) -> ChannelConfig:
        if channel_id not in self.pool.channels:
            raise UnknownChannel(pool=self.pool.id, channel=channel_id,
                                 channels=list(self.pool.channels))
        return self.config.channel(channel_id)

    def tolerance(self, channel_id: str) -> Tolerance:
        recon = self.channel(channel_id).recon
        return Tolerance(amount_minor=recon.amount_tolerance_minor, days=recon.days)

    # --- import -------------------------------------------------------------------------------

    def import_file(self, channel_id: str, data: bytes, name: str, *, actor: Actor,
                    format: FileFormat | None = None, mapping: str | None = None
                    ) -> ImportReport:
        """Parse and check the whole file, store it (all or nothing), then run matching."""
        channel = self.channel(channel_id)
        csv_mapping = None
        if mapping is not None:
            text = self.store.mapping(mapping)
            if text is None:
                raise UnknownRecord(mapping=mapping)
            from fundpool.recon.formats.csv_mapping import mapping_from_yaml

            csv_mapping = mapping_from_yaml(text)
        parsed = parse_file(data, name, scales=self.scales, format=format,
                            csv_mapping=csv_mapping)
        self._check_assets(parsed, channel)
        earlier = self.store.imported(self.pool.id, channel.id, parsed.sha256)
        if earlier is not None:
            raise DuplicateStatement(f"{name} was imported before, as {earlier.name}",
                                     file=name, imported_as=earlier.name,
                                     file_id=earlier.file_id)
        keys = [(s.account, s.statement_id) for s in parsed.statements]
        if len(set(keys)) != len(keys):
            raise DuplicateStatement("the file holds the same statement twice", file=name)
        known = self.store.known_statements(self.pool.id, channel.id, keys)
        if known:
            account, statement_id = sorted(known)[0]
            raise DuplicateStatement(f"statement {statement_id} of {account} was imported "
                                     "before", file=name, account=account,
                                     statement_id=statement_id)
        now = self.clock.now_us()
        file_id = self._new_id()
        statements: list[StoredStatement] = []
        lines: list[StoredLine] = []
        for statement in parsed.statements:
            stored_id = self._new_id()
            dates = [t for line in statement.lines for t in (line.booked_at_us, line.value_at_us)]
            first = (statement.opening.at_us if statement.opening is not None
                     else min(dates, default=statement.created_at_us))
            closing_at = (None if statement.closing is None
                          else _closing_at(statement.closing.at_us))
            last = (closing_at if closing_at is not None
                    else _day_end(max(dates, default=statement.created_at_us)))
            statements.append(StoredStatement(
                stored_id, file_id, self.pool.id, channel.id, statement.account,
                statement.asset, statement.statement_id, statement.sequence,
                statement.created_at_us,
                None if statement.opening is None else statement.opening.amount_minor,
                None if statement.opening is None else statement.opening.at_us,
                None if statement.closing is None else statement.closing.amount_minor,
                closing_at, first, last, len(statement.lines)))
            for position, line in enumerate(statement.lines, start=1):
                lines.append(StoredLine(stored_id, position, self.pool.id, channel.id,
                                        dataclasses.replace(
                                            line, line_id=f"{stored_id}:{position}")))
        record = FileRecord(file_id, self.pool.id, channel.id, name, parsed.format.value,
                            parsed.message, parsed.sha256, len(statements), len(lines), now,
                            actor)
        self.store.add_file(record, statements, lines, ActionRecord(
            now, "import", "file", file_id, actor,
            {"name": name, "channel": channel.id, "format": parsed.format.value,
             "message": parsed.message, "sha256": parsed.sha256,
             "statements": [s.statement_id for s in statements], "lines": len(lines)}))
        return ImportReport(record, tuple(statements), self.run(channel.id, actor=actor))

    def _check_assets(self, parsed: StatementFile, channel: ChannelConfig) -> None:
        # A channel with a bank account configured takes only that account's statements.
        own = None if channel.bank is None else _compact(channel.bank.account)
        for index, statement in enumerate(parsed.statements, start=1):
            if own is not None and _compact(statement.account) != own:
                raise FileRefused(
                    f"statement {statement.statement_id} is of account {statement.account}; "
                    f"channel {channel.id} is the account {own}", file=parsed.name,
                    place=f"statement {index}", found=statement.account, expected=own)
            if statement.asset not in channel.assets:
                raise FileRefused(
                    f"statement {statement.statement_id} is in {statement.asset}; channel "
                    f"{channel.id} carries {', '.join(channel.assets)}",
                    file=parsed.name, place=f"statement {index}", found=statement.asset,
                    expected=list(channel.assets))
            for line in statement.lines:
                if line.asset != statement.asset:
                    raise FileRefused(f"line {line.line_id} is in {line.asset}, its "
                                      f"statement in {statement.asset}", file=parsed.name,
                                      place=f"statement {index}, {line.line_id}")

    # --- matching -----------------------------------------------------------------------------

    def run(self, channel_id: str, *, actor: Actor | None) -> RunReport:
        """Match the channel's open lines against its book items over the period its
        statements cover, and keep where each one stands."""
        channel = self.channel(channel_id)
        tolerance = self.tolerance(channel.id)
        now = self.clock.now_us()
        # A pending line (announced, not booked) is shown with its statement, never matched:
        # the booked line of the same movement comes later and takes its items.
        open_lines = [stored for stored in self.store.open_lines(self.pool.id, channel.id)
                      if stored.line.status is LineStatus.BOOKED]
        open_items = self.store.open_items(self.pool.id, channel.id)
        statements = self.store.statements(self.pool.id, channel.id, PAGE_MAX)
        if not statements:
            return RunReport(channel.id, 0, 0, 0, 0, 0, 0, 0, now, now)
        by_id = {s.id: s for s in statements}
        starts = [by_id[line.statement].first_at_us for line in open_lines
                  if line.statement in by_id]
        starts += [row.at_us for row in open_items]
        if not starts:  # nothing open: every line matched or resolved
            return RunReport(channel.id, 0, 0, 0, 0, 0, 0, 0, now, now)
        since = min(starts) - tolerance.window_us
        until = max(s.last_at_us for s in statements) + 1
        moves = self.payments.channel_moves(
            self.pool.id, channel.id, since, until,
            created_since_us=since - LOOKBACK_DAYS * DAY_US, limit=RUN_ITEMS_MAX)
        items = list(items_of(moves, channel.id))
        items += adjustment_items(self.store.booked(self.pool.id, channel.id, since, until))
        final = self.store.final_items(self.pool.id, [i.item_id for i in items])
        items = [i for i in items if i.item_id not in final]
        lines = [_as_books_name(stored.line) for stored in open_lines]
        result = match(lines, items, tolerance, now_us=now)

        line_by_id = {line.line_id: line for line in lines}
        item_by_id = {item.item_id: item for item in items}
        rows: list[StateRow] = []
        matches: list[MatchRow] = []
        for found in result.matches:
            match_id = self._new_id()
            matches.append(MatchRow(match_id, self.pool.id, channel.id, found.rule.value,
                                    found.shape.value, found.difference_minor, found.lines,
                                    found.items, now, actor))
            for line_id in found.lines:
                rows.append(self._line_row(line_by_id[line_id], channel.id, State.MATCHED,
                                           now, match_id=match_id))
            for item_id in found.items:
                rows.append(self._item_row(item_by_id[item_id], channel.id, State.MATCHED,
                                           now, match_id=match_id))
        for ambiguous in result.ambiguous:
            rows.append(self._open_row(ambiguous, line_by_id, item_by_id, channel.id, now))
        for broken in result.breaks:
            rows.append(self._open_row(broken, line_by_id, item_by_id, channel.id, now))

        expected_done = self._match_expected(channel.id, result.breaks, line_by_id,
                                             item_by_id, items, now)
        self.store.save_run(matches, rows, expected_done, ActionRecord(
            now, "match", "channel", channel.id, actor,
            {"lines": len(lines), "items": len(items), "matches": len(matches),
             "ambiguous": len(result.ambiguous), "breaks": len(result.breaks),
             "expected_matched": len(expected_done)}))
        return RunReport(channel.id, len(lines), len(items),
                         sum(len(m.lines) for m in result.matches),
                         sum(len(m.items) for m in result.matches), len(result.ambiguous),
                         len(result.breaks), len(expected_done), since, until)

    def _line_row(self, line: Any, channel: str, state: State, now: int, *,
                  match_id: str | None = None, reason: str | None = None,
                  related: tuple[str, ...] = ()) -> StateRow:
        return StateRow(self.pool.id, channel, Side.STATEMENT, line.line_id, state, match_id,
                        reason, line.amount_minor, line.asset, line.value_at_us, related,
                        None, now)

    def _item_row(self, item: Any, channel: str, state: State, now: int, *,
                  match_id: str | None = None, reason: str | None = None,
                  related: tuple[str, ...] = ()) -> StateRow:
        return StateRow(self.pool.id, channel, Side.BOOKS, item.item_id, state, match_id,
                        reason, item.amount_minor, item.asset, item.at_us, related,
                        item.payment_id, now)

    def _open_row(self, found: Ambiguous | Break, line_by_id: Mapping[str, Any],
                  item_by_id: Mapping[str, Any], channel: str, now: int) -> StateRow:
        state = State.AMBIGUOUS if isinstance(found, Ambiguous) else State.BREAK
        related = found.candidates if isinstance(found, Ambiguous) else found.related
        reason = None if isinstance(found, Ambiguous) else found.reason.value
        if found.side is Side.STATEMENT:
            return self._line_row(line_by_id[found.id], channel, state, now, reason=reason,
                                  related=related)
        return self._item_row(item_by_id[found.id], channel, state, now, reason=reason,
                              related=related)

    def _match_expected(self, channel: str, breaks: Sequence[Break],
                        line_by_id: Mapping[str, Any], item_by_id: Mapping[str, Any],
                        items: Sequence[Any], now: int) -> list[tuple[str, str, int]]:
        """Open expected payments against the credits that arrived: statement credits the
        books lack, and deposits in the books."""
        expected = self.store.expected(self.pool.id, channel=channel, state=ExpectedState.OPEN)
        if not expected:
            return []
        credits = [Credit(b.id, line_by_id[b.id].amount_minor, line_by_id[b.id].asset,
                          line_by_id[b.id].value_at_us,
                          line_by_id[b.id].reference or line_by_id[b.id].end_to_end_id,
                          line_by_id[b.id].counterparty)
                   for b in breaks if b.side is Side.STATEMENT
                   and b.reason is BreakReason.NOT_IN_BOOKS and b.amount_minor > 0]
        credits += [Credit(i.item_id, i.amount_minor, i.asset, i.at_us, i.reference,
                           i.counterparty)
                    for i in items if i.amount_minor > 0 and i.item_id.endswith(":in")]
        announced = [ExpectedPayment(e.id, e.asset, e.amount_min_minor, e.amount_max_minor,
                                     e.from_us, e.until_us, e.reference, e.counterparty)
                     for e in expected]
        found = match_expected(credits, announced)
        return [(m.expected_id, m.credit_id, now) for m in found.matched]

    # --- reading ------------------------------------------------------------------------------

    def open(self, channel: str | None = None, *, side: Side | None = None,
             limit: int = PAGE_MAX) -> list[StateRow]:
        if channel is not None:
            self.channel(channel)
        return self.store.states(self.pool.id, channel=channel, states=OPEN_STATES, side=side,
                                 limit=min(limit, PAGE_MAX))

    def states(self, channel: str | None = None, *, states: Sequence[State] = (),
               side: Side | None = None, limit: int = PAGE_MAX) -> list[StateRow]:
        if channel is not None:
            self.channel(channel)
        return self.store.states(self.pool.id, channel=channel, states=states, side=side,
                                 limit=min(limit, PAGE_MAX))

    def summary(self, channel: str | None = None) -> dict[str, dict[str, dict[str, int]]]:
        """channel → side → state → count."""
        counts = self.store.state_counts(self.pool.id, channel)
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (cid, side, state), n in counts.items():
            out.setdefault(cid, {}).setdefault(side, {})[state] = n
        return out

    def statement(self, statement_id: str) -> tuple[StoredStatement, list[StoredLine],
                                                    dict[str, StateRow]]:
        stored = self.store.statement(statement_id)
        if stored is None or stored.pool != self.pool.id:
            raise UnknownRecord(statement=statement_id)
        lines = self.store.lines(statement_id)
        states = self.store.states_of(self.pool.id,
                                      [(Side.STATEMENT, s.line.line_id) for s in lines])
        return stored, lines, {key[1]: row for key, row in states.items()}

    def payment(self, payment_id: str) -> list[StateRow]:
        """Where a payment's book items stand (its reconciliation state, on its page)."""
        return [row for row in self.store.states_of_payment(payment_id)
                if row.pool == self.pool.id]

    def lines_of(self, ids: Sequence[str]) -> dict[str, StoredLine]:
        return self.store.lines_by_id(ids)

    # --- balances -----------------------------------------------------------------------------

    def balances(self, channel: str | None = None, *, limit: int = 100) -> list[BalanceCheck]:
        """Each statement's balances against the ledger's, newest first."""
        if channel is not None:
            self.channel(channel)
        checks = []
        for statement in self.store.statements(self.pool.id, channel, min(limit, PAGE_MAX)):
            checks.append(self.balance_check(statement))
        return checks

    def balance_check(self, statement: StoredStatement) -> BalanceCheck:
        lines = self.store.lines(statement.id)
        opening = closing = None
        if statement.opening_at_us is not None:
            opening = self.books.channel_total(self.pool.id, statement.channel,
                                               statement.asset, statement.opening_at_us)
        booked_after = 0
        if statement.closing_at_us is not None:
            closing = self.books.channel_total(self.pool.id, statement.channel,
                                               statement.asset, statement.closing_at_us)
            booked_after = sum(r.amount_minor
                               for r in self.store.booked_for([s.line.line_id for s in lines])
                               if r.at_us > statement.closing_at_us)
        booked = [s.line.line_id for s in lines if s.line.status is LineStatus.BOOKED]
        states = self.store.states_of(self.pool.id, [(Side.STATEMENT, i) for i in booked])
        open_lines = sum(1 for row in states.values() if not row.state.final)
        open_lines += len(booked) - len(states)  # never run: open too
        return BalanceCheck(statement, opening, closing, booked_after, open_lines)

    # --- resolving ----------------------------------------------------------------------------

    def resolve(self, side: Side, target: str, *, note: str, actor: Actor,
                book: bool = False) -> Resolution:
        """Close an open break or ambiguous item with a note; with `book`, post the
        difference the bank has and the books lack as a ledger adjustment first, and match
        the line(s) with it."""
        text = note.strip()
        if not text or len(text) > NOTE_CHARS_MAX:
            raise NoteRequired(note_chars=len(text), note_chars_max=NOTE_CHARS_MAX)
        row = self.store.states_of(self.pool.id, [(side, target)]).get((side, target))
        if row is None:
            raise UnknownRecord(side=side.value, id=target)
        if row.state.final:
            raise NotOpen(side=side.value, id=target, state=row.state.value)
        now = self.clock.now_us()
        resolution_id = self._new_id()
        if not book:
            resolution = Resolution(resolution_id, self.pool.id, row.channel, side, target,
                                    ResolutionAction.NOTE, text, row.asset, row.amount_minor,
                                    None, now, actor)
            closed = dataclasses.replace(row, state=State.RESOLVED, reason=resolution_id,
                                         updated_at_us=now)
            self.store.resolve(resolution, [closed], None, self._resolved(resolution))
            return resolution
        if side is not Side.STATEMENT or row.state is not State.BREAK:
            raise NothingToBook(side=side.value, id=target, state=row.state.value)
        lines, items = self._component(row)
        difference = (sum(r.amount_minor for r in lines) - sum(r.amount_minor for r in items))
        if difference == 0:
            raise NothingToBook("the line and the books agree: nothing to book", id=target)
        channel = row.channel
        available = pool_account(self.pool.id, row.asset, channel, PoolState.AVAILABLE)
        if difference < 0:  # the bank took more than the books say: a charge
            source, destination = available, pool_account(self.pool.id, row.asset, channel,
                                                          PoolState.FEES)
        else:  # the bank holds more than the books say: a credit to identify, interest
            source, destination = world_account(channel), available
        entry_id = self.books.book(
            source=source, destination=destination, asset=row.asset,
            amount_minor=abs(difference), reason=f"reconciliation {target}: {text}",
            actor=actor, idempotency_key=f"recon:{resolution_id}")
        resolution = Resolution(resolution_id, self.pool.id, channel, side, target,
                                ResolutionAction.BOOKED, text, row.asset, difference,
                                entry_id, now, actor)
        match_id = self._new_id()
        line_ids = tuple(r.id for r in lines)
        item_ids = (*(r.id for r in items), adjustment_id(resolution_id))
        matched = MatchRow(match_id, self.pool.id, channel, MatchRule.REFERENCE.value,
                           Shape.of(len(line_ids), len(item_ids)).value, 0, line_ids,
                           item_ids, now, actor)
        rows = [dataclasses.replace(r, state=State.MATCHED, match_id=match_id, reason=None,
                                    updated_at_us=now) for r in (*lines, *items)]
        rows.append(StateRow(self.pool.id, channel, Side.BOOKS, adjustment_id(resolution_id),
                             State.MATCHED, match_id, None, difference, row.asset, now,
                             (), None, now))
        self.store.resolve(resolution, rows, matched, self._resolved(resolution))
        return resolution

    def _component(self, row: StateRow) -> tuple[list[StateRow], list[StateRow]]:
        """A break and, when the amounts differ, the other side's rows it is tied to (and
        their lines): what booking the difference settles together."""
        if row.reason != BreakReason.AMOUNT_DIFFERS.value:
            return [row], []
        items = [r for r in self.store.states_of(
            self.pool.id, [(Side.BOOKS, i) for i in row.related]).values()
            if r.state is State.BREAK]
        line_ids = {row.id} | {line for item in items for line in item.related}
        lines = [r for r in self.store.states_of(
            self.pool.id, [(Side.STATEMENT, i) for i in sorted(line_ids)]).values()
            if r.state is State.BREAK]
        return lines, items

    def _resolved(self, resolution: Resolution) -> ActionRecord:
        return ActionRecord(resolution.at_us, "resolve", resolution.side.value,
                            resolution.target, resolution.actor,
                            {"resolution": resolution.id, "action": resolution.action.value,
                             "note": resolution.note, "amount_minor": resolution.amount_minor,
                             "asset": resolution.asset, "entry_id": resolution.entry_id,
                             "channel": resolution.channel})

    def resolutions(self, channel: str | None = None, *, limit: int = 100) -> list[Resolution]:
        return self.store.resolutions(self.pool.id, channel, min(limit, PAGE_MAX))

    # --- expected payments --------------------------------------------------------------------

    def expect(self, channel_id: str, *, asset: str, amount_min_minor: int,
               amount_max_minor: int, from_us: int, until_us: int, reference: str | None,
               counterparty: str | None, actor: Actor) -> Expected:
        channel = self.channel(channel_id)
        if asset not in channel.assets:
            raise InvalidExpected(f"channel {channel.id} does not carry {asset}",
                                  asset=asset, channel=channel.id)
        if not 0 < amount_min_minor <= amount_max_minor or not from_us < until_us:
            raise InvalidExpected(amount_min_minor=amount_min_minor,
                                  amount_max_minor=amount_max_minor, from_us=from_us,
                                  until_us=until_us)
        now = self.clock.now_us()
        expected = Expected(self._new_id(), self.pool.id, channel.id, asset,
                            amount_min_minor, amount_max_minor, from_us, until_us,
                            (reference or "").strip() or None,
                            (counterparty or "").strip() or None, ExpectedState.OPEN, None,
                            now, actor, None)
        self.store.add_expected(expected, ActionRecord(
            now, "expect", "expected", expected.id, actor,
            {"channel": channel.id, "asset": asset, "amount_min_minor": amount_min_minor,
             "amount_max_minor": amount_max_minor, "reference": expected.reference}))
        return expected

    def expected(self, channel: str | None = None, *, state: ExpectedState | None = None,
                 limit: int = PAGE_MAX) -> list[Expected]:
        return self.store.expected(self.pool.id, channel=channel, state=state,
                                   limit=min(limit, PAGE_MAX))

    def cancel_expected(self, expected_id: str, *, actor: Actor) -> None:
        now = self.clock.now_us()
        if not self.store.cancel_expected(expected_id, now, ActionRecord(
                now, "cancel_expected", "expected", expected_id, actor, {})):
            raise UnknownRecord("no open expected payment with this id", expected=expected_id)

    # --- CSV mappings -------------------------------------------------------------------------

    def save_mapping(self, name: str, text: str, *, actor: Actor) -> None:
        from fundpool.recon.formats.csv_mapping import mapping_from_yaml

        mapping = mapping_from_yaml(text)  # refused here, naming the field, if it is wrong
        now = self.clock.now_us()
        self.store.save_mapping(name, text, now, actor, ActionRecord(
            now, "save_mapping", "mapping", name, actor, {"bank": mapping.name}))

    def mappings(self) -> list[tuple[str, str, int]]:
        return self.store.mappings()


def _as_books_name(line: StatementLine) -> StatementLine:
    """The line with the payment ids its end-to-end references name (the rail writes a UUID
    without its dashes: recon.model.end_to_end_of)."""
    if line.end_to_end_id is None and not line.parts:
        return line
    return dataclasses.replace(
        line, end_to_end_id=None if line.end_to_end_id is None
        else payment_id_of(line.end_to_end_id),
        parts=tuple(payment_id_of(part) for part in line.parts))


def _compact(account: str) -> str:
    return "".join(account.split()).upper()


def _closing_at(at_us: int) -> int:
    """A closing balance dated by day only (midnight) stands at the end of that day."""
    return _day_end(at_us) if at_us % DAY_US == 0 else at_us


def _day_end(at_us: int) -> int:
    """The last microsecond of `at_us`'s UTC day: a date-only line covers its whole day."""
    return at_us - at_us % DAY_US + DAY_US - 1
