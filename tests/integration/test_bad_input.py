"""Acceptance 4: every kind of bad input gets a typed error with a stable code. After welcome, a
bad frame never ends the session; any authentication failure always does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from hotline.canonical import dumps
from hotline.client.profile import Profile
from hotline.entries import RejectedEntry
from hotline.envelope import AckKind, Envelope, ack_id, new_envelope_id
from hotline.keys import SigningKey
from hotline.roster import Role, enrollment, revocation, sign_document
from hotline.store import Store, open_store
from hotline.wire.frames import Challenge, Frame, encode
from hotline.wire.session import ClientSession
from tests.conftest import Running, running_server
from tests.integration.test_exchange import post_roster

WAIT = 10


async def recv(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await ws.recv(decode=True))
    return frame


class Raw:
    """A hand-driven connection: the test writes frames, good or bad, itself."""

    def __init__(self, ws: ClientConnection, key: SigningKey, origin: str) -> None:
        self.ws, self.key, self.origin = ws, key, origin
        self.session = ClientSession(key=key, origin=origin)

    async def challenge(self) -> Challenge:
        first = self.session.receive(await self.ws.recv())
        assert isinstance(first, Challenge)
        return first

    async def login(self) -> dict[str, Any]:
        challenge = await self.challenge()
        await self.ws.send(encode(self.session.auth_frame(challenge, now=datetime.now(UTC))))
        welcome = await recv(self.ws)
        assert welcome["type"] == "welcome", welcome
        assert (await recv(self.ws))["type"] == "roster"
        return welcome

    async def send(self, frame: dict[str, Any] | Frame | str) -> None:
        """Send a typed frame, or (a test's bad frames) a JSON object or text as is."""
        if isinstance(frame, dict):
            frame = dumps(frame)
        await self.ws.send(frame if isinstance(frame, str) else encode(frame))

    async def answer(self) -> dict[str, Any]:
        """Next frame that is not a live delivery or status."""
        while True:
            frame = await recv(self.ws)
            if frame["type"] not in ("deliver", "health"):
                return frame

    async def still_open(self) -> None:
        await self.send({"type": "ping", "data": "still there?"})
        assert await self.answer() == {"type": "pong", "data": "still there?"}

    async def closed_with(self, code: str) -> None:
        error = await recv(self.ws)
        assert (error["type"], error["code"]) == ("error", code), error
        with pytest.raises(ConnectionClosed):
            await self.ws.recv()
        assert self.ws.close_code == 4001

    def envelope(self, sender: str = "alice", channel: str = "north-south", **over: Any) -> Envelope:
        fields: dict[str, Any] = {"id": new_envelope_id(os.urandom(16)), "kind": "message",
                                  "channel": channel, "sender": sender, "template": "message",
                                  "precedence": "ROUTINE", "created": datetime.now(UTC),
                                  "body": {"text": "hello"}}
        fields.update(over)
        return Envelope.build(**fields)

    def submit(self, envelope: Envelope, key: SigningKey | None = None) -> dict[str, Any]:
        return {"type": "submit", "envelope": envelope.to_json(), "sig": envelope.sign(key or self.key)}


@pytest.fixture
async def raw(server: Running) -> AsyncIterator[Raw]:
    async with connect(server.url, proxy=None, compression=None, max_size=None) as ws:
        profile = Profile.load(server.home, "alice")
        yield Raw(ws, profile.signing_key(), profile.origin)


@pytest.fixture
async def alice(raw: Raw) -> Raw:
    await raw.login()
    return raw


# -- after welcome: typed error, session stays open ----------------------------------------------

@pytest.mark.parametrize(("frame", "code"), [
    ("{not json", "frame.malformed"),
    ('["a", "frame", "is", "an", "object"]', "frame.malformed"),
    ('{"type": "teleport"}', "frame.unknown_type"),
    ('{"type": "ping", "type": "submit"}', "frame.duplicate_key"),
    ('{"type": "resume", "channel": "north-south", "after": 1.5}', "frame.float"),
    ('{"type": "resume", "channel": "north-south", "after": 9007199254740993}', "frame.int_range"),
    ('{"type": "resume", "channel": "north-south"}', "frame.malformed"),
    ('{"type": "ping", "extra": 1}', "frame.malformed"),
])
async def test_malformed_frame_gets_typed_error_and_session_survives(alice: Raw, frame: str,
                                                                    code: str) -> None:
    await alice.send(frame)
    error = await alice.answer()
    assert (error["type"], error["code"]) == ("error", code), error
    await alice.still_open()


async def test_binary_frame_is_refused(alice: Raw) -> None:
    await alice.ws.send(b'{"type": "ping"}')
    assert (await alice.answer())["code"] == "frame.malformed"
    await alice.still_open()


async def test_too_large_frame(alice: Raw) -> None:
    frame = alice.submit(alice.envelope())
    frame["envelope"]["body"]["text"] = "x" * 200_000  # over max_frame_bytes (128 KiB)
    await alice.send(frame)
    assert (await alice.answer())["code"] == "frame.too_large"
    await alice.still_open()


async def test_bad_envelope_signature(alice: Raw) -> None:
    envelope = alice.envelope()
    frame = alice.submit(envelope)
    frame["envelope"]["body"]["text"] = "tampered after signing"
    await alice.send(frame)
    error = await alice.answer()
    assert (error["code"], error["ref"]) == ("auth.bad_signature", envelope.id)
    await alice.still_open()


async def test_envelope_signed_by_another_key(alice: Raw) -> None:
    await alice.send(alice.submit(alice.envelope(), key=SigningKey.generate()))
    assert (await alice.answer())["code"] == "auth.wrong_key"
    await alice.still_open()


async def test_wrong_channel(alice: Raw) -> None:
    await alice.send(alice.submit(alice.envelope(channel="east-west")))
    assert (await alice.answer())["code"] == "channel.unknown"
    await alice.send({"type": "resume", "channel": "east-west", "after": -1})
    assert (await alice.answer())["code"] == "channel.unknown"
    await alice.still_open()


async def test_sender_other_than_the_session(alice: Raw) -> None:
    await alice.send(alice.submit(alice.envelope(sender="bob")))
    assert (await alice.answer())["code"] == "auth.sender_mismatch"
    await alice.still_open()


@pytest.mark.parametrize(("over", "code"), [
    ({"template": "no-such-template"}, "template.unknown"),
    ({"body": {"text": ""}}, "template.invalid"),
    ({"body": {"text": "hi", "colour": "red"}}, "template.invalid"),
    ({"body": {"text": "hi", "lang": "not a tag!"}}, "template.invalid"),
    ({"template": "heartbeat"}, "template.invalid"),
    ({"kind": "ack", "body": {"ack": "received"}, "reply_to": "A" * 22,
      "id": ack_id(party="north", member="alice", reply_to="A" * 22, ack=AckKind.RECEIVED)},
     "ack.unknown_ref"),
    ({"kind": "ack", "body": {"ack": "received"}, "reply_to": "A" * 22}, "envelope.invalid"),
    ({"kind": "heartbeat", "template": "heartbeat", "body": {}}, "norm.sender_not_allowed"),
])
async def test_refused_envelopes(alice: Raw, over: dict[str, Any], code: str) -> None:
    await alice.send(alice.submit(alice.envelope(**over)))
    assert (await alice.answer())["code"] == code
    await alice.still_open()


async def test_invalid_envelope_shape(alice: Raw) -> None:
    frame = alice.submit(alice.envelope())
    del frame["envelope"]["precedence"]
    await alice.send(frame)
    error = await alice.answer()
    assert error["code"] == "envelope.invalid" and "precedence" in error["message"]
    await alice.still_open()


async def test_envelope_from_the_future(alice: Raw) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    await alice.send(alice.submit(alice.envelope(created=later)))
    assert (await alice.answer())["code"] == "envelope.clock_skew"


async def test_auth_frame_after_welcome(alice: Raw) -> None:
    await alice.send({"type": "auth", "nonce": "x", "origin": "x", "key": {}, "client_time": "x",
                      "sig": {}})
    assert (await alice.answer())["code"] == "frame.out_of_order"
    await alice.still_open()


async def test_refusals_of_authenticated_senders_are_logged(server: Running, alice: Raw) -> None:
    await alice.send(alice.submit(alice.envelope(template="no-such-template")))
    assert (await alice.answer())["code"] == "template.unknown"
    async with _store(server.home) as store:
        last = (await store.entries(after=(await store.size()) - 2))[-1].entry
    assert isinstance(last, RejectedEntry)  # never the body: a refusal has no field for it
    assert (last.member, last.code, last.channel) == ("alice", "template.unknown", "north-south")


# -- before welcome: typed error, then the connection is closed ----------------------------------

async def test_frame_before_authentication(raw: Raw) -> None:
    await raw.challenge()
    await raw.send(raw.submit(raw.envelope()))
    await raw.closed_with("frame.out_of_order")


async def test_bad_auth_signature(raw: Raw) -> None:
    challenge = await raw.challenge()
    frame = msgspec.structs.replace(raw.session.auth_frame(challenge, now=datetime.now(UTC)),
                                    client_time="2000-01-01T00:00:00.000Z")  # not what was signed
    await raw.send(frame)
    await raw.closed_with("auth.bad_signature")


async def test_replayed_auth_nonce(server: Running, raw: Raw) -> None:
    """An auth frame captured on one connection is refused on another."""
    captured = raw.session.auth_frame(await raw.challenge(), now=datetime.now(UTC))
    async with connect(server.url, proxy=None, compression=None) as ws:
        other = Raw(ws, raw.key, raw.origin)
        await other.challenge()
        await other.send(captured)
        await other.closed_with("auth.bad_nonce")


async def test_auth_for_another_origin(raw: Raw) -> None:
    challenge = await raw.challenge()
    frame = raw.session.auth_frame(Challenge(nonce=challenge.nonce, origin="other.example", server_time=""),
                                   now=datetime.now(UTC))
    await raw.send(frame)
    await raw.closed_with("auth.wrong_origin")


async def test_auth_clock_skew(raw: Raw) -> None:
    challenge = await raw.challenge()
    await raw.send(raw.session.auth_frame(challenge, now=datetime.now(UTC) - timedelta(hours=1)))
    await raw.closed_with("auth.clock_skew")


async def test_malformed_frame_before_authentication(raw: Raw) -> None:
    await raw.challenge()
    await raw.send("{oops")
    await raw.closed_with("frame.malformed")


async def test_unenrolled_key(server: Running) -> None:
    async with connect(server.url, proxy=None, compression=None) as ws:
        stranger = Raw(ws, SigningKey.generate(), "hotline.test")
        challenge = await stranger.challenge()
        await stranger.send(stranger.session.auth_frame(challenge, now=datetime.now(UTC)))
        await stranger.closed_with("auth.unknown_key")


async def test_handshake_timeout(home: Path) -> None:
    async with running_server(home, HOTLINE_LIMITS_HANDSHAKE_TIMEOUT="0.2") as server, \
            connect(server.url, proxy=None, compression=None) as ws:
        raw = Raw(ws, SigningKey.generate(), "hotline.test")
        await raw.challenge()
        await raw.closed_with("auth.timeout")  # the test sends nothing: the server gives up


# -- roster: the operator cannot enroll anyone ---------------------------------------------------

async def test_enrollment_not_signed_by_the_party_authority_cannot_log_in(server: Running) -> None:
    intruder, operator_key = SigningKey.generate(), SigningKey.generate()
    now = datetime.now(UTC)
    doc = enrollment(party="north", member="mallory", role=Role.LIAISON, key=intruder.public_key,
                     not_before=now - timedelta(minutes=1), not_after=now + timedelta(days=1))
    status, answer = await post_roster(server, sign_document(doc, operator_key).to_json())
    assert (status, answer["code"]) == (400, "roster.bad_signature")
    async with connect(server.url, proxy=None, compression=None) as ws:
        raw = Raw(ws, intruder, "hotline.test")
        await raw.send(raw.session.auth_frame(await raw.challenge(), now=datetime.now(UTC)))
        await raw.closed_with("auth.unknown_key")


async def test_enrollment_file_forged_by_the_operator_is_not_imported(home: Path) -> None:
    intruder = SigningKey.generate()
    now = datetime.now(UTC)
    doc = enrollment(party="south", member="mallory", role=Role.LIAISON, key=intruder.public_key,
                     not_before=now - timedelta(minutes=1), not_after=now + timedelta(days=1))
    (home / "roster" / "50-enroll-mallory.json").write_text(
        json.dumps(sign_document(doc, SigningKey.generate()).to_json()))
    async with running_server(home) as server, connect(server.url, proxy=None) as ws:
        raw = Raw(ws, intruder, "hotline.test")
        await raw.send(raw.session.auth_frame(await raw.challenge(), now=datetime.now(UTC)))
        await raw.closed_with("auth.unknown_key")


async def test_revoked_member_cannot_log_in(server: Running) -> None:
    south = SigningKey.from_pem((server.home / "keys" / "authority-south.pem").read_bytes())
    bob = Profile.load(server.home, "bob")
    bob_client = await server.client("bob")  # logged in before the revocation
    doc = revocation(party="south", member="bob", key_id=bob.signing_key().key_id,
                     revoked_at=datetime.now(UTC) - timedelta(seconds=1))
    status, answer = await post_roster(server, sign_document(doc, south).to_json())
    assert status == 200, answer
    reason = await asyncio.wait_for(bob_client.closed, WAIT)  # the open session is ended too
    assert "code=4001" in reason
    async with connect(server.url, proxy=None, compression=None) as ws:
        raw = Raw(ws, bob.signing_key(), bob.origin)
        await raw.send(raw.session.auth_frame(await raw.challenge(), now=datetime.now(UTC)))
        await raw.closed_with("auth.revoked")


@contextlib.asynccontextmanager
async def _store(home: Path) -> AsyncIterator[Store]:
    """A second reader of the server's database file."""
    store = await open_store(home / "hotline.db")
    try:
        yield store
    finally:
        await store.close()
