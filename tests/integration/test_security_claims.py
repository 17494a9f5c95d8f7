"""Claims of SECURITY.md that no other test showed: what a party outside a channel cannot do over
the wire, and two things a hostile host can do today (known gaps, performed so that their extent
is evidence, not opinion). Real server, real sockets, members' real keys.

A gap test asserts the attack succeeds. When a change closes the gap it fails: then turn it into
a test that the attack is refused, and move its claim in SECURITY.md from *Can* to *Cannot*.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from hotline.canonical import dumps
from hotline.client.profile import Profile
from hotline.envelope import Envelope, new_envelope_id
from tests.conftest import Running, running_server, witness_all
from tests.hostile_relay import Frame, hostile_relay
from tests.integration.test_attack_client import FAST, cli, delivered, listen, sent
from tests.integration.test_bad_input import Raw, recv
from tests.integration.test_tamper import (
    attacker_db,
    fabricated_rejection,
    host_passes_server_checks,
    insert_entry,
)
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
    try:
        assert welcome["channels"] == ["north-south"]
        alice = await server.client("alice")
        private = (await alice.send(channel="north-mediator", template="message",
                                    body={"text": "north to mediator only"})).index
        public = (await alice.send(channel="north-south", template="message",
                                   body={"text": "to both sides"})).index
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["index"] != public:
            frame = await recv(bob.ws)
            assert "north to mediator only" not in dumps(frame), frame
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



@pytest.mark.slow
async def test_a_host_can_withhold_a_delivery_and_listen_does_not_notice(home: Path) -> None:
    """Known gap: the host leaves one of three messages out of bob's stream. `listen` shows the
    other two, verified and proven, and reports no problem: log indexes count every channel, so
    a missing one is no gap to a member."""
    async with running_server(home, **FAST) as server:
        first, withheld, last = await sent(await server.client("alice"), "one", "two", "three")

        def down(frame: Frame) -> list[Frame | str]:
            return [] if delivered(frame, withheld) else [frame]

        async with hostile_relay(server.url, down=down) as relay:
            result = await cli(home, *listen(relay.url, "--after", str(first - 1), "--count", "2"))
    assert result.returncode == 0, result.stderr
    assert f"[{first}] proven in the log" in result.stdout, result.stdout
    assert f"[{last}] proven in the log" in result.stdout, result.stdout
    assert "Text: two " not in result.stdout and "HOST PROBLEM" not in result.stdout, result.stdout


@pytest.mark.slow
async def test_a_host_can_log_a_refusal_nobody_made_and_the_audit_passes(home: Path) -> None:
    """Known gap: `rejected` entries carry no member's signature. The host appends one blaming
    bob for an attempt he never made, with the log key its server holds; the witnesses cosign
    it and `hotline audit verify` passes, counting it."""
    async with running_server(home, **FAST) as server:
        await (await server.client("alice")).send(channel="north-south", template="message",
                                                  body={"text": "real"})
    with attacker_db(home) as db:
        size, time = db.execute("SELECT COUNT(*), MAX(time) FROM entries").fetchone()
        insert_entry(db, fabricated_rejection(size, time))
    host_passes_server_checks(home)
    async with running_server(home, **FAST) as server:  # it signs a checkpoint covering the entry
        await witness_all(home, server.url)
        verified = await cli(home, "audit", "verify", "--as", "audrey", "--server", server.url)
    assert verified.returncode == 0, verified.stderr
    assert "rejected attempts 1, " in verified.stdout, verified.stdout
    assert f"witnessed: entries 0..{size} (checkpoint {size + 1})" in verified.stdout, verified.stdout
