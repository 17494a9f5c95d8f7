"""The typed keys of what the aiohttp application holds, in a module of their own so that every
handler module reads them without importing the app (``hotline.server.app``) that routes to it."""

from __future__ import annotations

import asyncio
import weakref

from aiohttp import web

from hotline.server.compose import Server
from hotline.server.gate import Gate

SERVER = web.AppKey("server", Server)
GATE = web.AppKey("gate", Gate)
SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets")
LOG_PAGES = web.AppKey("log_pages", asyncio.Semaphore)  # /v1/log/entries pages built at once
