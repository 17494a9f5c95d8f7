"""The aiohttp application: WebSocket sessions at ``/v1/ws``, roster submission, ``/healthz``.

Handlers stay thin: frames go through the sans-IO session, requests through ``Hotline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from msgspec import UNSET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hotline import crashpoints
from hotline.canonical import parse
from hotline.clock import utc_now
from hotline.config import Config, check_listen, is_loopback_host
from hotline.errorcodes import Code
from hotline.errors import AuthError, HotlineError, StoreError, WireError
from hotline.keys import b64url
from hotline.roster import Member
from hotline.server.appkeys import GATE, SERVER, SOCKETS
from hotline.server.compose import Server, build_server, check_home
from hotline.server.gate import (
    FD_RESERVE,
    Gate,
    GatedSite,
    Listener,
    gate_middleware,
    is_loopback,
    raise_fd_limit,
)
from hotline.server.hub import CLOSE_AUTH_FAILED, Connection, ConnectionGone
from hotline.server.logapi import add_log_routes, authenticate_request
from hotline.server.service import Hotline
from hotline.store import Store
from hotline.tlsfiles import RENEW_ADVICE, RENEW_BEFORE, server_context
from hotline.wire import frames
from hotline.wire.session import Authenticated, ServerSession

log = structlog.get_logger("hotline.server")


def create_app(server: Server, *, gate: Gate | None = None) -> web.Application:
    """The HTTP application serving ``server`` (built by ``hotline.server.compose.build_server``);
    its background tasks run while the app runs, and the store is closed when it stops."""
    if gate is None:
        gate = make_gate(server.config)
    app = web.Application(client_max_size=1024 * 1024, middlewares=[gate_middleware(gate)])
    app[SERVER] = server
    app[GATE] = gate
    app[SOCKETS] = weakref.WeakSet()
    app.router.add_get("/v1/ws", ws_handler)
    app.router.add_post("/v1/roster", roster_handler)
    app.router.add_get("/healthz", healthz_handler)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/v1/channels/{channel}/health", channel_health_handler)
    add_log_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        try:
            async with server.running():
                yield
        finally:
            gate.close()
            await server.close()
            log.info("server.stopped")

    async def close_sockets(app: web.Application) -> None:
        sockets = app[SOCKETS]
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(close_sockets)
    return app


def make_gate(config: Config) -> Gate:
    limits = config.limits
    return Gate(max_members=limits.max_connections, max_anonymous=limits.max_anonymous,
                max_per_address=limits.max_anonymous_per_address,
                request_timeout=limits.request_timeout)


class ListenError(HotlineError):
    """The server cannot listen on its address (``server.port_in_use``, ``server.cannot_listen``)."""

    code = Code.SERVER_CANNOT_LISTEN


def _cannot_listen(config: Config, exc: OSError) -> ListenError:
    host, port = config.server.host, config.server.port
    if exc.errno == errno.EADDRINUSE:
        return ListenError(f"port {port} on {host} is in use: another server (a `hotline serve` "
                           "already running?) listens there. Stop it, or serve on another port "
                           "(--port, or server.port in hotline.toml) and give members that URL "
                           "(--server, HOTLINE_SERVER)", code=Code.SERVER_PORT_IN_USE)
    return ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (server.host, "
                       "server.port in hotline.toml; --host, --port)")


def queue_frames(configured: int, channels: int) -> int:
    """A session's bound in frames: the configured one, but never less than what the server
    itself sends a member of ``channels`` channels at once (its welcome, the roster, each
    channel's health, then a frame per channel live): else a member of many channels would be
    dropped for the server's own burst, reconnect, and be dropped again. The byte bound
    (``send_queue_bytes``) still bounds its memory."""
    return max(configured, 2 * channels + 64)


async def healthz_handler(request: web.Request) -> web.Response:
    """Liveness and storage health: 503 ``failing`` once a read or write found the database
    damaged or the disk failing, or a session with its PostgreSQL database ended (the first
    such problem is named). ``store``: the engine, and whether this server leads the log (signs
    checkpoints, sweeps deadlines, judges health: one server at a time; the others follow)."""
    server = request.app[SERVER]
    store = server.store
    body = {"status": "ok", "storage": "ok", "log_size": await store.size(),
            "connections": len(server.hub.all),
            "store": {"engine": store.engine, "leader": store.leading.is_set()}}
    if store.problem is not None:
        return web.json_response({**body, "status": "failing", "storage": store.problem}, status=503)
    return web.json_response(body)


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus text format, from this app's own registry. Channel names and states are not
    for everyone: by default only loopback peers may read them (``server.metrics``)."""
    server = request.app[SERVER]
    access = server.config.server.metrics
    if access == "loopback" and not is_loopback(request.remote):
        return web.json_response({"code": Code.HTTP_FORBIDDEN, "message": "/metrics is served to "
                                  "loopback peers only (server.metrics = \"loopback\")"}, status=403)
    if access == "signed":
        try:
            authenticate_request(request, server)
        except HotlineError as exc:
            return web.json_response({"code": exc.code, "message": exc.message}, status=401)
    server.metrics.connected.set(len(server.hub.all))
    server.metrics.log_size.set(await server.store.size())
    server.metrics.leader.labels(server.store.engine).set(1 if server.store.leading.is_set() else 0)
    # off the event loop: with a thousand channels rendering takes most of a second
    body = await asyncio.to_thread(generate_latest, server.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def channel_health_handler(request: web.Request) -> web.Response:
    """A channel's live health, for its members and auditors (signed request, like the log's
    ``/v1/log/entries``)."""
    server = request.app[SERVER]
    try:
        member = authenticate_request(request, server)
    except HotlineError as exc:
        return web.json_response({"code": exc.code, "message": exc.message}, status=401)
    channel = request.match_info["channel"]
    try:
        server.roster.check_channel(member, channel)
    except HotlineError as exc:
        return web.json_response({"code": exc.code, "message": exc.message}, status=403)
    return web.Response(text=frames.encode(server.monitor.frame(channel)),
                        content_type="application/json")


async def roster_handler(request: web.Request) -> web.Response:
    """Submit a signed enrollment, revocation or agreement. Open to anyone: the authorities'
    signatures, not the caller, decide whether it counts."""
    hotline = request.app[SERVER].service
    try:
        signed = parse(await request.read(), max_bytes=1024 * 1024)
        appended = await hotline.add_document(signed)
    except HotlineError as exc:
        return web.json_response({"code": exc.code, "message": exc.message}, status=400)
    return web.json_response({"index": appended.stored.index, "duplicate": appended.duplicate})


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    server, gate = request.app[SERVER], request.app[GATE]
    config, hotline = server.config, server.service
    limits = config.limits
    # aiohttp's own limit only stops abuse; frames over max_frame_bytes get a typed error instead.
    ws = web.WebSocketResponse(max_msg_size=max(4 * limits.max_frame_bytes, 1024 * 1024),
                               compress=False, heartbeat=30.0)
    peer = request.remote
    try:
        # One absolute deadline for the whole handshake: pings and partial frames extend nothing.
        async with asyncio.timeout(limits.handshake_timeout):
            await ws.prepare(request)
            request.app[SOCKETS].add(ws)
            shaken = await _handshake(ws, config, hotline)
    except TimeoutError:
        await _refuse_auth(ws, AuthError("no auth frame within the handshake timeout",
                                         code=Code.AUTH_TIMEOUT), peer)
        return ws
    except AuthError as exc:
        await _refuse_auth(ws, exc, peer)
        return ws
    if shaken is None:  # the peer left during the handshake
        return ws
    session, member = shaken
    if not gate.promote(request.transport):
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many connections")
        return ws

    channels = hotline.roster.channels_of(member)
    conn = Connection(ws, member, queue_frames(limits.send_queue, len(channels)),
                      queue_bytes=limits.send_queue_bytes, send_timeout=limits.send_timeout,
                      transport=request.transport)
    conn.start()
    structlog.contextvars.bind_contextvars(member=member.member, party=member.party)
    try:
        # What the server sends at once is this session's own output, queued as a replay's is
        # (``put``: the member's reading paces it, and one frame, however large, fits an empty
        # queue): a roster larger than the byte bound must not drop every connection.
        await conn.put(frames.encode(session.welcome(
            member=member.member, party=member.party, role=member.role.value, channels=channels,
            log_size=await hotline.store.size())))
        await conn.put(frames.encode(hotline.roster_frame()))
        if hotline.watch_validity(conn):
            hotline.hub.join(conn, channels)
        for channel in channels:  # the state of each line at a glance, from the first moment
            if channel in server.monitor.channels:
                await conn.put(frames.encode(server.monitor.frame(channel)))
        log.info("session.welcome", peer=peer, role=member.role.value, channels=channels)
        # This loop only reads: every request that waits (a submission's turn, a replay) waits
        # in the session's own tasks or races the connection's death, so a dead connection is
        # always seen here and cleaned up.
        async for msg in ws:
            if conn.closing is not None:
                break
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            try:
                event = session.receive(msg.data, now=hotline.clock())
                if isinstance(event, frames.Submit):
                    await hotline.queue_submit(conn, event)
                elif isinstance(event, frames.Resume):
                    await hotline.resume(conn, event.channel, event.after, req=event.req)
                elif isinstance(event, frames.Fetch):
                    conn.send_text(await hotline.fetch(conn, event.index, req=event.req))
                elif isinstance(event, frames.Ping):
                    conn.send(frames.Pong(data=event.data or UNSET, req=event.req))
                elif isinstance(event, frames.Upload | frames.UploadStatus):
                    conn.send(await hotline.upload(conn, event))
                elif isinstance(event, frames.Download):
                    conn.send(await hotline.download(conn, event))
            except AuthError:
                break  # the key stopped being valid: check_key sent the error and closes (4001)
            except HotlineError as exc:
                if not isinstance(exc, WireError):
                    log.info("session.refused", code=exc.code, reason=exc.message, ref=exc.ref)
                conn.send(frames.error(exc, req=session.req))
    except ConnectionGone:
        pass  # the member left, or stopped reading, during the connect burst
    finally:
        hotline.hub.leave(conn)
        if conn.closing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(conn.closing)
        await conn.stop()
        log.info("session.closed", close_code=ws.close_code)
        structlog.contextvars.unbind_contextvars("member", "party")
    return ws


async def _handshake(ws: web.WebSocketResponse, config: Config,
                     hotline: Hotline) -> tuple[ServerSession, Member] | None:
    """Challenge, then the first data frame must be a valid ``auth`` of an enrolled key (None:
    the peer left first)."""
    limits = config.limits
    session = ServerSession(origin=config.server.origin, nonce=b64url(os.urandom(32)),
                            now=hotline.clock(), clock_skew=timedelta(seconds=limits.clock_skew),
                            max_frame_bytes=limits.max_frame_bytes)
    await ws.send_str(frames.encode(session.challenge()))
    msg = await ws.receive()
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None
    event = session.receive(msg.data, now=hotline.clock())
    assert isinstance(event, Authenticated)
    return session, hotline.authenticate(event.key)


async def _refuse_auth(ws: web.WebSocketResponse, exc: AuthError, peer: str | None) -> None:
    """Tell the peer why (when the socket is still open) and close with 4001, within bounds."""
    log.warning("session.auth_failed", peer=peer, code=exc.code, reason=exc.message)
    if not ws.prepared or ws.closed:
        return
    with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
        async with asyncio.timeout(5.0):
            await ws.send_str(frames.encode(frames.error(exc)))
            await ws.close(code=CLOSE_AUTH_FAILED, message=exc.code.encode())


async def start(config: Config, *, clock: Callable[[], datetime] = utc_now,
                store: Store | None = None) -> tuple[web.AppRunner, str]:
    """Start serving; returns the runner (``await runner.cleanup()`` stops it) and the WebSocket
    URL actually bound (port 0 in the config picks a free port). ``clock`` and ``store`` go to
    ``hotline.server.compose.build_server``.

    Raises:
        InsecureListen: the host is off loopback, without TLS and not ``server.insecure``.
        TlsError: the TLS certificate or key cannot serve (unreadable, mismatched, expired).
        ConfigError: no log key or no templates folder (checked before anything is created).
        ListenError: the address cannot be bound (``server.port_in_use``), checked before the
            database is opened.
    """
    if crashpoints.PROBLEM is not None:  # HOTLINE_CRASHPOINTS is set but malformed
        raise crashpoints.PROBLEM
    check_listen(config.server)
    check_home(config)
    ssl_context = None
    if config.tls_cert is not None and config.tls_key is not None:
        ssl_context, until = server_context(config.tls_cert, config.tls_key, now=clock())
        if until - clock() < RENEW_BEFORE:
            log.warning("server.tls_cert_expiring", cert=str(config.tls_cert), until=until.isoformat(),
                        fix=RENEW_ADVICE)
    elif not is_loopback_host(config.server.host):
        log.warning("server.insecure_listen", host=config.server.host,
                    risk="no TLS off loopback: frames and authentication cross the network in the "
                         "clear, and anyone on the path can pass for this server",
                    fix="hotline init --tls, or set server.tls_cert and server.tls_key")
    gate = make_gate(config)
    _fit_fd_limit(gate)
    limits = config.limits
    listener = Listener(gate)  # the port first: a busy one fails before the database opens
    try:
        await listener.bind(config.server.host, config.server.port, ssl_context=ssl_context,
                            ssl_handshake_timeout=limits.request_timeout)
    except OSError as exc:
        raise _cannot_listen(config, exc) from exc
    try:
        server = await build_server(config, store=store, clock=clock)
    except BaseException:
        listener.close()
        raise
    # aiohttp closes an idle keep-alive connection after the request timeout (the gate cuts one
    # that sends a request too slowly).
    runner = web.AppRunner(create_app(server, gate=gate), handle_signals=False,
                           shutdown_timeout=5.0, access_log=None,
                           keepalive_timeout=limits.request_timeout)
    try:
        await runner.setup()  # starts the background tasks (``create_app``'s lifecycle)
    except BaseException:
        listener.close()
        await server.close()
        raise
    site = GatedSite(runner, config.server.host, config.server.port, listener=listener,
                     ssl_context=ssl_context)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"{'wss' if ssl_context else 'ws'}://{host}:{port}/v1/ws"
    return runner, url


def _fit_fd_limit(gate: Gate) -> None:
    """Every connection the gate may admit needs a file descriptor: raise the process's limit
    to fit them, or shrink the anonymous cap (members keep theirs) to fit the limit."""
    wanted = gate.max_members + gate.max_anonymous + FD_RESERVE
    limit = raise_fd_limit(wanted)
    if limit < wanted:
        gate.max_anonymous = max(8, limit - gate.max_members - FD_RESERVE)
        gate.max_members = min(gate.max_members, max(8, limit - gate.max_anonymous - FD_RESERVE))
        log.warning("server.fd_limit_low", fd_limit=limit, wanted=wanted,
                    max_connections=gate.max_members, max_anonymous=gate.max_anonymous,
                    fix="raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower the limits")
    log.info("server.limits", fd_limit=limit, max_connections=gate.max_members,
             max_anonymous=gate.max_anonymous, max_anonymous_per_address=gate.max_per_address)


RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0)  # seconds between tries to start again; the last repeats


async def serve_forever(config: Config) -> None:
    """``hotline serve``: run until SIGINT or SIGTERM, then close sessions and the store.

    A server whose PostgreSQL session ends (the database failed over or restarted, the network
    cut) closes its members' sessions, which fail over to the other servers, and starts again by
    itself: it reconnects (a URL naming every database host with
    ``target_session_attrs=read-write`` reaches the new primary), checks the log against the
    checkpoints it published as any start does, and follows or leads. It retries while the
    database cannot be opened (``store.open_failed``), until stopped.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner, url = await start(config)
    while True:
        log.info("server.listening", url=url, tls=url.startswith("wss"))
        print(f"hotline server listening on {url}", flush=True)
        store = runner.app[SERVER].store
        await _first(stop.wait(), store.session_lost.wait())
        log.info("server.stopping")
        await runner.cleanup()
        if stop.is_set():
            return
        # another server may lead now, and this one may have missed commits: start again
        log.warning("server.restarting", code=Code.STORE_SESSION_LOST, reason=store.problem)
        started = await _start_again(config, stop)
        if started is None:
            return
        runner, url = started


async def _start_again(config: Config, stop: asyncio.Event) -> tuple[web.AppRunner, str] | None:
    """``start`` once the database answers (None: stopped first)."""
    attempt = 0
    while not stop.is_set():
        try:
            return await start(config)
        except StoreError as exc:
            if exc.code != Code.STORE_OPEN_FAILED:
                raise
            delay = RESTART_DELAYS[min(attempt, len(RESTART_DELAYS) - 1)]
            attempt += 1
            log.warning("server.restart_failed", reason=exc.message, retry_in=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return None


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Return when the first of ``waits`` is done (the others are cancelled)."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
