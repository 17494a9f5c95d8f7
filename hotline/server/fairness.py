"""Sharing the server between members: fair turns, a ceiling on submissions, bounded refusals.

Theory of operation:
- Rule 1 (fair turns): submissions wait in one bounded queue per member (``FairQueue``); a single
  worker takes one submission from each member with work in turn, and yields to the event loop
  between two. However fast one member pipelines, another member's submission waits for at most
  one turn of each active member, and the flooder's connection is simply no longer read while its
  queue is full (TCP backpressure), so its frames never pile up in memory. The worker yields to
  the event loop every couple of milliseconds of work.
- Rule 2 (ceiling): each member may submit at most ``rate`` per second, with bursts of ``burst``
  (``TokenBucket``); beyond it a submission is refused ``submit.rate_limited``. This is the
  server's own protection, beside the agreements' template rates (a humanitarian notice, which no
  template rate refuses, still counts here).
- Rule 3 (bounded refusals in the log): each member's refusals are logged one entry each up to
  ``limit`` per window of ``window``; the rest of the window's refusals are counted and logged as
  one ``rejections`` summary entry when the window ends (``RejectionBudget``, pure: time is an
  argument).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from hotline.entries import PENDING, RejectionsEntry
from hotline.times import format_time

Job = TypeVar("Job")
TURN_BUDGET = 0.002  # seconds of submissions' work before the worker yields to the event loop


class FairQueue(Generic[Job]):
    def __init__(self, *, per_member: int) -> None:
        self.per_member = per_member
        self._queues: dict[Hashable, deque[Job]] = {}
        self._turns: deque[Hashable] = deque()  # members with work, in turn order
        self._ready = asyncio.Event()
        self._room: dict[Hashable, asyncio.Event] = {}

    def pending(self, member: Hashable) -> int:
        return len(self._queues.get(member, ()))

    async def put(self, member: Hashable, job: Job, *, dead: asyncio.Event) -> bool:
        """Queue ``job`` once ``member`` has room; False if ``dead`` was set first."""
        while self.pending(member) >= self.per_member:
            room = self._room.setdefault(member, asyncio.Event())
            room.clear()
            waits = {asyncio.ensure_future(room.wait()), asyncio.ensure_future(dead.wait())}
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            if dead.is_set():
                return False
        queue = self._queues.get(member)
        if queue is None:
            queue = self._queues[member] = deque()
            self._turns.append(member)
        queue.append(job)
        self._ready.set()
        return True

    def _next(self) -> Job | None:
        if not self._turns:
            return None
        member = self._turns.popleft()
        queue = self._queues[member]
        job = queue.popleft()
        if queue:
            self._turns.append(member)  # back of the line
        else:
            del self._queues[member]
        room = self._room.get(member)
        if room is not None:
            room.set()
            if not queue:
                del self._room[member]
        return job

    async def run(self, work: Callable[[Job], Awaitable[None]], *, budget: float = TURN_BUDGET) -> None:
        """Forever: one job of the next member in turn; ``work`` must not raise. After
        ``budget`` seconds of jobs the worker yields, so reads, pings and deliveries go on."""
        clock = time.perf_counter
        since = clock()
        while True:
            job = self._next()
            if job is None:
                self._ready.clear()
                await self._ready.wait()
                since = clock()
                continue
            await work(job)
            if clock() - since >= budget:
                await asyncio.sleep(0)
                since = clock()


@dataclass
class TokenBucket:
    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _at: float = field(init=False)

    def __post_init__(self) -> None:
        self._tokens, self._at = float(self.burst), self.clock()

    def take(self) -> bool:
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


@dataclass
class _Window:
    start: datetime
    logged: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)


class RejectionBudget:
    """Which refusals are logged one by one, and the summaries of the others."""

    def __init__(self, *, limit: int, window: timedelta) -> None:
        self.limit, self.window = limit, window
        self._windows: dict[tuple[str, str], _Window] = {}  # (party, member) -> current window
        self._ended: list[tuple[tuple[str, str], _Window]] = []  # with refusals to summarize

    def allow(self, member: tuple[str, str], code: str, now: datetime) -> bool:
        """True to log this refusal as its own entry; False: it is counted for the summary."""
        window = self._windows.get(member)
        if window is None or now >= window.start + self.window:
            if window is not None and window.suppressed:
                self._ended.append((member, window))
            window = self._windows[member] = _Window(now)
        if window.logged < self.limit:
            window.logged += 1
            return True
        window.suppressed[code] += 1
        return False

    def due(self, now: datetime) -> list[RejectionsEntry]:
        """The summary entries (not yet in the log) of every window that has ended with refusals
        counted, oldest first; those windows are closed."""
        ended = [item for item in self._windows.items() if now >= item[1].start + self.window]
        for member, _ in ended:
            del self._windows[member]
        ended += self._ended
        self._ended = []
        out = []
        for (party, name), window in sorted(ended, key=lambda item: item[1].start):
            end = window.start + self.window
            if window.suppressed:
                out.append(RejectionsEntry(
                    index=PENDING, time=format_time(now), party=party, member=name,
                    since=format_time(window.start), until=format_time(end),
                    count=sum(window.suppressed.values()), codes=dict(sorted(window.suppressed.items()))))
        return out
