"""hotline.wire.session: the handshake's rules on both sides, and the request id the server
answers a refused frame with. Pure: frames in, typed frames or typed errors out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from hotline.canonical import canonical_bytes
from hotline.errors import AuthError, HotlineError, WireError
from hotline.keys import Domain, SigningKey
from hotline.wire import frames
from hotline.wire.frames import encode
from hotline.wire.session import (
    Authenticated,
    ClientSession,
    ClientState,
    ServerSession,
    ServerState,
)

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)
ORIGIN = "hotline.test"
KEY = SigningKey.from_seed(b"\x05" * 32)


def server() -> ServerSession:
    return ServerSession(origin=ORIGIN, nonce="nonce-1", now=NOW, clock_skew=timedelta(minutes=1),
                         max_frame_bytes=64 * 1024)


def client() -> ClientSession:
    return ClientSession(key=KEY, origin=ORIGIN)


def handshake() -> tuple[ServerSession, ClientSession]:
    s, c = server(), client()
    challenge = c.receive(encode(s.challenge()))
    assert isinstance(challenge, frames.Challenge) and c.state is ClientState.AUTHENTICATING
    event = s.receive(encode(c.auth_frame(challenge, now=NOW)), now=NOW)
    assert isinstance(event, Authenticated) and event.key.key_id == KEY.public_key.key_id
    welcome = c.receive(encode(s.welcome(member="alice", party="north", role="liaison",
                                         channels=["north-south"], log_size=3)))
    assert c.state is ClientState.READY and c.welcome == welcome
    assert s.state is ServerState.READY
    return s, c


def test_a_handshake_opens_both_sides() -> None:
    handshake()


def auth_code(text: str, session: ServerSession | None = None) -> str:
    with pytest.raises(AuthError) as refused:
        (session or server()).receive(text, now=NOW)
    return refused.value.code


def auth(**over: object) -> str:
    c = client()
    challenge = c.receive(encode(server().challenge()))
    assert isinstance(challenge, frames.Challenge)
    frame = c.auth_frame(challenge, now=NOW)
    return encode(msgspec.structs.replace(frame, **over))


def test_each_handshake_refusal_has_its_code() -> None:
    assert auth_code(encode(frames.Ping())) == "frame.out_of_order"
    assert auth_code("{not json") == "frame.malformed"
    assert auth_code(auth(nonce="another")) == "auth.bad_nonce"
    assert auth_code(auth(origin="other.example")) == "auth.wrong_origin"
    assert auth_code(auth(client_time="2026-12-01T08:00:00.001Z")) == "auth.bad_signature"
    late = client()
    challenge = late.receive(encode(server().challenge()))
    assert isinstance(challenge, frames.Challenge)
    assert auth_code(encode(late.auth_frame(challenge, now=NOW + timedelta(hours=1)))) == "auth.clock_skew"


def test_the_auth_signature_covers_the_frames_four_fields_as_rfc_8785() -> None:
    c = client()
    challenge = c.receive(encode(server().challenge()))
    assert isinstance(challenge, frames.Challenge)
    frame = c.auth_frame(challenge, now=NOW)
    as_sent = json.loads(encode(frame))
    signed = {k: as_sent[k] for k in ("nonce", "origin", "key", "client_time")}
    assert frame.payload().signed_bytes() == canonical_bytes(signed)
    KEY.public_key.verify(domain=Domain.AUTH, obj=signed, signature=as_sent["sig"])


def test_an_auth_key_or_signature_not_of_their_form_is_refused_as_a_frame() -> None:
    sent = json.loads(auth())
    for field in ("key", "sig"):
        text = json.dumps({**sent, field: {**sent[field], "alg": 1}})
        assert auth_code(text) == "frame.malformed"


def test_nothing_but_welcome_follows_authentication() -> None:
    s = server()
    c = client()
    challenge = c.receive(encode(s.challenge()))
    assert isinstance(challenge, frames.Challenge)
    s.receive(encode(c.auth_frame(challenge, now=NOW)), now=NOW)
    assert auth_code(encode(frames.Ping()), s) == "frame.out_of_order"
    with pytest.raises(HotlineError):
        server().welcome(member="a", party="p", role="liaison", channels=[], log_size=0)


def test_once_ready_a_bad_frame_is_a_wire_error_and_auth_is_out_of_order() -> None:
    s, _ = handshake()
    with pytest.raises(WireError) as refused:
        s.receive(auth(), now=NOW)
    assert refused.value.code == "frame.out_of_order"
    with pytest.raises(WireError):
        s.receive(b"{}", now=NOW)
    assert s.receive(encode(frames.Fetch(index=2, req=4)), now=NOW) == frames.Fetch(index=2, req=4)


def test_the_server_answers_a_refused_frame_with_its_request_id() -> None:
    s, _ = handshake()
    for text, req in [('{"type": "fetch", "index": -1, "req": 9}', 9),
                      ('{"type": "fetch", "index": 1, "req": 9, "extra": 0}', 9),
                      ('{"type": "fetch", "index": -1}', msgspec.UNSET), ("{not json", msgspec.UNSET)]:
        with pytest.raises(WireError) as refused:
            s.receive(text, now=NOW)
        answer = json.loads(encode(frames.error(refused.value, req=s.req)))
        assert answer.get("req", msgspec.UNSET) == req
    s.receive(encode(frames.Ping(req=10)), now=NOW)
    assert s.req == 10
    s.receive(encode(frames.Ping()), now=NOW)
    assert s.req is msgspec.UNSET


def test_the_client_refuses_the_handshake_out_of_order() -> None:
    with pytest.raises(AuthError) as refused:
        client().receive(encode(frames.Error(code="auth.unknown_key", message="who?")))
    assert refused.value.code == "auth.unknown_key"
    with pytest.raises(AuthError) as refused:
        client().receive(encode(frames.Pong()))
    assert refused.value.code == "frame.out_of_order"
    with pytest.raises(AuthError) as refused:
        client().receive(encode(frames.Challenge(nonce="n", origin="evil.example", server_time="")))
    assert refused.value.code == "auth.wrong_origin"
    c = client()
    c.receive(encode(server().challenge()))
    with pytest.raises(AuthError) as refused:
        c.receive(encode(frames.Pong()))
    assert refused.value.code == "frame.out_of_order"
    _, ready = handshake()
    with pytest.raises(WireError) as late:
        ready.receive(encode(server().challenge()))
    assert late.value.code == "frame.out_of_order"


def test_request_ids_are_new_on_each_request() -> None:
    c = client()
    assert [c.next_req() for _ in range(3)] == [1, 2, 3]
