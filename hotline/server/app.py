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
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hotline import crashpoints
from hotline.canonical import parse
from hotline.config import Config, check_listen, is_loopback_host
from hotline.errors import AuthError, ConfigError, HotlineError, WireError
from hotline.keyfiles import load_private_key
from hotline.keys import PublicKey, SigningKey, b64url
from hotline.roster import Member
from hotline.server.checkpoints import Checkpointer
from hotline.server.gate import (
    FD_RESERVE,
    Gate,
    GatedSite,
    Listener,
    gate_middleware,
    is_loopback,
    raise_fd_limit,
)
from hotline.server.hub import CLOSE_AUTH_FAILED, Connection
from hotline.server.logapi import add_log_routes, authenticate_request
from hotline.server.monitor import HealthMonitor
from hotline.server.service import Hotline
from hotline.session import Authenticated, Fetch, Ping, Resume, ServerSession, Submit, encode
from hotline.store import Store, row_mac_key
from hotline.store.checkpointfile import checkpoint_path
from hotline.store.restores import read_restores, restores_path
from hotline.tlsfiles import RENEW_ADVICE, RENEW_BEFORE, server_context

log = structlog.get_logger("hotline.server")

HOTLINE = web.AppKey("hotline", Hotline)
CONFIG = web.AppKey("config", Config)
SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets")
GATE = web.AppKey("gate", Gate)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _passphrase() -> bytes | None:
    value = os.environ.get("HOTLINE_LOG_KEY_PASSPHRASE") or os.environ.get("HOTLINE_PASSPHRASE")
    return value.encode() if value else None


def create_app(config: Config, *, clock: Callable[[], datetime] = utc_now) -> web.Application:
    limits = config.limits
    gate = Gate(max_members=limits.max_connections, max_anonymous=limits.max_anonymous,
                max_per_address=limits.max_anonymous_per_address,
                request_timeout=limits.request_timeout)
    app = web.Application(client_max_size=1024 * 1024, middlewares=[gate_middleware(gate)])
    app[CONFIG] = config
    app[GATE] = gate
    app[SOCKETS] = weakref.WeakSet()
    app.router.add_get("/v1/ws", ws_handler)
    app.router.add_post("/v1/roster", roster_handler)
    app.router.add_get("/healthz", healthz_handler)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/v1/channels/{channel}/health", channel_health_handler)
    add_log_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # The log key first: the store authenticates every row it writes with a key derived
        # from it, and start-up checks the rows beyond the last checkpoint with that key.
        key = _load_log_key(config)
        store = await Store.open(config.db_path, batch=config.limits.commit_batch,
                                 mac_key=row_mac_key(key))
        try:
            hotline = await _start_service(config, store, key, clock)
        except BaseException:
            await store.close()
            raise
        assert hotline.checkpointer is not None
        checkpoints = asyncio.create_task(hotline.checkpointer.run(), name="checkpointer")
        deadlines = asyncio.create_task(hotline.run_deadlines(config.protocols.deadline_sweep),
                                        name="deadlines")
        assert hotline.monitor is not None
        health = asyncio.create_task(hotline.monitor.run(config.health.sweep), name="health")
        turns = asyncio.create_task(hotline.run_turns(), name="submission-turns")
        stalled = asyncio.create_task(hotline.hub.watch_stalled(), name="stalled-sessions")
        app[HOTLINE] = hotline
        log.info("server.ready", db=str(config.db_path), log_size=await store.size(),
                 members=len(hotline.roster.enrollments), channels=sorted(hotline.roster.agreements))
        yield
        for task in (turns, stalled):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await hotline.drain()
        for task in (checkpoints, deadlines, health):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await hotline.checkpointer.stop()
        await store.close()
        log.info("server.stopped")

    async def close_sockets(app: web.Application) -> None:
        sockets = app[SOCKETS]
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(close_sockets)
    return app


def _load_log_key(config: Config) -> SigningKey:
    _check_home(config)
    return load_private_key(config.log_key_path, _passphrase())


def _check_home(config: Config) -> None:
    """What the server needs from its home before it creates anything there (the database):
    the log key and the protocol templates folder."""
    if not config.log_key_path.is_file():
        raise ConfigError(f"no log key at {config.log_key_path}; `hotline init` makes one",
                          path=("tlog", "key"))
    if not config.protocols_dir.is_dir():
        raise ConfigError("the protocol templates folder does not exist; `hotline init` makes it",
                          file=str(config.protocols_dir))


class ListenError(HotlineError):
    """The server cannot listen on its address (``server.port_in_use``, ``server.cannot_listen``)."""

    code = "server.cannot_listen"


def _cannot_listen(config: Config, exc: OSError) -> ListenError:
    host, port = config.server.host, config.server.port
    if exc.errno == errno.EADDRINUSE:
        return ListenError(f"port {port} on {host} is in use: another server (a `hotline serve` "
                           "already running?) listens there. Stop it, or serve on another port "
                           "(--port, or server.port in hotline.toml) and give members that URL "
                           "(--server, HOTLINE_SERVER)", code="server.port_in_use")
    return ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (server.host, "
                       "server.port in hotline.toml; --host, --port)")


async def _start_service(config: Config, store: Store, key: SigningKey,
                         clock: Callable[[], datetime]) -> Hotline:
    """The service on an open store, in this order: the checkpointer checks the database against
    every checkpoint the log published (refusing to start on a loss, a change, or rows the server
    did not write); only then is anything read from the log (the roster, the templates its
    agreements pin, obligations) or appended to it (the roster folder); then the tree head is
    signed and health restored."""
    authorities = {party: PublicKey.from_text(text) for party, text in config.roster.authorities.items()}
    limits = config.limits
    hotline = Hotline(store=store, authorities=authorities, templates_dir=config.protocols_dir,
                      clock=clock, clock_skew=timedelta(seconds=limits.clock_skew), limits=limits)
    hotline.checkpointer = Checkpointer(
        store=store, hub=hotline.hub, roster=hotline.roster, key=key, origin=config.server.origin,
        delay=config.tlog.checkpoint_delay, clock=clock,
        checkpoint_file=checkpoint_path(config.db_path))
    await hotline.checkpointer.load()
    _log_restores(config)
    await hotline.load()
    added = await hotline.import_dir(config.roster_dir)
    if added:
        log.info("roster.imported", documents=added, folder=str(config.roster_dir))
    await hotline.checkpointer.sign()
    hotline.monitor = HealthMonitor(hotline=hotline, metrics=hotline.metrics,
                                    missed=config.health.missed, clock=clock)
    await hotline.monitor.load()
    return hotline


def _log_restores(config: Config) -> None:
    """A forced restore lost entries the log had published: said at every start, never silent
    (``hotline.store.restores``)."""
    try:
        records = read_restores(restores_path(config.db_path))
    except HotlineError as exc:
        log.warning("store.restores_unreadable", reason=exc.message)
        return
    for record in records:
        lost = record.get("lost")
        if isinstance(lost, dict):
            covered = lost.get("checkpoint")
            log.warning("store.restored_with_loss", restored=record.get("restored"),
                        first=lost.get("first"), last=lost.get("last"), count=lost.get("count"),
                        checkpoint=covered.get("size") if isinstance(covered, dict) else None)


async def healthz_handler(request: web.Request) -> web.Response:
    """Liveness and storage health: 503 ``failing`` once a read or write found the database
    damaged or the disk failing (the first such problem is named)."""
    hotline = request.app[HOTLINE]
    store = hotline.store
    body = {"status": "ok", "storage": "ok", "log_size": await store.size(),
            "connections": len(hotline.hub.all)}
    if store.problem is not None:
        return web.json_response({**body, "status": "failing", "storage": store.problem}, status=503)
    return web.json_response(body)


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus text format, from this app's own registry. Channel names and states are not
    for everyone: by default only loopback peers may read them (``server.metrics``)."""
    hotline, access = request.app[HOTLINE], request.app[CONFIG].server.metrics
    if access == "loopback" and not is_loopback(request.remote):
        return web.json_response({"code": "http.forbidden", "message": "/metrics is served to "
                                  "loopback peers only (server.metrics = \"loopback\")"}, status=403)
    if access == "signed":
        try:
            authenticate_request(request, hotline, request.app[CONFIG].server.origin)
        except HotlineError as exc:
            return web.json_response({"code": exc.code, "message": exc.message}, status=401)
    hotline.metrics.connected.set(len(hotline.hub.all))
    hotline.metrics.log_size.set(await hotline.store.size())
    # off the event loop: with a thousand channels rendering takes most of a second
    body = await asyncio.to_thread(generate_latest, hotline.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def channel_health_handler(request: web.Request) -> web.Response:
    """A channel's live health, for its members and auditors (signed request, like the log's
    ``/v1/log/entries``)."""
    hotline = request.app[HOTLINE]
    try:
        member = authenticate_request(request, hotline, request.app[CONFIG].server.origin)
    except HotlineError as exc:
        return web.json_response({"code": exc.code, "message": exc.message}, status=401)
    channel = request.match_info["channel"]
    try:
        hotline.roster.check_channel(member, channel)
    except HotlineError as exc:
        return web.json_response({"code": exc.code, "message": exc.message}, status=403)
    assert hotline.monitor is not None
    return web.json_response(hotline.monitor.frame(channel))


async def roster_handler(request: web.Request) -> web.Response:
    """Submit a signed enrollment, revocation or agreement. Open to anyone: the authorities'
    signatures, not the caller, decide whether it counts."""
    hotline = request.app[HOTLINE]
    try:
        signed = parse(await request.read(), max_bytes=1024 * 1024)
        appended = await hotline.add_document(signed)
    except HotlineError as exc:
        return web.json_response({"code": exc.code, "message": exc.message}, status=400)
    return web.json_response({"index": appended.stored.index, "duplicate": appended.duplicate})


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    config, hotline, gate = request.app[CONFIG], request.app[HOTLINE], request.app[GATE]
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
                                         code="auth.timeout"), peer)
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

    conn = Connection(ws, member, limits.send_queue, queue_bytes=limits.send_queue_bytes,
                      send_timeout=limits.send_timeout, transport=request.transport)
    conn.start()
    channels = hotline.roster.channels_of(member)
    conn.send(session.welcome(member=member.member, party=member.party, role=member.role.value,
                              channels=channels, log_size=await hotline.store.size()))
    conn.send({"type": "roster", "documents": hotline.documents})
    if hotline.watch_validity(conn):
        hotline.hub.join(conn, channels)
    if hotline.monitor is not None:  # the state of each line at a glance, from the first moment
        for channel in channels:
            if channel in hotline.monitor.channels:
                conn.send(hotline.monitor.frame(channel))
    structlog.contextvars.bind_contextvars(member=member.member, party=member.party)
    log.info("session.welcome", peer=peer, role=member.role.value, channels=channels)
    try:
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
                if isinstance(event, Submit):
                    await hotline.queue_submit(conn, event)
                elif isinstance(event, Resume):
                    await hotline.resume(conn, event.channel, event.after)
                elif isinstance(event, Fetch):
                    conn.send(await hotline.fetch(conn, event.index))
                elif isinstance(event, Ping):
                    conn.send({"type": "pong", **({"data": event.data} if event.data else {})})
            except AuthError:
                break  # the key stopped being valid: check_key sent the error and closes (4001)
            except HotlineError as exc:
                if not isinstance(exc, WireError):
                    log.info("session.refused", code=exc.code, reason=exc.message, ref=exc.ref)
                conn.send(exc.to_frame())
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
    await ws.send_str(encode(session.challenge()))
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
            await ws.send_str(encode(exc.to_frame()))
            await ws.close(code=CLOSE_AUTH_FAILED, message=exc.code.encode())


async def start(config: Config, *, clock: Callable[[], datetime] = utc_now) -> tuple[web.AppRunner, str]:
    """Start serving; returns the runner (``await runner.cleanup()`` stops it) and the WebSocket
    URL actually bound (port 0 in the config picks a free port).

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
    _check_home(config)
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
    app = create_app(config, clock=clock)
    _fit_fd_limit(app[GATE])
    limits = config.limits
    listener = Listener(app[GATE])  # the port first: a busy one fails before the database opens
    try:
        await listener.bind(config.server.host, config.server.port, ssl_context=ssl_context,
                            ssl_handshake_timeout=limits.request_timeout)
    except OSError as exc:
        raise _cannot_listen(config, exc) from exc
    # aiohttp closes an idle keep-alive connection after the request timeout (the gate cuts one
    # that sends a request too slowly).
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5.0, access_log=None,
                           keepalive_timeout=limits.request_timeout)
    try:
        await runner.setup()  # opens the store (``lifecycle``)
    except BaseException:
        listener.close()
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


async def serve_forever(config: Config) -> None:
    """``hotline serve``: run until SIGINT or SIGTERM, then close sessions and the store."""
    runner, url = await start(config)
    log.info("server.listening", url=url, tls=url.startswith("wss"))
    print(f"hotline server listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("server.stopping")
        await runner.cleanup()
