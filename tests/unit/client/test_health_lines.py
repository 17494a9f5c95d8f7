"""What `hotline listen` shows of a channel's health (issue 13, item 3): a logged ``health`` entry
and the live ``health`` frame are the host's word, decoded strictly (``hotline.entries``,
``hotline.wire.frames``: a value or a ``WireError``, never another exception), and rendered on a
line of their own marked [host, unsigned], inert whatever the host put in any field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.client.lines import HOST, health_json, health_line, health_now_json, health_now_line
from hotline.display import unsafe
from hotline.entries import HealthEntry, HealthState, decode
from hotline.errors import WireError
from hotline.wire.frames import SERVER_TYPES, Health, PartyHealthNow, decode_value
from tests.fuzzing import mutated
from tests.hostile_text import hostile_text as hostile

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=200,
                suppress_health_check=[HealthCheck.too_slow])
STATES = st.sampled_from(list(HealthState))

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


def health_frame(value: Any) -> Health:
    frame = decode_value(value, allowed=SERVER_TYPES)
    assert isinstance(frame, Health)
    return frame


def test_a_logged_change_reads_as_the_hosts_verdict_with_its_reason() -> None:
    change = decode(ENTRY)
    assert isinstance(change, HealthEntry)
    assert health_line(change) == (
        f"[7] {HOST} HEALTH north-south DOWN since 2026-12-01T09:00:01.000Z (was UP): "
        "south silent: no heartbeat since 2026-12-01T09:00:00.000Z (3 intervals of 1.0 s missed)")
    assert json.loads(health_json(change)) == {
        "index": 7, "channel": "north-south", "kind": "health", "verified": False,
        "server": {"logged": ENTRY["time"], "from": "UP", "to": "DOWN", "since": ENTRY["since"],
                   "reason": ENTRY["reason"]}}


def test_the_live_state_names_the_parties_at_fault() -> None:
    now = health_frame(FRAME)
    assert health_now_line(now) == (f"{HOST} HEALTH north-south is DOWN now, since "
                                    "2026-12-01T09:00:01.000Z: south silent: never heard")
    assert json.loads(health_now_json(now))["server"]["reasons"] == ["south silent: never heard"]


def test_a_newer_servers_health_fields_are_ignored() -> None:
    """The compatibility rule (``hotline.wire.frames``): a field an older client does not know,
    in the frame or in a party, is skipped, so a server may add one."""
    newer = {**FRAME, "trend": "worse",
             "parties": {p: {**v, "jitter_ms": 3} for p, v in FRAME["parties"].items()}}
    assert health_frame(newer) == health_frame(FRAME)


@pytest.mark.parametrize("field, value", [("to", "BROKEN"), ("from", None), ("reason", 3),
                                          ("extra", 1)])
def test_a_malformed_change_is_a_wire_error_naming_it(field: str, value: Any) -> None:
    with pytest.raises(WireError) as refused:
        decode({**ENTRY, field: value})
    assert refused.value.code == "entry.malformed"


@FAST
@given(st.sampled_from([ENTRY]).flatmap(mutated))
def test_any_health_entry_decodes_or_is_a_wire_error(entry: Any) -> None:
    try:
        change = decode(entry)
    except WireError:
        return
    if isinstance(change, HealthEntry):
        assert safe(health_line(change)) and health_json(change).isascii()


@FAST
@given(st.sampled_from([FRAME]).flatmap(mutated))
def test_any_health_frame_decodes_or_is_a_wire_error(frame: Any) -> None:
    try:
        now = decode_value(frame, allowed=SERVER_TYPES)
    except WireError:
        return
    if isinstance(now, Health):
        assert safe(health_now_line(now)) and health_now_json(now).isascii()


@given(st.integers(0, 2**53), hostile, hostile, hostile, STATES, STATES, hostile,
       st.lists(hostile, max_size=3))
def test_whatever_the_host_wrote_renders_inert_on_its_own_marked_line(
        index: int, channel: str, logged: str, since: str, old: HealthState, new: HealthState,
        reason: str, reasons: list[str]) -> None:
    change = HealthEntry(index=index, channel=channel, time=logged, old=old, new=new, since=since,
                         reason=reason, parties={}, evidence=[])
    line = health_line(change)
    assert safe(line) and line.startswith(f"[{index}] {HOST} HEALTH ")
    live = Health(channel=channel, state=new, since=since, interval=1,
                  parties={str(i): PartyHealthNow(state=HealthState.DOWN, reason=r)
                           for i, r in enumerate(reasons)})
    now = health_now_line(live)
    assert safe(now) and now.startswith(f"{HOST} HEALTH ")
    for record in (health_json(change), health_now_json(live)):
        assert record.isascii() and safe(record) and json.loads(record)["verified"] is False
