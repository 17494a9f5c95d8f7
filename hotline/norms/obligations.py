"""What the agreed norms oblige over time: acknowledgement deadlines and rate limits. Pure.

Theory of operation: both are derived from log entries alone, fed in log order through
``observe(entry)``, live after each commit and at start from a recent window of the log, so a
restart forgets nothing that still matters. Time is always an argument.

- ``Deadlines``: a message whose template requires an acknowledgement is logged with
  ``expects: {ack, from, due}``. Acks (or replies) from those parties satisfy it; ``overdue(now)``
  hands out, once, each message still missing parties at its due time. It stays pending until
  its ``overdue`` entry is observed (``rearm`` hands it out again if that entry could not be
  logged). A later ack is still accepted; ``lateness`` tells the server to mark it late.
- ``RateLimits``: a sliding window per (channel, party, template) of logged messages, plus the
  submissions held in flight (checked, not yet committed); a submission beyond ``rate.max``
  within ``rate.per`` is refused. Refused attempts do not count; a held one that is not logged
  after all is released.
- Both are a function of the log's entries alone (what is held in flight aside), so their
  ``state()`` at a log size can be saved and ``restore``d at the next start: it then reads only
  the log after that size (``ObligationsState``).
- ``check_ack_party``: an acknowledgement is owed only by the other parties (``expects.from``
  never names the sender's party), so an ack of one's own party's message means nothing; the
  server refuses it (``ack.own_party``) and the clients do not send it: one rule for all.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from hotline.entries import PENDING, Entry, EnvelopeEntry, Expects, OverdueEntry
from hotline.envelope import AckKind, Envelope, Kind
from hotline.errorcodes import Code
from hotline.errors import HotlineError, ProtocolViolation, StoreError
from hotline.norms.template import AckRequirement, Rate
from hotline.times import format_time, parse_time
from hotline.typed import convert

RateKey = tuple[str, str, str]  # (channel, party, template)


def satisfies(required: str, *, envelope: Envelope) -> bool:
    """Whether ``envelope`` (an ack, or a message replying) meets an ``expects.ack`` requirement."""
    if required == AckRequirement.REPLY:
        return envelope.kind is Kind.MESSAGE
    if envelope.kind is not Kind.ACK:
        return False
    ack = envelope.body.get("ack")  # an ack's body is checked: {"ack": received | understood}
    return ack == AckKind.UNDERSTOOD or (required == AckRequirement.RECEIVED and ack == AckKind.RECEIVED)


def own_party_ack(*, party: str, message_party: object) -> bool:
    """Whether an ack by ``party`` would acknowledge a message of its own party."""
    return party == message_party


def check_ack_party(*, party: str, message_party: object, message: str) -> None:
    """Refuse (``ack.own_party``) an ack by ``party`` of ``message``, its own party's message."""
    if own_party_ack(party=party, message_party=message_party):
        raise ProtocolViolation(f"{message} is {party}'s own: a party acknowledges only the "
                                "other parties' messages (none owes an ack for its own)",
                                code=Code.ACK_OWN_PARTY)


def counts_toward_rate(kind: Kind) -> bool:
    """Whether an envelope of ``kind`` counts against its template's rate: all that the template
    itself checks (an ack or a violation report carries the template of what it answers)."""
    return kind not in (Kind.ACK, Kind.VIOLATION)


def lateness(expects: Expects, *, party: str, envelope: Envelope, at: datetime) -> bool | None:
    """For an ack/reply to a message logged with ``expects``: ``True`` if it fulfils ``party``'s
    obligation after the due time, ``False`` if in time, ``None`` if it fulfils none."""
    if party not in expects.parties or not satisfies(expects.ack, envelope=envelope):
        return None
    return at > parse_time(expects.due, field="expects.due")


@dataclass(order=True)
class Pending:
    due: datetime
    envelope_id: str = field(compare=False)
    index: int = field(compare=False)
    channel: str = field(compare=False)
    template: str = field(compare=False)
    precedence: str = field(compare=False)
    ack: str = field(compare=False)
    missing: set[str] = field(compare=False)

    def overdue_entry(self, *, time: str) -> OverdueEntry:
        """The ``overdue`` log entry (not yet in the log) announcing this missed deadline."""
        return OverdueEntry(index=PENDING, time=time, channel=self.channel, ref=self.envelope_id,
                            entry=self.index, template=self.template, precedence=self.precedence,
                            due=format_time(self.due), ack=self.ack, missing=sorted(self.missing))


class Deadlines:
    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._heap: list[Pending] = []

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self, envelope_id: str) -> Pending | None:
        return self._pending.get(envelope_id)

    def observe(self, entry: Entry) -> None:
        """Account for one committed log entry (any kind; the irrelevant ones are ignored)."""
        if isinstance(entry, OverdueEntry):
            self._pending.pop(entry.ref, None)
            return
        if not isinstance(entry, EnvelopeEntry):
            return
        envelope, expects = entry.envelope, entry.expects
        if isinstance(expects, Expects):
            try:
                due = parse_time(expects.due, field="expects.due")
            except HotlineError:
                return
            item = Pending(due=due, envelope_id=envelope.id, index=entry.index,
                           channel=entry.channel, template=envelope.template,
                           precedence=envelope.precedence.value, ack=expects.ack,
                           missing=set(expects.parties))
            if item.missing:
                self._pending[item.envelope_id] = item
                heapq.heappush(self._heap, item)
        target = self._pending.get(envelope.reply_to) if envelope.reply_to else None
        if target is not None and satisfies(target.ack, envelope=envelope):
            target.missing.discard(entry.party)
            if not target.missing:
                del self._pending[target.envelope_id]

    def overdue(self, now: datetime) -> list[Pending]:
        """Each message past its due time with parties still missing, once; oldest first. Each
        stays pending until its ``overdue`` entry is observed: what is pending is the log's."""
        found: list[Pending] = []
        while self._heap and self._heap[0].due <= now:
            item = heapq.heappop(self._heap)
            if self._pending.get(item.envelope_id) is item:
                found.append(item)
        return found

    def rearm(self, item: Pending) -> None:
        """Hand ``item`` out again at the next ``overdue``: its entry could not be logged."""
        if self._pending.get(item.envelope_id) is item:
            heapq.heappush(self._heap, item)

    def state(self) -> list[PendingState]:
        """What is pending, to save (``restore`` takes it back), oldest deadline first."""
        return [PendingState(envelope_id=p.envelope_id, index=p.index, channel=p.channel,
                             template=p.template, precedence=p.precedence, ack=p.ack,
                             due=format_time(p.due), missing=sorted(p.missing))
                for p in sorted(self._pending.values())]

    def restore(self, saved: Iterable[PendingState]) -> None:
        """Take back a saved ``state`` (into an empty ``Deadlines``).

        Raises:
            HotlineError: a due time that does not parse (a damaged save).
        """
        for one in saved:
            item = Pending(due=parse_time(one.due, field="due"), envelope_id=one.envelope_id,
                           index=one.index, channel=one.channel, template=one.template,
                           precedence=one.precedence, ack=one.ack, missing=set(one.missing))
            self._pending[item.envelope_id] = item
            heapq.heappush(self._heap, item)


class RateLimits:
    def __init__(self) -> None:
        self._logged: dict[RateKey, deque[datetime]] = {}  # log times, oldest first
        self._held: dict[RateKey, dict[str, datetime]] = {}  # envelope id -> checked at

    def check(self, key: RateKey, rate: Rate, now: datetime) -> datetime | None:
        """``None`` if one more is allowed now, else the time the oldest one leaves the window."""
        logged, held = self._logged.get(key), self._held.get(key)
        start = now - rate.per
        while logged and logged[0] <= start:
            logged.popleft()
        if held:
            for envelope_id in [i for i, at in held.items() if at <= start]:
                del held[envelope_id]  # in flight longer than the window: it counts no more
        times = [*(logged or ()), *(held.values() if held else ())]
        return min(times) + rate.per if len(times) >= rate.max else None

    def hold(self, key: RateKey, envelope_id: str, now: datetime) -> None:
        """Count a checked submission until it is logged (``observe``) or ``release``d, so that
        pipelined submissions count too."""
        self._held.setdefault(key, {})[envelope_id] = now

    def release(self, key: RateKey, envelope_id: str) -> None:
        """Take back a ``hold`` whose message was not logged after all (a resend, a failure)."""
        held = self._held.get(key)
        if held is not None and held.pop(envelope_id, None) is not None and not held:
            del self._held[key]

    def observe(self, entry: EnvelopeEntry, rate: Rate | None) -> None:
        """Count a logged message, if its template (whose ``rate`` the caller looked up) is
        limited at all; it is no longer held."""
        if not counts_toward_rate(entry.envelope.kind):
            return
        key = (entry.channel, entry.party, entry.envelope.template)
        self.release(key, entry.envelope.id)
        if rate is not None:
            self._logged.setdefault(key, deque()).append(entry.time_at)

    def state(self, since: datetime) -> list[RateWindow]:
        """The logged windows, to save, without the times at or before ``since`` (outside every
        window)."""
        return [RateWindow(channel=key[0], party=key[1], template=key[2],
                           sent=[format_time(t) for t in times if t > since])
                for key, times in sorted(self._logged.items()) if times and times[-1] > since]

    def restore(self, saved: Iterable[RateWindow]) -> None:
        """Take back a saved ``state`` (into an empty ``RateLimits``).

        Raises:
            HotlineError: a time that does not parse (a damaged save).
        """
        for window in saved:
            key = (window.channel, window.party, window.template)
            self._logged[key] = deque(sorted(parse_time(t, field="sent") for t in window.sent))


class PendingState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A pending deadline as saved."""

    envelope_id: str
    index: int
    channel: str
    template: str
    precedence: str
    ack: str
    due: str
    missing: list[str]


class RateWindow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One (channel, party, template)'s logged messages within its window, as saved."""

    channel: str
    party: str
    template: str
    sent: list[str]


class ObligationsState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The deadlines and rate windows of the log's first ``size`` entries, whose tree root is
    ``root`` (base64): saved by the server so that a start reads only the log after ``size``."""

    size: int
    root: str
    pending: list[PendingState]
    rates: list[RateWindow]

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, data: bytes) -> ObligationsState:
        """Raises: HotlineError (``store.damaged``) if ``data`` is not a saved state."""
        try:
            value = msgspec.json.decode(data)
        except msgspec.DecodeError:
            raise StoreError("the saved obligations are not JSON", code=Code.STORE_DAMAGED) from None
        return convert(value, cls, what="the saved obligations", code=Code.STORE_DAMAGED,
                       error=StoreError)
