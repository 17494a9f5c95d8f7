"""Every entry of the log, once and in index order, to the service (``Hotline.apply``): this
server's own as its store commits them, the others' (servers sharing a PostgreSQL log) read from
the database once the store hears of them. Whatever a member connected here receives live, it
receives so: in log order, without a gap, whichever server logged it.

Theory of operation:
- The store hands each commit's new entries to ``committed`` before its head moves past them,
  with the ``origin`` their caller gave (the session that submitted it). So once the feed sees
  the head at H, every index below H that this server committed is in hand; any other below H
  was logged by another server, and is read from the database.
- ``run`` applies index ``next`` when it holds it, else reads the run of others' entries up to
  its next own one. It never skips an index and never applies one twice: a row that cannot be
  read is tried again (``store.read_failed``, a database failing over) rather than passed over.
- Another server's commits are heard by NOTIFY (``Store.moved``), and by a poll every ``poll``
  seconds in case a notification was lost; either brings the head up first (``Store.refresh``).
- ``applied(index)`` waits until the feed has applied ``index``: for a caller that must see an
  entry's effects (a roster document's) before it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Awaitable, Callable

import structlog

from hotline.errors import HotlineError
from hotline.store import Store, StoredEntry
from hotline.store.records import damaged

log = structlog.get_logger("hotline.server")

Apply = Callable[[StoredEntry, bool, object], Awaitable[None]]
"""Apply one entry: ``(stored, own, origin)``; ``own``: this server committed it."""

PAGE = 500  # others' entries read at once


class Feed:
    def __init__(self, store: Store, apply: Apply, *, poll: float | None) -> None:
        """``poll``: seconds between checks for other servers' commits (None: the store has no
        other writer)."""
        self.store, self._apply, self.poll = store, apply, poll
        self.next = 0  # the next index to apply
        self._own: dict[int, tuple[StoredEntry, object]] = {}
        self._wake = asyncio.Event()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._task: asyncio.Task[None] | None = None
        store.on_commit = self.committed

    def start(self, size: int) -> None:
        """Apply from ``size`` on (the server loaded what is below it from the log), in a task
        of its own until ``stop``."""
        self.next = size
        self._own = {i: item for i, item in self._own.items() if i >= size}
        self._task = asyncio.create_task(self.run(), name="feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def committed(self, items: list[tuple[StoredEntry, object]]) -> None:
        for stored, origin in items:
            if stored.index >= self.next:
                self._own[stored.index] = (stored, origin)
        self._wake.set()

    async def applied(self, index: int) -> None:
        """Return once entry ``index`` has been applied."""
        if index < self.next:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (index, next(self._order), future))
        await future

    async def run(self) -> None:
        """Forever: apply what the log holds beyond ``next``."""
        while True:
            heard = await self._wait()
            try:
                if heard:
                    await self.store.refresh()
                await self._catch_up()
            except HotlineError as exc:  # a read failed: tried again, never skipped
                self.store.note_failure(exc)
                log.error("feed.read_failed", next=self.next, code=exc.code, reason=exc.message)
                await asyncio.sleep(self.poll or 1.0)
                self._wake.set()

    async def _wait(self) -> bool:
        """Wait for a commit of this server's, another's, or the poll; True unless it was only
        this server's (the head is then current)."""
        if self._wake.is_set() and not self.store.moved.is_set():
            self._wake.clear()
            return False
        waits = [asyncio.ensure_future(self._wake.wait()),
                 asyncio.ensure_future(self.store.moved.wait())]
        try:
            await asyncio.wait(waits, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        own_only = self._wake.is_set() and not self.store.moved.is_set()
        self._wake.clear()
        return self.poll is not None and not own_only

    async def _catch_up(self) -> None:
        size = self.store.tree_head()[0]
        while self.next < size:
            own = self._own.pop(self.next, None)
            if own is not None:
                await self._run_apply(own[0], True, own[1])
                continue
            stop = min(self._own, default=size)  # every index held is beyond next
            page = await self.store.entries(after=self.next - 1, limit=min(stop - self.next, PAGE))
            if not page:
                raise damaged(self.next, "it is missing")
            for stored in page:
                if stored.index != self.next:
                    raise damaged(self.next, "it is missing")
                await self._run_apply(stored, False, None)
        while self._waiters and self._waiters[0][0] < self.next:
            future = heapq.heappop(self._waiters)[2]
            if not future.done():
                future.set_result(None)

    async def _run_apply(self, stored: StoredEntry, own: bool, origin: object) -> None:
        try:
            await self._apply(stored, own, origin)
        except Exception:  # a fault in one entry's effects must not stop the line
            log.exception("feed.apply_failed", index=stored.index)
        self.next = stored.index + 1
