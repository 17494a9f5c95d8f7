"""Channel health from signed heartbeats and echoes (docs/ARCHITECTURE.md "Heartbeats and health"). Pure: time
is an argument.

Theory of operation:

- Every party's agent submits a ``heartbeat`` every ``interval`` (the agreement's); every other
  party's agent answers it with an ``echo``. ``ChannelHealth.observe(entry)`` takes log entries in
  log order (heartbeat and echo envelope entries; ``health`` entries to restore a state after a
  restart) and keeps, per party, the log time of its last heartbeat and last echo. Times are the
  server's log times, never an agent's own clock.
- ``evaluate(now)`` judges each party by the table below, first matching row wins; the channel
  takes the worst party state (DOWN > DEGRADED > UNKNOWN > UP), and a change of the channel's
  state is returned as a ``Transition`` the server logs as a ``health`` entry.

  ======================================================  =========  ============
  party condition at ``now``                              state      condition
  ======================================================  =========  ============
  no heartbeat for more than ``missed`` intervals          DOWN       ``silent``
  (counted from the channel's start, or from when a new
  agreement added the party, if never heard)
  never heard, channel (or party) younger than             UNKNOWN    ``waiting``
  ``missed`` intervals
  last heartbeat older than ``interval + grace``           DEGRADED   ``late``
  beats, but left a heartbeat of another party, logged     DEGRADED   ``no_echo``
  while it was beating itself, unanswered by any echo
  for more than ``missed`` intervals (a one-way line)
  otherwise                                                UP         ``ok``
  ======================================================  =========  ============

  A party back from a silence owes no echo for the heartbeats it missed while silent: its
  silence was already the fault.
- A transition's ``since`` is when the new state began according to the evidence, not when the
  sweep noticed it. A worse state began, for DOWN and DEGRADED ``late``, one interval after the
  offending party's last heartbeat: when the first missing heartbeat was due (grace and
  ``missed`` decide whether a delay counts, not when it began); for ``no_echo``, one interval
  after the first heartbeat left unanswered. A better state began with the latest heartbeat or
  echo: time alone only ever worsens a party's state, so only new evidence ends a worse one. A
  state never begins before the one it ends, nor after ``now``. An outage that spans a server
  restart is therefore dated from the agents' last heartbeats before it, and an outage caught
  first as DEGRADED (late) keeps the date its first missing heartbeat was due.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from hotline.entries import PENDING, Entry, EnvelopeEntry, HealthEntry, HealthState, PartyHealthRecord
from hotline.envelope import Kind
from hotline.errors import HotlineError
from hotline.times import format_time, parse_time
from hotline.wire.frames import Health, PartyHealthNow

# intervals without a heartbeat before a party is DOWN (the K of docs/ARCHITECTURE.md
# "Heartbeats and health")
MISSED = 3
_KEEP_HEARTBEATS = 64  # per channel: enough to pair every echo of the last few rounds


State = HealthState  # the one enum, named as this module has always named it

SEVERITY = {State.UP: 0, State.UNKNOWN: 1, State.DEGRADED: 2, State.DOWN: 3}


@dataclass(frozen=True)
class Policy:
    interval: timedelta
    grace: timedelta
    missed: int = MISSED

    @classmethod
    def of(cls, *, interval: int, grace: int, missed: int = MISSED) -> Policy:
        """From the agreement's ``heartbeat: {interval, grace}`` (seconds)."""
        return cls(timedelta(seconds=interval), timedelta(seconds=grace), missed)


@dataclass(frozen=True)
class PartyHealth:
    party: str
    state: State
    condition: str  # silent, waiting, late, no_echo, ok
    reason: str
    last_heartbeat: datetime | None
    last_echo: datetime | None
    rtt: timedelta | None  # last heartbeat -> echo delay on this party's heartbeats
    since: datetime  # when this condition began, by the evidence

    def record(self) -> PartyHealthRecord:
        """As a ``health`` entry records it."""
        return PartyHealthRecord(
            state=self.state, condition=self.condition, reason=self.reason,
            last_heartbeat=_t(self.last_heartbeat), last_echo=_t(self.last_echo),
            rtt_ms=None if self.rtt is None else round(self.rtt.total_seconds() * 1000))

    def live(self) -> PartyHealthNow:
        """As a live ``health`` frame gives it: what its entry would record."""
        r = self.record()
        return PartyHealthNow(state=r.state, reason=r.reason, condition=r.condition,
                              last_heartbeat=r.last_heartbeat, last_echo=r.last_echo, rtt_ms=r.rtt_ms)


@dataclass(frozen=True)
class Transition:
    channel: str
    old: State
    new: State
    since: datetime
    reason: str
    parties: dict[str, PartyHealth]
    evidence: tuple[int, ...]  # log indexes of the heartbeats and echoes it rests on

    def entry(self, *, time: datetime) -> HealthEntry:
        """The ``health`` log entry (not yet in the log)."""
        return HealthEntry(index=PENDING, time=format_time(time), channel=self.channel,
                           old=self.old, new=self.new, since=format_time(self.since),
                           reason=self.reason,
                           parties={p: h.record() for p, h in sorted(self.parties.items())},
                           evidence=list(self.evidence))


def _t(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


@dataclass
class _Seen:
    heartbeat: datetime | None = None
    heartbeat_index: int | None = None
    echo: datetime | None = None
    echo_index: int | None = None
    rtt: timedelta | None = None
    unanswered: datetime | None = None  # first heartbeat of another party it has not echoed since
    added: datetime | None = None  # when a new agreement added the party (None: from the start)


class ChannelHealth:
    def __init__(self, channel: str, parties: Iterable[str], policy: Policy, *, started: datetime,
                 state: State = State.UNKNOWN) -> None:
        self.channel = channel
        self.policy = policy
        self.started = started
        self.state = state
        self.since = started
        self._seen: dict[str, _Seen] = {p: _Seen() for p in parties}
        self._beats: OrderedDict[str, tuple[str, datetime]] = OrderedDict()  # id -> (party, time)
        self._latest: datetime | None = None  # the latest log time observed on the channel

    @property
    def parties(self) -> list[str]:
        return sorted(self._seen)

    def reconfigure(self, parties: Iterable[str], policy: Policy) -> None:
        """A new agreement version: keep what was seen of the parties that remain. A party it
        adds is judged from the latest log time observed on the channel (the agreement is
        logged after it), not from the channel's start: it gets ``missed`` intervals to beat."""
        added = self.started if self._latest is None else max(self._latest, self.started)
        self.policy = policy
        self._seen = {p: self._seen.get(p) or _Seen(added=added) for p in parties}

    def observe(self, entry: Entry) -> None:
        """Account for one log entry of this channel; others are ignored. A log time that does
        not parse is ignored too: the server only logs what it checked, and this must never stop
        a sweep."""
        try:
            if isinstance(entry, HealthEntry) and entry.channel == self.channel:
                self._restore(entry)
            elif isinstance(entry, EnvelopeEntry) and entry.channel == self.channel:
                self._envelope(entry)
        except HotlineError:
            return

    def _envelope(self, entry: EnvelopeEntry) -> None:
        # Every field is read before anything changes: a malformed entry changes nothing.
        party, envelope = entry.party, entry.envelope
        seen = self._seen.get(party)
        if seen is None:
            return
        at, index = entry.time_at, entry.index
        if envelope.kind is Kind.HEARTBEAT:
            self._heartbeat(party, seen, at, index)
            self._beats[envelope.id] = (party, at)
            while len(self._beats) > _KEEP_HEARTBEATS:
                self._beats.popitem(last=False)
        elif envelope.kind is Kind.ECHO:
            beat = self._beats.get(envelope.reply_to or "")
            if beat is None or beat[0] == party:
                return
            seen.echo, seen.echo_index, seen.unanswered = at, index, None
            owner = self._seen.get(beat[0])
            if owner is not None:
                owner.rtt = at - beat[1]
        else:
            return
        self._latest = at if self._latest is None else max(self._latest, at)

    def _heartbeat(self, party: str, seen: _Seen, at: datetime, index: int) -> None:
        if seen.heartbeat is not None and at < seen.heartbeat:
            return  # older than one already known (a replay after a restore)
        window = self.policy.interval * self.policy.missed
        if seen.heartbeat is None or at - seen.heartbeat > window:
            seen.unanswered = None  # back from a silence: it owes no echo for what it missed
        seen.heartbeat, seen.heartbeat_index = at, index
        for other, them in self._seen.items():  # now owed an echo by every party that beats
            if (other != party and them.unanswered is None and them.heartbeat is not None
                    and at - them.heartbeat <= window):
                them.unanswered = at

    def _restore(self, entry: HealthEntry) -> None:
        # Every field is read before anything changes: a malformed entry changes nothing.
        state, since, time = entry.new, parse_time(entry.since), entry.time_at
        if since > time:
            return  # a state cannot begin after the entry that logs it
        restored: list[tuple[_Seen, str, datetime]] = []
        for party, snapshot in entry.parties.items():
            seen = self._seen.get(party)
            for attr, value in (("heartbeat", snapshot.last_heartbeat), ("echo", snapshot.last_echo)):
                moment = parse_time(value) if value is not None else None  # checked even for a
                if seen is not None and moment is not None:  # party no longer on the channel
                    restored.append((seen, attr, moment))
        self.state, self.since = state, since
        for seen, attr, moment in restored:
            current = getattr(seen, attr)
            if current is None or moment > current:
                setattr(seen, attr, moment)
        self._latest = time if self._latest is None else max(self._latest, time)

    def last_heartbeats(self) -> dict[str, datetime | None]:
        """Each party's last heartbeat (None: never heard), without judging anything."""
        return {party: seen.heartbeat for party, seen in self._seen.items()}

    def party_health(self, now: datetime) -> dict[str, PartyHealth]:
        return {party: self._judge(party, seen, now) for party, seen in self._seen.items()}

    def _judge(self, party: str, seen: _Seen, now: datetime) -> PartyHealth:
        p = self.policy
        beat = seen.heartbeat
        start = seen.added or self.started
        reference = beat if beat is not None else start

        def health(state: State, condition: str, reason: str, since: datetime) -> PartyHealth:
            return PartyHealth(party, state, condition, reason, beat, seen.echo, seen.rtt, since)

        age = now - reference
        if age > p.interval * p.missed:
            heard = f"no heartbeat since {format_time(beat)}" if beat else "never heard"
            return health(State.DOWN, "silent", f"{party} silent: {heard} "
                          f"({p.missed} intervals of {_secs(p.interval)} missed)", reference + p.interval)
        if beat is None:
            return health(State.UNKNOWN, "waiting", f"{party}: no heartbeat yet", start)
        if age > p.interval + p.grace:
            return health(State.DEGRADED, "late", f"{party} late: last heartbeat {_secs(age)} ago "
                          f"(interval {_secs(p.interval)}, grace {_secs(p.grace)})",
                          beat + p.interval)
        owed = seen.unanswered
        if owed is not None and now - owed > p.interval * p.missed:
            return health(State.DEGRADED, "no_echo", f"{party} answers no heartbeat of the other "
                          "parties: the line may work one way only", owed + p.interval)
        return health(State.UP, "ok", f"{party} up", beat)

    def evaluate(self, now: datetime) -> Transition | None:
        """The channel's state at ``now``; a ``Transition`` when it differs from the last one."""
        parties = self.party_health(now)
        new = max((h.state for h in parties.values()), key=SEVERITY.__getitem__, default=State.UNKNOWN)
        if new is self.state:
            return None
        worst = [h for h in parties.values() if h.state is new]
        if SEVERITY[new] < SEVERITY[self.state]:  # better: ended by the latest evidence
            since = max((t for s in self._seen.values() for t in (s.heartbeat, s.echo)
                         if t is not None), default=now)
        else:  # worse: began when its cause did
            since = min((h.since for h in worst), default=now)  # no parties: UNKNOWN from now
        if new is State.UP:
            reason = "every party beats and answers: " + ", ".join(sorted(parties))
        else:
            reason = "; ".join(h.reason for h in sorted(worst, key=lambda h: h.party))
        since = min(max(since, self.since), now)  # a state never begins before the one it ends
        evidence = sorted({i for s in self._seen.values()
                           for i in (s.heartbeat_index, s.echo_index) if i is not None})
        transition = Transition(self.channel, self.state, new, since, reason, parties,
                                tuple(evidence))
        self.state, self.since = new, since
        return transition

    def snapshot(self, now: datetime) -> Health:
        """The live view (``/v1/channels/{id}/health``, ``health`` frames)."""
        return Health(channel=self.channel, state=HealthState(self.state.value),
                      since=format_time(self.since), interval=int(self.policy.interval.total_seconds()),
                      parties={p: h.live() for p, h in sorted(self.party_health(now).items())})


def _secs(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
