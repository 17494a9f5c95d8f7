"""A hostile host for the tests: a relay between the real server and a client that speaks the
protocol and may rewrite, drop, inject or reorder what the server sends, or answer the client
itself. It holds no key of the log or of any member, so what it cannot forge is exactly what a
client must insist on.

``down(frame)`` turns each server -> client frame into the frames the client gets (a dict is
sent as JSON, a str as is); ``up(frame)`` turns each client -> server frame into
``(to the server, back to the client)``. Both default to passing frames through. The log API
(HTTP) is proxied unchanged, so a client's proofs come from the real log through the same host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

Frame = dict[str, Any]
Down = Callable[[Frame], list[Frame | str]]
Up = Callable[[Frame], tuple[list[Frame], list[Frame | str]]]


def _through(frame: Frame) -> list[Frame | str]:
    return [frame]


def _up_through(frame: Frame) -> tuple[list[Frame], list[Frame | str]]:
    return [frame], []


def _text(frame: Frame | str) -> str:
    return frame if isinstance(frame, str) else json.dumps(frame)


@dataclass
class Relay:
    upstream: str  # the real server's WebSocket URL
    down: Down = _through
    up: Up = _up_through
    url: str = ""  # the relay's WebSocket URL, once started
    seen_up: list[Frame] = field(default_factory=list)  # every client -> server frame

    @property
    def _http(self) -> str:
        return self.upstream.replace("ws://", "http://").removesuffix("/v1/ws")

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        client = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
        await client.prepare(request)
        async with aiohttp.ClientSession() as http, http.ws_connect(
                self.upstream, max_msg_size=16 * 1024 * 1024) as server:

            async def downstream() -> None:
                async for message in server:
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        break
                    for out in self.down(json.loads(message.data)):
                        await client.send_str(_text(out))
                await client.close()

            pump = asyncio.create_task(downstream())
            try:
                async for message in client:
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        break
                    frame = json.loads(message.data)
                    self.seen_up.append(frame)
                    forward, back = self.up(frame)
                    for out in forward:
                        await server.send_str(json.dumps(out))
                    for reply in back:
                        await client.send_str(_text(reply))
            finally:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
        return client

    async def _http_proxy(self, request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as http, http.request(
                request.method, self._http + request.path_qs, data=await request.read(),
                headers={k: v for k, v in request.headers.items()
                         if k.lower() in ("authorization", "content-type")}) as answer:
            return web.Response(status=answer.status, body=await answer.read(),
                                content_type=answer.content_type)


@contextlib.asynccontextmanager
async def hostile_relay(upstream: str, *, down: Down = _through,
                        up: Up = _up_through) -> AsyncIterator[Relay]:
    """A running relay in front of ``upstream`` on a free loopback port, stopped on exit."""
    relay = Relay(upstream, down, up)
    app = web.Application()
    app.router.add_get("/v1/ws", relay._ws)
    app.router.add_route("*", "/{tail:.*}", relay._http_proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    relay.url = f"ws://127.0.0.1:{port}/v1/ws"
    try:
        yield relay
    finally:
        await runner.cleanup()
