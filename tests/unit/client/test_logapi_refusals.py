"""An HTTP refusal from the log API reaches the user as the server's typed error (issue 13,
item 14: `witness --as` a key no agreement names said `connect.failed`): its code when the body
is ``{"code", "message"}`` with a well-formed code, else the plain ``connect.failed``; the host's
text is sanitized either way. The server is a real HTTP server on a free loopback port that
answers the status and body each case gives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from hotline.client.logapi import HostRefused, LogClient, RemoteError
from hotline.display import unsafe
from hotline.keys import SigningKey
from hotline.roster import revocation, sign_document
from tests.unit.client.conftest import Quiet, Serve

SIGNED = sign_document(revocation(party="north", member="alice", key_id="k1",
                                  revoked_at=datetime(2026, 12, 6, tzinfo=UTC)),
                       SigningKey.from_seed(bytes(32)))

Refuse = Callable[[int, bytes], LogClient]  # (status, body) -> a client of a server answering it


@pytest.fixture
def refusing(http_server: Serve) -> Refuse:
    def start(status: int, body: bytes) -> LogClient:
        class Handler(Quiet):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.reply(status, body)

        return LogClient(http_server(Handler), timeout=10)

    return start


def test_a_typed_refusal_keeps_the_servers_code(refusing: Refuse) -> None:
    client = refusing(400, b'{"code": "log.unknown_witness", "message": "rogue is not named"}')
    with pytest.raises(HostRefused) as caught:
        client.post_cosignature(9, "line")
    assert caught.value.code == "log.unknown_witness"
    assert "HTTP 400: rogue is not named" in caught.value.message


@pytest.mark.parametrize("body", [
    b'{"code": "\\u001b[2J.evil", "message": "x"}',  # not a code's form
    b'{"code": "' + b"a.b" * 40 + b'", "message": "x"}',  # longer than a code may be
    b"<html>Bad Request</html>",  # not JSON
    b'["log.unknown_witness"]',  # not an error object
], ids=["control-characters", "too-long", "not-json", "not-an-object"])
def test_anything_else_is_connect_failed(refusing: Refuse, body: bytes) -> None:
    with pytest.raises(RemoteError) as caught:
        refusing(400, body).post_cosignature(9, "line")
    assert type(caught.value) is RemoteError and caught.value.code == "connect.failed"
    assert not unsafe(caught.value.message)


def test_the_servers_message_is_sanitized(refusing: Refuse) -> None:
    client = refusing(403, b'{"code": "log.unknown_witness", "message": "\\u001b]0;owned\\u0007"}')
    with pytest.raises(HostRefused) as caught:
        client.post_cosignature(9, "line")
    assert not unsafe(caught.value.message) and "\x1b" not in caught.value.diagnostics()


def test_a_roster_submission_is_answered_with_where_it_is_logged(refusing: Refuse) -> None:
    logged = refusing(200, b'{"index": 7, "duplicate": false}').submit_roster(SIGNED)
    assert (logged.index, logged.duplicate) == (7, False)
    refused = refusing(400, b'{"code": "roster.unsigned", "message": "mediator has not signed"}')
    with pytest.raises(HostRefused) as caught:
        refused.submit_roster(SIGNED)
    assert caught.value.code == "roster.unsigned"


@pytest.mark.parametrize("body", [b'{"index": true, "duplicate": false}', b'{"index": 7}',
                                  b"[7]", b'{"index": 7, "duplicate": false, "more": 1}'])
def test_a_roster_answer_of_another_shape_is_a_bad_answer(refusing: Refuse, body: bytes) -> None:
    with pytest.raises(RemoteError) as caught:
        refusing(200, body).submit_roster(SIGNED)
    assert caught.value.code == "log.bad_answer"
