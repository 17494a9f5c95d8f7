"""The sharing rules of hotline.server.fairness, with time as an argument (or a fake clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hotline.entries import to_json, with_index
from hotline.server.fairness import FairQueue, RejectionBudget, TokenBucket

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def test_members_take_turns_whatever_each_has_queued() -> None:
    queue: FairQueue[str] = FairQueue(per_member=100)
    dead = asyncio.Event()
    for n in range(5):
        assert await queue.put("flooder", f"f{n}", dead=dead)
    assert await queue.put("bob", "b0", dead=dead)
    assert await queue.put("carol", "c0", dead=dead)
    done: list[str] = []

    async def work(job: str) -> None:
        done.append(job)

    runner = asyncio.create_task(queue.run(work))
    while len(done) < 7:
        await asyncio.sleep(0)
    runner.cancel()
    assert done == ["f0", "b0", "c0", "f1", "f2", "f3", "f4"]


async def test_a_full_member_queue_waits_and_gives_up_when_its_connection_dies() -> None:
    queue: FairQueue[int] = FairQueue(per_member=2)
    dead = asyncio.Event()
    assert await queue.put("m", 1, dead=dead) and await queue.put("m", 2, dead=dead)
    third = asyncio.create_task(queue.put("m", 3, dead=dead))
    await asyncio.sleep(0)
    assert not third.done() and queue.pending("m") == 2
    dead.set()
    assert await third is False and queue.pending("m") == 2


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] = 100.0  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3


def test_refusals_beyond_the_budget_are_summarized_once_per_window() -> None:
    budget = RejectionBudget(limit=2, window=timedelta(seconds=60))
    alice = ("north", "alice")
    assert [budget.allow(alice, "norm.order", T0 + timedelta(seconds=s)) for s in range(5)] == \
        [True, True, False, False, False]
    budget.allow(alice, "template.invalid", T0 + timedelta(seconds=6))
    assert budget.due(T0 + timedelta(seconds=59)) == []  # the window is still open
    (summary,) = budget.due(T0 + timedelta(seconds=60))
    assert to_json(with_index(summary, 9)) == {
        "index": 9, "time": "2026-12-05T12:01:00.000Z", "kind": "rejections", "party": "north",
        "member": "alice", "since": "2026-12-05T12:00:00.000Z", "until": "2026-12-05T12:01:00.000Z",
        "count": 4, "codes": {"norm.order": 3, "template.invalid": 1}}
    assert budget.due(T0 + timedelta(seconds=200)) == []
    assert budget.allow(alice, "norm.order", T0 + timedelta(seconds=200))  # a new window


def test_a_window_ended_by_the_next_refusal_is_still_summarized() -> None:
    budget = RejectionBudget(limit=1, window=timedelta(seconds=10))
    bob = ("south", "bob")
    assert budget.allow(bob, "x", T0) and not budget.allow(bob, "x", T0)
    assert budget.allow(bob, "x", T0 + timedelta(seconds=30))  # before any sweep: a new window
    (summary,) = budget.due(T0 + timedelta(seconds=31))
    assert (summary.count, summary.since) == (1, "2026-12-05T12:00:00.000Z")
