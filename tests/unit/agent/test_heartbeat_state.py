"""The agent's heartbeat counters: never repeated across restarts, written once per block."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.agent.heartbeat import SEQ_BLOCK, AgentState
from hotline.client.backoff import Backoff
from hotline.client.connection import ConnectError


def test_numbers_never_repeat_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "state" / "north-agent.agent.json"
    state = AgentState.load(path)
    used = [state.next("north-south") for _ in range(SEQ_BLOCK + 3)]
    assert used == list(range(SEQ_BLOCK + 3))
    assert state.next("other") == 0
    for _ in range(3):  # a crash at any point: the next run starts beyond every number used
        restarted = AgentState.load(path)
        first = restarted.next("north-south")
        assert first > max(used)
        used.append(first)
    assert AgentState.load(path).next("other") > 0


def test_the_file_is_written_once_per_block(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    state = AgentState.load(path)
    state.next("c")
    written = path.stat().st_mtime_ns, path.read_text()
    for _ in range(SEQ_BLOCK - 1):
        state.next("c")
    assert (path.stat().st_mtime_ns, path.read_text()) == written
    state.next("c")
    assert path.read_text() != written[1]


def test_an_unreadable_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"seq": {"c": "many"}}')
    with pytest.raises(ConnectError, match="unreadable"):
        AgentState.load(path)


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    lows = Backoff(base=1.0, cap=8.0, rng=lambda: 0.0)
    assert [lows.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    highs = Backoff(base=1.0, cap=8.0, rng=lambda: 1.0)
    assert [highs.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    highs.reset()
    assert highs.next_delay() == 1.0
