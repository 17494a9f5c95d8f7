"""Fan-out and the life of a member's session.

Theory of operation:
- Each connection has a bounded outgoing queue (``send_queue`` frames and ``send_queue_bytes``)
  drained by its own sender task, so a slow member never blocks the others; a frame left unread
  for ``send_timeout`` ends the session (``Hub.watch_stalled``). Live frames are
  queued without waiting (``send``): a full queue means the member is not reading, and it is
  disconnected (4008) to resume later. Frames the session produces on request (replay, fetch) are
  queued with ``put``, which waits for room: the member's reading paces them.
- Rule 1: nothing a session does can outlive its connection. Every wait (``put``) is raced with
  ``dead``, which is set the moment the sender fails, a frame stays unread for ``send_timeout``,
  the session is closed, or the handler ends; ``stop`` then cancels every task of the session.
- Rule 2: a replay (``resume``) never buffers live entries. While a channel is replayed, live
  entries of it are only noted (``missed``); the replay reads on from the store until it has
  passed every one of them, then the channel goes live. The store holds every entry before it is
  published, so none is lost and none is sent twice.
- Rule 3: a session ends when its key stops being valid (expiry, revocation taking effect): a
  timer fires at that moment, and every delivery checks it too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from hotline.roster import Member
from hotline.wire.frames import ServerFrame, deliver_text, encode

CLOSE_AUTH_FAILED = 4001  # authentication failed or the key was revoked or expired
CLOSE_OVERFLOW = 4008  # the member read too slowly; it reconnects and resumes


class ConnectionGone(Exception):
    """The session's connection died while something waited to send on it."""


class SendQueue:
    """Frames waiting to be sent, bounded in count and in bytes."""

    def __init__(self, *, frames: int, size: int) -> None:
        self.frames, self.size = frames, size
        self._items: deque[str] = deque()
        self._bytes = 0
        self._unsent = 0  # queued, or popped and still being sent
        self._readable = asyncio.Event()
        self._popped = asyncio.Event()  # set, and replaced, at each pop
        self.drained = asyncio.Event()  # every queued frame has been sent
        self.drained.set()

    def __len__(self) -> int:
        return len(self._items)

    def full(self, text: str) -> bool:
        # one frame always fits an empty queue, however large
        return bool(self._items) and (len(self._items) >= self.frames
                                      or self._bytes + len(text) > self.size)

    def spare(self, text: str) -> bool:
        """Room for ``text`` among the frames the server paces (a replay, its burst at connect,
        receipts): at most half of each bound, so that live frames, which are never waited for,
        always find the other half (one frame always fits an empty queue)."""
        return not self._items or (2 * (len(self._items) + 1) <= self.frames
                                   and 2 * (self._bytes + len(text)) <= self.size)

    def push(self, text: str) -> None:
        self._items.append(text)
        self._bytes += len(text)
        self._unsent += 1
        self.drained.clear()
        self._readable.set()

    async def pop(self) -> str:
        while not self._items:
            self._readable.clear()
            await self._readable.wait()
        text = self._items.popleft()
        self._bytes -= len(text)
        self._popped.set()
        self._popped = asyncio.Event()
        return text

    def sent(self) -> None:
        """The frame last popped has been written (or given up)."""
        self._unsent -= 1
        if not self._unsent:
            self.drained.set()

    def next_pop(self) -> Coroutine[Any, Any, bool]:
        """Done once a frame is taken from the queue after this call (the event is taken now,
        so a pop before the caller gets to wait still counts)."""
        return self._popped.wait()


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    member: Member
    queue_size: int
    queue_bytes: int = 4 * 1024 * 1024
    send_timeout: float = 30.0
    transport: asyncio.BaseTransport | None = None  # aborted if a close cannot complete
    channels: set[str] = field(default_factory=set)
    valid_until: datetime | None = None  # when the member's key stops being valid
    queue: SendQueue = field(init=False)
    dead: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    replaying: dict[str, int] = field(default_factory=dict)  # channel -> highest live index missed
    live_after: dict[str, int] = field(default_factory=dict)  # channel -> last index its replay sent
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    sending_since: float | None = None  # loop time the frame being sent started
    _sender: asyncio.Task[None] | None = None
    _expiry: asyncio.TimerHandle | None = None
    closing: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.queue = SendQueue(frames=self.queue_size, size=self.queue_bytes)

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name=f"send-{self.member.member}")

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                text = await self.queue.pop()
                self.sending_since = loop.time()  # Hub.watch_stalled reads it
                try:
                    await self.ws.send_str(text)
                finally:
                    self.sending_since = None
                    self.queue.sent()
        except (ConnectionError, RuntimeError):
            return  # the connection is gone
        finally:
            self.dead.set()

    def stalled(self, now: float) -> bool:
        """A frame has waited for the member to read it for longer than the send timeout."""
        return self.sending_since is not None and now - self.sending_since > self.send_timeout

    def send(self, frame: ServerFrame) -> None:
        self.send_text(encode(frame))

    def send_text(self, text: str) -> None:
        """Queue a live frame; a full queue means the member is not reading: drop the connection."""
        if self.dead.is_set():
            return
        if self.queue.full(text):
            self.close(CLOSE_OVERFLOW, "send queue overflow; resume")
            return
        self.queue.push(text)

    async def put(self, text: str) -> None:
        """Queue a frame once there is room for it in the paced half of the queue
        (``SendQueue.spare``): the member's reading paces the caller, and live frames still fit.

        Raises:
            ConnectionGone: the connection died first.
        """
        while not self.queue.spare(text):
            if self.dead.is_set():
                raise ConnectionGone
            room = asyncio.ensure_future(self.queue.next_pop())
            died = asyncio.ensure_future(self.dead.wait())
            try:
                await asyncio.wait({room, died}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                room.cancel()
                died.cancel()
        if self.dead.is_set():
            raise ConnectionGone
        self.queue.push(text)

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """A task of this session: cancelled by ``stop``."""
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued have been sent (at most 5 s)."""
        if self.closing is not None:
            return
        self.closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        if code != CLOSE_OVERFLOW:
            drained = asyncio.ensure_future(self.queue.drained.wait())
            died = asyncio.ensure_future(self.dead.wait())
            await asyncio.wait({drained, died}, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
            drained.cancel()
            died.cancel()
        self.dead.set()
        closed = False
        try:
            async with asyncio.timeout(5.0):
                await self.ws.close(code=code, message=reason.encode())
            closed = True
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            # a peer that reads nothing cannot be told (and aiohttp's graceful close would wait
            # for it to read): cut the connection, so that the handler sees it end
            if not closed and self.transport is not None:
                self.transport.abort()  # type: ignore[attr-defined]

    def expire_at(self, delay: float | None, expire: Callable[[], object]) -> None:
        """Call ``expire`` after ``delay`` seconds (None: the key never expires)."""
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = (asyncio.get_running_loop().call_later(max(delay, 0.0), expire)
                        if delay is not None else None)

    def offer(self, channel: str, index: int, text: str) -> None:
        """A live entry of ``channel``: while that channel is being replayed, only noted (the
        replay reads it from the store)."""
        missed = self.replaying.get(channel)
        if missed is not None:
            self.replaying[channel] = max(missed, index)
        elif index > self.live_after.get(channel, -1):  # the replay may have sent it already
            self.send_text(text)

    async def stop(self) -> None:
        """End every task of the session (the handler is done with it)."""
        self.dead.set()
        if self._expiry is not None:
            self._expiry.cancel()
        tasks = [t for t in (self._sender, self.closing, *self.tasks) if t is not None]
        for task in tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for task in tasks:
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


class Hub:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.by_channel: dict[str, set[Connection]] = defaultdict(set)
        self.all: set[Connection] = set()
        self.changed = asyncio.Event()  # set whenever a session joins or leaves (tests, metrics)

    async def watch_stalled(self, every: float = 1.0) -> None:
        """Forever: close (4008) each session whose member has left a frame unread for longer
        than its send timeout (one sweep for all, not a timer per frame)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            now = loop.time()
            for conn in list(self.all):
                if conn.stalled(now):
                    conn.close(CLOSE_OVERFLOW, "frames left unread; reconnect and resume")

    def join(self, conn: Connection, channels: list[str]) -> None:
        self.all.add(conn)
        conn.channels.update(channels)
        for channel in channels:
            self.by_channel[channel].add(conn)
        self.changed.set()

    def leave(self, conn: Connection) -> None:
        self.all.discard(conn)
        for channel in conn.channels:
            self.by_channel[channel].discard(conn)
        self.changed.set()

    def publish(self, channel: str, index: int, leaf: bytes, *,
                skip: Connection | None = None) -> None:
        """Log entry ``index`` of ``channel`` (its leaf bytes), live to every member on it."""
        now = self.clock()
        text = deliver_text(index, leaf)  # encoded once for every member
        for conn in list(self.by_channel.get(channel, ())):
            if conn is not skip and _valid(conn, now):
                conn.offer(channel, index, text)

    def notify(self, channel: str, frame: ServerFrame) -> None:
        """A live status frame (not a log entry) to every member connected to ``channel``."""
        now = self.clock()
        text = encode(frame)
        for conn in list(self.by_channel.get(channel, ())):
            if _valid(conn, now):
                conn.send_text(text)

    def broadcast(self, frame: ServerFrame) -> None:
        now = self.clock()
        text = encode(frame)
        for conn in list(self.all):
            if _valid(conn, now):
                conn.send_text(text)


def _valid(conn: Connection, now: datetime) -> bool:
    """Rule 3 at every delivery; the session's expiry timer closes it."""
    return conn.valid_until is None or now < conn.valid_until
