"""A hostile host for tests: an aiohttp app on an OS-chosen loopback port that relays every HTTP
request and the WebSocket session (``/v1/ws``) to the real running server, and answers what a
test chooses in place of the real answer.

A test sets ``relay.rules[path]`` to a function of the request and the real answer (``Answer``);
it returns the response to send instead, or None to pass the real one on. ``relay.frames``, when
set, rewrites each text frame the server sends on a WebSocket session (None drops it).
``relay.asked`` lists every HTTP request's path and query, in order. Nothing of ours is mocked:
the clients speak to this relay exactly as they would to a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web


@dataclass(frozen=True)
class Answer:
    """The real server's answer to the request."""

    status: int
    content_type: str
    body: bytes


Rule = Callable[[web.Request, Answer], web.StreamResponse | None]
Frames = Callable[[str], str | None]


@dataclass
class HostileRelay:
    upstream: str  # the real server's http://host:port
    session: aiohttp.ClientSession
    rules: dict[str, Rule] = field(default_factory=dict)
    frames: Frames | None = None
    asked: list[str] = field(default_factory=list)
    base: str = ""  # this relay's http://127.0.0.1:port
    sockets: weakref.WeakSet[web.WebSocketResponse] = field(default_factory=weakref.WeakSet)

    @property
    def url(self) -> str:
        """The relay's WebSocket URL, as a profile's server would be given."""
        return self.base.replace("http://", "ws://") + "/v1/ws"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/v1/ws":
            return await self._relay_socket(request)
        self.asked.append(request.path_qs)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        async with self.session.request(request.method, self.upstream + request.path_qs,
                                        headers=headers, data=await request.read()) as real:
            answer = Answer(real.status, real.headers.get("Content-Type", ""), await real.read())
        rule = self.rules.get(request.path)
        lie = rule(request, answer) if rule is not None else None
        if lie is not None:
            return lie
        return web.Response(status=answer.status, body=answer.body,
                            headers={"Content-Type": answer.content_type} if answer.content_type else {})

    async def _relay_socket(self, request: web.Request) -> web.WebSocketResponse:
        client = web.WebSocketResponse(max_msg_size=0)
        await client.prepare(request)
        self.sockets.add(client)
        url = self.upstream.replace("http://", "ws://") + request.path_qs
        async with self.session.ws_connect(url, max_msg_size=0) as server:
            async def down() -> None:
                async for message in server:
                    if message.type is aiohttp.WSMsgType.TEXT:
                        text = message.data if self.frames is None else self.frames(message.data)
                        if text is not None:
                            await client.send_str(text)
                    elif message.type is aiohttp.WSMsgType.BINARY:
                        await client.send_bytes(message.data)

            async def up() -> None:
                async for message in client:
                    if message.type is aiohttp.WSMsgType.TEXT:
                        await server.send_str(message.data)
                    elif message.type is aiohttp.WSMsgType.BINARY:
                        await server.send_bytes(message.data)

            tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
        return client


@contextlib.asynccontextmanager
async def hostile_relay(server_url: str) -> AsyncIterator[HostileRelay]:
    """A relay to the server at ``server_url`` (``ws://host:port/v1/ws``), on a free loopback
    port of this event loop; stopped, with every session it relays, when the block ends."""
    parts = urllib.parse.urlsplit(server_url)
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        relay = HostileRelay(f"http://{parts.netloc}", session)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", relay.handle)

        async def close_sockets(_: web.Application) -> None:
            for socket in list(relay.sockets):
                await socket.close()
        app.on_shutdown.append(close_sockets)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        relay.base = f"http://127.0.0.1:{port}"
        try:
            yield relay
        finally:
            await runner.cleanup()


def answer(body: bytes | str, *, content_type: str = "application/json", status: int = 200) -> web.Response:
    """A response with exactly this body and content type (whatever the body holds)."""
    data = body.encode() if isinstance(body, str) else body
    return web.Response(status=status, body=data, headers={"Content-Type": content_type})
