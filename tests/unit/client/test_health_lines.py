"""What `hotline listen` shows of a channel's health (issue 13, item 3): a logged ``health`` entry
and the live ``health`` frame are the host's word, decoded strictly (a value or ``WireError``,
never another exception), and rendered on a line of their own marked [host, unsigned], inert
whatever the host put in any field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.client.frames import HealthChange, HealthNow, health_change, health_now
from hotline.client.lines import HOST, health_json, health_line, health_now_json, health_now_line
from hotline.display import unsafe
from hotline.errors import WireError
from tests.fuzzing import mutated
from tests.hostile_text import hostile_text as hostile

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=200,
                suppress_health_check=[HealthCheck.too_slow])
STATES = st.sampled_from(["UNKNOWN", "UP", "DEGRADED", "DOWN"])

ENTRY = {"index": 7, "time": "2026-12-01T09:00:04.000Z", "kind": "health", "channel": "north-south",
         "from": "UP", "to": "DOWN", "since": "2026-12-01T09:00:01.000Z",
         "reason": "south silent: no heartbeat since 2026-12-01T09:00:00.000Z (3 intervals of 1.0 s "
                   "missed)",
         "parties": {"south": {"state": "DOWN", "condition": "silent", "reason": "south silent",
                               "last_heartbeat": None, "last_echo": None, "rtt_ms": None}},
         "evidence": [3, 4]}
FRAME = {"type": "health", "channel": "north-south", "state": "DOWN",
         "since": "2026-12-01T09:00:01.000Z", "interval": 1,
         "parties": {"north": {"state": "UP", "reason": "north up"},
                     "south": {"state": "DOWN", "reason": "south silent: never heard"}}}


def safe(line: str) -> bool:
    return unsafe(line) == [] and "\n" not in line


def test_a_logged_change_reads_as_the_hosts_verdict_with_its_reason() -> None:
    change = health_change(7, ENTRY)
    assert health_line(change) == (
        f"[7] {HOST} HEALTH north-south DOWN since 2026-12-01T09:00:01.000Z (was UP): "
        "south silent: no heartbeat since 2026-12-01T09:00:00.000Z (3 intervals of 1.0 s missed)")
    assert json.loads(health_json(change)) == {
        "index": 7, "channel": "north-south", "kind": "health", "verified": False,
        "server": {"logged": ENTRY["time"], "from": "UP", "to": "DOWN", "since": ENTRY["since"],
                   "reason": ENTRY["reason"]}}


def test_the_live_state_names_the_parties_at_fault() -> None:
    now = health_now(FRAME)
    assert health_now_line(now) == (f"{HOST} HEALTH north-south is DOWN now, since "
                                    "2026-12-01T09:00:01.000Z: south silent: never heard")
    assert json.loads(health_now_json(now))["server"]["reasons"] == ["south silent: never heard"]


@pytest.mark.parametrize("field, value", [("to", "BROKEN"), ("from", None), ("reason", 3),
                                          ("index", 8), ("extra", 1)])
def test_a_malformed_change_is_a_wire_error_naming_it(field: str, value: Any) -> None:
    with pytest.raises(WireError) as refused:
        health_change(7, {**ENTRY, field: value})
    assert refused.value.code == "frame.malformed"


@FAST
@given(st.sampled_from([ENTRY]).flatmap(mutated), st.integers(6, 8))
def test_any_health_entry_decodes_or_is_a_wire_error(entry: Any, index: int) -> None:
    try:
        change = health_change(index, entry)
    except WireError:
        return
    assert safe(health_line(change)) and health_json(change).isascii()


@FAST
@given(st.sampled_from([FRAME]).flatmap(mutated))
def test_any_health_frame_decodes_or_is_a_wire_error(frame: Any) -> None:
    if not isinstance(frame, dict) or not {"channel", "state", "since", "parties"} <= set(frame):
        return  # hotline.session refuses a frame without its fields before it gets here
    if not all(isinstance(frame[k], t) for k, t in
               (("channel", str), ("state", str), ("since", str), ("parties", dict))):
        return
    try:
        now = health_now(frame)
    except WireError:
        return
    assert safe(health_now_line(now)) and health_now_json(now).isascii()


@given(st.integers(0, 2**53), hostile, hostile, hostile, STATES, STATES, hostile,
       st.lists(hostile, max_size=3))
def test_whatever_the_host_wrote_renders_inert_on_its_own_marked_line(
        index: int, channel: str, logged: str, since: str, old: str, new: str, reason: str,
        reasons: list[str]) -> None:
    line = health_line(HealthChange(index, channel, logged, old, new, since, reason))
    assert safe(line) and line.startswith(f"[{index}] {HOST} HEALTH ")
    now = health_now_line(HealthNow(channel, new, since, tuple(reasons)))
    assert safe(now) and now.startswith(f"{HOST} HEALTH ")
    for record in (health_json(HealthChange(index, channel, logged, old, new, since, reason)),
                   health_now_json(HealthNow(channel, new, since, tuple(reasons)))):
        assert record.isascii() and safe(record) and json.loads(record)["verified"] is False
