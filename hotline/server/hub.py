"""Fan-out: each connection has a bounded queue and its own sender task (a slow member never
blocks the others), and a per-channel replay buffer so that ``resume`` interleaves correctly with
live traffic."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from hotline.roster import Member
from hotline.session import encode

CLOSE_AUTH_FAILED = 4001  # authentication failed or the key was revoked
CLOSE_OVERFLOW = 4008  # the member read too slowly; it reconnects and resumes


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    member: Member
    queue_size: int
    channels: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str] = field(init=False)
    replaying: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    _sender: asyncio.Task[None] | None = None
    closing: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.queue_size)

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name=f"send-{self.member.member}")

    async def _send_loop(self) -> None:
        while True:
            text = await self.queue.get()
            try:
                await self.ws.send_str(text)
            except (ConnectionResetError, RuntimeError):
                return
            finally:
                self.queue.task_done()

    def send(self, frame: dict[str, Any]) -> None:
        self.send_text(encode(frame))

    def send_text(self, text: str) -> None:
        """Queue a frame; a full queue means the member is not reading: drop the connection."""
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.close(CLOSE_OVERFLOW, "send queue overflow; resume")

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued have been sent."""
        self.closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        if code != CLOSE_OVERFLOW:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), 5.0)
        await self.ws.close(code=code, message=reason.encode())

    def offer(self, channel: str, index: int, frame: dict[str, Any]) -> None:
        """A live entry of ``channel``: buffered while that channel is being replayed."""
        buffer = self.replaying.get(channel)
        if buffer is not None:
            buffer.append((index, encode(frame)))
        else:
            self.send(frame)

    async def stop(self) -> None:
        for task in (self._sender, self.closing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class Hub:
    def __init__(self) -> None:
        self.by_channel: dict[str, set[Connection]] = defaultdict(set)
        self.all: set[Connection] = set()

    def join(self, conn: Connection, channels: list[str]) -> None:
        self.all.add(conn)
        conn.channels.update(channels)
        for channel in channels:
            self.by_channel[channel].add(conn)

    def leave(self, conn: Connection) -> None:
        self.all.discard(conn)
        for channel in conn.channels:
            self.by_channel[channel].discard(conn)

    def publish(self, channel: str, index: int, frame: dict[str, Any], *,
                skip: Connection | None = None) -> None:
        for conn in list(self.by_channel.get(channel, ())):
            if conn is not skip:
                conn.offer(channel, index, frame)

    def notify(self, channel: str, frame: dict[str, Any]) -> None:
        """A live status frame (not a log entry) to every member connected to ``channel``."""
        for conn in list(self.by_channel.get(channel, ())):
            conn.send(frame)

    def broadcast(self, frame: dict[str, Any]) -> None:
        for conn in list(self.all):
            conn.send(frame)
