"""hotline.health: channel health from heartbeats and echoes, fed hand-built log entries.

Table-driven cases pin the party table of the module docstring (first matching row wins), the
channel's worst-state rule and the ``since`` of each kind of transition; then restoring from a
``health`` entry, reconfiguring, echo pairing (RTT), what is ignored, the JSON the server logs,
and a hypothesis property: any sequence of observations and sweeps yields valid states and a
consistent chain of transitions. Tests named ``regression`` pin bugs fixed in the module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hotline.canonical import canonical_bytes, check_value, parse
from hotline.entries import EntryError, PartyHealthRecord, decode, to_json, with_index
from hotline.envelope import new_envelope_id
from hotline.health import (
    MISSED,
    SEVERITY,
    ChannelHealth,
    PartyHealth,
    Policy,
    State,
    Transition,
)
from hotline.times import format_time, parse_time
from tests.unit.test_layers import FORBIDDEN_IN_PURE, imports, offending

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=300)
MODULE = Path(__file__).resolve().parents[2] / "hotline" / "health.py"
CHANNEL = "north-south"
T0 = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)  # the channel's start in every case
INTERVAL, GRACE = 10, 5  # seconds; grace differs from the interval so that the two can't be mixed up
POLICY = Policy.of(interval=INTERVAL, grace=GRACE)
PAIR = ("north", "south")
UNKNOWN, UP, DEGRADED, DOWN = State.UNKNOWN, State.UP, State.DEGRADED, State.DOWN
CONDITIONS = {"silent": DOWN, "waiting": UNKNOWN, "late": DEGRADED, "no_echo": DEGRADED, "ok": UP}


def observe(health: ChannelHealth, entry: dict[str, Any]) -> None:
    """Feed ``entry`` as the server reads it: decoded first (``hotline.entries``), so a
    malformed one never reaches the health module."""
    try:
        typed = decode(entry)
    except EntryError:
        return
    health.observe(typed)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def seconds(moment: datetime) -> float:
    """Seconds since T0, to the millisecond (what log times keep)."""
    return round((moment - T0).total_seconds(), 3)


@dataclass
class Feed:
    """Log entries as the server writes them (consecutive indexes from 8), and the envelope id of
    each heartbeat by (party, second)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    next_index: int = 8
    beats: dict[tuple[str, float], str] = field(default_factory=dict)

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"index": self.next_index, **entry}
        self.entries.append(entry)
        self.next_index += 1
        return entry

    def envelope(self, kind: str, party: str, second: float, *, reply_to: str | None = None,
                 channel: str = CHANNEL) -> dict[str, Any]:
        envelope: dict[str, Any] = {"v": 1, "id": new_envelope_id(self.next_index.to_bytes(16, "big")),
                                    "kind": kind,
                                    "channel": channel, "sender": f"{party}-agent",
                                    "template": kind, "precedence": "ROUTINE",
                                    "created": format_time(at(second)), "body": {}}
        if reply_to is not None:
            envelope["reply_to"] = reply_to
        return self.add({"time": format_time(at(second)), "kind": "envelope", "channel": channel,
                         "party": party, "envelope": envelope, "sig": {"alg": "ed25519"}})

    def heartbeat(self, party: str, second: float, *, channel: str = CHANNEL) -> str:
        beat_id: str = self.envelope("heartbeat", party, second, channel=channel)["envelope"]["id"]
        self.beats[(party, second)] = beat_id
        return beat_id

    def echo(self, party: str, second: float, owner: str, beat: float) -> dict[str, Any]:
        return self.envelope("echo", party, second, reply_to=self.beats[(owner, beat)])


# A script is a sequence of steps; a case's events are steps without sweeps.
Step = tuple[Any, ...]


def hb(party: str, second: float) -> Step:
    return ("hb", party, second)


def echo(party: str, second: float, owner: str, beat: float) -> Step:
    return ("echo", party, second, owner, beat)


def sweep(second: float) -> Step:
    return ("eval", second)


def ordered(*parts: Any) -> tuple[Step, ...]:
    """Steps (or sequences of steps) merged in log-time order; at equal times, in the order
    given."""
    steps: list[Step] = [s for part in parts for s in (part if isinstance(part[0], tuple) else [part])]
    return tuple(sorted(steps, key=lambda s: s[1] if s[0] == "eval" else s[2]))


def rounds(start: int, stop: int, *, beat: tuple[str, ...] = PAIR, answer: tuple[str, ...] = PAIR,
           step: int = INTERVAL) -> list[Step]:
    """Heartbeats every ``step`` s from ``start`` to ``stop`` inclusive: the n-th party of ``beat``
    at +0.1 n s; each other party of ``answer`` that beats too echoes it 0.2 s later."""
    out: list[Step] = []
    for second in range(start, stop + 1, step):
        for n, party in enumerate(beat):
            when = second + 0.1 * n
            out.append(hb(party, when))
        for n, party in enumerate(beat):
            when = second + 0.1 * n
            out += [echo(other, when + 0.2, party, when) for other in answer
                    if other != party and other in beat]
    return sorted(out, key=lambda s: s[2])


@dataclass
class Run:
    health: ChannelHealth
    feed: Feed
    transitions: list[Transition]


def run(script: list[Step], *, parties: tuple[str, ...] = PAIR, policy: Policy = POLICY,
        health: ChannelHealth | None = None) -> Run:
    """Feed the script's heartbeats and echoes as log entries and sweep where it says."""
    health = health or ChannelHealth(CHANNEL, parties, policy, started=T0)
    feed, transitions = Feed(), []
    for step in script:
        match step:
            case ("hb", party, second):
                feed.heartbeat(party, second)
                observe(health, feed.entries[-1])
            case ("echo", party, second, owner, beat):
                observe(health, feed.echo(party, second, owner, beat))
            case ("eval", second):
                transition = health.evaluate(at(second))
                if transition is not None:
                    transitions.append(transition)
    return Run(health, feed, transitions)


def summary(transitions: list[Transition]) -> list[tuple[State, State, float]]:
    return [(t.old, t.new, seconds(t.since)) for t in transitions]


# -- the party table, and the channel's worst state ----------------------------------------------

@dataclass(frozen=True)
class PartyCase:
    """Heartbeats and echoes (no sweeps), then each party judged at ``now``: party -> (state,
    condition, since in seconds); ``channel`` is the state ``evaluate(now)`` gives."""

    events: tuple[Step, ...]
    now: float
    expect: dict[str, tuple[State, str, float]]
    channel: State
    parties: tuple[str, ...] = PAIR


NORTH_ONLY_ANSWERS = rounds(0, 40, answer=("north",))  # south beats but never echoes
PARTY_CASES = {
    "never heard, channel younger than missed intervals: waiting": PartyCase(
        (), 30, {"north": (UNKNOWN, "waiting", 0), "south": (UNKNOWN, "waiting", 0)}, UNKNOWN),
    "never heard past missed intervals: silent, from one interval after the start": PartyCase(
        (), 30.001, {"north": (DOWN, "silent", 10), "south": (DOWN, "silent", 10)}, DOWN),
    "fresh heartbeats answered both ways: ok, since the last heartbeat": PartyCase(
        tuple(rounds(0, 0)), 5, {"north": (UP, "ok", 0), "south": (UP, "ok", 0.1)}, UP),
    "at exactly interval + grace: still ok": PartyCase(
        tuple(rounds(0, 0)), 15, {"north": (UP, "ok", 0), "south": (UP, "ok", 0.1)}, UP),
    "past interval + grace: late, since the missing heartbeat was due": PartyCase(
        tuple(rounds(0, 0)), 15.05, {"north": (DEGRADED, "late", 10), "south": (UP, "ok", 0.1)},
        DEGRADED),
    "at exactly missed intervals: late, not yet silent": PartyCase(
        tuple(rounds(0, 0)), 30,
        {"north": (DEGRADED, "late", 10), "south": (DEGRADED, "late", 10.1)}, DEGRADED),
    "past missed intervals: silent, since the first missing heartbeat was due": PartyCase(
        tuple(rounds(0, 0)), 30.05,
        {"north": (DOWN, "silent", 10), "south": (DEGRADED, "late", 10.1)}, DOWN),
    "one party beats, the other was never heard: waiting": PartyCase(
        (hb("north", 0),), 5, {"north": (UP, "ok", 0), "south": (UNKNOWN, "waiting", 0)}, UNKNOWN),
    "beats but leaves heartbeats unanswered for missed intervals: no_echo": PartyCase(
        tuple(NORTH_ONLY_ANSWERS), 40.5,  # owes an echo since north's heartbeat at 10
        {"north": (UP, "ok", 40), "south": (DEGRADED, "no_echo", 20)}, DEGRADED),
    "unanswered for exactly missed intervals: still ok": PartyCase(
        tuple(NORTH_ONLY_ANSWERS), 40, {"north": (UP, "ok", 40), "south": (UP, "ok", 40.1)}, UP),
    "an echo of its own heartbeat answers nothing": PartyCase(
        (*NORTH_ONLY_ANSWERS, *(echo("south", s + 0.3, "south", s + 0.1) for s in range(0, 41, 10))),
        40.5, {"north": (UP, "ok", 40), "south": (DEGRADED, "no_echo", 20)}, DEGRADED),
    "no heartbeat of the others to answer: no echo owed": PartyCase(
        (hb("north", 0), hb("north", 10), hb("north", 20), hb("north", 30), hb("north", 40)), 45,
        {"north": (UP, "ok", 40)}, UP, parties=("north",)),
    "silent comes before no_echo": PartyCase(
        ordered(rounds(0, 40, beat=("north",)), hb("south", 0.1), hb("south", 10.1),
                echo("north", 0.3, "south", 0.1), echo("north", 10.3, "south", 10.1)), 45,
        {"north": (UP, "ok", 40), "south": (DOWN, "silent", 20.1)}, DOWN),
    "regression: back from a silence, a party owes no echo for the heartbeats it missed": PartyCase(
        (*rounds(0, 40), *rounds(50, 100, beat=("north",)), hb("south", 105)), 105.5,
        {"north": (UP, "ok", 100), "south": (UP, "ok", 105)}, UP),
    "a party never heard beside one that is down: the worst is the channel's": PartyCase(
        (*rounds(0, 0, beat=("north",)),), 30.5,
        {"north": (DOWN, "silent", 10), "south": (DOWN, "silent", 10),
         "mediator": (DOWN, "silent", 10)}, DOWN, parties=("north", "south", "mediator")),
    "late beats waiting: DEGRADED > UNKNOWN > UP": PartyCase(
        (hb("north", 0), hb("south", 0.1), echo("north", 0.3, "south", 0.1),
         echo("south", 0.2, "north", 0), hb("south", 10.1), echo("north", 10.3, "south", 10.1)),
        16, {"north": (DEGRADED, "late", 10), "south": (UP, "ok", 10.1),
             "mediator": (UNKNOWN, "waiting", 0)}, DEGRADED, parties=("north", "south", "mediator")),
    "no parties: UNKNOWN": PartyCase((), 100, {}, UNKNOWN, parties=()),
}


@pytest.mark.parametrize("case", PARTY_CASES.values(), ids=PARTY_CASES.keys())
def test_party_table(case: PartyCase) -> None:
    health = run(list(case.events), parties=case.parties).health
    judged = health.party_health(at(case.now))
    got = {p: (h.state, h.condition, seconds(h.since)) for p, h in judged.items()}
    assert got == case.expect
    for party, h in judged.items():
        assert h.party == party and CONDITIONS[h.condition] is h.state and party in h.reason
    transition = health.evaluate(at(case.now))
    assert health.state is case.channel
    assert (transition is None) == (case.channel is UNKNOWN)  # every channel starts UNKNOWN
    assert health.state is max((h.state for h in judged.values()), key=SEVERITY.__getitem__,
                               default=UNKNOWN)


def test_severity_orders_the_states() -> None:
    assert sorted(State, key=SEVERITY.__getitem__) == [UP, UNKNOWN, DEGRADED, DOWN]
    assert Policy.of(interval=10, grace=5) == Policy(timedelta(seconds=10), timedelta(seconds=5),
                                                     MISSED)


# -- the since of each transition ----------------------------------------------------------------

@dataclass(frozen=True)
class SinceCase:
    """A script of heartbeats, echoes and sweeps; the transitions it gives as (old, new, since
    in seconds)."""

    script: tuple[Step, ...]
    expect: list[tuple[State, State, float]]
    parties: tuple[str, ...] = PAIR


STARTED = ordered(rounds(0, 0), sweep(1))  # UNKNOWN -> UP at 0.3, north's echo of south's heartbeat
SINCE_CASES = {
    "UNKNOWN to UP: the latest heartbeat or echo": SinceCase(STARTED, [(UNKNOWN, UP, 0.3)]),
    "UNKNOWN to DOWN: one interval after the start, for a party never heard": SinceCase(
        (*rounds(0, 30, beat=("north",)), sweep(30.5)), [(UNKNOWN, DOWN, 10)]),
    "UP to DEGRADED (late): when the missing heartbeat was due": SinceCase(
        (*STARTED, sweep(15.5)), [(UNKNOWN, UP, 0.3), (UP, DEGRADED, 10)]),
    "UP to DOWN (no sweep saw it late): when the first missing heartbeat was due": SinceCase(
        (*STARTED, sweep(31)), [(UNKNOWN, UP, 0.3), (UP, DOWN, 10)]),
    "regression: DEGRADED (late) to DOWN keeps the date the first heartbeat was due": SinceCase(
        (*STARTED, sweep(15.5), sweep(20), sweep(31)),
        [(UNKNOWN, UP, 0.3), (UP, DEGRADED, 10), (DEGRADED, DOWN, 10)]),
    "DOWN to UP: the evidence that ended it": SinceCase(
        ordered(STARTED, sweep(31), rounds(40, 40), sweep(41)),
        [(UNKNOWN, UP, 0.3), (UP, DOWN, 10), (DOWN, UP, 40.3)]),
    "regression: DOWN to DEGRADED ends the outage at the return, not when the other was late":
        SinceCase(ordered(rounds(0, 40, beat=("north",)), hb("south", 0.1), sweep(1), sweep(40.5),
                          hb("south", 58), sweep(58.5)),  # north late since 50, south back at 58
                  [(UNKNOWN, UP, 0.1), (UP, DOWN, 10.1), (DOWN, DEGRADED, 58)]),
    "regression: two parties, one back from a silence: DOWN to UP, never DEGRADED": SinceCase(
        ordered(rounds(0, 0), sweep(1), rounds(10, 110, beat=("north",)), sweep(45),
                hb("south", 105), sweep(105.5), echo("north", 105.2, "south", 105), sweep(106)),
        [(UNKNOWN, UP, 0.3), (UP, DOWN, 10.1), (DOWN, UP, 105.2)]),  # north's echo of it
    "UP to DEGRADED (no_echo): one interval after the first heartbeat left unanswered": SinceCase(
        ordered(rounds(0, 10), sweep(11), rounds(20, 50, answer=("north",)), sweep(50.5)),
        [(UNKNOWN, UP, 10.3), (UP, DEGRADED, 30)]),
    "a state never begins after the sweep that finds it": SinceCase(  # entries ahead of now
        (hb("north", 5), hb("south", 5.1), echo("north", 5.2, "south", 5.1),
         echo("south", 5.3, "north", 5), sweep(3)), [(UNKNOWN, UP, 3)]),
}


@pytest.mark.parametrize("case", SINCE_CASES.values(), ids=SINCE_CASES.keys())
def test_since_of_each_transition(case: SinceCase) -> None:
    assert summary(run(list(case.script), parties=case.parties).transitions) == case.expect


def test_a_state_never_begins_before_the_one_it_ends() -> None:
    health = run([*STARTED, sweep(12)]).health
    restored = Feed()
    restored.add({"time": format_time(at(25)), "kind": "health", "channel": CHANNEL, "from": "UP",
                  "to": "DEGRADED", "since": format_time(at(25)), "reason": "r", "parties": {},
                  "evidence": []})
    observe(health, restored.entries[0])
    transition = health.evaluate(at(31))  # DOWN since 10 by the evidence, but DEGRADED since 25
    assert transition is not None and (transition.old, transition.new) == (DEGRADED, DOWN)
    assert transition.since == at(25) == health.since


def test_transition_reason_and_evidence() -> None:
    result = run([*STARTED, sweep(31)])
    up, down = result.transitions
    assert up.reason == "every party beats and answers: north, south"
    assert down.reason == ("north silent: no heartbeat since 2026-11-27T21:00:00.000Z (3 intervals "
                           "of 10 s missed); south silent: no heartbeat since "
                           "2026-11-27T21:00:00.100Z (3 intervals of 10 s missed)")
    assert down.evidence == tuple(e["index"] for e in result.feed.entries)  # 2 beats, 2 echoes
    assert set(down.parties) == set(PAIR) and down.channel == CHANNEL


# -- restore, reconfigure --------------------------------------------------------------------------

def logged(transition: Transition, *, second: float, index: int = 99) -> dict[str, Any]:
    return to_json(with_index(transition.entry(time=at(second)), index))


def test_restore_from_a_health_entry_after_a_restart() -> None:
    before = run([*STARTED])
    (up,) = before.transitions
    after = ChannelHealth(CHANNEL, PAIR, POLICY, started=at(100))  # the server restarted at 100
    observe(after, logged(up, second=1))
    assert (after.state, after.since) == (UP, at(0.3))
    judged = after.party_health(at(100))
    assert judged["north"].last_heartbeat == at(0) and judged["north"].last_echo == at(0.3)
    assert judged["south"].last_heartbeat == at(0.1) and judged["south"].last_echo == at(0.2)
    assert after.last_heartbeats() == {"north": at(0), "south": at(0.1)}  # what /metrics shows
    transition = after.evaluate(at(100))  # the outage is dated from the last heartbeats before it
    assert transition is not None and summary([transition]) == [(UP, DOWN, 10)]


def test_restore_keeps_later_evidence_and_a_replay_does_not_move_it_back() -> None:
    result = run([*STARTED, *rounds(10, 20)])
    (up,) = result.transitions
    observe(result.health, logged(up, second=21))  # older last heartbeats than those seen
    judged = result.health.party_health(at(22))
    assert judged["north"].last_heartbeat == at(20)
    observe(result.health, result.feed.entries[0])  # the heartbeat at 0, replayed
    assert result.health.party_health(at(22))["north"].last_heartbeat == at(20)
    assert result.health.evaluate(at(22)) is None


def health_entry(**changes: Any) -> dict[str, Any]:
    (up,) = run([*STARTED]).transitions
    entry = logged(up, second=50)
    entry.update({"from": "UP", "to": "DOWN", "since": format_time(at(40))})
    entry["parties"]["north"]["last_heartbeat"] = format_time(at(45))
    for key, value in changes.items():
        target = entry
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return entry


BAD_HEALTH = {
    "unknown state": health_entry(to="BROKEN"),
    "since not a time": health_entry(since="yesterday"),
    "since after the entry's time": health_entry(since=format_time(at(51))),
    "no time": health_entry(time=None),
    "parties not an object": health_entry(parties=["north"]),
    "a party's snapshot not an object": health_entry(parties__south="UP"),
    "a party's last heartbeat not a time": health_entry(parties__south__last_heartbeat=1_800_000_000),
}


def test_a_valid_health_entry_restores() -> None:
    health = run([*rounds(0, 0)]).health
    observe(health, health_entry())
    assert (health.state, health.since) == (DOWN, at(40))
    assert health.party_health(at(46))["north"].last_heartbeat == at(45)


@pytest.mark.parametrize("entry", BAD_HEALTH.values(), ids=BAD_HEALTH.keys())
def test_regression_a_malformed_health_entry_changes_nothing(entry: dict[str, Any]) -> None:
    health = run([*rounds(0, 0)]).health
    observe(health, entry)
    assert (health.state, health.since) == (UNKNOWN, T0)  # not half restored
    assert health.party_health(at(46))["north"].last_heartbeat == at(0)


def test_reconfigure_keeps_what_was_seen_of_the_parties_that_remain() -> None:
    trio = ("north", "south", "mediator")
    result = run(list(ordered(rounds(0, 40), sweep(35))), parties=trio)  # mediator never heard: DOWN
    assert summary(result.transitions) == [(UNKNOWN, DOWN, 10)]
    health = result.health
    health.reconfigure(PAIR, POLICY)
    assert health.parties == ["north", "south"]
    transition = health.evaluate(at(41))  # mediator is no longer a party: UP, by the evidence
    assert transition is not None and summary([transition]) == [(DOWN, UP, 40.3)]
    health.reconfigure(PAIR, Policy.of(interval=5, grace=1))
    assert health.evaluate(at(46.5)) is not None and health.state is DEGRADED  # late at 5 s
    assert health.party_health(at(46.5))["north"].reason == (
        "north late: last heartbeat 6.5 s ago (interval 5.0 s, grace 1.0 s)")


def test_regression_a_party_added_by_a_new_agreement_gets_missed_intervals_to_beat() -> None:
    result = run([*rounds(0, 100), sweep(100.5)])
    health = result.health
    health.reconfigure(("north", "south", "mediator"), POLICY)  # agreement v2, logged at ~100
    transition = health.evaluate(at(101))
    assert transition is not None and summary([transition]) == [(UP, UNKNOWN, 100.3)]
    assert health.party_health(at(101))["mediator"].condition == "waiting"
    rest = run(list(ordered(rounds(110, 130), sweep(130), sweep(131))), health=health).transitions
    assert summary(rest) == [(UNKNOWN, DOWN, 110.3)]  # never heard within 3 intervals of joining


# -- echoes ---------------------------------------------------------------------------------------

def test_echoes_pair_with_heartbeats_for_the_round_trip() -> None:
    result = run([hb("north", 0), hb("south", 0.1), echo("south", 0.3456, "north", 0),
                  echo("north", 2.1, "south", 0.1)])  # log times keep milliseconds: 0.345
    judged = result.health.party_health(at(3))
    assert judged["north"].rtt == timedelta(seconds=0.345)  # on north's heartbeat, by south
    assert judged["south"].rtt == timedelta(seconds=2)
    assert judged["north"].last_echo == at(2.1) and judged["south"].last_echo == at(0.345)
    assert judged["north"].record().rtt_ms == 345 and judged["south"].record().rtt_ms == 2000
    assert judged["north"].record() == PartyHealthRecord(
        state=UP, condition="ok", reason="north up",
        last_heartbeat="2026-11-27T21:00:00.000Z", last_echo="2026-11-27T21:00:02.100Z",
        rtt_ms=345)


def test_the_latest_echo_gives_the_round_trip() -> None:
    result = run([hb("north", 0), echo("south", 1, "north", 0), hb("north", 10),
                  echo("south", 10.5, "north", 10), echo("mediator", 13, "north", 0)],
                 parties=("north", "south", "mediator"))
    judged = result.health.party_health(at(14))
    assert judged["north"].rtt == timedelta(seconds=13)  # mediator's late echo of the first
    assert judged["mediator"].last_echo == at(13)


UNPAIRED: dict[str, Callable[[Feed], object]] = {  # an echo naming a heartbeat it cannot pair with
    "an unknown heartbeat id": lambda f: f.envelope("echo", "south", 1, reply_to="nope"),
    "no reply_to": lambda f: f.envelope("echo", "south", 1),
    "its own heartbeat": lambda f: f.envelope("echo", "north", 1, reply_to=f.beats[("north", 0)]),
    "a sender that is not a party": lambda f: f.envelope("echo", "east", 1,
                                                         reply_to=f.beats[("north", 0)]),
    "another channel's heartbeat": lambda f: f.envelope("echo", "south", 1,
                                                        reply_to=f.beats[("north", 0.5)]),
}


@pytest.mark.parametrize("name", UNPAIRED)
def test_echoes_that_pair_with_no_heartbeat_are_ignored(name: str) -> None:
    feed = Feed()
    feed.heartbeat("north", 0)
    feed.heartbeat("north", 0.5, channel="north-east")
    UNPAIRED[name](feed)
    health = ChannelHealth(CHANNEL, PAIR, POLICY, started=T0)
    for entry in feed.entries:
        observe(health, entry)
    judged = health.party_health(at(2))
    assert all(h.last_echo is None and h.rtt is None for h in judged.values())


def test_an_echo_of_a_heartbeat_long_forgotten_is_ignored() -> None:
    script = [hb("north", 0), *(hb("south", 0.01 * n) for n in range(1, 65))]
    result = run([*script, echo("south", 1, "north", 0)])  # 64 heartbeats since north's
    assert result.health.party_health(at(2))["south"].last_echo is None
    result = run([*script[:-1], echo("south", 1, "north", 0)])  # 63: still paired
    assert result.health.party_health(at(2))["south"].last_echo == at(1)


# -- what is ignored ------------------------------------------------------------------------------

def good_heartbeat(**changes: Any) -> dict[str, Any]:
    feed = Feed(next_index=50)
    feed.heartbeat("north", 55)
    entry = feed.entries[0]
    for key, value in changes.items():
        if key.startswith("envelope__"):
            entry["envelope"][key.removeprefix("envelope__")] = value
        else:
            entry[key] = value
    return entry


IGNORED = {
    "another channel": good_heartbeat(channel="north-east"),
    "no channel": good_heartbeat(channel=None),
    "another kind": good_heartbeat(kind="rejected"),
    "a party not of the channel": good_heartbeat(party="east"),
    "no party": good_heartbeat(party=None),
    "party not text": good_heartbeat(party=["north"]),
    "envelope not an object": good_heartbeat(envelope="heartbeat"),
    "no envelope kind": good_heartbeat(envelope__kind=None),
    "an envelope kind health does not read": good_heartbeat(envelope__kind="message"),
    "time not RFC 3339 UTC": good_heartbeat(time="2026-11-27 21:00:55"),
    "time a number": good_heartbeat(time=1_800_000_000),
    "index text": good_heartbeat(index="50"),
    "index boolean": good_heartbeat(index=True),
    "no index": good_heartbeat(index=None),
    "heartbeat id not text": good_heartbeat(envelope__id=["x"]),
    "no heartbeat id": good_heartbeat(envelope__id=None),
    "reply_to not hashable": {**good_heartbeat(envelope__kind="echo"),
                              "envelope": {"kind": "echo", "reply_to": ["x"]}},
    "roster document": {"index": 50, "time": format_time(at(55)), "kind": "agreement",
                        "channel": CHANNEL, "document": {}},
    "nothing at all": {},
}


@pytest.mark.parametrize("entry", IGNORED.values(), ids=IGNORED.keys())
def test_other_channels_kinds_and_malformed_entries_change_nothing(entry: dict[str, Any]) -> None:
    script = list(ordered(rounds(0, 40), sweep(1), sweep(45)))
    plain, twin = run(script), run(script)
    observe(twin.health, entry)
    assert twin.health.snapshot(at(59)) == plain.health.snapshot(at(59))
    later = list(ordered(sweep(56), rounds(60, 60), sweep(61), sweep(95)))
    assert summary(run(later, health=twin.health).transitions) == summary(
        run(later, health=plain.health).transitions) == [
        (UP, DEGRADED, 50), (DEGRADED, UP, 60.3), (UP, DOWN, 70)]


# -- what the server logs and shows ---------------------------------------------------------------

def walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value, *(v for child in value.values() for v in walk(child))]
    if isinstance(value, list):
        return [value, *(v for child in value for v in walk(child))]
    return [value]


def test_entry_and_snapshot_are_valid_log_json_without_floats() -> None:
    result = run([hb("north", 0), hb("south", 0.1), echo("south", 0.3456, "north", 0),
                  echo("north", 0.4567, "south", 0.1), sweep(1.2345), sweep(31.5)])
    for transition in result.transitions:
        entry = to_json(with_index(transition.entry(time=at(31.9876)), 12))
        check_value(entry)
        assert parse(canonical_bytes(entry)) == entry
        assert not any(isinstance(v, float) for v in walk(entry))
        assert entry["time"] == "2026-11-27T21:00:31.987Z" and entry["kind"] == "health"
        assert set(entry) == {"index", "time", "kind", "channel", "from", "to", "since", "reason",
                              "parties", "evidence"}
        assert list(entry["parties"]) == ["north", "south"]
        for party in entry["parties"].values():
            assert set(party) == {"state", "condition", "reason", "last_heartbeat", "last_echo",
                                  "rtt_ms"}
    snapshot = msgspec.to_builtins(result.health.snapshot(at(31.5)))  # the frame's JSON
    check_value(snapshot)
    assert not any(isinstance(v, float) for v in walk(snapshot))
    assert snapshot["state"] == "DOWN" and snapshot["since"] == "2026-11-27T21:00:10.000Z"
    assert snapshot["interval"] == 10 and snapshot["channel"] == CHANNEL
    assert snapshot["parties"]["north"]["rtt_ms"] == 345
    empty = msgspec.to_builtins(ChannelHealth(CHANNEL, PAIR, POLICY, started=T0).snapshot(T0))
    assert empty["parties"]["north"] == {"state": "UNKNOWN", "condition": "waiting",
                                         "reason": "north: no heartbeat yet",
                                         "last_heartbeat": None, "last_echo": None, "rtt_ms": None}


def test_health_module_is_pure() -> None:
    names = imports(MODULE)
    assert not offending(names, FORBIDDEN_IN_PURE)
    assert {n for n in names if n.startswith("hotline")} <= {
        "hotline.errorcodes", "hotline.errors", "hotline.times", "hotline.entries", "hotline.typed",
        "hotline.wire.frames", "hotline.envelope"}
    text = MODULE.read_text()
    assert "datetime.now(" not in text and ".utcnow(" not in text


# -- property: any observations give valid states and a consistent chain -------------------------

POOL = ("north", "south", "mediator", "east")
POLICIES = (POLICY, Policy.of(interval=5, grace=0), Policy.of(interval=30, grace=30, missed=2))
GAP = st.integers(0, 40_000)  # milliseconds since the previous step: log times never go back


def malformed(now: datetime) -> list[dict[str, Any]]:
    """Entries a sweep must survive unchanged, as of log time ``now``."""
    t, back = format_time(now), format_time(now - timedelta(seconds=5))
    return [
        {"index": 1, "time": t, "kind": "health", "channel": CHANNEL, "to": "DOWN", "since": "soon"},
        {"index": 1, "time": back, "kind": "health", "channel": CHANNEL, "to": "UP", "since": t},
        {"index": 1, "time": t, "kind": "health", "channel": CHANNEL, "to": "DOWN", "since": back,
         "parties": {"north": {"last_heartbeat": "never"}}},
        {"index": 1, "time": t, "kind": "health", "channel": CHANNEL, "to": "UP", "since": back,
         "parties": "all"},
        {"index": 1, "time": t, "kind": "envelope", "channel": CHANNEL, "party": "north",
         "envelope": {"kind": "heartbeat"}},
        {"index": "1", "time": t, "kind": "envelope", "channel": CHANNEL, "party": "south",
         "envelope": {"kind": "heartbeat", "id": "x"}},
        {"index": 1, "time": "now", "kind": "envelope", "channel": CHANNEL, "party": "south",
         "envelope": {"kind": "echo", "reply_to": "x"}},
        {"index": 1, "time": t, "kind": "envelope", "channel": CHANNEL, "party": "south",
         "envelope": {"kind": "echo", "reply_to": {"id": "x"}}},
        {"index": 1, "time": t, "kind": "envelope", "channel": CHANNEL, "party": "north",
         "envelope": None},
        {"time": t, "kind": "health", "channel": "north-east", "to": "DOWN", "since": back},
        {"kind": "envelope"},
    ]


OPS = st.one_of(
    st.tuples(st.just("hb"), st.sampled_from(POOL), GAP),
    st.tuples(st.just("hb"), st.sampled_from(POOL), GAP),
    st.tuples(st.just("echo"), st.sampled_from(POOL), GAP, st.integers(0, 200)),
    st.tuples(st.just("echo"), st.sampled_from(POOL), GAP, st.integers(0, 200)),
    st.tuples(st.just("eval"), GAP),
    st.tuples(st.just("eval"), GAP),
    st.tuples(st.just("bad"), GAP, st.integers(0, 10)),
    st.tuples(st.just("restore"), GAP, st.sampled_from(list(State)), st.integers(0, 100_000),
              st.sampled_from(POOL), st.integers(0, 100_000)),
    st.tuples(st.just("reconfigure"), st.lists(st.sampled_from(POOL), max_size=4, unique=True),
              st.integers(0, len(POLICIES) - 1)),
)


@FAST
@given(parties=st.lists(st.sampled_from(POOL), max_size=4, unique=True),
       policy=st.sampled_from(POLICIES), ops=st.lists(OPS, max_size=60))
# found by this property: a health entry whose snapshot of a party not on the channel was
# malformed used to be applied anyway
@example(parties=[], policy=POLICY, ops=[("bad", 0, 2), ("eval", 0)])
def test_any_observations_give_valid_states_and_a_consistent_chain(
        parties: list[str], policy: Policy, ops: list[tuple[Any, ...]]) -> None:
    health = ChannelHealth(CHANNEL, parties, policy, started=T0)
    feed = Feed()
    clock = T0
    state, since = UNKNOWN, T0  # what the transitions (and restores) said last
    beats: list[str] = []
    for op in ops:
        match op:
            case ("hb", party, gap):
                clock += timedelta(milliseconds=gap)
                beats.append(feed.heartbeat(party, seconds(clock)))
                observe(health, feed.entries[-1])
            case ("echo", party, gap, which):
                clock += timedelta(milliseconds=gap)
                ref = beats[which % len(beats)] if beats and which < 150 else "unknown"
                observe(health, feed.envelope("echo", party, seconds(clock), reply_to=ref))
            case ("bad", gap, which):
                clock += timedelta(milliseconds=gap)
                observe(health, malformed(clock)[which])
            case ("restore", gap, to, back, party, heard):
                clock += timedelta(milliseconds=gap)
                began = max(T0, clock - timedelta(milliseconds=back))
                snapshot = {"state": "UP", "condition": "ok", "reason": "r", "rtt_ms": None,
                            "last_heartbeat": format_time(max(T0, clock - timedelta(milliseconds=heard))),
                            "last_echo": None}
                observe(health, feed.add({"time": format_time(clock), "kind": "health",
                                         "channel": CHANNEL, "from": state.value, "to": to.value,
                                         "since": format_time(began), "reason": "restored",
                                         "parties": {party: snapshot}, "evidence": []}))
                state, since = to, parse_time(format_time(began))
                assert (health.state, health.since) == (state, since)
            case ("reconfigure", names, choice):
                health.reconfigure(names, POLICIES[choice])
                assert health.parties == sorted(names)
            case ("eval", gap):
                clock += timedelta(milliseconds=gap)
                judged = health.party_health(clock)
                for party, h in judged.items():
                    assert isinstance(h, PartyHealth) and h.party == party
                    assert CONDITIONS[h.condition] is h.state
                    assert h.since <= clock
                    assert h.last_heartbeat is None or h.last_heartbeat <= clock
                transition = health.evaluate(clock)
                worst = max((h.state for h in judged.values()), key=SEVERITY.__getitem__,
                            default=UNKNOWN)
                assert health.state is worst
                if transition is None:
                    assert state is worst
                    continue
                assert transition.old is state and transition.new is worst
                assert transition.old is not transition.new
                assert since <= transition.since <= clock
                assert health.since == transition.since
                entry = to_json(with_index(transition.entry(time=clock), 0))
                check_value(entry)
                assert not any(isinstance(v, float) for v in walk(entry))
                check_value(msgspec.to_builtins(health.snapshot(clock)))
                state, since = transition.new, transition.since
