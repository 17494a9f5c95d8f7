"""Issue 11, "silencing the line" (defects 1-3), expired keys (defect 7) and acceptance 2: each
attack performed on a real server over real sockets, and what must hold, checked.

The attackers here are what the issue describes: a member that resumes and vanishes, a member
that stops reading, sockets that never authenticate (pinging, or sending their request a byte at
a time), a member flooding submissions, and a member whose key runs out while connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.entries import Entry, RejectedEntry, RejectionsEntry
from hotline.envelope import Envelope, Kind, Precedence
from hotline.errors import HotlineError
from hotline.keyfiles import load_private_key
from hotline.keys import SigningKey
from hotline.roster import Role, enrollment, revocation, sign_document
from hotline.server.appkeys import GATE
from hotline.server.hub import Hub
from hotline.times import format_time
from hotline.wire.frames import encode
from tests.conftest import Running, ServerProcess, hotline_cli, running_server, witness_all
from tests.integration.test_bad_input import Raw, recv
from tests.integration.test_exchange import post_roster
from tests.integration.test_templates_e2e import delivered_to

WAIT = 20  # seconds: a safety net against hangs, never a synchronisation
CHANNEL = "north-south"
NOTICE = {"category": "humanitarian_movement", "nature": "notification",
          "location": {"name": "Crossing point 4"}, "details": "Convoy of 12 trucks."}


# -- helpers -------------------------------------------------------------------------------------

async def until(condition: Callable[[], bool], changed: asyncio.Event | None = None) -> None:
    """Wait (at most WAIT seconds) until ``condition`` holds, woken by ``changed`` when given."""
    async with asyncio.timeout(WAIT):
        while not condition():
            if changed is None:
                await asyncio.sleep(0.05)
            else:
                changed.clear()
                await changed.wait()


async def login(url: str, key: SigningKey, origin: str = "hotline.test",
                **options: Any) -> Raw:
    """A hand-driven member connection, authenticated; ``options`` go to websockets' connect."""
    ws = await connect(url, proxy=None, compression=None, max_size=None, **options)
    raw = Raw(ws, key, origin)
    await raw.login()
    return raw


def key_of(home: Path, name: str) -> SigningKey:
    return Profile.load(home, name).signing_key()


async def heartbeats(agent: Client, count: int) -> None:
    """``count`` heartbeats of the agent on the channel, pipelined: a long channel, fast."""
    sent = format_time(datetime.now(UTC))
    envelopes = [agent.envelope(channel=CHANNEL, template="heartbeat", kind=Kind.HEARTBEAT,
                                precedence=Precedence.ROUTINE, body={"seq": n, "sent": sent})
                 for n in range(count)]
    await asyncio.gather(*(agent.submit_envelope(e) for e in envelopes))


def notices(client: Client, count: int, details: str = NOTICE["details"]) -> list[Envelope]:
    return [client.envelope(channel=CHANNEL, template="humanitarian-notice",
                            body={**NOTICE, "details": details}, precedence=Precedence.IMMEDIATE)
            for _ in range(count)]


def sessions_left(hub: Hub, name: str) -> int:
    return sum(conn.member.member == name for conn in hub.all)


def tasks_named(prefix: str) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(prefix) and not t.done()]


def http_url(server_url: str, path: str) -> str:
    return server_url.replace("ws://", "http://").replace("/v1/ws", path)


def host_port(server_url: str) -> tuple[str, int]:
    host, port = server_url.split("//")[1].split("/")[0].rsplit(":", 1)
    return host, int(port)


async def idle_socket(server_url: str, source: str = "127.0.0.1"
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = host_port(server_url)
    return await asyncio.open_connection(host, port, local_addr=(source, 0))


async def cut_off(reader: asyncio.StreamReader) -> bytes:
    """Read until the server ends the connection; returns what it sent."""
    data = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            data += chunk
    return data


# -- defect 1: phantom sessions ------------------------------------------------------------------

async def test_phantom_resumes_are_released_when_their_connection_dies(home: Path) -> None:
    """A member resumes a long channel from the start, never reads, and drops TCP; five times.
    Each session is gone (every task of it too) once its connection is, and a member can still
    connect and replay the whole channel."""
    async with running_server(home) as server:
        await heartbeats(await server.client("north-agent"), 300)
    async with running_server(home, HOTLINE_LIMITS_SEND_QUEUE="8") as server:
        await server.client("north-agent")
        hub = server.hotline.hub
        for _ in range(5):
            phantom = await login(server.url, key_of(home, "alice"))
            await phantom.send({"type": "resume", "channel": CHANNEL, "after": -1})
            phantom.ws.transport.abort()
        await until(lambda: sessions_left(hub, "alice") == 0, hub.changed)
        await until(lambda: not tasks_named("replay-alice"))
        await until(lambda: server.app[GATE].members == 1)  # the agent's only

        bob = await server.client("bob")
        last = await bob.resume(CHANNEL, -1)
        assert last == await server.hotline.store.size() - 1


async def test_the_servers_own_burst_at_connect_never_drops_a_member(home: Path) -> None:
    """What the server sends a member at once (its welcome, the roster, each channel's health)
    is paced by the member's reading, not taken for a member that does not read: with the byte
    bound below the roster frame's size and a frame bound of one, members still connect, stay
    and exchange. (Before, every such connection was dropped with 4008 at once: the agents of a
    1,000-channel deployment, whose roster frame is 5 MB, reconnected for ever.)"""
    async with running_server(home, HOTLINE_LIMITS_SEND_QUEUE_BYTES="16384",
                              HOTLINE_LIMITS_SEND_QUEUE="1") as server:
        assert len(encode(server.hotline.roster_frame())) > 16384
        alice, bob = await server.client("alice"), await server.client("bob")
        sent = (await asyncio.gather(*(alice.submit_envelope(e) for e in notices(alice, 3))))[-1]
        assert (await delivered_to(bob, sent.id)).index == sent.index
        assert sessions_left(server.hotline.hub, "alice") == sessions_left(server.hotline.hub, "bob") == 1


@pytest.mark.slow
async def test_a_member_that_stops_reading_is_dropped_within_the_send_timeout(home: Path) -> None:
    """A member connects, then reads nothing more while the channel carries megabytes (its
    socket buffers are small). Its session ends (every frame it owes waits at most
    send_timeout), instead of holding its queue and tasks for ever."""
    async with running_server(home, HOTLINE_LIMITS_SEND_TIMEOUT="1") as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(host_port(server.url))
        sock.setblocking(False)
        stalled = await login(server.url, key_of(home, "bob"), sock=sock, max_queue=1)
        hub = server.hotline.hub
        await until(lambda: sessions_left(hub, "bob") == 1, hub.changed)
        alice = await server.client("alice")
        for chunk in range(20):  # up to 10 MB of notices, bob reading none of them
            if not sessions_left(hub, "bob"):
                break
            await asyncio.gather(*(alice.submit_envelope(e)
                                   for e in notices(alice, 60, f"chunk {chunk} " + "x" * 7900)))
        await until(lambda: sessions_left(hub, "bob") == 0, hub.changed)
        await until(lambda: not tasks_named("send-bob"))
        stalled.ws.transport.abort()


# -- defect 2: pre-authentication connections ----------------------------------------------------

@pytest.mark.slow
async def test_pings_do_not_extend_the_handshake_deadline(home: Path) -> None:
    """A socket that pings every 100 ms and never authenticates is closed at the handshake
    deadline (1 s here) with auth.timeout and 4001."""
    async with running_server(home, HOTLINE_LIMITS_HANDSHAKE_TIMEOUT="1") as server:
        ws = await connect(server.url, proxy=None, compression=None)
        assert (await recv(ws))["type"] == "challenge"

        async def keep_pinging() -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await ws.ping()
                    await asyncio.sleep(0.1)

        pinger = asyncio.create_task(keep_pinging())
        try:
            async with asyncio.timeout(WAIT):
                error = await recv(ws)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
        finally:
            pinger.cancel()
        assert (error["type"], error["code"]) == ("error", "auth.timeout")
        assert ws.close_code == 4001


@pytest.mark.slow
async def test_a_request_sent_a_byte_at_a_time_is_cut_off(home: Path) -> None:
    """Slowloris: request headers (then a body) trickling in a byte every 100 ms. The server
    cuts the connection at the request timeout (1 s here) instead of holding it for minutes."""
    async with running_server(home, HOTLINE_LIMITS_REQUEST_TIMEOUT="1") as server:
        reader, writer = await idle_socket(server.url)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: hotline\r\n")

        async def trickle(data: bytes) -> None:
            with contextlib.suppress(ConnectionError):
                for byte in data:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.1)

        slow = asyncio.create_task(trickle(b"X-Slow: " + b"z" * 200))  # 20 s if never cut
        async with asyncio.timeout(WAIT):
            await cut_off(reader)
        assert not slow.done()  # cut long before the headers could end
        slow.cancel()
        writer.close()

        reader, writer = await idle_socket(server.url)
        writer.write(b"POST /v1/roster HTTP/1.1\r\nHost: hotline\r\nContent-Length: 200\r\n\r\n")
        slow = asyncio.create_task(trickle(b"{" * 200))
        async with asyncio.timeout(WAIT):
            answer = await cut_off(reader)
        assert answer.startswith(b"HTTP/1.1 408") and not slow.done()
        slow.cancel()
        writer.close()
        refused = server.app[GATE].refused
        assert refused["no complete request within the request timeout"] >= 1
        assert refused["request body not sent within the request timeout"] == 1


async def test_anonymous_sockets_never_lock_a_member_out(home: Path) -> None:
    """With room for 8 unauthenticated connections, 4 per address: sockets beyond a cap push
    out the oldest of their own address (or of the most crowded one), never a member; a member
    connecting from the crowded address still authenticates and sends."""
    async with running_server(home, HOTLINE_LIMITS_MAX_ANONYMOUS="8",
                              HOTLINE_LIMITS_MAX_ANONYMOUS_PER_ADDRESS="4",
                              HOTLINE_LIMITS_REQUEST_TIMEOUT="60") as server:
        gate = server.app[GATE]
        first = [await idle_socket(server.url) for _ in range(6)]
        await until(lambda: gate.anonymous_total == 4)
        async with asyncio.timeout(WAIT):  # the two oldest were pushed out
            assert [await cut_off(reader) for reader, _ in first[:2]] == [b"", b""]
        others = [await idle_socket(server.url, f"127.0.0.{n}") for n in (2, 2, 2, 2, 3)]
        await until(lambda: gate.anonymous("127.0.0.3") == 1)
        assert gate.anonymous_total == 8 and gate.anonymous("127.0.0.1") <= 4

        alice = await server.client("alice")  # from 127.0.0.1, whose pool is full
        accepted = await alice.send(channel=CHANNEL, template="message", body={"text": "through"})
        assert accepted.index > 0 and gate.members == 1
        assert gate.anonymous_total <= 8
        for _, writer in first + others:
            writer.close()


@pytest.mark.slow
async def test_a_flood_of_connections_costs_a_few_log_lines_and_the_fd_limit_is_reported(
        server_process: ServerProcess) -> None:
    """300 sockets from one address against a cap of 2: 298 evictions, logged as at most a
    burst of lines (the rest counted as suppressed); the server reports its descriptor limit."""
    url = server_process.start(HOTLINE_LIMITS_MAX_ANONYMOUS_PER_ADDRESS="2")
    sockets = [await idle_socket(url) for _ in range(300)]
    async with asyncio.timeout(WAIT):  # the first 298 are pushed out in turn
        for reader, _ in sockets[:298]:
            await cut_off(reader)
    for _, writer in sockets:
        writer.close()
    server_process.stop()
    lines = [json.loads(line) for line in server_process.log.read_text().splitlines()]
    evicted = [line for line in lines if line["event"] == "connection.evicted"]
    assert 1 <= len(evicted) <= 25
    (limits,) = [line for line in lines if line["event"] == "server.limits"]
    assert limits["fd_limit"] >= limits["max_connections"] + limits["max_anonymous"]
    assert limits["max_connections"] == 1000 and limits["max_anonymous"] == 256


# -- defect 3: fairness --------------------------------------------------------------------------

async def test_a_flooding_member_does_not_delay_another(home: Path) -> None:
    """Alice pipelines 400 humanitarian notices (no template rate limits them, and none does
    now); bob's message, sent once her flood is under way, takes its turn among hers instead
    of waiting behind all of them."""
    async with running_server(home, HOTLINE_LIMITS_MEMBER_QUEUE="8") as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        # sealed (its readers' keys proven in the log) before the flood: only its turn is timed
        template = bob.templates.resolve(bob.roster.agreements[CHANNEL], "message")
        message = await bob.sealed_envelope(channel=CHANNEL, template=template,
                                            body={"text": "and me?"}, log_key=bob.log_key)
        flood = [asyncio.ensure_future(alice.submit_envelope(e)) for e in notices(alice, 400)]
        await asyncio.wait(flood, return_when=asyncio.FIRST_COMPLETED)
        bobs = await bob.submit_envelope(message)
        indexes = [accepted.index for accepted in await asyncio.gather(*flood)]
        assert len(indexes) == 400  # every notice accepted: the template is never rate-limited
        assert bobs.index < max(indexes) - 200, (bobs.index, max(indexes))


@pytest.mark.slow
async def test_a_member_s_submissions_and_logged_refusals_are_bounded(home: Path) -> None:
    """Beyond a member's ceiling (a burst of 50 here) submissions are refused
    submit.rate_limited; only 5 refusals per window are logged one by one, the others are
    counted in one `rejections` summary entry, which the auditor verifies."""
    async with running_server(home, HOTLINE_LIMITS_MEMBER_RATE="0.5", HOTLINE_LIMITS_MEMBER_BURST="50",
                              HOTLINE_LIMITS_REJECTIONS_LOGGED="5",
                              HOTLINE_LIMITS_REJECTION_SUMMARY="1") as server:
        alice = await server.client("alice")
        results = await asyncio.gather(*(alice.submit_envelope(e) for e in notices(alice, 120)),
                                       return_exceptions=True)
        refused = [r for r in results if isinstance(r, HotlineError)]
        assert 60 <= len(refused) <= 70
        assert {r.code for r in refused} == {"submit.rate_limited"}
        store = server.hotline.store

        async def kinds() -> list[Entry]:
            return [s.entry for s in await store.entries(after=-1, limit=10_000)
                    if isinstance(s.entry, RejectedEntry | RejectionsEntry)]

        summaries: list[RejectionsEntry] = []
        async with asyncio.timeout(WAIT):
            while not summaries:
                logged = await kinds()
                summaries = [e for e in logged if isinstance(e, RejectionsEntry)]
                await asyncio.sleep(0.1)
        assert len([e for e in logged if isinstance(e, RejectedEntry)]) == 5
        (summary,) = summaries
        assert (summary.member, summary.count) == ("alice", len(refused) - 5)
        assert summary.codes == {"submit.rate_limited": len(refused) - 5}
        checkpointer = server.hotline.checkpointer
        assert checkpointer is not None
        size = await store.size()
        await until(lambda: checkpointer.latest is not None and checkpointer.latest.size == size)
        await witness_all(home, server.url)
        audit = await asyncio.to_thread(hotline_cli, home, "audit", "verify", "--as", "audrey",
                                        "--server", server.url, "--json")
        assert audit.returncode == 0, audit.stderr
        assert json.loads(audit.stdout)["rejections_summarized"] == len(refused) - 5


# -- defect 7: expired and revoked keys ----------------------------------------------------------

async def _enroll_dave(server: Running, *, not_after: datetime) -> SigningKey:
    """A north liaison whose key is valid until ``not_after``."""
    north = load_private_key(server.home / "keys" / "authority-north.pem")
    dave = SigningKey.generate()
    doc = enrollment(party="north", member="dave", role=Role.LIAISON, key=dave.public_key,
                     not_before=datetime.now(UTC) - timedelta(minutes=1), not_after=not_after)
    status, answer = await post_roster(server, sign_document(doc, north).to_json())
    assert status == 200, answer
    return dave


async def frames_until_closed(raw: Raw) -> list[dict[str, Any]]:
    frames = []
    async with asyncio.timeout(WAIT):
        with contextlib.suppress(ConnectionClosed):
            while True:
                frames.append(await recv(raw.ws))
    return frames


@pytest.mark.slow
async def test_a_session_ends_the_moment_its_key_expires(home: Path) -> None:
    async with running_server(home) as server:
        not_after = datetime.now(UTC) + timedelta(seconds=2)
        dave = await login(server.url, await _enroll_dave(server, not_after=not_after))
        await dave.send({"type": "resume", "channel": CHANNEL, "after": -1})
        frames = await frames_until_closed(dave)
        assert datetime.now(UTC) >= not_after
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "auth.expired"
        assert dave.ws.close_code == 4001


@pytest.mark.slow
async def test_a_revocation_that_takes_effect_later_ends_the_session_then(home: Path) -> None:
    async with running_server(home) as server:
        key = await _enroll_dave(server, not_after=datetime.now(UTC) + timedelta(days=1))
        dave = await login(server.url, key)
        effective = datetime.now(UTC) + timedelta(seconds=2)
        north = load_private_key(server.home / "keys" / "authority-north.pem")
        doc = revocation(party="north", member="dave", key_id=key.key_id, revoked_at=effective)
        status, answer = await post_roster(server, sign_document(doc, north).to_json())
        assert status == 200, answer
        frames = await frames_until_closed(dave)
        assert datetime.now(UTC) >= effective
        assert frames[-1]["code"] == "auth.revoked" and dave.ws.close_code == 4001


@pytest.mark.parametrize("use", ["resume", "fetch", "submit", "delivery"])
async def test_a_key_past_its_validity_is_refused_and_closed_at_every_use(home: Path, use: str) -> None:
    """The server's clock moves past dave's not_after while he is connected: whatever he does
    next is refused auth.expired and closes his session (4001), and a live entry is not
    delivered to him."""
    offset = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(UTC) + offset[0]

    async with running_server(home, clock=clock) as server:
        dave = await login(server.url, await _enroll_dave(
            server, not_after=datetime.now(UTC) + timedelta(hours=1)))
        alice = await server.client("alice")
        first = await alice.send(channel=CHANNEL, template="message", body={"text": "before"})
        offset[0] = timedelta(hours=2)
        if use == "resume":
            await dave.send({"type": "resume", "channel": CHANNEL, "after": -1})
        elif use == "fetch":
            await dave.send({"type": "fetch", "index": first.index})
        elif use == "submit":
            await dave.send(dave.submit(dave.envelope(sender="dave")))
        else:
            await alice.send(channel=CHANNEL, template="message", body={"text": "after"})
            await dave.send({"type": "ping", "data": "after alice's message"})
            while (frame := await recv(dave.ws))["type"] != "pong":
                assert frame["type"] != "deliver" or frame["index"] <= first.index, frame
            await dave.send({"type": "fetch", "index": first.index})
        frames = await frames_until_closed(dave)
        assert frames[-1]["code"] == "auth.expired" and dave.ws.close_code == 4001
        assert not [f for f in frames if f["type"] == "deliver" and f["index"] > first.index]


# -- acceptance 2 --------------------------------------------------------------------------------

@pytest.mark.slow
async def test_a_liaison_connects_and_sends_within_a_second_under_attack(
        server_process: ServerProcess) -> None:
    """With every limit at its default: 1,000 unauthenticated sockets open (100 of them
    WebSocket handshakes that only ping, the rest HTTP requests never finished, from 50 loopback
    addresses) and 10 phantom resumes of a long channel dropped; then a liaison connects and
    sends within 1 s."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    url = server_process.start()
    home = server_process.home
    agent = Client.for_profile(Profile.load(home, "north-agent"))
    await agent.connect(url)
    try:
        await heartbeats(agent, 1500)
    finally:
        await agent.close()
    for _ in range(10):
        phantom = await login(url, key_of(home, "alice"))
        await phantom.send({"type": "resume", "channel": CHANNEL, "after": -1})
        phantom.ws.transport.abort()

    pingers: list[ClientConnection] = []
    for n in range(100):
        ws = await connect(url, proxy=None, compression=None, local_addr=(f"127.0.0.{n % 50 + 1}", 0))
        pingers.append(ws)
    sockets = []
    for n in range(900):
        _, writer = await idle_socket(url, f"127.0.0.{n % 50 + 1}")
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: hotline\r\nX-Never: ends")
        sockets.append(writer)
    for ws in pingers:
        with contextlib.suppress(ConnectionClosed):
            await ws.ping()

    started = time.perf_counter()
    alice = Client.for_profile(Profile.load(home, "alice"))
    await alice.connect(url)
    try:
        accepted = await alice.send(channel=CHANNEL, template="message", body={"text": "line up"})
    finally:
        await alice.close()
    elapsed = time.perf_counter() - started
    assert accepted.index > 1500
    assert elapsed < 1.0, f"connect and send took {elapsed:.2f} s"

    for writer in sockets:
        writer.close()
    for ws in pingers:
        ws.transport.abort()
    async with aiohttp.ClientSession() as http, http.get(url.replace("ws://", "http://")
                                                        .replace("/v1/ws", "/healthz")) as response:
        assert response.status == 200

