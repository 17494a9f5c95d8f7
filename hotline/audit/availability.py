"""Availability of one channel, from the log alone (``hotline audit availability``). Pure: log
entries, a period and ``now`` in; a frozen :class:`AvailabilityReport` out. No I/O, no clock.

Theory of operation: the report is built in one pass over the entries in index order
(:class:`AvailabilityBuilder`), so a caller can feed entries while it verifies them. Memory grows
with the channel's health transitions, parties and their silences, and with the distinct
round-trip times in milliseconds, plus a bounded window of recent heartbeat ids; not with the log.
It trusts nothing but the entries; run it on entries the :class:`hotline.audit.verify.Auditor`
has accepted.

- Rule 1, the window ``[since, until)``: by default from the channel's first entry (its
  agreement) to the log's last entry, or ``now`` if that is earlier. Heartbeats, echoes and
  ``health`` entries count when their log time is in the window (with no ``until`` given, every
  entry read counts).
- Rule 2, the timeline: the channel is UNKNOWN until its first ``health`` entry; then each
  ``health`` entry (what :meth:`hotline.health.Transition.entry` logs) puts the channel in state
  ``to`` until the next one begins: the timeline is the sequence of logged transitions, none
  folded into another. A state begins at its entry's ``since`` (when it began by the evidence,
  not when the sweep logged it), with two bounds that keep what the live view (console,
  ``/metrics``) showed: it never begins before the previous entry was logged (a later entry does
  not rewrite a moment an earlier one spoke for), and a fault (DEGRADED or DOWN) lasts until the
  entry that ends it was logged, so the state after a fault begins when it was logged. (The sweep
  dates a DOWN that follows a DEGRADED from the same missed heartbeat; without the second bound
  the DEGRADED time shown live would be reported as none.) A state change counts by its start
  even when logged after ``until``. The time in each state is summed over the window, so UP,
  DEGRADED, DOWN and UNKNOWN add up to the window's length.
- Rule 3, outages: every DOWN period that overlaps the window (or, still on, begins at its
  end: the window ended by the DOWN entry itself), with its start and end as the
  timeline has them (none yet: ongoing), when its cause began (the DOWN entry's ``since``: the
  first missed heartbeat, earlier than the start when the channel was DEGRADED first) and its
  cause: the DOWN entry's ``reason``, and whose fault it was. An outage in which every party of
  the channel was silent at once (each in a silence, a gap of more than interval + grace between
  two heartbeats or after its last one, that spans the moment the cause began) is the server's
  or its host's (or the network's to it), not one party's: the party a sweep names is only the
  one whose agent came back last.
- Rule 4, heartbeats: per party, the heartbeats and echoes logged in the window, the longest
  gap between two consecutive heartbeats of that party overlapping the window (from the log
  times; a server outage shows as a gap in every party's heartbeats, and as DOWN only if a sweep
  ran before the agents were back), and its silences (gaps longer than interval + grace, and
  the time after its last heartbeat if that long) cut to the window.
- Rule 5, round trips: an echo logged in the window names a heartbeat (``reply_to``) of another
  party logged among the last ``KEEP_HEARTBEATS``; its round trip is the echo's log time minus
  the heartbeat's. Percentiles are nearest-rank over milliseconds.
- Rule 6, the interval: the channel's latest ``agreement`` entry read (``heartbeat: {interval,
  grace}``, seconds) gives the interval and grace shown, and its parties are listed even when
  they never beat.

Everything else (messages, acks, roster documents other than the channel's agreements, other
channels, unknown kinds) is skipped. A field the report reads that is missing or malformed, or a
``health`` entry whose state begins after it was logged or before the state it ends, raises
:class:`hotline.audit.report.ReportError` naming the entry: an availability report never
guesses.
"""

from __future__ import annotations

import textwrap
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import msgspec

from hotline.audit.report import check_aware, check_period, entry_error, entry_time, next_index
from hotline.audit.text import (
    WIDTH,
    Column,
    duration_text,
    milliseconds,
    moment_text,
    table,
    time_or_none,
)
from hotline.canonical import JSONObject
from hotline.entries import AgreementEntry, Entry, EnvelopeEntry, HealthEntry, channel_of
from hotline.entries import HealthState as State
from hotline.envelope import Kind
from hotline.errors import WireError
from hotline.times import format_time, parse_time
from hotline.typed import to_json

FORMAT_VERSION = 2  # AvailabilityReport.to_json()["version"]; bumped if a key changes meaning
# (2: the timeline keeps every logged transition, so a DOWN after a DEGRADED starts when logged)
KEEP_HEARTBEATS = 100_000  # heartbeats remembered for pairing echoes (Rule 5), newest kept
ORDER = (State.UP, State.DEGRADED, State.DOWN, State.UNKNOWN)  # as reports list the states
PERCENTILES = (50, 90, 99)
STATES = tuple(s.value for s in State)
FAULTS = frozenset({State.DEGRADED, State.DOWN})
SEVERITY = {State.UP: 0, State.UNKNOWN: 1, State.DEGRADED: 2, State.DOWN: 3}  # as hotline.health
HOST = "host"  # Outage.attribution: every party silent at once
PARTY = "party"


@dataclass(frozen=True)
class Period:
    """The window reported on (Rule 1) and the moment the report was made.

    ``since``/``until`` are the window actually used (None when the channel has no entries);
    ``channel_start`` is the channel's first entry, ``log_end`` the log's last entry.
    """

    since: datetime | None
    until: datetime | None
    now: datetime
    channel_start: datetime | None = None
    log_end: datetime | None = None

    @property
    def length(self) -> timedelta:
        if self.since is None or self.until is None or self.until <= self.since:
            return timedelta(0)
        return self.until - self.since

    def document(self) -> PeriodDoc:
        return PeriodDoc(time_or_none(self.since), time_or_none(self.until), format_time(self.now),
                         milliseconds(self.length), time_or_none(self.channel_start),
                         time_or_none(self.log_end))


@dataclass(frozen=True)
class Span:
    """One stretch of the timeline, cut to the window: the channel in ``state`` from ``start``
    to ``end``; ``index`` and ``reason`` are the ``health`` entry's (None before the first)."""

    start: datetime
    end: datetime
    state: State
    index: int | None
    reason: str | None

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def document(self) -> SpanDoc:
        return SpanDoc(format_time(self.start), format_time(self.end), self.state.value,
                       milliseconds(self.length), self.index, self.reason)


@dataclass(frozen=True)
class Outage:
    """A DOWN period (Rule 3): from ``start`` to ``end`` (None: still DOWN at the last entry
    read), as the ``health`` entries ``index`` and ``end_index`` date them; its cause began at
    ``began``. ``attribution`` is HOST when every party was silent at once (``silent`` names
    them), else PARTY (``cause`` names the party)."""

    start: datetime
    end: datetime | None
    length: timedelta  # to ``end``, or to the end of the window when ongoing
    cause: str
    index: int
    end_index: int | None
    began: datetime | None = None  # the DOWN entry's since; None: as ``start``
    attribution: str = PARTY
    silent: tuple[str, ...] = ()

    @property
    def ongoing(self) -> bool:
        return self.end is None

    @property
    def host(self) -> bool:
        return self.attribution == HOST

    def document(self) -> OutageDoc:
        return OutageDoc(format_time(self.start), time_or_none(self.end), self.ongoing,
                         milliseconds(self.length), format_time(self.began or self.start),
                         self.cause, self.attribution, list(self.silent), self.index,
                         self.end_index)


@dataclass(frozen=True)
class Gap:
    """Two consecutive heartbeats of one party, ``start`` and ``end`` their log times."""

    party: str
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def document(self) -> GapDoc:
        return GapDoc(self.party, format_time(self.start), format_time(self.end),
                      milliseconds(self.length))


@dataclass(frozen=True)
class PartyTraffic:
    """One party's heartbeats and echoes in the window, and its longest heartbeat gap."""

    party: str
    heartbeats: int = 0
    echoes: int = 0
    longest_gap: Gap | None = None
    silences: tuple[Gap, ...] = ()  # gaps longer than interval + grace overlapping the window,
    # the last one to the end of the window if the party is silent then

    def document(self) -> PartyDoc:
        return PartyDoc(self.heartbeats, self.echoes, _gap(self.longest_gap),
                        [g.document() for g in self.silences])


@dataclass(frozen=True)
class RoundTrips:
    """Heartbeat -> echo round trips (Rule 5): how many, and nearest-rank percentiles."""

    count: int = 0
    p50: timedelta | None = None
    p90: timedelta | None = None
    p99: timedelta | None = None
    max: timedelta | None = None
    histogram: tuple[tuple[int, int], ...] = ()  # (milliseconds, echoes), ascending; not in JSON

    def document(self) -> RoundTripsDoc:
        def ms(value: timedelta | None) -> int | None:
            return None if value is None else milliseconds(value)
        return RoundTripsDoc(self.count, ms(self.p50), ms(self.p90), ms(self.p99), ms(self.max))


@dataclass(frozen=True)
class AvailabilityReport:
    """How available one channel was in one period, by the log.

    ``time_in`` holds every state (summing to the window's length); ``timeline`` covers the
    window without holes; ``parties`` is sorted by name.
    """

    channel: str
    period: Period
    interval: timedelta | None  # from the channel's latest agreement read; None if none
    grace: timedelta | None
    time_in: Mapping[State, timedelta]
    timeline: tuple[Span, ...]
    outages: tuple[Outage, ...]
    transitions: int  # health entries logged in the window
    parties: Mapping[str, PartyTraffic]
    longest_gap: Gap | None
    round_trips: RoundTrips

    def percent(self, state: State) -> float | None:
        """Share of the window spent in ``state``, in percent; None for an empty window."""
        length = self.period.length
        return None if not length else 100 * (self.time_in[state] / length)

    @property
    def heartbeats(self) -> int:
        return sum(p.heartbeats for p in self.parties.values())

    @property
    def echoes(self) -> int:
        return sum(p.echoes for p in self.parties.values())

    def to_json(self) -> JSONObject:
        """The report as a JSON object (:class:`AvailabilityDoc`) with stable keys (all times
        RFC 3339 UTC strings).

        Returns:
            ``{"version": 1, "channel",
            "period": {"since", "until", "now", "length_ms", "channel_start", "log_end"},
            "heartbeat": {"interval_s", "grace_s"},
            "states": {"UP", "DEGRADED", "DOWN", "UNKNOWN": {"ms", "percent"}},
            "outages": [{"start", "end", "ongoing", "length_ms", "began", "cause",
            "attribution", "silent", "index", "end_index"}],
            "timeline": [{"start", "end", "state", "length_ms", "index", "reason"}],
            "transitions",
            "traffic": {"heartbeats", "echoes", "by_party": {PARTY: {"heartbeats", "echoes",
            "longest_gap": GAP}}, "longest_gap": GAP},
            "round_trip": {"count", "p50_ms", "p90_ms", "p99_ms", "max_ms"}}``
            where GAP is ``{"party", "from", "to", "length_ms"}`` or null. ``percent`` is a number
            rounded to 3 decimals (null for an empty window); every other number is an integer;
            an outage's ``attribution`` is ``"host"`` (every party silent at once, ``silent``
            lists them) or ``"party"`` (``silent`` is empty);
            null marks an absent value (an ongoing outage's ``end``, the timeline's stretch
            before the first ``health`` entry's ``index`` and ``reason``).
        """
        def percent(state: State) -> float | None:
            value = self.percent(state)
            return None if value is None else round(value, 3)
        doc: JSONObject = to_json(AvailabilityDoc(
            FORMAT_VERSION, self.channel, self.period.document(),
            HeartbeatDoc(_seconds(self.interval), _seconds(self.grace)),
            {s.value: StateDoc(milliseconds(self.time_in[s]), percent(s)) for s in ORDER},
            [o.document() for o in self.outages], [s.document() for s in self.timeline],
            self.transitions,
            TrafficDoc(self.heartbeats, self.echoes,
                       {p: t.document() for p, t in self.parties.items()}, _gap(self.longest_gap)),
            self.round_trips.document()))
        return doc


def _seconds(delta: timedelta | None) -> int | None:
    return None if delta is None else int(delta.total_seconds())


def _gap(gap: Gap | None) -> GapDoc | None:
    return None if gap is None else gap.document()


# -- the JSON form (``AvailabilityReport.to_json()``): field order is key order -------------------

class PeriodDoc(msgspec.Struct, frozen=True):
    since: str | None
    until: str | None
    now: str
    length_ms: int
    channel_start: str | None
    log_end: str | None


class SpanDoc(msgspec.Struct, frozen=True):
    start: str
    end: str
    state: str
    length_ms: int
    index: int | None
    reason: str | None


class OutageDoc(msgspec.Struct, frozen=True):
    start: str
    end: str | None
    ongoing: bool
    length_ms: int
    began: str
    cause: str
    attribution: str
    silent: list[str]
    index: int
    end_index: int | None


class GapDoc(msgspec.Struct, frozen=True):
    party: str
    start: str = msgspec.field(name="from")
    end: str = msgspec.field(name="to")
    length_ms: int


class PartyDoc(msgspec.Struct, frozen=True):
    heartbeats: int
    echoes: int
    longest_gap: GapDoc | None
    silences: list[GapDoc]


class RoundTripsDoc(msgspec.Struct, frozen=True):
    count: int
    p50_ms: int | None
    p90_ms: int | None
    p99_ms: int | None
    max_ms: int | None


class HeartbeatDoc(msgspec.Struct, frozen=True):
    interval_s: int | None
    grace_s: int | None


class StateDoc(msgspec.Struct, frozen=True):
    ms: int
    percent: float | None


class TrafficDoc(msgspec.Struct, frozen=True):
    heartbeats: int
    echoes: int
    by_party: dict[str, PartyDoc]
    longest_gap: GapDoc | None


class AvailabilityDoc(msgspec.Struct, frozen=True):
    version: int
    channel: str
    period: PeriodDoc
    heartbeat: HeartbeatDoc
    states: dict[str, StateDoc]
    outages: list[OutageDoc]
    timeline: list[SpanDoc]
    transitions: int
    traffic: TrafficDoc
    round_trip: RoundTripsDoc


# -- building ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Change:
    """A logged state change: the channel in ``state`` from ``start`` (Rule 2, from its
    ``since`` and when it and the previous one were ``logged``)."""

    start: datetime
    state: State
    index: int
    reason: str
    since: datetime
    logged: datetime


@dataclass(frozen=True)
class _Stretch:
    """The channel in one state from ``start`` (None: the log's start) to ``end`` (None: still),
    begun by ``change`` (None before the first) and ended by ``ended_by``."""

    start: datetime | None
    end: datetime | None
    state: State
    change: _Change | None
    ended_by: _Change | None


@dataclass
class _Party:
    heartbeats: int = 0
    echoes: int = 0
    last_beat: datetime | None = None
    longest: Gap | None = None
    silences: list[Gap] = field(default_factory=list)  # gaps longer than interval + grace


class AvailabilityBuilder:
    """Builds an :class:`AvailabilityReport` from entries given one at a time, in index order.

    :func:`build_availability` is the one-call form; the builder lets a caller feed entries
    while it verifies them (``hotline audit availability``) without holding the log in memory.
    """

    def __init__(self, *, channel: str, since: datetime | None, until: datetime | None) -> None:
        """Start an empty report.

        Args:
            channel: the channel reported on.
            since: first moment of the window (inclusive), or None for the channel's first entry.
            until: end of the window (exclusive), or None for the log's last entry (or ``now``,
                if earlier).

        Raises:
            ReportError: a datetime is naive, or ``since`` is not before ``until``.
        """
        check_period(since, until)
        self.channel = channel
        self.since, self.until = since, until
        self._last_index: int | None = None
        self._channel_start: datetime | None = None
        self._log_end: datetime | None = None
        self._policy: tuple[timedelta, timedelta] | None = None
        self._changes: list[_Change] = []
        self._transitions = 0
        self._parties: dict[str, _Party] = {}
        self._beats: OrderedDict[str, tuple[str, datetime]] = OrderedDict()  # id -> (party, time)
        self._round_trips: Counter[int] = Counter()  # milliseconds -> echoes

    def add(self, entry: Entry) -> None:
        """Take the next log entry (any kind; those the report does not read are skipped).

        Args:
            entry: a log entry, after the previous one.

        Raises:
            ReportError: the entry is out of order, or a value the report reads is malformed.
        """
        self._last_index = next_index(entry, self._last_index)
        time = _optional_time(entry.time)  # read for every kind: the log's end
        if time is not None:
            self._log_end = time
        if channel_of(entry) != self.channel:
            return
        if time is not None and self._channel_start is None:
            self._channel_start = time
        if isinstance(entry, HealthEntry):
            self._health(entry)
        elif isinstance(entry, EnvelopeEntry):
            self._envelope(entry)
        elif isinstance(entry, AgreementEntry):
            self._agreement(entry)

    def _in_window(self, time: datetime) -> bool:
        return ((self.since is None or self.since <= time)
                and (self.until is None or time < self.until))

    def _agreement(self, entry: AgreementEntry) -> None:
        time = entry_time(entry.index, "agreement", "time", entry.time)
        if self.until is not None and time >= self.until:
            return
        interval, grace, parties = _heartbeat_policy(entry)
        self._policy = (timedelta(seconds=interval), timedelta(seconds=grace))
        for party in parties:
            self._parties.setdefault(party, _Party())

    def _health(self, entry: HealthEntry) -> None:
        index, where = entry.index, "health"
        time = entry_time(index, where, "time", entry.time)
        since = entry_time(index, where, "since", entry.since)
        state, reason = entry.new, entry.reason
        if since > time:
            raise entry_error(index, where, f"since {format_time(since)} is after the entry was "
                              f"logged ({format_time(time)})")
        last = self._changes[-1] if self._changes else None
        if last is not None and since < last.since:
            raise entry_error(index, where, f"since {format_time(since)} is before the start of "
                              f"the state it ends ({format_time(last.since)}, entry {last.index})")
        if self._in_window(time):
            self._transitions += 1
        if last is None:
            start = since
        elif last.state in FAULTS:  # a fault lasts until the entry ending it was logged
            start = time
        else:  # never before a moment the previous entry spoke for
            start = max(since, last.logged)
        if last is None or last.state is not state:
            self._changes.append(_Change(start, state, index, reason, since, time))

    def _envelope(self, entry: EnvelopeEntry) -> None:
        envelope = entry.envelope
        if envelope.kind not in (Kind.HEARTBEAT, Kind.ECHO):
            return  # messages and acks: the compliance report's
        time, party = entry_time(entry.index, "envelope", "time", entry.time), entry.party
        counts = self._parties.setdefault(party, _Party())
        in_window = self._in_window(time)
        if envelope.kind is Kind.HEARTBEAT:
            self._heartbeat(party, counts, time, in_window)
            self._beats[envelope.id] = (party, time)
            while len(self._beats) > KEEP_HEARTBEATS:
                self._beats.popitem(last=False)
            return
        reply_to = envelope.reply_to or ""  # an echo's is checked
        if not in_window:
            return
        counts.echoes += 1
        beat = self._beats.get(reply_to)
        if beat is not None and beat[0] != party:
            self._round_trips[milliseconds(time - beat[1])] += 1

    def _heartbeat(self, party: str, counts: _Party, time: datetime, in_window: bool) -> None:
        previous, counts.last_beat = counts.last_beat, time
        if in_window:
            counts.heartbeats += 1
        if previous is None:
            return
        if self._policy is not None and time - previous > sum(self._policy, timedelta(0)):
            counts.silences.append(Gap(party, previous, time))
        overlaps = ((self.since is None or time > self.since)
                    and (self.until is None or previous < self.until))
        if overlaps and (counts.longest is None or time - previous > counts.longest.length):
            counts.longest = Gap(party, previous, time)

    def finish(self, *, now: datetime) -> AvailabilityReport:
        """The report of every entry given so far, as of ``now``.

        Args:
            now: the moment the report is made (aware); with no ``until``, the window ends at
                the log's last entry or at ``now``, whichever is earlier.

        Returns:
            The frozen report; the builder may take more entries and finish again.

        Raises:
            ReportError: ``now`` is naive.
        """
        check_aware("now", now)
        since = self.since if self.since is not None else self._channel_start
        until = self.until
        if until is None and self._log_end is not None:
            until = min(now, self._log_end)
        if since is not None and until is not None and until < since:
            until = since  # the clock is behind the log: an empty window
        period = Period(since=since, until=until, now=now, channel_start=self._channel_start,
                        log_end=self._log_end)
        timeline = self._timeline(period)
        time_in = {state: sum((s.length for s in timeline if s.state is state), timedelta(0))
                   for state in ORDER}
        parties = {p: PartyTraffic(p, c.heartbeats, c.echoes, c.longest,
                                   self._silences_in(p, c, period))
                   for p, c in sorted(self._parties.items())}
        gaps = [c.longest for c in self._parties.values() if c.longest is not None]
        longest = max(gaps, key=lambda g: (g.length, -g.start.timestamp()), default=None)
        interval, grace = self._policy if self._policy is not None else (None, None)
        return AvailabilityReport(
            channel=self.channel, period=period, interval=interval, grace=grace, time_in=time_in,
            timeline=timeline, outages=self._outages(period, self._log_end),
            transitions=self._transitions,
            parties=parties, longest_gap=longest, round_trips=_round_trips(self._round_trips))

    def _stretches(self) -> list[_Stretch]:
        """The log's history of states, from before the first change (UNKNOWN) to after the
        last; a state that lasted no time is dropped, and the stretches around it, if of one
        state, are one."""
        changes = self._changes
        merged: list[_Stretch] = []
        for n in range(len(changes) + 1):
            change = changes[n - 1] if n else None
            ended_by = changes[n] if n < len(changes) else None
            start = None if change is None else change.start
            end = None if ended_by is None else ended_by.start
            if start is not None and start == end:
                continue
            state = State.UNKNOWN if change is None else change.state
            if merged and merged[-1].state is state:
                merged[-1] = replace(merged[-1], end=end, ended_by=ended_by)
            else:
                merged.append(_Stretch(start, end, state, change, ended_by))
        return merged

    def _timeline(self, period: Period) -> tuple[Span, ...]:
        if not period.length:
            return ()
        assert period.since is not None and period.until is not None
        spans = []
        for stretch in self._stretches():
            low = period.since if stretch.start is None else max(stretch.start, period.since)
            high = period.until if stretch.end is None else min(stretch.end, period.until)
            if low < high:
                change = stretch.change
                spans.append(Span(low, high, stretch.state, None if change is None else change.index,
                                  None if change is None else change.reason))
        return tuple(spans)

    def _outages(self, period: Period, log_end: datetime | None) -> tuple[Outage, ...]:
        if not period.length:
            return ()
        assert period.since is not None and period.until is not None
        outages = []
        for stretch in self._stretches():
            start, end, change = stretch.start, stretch.end, stretch.change
            if stretch.state is not State.DOWN or change is None or start is None:
                continue
            # an outage still on at the end of the window counts even if logged at its very end
            if ((start < period.until or (end is None and start == period.until))
                    and (end is None or end > period.since)):
                silent = self._silent_at(change.since, log_end)
                outages.append(Outage(
                    start=start, end=end, length=(period.until if end is None else end) - start,
                    cause=change.reason, index=change.index,
                    end_index=None if stretch.ended_by is None else stretch.ended_by.index,
                    began=change.since, attribution=HOST if silent else PARTY, silent=silent))
        return tuple(outages)

    def _silences_in(self, party: str, counts: _Party, period: Period) -> tuple[Gap, ...]:
        """A party's silences overlapping the window, cut to it; after its last heartbeat too."""
        if period.since is None or period.until is None or not period.length:
            return ()
        gaps = list(counts.silences)
        last = counts.last_beat
        if (self._policy is not None and last is not None
                and period.until - last > sum(self._policy, timedelta(0))):
            gaps.append(Gap(party, last, period.until))
        return tuple(Gap(g.party, max(g.start, period.since), min(g.end, period.until))
                     for g in gaps if g.start < period.until and g.end > period.since)

    def _silent_at(self, moment: datetime, log_end: datetime | None) -> tuple[str, ...]:
        """Every party of the channel, if each was in a silence (a gap of more than interval +
        grace between two heartbeats, or after its last one) at ``moment``; else ()."""
        if self._policy is None or len(self._parties) < 2:
            return ()
        for counts in self._parties.values():
            last = counts.last_beat
            if last is None:
                return ()  # never heard: nothing shows it fell silent with the others
            after_last = last <= moment and (log_end is None or log_end > last)
            if not after_last and not any(g.start <= moment < g.end for g in counts.silences):
                return ()
        return tuple(sorted(self._parties))


def _heartbeat_policy(entry: AgreementEntry) -> tuple[int, int, list[str]]:
    """The agreement's heartbeat interval and grace (seconds) and its parties, from its signed
    document (``hotline.roster`` checked the signature; this reads only what the report needs)."""
    document = entry.document
    heartbeat = document.get("heartbeat")
    if not isinstance(heartbeat, dict):
        raise entry_error(entry.index, "agreement", "document.heartbeat must be an object")
    numbers: list[int] = []
    for key in ("interval", "grace"):
        number = heartbeat.get(key)
        if not isinstance(number, int) or isinstance(number, bool):
            raise entry_error(entry.index, "agreement.document.heartbeat", f"{key} must be an integer")
        numbers.append(number)
    parties = document.get("parties")
    if not isinstance(parties, list) or not all(
            isinstance(p, dict) and isinstance(p.get("id"), str) for p in parties):
        raise entry_error(entry.index, "agreement", "document.parties must be a list of {\"id\": party}")
    return numbers[0], numbers[1], [p["id"] for p in parties]


def _optional_time(value: str) -> datetime | None:
    try:
        return parse_time(value)
    except WireError:
        return None


def _round_trips(histogram: Counter[int]) -> RoundTrips:
    """Nearest-rank percentiles of a histogram of milliseconds."""
    count = sum(histogram.values())
    if not count:
        return RoundTrips()
    values = sorted(histogram.items())

    def rank(percent: int) -> timedelta:
        wanted = -(-percent * count // 100)  # ceil(percent / 100 * count), at least 1
        seen = 0
        for ms, n in values:
            seen += n
            if seen >= wanted:
                return timedelta(milliseconds=ms)
        return timedelta(milliseconds=values[-1][0])  # pragma: no cover - seen reaches count

    p50, p90, p99 = (rank(p) for p in PERCENTILES)
    return RoundTrips(count=count, p50=p50, p90=p90, p99=p99,
                      max=timedelta(milliseconds=values[-1][0]), histogram=tuple(values))


def build_availability(entries: Iterable[Entry], *, channel: str,
                       since: datetime | None, until: datetime | None,
                       now: datetime) -> AvailabilityReport:
    """Build the availability report of ``channel`` from log entries (see the module docstring).

    Args:
        entries: log entries in index order, from the start of the log, any kinds.
        channel: the channel reported on.
        since: first moment of the window (inclusive), or None for the channel's first entry.
        until: end of the window (exclusive), or None for the log's last entry (or ``now``, if
            earlier).
        now: the moment the report is made (aware).

    Returns:
        The frozen report.

    Raises:
        ReportError: a naive datetime, ``since >= until``, entries out of index order, or a
            malformed field in an entry the report reads (the message names the entry).
    """
    builder = AvailabilityBuilder(channel=channel, since=since, until=until)
    for entry in entries:
        builder.add(entry)
    return builder.finish(now=now)


# -- text ----------------------------------------------------------------------------------------

def _percent(report: AvailabilityReport, state: State) -> str:
    value = report.percent(state)
    return "-" if value is None else f"{value:.3f}%"


def _wrapped(label: str, text: str) -> str:
    """``label: text`` under an outage's row, wrapped to WIDTH (never cut)."""
    return "\n".join(textwrap.wrap(f"{label}: {text}", WIDTH, initial_indent=" " * 5,
                                   subsequent_indent=" " * 12, break_on_hyphens=False))


def _outage_notes(outage: Outage) -> list[tuple[str, str]]:
    notes = []
    if outage.host:
        notes.append(("fault", f"the server or its host (or the network to it): every party "
                               f"fell silent at once ({', '.join(outage.silent)})"))
    if outage.began is not None and outage.began < outage.start:
        notes.append(("began", f"{moment_text(outage.began)}, the first missed heartbeat; the channel "
                               f"was DEGRADED until this DOWN was logged"))
    notes.append(("cause", outage.cause if not outage.host else
                  f"{outage.cause} (the sweep names whoever was still silent when it ran)"))
    return notes


BAR = {State.UP: "=", State.DEGRADED: "~", State.DOWN: "#", State.UNKNOWN: "?"}
BAR_WIDTH = WIDTH - 4  # "  [" + bar + "]"


def timeline_bar(report: AvailabilityReport, width: int = BAR_WIDTH) -> list[str]:
    """The timeline as one line of ``width`` characters, each 1/width of the period showing the
    worst state in it (so no fault, however short, disappears), and its legend.

    Returns:
        ``["  [===~~##==]", "  = UP  ~ DEGRADED  # DOWN  ? UNKNOWN  (one character: 6s)"]``, or
        ``[]`` for an empty window.
    """
    period = report.period
    if not report.timeline or not period.length or period.since is None:
        return []
    cells = [State.UP] * width
    worst = [-1] * width
    length = _microseconds(period.length)  # whole numbers: cell n is [n, n+1) * length / width
    for span in report.timeline:
        first = _microseconds(span.start - period.since) * width // length
        last = max(first, -(-_microseconds(span.end - period.since) * width // length) - 1)
        for n in range(max(first, 0), min(last, width - 1) + 1):
            if SEVERITY[span.state] > worst[n]:
                worst[n], cells[n] = SEVERITY[span.state], span.state
    legend = "  ".join(f"{BAR[s]} {s.value}" for s in ORDER)
    return [f"  [{''.join(BAR[c] for c in cells)}]",
            f"  {legend}  (one character: {duration_text(period.length / width)}, the worst state "
            "in it)"]


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _fit(line: str) -> str:
    """A line of free text cut (visibly, with "~") to WIDTH."""
    return line if len(line) <= WIDTH else line[:WIDTH - 1] + "~"


def _policy_line(report: AvailabilityReport) -> str:
    parties = ", ".join(report.parties) or "none"
    if report.interval is None:
        return _fit(f"Agents    no agreement of this channel read; parties {parties}")
    grace = duration_text(report.grace) if report.grace is not None else "-"
    return _fit(f"Agents    heartbeat every {duration_text(report.interval)}, grace {grace}; "
                f"parties {parties}")


def render_text(report: AvailabilityReport) -> str:
    """The report as a plain-text page: fixed-width tables, at most 100 columns, no colours.

    Args:
        report: a report from :func:`build_availability`.

    Returns:
        The text, ending with a newline. Times are UTC, shown to the second (the JSON form has
        milliseconds).
    """
    period = report.period
    lines = [_fit(f"Availability report for channel {report.channel}")]
    if period.since is None or period.until is None:
        lines.append("Period    no entries of this channel in the log")
    else:
        lines.append(f"Period    {moment_text(period.since)} to {moment_text(period.until)} "
                     f"({duration_text(period.length)}, all times UTC)")
    lines += [f"As of     {moment_text(period.now)}", _policy_line(report)]

    lines += ["", f"Time by state ({report.transitions} health transitions logged in the period)"]
    lines += table([Column("state"), Column("time", right=True), Column("share", right=True)],
                    [[s.value, duration_text(report.time_in[s]), _percent(report, s)] for s in ORDER])

    lines += ["", f"Outages (DOWN): {len(report.outages)}"]
    if report.outages:
        rows = table([Column("#", right=True), Column("start"), Column("end"),
                        Column("duration", right=True), Column("entries")],
                       [[str(n), moment_text(o.start), "ongoing" if o.ongoing else moment_text(o.end),
                         duration_text(o.length) + ("+" if o.ongoing else ""),
                         f"{o.index}-{'' if o.end_index is None else o.end_index}"]
                        for n, o in enumerate(report.outages, start=1)])
        lines.append(rows[0])
        for row, outage in zip(rows[1:], report.outages, strict=True):
            lines += [row, *(_wrapped(label, text) for label, text in _outage_notes(outage))]

    lines += ["", f"Timeline: {len(report.timeline)} periods"]
    if report.timeline:
        lines += timeline_bar(report)
        rows = table([Column("from"), Column("to"), Column("state"),
                        Column("duration", right=True), Column("entry", right=True)],
                       [[moment_text(s.start), moment_text(s.end), s.state.value, duration_text(s.length),
                         "-" if s.index is None else str(s.index)] for s in report.timeline])
        lines.append(rows[0])
        for row, span in zip(rows[1:], report.timeline, strict=True):  # reasons wrap, whole
            lines += [row, _wrapped("reason", span.reason or "no health entry yet")]

    lines += ["", f"Heartbeats: {report.heartbeats}, echoes: {report.echoes}"]
    if report.parties:
        lines += table([Column("party", shrink=True), Column("heartbeats", right=True),
                         Column("echoes", right=True), Column("longest gap", right=True),
                         Column("from"), Column("to")],
                        [[p.party, str(p.heartbeats), str(p.echoes),
                          *(("-", "-", "-") if p.longest_gap is None else
                            (duration_text(p.longest_gap.length), moment_text(p.longest_gap.start),
                             moment_text(p.longest_gap.end)))]
                         for p in report.parties.values()])
    gap = report.longest_gap
    if gap is not None:
        lines += [_fit(f"Longest gap between two heartbeats of one party: {duration_text(gap.length)}, "
                       f"{gap.party}"),
                  "  (a server outage shows as a gap in every party's heartbeats)"]

    trips = report.round_trips
    lines += ["", f"Round trips heartbeat -> echo: {trips.count}"]
    if trips.count:
        lines += table([Column(h, right=True) for h in ("p50", "p90", "p99", "max")],
                        [[duration_text(v) for v in (trips.p50, trips.p90, trips.p99, trips.max)
                          if v is not None]])
    return "\n".join(lines) + "\n"
