"""Acceptance 2: liaisons of different parties exchange signed messages and acks on north-south;
each delivered entry is verified by its receiver; a party outside the agreement is refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hotline.canonical import dumps
from hotline.client.connection import Client, Delivered
from hotline.client.profile import Profile
from hotline.envelope import AckKind, Kind
from hotline.errors import CryptoError, HotlineError
from hotline.httpauth import sign_request
from hotline.keyfiles import save_private_key
from hotline.keys import SigningKey
from hotline.roster import Role, enrollment, sign_document
from hotline.wire.frames import SERVER_TYPES, Deliver, decode_value, encode
from tests.conftest import DEMO_ROSTER, Running, running_server

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL

WAIT = 10  # seconds: a safety net against hangs, never a synchronisation


async def next_delivered(client: Client) -> Delivered:
    frame = await asyncio.wait_for(client.deliveries.get(), WAIT)
    return client.verify(frame)


async def test_message_and_acks_between_parties(server: Running) -> None:
    alice, bob = await server.client("alice"), await server.client("bob")
    assert alice.welcome.channels == ["north-south"]
    assert (bob.welcome.member, bob.welcome.party) == ("bob", "south")

    accepted = await alice.send(channel="north-south", template="message",
                                body={"text": "Request consultation at 0900Z", "lang": "en"},
                                precedence="IMMEDIATE")
    got = await next_delivered(bob)
    assert got.index == accepted.index
    assert got.envelope.sender == "alice" and got.entry.party == "north"
    assert server.body_seen(bob, got) == {"text": "Request consultation at 0900Z", "lang": "en"}
    assert got.envelope.precedence.value == "IMMEDIATE"

    received = await bob.ack(got, AckKind.RECEIVED)
    understood = await bob.ack(got, AckKind.UNDERSTOOD)
    acks = [await next_delivered(alice), await next_delivered(alice)]
    assert [a.index for a in acks] == [received.index, understood.index]
    assert all(a.envelope.kind is Kind.ACK and a.envelope.reply_to == got.envelope.id for a in acks)
    assert [a.envelope.body["ack"] for a in acks] == ["received", "understood"]
    assert all(a.envelope.sender == "bob" for a in acks)

    # Acking again (a new envelope: another ``created``) is the same acknowledgement, by its
    # derived id: answered with the ack logged first, and not stored again.
    again = await bob.ack(got, AckKind.RECEIVED)
    assert (again.index, again.id, again.is_duplicate) == (received.index,
                                                                     received.id, True)


def deliver_frame(index: int, entry: dict[str, Any]) -> Deliver:
    """``entry`` delivered as ``index``, as a client decodes it (a hostile host's, say)."""
    frame = decode_value({"type": "deliver", "index": index, "entry": entry}, allowed=SERVER_TYPES)
    assert isinstance(frame, Deliver)
    return frame


async def test_receiver_refuses_a_forged_delivery(server: Running) -> None:
    """The receiver checks signatures itself: an entry the host altered does not verify."""
    alice, bob = await server.client("alice"), await server.client("bob")
    await alice.send(channel="north-south", template="message", body={"text": "original"})
    frame = await asyncio.wait_for(bob.deliveries.get(), WAIT)
    assert isinstance(frame, Deliver)
    bob.verify(frame)

    def altered(change: Callable[[dict[str, Any]], object]) -> Deliver:
        entry = json.loads(encode(frame))["entry"]
        change(entry)
        return deliver_frame(frame.index, entry)

    def other_digest(entry: dict[str, Any]) -> None:  # the host swaps in another sealed text
        digests = entry["envelope"]["sealed"]["digests"]
        digests["text"] = ("B" if digests["text"][0] == "A" else "A") + digests["text"][1:]

    for change in (other_digest, lambda e: e["envelope"]["body"].update(lang="ru")):
        with pytest.raises(CryptoError) as info:
            bob.verify(altered(change))
        assert info.value.code == "verify.failed" and "signature does not verify" in info.value.message
    with pytest.raises(CryptoError):
        bob.verify(altered(lambda e: e.update(party="mediator")))


async def test_third_party_and_auditor_see_the_channel(server: Running) -> None:
    alice, carol, audrey = [await server.client(n) for n in ("alice", "carol", "audrey")]
    await alice.send(channel="north-south", template="message", body={"text": "to all parties"})
    assert server.body_seen(carol, await next_delivered(carol))["text"] == "to all parties"
    assert (await next_delivered(audrey)).envelope.sender == "alice"
    with pytest.raises(HotlineError) as info:  # auditors read, never send
        await audrey.send(channel="north-south", template="message", body={"text": "hi"})
    assert info.value.code == "norm.sender_not_allowed"


def pin_west(home: Path, profile: str, *, like: str, member: str | None = None
             ) -> tuple[SigningKey, SigningKey]:
    """The operator pins a new party 'west' (its authority key), and a member of west gets a
    key and a profile ``profile`` made from ``like``'s (as ``member``, by default the profile's
    name). Returns west's authority key and the member's key; nothing is enrolled yet."""
    west, key = SigningKey.generate(), SigningKey.generate()
    config = home / "hotline.toml"
    config.write_text(config.read_text() + f'"west" = "{west.public_key.to_text()}"\n')
    save_private_key(home / "keys" / f"{profile}.pem", key)
    text = (home / "profiles" / f"{like}.toml").read_text()
    party = Profile.load(home, like).party
    (home / "profiles" / f"{profile}.toml").write_text(
        text.replace(f'member = "{like}"', f'member = "{member or profile}"')
        .replace(f'party = "{party}"', 'party = "west"')
        .replace(f"keys/{like}.pem", f"keys/{profile}.pem") + f'west = "{west.public_key.to_text()}"\n')
    return west, key


async def test_member_of_a_party_outside_the_agreement_is_refused(home: Path) -> None:
    """The operator pins a new party 'west', which enrolls walt: walt may log in, but no channel
    opens to him, because the agreement the parties signed does not name west."""
    west, walt_key = pin_west(home, "walt", like="alice")
    now = datetime.now(UTC)
    doc = enrollment(party="west", member="walt", role=Role.LIAISON, key=walt_key.public_key,
                     not_before=now - timedelta(minutes=1), not_after=now + timedelta(days=1))
    async with running_server(home) as server:
        status, answer = await post_roster(server, sign_document(doc, west).to_json())
        assert status == 200, answer
        walt = await server.client("walt")
        assert walt.welcome.channels == []
        with pytest.raises(HotlineError) as info:
            await walt.send(channel="north-south", template="message", body={"text": "let me in"})
        assert info.value.code == "channel.not_member"
        with pytest.raises(HotlineError) as info:
            await walt.resume("north-south", -1)
        assert info.value.code == "channel.not_member"


async def post_roster(server: Running, signed: dict[str, object]) -> tuple[int, dict[str, object]]:
    url = server.url.replace("ws://", "http://").replace("/v1/ws", "/v1/roster")
    async with aiohttp.ClientSession() as http, http.post(url, data=dumps(signed)) as response:
        return response.status, await response.json()


async def test_healthz(server: Running, store_engine: str) -> None:
    await (await server.client("alice")).send(channel="north-south", template="message",
                                               body={"text": "x"})
    url = server.url.replace("ws://", "http://").replace("/v1/ws", "/healthz")
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "storage": "ok", "log_size": DEMO_ROSTER + 1,
                                         "connections": 1, "store": {"engine": store_engine.replace(
                                             "postgres", "postgresql"), "leader": True}}


async def signed_get(server: Running, name: str, path: str, query: str = "") -> tuple[int, Any]:
    """GET ``path`` signed with ``name``'s key, as `hotline audit` does."""
    profile = Profile.load(server.home, name)
    header = sign_request(profile.signing_key(), method="GET", path=path, query=query,
                          origin=profile.origin, now=datetime.now(UTC))
    url = server.url.replace("ws://", "http://").replace("/v1/ws", path) + (f"?{query}" if query else "")
    async with aiohttp.ClientSession() as http, \
            http.get(url, headers={"Authorization": header}) as response:
        return response.status, await response.json()


async def test_auditor_name_squatted_by_a_pinned_outsider(home: Path) -> None:
    """Defect 6: 'west', an authority the operator pinned but party to no channel, enrolls the
    name of north-south's auditor (audrey, whom the agreement names with mediator's authority)
    before mediator does. West's audrey reads nothing; mediator's audrey still enrolls and reads."""
    west, squatter_key = pin_west(home, "west-audrey", like="audrey", member="audrey")
    # mediator's enrollment of audrey is held back: it arrives after west's
    (real_file,) = (home / "roster").glob("*-enroll-audrey.json")
    real = json.loads(real_file.read_text())
    real_file.unlink()
    now = datetime.now(UTC)
    squat = enrollment(party="west", member="audrey", role=Role.AUDITOR, key=squatter_key.public_key,
                       not_before=now - timedelta(minutes=1), not_after=now + timedelta(days=1))
    async with running_server(home) as server:
        status, answer = await post_roster(server, sign_document(squat, west).to_json())
        assert status == 200, answer  # west may enroll its own "audrey": names are per party
        alice = await server.client("alice")
        sent = await alice.send(channel="north-south", template="message", body={"text": "not for west"})

        squatter = await server.client("west-audrey")
        assert (squatter.welcome.party, squatter.welcome.channels) == ("west", [])
        with pytest.raises(HotlineError) as info:
            await squatter.resume("north-south", -1)
        assert info.value.code == "channel.not_member"
        size = squatter.welcome.log_size
        status, records = await signed_get(server, "west-audrey", "/v1/log/entries", f"start=0&end={size}")
        assert status == 200
        assert not [r for r in records if "entry" in r and r["entry"].get("channel") == "north-south"]
        assert any("hash" in r for r in records)  # the channel's entries: leaf hashes only
        status, refusal = await signed_get(server, "west-audrey", "/v1/channels/north-south/health")
        assert (status, refusal["code"]) == (403, "channel.not_member")

        status, answer = await post_roster(server, real)
        assert status == 200, answer  # the real auditor is not blocked by the squatter
        audrey = await server.client("audrey")
        assert (audrey.welcome.party, audrey.welcome.channels) == ("mediator", ["north-south"])
        status, records = await signed_get(server, "audrey", "/v1/log/entries", f"start=0&end={size}")
        assert status == 200 and all("entry" in r for r in records)
        assert any(r["entry"].get("envelope", {}).get("id") == sent.id for r in records)
        status, health = await signed_get(server, "audrey", "/v1/channels/north-south/health")
        assert status == 200 and health["channel"] == "north-south"
