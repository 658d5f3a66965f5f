"""One acknowledgement per contiguous run: what a durable with the ack policy `all` may
acknowledge, and when (docs/monitoring.md, ADR 0011).

Under `AckPolicy.ALL` an acknowledgement of the message at stream sequence S acknowledges every
message of the stream at or below S, delivered to this process or not. So a consumer may send
it only for the last message of a *contiguous run*: every message of the stream from just above
the durable's ack floor up to S has been received here and is done with (applied, a duplicate,
stepped over, or unreadable), or does not exist (deleted, expired). A message lost on its way
here (a reconnect), or still held after a gap, or delivered to a process that has since let
the pool go, breaks the run: nothing beyond it is acknowledged until it has come (again,
after `ack_wait`) and is done. Acknowledging less is always safe: what is not acknowledged
comes again and is found a duplicate.

The server also ignores an acknowledgement whose delivery sequence is at or below the one it
last took (an old delivery of a message delivered again since), so the run is acknowledged at
its last message with a newer delivery; the rest of it waits for a later one.

`AckRuns` is the bookkeeping of one pool's durable, without I/O: the consumer marks what is
done after each commit and sends the one acknowledgement `advance` names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

M = TypeVar("M")

# Reply subjects of JetStream deliveries (nats.aio.msg): $JS.ACK.<stream>.<consumer>.
# <delivered>.<stream seq>.<delivery seq>.<time>.<pending>, or with a domain and account
# hash after $JS.ACK (and a random token at the end), which moves the sequences two places on.
_V1_TOKENS = 9
_V2_TOKENS_MIN = 11


class AckRuns(Generic[M]):
    """The done messages of one pool's durable above its ack floor, by stream sequence."""

    def __init__(self, acked_stream_seq: int = 0, acked_delivery_seq: int = 0) -> None:
        self.acked_stream_seq = acked_stream_seq  # every message at or below is acknowledged
        self.acked_delivery_seq = acked_delivery_seq
        self._done: dict[int, tuple[int, M]] = {}  # stream seq -> (delivery seq, message)
        self._absent: list[tuple[int, int]] = []  # stream seq ranges known not to exist

    def __len__(self) -> int:
        """Done messages not acknowledged yet: nonzero after `advance` means the run is
        broken (or its last delivery is old) and they wait."""
        return len(self._done)

    def done(self, messages: Iterable[M], reply_of: Callable[[M], str]) -> None:
        """`messages` are done with; each is placed by the sequences its reply subject
        (`reply_of`) names, and one that is not a JetStream delivery has no place in a run.
        (Read here rather than with `Msg.metadata`, which costs several times as much: this
        runs for every message.)"""
        known, floor = self._done, self.acked_stream_seq
        for message in messages:
            tokens = reply_of(message).split(".")
            count = len(tokens)
            if count == _V1_TOKENS:
                stream_text, delivery_text = tokens[5], tokens[6]
            elif count >= _V2_TOKENS_MIN:
                stream_text, delivery_text = tokens[7], tokens[8]
            else:
                continue
            if tokens[0] != "$JS" or tokens[1] != "ACK" \
                    or not (stream_text.isdigit() and delivery_text.isdigit()):
                continue
            stream_seq, delivery_seq = int(stream_text), int(delivery_text)
            if stream_seq <= floor:
                continue  # acknowledged already (a delivery that crossed the acknowledgement)
            entry = known.get(stream_seq)
            if entry is None or entry[0] < delivery_seq:
                known[stream_seq] = (delivery_seq, message)

    def floor(self, stream_seq: int, delivery_seq: int) -> None:
        """The durable's ack floor as the server reports it (another process may have
        acknowledged more before this one took the pool)."""
        self.acked_delivery_seq = max(self.acked_delivery_seq, delivery_seq)
        if stream_seq > self.acked_stream_seq:
            self._acknowledged(stream_seq)

    def absent(self, first: int, last: int) -> None:
        """Stream seqs `first` … `last` do not exist (the server found none there)."""
        if last >= first:
            self._absent.append((first, last))

    def first_missing(self) -> int | None:
        """The first stream seq that breaks the run, when done messages wait beyond it."""
        end, _best = self._run()
        return end + 1 if self._done and end + 1 < max(self._done) else None

    @property
    def highest(self) -> int:
        """The highest stream seq done and not acknowledged (the floor when none is)."""
        return max(self._done, default=self.acked_stream_seq)

    def advance(self) -> M | None:
        """The message whose acknowledgement acknowledges the longest run it can, or None;
        once it is sent, everything at or below it counts as acknowledged."""
        _end, best = self._run()
        if best is None:
            return None
        stream_seq, self.acked_delivery_seq, message = best
        self._acknowledged(stream_seq)
        return message

    def _run(self) -> tuple[int, tuple[int, int, M] | None]:
        """Where the run from the floor ends, and its last message with a delivery the server
        would take (newer than the last acknowledged)."""
        done, newer_than = self._done, self.acked_delivery_seq
        best: tuple[int, int, M] | None = None
        seq = self.acked_stream_seq + 1
        while True:
            entry = done.get(seq)
            if entry is not None:
                if entry[0] > newer_than:
                    best = (seq, entry[0], entry[1])
                seq += 1
                continue
            skip = next((last for first, last in self._absent if first <= seq <= last), None)
            if skip is None:
                return seq - 1, best
            seq = skip + 1

    def _acknowledged(self, stream_seq: int) -> None:
        self.acked_stream_seq = stream_seq
        done = self._done
        if done and max(done) <= stream_seq:  # the whole run, as it nearly always is
            done.clear()
        else:
            for seq in [s for s in done if s <= stream_seq]:
                del done[seq]
        self._absent = [(first, last) for first, last in self._absent if last > stream_seq]
