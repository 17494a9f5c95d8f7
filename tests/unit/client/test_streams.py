"""hotline.client.streams: the order a client accepts deliveries in (issue 20, defect 9)."""

from __future__ import annotations

from hotline.client.streams import Arrival, Streams
from hotline.entries import OverdueEntry

CHANNEL = "north-south"


def entry(index: int, text: str = "x") -> OverdueEntry:
    return OverdueEntry(index=index, time="2026-12-01T08:00:00.000Z", channel=CHANNEL, ref=text,
                        entry=0, template="message", precedence="FLASH",
                        due="2026-12-01T08:00:00.000Z", ack="received", missing=[])


def test_live_entries_increase_and_backwards_or_rewritten_ones_are_refused() -> None:
    streams = Streams()
    assert [streams.arrive(i, CHANNEL, entry(i)) for i in (3, 5, 9)] == [Arrival.NEW] * 3
    assert streams.arrive(9, CHANNEL, entry(9)) is Arrival.AGAIN  # the same entry: shown once
    assert "went backwards" in str(streams.arrive(4, CHANNEL, entry(4)))
    assert "other content" in str(streams.arrive(5, CHANNEL, entry(5, "rewritten")))
    assert streams.arrive(10, "other", entry(10)) is Arrival.NEW  # each channel its own stream


def test_a_replay_may_follow_live_entries_once_and_then_must_increase() -> None:
    streams = Streams()
    assert streams.arrive(20, CHANNEL, entry(20)) is Arrival.NEW  # live, before the replay began
    streams.replay(CHANNEL, 7)
    assert streams.arrive(21, CHANNEL, entry(21)) is Arrival.NEW  # live, sent before the resume
    assert [streams.arrive(i, CHANNEL, entry(i)) for i in (8, 9, 20, 21)] == [
        Arrival.NEW, Arrival.NEW, Arrival.AGAIN, Arrival.AGAIN]
    assert "went backwards" in str(streams.arrive(3, CHANNEL, entry(3)))  # not after 7
    assert "other content" in str(streams.arrive(9, CHANNEL, entry(9, "again")))
    assert "went backwards" in str(streams.arrive(8 - 1, CHANNEL, entry(7)))  # it dropped back once
    streams.replayed(CHANNEL, 21)
    assert "went backwards" in str(streams.arrive(15, CHANNEL, entry(15)))
    assert streams.arrive(22, CHANNEL, entry(22)) is Arrival.NEW
