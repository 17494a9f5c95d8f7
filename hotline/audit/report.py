"""Compliance report of one channel, from the log alone (``hotline audit report``). Pure: log
entries, a period and ``now`` in; a frozen :class:`ComplianceReport` out. No I/O, no clock.

Theory of operation: the report is built in one pass over the entries in index order
(:class:`ReportBuilder`), keeping only what the channel needs, so memory grows with the channel's
messages in the period, not with the log. It trusts nothing but the entries; run it on entries
the :class:`hotline.audit.verify.Auditor` has accepted.

- Rule 1, the window: an entry counts when ``since <= time < until`` (its log time; either bound
  may be open). A message is selected by its own time; an answer to it (ack or reply) counts
  when it was logged before ``until``, even after the last selected message.
- Rule 2, requirements: a selected message whose entry carries ``expects: {ack, from, due}``
  makes one requirement per party in ``from``. The party meets it with its earliest answer, by
  the entry's ``party`` (the server's attribution after authenticating the sender):
  ``received`` by an ack ``received`` or ``understood``; ``understood`` by an ack
  ``understood``; ``reply`` by a ``message`` envelope whose ``reply_to`` is the message's id.
- Rule 3, status: answered at or before ``due`` is *on time*, after it *late*. Unanswered, with
  ``cutoff = min(now, until)``: *missing* when ``due < cutoff``, else *pending* (not yet due).
  The ``late`` flag the server writes is not read: lateness is recomputed from the log times.
- Rule 4, notices and refusals: ``overdue`` and ``rejected`` entries count by their own time. A
  ``rejected`` entry names a channel only when the sender may use it; those naming none are
  counted as ``no_channel`` and not attributed to any channel.
- Everything else (roster documents, health, other channels, unknown kinds) is skipped. A field
  the report needs that is missing or malformed raises :class:`ReportError` naming the entry:
  a compliance report never guesses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec

from hotline.audit.attachments import LoggedFile
from hotline.audit.keys import (
    AuthorityKeyDoc,
    ChannelKeys,
    channel_keys,
    render_keys,
)
from hotline.audit.text import (
    Column,
    duration_text,
    milliseconds,
    moment_text,
    table,
    time_or_none,
)
from hotline.canonical import JSONObject, dumps
from hotline.entries import Entry, EnvelopeEntry, Expects, OverdueEntry, RejectedEntry, channel_of
from hotline.envelope import Kind, Precedence
from hotline.errorcodes import Code
from hotline.errors import LogError, SealError, WireError
from hotline.roster import KeyRecord, Roster
from hotline.sealing import verify_disclosure
from hotline.times import format_time, parse_time
from hotline.typed import to_json

FORMAT_VERSION = 1  # ComplianceReport.to_json()["version"]; bumped if a key changes meaning
PRECEDENCES: tuple[str, ...] = tuple(p.value for p in Precedence)  # FLASH first
ACK_KINDS = ("received", "understood", "reply")
_SATISFIED_BY = {"received": frozenset({"received", "understood"}),
                 "understood": frozenset({"understood"}), "reply": frozenset({"reply"})}


class ReportError(LogError):
    """An entry the report reads is malformed or out of order, or the period is invalid."""

    code = Code.REPORT_INVALID


class Status(StrEnum):
    """Outcome of one party's acknowledgement requirement (Rule 3)."""

    ON_TIME = "on_time"
    LATE = "late"
    MISSING = "missing"
    PENDING = "pending"


@dataclass(frozen=True)
class Tally:
    """Requirements counted by status; ``required`` is their sum."""

    on_time: int = 0
    late: int = 0
    missing: int = 0
    pending: int = 0

    @property
    def required(self) -> int:
        return self.on_time + self.late + self.missing + self.pending

    def plus(self, status: Status) -> Tally:
        """This tally with one more requirement of ``status``."""
        return replace(self, **{status.value: getattr(self, status.value) + 1})

    def to_json(self) -> dict[str, int]:
        return {"required": self.required, "on_time": self.on_time, "late": self.late,
                "missing": self.missing, "pending": self.pending}


@dataclass(frozen=True)
class Requirement:
    """One party's acknowledgement of one message, and how it went.

    ``delay`` is how late the answer came (late), or how long past due it is at the cutoff
    (missing); None when on time or pending.
    """

    index: int  # the message's log index
    id: str  # the message's envelope id
    template: str
    precedence: str
    party: str
    ack: str  # what was required: received, understood or reply
    due: datetime
    status: Status
    answered: datetime | None = None  # log time of the earliest answer that meets it
    answer_index: int | None = None
    delay: timedelta | None = None

    def document(self) -> RequirementDoc:
        return RequirementDoc(self.index, self.id, self.template, self.precedence, self.party,
                              self.ack, format_time(self.due), self.status.value,
                              time_or_none(self.answered), self.answer_index,
                              None if self.delay is None else milliseconds(self.delay))


@dataclass(frozen=True)
class OverdueNotice:
    """An ``overdue`` entry: the server noted that a deadline passed with parties missing."""

    index: int
    time: datetime
    ref: str  # the message's envelope id
    entry: int  # the message's log index
    template: str
    precedence: str
    due: datetime
    ack: str
    missing: tuple[str, ...]

    def document(self) -> OverdueDoc:
        return OverdueDoc(self.index, format_time(self.time), self.ref, self.entry, self.template,
                          self.precedence, format_time(self.due), self.ack, list(self.missing))


@dataclass(frozen=True)
class CodeCount:
    """Refused attempts with one error code, and the reason the first of them gave."""

    code: str
    count: int
    example: str


@dataclass(frozen=True)
class Rejections:
    """Refused attempts on the channel (``rejected`` entries), by party and by code."""

    by_party: Mapping[str, int] = field(default_factory=dict)
    by_code: Mapping[str, CodeCount] = field(default_factory=dict)
    no_channel: int = 0  # refused attempts in the period naming no channel (Rule 4)

    @property
    def total(self) -> int:
        return sum(self.by_party.values())

    def document(self) -> RejectionsDoc:
        return RejectionsDoc(self.total, dict(self.by_party),
                             {c.code: CodeDoc(c.count, c.example) for c in self.by_code.values()},
                             self.no_channel)


@dataclass(frozen=True)
class Traffic:
    """Envelopes other than messages on the channel in the period."""

    acks: int = 0
    heartbeats: int = 0
    echoes: int = 0
    violations: int = 0  # recipients' reports of a sealed field breaking its template


@dataclass(frozen=True)
class Period:
    """The window asked for, the moment the report was made, and the entries found in it.

    ``first_index``/``last_index``/``entries`` cover the channel's entries counted in the window
    (envelopes, overdue notices, rejected attempts naming the channel); None/0 when there are none.
    """

    since: datetime | None
    until: datetime | None
    now: datetime
    first_index: int | None = None
    last_index: int | None = None
    first_time: datetime | None = None
    last_time: datetime | None = None
    entries: int = 0

    @property
    def cutoff(self) -> datetime:
        """The moment deciding missing against pending: ``min(now, until)``."""
        return self.now if self.until is None else min(self.now, self.until)

    def document(self) -> PeriodDoc:
        return PeriodDoc(time_or_none(self.since), time_or_none(self.until), format_time(self.now),
                         format_time(self.cutoff), self.first_index, self.last_index,
                         time_or_none(self.first_time), time_or_none(self.last_time), self.entries)


@dataclass(frozen=True)
class ComplianceReport:
    """What happened on one channel in one period, by the log.

    ``messages`` maps template -> precedence -> count with every precedence present;
    ``requirements`` holds every requirement in (message index, party order of ``from``) order;
    ``by_template``, ``by_party`` and ``total`` tally them.
    """

    channel: str
    period: Period
    messages: Mapping[str, Mapping[str, int]]
    traffic: Traffic
    requirements: tuple[Requirement, ...]
    by_template: Mapping[str, Tally]
    by_party: Mapping[str, Tally]
    total: Tally
    overdue: tuple[OverdueNotice, ...]
    rejected: Rejections
    keys: ChannelKeys = field(default_factory=lambda: ChannelKeys((), ()))  # ``with_keys``
    disclosed: tuple[DisclosedDoc, ...] = ()  # sealed fields disclosed to the reader, checked
    files: tuple[FileDoc, ...] = ()  # the attachments its messages in the period name (``with_files``)

    def with_files(self, files: Iterable[LoggedFile]) -> ComplianceReport:
        """This report with the attachments of the channel's messages logged in its period (the
        auditor's, each of a verified entry)."""
        period = self.period
        return replace(self, files=tuple(
            FileDoc(f.index, f.time, f.sender, f.party, f.where, f.name, f.media_type, f.size,
                    f.sha256, f.sealed) for f in files
            if f.channel == self.channel
            and (period.since is None or period.since <= parse_time(f.time))
            and (period.until is None or parse_time(f.time) < period.until)))

    def with_keys(self, roster: Roster) -> ComplianceReport:
        """This report with the channel's keys as ``roster`` (the verified one) knows them."""
        return replace(self, keys=channel_keys(roster, self.channel))

    @property
    def message_count(self) -> int:
        return sum(sum(row.values()) for row in self.messages.values())

    def with_status(self, status: Status) -> tuple[Requirement, ...]:
        """The requirements of one status, in message order."""
        return tuple(r for r in self.requirements if r.status is status)

    def to_json(self) -> JSONObject:
        """The report as a JSON object (:class:`ReportDoc`) with stable keys (all times RFC 3339
        UTC strings).

        Returns:
            ``{"version": 1, "channel",
            "period": {"since", "until", "now", "cutoff", "first_index", "last_index",
            "first_time", "last_time", "entries"},
            "messages": {"total", "by_template": {TEMPLATE: {"FLASH", "IMMEDIATE", "PRIORITY",
            "ROUTINE", "total"}}, "by_precedence": {"FLASH", ..., "ROUTINE"}},
            "traffic": {"acks", "heartbeats", "echoes", "violations"},
            "compliance": {"total": TALLY, "by_template": {TEMPLATE: TALLY},
            "by_party": {PARTY: TALLY}, "late": [REQ], "missing": [REQ], "pending": [REQ]},
            "overdue": {"count", "notices": [{"index", "time", "ref", "entry", "template",
            "precedence", "due", "ack", "missing": [PARTY]}]},
            "rejected": {"total", "by_party": {PARTY: n}, "by_code": {CODE: {"count",
            "example"}}, "no_channel"}, "keys": {...},
            "disclosed": [{"index", "time", "sender", "party", "template", "field", "to",
            "value"}], "files": [{"index", "time", "sender", "party", "where", "name",
            "media_type", "size", "sha256", "sealed"}]}`` (a sealed file: no name or media type,
            the size and SHA-256 of its sealed stream)
            where TALLY is ``{"required", "on_time", "late", "missing", "pending"}`` and REQ is
            ``{"index", "id", "template", "precedence", "party", "ack", "due", "status",
            "answered" (time or null), "answer_index" (int or null), "delay_ms" (int or null)}``.
            Mappings are sorted by key; null marks an open bound or an absent value.
        """
        by_precedence = {p: sum(row[p] for row in self.messages.values()) for p in PRECEDENCES}
        def requirements(status: Status) -> list[RequirementDoc]:
            return [r.document() for r in self.with_status(status)]
        doc: JSONObject = to_json(ReportDoc(
            FORMAT_VERSION, self.channel, self.period.document(),
            MessagesDoc(self.message_count,
                        {t: {**row, "total": sum(row.values())} for t, row in self.messages.items()},
                        by_precedence),
            self.traffic,
            ComplianceDoc(self.total.to_json(),
                          {t: tally.to_json() for t, tally in self.by_template.items()},
                          {p: tally.to_json() for p, tally in self.by_party.items()},
                          requirements(Status.LATE), requirements(Status.MISSING),
                          requirements(Status.PENDING)),
            OverdueListDoc(len(self.overdue), [n.document() for n in self.overdue]),
            self.rejected.document(),
            KeysDoc(list(self.keys.authorities), list(self.keys.members)),
            list(self.disclosed), list(self.files)))
        return doc


# -- the JSON form (``ComplianceReport.to_json()``): field order is key order ---------------------

class RequirementDoc(msgspec.Struct, frozen=True):
    index: int
    id: str
    template: str
    precedence: str
    party: str
    ack: str
    due: str
    status: str
    answered: str | None
    answer_index: int | None
    delay_ms: int | None


class OverdueDoc(msgspec.Struct, frozen=True):
    index: int
    time: str
    ref: str
    entry: int
    template: str
    precedence: str
    due: str
    ack: str
    missing: list[str]


class CodeDoc(msgspec.Struct, frozen=True):
    count: int
    example: str


class RejectionsDoc(msgspec.Struct, frozen=True):
    total: int
    by_party: dict[str, int]
    by_code: dict[str, CodeDoc]
    no_channel: int


class PeriodDoc(msgspec.Struct, frozen=True):
    since: str | None
    until: str | None
    now: str
    cutoff: str
    first_index: int | None
    last_index: int | None
    first_time: str | None
    last_time: str | None
    entries: int


class MessagesDoc(msgspec.Struct, frozen=True):
    total: int
    by_template: dict[str, dict[str, int]]  # template -> precedence (and "total") -> count
    by_precedence: dict[str, int]


class ComplianceDoc(msgspec.Struct, frozen=True):
    total: dict[str, int]  # Tally.to_json()
    by_template: dict[str, dict[str, int]]
    by_party: dict[str, dict[str, int]]
    late: list[RequirementDoc]
    missing: list[RequirementDoc]
    pending: list[RequirementDoc]


class OverdueListDoc(msgspec.Struct, frozen=True):
    count: int
    notices: list[OverdueDoc]


class KeysDoc(msgspec.Struct, frozen=True):
    authorities: list[AuthorityKeyDoc]
    members: list[KeyRecord]


@dataclass(frozen=True)
class Claimed:
    """A disclosure handed to the report: the SD-JWT ``disclosure`` of sealed field ``field``
    of entry ``index`` (``hotline disclose``), for ``to`` (auditor, public). The report shows it
    only once it matches the digest its sender signed in the log the report reads."""

    index: int
    field: str
    to: str
    disclosure: str


class DisclosedDoc(msgspec.Struct, frozen=True):
    """A sealed field of a message disclosed to the report's reader (checked, never trusted)."""

    index: int
    time: str
    sender: str
    party: str
    template: str
    field: str
    to: str  # auditor, public
    value: Any


class FileDoc(msgspec.Struct, frozen=True):
    """A file a message of the period names (by the verified log)."""

    index: int
    time: str
    sender: str
    party: str
    where: str  # body.FIELD[i]
    name: str | None  # None: sealed
    media_type: str | None
    size: int
    sha256: str
    sealed: bool


class ReportDoc(msgspec.Struct, frozen=True):
    version: int
    channel: str
    period: PeriodDoc
    messages: MessagesDoc
    traffic: Traffic  # acks, heartbeats, echoes, violations
    compliance: ComplianceDoc
    overdue: OverdueListDoc
    rejected: RejectionsDoc
    keys: KeysDoc
    disclosed: list[DisclosedDoc]
    files: list[FileDoc]


# -- building ------------------------------------------------------------------------------------

@dataclass
class _Open:
    """A selected message that expects answers, while the log is read."""

    index: int
    id: str
    template: str
    precedence: str
    ack: str
    parties: tuple[str, ...]
    due: datetime
    answers: dict[str, tuple[datetime, int]] = field(default_factory=dict)  # party -> (time, index)


def next_index(entry: Entry, last: int | None) -> int:
    """The index of ``entry``, which must come after entry ``last``.

    Raises:
        ReportError: an entry not in the log yet, or out of index order.
    """
    index = entry.index
    if index < 0:
        raise ReportError(f"log entry with index {index}: an index is an integer >= 0",
                          code=Code.REPORT_BAD_ENTRY)
    if last is not None and index <= last:
        raise ReportError(f"entry {index} comes after entry {last}: give the entries in index "
                          "order", code=Code.REPORT_BAD_ENTRY)
    return index


class ReportBuilder:
    """Builds a :class:`ComplianceReport` from entries given one at a time, in index order.

    :func:`build_report` is the one-call form; the builder lets a caller feed entries while it
    verifies them (``hotline audit report``) without holding the log in memory.
    """

    def __init__(self, *, channel: str, since: datetime | None, until: datetime | None,
                 disclosures: Iterable[Claimed] = ()) -> None:
        """Start an empty report.

        Args:
            channel: the channel reported on.
            since: first moment of the window (inclusive), or None for the start of the log.
            until: end of the window (exclusive), or None for no end.
            disclosures: sealed fields disclosed to the reader, each checked against its entry
                as the log gives it (a message of this channel, in the period or not).

        Raises:
            ReportError: a datetime is naive, or ``since`` is not before ``until``.
        """
        check_period(since, until)
        self.channel = channel
        self.since, self.until = since, until
        self._last_index: int | None = None
        self._first: tuple[int, datetime] | None = None
        self._latest: tuple[int, datetime] | None = None
        self._entries = 0
        self._messages: dict[str, Counter[str]] = {}
        self._traffic: Counter[str] = Counter()
        self._open: dict[str, _Open] = {}  # by envelope id
        self._overdue: list[OverdueNotice] = []
        self._rejected_by_party: Counter[str] = Counter()
        self._rejected_by_code: dict[str, CodeCount] = {}
        self._no_channel = 0
        self._claimed: dict[int, list[Claimed]] = {}
        for claimed in disclosures:
            self._claimed.setdefault(claimed.index, []).append(claimed)
        self._disclosed: list[DisclosedDoc] = []

    def add(self, entry: Entry) -> None:
        """Take the next log entry (any kind; those the report does not read are skipped).

        Args:
            entry: a log entry, after the previous one.

        Raises:
            ReportError: the entry is out of order, or a value the report reads is malformed
                (a time, an ack kind, a precedence).
        """
        self._last_index = next_index(entry, self._last_index)
        if isinstance(entry, EnvelopeEntry) and entry.channel == self.channel:
            self._envelope(entry)
        elif isinstance(entry, OverdueEntry) and entry.channel == self.channel:
            self._overdue_notice(entry)
        elif isinstance(entry, RejectedEntry):
            self._rejection(entry)

    def _in_window(self, time: datetime) -> bool:
        return (self.since is None or self.since <= time) and self._before_until(time)

    def _before_until(self, time: datetime) -> bool:
        return self.until is None or time < self.until

    def _count(self, index: int, time: datetime) -> None:
        if self._first is None:
            self._first = (index, time)
        self._latest = (index, time)
        self._entries += 1

    def _disclose(self, entry: EnvelopeEntry) -> None:
        """Check the disclosures of ``entry``'s sealed fields against the digests its sender
        signed: SealError (``seal.digest_mismatch``: forged or altered) otherwise."""
        env = entry.envelope
        for claimed in self._claimed.pop(entry.index):
            digest = env.sealed.digests.get(claimed.field) if env.sealed is not None else None
            if digest is None:
                raise SealError(f"entry {entry.index} has no sealed field {claimed.field!r}: "
                                "nothing to disclose", code=Code.SEAL_INVALID)
            value = verify_disclosure(claimed.disclosure, name=claimed.field, digest=digest).value
            self._disclosed.append(DisclosedDoc(entry.index, entry.time, env.sender, entry.party,
                                                env.template, claimed.field, claimed.to, value))

    def _envelope(self, entry: EnvelopeEntry) -> None:
        index, time = entry.index, entry_time(entry.index, "envelope", "time", entry.time)
        envelope = entry.envelope
        if index in self._claimed:
            self._disclose(entry)
        in_window = self._in_window(time)
        if envelope.kind is Kind.MESSAGE:
            if envelope.reply_to is not None and self._before_until(time):
                self._answer(envelope.reply_to, "reply", entry.party, time, index)
            if not in_window:
                return
            self._count(index, time)
            template, precedence = envelope.template, envelope.precedence.value
            self._messages.setdefault(template, Counter())[precedence] += 1
            if isinstance(entry.expects, Expects):
                self._expect(entry, entry.expects, template, precedence)
        elif envelope.kind is Kind.ACK:
            answer = str(envelope.body["ack"])  # an ack's body is checked: received | understood
            if self._before_until(time) and envelope.reply_to is not None:
                self._answer(envelope.reply_to, answer, entry.party, time, index)
            if in_window:
                self._count(index, time)
                self._traffic["acks"] += 1
        elif envelope.kind is Kind.VIOLATION:
            if in_window:
                self._count(index, time)
                self._traffic["violations"] += 1
        elif in_window:  # a heartbeat or an echo
            self._count(index, time)
            self._traffic["heartbeats" if envelope.kind is Kind.HEARTBEAT else "echoes"] += 1

    def _expect(self, entry: EnvelopeEntry, expects: Expects, template: str, precedence: str) -> None:
        message_id = entry.envelope.id
        if message_id in self._open:
            raise entry_error(entry.index, "envelope", f"envelope {message_id} was logged before")
        where = "envelope.expects"
        self._open[message_id] = _Open(
            index=entry.index, id=message_id, template=template, precedence=precedence,
            ack=entry_choice(entry.index, where, "ack", expects.ack, ACK_KINDS),
            parties=tuple(dict.fromkeys(expects.parties)),
            due=entry_time(entry.index, where, "due", expects.due))

    def _answer(self, ref: str, answer: str, party: str, time: datetime, index: int) -> None:
        message = self._open.get(ref)
        if (message is None or party not in message.parties
                or answer not in _SATISFIED_BY[message.ack]):
            return
        earlier = message.answers.get(party)
        if earlier is None or time < earlier[0]:
            message.answers[party] = (time, index)

    def _overdue_notice(self, entry: OverdueEntry) -> None:
        index, where = entry.index, "overdue"
        time = entry_time(index, where, "time", entry.time)
        if not self._in_window(time):
            return
        self._count(index, time)
        self._overdue.append(OverdueNotice(
            index=index, time=time, ref=entry.ref, entry=entry.entry, template=entry.template,
            precedence=entry_choice(index, where, "precedence", entry.precedence, PRECEDENCES),
            due=entry_time(index, where, "due", entry.due),
            ack=entry_choice(index, where, "ack", entry.ack, ACK_KINDS), missing=tuple(entry.missing)))

    def _rejection(self, entry: RejectedEntry) -> None:
        channel = channel_of(entry)
        if channel is not None and channel != self.channel:
            return
        time = entry_time(entry.index, "rejected", "time", entry.time)
        if not self._in_window(time):
            return
        if channel is None:
            self._no_channel += 1
            return
        party, code, reason = entry.party, entry.code, entry.reason
        self._count(entry.index, time)
        self._rejected_by_party[party] += 1
        seen = self._rejected_by_code.get(code)
        self._rejected_by_code[code] = (CodeCount(code, 1, reason) if seen is None
                                        else CodeCount(code, seen.count + 1, seen.example))

    def finish(self, *, now: datetime) -> ComplianceReport:
        """The report of every entry given so far, judged as of ``now``.

        Args:
            now: the moment the report is made (aware); an unanswered requirement is missing
                when its due time is before ``min(now, until)``, else pending.

        Returns:
            The frozen report; the builder may take more entries and finish again.

        Raises:
            ReportError: ``now`` is naive.
        """
        check_aware("now", now)
        if self._claimed:  # a disclosure of an entry this log does not hold on the channel
            index = min(self._claimed)
            raise SealError(f"a disclosure names entry {index}, which is no message of channel "
                            f"{self.channel} in this log", code=Code.SEAL_INVALID)
        first, latest = self._first, self._latest
        period = Period(since=self.since, until=self.until, now=now,
                        first_index=first[0] if first else None,
                        last_index=latest[0] if latest else None,
                        first_time=first[1] if first else None,
                        last_time=latest[1] if latest else None, entries=self._entries)
        cutoff = period.cutoff
        requirements = tuple(_judge(message, party, cutoff)
                             for message in self._open.values() for party in message.parties)
        by_template: dict[str, Tally] = {}
        by_party: dict[str, Tally] = {}
        total = Tally()
        for requirement in requirements:
            by_template[requirement.template] = by_template.get(requirement.template,
                                                                Tally()).plus(requirement.status)
            by_party[requirement.party] = by_party.get(requirement.party,
                                                       Tally()).plus(requirement.status)
            total = total.plus(requirement.status)
        return ComplianceReport(
            channel=self.channel, period=period,
            messages={t: {p: row[p] for p in PRECEDENCES} for t, row in sorted(self._messages.items())},
            traffic=Traffic(acks=self._traffic["acks"], heartbeats=self._traffic["heartbeats"],
                            echoes=self._traffic["echoes"], violations=self._traffic["violations"]),
            requirements=requirements, by_template=dict(sorted(by_template.items())),
            by_party=dict(sorted(by_party.items())), total=total, overdue=tuple(self._overdue),
            rejected=Rejections(by_party=dict(sorted(self._rejected_by_party.items())),
                                by_code=dict(sorted(self._rejected_by_code.items())),
                                no_channel=self._no_channel),
            disclosed=tuple(self._disclosed))


def _judge(message: _Open, party: str, cutoff: datetime) -> Requirement:
    """Rule 3 for one party of one message."""
    unanswered = Requirement(index=message.index, id=message.id, template=message.template,
                             precedence=message.precedence, party=party, ack=message.ack,
                             due=message.due, status=Status.PENDING)
    answer = message.answers.get(party)
    if answer is not None:
        answered, answer_index = answer
        late = answered > message.due
        return replace(unanswered, status=Status.LATE if late else Status.ON_TIME,
                       answered=answered, answer_index=answer_index,
                       delay=answered - message.due if late else None)
    if message.due < cutoff:
        return replace(unanswered, status=Status.MISSING, delay=cutoff - message.due)
    return unanswered


def build_report(entries: Iterable[Entry], *, channel: str, since: datetime | None,
                 until: datetime | None, now: datetime) -> ComplianceReport:
    """Build the compliance report of ``channel`` from log entries (see the module docstring).

    Args:
        entries: log entries in index order, any kinds (only the channel's are read).
        channel: the channel reported on.
        since: first moment of the window (inclusive), or None for the start of the log.
        until: end of the window (exclusive), or None for no end.
        now: the moment the report is made (aware); an unanswered requirement is missing when
            its due time is before ``min(now, until)``, else pending.

    Returns:
        The frozen report.

    Raises:
        ReportError: a naive datetime, ``since >= until``, entries out of index order, or a
            malformed field in an entry the report reads (the message names the entry).
    """
    builder = ReportBuilder(channel=channel, since=since, until=until)
    for entry in entries:
        builder.add(entry)
    return builder.finish(now=now)


def check_period(since: datetime | None, until: datetime | None) -> None:
    """A report's window: aware datetimes, ``since`` before ``until`` (ReportError otherwise)."""
    for name, moment in (("since", since), ("until", until)):
        check_aware(name, moment)
    if since is not None and until is not None and since >= until:
        raise ReportError(f"since ({format_time(since)}) must be before until "
                          f"({format_time(until)})", code=Code.REPORT_BAD_PERIOD)


def check_aware(name: str, moment: datetime | None) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise ReportError(f"{name} must be timezone-aware", code=Code.REPORT_BAD_PERIOD)


# The entries are typed (``hotline.entries``): what is left to check is what a type does not
# say, a time that parses and a value among those the report knows, named by entry and field.

def entry_error(index: int, where: str, message: str) -> ReportError:
    return ReportError(f"entry {index} ({where}): {message}", code=Code.REPORT_BAD_ENTRY)


def entry_choice(index: int, where: str, key: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise entry_error(index, where, f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def entry_time(index: int, where: str, key: str, value: str) -> datetime:
    try:
        return parse_time(value, field=key)
    except WireError as exc:
        raise entry_error(index, where, exc.message) from exc


def _tally_rows(tallies: Mapping[str, Tally]) -> list[list[str]]:
    return [[name, *(str(n) for n in tally.to_json().values())] for name, tally in tallies.items()]


def _requirement_table(requirements: Sequence[Requirement]) -> list[str]:
    columns = [Column("index", right=True), Column("template", shrink=True), Column("precedence"),
               Column("party", shrink=True), Column("needs"), Column("due"),
               Column("answered"), Column("delay", right=True)]
    return table(columns, [[str(r.index), r.template, r.precedence, r.party, r.ack, moment_text(r.due),
                             moment_text(r.answered), "-" if r.delay is None else duration_text(r.delay)]
                            for r in requirements])


def render_text(report: ComplianceReport) -> str:
    """The report as a plain-text page: fixed-width tables, at most 100 columns, no colours.

    Args:
        report: a report from :func:`build_report`.

    Returns:
        The text, ending with a newline. Times are UTC, shown to the second (the JSON form has
        milliseconds).
    """
    period = report.period
    lines = [f"Compliance report for channel {report.channel}",
             f"Period    {moment_text(period.since, 'start of the log')} to "
             f"{moment_text(period.until, 'now')} (all times UTC)",
             f"As of     {moment_text(period.cutoff)} (acknowledgements not due by then are pending)"]
    if period.entries:
        lines += [f"Log       index {period.first_index} to {period.last_index}: {period.entries} "
                  "entries of this channel",
                  f"          first logged {moment_text(period.first_time)}, last "
                  f"{moment_text(period.last_time)}"]
    else:
        lines.append("Log       no entries of this channel in the period")

    lines += ["", f"Messages: {report.message_count}"]
    if report.messages:
        rows = [[t, *(str(row[p]) for p in PRECEDENCES), str(sum(row.values()))]
                for t, row in report.messages.items()]
        rows.append(["total", *(str(sum(row[p] for row in report.messages.values()))
                                for p in PRECEDENCES), str(report.message_count)])
        lines += table([Column("template", shrink=True),
                         *(Column(p, right=True) for p in PRECEDENCES), Column("total", right=True)],
                        rows)
    traffic = report.traffic
    lines.append(f"Other traffic: acks {traffic.acks}; agent traffic: heartbeats "
                 f"{traffic.heartbeats}, echoes {traffic.echoes}")
    if traffic.violations:
        lines.append(f"Violations reported by recipients of sealed fields: {traffic.violations}")

    lines += ["", f"Acknowledgements required: {report.total.required} (one per required party "
                  "of each message)"]
    if report.total.required:
        counts = [Column(h, right=True) for h in ("required", "on time", "late", "missing", "pending")]
        lines += table([Column("template", shrink=True), *counts],
                        [*_tally_rows(report.by_template), *_tally_rows({"total": report.total})])
        lines += table([Column("party", shrink=True), *counts], _tally_rows(report.by_party))
    for status, title in ((Status.LATE, "Late acknowledgements"),
                          (Status.MISSING, f"Missing acknowledgements as of {moment_text(period.cutoff)}"),
                          (Status.PENDING, "Pending acknowledgements (not yet due)")):
        chosen = report.with_status(status)
        if chosen:
            lines += ["", f"{title}: {len(chosen)}", *_requirement_table(chosen)]

    lines += ["", f"Overdue notices logged by the server: {len(report.overdue)}"]
    if report.overdue:
        lines += table([Column("index", right=True), Column("message", right=True),
                         Column("template", shrink=True), Column("precedence"), Column("needs"),
                         Column("due"), Column("missing", shrink=True)],
                        [[str(n.index), str(n.entry), n.template, n.precedence, n.ack, moment_text(n.due),
                          ", ".join(n.missing)] for n in report.overdue])

    rejected = report.rejected
    lines += ["", f"Rejected attempts: {rejected.total}"]
    if rejected.total:
        lines += table([Column("party", shrink=True), Column("attempts", right=True)],
                        [[p, str(n)] for p, n in rejected.by_party.items()])
        lines += table([Column("code", shrink=True), Column("attempts", right=True),
                         Column("example reason", shrink=True)],
                        [[c.code, str(c.count), c.example] for c in rejected.by_code.values()])
    if rejected.no_channel:
        lines.append(f"  not counted: {rejected.no_channel} in the period naming no channel (on a "
                     "channel the sender may not use)")
    if report.keys.authorities:
        lines += render_keys(report.keys)
    if report.disclosed:
        lines += ["", f"Disclosed sealed fields: {len(report.disclosed)} (each proven in the log and "
                  "matching the digest its sender signed; the value is the sender's words)"]
        lines += table([Column("index", right=True), Column("template", shrink=True),
                        Column("sender", shrink=True), Column("field"), Column("to"),
                        Column("value", shrink=True)],
                       [[str(d.index), d.template, f"{d.sender} ({d.party})", d.field, d.to,
                         dumps(d.value)] for d in report.disclosed])
    if report.files:
        lines += ["", f"Attached files: {len(report.files)} (named by SHA-256 in verified entries; "
                  "`audit verify --attachments DIR` checks copies)"]
        lines += table([Column("index", right=True), Column("sender", shrink=True),
                        Column("field"), Column("file", shrink=True), Column("bytes", right=True),
                        Column("SHA-256")],
                       [[str(f.index), f"{f.sender} ({f.party})", f.where,
                         f"{f.name} ({f.media_type})" if f.name is not None else "(sealed)",
                         f"{f.size:,}", f.sha256] for f in report.files])
    return "\n".join(lines) + "\n"
