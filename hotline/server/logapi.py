"""The transparency log's HTTP API (docs/ARCHITECTURE.md "Transparency log").

Public, hashes only: ``GET /v1/log/checkpoint`` (the latest signed checkpoint with its
cosignatures, text/plain), ``/v1/log/checkpoints?since=S`` (history, JSON), ``/v1/log/key`` (the
note verifier key), ``/v1/log/proof/inclusion?index=I&size=N`` and
``/v1/log/proof/consistency?old=M&size=N``. ``POST /v1/log/cosignature`` takes a witness's
cosignature (self-authenticating: it verifies only with the key of a witness an agreement names).
Authenticated (``Authorization: Hotline ...``, see ``hotline.httpauth``): ``/v1/log/entries``,
which gives the entries the caller may read and only the leaf hash of the others, so a caller can
still check every checkpoint's root.

``/v1/log/entries`` answers at most ``MAX_ENTRIES`` rows and ``limits.entries_page_bytes`` bytes
of leaves (at least one row); the caller pages on from the last index it received. A page is
built without parsing an entry: the store's ``kind`` and ``channel`` columns decide visibility,
and the leaf bytes, the entry's canonical JSON, are spliced in as ``entry``. Reading and encoding
run off the event loop, at most ``HEAVY`` pages at a time, so large requests cannot take the
server's memory or starve the members' sessions.

Errors are typed JSON ``{"code", "message"}``: 400 for a bad request (``http.bad_parameter`` for
any integer parameter that is not a decimal from 0 to 2^53-1), 401 unauthenticated, 503 when the
store cannot read (``store.*``), never 500.
"""

from __future__ import annotations

import asyncio
import base64
import re

from aiohttp import web

from hotline.canonical import MAX_SAFE_INT, parse
from hotline.entries import ROSTER_KINDS
from hotline.errorcodes import Code
from hotline.errors import HotlineError, LogError, ProtocolViolation, StoreError
from hotline.httpauth import parse_header, verify_request
from hotline.keys import b64encode
from hotline.roster import Member, Role
from hotline.server.appkeys import LOG_PAGES, SERVER
from hotline.server.compose import Server
from hotline.store import PageRow
from hotline.typed import to_json

MAX_ENTRIES = 1000
HEAVY = 2  # /v1/log/entries pages read and encoded at once; the others wait their turn
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,15}")  # 2^53 - 1 has 16 digits


def add_log_routes(app: web.Application) -> None:
    app.router.add_get("/v1/log/checkpoint", checkpoint_handler)
    app.router.add_get("/v1/log/checkpoints", checkpoints_handler)
    app.router.add_get("/v1/log/witnessed", witnessed_handler)
    app.router.add_get("/v1/log/key", key_handler)
    app.router.add_get("/v1/log/proof/inclusion", inclusion_handler)
    app.router.add_get("/v1/log/proof/consistency", consistency_handler)
    app.router.add_get("/v1/log/entries", entries_handler)
    app.router.add_post("/v1/log/cosignature", cosignature_handler)
    app[LOG_PAGES] = asyncio.Semaphore(HEAVY)


def _error(exc: HotlineError, status: int = 400) -> web.Response:
    """A typed error; a store that cannot read is the server's fault (503), not the caller's."""
    if isinstance(exc, StoreError):
        status = 503
    return web.json_response({"code": exc.code, "message": exc.message}, status=status)


def _int(request: web.Request, name: str) -> int:
    return query_int(request.query.get(name), name)


def query_int(text: str | None, name: str) -> int:
    """The integer query parameter ``name`` holds (``text``, None if absent): a decimal from 0
    to 2^53-1 without leading zeros, else ProtocolViolation ``http.bad_parameter``."""
    if text is None or not _DECIMAL.fullmatch(text) or int(text) > MAX_SAFE_INT:
        raise ProtocolViolation(f"query parameter {name} must be a decimal integer from 0 to "
                                "2^53-1", code=Code.HTTP_BAD_PARAMETER)
    return int(text)


async def checkpoint_handler(request: web.Request) -> web.Response:
    try:
        note = await request.app[SERVER].checkpointer.note_with_cosignatures()
    except HotlineError as exc:
        return _error(exc)
    return web.Response(text=note, content_type="text/plain")


async def checkpoints_handler(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    try:
        since = _int(request, "since") if "since" in request.query else -1
        page = await server.store.checkpoints(since=since, limit=MAX_ENTRIES)
        lines = await server.store.cosignatures(page[0][0], page[-1][0]) if page else {}
    except HotlineError as exc:
        return _error(exc)
    cosigned = server.checkpointer.cosigner()
    return web.json_response([{"size": size, "time": time, "note": cosigned(note, lines.get(size, []))}
                              for size, time, note in page])


async def witnessed_handler(request: web.Request) -> web.Response:
    try:
        notes = await request.app[SERVER].checkpointer.witnessed_notes()
    except HotlineError as exc:
        return _error(exc)
    return web.json_response(to_json(notes))


async def key_handler(request: web.Request) -> web.Response:
    checkpointer = request.app[SERVER].checkpointer
    return web.Response(text=checkpointer.verifier.to_text() + "\n", content_type="text/plain")


async def inclusion_handler(request: web.Request) -> web.Response:
    store = request.app[SERVER].store
    try:
        index, size = _int(request, "index"), _int(request, "size")
        proof = await store.inclusion_proof(index, size)
    except HotlineError as exc:
        return _error(exc)
    return web.json_response({"index": index, "size": size, "proof": [b64encode(h) for h in proof]})


async def consistency_handler(request: web.Request) -> web.Response:
    store = request.app[SERVER].store
    try:
        old, size = _int(request, "old"), _int(request, "size")
        proof = await store.consistency_proof(old, size)
    except HotlineError as exc:
        return _error(exc)
    return web.json_response({"old": old, "size": size, "proof": [b64encode(h) for h in proof]})


def authenticate_request(request: web.Request, server: Server) -> Member:
    """The member whose signed ``Authorization: Hotline ...`` header this request carries."""
    header = request.headers.get("Authorization")
    key_id, *_ = parse_header(header)
    member = server.service.authenticate_key_id(key_id)
    verify_request(header, key=server.roster.public_key(key_id), method=request.method,
                   path=request.path, query=request.query_string,
                   origin=server.config.server.origin, now=server.clock(),
                   skew=server.service.clock_skew)
    return member


async def entries_handler(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    try:
        member = authenticate_request(request, server)
    except HotlineError as exc:
        return _error(exc, status=401)
    try:
        start, end = _int(request, "start"), _int(request, "end")
        if end < start or end - start > MAX_ENTRIES:
            raise ProtocolViolation(f"end must be from start to start+{MAX_ENTRIES}",
                                    code=Code.HTTP_BAD_PARAMETER)
    except HotlineError as exc:
        return _error(exc)
    readable = frozenset(server.roster.channels_of(member))
    auditor = member.role is Role.AUDITOR

    def visible(kind: str, channel: str | None) -> bool:
        """Entries of the caller's channels and the roster in full; to auditors also the
        refused attempts on no channel of theirs and the refusal summaries (who tried what,
        never a body)."""
        return channel in readable or (channel is None and (
            kind in ROSTER_KINDS or (auditor and kind in ("rejected", "rejections"))))

    async with request.app[LOG_PAGES]:
        try:
            rows = await server.store.page(start=start, end=end, wanted=visible,
                                           max_bytes=server.config.limits.entries_page_bytes)
        except HotlineError as exc:
            return _error(exc)
        body = await asyncio.to_thread(_encode_page, rows)
    return web.Response(body=body, content_type="application/json")


def _encode_page(rows: list[PageRow]) -> bytes:
    """The JSON page: ``{"index", "leaf", "entry"}`` for a readable entry (its leaf bytes, its
    canonical JSON, are the entry), ``{"index", "hash"}`` (the leaf hash) for the others."""
    parts = []
    for row in rows:
        if row.leaf is not None:
            parts.append(b'{"index":%d,"leaf":"%s","entry":%s}'
                         % (row.index, base64.b64encode(row.leaf), row.leaf))
        else:
            parts.append(b'{"index":%d,"hash":"%s"}' % (row.index, base64.b64encode(row.hash)))
    return b"[" + b",".join(parts) + b"]"


async def cosignature_handler(request: web.Request) -> web.Response:
    checkpointer = request.app[SERVER].checkpointer
    try:
        body = parse(await request.read(), max_bytes=16 * 1024)
        if not isinstance(body, dict) or set(body) != {"size", "cosignature"}:
            raise LogError('body must be {"size": int, "cosignature": line}',
                           code=Code.LOG_BAD_COSIGNATURE)
        added = await checkpointer.add_cosignature(body["size"], body["cosignature"])
    except HotlineError as exc:
        return _error(exc)
    return web.json_response({"added": added})
