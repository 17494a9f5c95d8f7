"""What the agreed norms oblige over time: acknowledgement deadlines and rate limits. Pure.

Theory of operation: both are derived from log entries alone, fed in log order through
``observe(entry)``, live after each commit and at start from a recent window of the log, so a
restart forgets nothing that still matters. Time is always an argument.

- ``Deadlines``: a message whose template requires an acknowledgement is logged with
  ``expects: {ack, from, due}``. Acks (or replies) from those parties satisfy it; ``overdue(now)``
  hands out, once, each message still missing parties at its due time. A later ack is still
  accepted; ``lateness`` tells the server to mark it late.
- ``RateLimits``: a sliding window per (channel, party, template) of accepted messages; a
  submission beyond ``rate.max`` within ``rate.per`` is refused. Refused attempts do not count.
- ``check_ack_party``: an acknowledgement is owed only by the other parties (``expects.from``
  never names the sender's party), so an ack of one's own party's message means nothing; the
  server refuses it (``ack.own_party``) and the clients do not send it: one rule for all.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from hotline.entries import PENDING, Entry, EnvelopeEntry, Expects, OverdueEntry
from hotline.envelope import AckKind, Envelope, Kind
from hotline.errorcodes import Code
from hotline.errors import HotlineError, ProtocolViolation
from hotline.norms.template import AckRequirement, Rate
from hotline.times import format_time, parse_time


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
        """Each message past its due time with parties still missing, once; oldest first."""
        found: list[Pending] = []
        while self._heap and self._heap[0].due <= now:
            item = heapq.heappop(self._heap)
            if self._pending.get(item.envelope_id) is item:
                del self._pending[item.envelope_id]
                found.append(item)
        return found


class RateLimits:
    def __init__(self) -> None:
        self._sent: dict[tuple[str, str, str], deque[datetime]] = {}

    def check(self, key: tuple[str, str, str], rate: Rate, now: datetime) -> datetime | None:
        """``None`` if one more is allowed now, else the time the oldest one leaves the window."""
        sent = self._sent.get(key)
        if sent is None:
            return None
        while sent and sent[0] <= now - rate.per:
            sent.popleft()
        return sent[0] + rate.per if len(sent) >= rate.max else None

    def record(self, key: tuple[str, str, str], now: datetime) -> None:
        self._sent.setdefault(key, deque()).append(now)

    def forget(self, key: tuple[str, str, str], at: datetime) -> None:
        """Take back a ``record`` whose message was not logged after all (a resend, a failure)."""
        sent = self._sent.get(key)
        if sent is not None and at in sent:
            sent.remove(at)

    def observe(self, entry: EnvelopeEntry, rate: Rate | None) -> None:
        """Count an accepted message from the log (start-up replay of the recent window), if its
        template (whose ``rate`` the caller looked up) is limited at all."""
        if rate is not None and entry.envelope.kind is Kind.MESSAGE:
            self.record((entry.channel, entry.party, entry.envelope.template), entry.time_at)
