"""The connection gate: what an unauthenticated peer can hold, and for how long.

Theory of operation: every TCP connection passes through the gate before aiohttp sees a byte.
- A connection is *anonymous* until its WebSocket session authenticates a member
  (``promote``); anonymous connections are capped in total (``max_anonymous``) and per source
  address (``max_anonymous_per_address``, an IPv6 /64 counting as one address). A new connection
  is never refused: at a cap, the oldest anonymous connection of its own address is closed (at
  the total cap, the oldest of the most crowded address). A flood thus only displaces itself, and
  a member's new connection always gets its turn to authenticate.
- Members have their own cap (``max_connections``), so no number of anonymous sockets can take a
  member's place once it has authenticated.
- An anonymous connection must deliver a complete HTTP request head within ``request_timeout``
  of opening, or of the first byte of its next request (slow headers are cut; an idle keep-alive
  is closed by aiohttp's keep-alive timeout, set to the same value); a request's body must arrive
  within ``request_timeout`` too (``gate_middleware``). These deadlines are absolute: no later
  byte or partial header extends them. The WebSocket handshake has its own absolute deadline in
  the handler.
- The caps sit below the process's file-descriptor limit, which ``raise_fd_limit`` raises at start
  (and reports), so an accept never fails with ``EMFILE``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import resource
import ssl
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_protocol import RequestHandler

from hotline.errorcodes import Code

log = structlog.get_logger("hotline.server")

FD_RESERVE = 128  # the store's files, logs, the listening socket, the runtime's own


def address_key(host: str) -> str:
    """The source an anonymous-connection cap counts: the IPv4 address, or the IPv6 /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def is_loopback(host: str | None) -> bool:
    """Whether a peer address is this machine's own (an IPv4-mapped one included)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback


@dataclass(eq=False)
class Gated:
    """One admitted connection."""

    source: str
    transport: asyncio.BaseTransport
    member: bool = False
    handling: bool = False  # a request handler runs (its head has arrived)
    deadline: asyncio.TimerHandle | None = field(default=None, repr=False)


class Gate:
    def __init__(self, *, max_members: int, max_anonymous: int, max_per_address: int,
                 request_timeout: float) -> None:
        self.max_members, self.max_anonymous = max_members, max_anonymous
        self.max_per_address, self.request_timeout = max_per_address, request_timeout
        # source -> its open anonymous connections, oldest first
        self._anonymous: dict[str, OrderedDict[asyncio.BaseTransport, Gated]] = {}
        self.anonymous_total = 0
        self.members = 0
        self._open: dict[asyncio.BaseTransport, Gated] = {}
        self.refused: Counter[str] = Counter()  # reason -> connections refused or cut
        self.closed = False

    def anonymous(self, source: str) -> int:
        return len(self._anonymous.get(source, ()))

    def admit(self, transport: asyncio.BaseTransport) -> Gated:
        """Admit a new connection, making room if a cap is reached: the oldest anonymous
        connection of its own address goes, or, when the total is reached, the oldest of the
        address holding the most. A flood from one address only ever pushes out its own sockets,
        and a member's new connection always gets its turn to authenticate."""
        peer = transport.get_extra_info("peername")
        source = address_key(str(peer[0])) if isinstance(peer, tuple) and peer else "unknown"
        if self.anonymous(source) >= self.max_per_address:
            self._evict(source, "too many unauthenticated connections from one address")
        elif self.anonymous_total >= self.max_anonymous:
            crowded = max(self._anonymous, key=lambda s: len(self._anonymous[s]))
            self._evict(crowded, "too many unauthenticated connections")
        gated = Gated(source, transport)
        self._open[transport] = gated
        self._anonymous.setdefault(source, OrderedDict())[transport] = gated
        self.anonymous_total += 1
        self.arm(gated)
        if self.closed:  # accepted as the listener closed
            transport.abort()  # type: ignore[attr-defined]
        return gated

    def close(self) -> None:
        """The server stops: cut every connection still open, and any accepted after, so that no
        socket outlives the server."""
        self.closed = True
        for gated in list(self._open.values()):
            gated.transport.abort()  # type: ignore[attr-defined]

    def _evict(self, source: str, reason: str) -> None:
        _, oldest = next(iter(self._anonymous[source].items()))
        self._forget(oldest)
        self._disarm(oldest)
        self.refused[reason] += 1
        log.warning("connection.evicted", reason=reason, source=source,
                    evicted_total=self.refused[reason])
        oldest.transport.abort()  # type: ignore[attr-defined]

    def _forget(self, gated: Gated) -> None:
        """Take ``gated`` out of every count (once; its connection_lost may come later)."""
        if self._open.pop(gated.transport, None) is None:
            return
        if gated.member:
            self.members -= 1
            return
        pool = self._anonymous[gated.source]
        del pool[gated.transport]
        if not pool:
            del self._anonymous[gated.source]
        self.anonymous_total -= 1

    def release(self, gated: Gated) -> None:
        self._disarm(gated)
        self._forget(gated)

    def arm(self, gated: Gated) -> None:
        """The connection must deliver a complete request head within the request timeout."""
        if gated.member or gated.handling or gated.deadline is not None:
            return
        gated.deadline = asyncio.get_running_loop().call_later(
            self.request_timeout, self._cut, gated, "no complete request within the request timeout")

    def request_started(self, transport: asyncio.BaseTransport) -> None:
        gated = self._open.get(transport)
        if gated is not None:
            gated.handling = True
            self._disarm(gated)

    def request_finished(self, transport: asyncio.BaseTransport) -> None:
        gated = self._open.get(transport)
        if gated is not None:
            gated.handling = False

    @staticmethod
    def _disarm(gated: Gated) -> None:
        if gated.deadline is not None:
            gated.deadline.cancel()
            gated.deadline = None

    def _cut(self, gated: Gated, reason: str) -> None:
        gated.deadline = None
        self.refused[reason] += 1
        log.info("connection.cut", reason=reason, source=gated.source)
        gated.transport.abort()  # type: ignore[attr-defined]

    def promote(self, transport: asyncio.BaseTransport | None) -> bool:
        """An authenticated member's connection leaves the anonymous pool; False when the
        members' cap is reached (or the connection is already gone)."""
        gated = self._open.get(transport) if transport is not None else None
        if gated is None:
            return False
        if gated.member:
            return True
        if self.members >= self.max_members:
            self.refused["member connection limit reached"] += 1
            log.warning("connection.refused", reason="member connection limit reached",
                        source=gated.source)
            return False
        self._disarm(gated)
        self._forget(gated)
        self._open[transport] = gated  # type: ignore[index]
        gated.member = True
        self.members += 1
        return True


class _GatedProtocol(asyncio.Protocol):
    """Registers every connection with the gate before aiohttp's handler sees it."""

    def __init__(self, gate: Gate, inner: RequestHandler) -> None:
        self.gate, self.inner = gate, inner
        self.gated: Gated | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.gated = self.gate.admit(transport)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        assert self.gated is not None
        self.gate.arm(self.gated)  # the first byte of a request starts its clock
        self.inner.data_received(data)

    def eof_received(self) -> None:
        self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        assert self.gated is not None
        self.gate.release(self.gated)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class Listener:
    """The server's listening sockets, bound before anything else starts: a busy port then fails
    before the database is opened. Connections are accepted only once ``GatedSite`` starts it
    (until then the sockets are bound but not listening), each passing the gate first."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.handler: Callable[[], RequestHandler] | None = None  # aiohttp's, once set up
        self.server: asyncio.Server | None = None

    async def bind(self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
                   ssl_handshake_timeout: float = 10.0) -> None:
        """Bind ``host``:``port`` (raises OSError, e.g. EADDRINUSE)."""
        def factory() -> asyncio.Protocol:
            assert self.handler is not None  # not serving before the site starts
            return _GatedProtocol(self.gate, self.handler())
        self.server = await asyncio.get_running_loop().create_server(
            factory, host, port, ssl=ssl_context, backlog=128, start_serving=False,
            ssl_handshake_timeout=ssl_handshake_timeout if ssl_context else None)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


class GatedSite(web.TCPSite):
    """aiohttp's TCP site serving on a ``Listener``'s sockets."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 listener: Listener, ssl_context: object = None) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context)  # type: ignore[arg-type]
        self.listener = listener

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self.listener.server
        assert server is not None and self._runner.server is not None
        self.listener.handler = self._runner.server
        self._server = server
        await server.start_serving()
        sockets = server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


def gate_middleware(gate: Gate) -> Middleware:
    """A request's head has arrived: its connection's deadline stops while it is handled; its
    body must still arrive within the request timeout."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            gate.request_started(transport)
        try:
            if request.can_read_body:
                try:
                    async with asyncio.timeout(gate.request_timeout):
                        await request.read()
                except TimeoutError:
                    gate.refused["request body not sent within the request timeout"] += 1
                    raise web.HTTPRequestTimeout(text="request body not sent in time\n") from None
                except web.HTTPRequestEntityTooLarge:  # typed, like every refusal of a request
                    return web.json_response(
                        {"code": Code.FRAME_TOO_LARGE,
                         "message": f"request body exceeds {request.client_max_size} bytes"},
                        status=413)
            return await handler(request)
        finally:
            if transport is not None:
                gate.request_finished(transport)

    return middleware


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft file-descriptor limit towards ``wanted`` (at most the hard limit);
    returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else wanted
