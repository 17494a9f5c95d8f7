"""What the auditor reads from a server: the public log API and, signed with its own key, the
entries it may see. Plain HTTP(S) with the standard library; nothing here trusts the answers —
``hotline.audit.verify`` checks them."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from hotline.canonical import parse
from hotline.errors import HotlineError, WireError
from hotline.httpauth import sign_request
from hotline.keys import SigningKey

PAGE = 1000


class RemoteError(HotlineError):
    code = "connect.failed"


def http_base(ws_url: str) -> str:
    """``ws://host:port/v1/ws`` -> ``http://host:port``."""
    parts = urllib.parse.urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


class LogClient:
    def __init__(self, base: str, *, key: SigningKey | None = None, origin: str = "",
                 ssl_context: ssl.SSLContext | None = None, timeout: float = 30.0) -> None:
        self.base, self.key, self.origin = base.rstrip("/"), key, origin
        self.ssl, self.timeout = ssl_context, timeout

    def _get(self, path: str, query: dict[str, int] | None = None, *, signed: bool = False) -> bytes:
        query_string = urllib.parse.urlencode(query or {})
        request = urllib.request.Request(f"{self.base}{path}" + (f"?{query_string}" if query_string else ""))
        if signed:
            assert self.key is not None
            request.add_header("Authorization", sign_request(
                self.key, method="GET", path=path, query=query_string, origin=self.origin,
                now=datetime.now(UTC)))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.ssl) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise RemoteError(f"GET {path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteError(f"GET {self.base}{path}: {exc}") from exc

    def key_text(self) -> str:
        return self._get("/v1/log/key").decode().strip()

    def checkpoint(self) -> str:
        return self._get("/v1/log/checkpoint").decode()

    def _records(self, path: str, query: dict[str, int] | None = None, *, signed: bool = False,
                 code: str = RemoteError.code) -> list[dict[str, Any]]:
        """A JSON list of records, parsed strictly (no floats, no duplicate keys), each an
        object with an integer ``size`` or ``index``; anything else is a RemoteError with
        ``code``."""
        try:
            value = parse(self._get(path, query, signed=signed))
        except WireError as exc:
            raise RemoteError(f"GET {path}: the answer is not strict JSON: {exc.message}",
                              code=code) from exc
        if not isinstance(value, list) or not all(
                isinstance(r, dict) and any(type(r.get(k)) is int for k in ("size", "index"))
                for r in value):
            raise RemoteError(f"GET {path}: the answer is not a list of records", code=code)
        return value

    def checkpoints(self) -> list[dict[str, Any]]:
        """Every signed checkpoint, oldest first (the server answers in pages)."""
        history: list[dict[str, Any]] = []
        while True:
            since = history[-1]["size"] if history else -1
            page = self._records("/v1/log/checkpoints", {"since": since} if since >= 0 else None)
            if page and page[0]["size"] <= since:
                raise RemoteError("GET /v1/log/checkpoints: a page does not move forward")
            history += page
            if not page:
                return history

    def witnessed(self) -> list[dict[str, Any]]:
        """The latest checkpoint each witness cosigned: ``[{"size", "note"}]`` (unverified)."""
        return self._records("/v1/log/witnessed")

    def inclusion(self, index: int, size: int) -> list[str]:
        value: list[str] = json.loads(self._get("/v1/log/proof/inclusion",
                                                {"index": index, "size": size}))["proof"]
        return value

    def consistency(self, old: int, size: int) -> list[str]:
        value: list[str] = json.loads(self._get("/v1/log/proof/consistency",
                                                {"old": old, "size": size}))["proof"]
        return value

    def entries(self, size: int) -> Iterator[dict[str, Any]]:
        """Entries 0..size-1, as the caller may see them, page by page: the server bounds each
        page in entries and in bytes, so each request goes on from the last index received.

        Raises:
            RemoteError: ``log.bad_page`` if a page is empty before ``size`` or does not go
                forward (a page's content is checked by the auditor, not here).
        """
        start = 0
        while start < size:
            end = min(start + PAGE, size)
            page = self._records("/v1/log/entries", {"start": start, "end": end}, signed=True,
                                 code="log.bad_page")
            if not page:
                raise RemoteError(f"GET /v1/log/entries?start={start}&end={end}: no entries, but "
                                  f"the log has {size}", code="log.bad_page")
            last = page[-1].get("index")
            if type(last) is not int or not start <= last < end or len(page) > end - start:
                raise RemoteError(f"GET /v1/log/entries?start={start}&end={end}: the page does not "
                                  f"end at an index from {start} to {end - 1}", code="log.bad_page")
            yield from page
            start = last + 1

    def post_cosignature(self, size: int, line: str) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.base}/v1/log/cosignature", method="POST",
                                         data=json.dumps({"size": size, "cosignature": line}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.ssl) as response:
                value: dict[str, Any] = json.loads(response.read())
                return value
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise RemoteError(f"POST /v1/log/cosignature: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteError(f"POST {self.base}/v1/log/cosignature: {exc}") from exc
