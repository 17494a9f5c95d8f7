"""hotline.audit.availability: the availability report of one channel, from hand-built and
synthetic log entries.

Table-driven cases pin each rule of the module's theory of operation (window, timeline, outages,
heartbeats, round trips); then acceptance point 5 of the issue: on a synthetic log with injected
outages, whose ``health`` entries come from a real :class:`hotline.health.ChannelHealth` swept
every second as the server does, the report lists each outage within one interval of the
injected times. Then the JSON keys, a golden text page, the refusals, and a hypothesis property:
the time in each state adds up to the window, whatever the transitions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.audit.availability import (
    KEEP_HEARTBEATS,
    AvailabilityBuilder,
    AvailabilityReport,
    Gap,
    Outage,
    RoundTripsDoc,
    Span,
    build_availability,
    render_text,
    timeline_bar,
)
from hotline.audit.report import ReportError
from hotline.audit.text import WIDTH
from hotline.entries import Entry, EnvelopeEntry, HealthEntry, decode, to_json, with_index
from hotline.envelope import new_envelope_id
from hotline.health import ChannelHealth, Policy, State
from hotline.times import format_time
from tests.unit.test_layers import FORBIDDEN_IN_PURE, imports, offending

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=200)
MODULE = Path(__file__).resolve().parents[3] / "hotline" / "audit" / "availability.py"
CHANNEL = "north-south"
T0 = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)  # second 0 of every hand-built log
NOW = T0 + timedelta(hours=5)
UNKNOWN, UP, DEGRADED, DOWN = State.UNKNOWN, State.UP, State.DEGRADED, State.DOWN


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    return format_time(at(seconds))


def secs(moment: datetime) -> float:
    return round((moment - T0).total_seconds(), 3)


def secs_or_none(moment: datetime | None) -> float | None:
    return None if moment is None else secs(moment)


@dataclass
class Log:
    """Log entries as the server writes them, with consecutive indexes from 8 (after `init`)."""

    entries: list[Entry] = field(default_factory=list)
    next_index: int = 8
    state: State = UNKNOWN  # the channel's last logged health state

    def add(self, entry: dict[str, Any] | Entry) -> Entry:
        """The next entry, typed: a JSON object (without index) or a typed entry."""
        logged = (decode({"index": self.next_index, **entry}) if isinstance(entry, dict)
                  else with_index(entry, self.next_index))
        self.entries.append(logged)
        self.next_index += 1
        return logged

    def agreement(self, second: float, *, interval: int = 10, grace: int = 10,
                  parties: tuple[str, ...] = ("north", "south"), channel: str = CHANNEL) -> None:
        self.add({"time": stamp(second), "kind": "agreement", "channel": channel,
                  "document": {"type": "agreement", "channel": channel, "version": 1,
                               "parties": [{"id": p, "authority": "k"} for p in parties],
                               "heartbeat": {"interval": interval, "grace": grace}},
                  "sigs": []})

    def envelope(self, second: float, kind: str, party: str, *, reply_to: str | None = None,
                 channel: str = CHANNEL) -> str:
        envelope_id = new_envelope_id(self.next_index.to_bytes(16, "big"))
        envelope: dict[str, Any] = {"v": 1, "id": envelope_id, "kind": kind, "channel": channel,
                                    "sender": f"{party}-agent", "template": kind,
                                    "precedence": "ROUTINE", "created": stamp(second),
                                    "body": {"ack": "received"} if kind == "ack" else {}}
        if reply_to is not None:
            envelope["reply_to"] = reply_to
        self.add({"time": stamp(second), "kind": "envelope", "channel": channel, "party": party,
                  "envelope": envelope, "sig": {"alg": "ed25519"}})
        return envelope_id

    def heartbeat(self, second: float, party: str, **kw: Any) -> str:
        return self.envelope(second, "heartbeat", party, **kw)

    def echo(self, second: float, party: str, ref: str) -> str:
        return self.envelope(second, "echo", party, reply_to=ref)

    def health(self, second: float, to: State, *, since: float | None = None,
               reason: str | None = None, channel: str = CHANNEL) -> int:
        entry = self.add({"time": stamp(second), "kind": "health", "channel": channel,
                          "from": self.state.value, "to": to.value,
                          "since": stamp(second if since is None else since),
                          "reason": reason or f"{to.value.lower()} at {second}", "parties": {},
                          "evidence": []})
        self.state = to
        return entry.index

    def report(self, *, since: float | None = None, until: float | None = None,
               now: datetime = NOW, channel: str = CHANNEL) -> AvailabilityReport:
        return build_availability(self.entries, channel=channel,
                                  since=None if since is None else at(since),
                                  until=None if until is None else at(until), now=now)


# -- Rules 1-3: window, timeline, outages, table-driven --------------------------------------------

@dataclass(frozen=True)
class Case:
    """An agreement at second 0, then ``transitions`` (logged at second, state, since); a last
    entry at ``end``. ``expect`` is the time in each state (seconds), ``outages`` the (start,
    end) of each listed, and ``timeline`` the (start, end, state) of each stretch."""

    transitions: tuple[tuple[float, State, float], ...]
    expect: dict[State, float]
    outages: tuple[tuple[float, float | None], ...] = ()
    timeline: tuple[tuple[float, float, State], ...] | None = None
    since: float | None = None
    until: float | None = None
    end: float = 100
    now: datetime = NOW


def zero(**kw: float) -> dict[State, float]:
    return {UP: 0, DEGRADED: 0, DOWN: 0, UNKNOWN: 0, **{State(k): v for k, v in kw.items()}}


CASES = {
    "no health entry: UNKNOWN throughout": Case((), zero(UNKNOWN=100), timeline=((0, 100, UNKNOWN),)),
    "UNKNOWN until the first state's since": Case(
        ((12, UP, 10),), zero(UNKNOWN=10, UP=90), timeline=((0, 10, UNKNOWN), (10, 100, UP))),
    "an outage, from its since until its end was logged (as the live view showed it)": Case(
        ((1, UP, 1), (42, DOWN, 30), (61.5, UP, 60.3)), zero(UNKNOWN=1, UP=67.5, DOWN=31.5),
        outages=((30, 61.5),)),
    "still DOWN at the end: ongoing": Case(
        ((1, UP, 1), (42, DOWN, 30)), zero(UNKNOWN=1, UP=29, DOWN=70), outages=((30, None),)),
    "DEGRADED, then DOWN dated from the same missed heartbeat: DEGRADED until DOWN was logged":
    Case(((1, UP, 1), (21, DEGRADED, 10), (31, DOWN, 10), (50, UP, 49)),
         zero(UNKNOWN=1, UP=59, DEGRADED=21, DOWN=19), outages=((31, 50),),
         timeline=((0, 1, UNKNOWN), (1, 10, UP), (10, 31, DEGRADED), (31, 50, DOWN),
                   (50, 100, UP))),
    "DEGRADED, then UP: degraded time until UP was logged, no outage": Case(
        ((1, UP, 1), (21, DEGRADED, 10), (25, UP, 24)), zero(UNKNOWN=1, UP=84, DEGRADED=15)),
    "DOWN logged at the end of the window: an outage still on, of no time yet": Case(
        ((1, UP, 1), (20, DEGRADED, 10), (30, DOWN, 10)), zero(UNKNOWN=1, UP=9, DEGRADED=20),
        outages=((30, None),), end=30),
    "a state never begins before the previous entry was logged": Case(
        ((12, UP, 5), (30, DOWN, 8)), zero(UNKNOWN=5, UP=7, DOWN=88), outages=((12, None),),
        timeline=((0, 5, UNKNOWN), (5, 12, UP), (12, 100, DOWN))),
    "an outage begun before since: its real start, the window's time": Case(
        ((1, UP, 1), (42, DOWN, 30), (61, UP, 60)), zero(DOWN=11, UP=39), outages=((30, 61),),
        since=50),
    "an outage ending after until: its real end, the window's time": Case(
        ((1, UP, 1), (42, DOWN, 30), (81, UP, 80)), zero(UNKNOWN=1, UP=29, DOWN=20),
        outages=((30, 81),), until=50),
    "an outage before the window is not listed": Case(
        ((1, UP, 1), (42, DOWN, 30), (61, UP, 60)), zero(UP=30), since=70),
    "an outage after the window is not listed": Case(
        ((1, UP, 1), (42, DOWN, 30), (61, UP, 60)), zero(UNKNOWN=1, UP=19), until=20),
    "a change logged after until counts by its since": Case(
        ((1, UP, 1), (52, DOWN, 45)), zero(UNKNOWN=1, UP=44, DOWN=5), outages=((45, None),),
        until=50),
    "two outages": Case(
        ((1, UP, 1), (40, DOWN, 30), (50, UP, 45), (80, DOWN, 70), (95, UP, 90)),
        zero(UNKNOWN=1, UP=54, DOWN=45), outages=((30, 50), (70, 95))),
    "now before the last entry ends the default window": Case(
        ((1, UP, 1), (42, DOWN, 30)), zero(UNKNOWN=1, UP=29, DOWN=10), outages=((30, None),),
        now=at(40)),
    "now before the channel's start: an empty window": Case(
        ((1, UP, 1),), zero(), now=at(-5), timeline=()),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_time_in_each_state_and_outages(case: Case) -> None:
    log = Log()
    log.agreement(0)
    logged = {}
    for second, state, since in case.transitions:
        reason = f"{state.value} because {second}"
        logged[since] = (log.health(second, state, since=since, reason=reason), reason)
    log.add({"time": stamp(case.end), "kind": "rejected", "party": "north", "code": "x",
             "member": "alice", "template": "t", "reason": "r"})
    report = log.report(since=case.since, until=case.until, now=case.now)
    assert {s: secs(T0 + d) for s, d in report.time_in.items()} == case.expect
    assert sum(report.time_in.values(), timedelta(0)) == report.period.length
    assert [(secs(o.start), secs_or_none(o.end)) for o in report.outages] == list(case.outages)
    for outage in report.outages:
        assert outage.began is not None
        assert (outage.index, outage.cause) == logged[secs(outage.began)]
        end = outage.end if outage.end is not None else report.period.until
        assert end is not None and outage.length == end - outage.start
    if case.timeline is not None:
        assert [(secs(s.start), secs(s.end), s.state) for s in report.timeline] == list(case.timeline)
    spans = report.timeline  # contiguous, covering the window
    if spans:
        assert (spans[0].start, spans[-1].end) == (report.period.since, report.period.until)
        assert all(a.end == b.start for a, b in pairwise(spans))


def test_outage_names_its_entries_and_cause() -> None:
    log = Log()
    log.agreement(0)
    log.health(1, UP, since=0.5, reason="every party beats and answers: north, south")
    down = log.health(42, DOWN, since=30, reason="south silent: no heartbeat since ...")
    up = log.health(61, UP, since=60)
    (outage,) = log.report().outages
    assert outage == Outage(start=at(30), end=at(61), length=timedelta(seconds=31),
                            cause="south silent: no heartbeat since ...", index=down, end_index=up,
                            began=at(30))
    assert not outage.ongoing
    assert log.report().timeline[1] == Span(at(0.5), at(30), UP, 9,
                                            "every party beats and answers: north, south")


def test_default_window_is_the_channel_from_its_agreement_to_the_last_entry() -> None:
    log = Log()
    log.add({"time": stamp(-50), "kind": "enrollment", "document": {}, "sigs": []})
    log.agreement(-10)
    log.health(5, UP, since=2)
    log.agreement(-5 + 20, interval=30, grace=5, parties=("north", "south", "mediator"))
    log.add({"time": stamp(90), "kind": "rejected", "party": "north", "code": "x",
             "member": "alice", "template": "t", "reason": "r"})
    report = log.report()
    period = report.period
    assert (period.since, period.until, period.channel_start, period.log_end) == (
        at(-10), at(90), at(-10), at(90))
    assert report.time_in[UNKNOWN] == timedelta(seconds=12) and report.transitions == 1
    assert (report.interval, report.grace) == (timedelta(seconds=30), timedelta(seconds=5))
    assert list(report.parties) == ["mediator", "north", "south"]  # listed, though silent
    assert log.report(until=10).interval == timedelta(seconds=10)  # v2 came after until


def test_other_channels_and_kinds_are_skipped() -> None:
    log = Log()
    log.agreement(0)
    log.agreement(0, channel="north-east", interval=99)
    log.health(1, DOWN, since=1, channel="north-east")
    ref = log.heartbeat(2, "north", channel="north-east")
    log.envelope(3, "message", "north")  # a message: the compliance report's
    log.envelope(4, "ack", "south", reply_to=ref)
    report = log.report()
    assert report.transitions == 0 and report.heartbeats == 0 and report.echoes == 0
    assert report.outages == () and report.interval == timedelta(seconds=10)
    assert log.report(channel="north-east").outages[0].start == at(1)
    assert log.report(channel="nowhere").period.since is None


def test_an_empty_channel_gives_an_empty_report() -> None:
    report = Log().report()
    assert report.period.since is None and report.period.until is None
    assert report.timeline == () and report.outages == () and report.parties == {}
    assert all(report.percent(s) is None for s in State)
    assert "no entries of this channel in the log" in render_text(report)


# -- Rules 4 and 5: heartbeats and round trips ----------------------------------------------------

def test_heartbeats_echoes_and_gaps_per_party() -> None:
    log = Log()
    log.agreement(0, parties=("north", "south", "mediator"))
    before = log.heartbeat(5, "north")  # before since: a gap's start, not counted
    log.echo(6, "south", before)
    for second in (20, 30, 80, 90):  # north: a 50 s gap
        ref = log.heartbeat(second, "north")
        log.echo(second + 0.25, "south", ref)
    for second in (21, 31, 41, 51):
        log.heartbeat(second, "south")
    log.heartbeat(120, "north")  # at until: not counted, but ends a gap that overlaps
    report = log.report(since=10, until=120)
    parties = report.parties
    assert {p: (t.heartbeats, t.echoes) for p, t in parties.items()} == {
        "mediator": (0, 0), "north": (4, 0), "south": (4, 4)}
    assert parties["north"].longest_gap == Gap("north", at(30), at(80))
    assert parties["south"].longest_gap == Gap("south", at(21), at(31))
    assert parties["mediator"].longest_gap is None
    assert report.longest_gap == Gap("north", at(30), at(80))
    assert (report.heartbeats, report.echoes) == (8, 4)
    assert log.report(since=10, until=100).parties["north"].longest_gap == Gap(
        "north", at(30), at(80))
    assert log.report(since=95).parties["north"].longest_gap == Gap("north", at(90), at(120))


def test_equal_gaps_name_the_earliest() -> None:
    log = Log()
    log.agreement(0)
    for party, start in (("south", 20), ("north", 10)):
        log.heartbeat(start, party)
        log.heartbeat(start + 30, party)
    assert log.report().longest_gap == Gap("north", at(10), at(40))


def test_round_trip_percentiles_are_nearest_rank() -> None:
    log = Log()
    log.agreement(0)
    for n in range(1, 101):  # round trips of 1 ms .. 100 ms
        ref = log.heartbeat(n, "north")
        log.echo(n + n / 1000, "south", ref)
    trips = log.report().round_trips
    assert (trips.count, trips.p50, trips.p90, trips.p99, trips.max) == (
        100, *(timedelta(milliseconds=ms) for ms in (50, 90, 99, 100)))
    assert log.report(since=96).round_trips.document() == RoundTripsDoc(
        count=5, p50_ms=98, p90_ms=100, p99_ms=100, max_ms=100)


def test_echoes_not_timed() -> None:
    log = Log()
    log.agreement(0)
    own = log.heartbeat(1, "north")
    log.echo(2, "north", own)  # its own heartbeat
    log.echo(3, "south", new_envelope_id(b"\xff" * 16))  # of no heartbeat logged
    ref = log.heartbeat(4, "north")
    log.echo(5.5, "south", ref)
    report = log.report()
    assert report.round_trips.count == 1 and report.round_trips.max == timedelta(seconds=1.5)
    assert report.parties["north"].echoes == 1 and report.parties["south"].echoes == 2


def test_an_echo_of_a_heartbeat_long_forgotten_is_counted_not_timed() -> None:
    builder = AvailabilityBuilder(channel=CHANNEL, since=None, until=None)
    log = Log()
    log.agreement(0)
    first = log.heartbeat(1, "north")
    for _ in range(KEEP_HEARTBEATS):
        log.heartbeat(2, "south")
    log.echo(3, "south", first)
    for entry in log.entries:
        builder.add(entry)
    report = builder.finish(now=NOW)
    assert report.echoes == 1 and report.round_trips.count == 0


# -- acceptance 5: injected outages, health logged by a real ChannelHealth ------------------------

INTERVAL = 10  # the demo deployment's: interval 10 s, grace 10 s, DOWN after 3 missed intervals
PARTIES = ("north", "south", "mediator")
Window = tuple[float, float]  # [start, end) in seconds


@dataclass(frozen=True)
class Injected:
    """What to break in a synthetic half hour of heartbeats: a party silent (its agent stopped),
    the server down (nothing logged, no sweep; on restart it restores the last health entry and
    replays the recent heartbeats, then sweeps; the agents reconnect and beat a second later), a
    party that beats but stops echoing."""

    silent: dict[str, tuple[Window, ...]] = field(default_factory=dict)
    server_down: tuple[Window, ...] = ()
    no_echo: dict[str, Window] = field(default_factory=dict)
    parties: tuple[str, ...] = PARTIES
    length: float = 1800


def synthetic_log(injected: Injected) -> list[Entry]:
    """Heartbeats every INTERVAL (party n at +0.1 n s, and when its agent is back), echoes by
    every other party 50-80 ms later, health swept every second at +0.5 s by a real
    ChannelHealth, its transitions logged as the server logs them (``Transition.entry``)."""
    log = Log()
    log.agreement(0, interval=INTERVAL, grace=INTERVAL, parties=injected.parties)
    policy = Policy.of(interval=INTERVAL, grace=INTERVAL)

    def within(second: float, windows: tuple[Window, ...]) -> bool:
        return any(start <= second < end for start, end in windows)

    def up(party: str, second: float) -> bool:
        return not within(second, injected.silent.get(party, ()))

    def answers(party: str, second: float) -> bool:
        window = injected.no_echo.get(party)
        return up(party, second) and not (window and within(second, (window,)))

    health = ChannelHealth(CHANNEL, injected.parties, policy, started=at(0))
    pending: list[tuple[float, str, str, str | None]] = []  # (second, kind, party, reply_to)
    tick = 0
    while tick / 10 < injected.length:
        second = tick / 10
        tick += 1
        down = within(second, injected.server_down)
        restarted = not down and within(second - 0.1, injected.server_down)
        if restarted:  # as HealthMonitor.load: restore, replay, then sweep
            health = ChannelHealth(CHANNEL, injected.parties, policy, started=at(second))
            last = [e for e in log.entries if isinstance(e, HealthEntry)][-1:]
            replayed = log.entries[-1].time_at - 4 * timedelta(seconds=INTERVAL)
            for entry in [*last, *(e for e in log.entries if isinstance(e, EnvelopeEntry)
                                   and e.time_at >= replayed)]:
                health.observe(entry)
            transition = health.evaluate(at(second))
            if transition is not None:
                health.observe(log.add(transition.entry(time=at(second))))
            for n, party in enumerate(injected.parties):  # the agents reconnect, and beat at once
                if up(party, second):
                    pending.append((second + 1 + 0.1 * n, "heartbeat", party, None))
        for n, party in enumerate(injected.parties):
            back = any(end == second for _, end in injected.silent.get(party, ()))
            if ((second % INTERVAL == 0 and not restarted) or back) and up(party, second):
                pending.append((second + 0.1 * n, "heartbeat", party, None))  # a restarted
                # agent beats at once, then every interval
        for item in sorted(p for p in pending if p[0] <= second):
            pending.remove(item)
            when, kind, party, reply_to = item
            if down:
                continue  # the server is down: nothing reaches the log
            if kind == "heartbeat":
                ref = log.heartbeat(when, party)
                for m, other in enumerate(injected.parties):
                    if other != party and answers(other, when):
                        pending.append((round(when + 0.05 + 0.01 * m, 3), "echo", other, ref))
            else:
                assert reply_to is not None
                log.echo(when, party, reply_to)
            health.observe(log.entries[-1])
        if not down and round(second % 1, 1) == 0.5:
            transition = health.evaluate(at(second))
            if transition is not None:
                log.add(transition.entry(time=at(second)))
    return log.entries


@dataclass(frozen=True)
class OutageCase:
    injected: Injected
    outages: tuple[Window, ...]  # the injected outages, as the report must list them
    degraded: bool = False  # some DEGRADED time expected


OUTAGE_CASES = {
    "one party's agent stopped for 5 minutes": OutageCase(
        Injected(silent={"south": ((300, 600),)}), ((300, 600),), degraded=True),
    "three outages, three parties": OutageCase(
        Injected(silent={"north": ((200, 320),), "south": ((700, 1000),),
                         "mediator": ((1400, 1465),)}),
        ((200, 320), (700, 1000), (1400, 1465)), degraded=True),
    "overlapping silences of two parties: one outage": OutageCase(
        Injected(silent={"north": ((400, 600),), "mediator": ((500, 800),)}), ((400, 800),),
        degraded=True),
    "the server down for 5 minutes": OutageCase(
        Injected(server_down=((900, 1200),)), ((900, 1200),)),
    "a server outage and an agent's": OutageCase(
        Injected(silent={"north": ((300, 400),)}, server_down=((1000, 1130),)),
        ((300, 400), (1000, 1130)), degraded=True),
    "two parties, an agent back between heartbeats (it owes no echo for its silence)": OutageCase(
        Injected(silent={"south": ((300, 605),)}, parties=("north", "south")), ((300, 605),),
        degraded=True),
    "still down at the end of the log": OutageCase(
        Injected(silent={"south": ((1500, 1800),)}), ((1500, 1800),), degraded=True),
    "every agent stopped at once, the server up: the host's (or the network's)": OutageCase(
        Injected(silent={p: ((600, 900),) for p in PARTIES}), ((600, 900),), degraded=True),
    "a silence shorter than missed intervals is no outage": OutageCase(
        Injected(silent={"south": ((300, 315),)}), (), degraded=True),
    "a one-way line is degraded, not down": OutageCase(
        Injected(no_echo={"south": (600, 900)}), (), degraded=True),
}


@pytest.mark.parametrize("case", OUTAGE_CASES.values(), ids=OUTAGE_CASES.keys())
def test_injected_outages_are_reported_within_one_interval(case: OutageCase) -> None:
    entries = synthetic_log(case.injected)
    report = build_availability(entries, channel=CHANNEL, since=None, until=None, now=NOW)
    tolerance = INTERVAL
    assert len(report.outages) == len(case.outages), [(secs(o.start), secs_or_none(o.end))
                                                      for o in report.outages]
    for outage, (start, end) in zip(report.outages, case.outages, strict=True):
        assert outage.began is not None  # the cause, dated from the first missed heartbeat
        assert abs(outage.began - at(start)) <= timedelta(seconds=tolerance), (outage, start)
        # every party silent at once (the server down, or every agent): the host's fault
        everyone = (start, end) in case.injected.server_down or all(
            (start, end) in case.injected.silent.get(p, ()) for p in case.injected.parties)
        assert outage.host == everyone, outage
        assert outage.silent == (tuple(sorted(case.injected.parties)) if everyone else ())
        if end >= case.injected.length:
            assert outage.ongoing and outage.end is None
        else:
            assert outage.end is not None
            assert abs(outage.end - at(end)) <= timedelta(seconds=tolerance), (outage, end)
        assert "silent" in outage.cause
    # an agent's silence is DEGRADED (late) first, then DOWN: together, the injected outage
    down = sum((min(e, case.injected.length) - s for s, e in case.outages), 0.0)
    faulty = report.time_in[DOWN] + (report.time_in[DEGRADED] if case.outages else timedelta(0))
    assert abs(faulty.total_seconds() - down) <= 2 * tolerance * len(case.outages)
    assert (report.time_in[DEGRADED] > timedelta(0)) == case.degraded
    assert report.time_in[UNKNOWN] < timedelta(seconds=1)  # UP within the first sweep
    text = render_text(report)
    assert f"Outages (DOWN): {len(case.outages)}\n" in text
    assert max(len(line) for line in text.splitlines()) <= WIDTH


def test_a_server_outage_is_a_gap_in_every_partys_heartbeats() -> None:
    report = build_availability(synthetic_log(Injected(server_down=((900, 1200),))),
                                channel=CHANNEL, since=None, until=None, now=NOW)
    for party in PARTIES:
        gap = report.parties[party].longest_gap
        assert gap is not None and gap.length == timedelta(seconds=311)  # 890 .. 1201
    assert report.longest_gap is not None and report.longest_gap.party == "north"
    assert report.round_trips.count == report.echoes > 0
    p50 = report.round_trips.p50
    assert p50 is not None and timedelta(milliseconds=50) <= p50 <= timedelta(milliseconds=80)
    assert {p.heartbeats for p in report.parties.values()} == {180 - 30}  # 900 .. 1190


# -- output --------------------------------------------------------------------------------------

def sample() -> AvailabilityReport:
    log = Log()
    log.agreement(0, parties=("north", "south", "mediator"))
    for second in (0, 10, 20, 30, 40, 100, 110):
        ref = log.heartbeat(second + 0.1, "north")
        log.echo(second + 0.25, "south", ref)
        if second < 100:
            log.heartbeat(second + 0.2, "south")
        if second == 20:
            log.health(20.5, UP, since=0.25, reason="every party beats and answers: north, south")
    log.health(51, DEGRADED, since=50.1, reason="north late: last heartbeat 20 s ago")
    log.health(71, DOWN, since=50.1, reason="north silent: no heartbeat since "
               "2026-11-27T21:00:40.100Z (3 intervals of 10 s missed); south silent: no "
               "heartbeat since 2026-11-27T21:00:40.200Z (3 intervals of 10 s missed)")
    log.health(100.5, UP, since=100.25)
    log.health(140, DOWN, since=120.2, reason="south silent")
    return log.report(until=150, now=at(3600))


GOLDEN = """\
Availability report for channel north-south
Period    2026-11-27 21:00:00 to 2026-11-27 21:02:30 (2m30s, all times UTC)
As of     2026-11-27 22:00:00
Agents    heartbeat every 10s, grace 10s; parties mediator, north, south

Time by state (5 health transitions logged in the period)
  state      time    share
  UP        1m09s  46.367%
  DEGRADED    20s  13.933%
  DOWN        59s  39.533%
  UNKNOWN   250ms   0.167%

Outages (DOWN): 2
  #  start                end                  duration  entries
  1  2026-11-27 21:01:11  2026-11-27 21:01:40       29s  30-31
     began: 2026-11-27 21:00:50, the first missed heartbeat; the channel was DEGRADED until this
            DOWN was logged
     cause: north silent: no heartbeat since 2026-11-27T21:00:40.100Z (3 intervals of 10 s missed);
            south silent: no heartbeat since 2026-11-27T21:00:40.200Z (3 intervals of 10 s missed)
  2  2026-11-27 21:02:00  ongoing                  29s+  32-
     cause: south silent

Timeline: 6 periods
  [?===============================~~~~~~~~~~~~~####################===========####################]
  = UP  ~ DEGRADED  # DOWN  ? UNKNOWN  (one character: 1s, the worst state in it)
  from                 to                   state     duration  entry
  2026-11-27 21:00:00  2026-11-27 21:00:00  UNKNOWN      250ms      -
     reason: no health entry yet
  2026-11-27 21:00:00  2026-11-27 21:00:50  UP             49s     18
     reason: every party beats and answers: north, south
  2026-11-27 21:00:50  2026-11-27 21:01:11  DEGRADED       20s     29
     reason: north late: last heartbeat 20 s ago
  2026-11-27 21:01:11  2026-11-27 21:01:40  DOWN           29s     30
     reason: north silent: no heartbeat since 2026-11-27T21:00:40.100Z (3 intervals of 10 s missed);
            south silent: no heartbeat since 2026-11-27T21:00:40.200Z (3 intervals of 10 s missed)
  2026-11-27 21:01:40  2026-11-27 21:02:00  UP             19s     31
     reason: up at 100.5
  2026-11-27 21:02:00  2026-11-27 21:02:30  DOWN           29s     32
     reason: south silent

Heartbeats: 12, echoes: 7
  party     heartbeats  echoes  longest gap  from                 to
  mediator           0       0            -  -                    -
  north              7       0        1m00s  2026-11-27 21:00:40  2026-11-27 21:01:40
  south              5       7          10s  2026-11-27 21:00:00  2026-11-27 21:00:10
Longest gap between two heartbeats of one party: 1m00s, north
  (a server outage shows as a gap in every party's heartbeats)

Round trips heartbeat -> echo: 7
    p50    p90    p99    max
  150ms  150ms  150ms  150ms
"""


def test_render_text_golden() -> None:
    assert render_text(sample()) == GOLDEN


def test_render_text_keeps_within_100_columns() -> None:
    long = "p" * 80
    log = Log()
    log.agreement(0, parties=(long, "q" * 80), channel="c" * 90)
    log.heartbeat(1, "north")  # an envelope's names are at most 64 characters; the entry's not
    log.entries[-1] = msgspec.structs.replace(log.entries[-1], channel="c" * 90, party=long)
    log.health(2, DOWN, since=1, reason="because " * 40, channel="c" * 90)
    text = render_text(log.report(channel="c" * 90))
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert text.isascii() and "\x1b" not in text and "~" in text


GAP_KEYS = {"party", "from", "to", "length_ms"}


def test_to_json_keys_are_stable() -> None:
    doc = sample().to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert set(doc) == {"version", "channel", "period", "heartbeat", "states", "outages",
                        "timeline", "transitions", "traffic", "round_trip"}
    assert doc["version"] == 2 and doc["channel"] == CHANNEL and doc["transitions"] == 5
    assert doc["period"] == {"since": "2026-11-27T21:00:00.000Z", "until": "2026-11-27T21:02:30.000Z",
                             "now": "2026-11-27T22:00:00.000Z", "length_ms": 150_000,
                             "channel_start": "2026-11-27T21:00:00.000Z",
                             "log_end": "2026-11-27T21:02:20.000Z"}
    assert doc["heartbeat"] == {"interval_s": 10, "grace_s": 10}
    assert doc["states"] == {"UP": {"ms": 69_550, "percent": 46.367},
                             "DEGRADED": {"ms": 20_900, "percent": 13.933},
                             "DOWN": {"ms": 59_300, "percent": 39.533},
                             "UNKNOWN": {"ms": 250, "percent": 0.167}}
    assert list(doc["states"]) == ["UP", "DEGRADED", "DOWN", "UNKNOWN"]
    first, second = doc["outages"]
    assert first == {"start": "2026-11-27T21:01:11.000Z", "end": "2026-11-27T21:01:40.500Z",
                     "ongoing": False, "length_ms": 29_500, "began": "2026-11-27T21:00:50.100Z",
                     "cause": first["cause"], "attribution": "party", "silent": [],
                     "index": 30, "end_index": 31}
    assert (second["end"], second["ongoing"], second["end_index"]) == (None, True, None)
    assert second["length_ms"] == 29_800 and second["cause"] == "south silent"
    assert doc["timeline"][0] == {"start": "2026-11-27T21:00:00.000Z",
                                  "end": "2026-11-27T21:00:00.250Z", "state": "UNKNOWN",
                                  "length_ms": 250, "index": None, "reason": None}
    assert all(set(s) == {"start", "end", "state", "length_ms", "index", "reason"}
               for s in doc["timeline"])
    traffic = doc["traffic"]
    assert (traffic["heartbeats"], traffic["echoes"]) == (12, 7)
    assert traffic["by_party"]["mediator"] == {"heartbeats": 0, "echoes": 0, "longest_gap": None,
                                               "silences": []}
    assert traffic["by_party"]["north"]["silences"] == [  # gaps over interval + grace, cut
        {"party": "north", "from": "2026-11-27T21:00:40.100Z", "to": "2026-11-27T21:01:40.100Z",
         "length_ms": 60_000},
        {"party": "north", "from": "2026-11-27T21:01:50.100Z", "to": "2026-11-27T21:02:30.000Z",
         "length_ms": 39_900}]
    assert traffic["longest_gap"] == {"party": "north", "from": "2026-11-27T21:00:40.100Z",
                                      "to": "2026-11-27T21:01:40.100Z", "length_ms": 60_000}
    assert set(traffic["by_party"]["north"]["longest_gap"]) == GAP_KEYS
    assert doc["round_trip"] == {"count": 7, "p50_ms": 150, "p90_ms": 150, "p99_ms": 150,
                                 "max_ms": 150}
    empty = Log().report().to_json()
    assert empty["states"]["UP"] == {"ms": 0, "percent": None}
    assert empty["round_trip"] == {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None,
                                   "max_ms": None}
    assert empty["traffic"]["longest_gap"] is None and empty["heartbeat"]["interval_s"] is None


# -- refusals ------------------------------------------------------------------------------------

def _health(**changes: Any) -> dict[str, Any]:
    entry = {"index": 9, "time": stamp(10), "kind": "health", "channel": CHANNEL, "from": "UNKNOWN",
             "to": "UP", "since": stamp(5), "reason": "r", "parties": {}, "evidence": []}
    return {**entry, **changes}


def _beat(**changes: Any) -> dict[str, Any]:
    log = Log(next_index=9)
    log.heartbeat(10, "north")
    return {**to_json(log.entries[0]), **changes}


# What a type says is the decoder's to refuse (``hotline.entries``, tested there); what is left
# to the report is refused by it, naming the entry.
BAD_ENTRIES: dict[str, tuple[Any, str]] = {
    "health: bad time": (_health(time="2026-11-27 21:00"), "entry 9 (health): time must be"),
    "health: bad since": (_health(since="yesterday"), "entry 9 (health): since must be"),
    "health: since after it was logged": (_health(since=stamp(11)), "is after the entry was logged"),
    "heartbeat: bad time": (_beat(time="2026-11-27 21:00"), "entry 9 (envelope): time must be"),
    "agreement: no heartbeat": ({"index": 9, "time": stamp(0), "kind": "agreement",
                                 "channel": CHANNEL, "document": {"parties": []}, "sigs": []},
                                "heartbeat must be an object"),
    "agreement: interval not an integer": (
        {"index": 9, "time": stamp(0), "kind": "agreement", "channel": CHANNEL,
         "document": {"parties": [], "heartbeat": {"interval": "1", "grace": 1}}, "sigs": []},
        "interval must be an integer"),
    "agreement: parties": ({"index": 9, "time": stamp(0), "kind": "agreement", "channel": CHANNEL,
                            "document": {"parties": ["north"], "heartbeat": {"interval": 1,
                                                                            "grace": 1}},
                            "sigs": []},
                           "document.parties must be a list"),
}


@pytest.mark.parametrize(("entry", "fragment"), BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_malformed_entries_are_refused_by_index(entry: Any, fragment: str) -> None:
    with pytest.raises(ReportError) as info:
        build_availability([decode(entry)], channel=CHANNEL, since=None, until=None, now=NOW)
    assert info.value.code == "report.bad_entry"
    assert fragment in info.value.message


def test_a_state_beginning_before_the_one_it_ends_is_refused() -> None:
    log = Log()
    log.health(10, UP, since=8)
    log.health(20, DOWN, since=7)
    with pytest.raises(ReportError, match=r"entry 9 \(health\): since .* is before the start of "
                                          r"the state it ends \(2026-11-27T21:00:08.000Z, entry 8\)"):
        log.report()


def test_entries_out_of_order_are_refused() -> None:
    log = Log()
    log.heartbeat(0, "north")
    log.heartbeat(1, "north")
    with pytest.raises(ReportError, match="entry 8 comes after entry 9"):
        build_availability(reversed(log.entries), channel=CHANNEL, since=None, until=None, now=NOW)


@pytest.mark.parametrize(("since", "until", "now"), [
    (at(5), at(5), NOW), (at(6), at(5), NOW), (datetime(2026, 11, 27), None, NOW),
    (None, None, datetime(2026, 11, 27))])
def test_a_bad_period_is_refused(since: datetime | None, until: datetime | None,
                                 now: datetime) -> None:
    with pytest.raises(ReportError) as info:
        build_availability([], channel=CHANNEL, since=since, until=until, now=now)
    assert info.value.code == "report.bad_period"


def test_builder_gives_the_same_report_and_can_finish_twice() -> None:
    log = Log()
    log.agreement(0)
    log.health(1, UP, since=1)
    builder = AvailabilityBuilder(channel=CHANNEL, since=None, until=None)
    for entry in log.entries:
        builder.add(entry)
    assert builder.finish(now=NOW).outages == ()
    log.health(40, DOWN, since=30)
    builder.add(log.entries[-1])
    assert builder.finish(now=NOW) == log.report()
    assert len(builder.finish(now=NOW).outages) == 1


def test_availability_module_is_pure() -> None:
    names = imports(MODULE)
    assert not offending(names, FORBIDDEN_IN_PURE)
    assert {n for n in names if n.startswith("hotline")} <= {
        "hotline.audit.report", "hotline.audit.text", "hotline.canonical", "hotline.entries",
        "hotline.envelope", "hotline.errorcodes", "hotline.errors", "hotline.health",
        "hotline.times", "hotline.typed"}
    text = MODULE.read_text()
    assert "datetime.now(" not in text and ".utcnow(" not in text and "open(" not in text


# -- property: the time adds up ------------------------------------------------------------------

CHANGES = st.lists(st.tuples(st.integers(0, 50_000), st.integers(0, 20_000),
                             st.sampled_from(list(State))), max_size=12)
BOUND = st.one_of(st.none(), st.integers(-10_000, 400_000))


@FAST
@given(changes=CHANGES, since=BOUND, until=BOUND, now=st.integers(-10_000, 500_000))
def test_time_adds_up_and_outages_are_the_down_stretches(
        changes: list[tuple[int, int, State]], since: int | None, until: int | None,
        now: int) -> None:
    """Health entries every so often (gap and how far back ``since`` lies, in ms), each a
    valid chain link: ``since`` never before the previous one nor after its own time."""
    log = Log()
    log.agreement(0)
    clock, began = 0.0, 0.0
    for gap, back, state in changes:
        clock += gap / 1000
        if state is log.state:
            continue
        began = max(began, clock - back / 1000)
        log.health(clock, state, since=began)
    if since is not None and until is not None and since >= until:
        since, until = until, since + 1
    report = log.report(since=None if since is None else since / 1000,
                        until=None if until is None else until / 1000, now=at(now / 1000))
    assert sum(report.time_in.values(), timedelta(0)) == report.period.length
    spans = report.timeline
    if report.period.length:
        assert (spans[0].start, spans[-1].end) == (report.period.since, report.period.until)
        assert all(a.end == b.start and a.state is not b.state
                   for a, b in pairwise(spans))
    else:
        assert spans == ()
    downs = [s for s in spans if s.state is DOWN]  # each outage, cut to the window
    listed = [o for o in report.outages  # but one logged at the very end of the window
              if not (o.ongoing and o.start == report.period.until)]
    for outage, span in zip(listed, downs, strict=True):
        assert outage.start <= span.start and (outage.end is None or span.end <= outage.end)
        assert outage.start == span.start or span.start == report.period.since
        assert outage.end == span.end or span.end == report.period.until
    doc = report.to_json()
    assert json.loads(json.dumps(doc)) == doc
    percents = [v["percent"] for v in doc["states"].values()]
    if report.period.length:
        assert abs(sum(percents) - 100) < 0.01
    assert max(len(line) for line in render_text(report).splitlines()) <= WIDTH


# -- issue 13: honest accounting -----------------------------------------------------------------

def test_a_server_restart_is_the_hosts_outage_though_one_agent_came_back_first() -> None:
    """As seen: the server restarted, north's agent reconnected and beat before the first sweep,
    which logged DOWN naming south alone. Both had fallen silent at once: the host's outage."""
    log = Log()
    log.agreement(0)
    for second in range(0, 101, 10):
        log.heartbeat(second, "north")
        log.heartbeat(second + 0.2, "south")
        if second == 0:
            log.health(0.5, UP, since=0.2)
    log.heartbeat(200.2, "north")  # the server is back at 200; north first
    down = log.health(200.5, DOWN, since=110.2, reason="south silent: no heartbeat since ...")
    log.heartbeat(205, "south")
    log.health(205.5, UP, since=205)
    (outage,) = log.report().outages
    assert (outage.index, outage.host, outage.silent) == (down, True, ("north", "south"))
    assert outage.cause == "south silent: no heartbeat since ..."
    assert outage.document().attribution == "host"
    text = render_text(log.report())
    assert ("fault: the server or its host (or the network to it): every party fell silent at "
            "once (north, south)") in " ".join(text.split())


def test_one_party_silent_is_that_partys_outage() -> None:
    log = Log()
    log.agreement(0)
    for second in range(0, 200, 10):
        log.heartbeat(second, "north")
        if not 60 < second < 150:
            log.heartbeat(second + 0.2, "south")
    log.health(0.5, UP, since=0.2)
    log.health(80.5, DEGRADED, since=70.2, reason="south late")
    log.health(90.5, DOWN, since=70.2, reason="south silent")
    log.health(150.5, UP, since=150.2)
    (outage,) = log.report().outages
    assert (outage.host, outage.silent, outage.began) == (False, (), at(70.2))
    assert (outage.start, outage.end) == (at(90.5), at(150.5))
    assert log.report().time_in[DEGRADED] == timedelta(seconds=20.3)
    assert "fault:" not in render_text(log.report())


def test_timeline_reasons_wrap_in_full() -> None:
    log = Log()
    log.agreement(0)
    reason = " ".join(f"north{n} silent: no heartbeat since 2026-11-27T21:00:40.100Z" for n in range(6))
    log.health(2, DOWN, since=1, reason=reason)
    text = render_text(log.report())
    table = text[text.index("  from "):text.index("\nHeartbeats")]
    assert "~" not in table and max(len(line) for line in text.splitlines()) <= WIDTH
    wrapped = table.split("reason: ")[-1]  # the DOWN's, under its row, then continued
    assert " ".join(line.strip() for line in wrapped.splitlines()) == reason


def test_the_timeline_bar_is_proportional_and_shows_every_fault() -> None:
    log = Log()
    log.agreement(0)
    log.health(0, UP, since=0)
    log.health(50, DOWN, since=50)
    log.health(99.9, UP, since=99.9)  # a fault shorter than a character still shows
    log.health(99.95, DOWN, since=99.95)
    log.health(99.99, UP, since=99.99)
    log.add({"time": stamp(100), "kind": "rejected", "party": "north", "code": "x",
             "member": "alice", "template": "t", "reason": "r"})
    bar, legend = timeline_bar(log.report())
    assert len(bar) == WIDTH and bar.startswith("  [") and bar.endswith("]")
    assert bar[3:-1] == "=" * 48 + "#" * 48
    assert legend.startswith("  = UP  ~ DEGRADED  # DOWN  ? UNKNOWN")
    log.add({"time": stamp(200), "kind": "rejected", "party": "north", "code": "x",
             "member": "alice", "template": "t", "reason": "r"})
    cells = timeline_bar(log.report())[0][3:-1]
    assert cells == "=" * 24 + "#" * 24 + "=" * 48  # the blips fall in the DOWN's last cell
