"""Claims of SECURITY.md that no other test showed: what a party outside a channel cannot do over
the wire. Real server, real sockets, members' real keys, frames written by hand.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import aiohttp
from websockets.asyncio.client import connect

from hotline.canonical import dumps
from hotline.client.profile import Profile
from hotline.envelope import Envelope, new_envelope_id
from hotline.session import encode
from tests.conftest import Running
from tests.integration.test_bad_input import Raw, recv
from tests.integration.test_tlog import http_url, north_mediator_agreement


async def login_raw(server: Running, name: str) -> tuple[Raw, dict[str, Any]]:
    """A hand-driven session of ``name`` and its welcome."""
    profile = Profile.load(server.home, name)
    ws = await connect(server.url, proxy=None, compression=None, max_size=None)
    raw = Raw(ws, profile.signing_key(), profile.origin)
    return raw, await raw.login()


def envelope(sender: str, channel: str, text: str) -> Envelope:
    return Envelope.build(id=new_envelope_id(os.urandom(16)), kind="message", channel=channel,
                          sender=sender, template="message", precedence="ROUTINE",
                          created=datetime.now(UTC), body={"text": text})


async def test_a_party_not_on_a_channel_gets_none_of_its_messages_over_the_wire(
        server: Running) -> None:
    """North and mediator open north-mediator; bob (south) is connected while alice writes on it
    and then on north-south. Bob is delivered only the north-south message; fetching the other
    by index, resuming its channel and writing on it are each refused with a typed error."""
    async with aiohttp.ClientSession() as http, http.post(
            http_url(server, "/v1/roster"), data=dumps(north_mediator_agreement(server.home))) as r:
        assert r.status == 200, await r.text()
    bob, welcome = await login_raw(server, "bob")
    assert welcome["channels"] == ["north-south"]
    try:
        alice = await server.client("alice")
        private = (await alice.send(channel="north-mediator", template="message",
                                    body={"text": "north to mediator only"}))["index"]
        public = (await alice.send(channel="north-south", template="message",
                                   body={"text": "to both sides"}))["index"]
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["index"] != public:
            frame = await recv(bob.ws)
            assert "north to mediator only" not in encode(frame), frame
            if frame["type"] == "deliver":
                seen.append(frame)
        assert [f["index"] for f in seen] == [public]

        await bob.send({"type": "fetch", "index": private})
        assert (await bob.answer())["code"] == "log.no_entry"
        await bob.send({"type": "resume", "channel": "north-mediator", "after": -1})
        assert (await bob.answer())["code"] == "channel.not_member"
        await bob.send(bob.submit(envelope("bob", "north-mediator", "let me in")))
        assert (await bob.answer())["code"] == "channel.not_member"
        await bob.still_open()
    finally:
        await bob.ws.close()

