"""hotline.server.hub: bounded send queues, the replay rule (no live entry buffered, none sent
twice), key validity at every delivery, and a session that never outlives its connection.

Connections not started have no sender task, so what they were given stays in their queue to be
read here; the last tests run real WebSocket connections over loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from hotline.roster import Member, Role
from hotline.server.hub import (
    CLOSE_AUTH_FAILED,
    CLOSE_OVERFLOW,
    Connection,
    ConnectionGone,
    Hub,
    SendQueue,
)
from hotline.wire import frames
from hotline.wire.frames import deliver_text

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def member(name: str) -> Member:
    return Member(party="north", member=name, role=Role.LIAISON, key_id=f"key-{name}")


def unconnected(name: str = "alice", *, frames: int = 8, size: int = 1 << 20) -> Connection:
    """A connection whose frames stay queued (its sender is not started)."""
    return Connection(ws=web.WebSocketResponse(), member=member(name), queue_size=frames,
                      queue_bytes=size)


def leaf(index: int) -> bytes:
    """A stand-in leaf: the hub splices leaf bytes into ``deliver`` frames unread."""
    return b'{"index":%d}' % index


def deliver(index: int) -> str:
    return deliver_text(index, leaf(index))


def status(index: int) -> frames.Resumed:
    """A live frame that is not a log entry (what ``notify`` and ``broadcast`` send)."""
    return frames.Resumed(channel="north-south", index=index)


async def queued(conn: Connection) -> list[int]:
    """The indexes of the frames waiting in ``conn``'s queue (which this empties)."""
    out = []
    while len(conn.queue):
        out.append(json.loads(await conn.queue.pop())["index"])
        conn.queue.sent()
    return out


async def test_a_queue_is_bounded_in_frames_and_bytes_yet_takes_one_large_frame_when_empty() -> None:
    queue = SendQueue(frames=3, size=10)
    assert not queue.full("x" * 100)  # an empty queue takes any one frame
    queue.push("x" * 100)
    assert queue.full("y") and queue.drained.is_set() is False
    assert await queue.pop() == "x" * 100
    queue.sent()
    assert queue.drained.is_set()
    for text in ("aa", "bb", "cc"):
        assert not queue.full(text)
        queue.push(text)
    assert queue.full("d")  # three frames
    await queue.pop()
    assert not queue.full("dddd") and queue.full("d" * 7)  # 4 bytes queued, at most 10


async def test_a_live_frame_to_a_member_that_does_not_read_ends_its_session() -> None:
    conn = unconnected(frames=2)
    conn.send_text("1")
    conn.send_text("2")
    assert conn.closing is None
    conn.send_text("3")  # the queue is full: not waited for, the member resumes later
    assert conn.closing is not None
    await conn.closing
    assert conn.dead.is_set() and len(conn.queue) == 2
    conn.send_text("4")  # nothing is queued on a dead connection
    assert len(conn.queue) == 2
    await conn.stop()


async def test_put_waits_for_room_and_gives_up_when_the_connection_dies() -> None:
    conn = unconnected(frames=1)
    await conn.put("a")
    waiting = asyncio.create_task(conn.put("b"))
    await asyncio.sleep(0)
    assert not waiting.done()
    await conn.queue.pop()  # the member read one: room for the next
    await waiting
    assert len(conn.queue) == 1
    stuck = asyncio.create_task(conn.put("c"))
    await asyncio.sleep(0)
    conn.dead.set()
    with pytest.raises(ConnectionGone):
        await stuck
    with pytest.raises(ConnectionGone):
        await conn.put("d")


async def test_paced_frames_fill_half_the_queue_so_live_frames_always_find_room() -> None:
    """A replay, the connect burst or receipts (``put``) wait at half of either bound; the live
    frames sent meanwhile (never waited for) take the other half instead of dropping the member
    (a thousand receipts once overflowed a reading member's queue: 4008)."""
    conn = unconnected(frames=8, size=1000)
    for n in range(4):
        await conn.put(f"paced {n}")
    waiting = asyncio.create_task(conn.put("paced 4"))
    await asyncio.sleep(0)
    assert not waiting.done()
    for n in range(4):
        conn.send_text(f"live {n}")
    assert conn.closing is None and len(conn.queue) == 8
    while len(conn.queue) > 3:
        await conn.queue.pop()
    await waiting
    big = unconnected(frames=8, size=1000)
    await big.put("x" * 400)
    assert not big.queue.spare("y" * 200)  # 600 of 1,000 bytes: over the paced half
    big.send_text("z" * 500)  # a live frame still fits
    assert big.closing is None
    await conn.stop()
    await big.stop()


async def test_live_entries_of_a_channel_being_replayed_are_only_noted() -> None:
    """Rule 2: while ``north-south`` is replayed, its live entries are noted, not queued; once
    live, an entry the replay already sent is not sent again."""
    conn = unconnected()
    conn.replaying["north-south"] = -1
    conn.offer("north-south", 5, deliver(5))
    conn.offer("north-south", 4, deliver(4))
    conn.offer("other", 6, deliver(6))  # another channel is live
    assert conn.replaying["north-south"] == 5 and await queued(conn) == [6]
    del conn.replaying["north-south"]
    conn.live_after["north-south"] = 5  # the replay read on from the store up to 5
    for index in (5, 6, 7):
        conn.offer("north-south", index, deliver(index))
    assert await queued(conn) == [6, 7]


async def test_publish_reaches_the_channels_members_whose_keys_are_valid_but_not_the_sender() -> None:
    now = [T0]
    hub = Hub(clock=lambda: now[0])
    alice, bob, carol, dave = (unconnected(n) for n in ("alice", "bob", "carol", "dave"))
    hub.join(alice, ["north-south"])
    hub.join(bob, ["north-south", "east-west"])
    hub.join(carol, ["east-west"])
    hub.join(dave, ["north-south"])
    dave.valid_until = T0 + timedelta(seconds=1)  # Rule 3: checked at every delivery
    hub.publish("north-south", 1, leaf(1), skip=alice)
    now[0] = T0 + timedelta(seconds=1)
    hub.publish("north-south", 2, leaf(2), skip=alice)
    assert (await queued(alice), await queued(bob), await queued(carol), await queued(dave)) == \
        ([], [1, 2], [], [1])
    hub.notify("east-west", status(3))
    hub.broadcast(status(4))
    assert (await queued(alice), await queued(bob), await queued(carol), await queued(dave)) == \
        ([4], [3, 4], [3, 4], [])
    hub.leave(bob)
    assert bob not in hub.all and all(bob not in members for members in hub.by_channel.values())
    assert hub.changed.is_set()


async def test_stop_ends_every_task_of_the_session() -> None:
    conn = unconnected()
    forever = conn.spawn(asyncio.Event().wait(), name="replay")
    fired: list[bool] = []
    conn.expire_at(3600, lambda: fired.append(True))
    await conn.stop()
    assert forever.cancelled() and conn.dead.is_set() and not conn.tasks and not fired


@pytest.fixture
async def served() -> AsyncIterator[tuple[Callable[[], asyncio.Future[Connection]], str]]:
    """A loopback WebSocket endpoint whose handler wraps each connection in a started
    ``Connection`` and hands it to the test; the handler ends when the test stops it."""
    offered: asyncio.Queue[tuple[Connection, asyncio.Event]] = asyncio.Queue()
    handlers: list[asyncio.Event] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Connection(ws=ws, member=member("bob"), queue_size=16, transport=request.transport)
        conn.start()
        done = asyncio.Event()
        handlers.append(done)
        await offered.put((conn, done))
        await done.wait()
        await conn.stop()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]

    def next_connection() -> asyncio.Future[Connection]:
        async def get() -> Connection:
            return (await offered.get())[0]
        return asyncio.ensure_future(get())

    try:
        yield next_connection, f"http://{host}:{port}/ws"
    finally:
        for done in handlers:
            done.set()
        await runner.cleanup()


async def test_frames_reach_the_member_in_order_then_the_close_after_them(
        served: tuple[Callable[[], asyncio.Future[Connection]], str]) -> None:
    """A close (here: the key no longer valid) waits for the frames already queued."""
    next_connection, url = served
    pending = next_connection()
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        conn = await pending
        for index in range(5):
            conn.send_text(deliver(index))
        conn.close(CLOSE_AUTH_FAILED, "key revoked")
        got = [json.loads((await ws.receive()).data)["index"] for _ in range(5)]
        closing = await ws.receive()
        assert got == [0, 1, 2, 3, 4]
        assert closing.type is aiohttp.WSMsgType.CLOSE and ws.close_code == CLOSE_AUTH_FAILED
        assert conn.dead.is_set()


async def test_an_overflow_closes_at_once_with_4008(
        served: tuple[Callable[[], asyncio.Future[Connection]], str]) -> None:
    next_connection, url = served
    pending = next_connection()
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        conn = await pending
        conn.close(CLOSE_OVERFLOW, "send queue overflow; resume")
        message = await ws.receive()
        while message.type is aiohttp.WSMsgType.TEXT:  # whatever was already on its way
            message = await ws.receive()
        assert message.type is aiohttp.WSMsgType.CLOSE and ws.close_code == CLOSE_OVERFLOW
