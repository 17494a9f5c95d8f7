"""The client of a server's HTTP API, for everyone who reads or feeds the log over HTTP (the
auditor, the witness, the console, ``hotline listen``, ``hotline agreement submit``): the public
log API, the entries the caller's key may see (signed requests), cosignatures and roster
documents handed in. Plain HTTP(S) with the standard library.

The host is not trusted, so neither are its answers: each is read up to a bound, must carry the
content type its endpoint declares, and is decoded strictly (``hotline.canonical.parse``, then
``hotline.audit.records``) into typed values. Anything else is a ``BadAnswer`` naming the host
and the request — a host misbehaving, not a line down (``RemoteError``); no answer ever escapes
as a ``JSONDecodeError`` or a ``KeyError``. Paging must go forward and ends within a bound, so a
host cannot keep a caller reading forever. Whether the answers are *true* (signatures, proofs,
leaves) is checked by their callers: ``hotline.audit.verify``, the witness, the console."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from hotline.audit.records import (
    WITNESSED,
    CheckpointRecord,
    EntryRecord,
    RecordError,
    decode_checkpoint,
    decode_entry,
)
from hotline.canonical import parse
from hotline.clock import utc_now
from hotline.display import shown
from hotline.errorcodes import Code
from hotline.errors import CryptoError, HotlineError, PeerCode, WireError
from hotline.httpauth import sign_request
from hotline.keys import Signer, b64decode
from hotline.roster import SignedDocument
from hotline.typed import convert

PAGE = 1000
SMALL_ANSWER = 1 << 20  # bytes: a checkpoint, a key, a proof, a cosignature's receipt
PAGE_ANSWER = 64 << 20  # bytes: a page (the server's default entries page is 4 MiB of leaves)
MAX_CHECKPOINTS = 1_000_000  # a history longer than this is refused, not read into memory
MAX_PROOF = 128  # hashes: a proof in a tree of 2^53 entries has fewer than 110
JSON, TEXT = "application/json", "text/plain"


class RemoteError(HotlineError):
    """The server could not be reached or refused the request (HTTP error status)."""

    code = Code.CONNECT_FAILED


class BadAnswer(RemoteError):
    """The host answered with something the log API never sends: the wrong content type, too
    many bytes, not strict JSON, JSON of the wrong shape, a page that does not go forward."""

    code = Code.LOG_BAD_ANSWER


class HostRefused(RemoteError):
    """The server refused the request with a typed error (``{"code", "message"}``): its code,
    e.g. ``log.unknown_witness``, is this error's (the host's word, shown sanitized)."""

    code = Code.SERVER_REFUSED


def refusal(what: str, status: int, detail: str) -> RemoteError:
    """The error for an HTTP error status: the server's own typed error when its body is one."""
    try:
        body = json.loads(detail)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str) and PeerCode.accepts(body["code"]):
        return HostRefused(f"{what}: HTTP {status}: {shown(body.get('message', ''), limit=300)}",
                           code=PeerCode(body["code"]))
    return RemoteError(f"{what}: HTTP {status}: {shown(detail, limit=300)}")


@dataclass(frozen=True)
class Logged:
    """The server's answer to a roster document: where it is logged, and whether it already was."""

    index: int
    duplicate: bool


class Healthz(msgspec.Struct, frozen=True, kw_only=True):
    """The server's ``/healthz`` answer (a newer server may add fields: they are ignored)."""

    status: str  # "ok", or "failing" (answered with 503)
    storage: str  # "ok", or the first storage problem, in words
    log_size: int
    connections: int  # members connected


def http_base(ws_url: str) -> str:
    """``ws://host:port/v1/ws`` -> ``http://host:port``."""
    parts = urllib.parse.urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


class LogClient:
    def __init__(self, base: str, *, key: Signer | None = None, origin: str = "",
                 ssl_context: ssl.SSLContext | None = None, timeout: float = 30.0,
                 max_checkpoints: int = MAX_CHECKPOINTS) -> None:
        self.base, self.key, self.origin = base.rstrip("/"), key, origin
        self.ssl, self.timeout = ssl_context, timeout
        self.max_checkpoints = max_checkpoints

    def _bad(self, request: str, what: str, code: Code = Code.LOG_BAD_ANSWER) -> BadAnswer:
        return BadAnswer(f"the host {self.base} answered {request} with {what}", code=code)

    def _request(self, request: urllib.request.Request, *, accept: str, limit: int,
                 answers: frozenset[int] = frozenset()) -> bytes:
        """Send ``request``; its answer's body, at most ``limit`` bytes of type ``accept``
        (``answers``: error statuses whose body is the answer too, ``/healthz``'s 503)."""
        what = f"{request.get_method()} {urllib.parse.urlsplit(request.full_url).path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.ssl) as response:
                return self._body(response, what, accept=accept, limit=limit)
        except urllib.error.HTTPError as exc:
            if exc.code in answers:
                return self._body(exc, what, accept=accept, limit=limit)
            detail = exc.read(300).decode("utf-8", "replace")
            raise refusal(what, exc.code, detail) from exc
        except urllib.error.URLError as exc:  # nobody answered: say what to try
            raise RemoteError(f"{what} at {self.base}: {shown(exc.reason, limit=300)}. Is the "
                              "server running (`hotline serve`)? Give its URL with --server URL "
                              "or HOTLINE_SERVER=URL") from exc
        except (OSError, http.client.HTTPException) as exc:  # cut, garbled
            raise RemoteError(f"{what} at {self.base}: {shown(exc, limit=300)}") from exc

    def _body(self, response: http.client.HTTPResponse | urllib.error.HTTPError, what: str, *,
              accept: str, limit: int) -> bytes:
        declared = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if declared != accept:
            raise self._bad(what, f"content type {shown(declared or 'none', limit=60)}, not {accept}")
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise self._bad(what, f"an answer of more than {limit} bytes")
        body: bytes = response.read(limit + 1)
        if len(body) > limit:
            raise self._bad(what, f"an answer of more than {limit} bytes")
        return body

    def _get(self, path: str, query: dict[str, int] | None = None, *, signed: bool = False,
             accept: str = JSON, limit: int = SMALL_ANSWER) -> bytes:
        query_string = urllib.parse.urlencode(query or {})
        request = urllib.request.Request(f"{self.base}{path}" + (f"?{query_string}" if query_string else ""))
        if signed:
            assert self.key is not None
            request.add_header("Authorization", sign_request(
                self.key, method="GET", path=path, query=query_string, origin=self.origin,
                now=utc_now()))
        return self._request(request, accept=accept, limit=limit)

    def _text(self, path: str) -> str:
        try:
            return self._get(path, accept=TEXT).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._bad(f"GET {path}", "text that is not UTF-8") from exc

    def _json(self, path: str, query: dict[str, int] | None = None, *, signed: bool = False,
              limit: int = SMALL_ANSWER, code: Code = Code.LOG_BAD_ANSWER) -> Any:
        try:
            return parse(self._get(path, query, signed=signed, limit=limit))
        except WireError as exc:
            raise self._bad(f"GET {path}", f"what is not strict JSON ({exc.message})", code) from exc

    def _list(self, path: str, query: dict[str, int] | None = None, *, signed: bool = False,
              code: Code = Code.LOG_BAD_ANSWER) -> list[Any]:
        value = self._json(path, query, signed=signed, limit=PAGE_ANSWER, code=code)
        if not isinstance(value, list):
            raise self._bad(f"GET {path}", "JSON that is not a list", code)
        return value

    def healthz(self) -> Healthz:
        """The server's ``/healthz`` object: liveness and storage health (its 503 ``failing``
        answer is one too)."""
        path = "/healthz"
        request = urllib.request.Request(f"{self.base}{path}")
        try:
            value = parse(self._request(request, accept=JSON, limit=SMALL_ANSWER,
                                        answers=frozenset({503})))
        except WireError as exc:
            raise self._bad(f"GET {path}", f"what is not strict JSON ({exc.message})") from exc
        try:
            return convert(value, Healthz, what="the answer")
        except WireError as exc:
            raise self._bad(f"GET {path}", f"what is not a health answer ({exc.message})") from exc

    def key_text(self) -> str:
        return self._text("/v1/log/key").strip()

    def checkpoint(self) -> str:
        """The latest signed checkpoint note, with its cosignatures (unverified)."""
        return self._text("/v1/log/checkpoint")

    def _checkpoint_records(self, path: str, values: list[Any], source: str) -> list[CheckpointRecord]:
        try:
            return [decode_checkpoint(value, source=source) for value in values]
        except RecordError as exc:
            raise self._bad(f"GET {path}", f"a checkpoint record that is malformed ({exc.message})") from exc

    def checkpoints(self) -> list[CheckpointRecord]:
        """Every signed checkpoint, oldest first. The server answers in pages, each going on
        from the last size received: sizes must strictly increase, and at most
        ``max_checkpoints`` are read.

        Raises:
            BadAnswer: ``log.bad_page`` if a page does not go forward or the history is longer
                than the bound; ``log.bad_answer`` if an answer is malformed.
        """
        path, since = "/v1/log/checkpoints", -1
        history: list[CheckpointRecord] = []
        while True:
            query = {"since": since} if since >= 0 else None
            request = f"GET {path}" + (f"?since={since}" if query else "")
            page = self._checkpoint_records(path, self._list(path, query), "the log")
            if not page:
                return history
            for record in page:
                if record.size <= since:
                    raise self._bad(request, f"a checkpoint of size {record.size} after size "
                                             f"{since}: checkpoint pages must go forward",
                                    code=Code.LOG_BAD_PAGE)
                since = record.size
            history += page
            if len(history) > self.max_checkpoints:
                raise self._bad(request, f"more than {self.max_checkpoints} checkpoints: a "
                                         "history this long is not read", code=Code.LOG_BAD_PAGE)

    def witnessed(self) -> list[CheckpointRecord]:
        """The latest checkpoint each witness cosigned, with the cosignatures (unverified)."""
        path = "/v1/log/witnessed"
        return self._checkpoint_records(path, self._list(path), WITNESSED)

    def _proof(self, path: str, query: dict[str, int]) -> list[bytes]:
        """A proof's hashes, ``{"proof": [base64 of 32 bytes, ...]}``, decoded (not verified)."""
        value = self._json(path, query)
        proof = value.get("proof") if isinstance(value, dict) else None
        if not isinstance(proof, list) or len(proof) > MAX_PROOF:
            raise self._bad(f"GET {path}", f"what is not {{\"proof\": [at most {MAX_PROOF} hashes]}}")
        try:
            hashes = [b64decode(h, what="a proof hash") for h in proof]
        except CryptoError as exc:
            raise self._bad(f"GET {path}", exc.message) from exc
        if any(len(h) != 32 for h in hashes):
            raise self._bad(f"GET {path}", "a proof hash that is not 32 bytes")
        return hashes

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return self._proof("/v1/log/proof/inclusion", {"index": index, "size": size})

    def consistency(self, old: int, size: int) -> list[bytes]:
        return self._proof("/v1/log/proof/consistency", {"old": old, "size": size})

    def entries(self, size: int) -> Iterator[EntryRecord]:
        """Entries 0..size-1, as the caller may see them, page by page: the server bounds each
        page in entries and in bytes, so each request goes on from the last index received.

        Raises:
            BadAnswer: ``log.bad_page`` if a page is malformed, empty before ``size`` or does
                not go forward (what an entry claims is checked by the auditor, not here).
        """
        start = 0
        while start < size:
            end = min(start + PAGE, size)
            request, page = self._page(start, end)
            if not page:
                raise self._bad(request, f"no entries, but the log has {size}", Code.LOG_BAD_PAGE)
            last = page[-1].index
            if not start <= last < end or len(page) > end - start:
                raise self._bad(request, f"a page that does not end at an index from {start} to "
                                         f"{end - 1}", Code.LOG_BAD_PAGE)
            yield from page
            start = last + 1

    def _page(self, start: int, end: int) -> tuple[str, list[EntryRecord]]:
        """One signed request for entries ``start``..``end - 1`` (the request, in words, and the
        records as decoded; ``log.bad_page`` for a malformed one)."""
        request = f"GET /v1/log/entries?start={start}&end={end}"
        values = self._list("/v1/log/entries", {"start": start, "end": end}, signed=True,
                            code=Code.LOG_BAD_PAGE)
        try:
            return request, [decode_entry(value) for value in values]
        except RecordError as exc:
            raise self._bad(request, f"an entry record that is malformed ({exc.message})",
                            Code.LOG_BAD_PAGE) from exc

    def leaf(self, index: int) -> bytes:
        """The leaf bytes of entry ``index``, if the caller may read it.

        Raises:
            BadAnswer: ``log.bad_page`` if the answer is not that one readable entry.
        """
        request, page = self._page(index, index + 1)
        if len(page) != 1 or page[0].index != index or page[0].leaf is None:
            raise self._bad(request, f"not entry {index} as a readable leaf (is it on one of "
                                     "your channels?)", Code.LOG_BAD_PAGE)
        return base64.b64decode(page[0].leaf)

    def _post(self, path: str, body: Any) -> Any:
        """POST ``body`` as JSON; the strict JSON answer."""
        request = urllib.request.Request(f"{self.base}{path}", method="POST",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": JSON})
        try:
            return parse(self._request(request, accept=JSON, limit=SMALL_ANSWER))
        except WireError as exc:
            raise self._bad(f"POST {path}", f"what is not strict JSON ({exc.message})") from exc

    def submit_roster(self, signed: SignedDocument) -> Logged:
        """Hand the server a signed enrollment, revocation or agreement (``POST /v1/roster``).

        Raises:
            HostRefused: the server refused it (``roster.unsigned``, ``roster.bad_signature``...).
            BadAnswer: the answer is not ``{"index": int, "duplicate": bool}``.
            RemoteError: no answer.
        """
        path = "/v1/roster"
        value = self._post(path, signed.to_json())
        if (not isinstance(value, dict) or set(value) != {"index", "duplicate"}
                or type(value["index"]) is not int or type(value["duplicate"]) is not bool):
            raise self._bad(f"POST {path}", 'what is not {"index": N, "duplicate": true or false}')
        return Logged(value["index"], value["duplicate"])

    def post_cosignature(self, size: int, line: str) -> bool:
        """Hand the server a cosignature; whether it says it added it (``{"added": bool}``)."""
        path = "/v1/log/cosignature"
        value = self._post(path, {"size": size, "cosignature": line})
        if not isinstance(value, dict) or set(value) != {"added"} or type(value["added"]) is not bool:
            raise self._bad(f"POST {path}", 'what is not {"added": true or false}')
        return value["added"]
