"""The auditor's log client pages ``/v1/log/entries`` as the server bounds it (in entries and in
bytes): it goes on from the last index received, and a page that is empty before the end or does
not go forward is a typed error, not an endless loop. The server here is a hostile one: a real
HTTP server on a free loopback port answering what each case needs."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable

import pytest

from hotline.client.logapi import LogClient, RemoteError
from hotline.keys import SigningKey
from tests.unit.client.conftest import Quiet
from tests.unit.client.conftest import Serve as ServeHandler

Pager = Callable[[int, int], object]  # (start, end) -> the JSON page answered
Serve = Callable[[Pager], tuple[str, list[tuple[int, int]]]]  # -> base URL, the (start, end) asked


@pytest.fixture
def serve(http_server: ServeHandler) -> Serve:
    def start(pager: Pager) -> tuple[str, list[tuple[int, int]]]:
        asked: list[tuple[int, int]] = []

        class Handler(Quiet):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                start, end = int(query["start"][0]), int(query["end"][0])
                asked.append((start, end))
                self.reply(200, json.dumps(pager(start, end)).encode())

        return http_server(Handler), asked

    return start


def client(base: str) -> LogClient:
    return LogClient(base, key=SigningKey.generate(), origin="hotline.test", timeout=10)


def rows(start: int, end: int) -> list[dict[str, object]]:
    return [{"index": i, "hash": "A" * 43 + "="} for i in range(start, end)]  # 32 bytes


def test_short_pages_are_followed_from_the_last_index(serve: Serve) -> None:
    base, asked = serve(lambda start, end: rows(start, min(end, start + 3)))  # 3 a page
    got = [r.index for r in client(base).entries(10)]
    assert got == list(range(10))
    assert asked == [(0, 10), (3, 10), (6, 10), (9, 10)]


@pytest.mark.parametrize("pager", [
    lambda start, end: [],  # empty before the end
    lambda start, end: rows(0, 2),  # always the same page: it never goes forward
    lambda start, end: [{"index": end}],  # beyond what was asked
    lambda start, end: [{"index": "1"}],  # not an integer
    lambda start, end: {"index": 0},  # not a page
], ids=["empty", "backwards", "beyond", "not-an-int", "not-a-list"])
def test_a_page_that_does_not_go_forward_is_a_typed_error(serve: Serve, pager: Pager) -> None:
    base, _ = serve(pager)
    with pytest.raises(RemoteError) as caught:
        list(client(base).entries(5))
    assert caught.value.code == "log.bad_page"
