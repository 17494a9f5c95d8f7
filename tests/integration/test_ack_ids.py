"""Issue 11, defect 4: no member can pre-empt the id of another member's acknowledgement, and a
refused ack is never reported as done. Real server, real sockets, the real ``hotline ack``.

The attack: ack ids are deterministic, so alice can compute the id bob's 'understood' ack of her
drill will have and take it first with a message of her own. Before the fix bob's ack was then
refused as ``envelope.id_conflict``, ``hotline ack`` said "already acknowledged" and exited 0,
and the server logged south as overdue.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hotline.client.connection import Client
from hotline.client.sealer import keys_of, readers_for, sealed
from hotline.envelope import AckKind, Envelope, Kind, ack_id, new_envelope_id
from hotline.errors import ProtocolViolation
from tests.conftest import Running, hotline_cli, running_server
from tests.integration.test_norms import add_drill_agreement, logged, next_entry

CHANNEL = "north-south"
WAIT = 10  # seconds: a safety net against hangs, never a synchronisation


class FrozenClock:
    """The server's clock, standing still until the test moves it (a one-second ack deadline
    must not pass while a `hotline ack` process starts)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def serving(home: Path, clock: FrozenClock) -> AsyncIterator[Running]:
    async with running_server(home, clock, HOTLINE_PROTOCOLS_DEADLINE_SWEEP="0.05") as running:
        yield running


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(hotline_cli, home, *args)


async def message_with_id(client: Client, text: str, id: str) -> Envelope:
    """A ``message`` of ``client``'s under an id of its choosing, its text sealed to the
    parties' liaisons as ``Client.send`` seals it (the server refuses it in clear)."""
    template = client.templates.resolve(client.roster.agreements[CHANNEL], "message")
    envelope = client.envelope(channel=CHANNEL, template=template.id, body={"text": text}, id=id)
    readers = readers_for(client.roster, envelope, template)
    await client.prove_logged(keys_of(readers), client.log_key, timeout=WAIT)
    return sealed(envelope, readers)[0]


@pytest.mark.slow
async def test_a_squatted_ack_id_does_not_silence_the_ack(home: Path) -> None:
    add_drill_agreement(home)  # 'drill': north's, an 'understood' ack due within one second
    clock = FrozenClock()
    async with serving(home, clock) as server:
        alice, carol = await server.client("alice"), await server.client("carol")
        drill = await alice.send(channel=CHANNEL, template="drill", body={"text": "drill"})
        # alice takes bob's future ack id first, with a message of her own
        bobs = ack_id(party="south", member="bob", reply_to=drill.id, ack=AckKind.UNDERSTOOD)
        squat = await alice.submit_envelope(await message_with_id(alice, "taking bob's ack id", bobs))
        assert squat.id == bobs  # message ids are the sender's own: logged, but harmless
        await carol.ack(await carol.fetch(drill.index), AckKind.UNDERSTOOD)

        acked = await cli(home, "ack", "--as", "bob", "--server", server.url,
                          "--index", str(drill.index))
        assert acked.returncode == 0, acked.stderr
        assert acked.stdout.startswith("accepted index=") and f"id={bobs} " in acked.stdout
        assert f"(understood ack of {drill.index})" in acked.stdout
        ack_index = int(acked.stdout.split("index=")[1].split()[0])
        # acking again is the same acknowledgement: reported with the index of the logged one
        again = await cli(home, "ack", "--as", "bob", "--server", server.url,
                          "--index", str(drill.index))
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith(f"message {drill.index} was already acknowledged "
                                       f"understood: ack index={ack_index} id={bobs}: proven, "
                                       "included in checkpoint ")

        # past the deadline: a second drill, which nobody acks, shows the sweep ran after both
        unanswered = await alice.send(channel=CHANNEL, template="drill", body={"text": "drill 2"})
        clock.now += timedelta(seconds=2)
        overdue = await next_entry(alice, "overdue")
        assert overdue["entry"] == unanswered.index
    entries = logged(home)
    assert entries[ack_index]["kind"] == "envelope" and entries[ack_index]["party"] == "south"
    assert entries[ack_index]["envelope"]["kind"] == "ack"
    assert entries[ack_index]["envelope"]["reply_to"] == drill.id
    assert entries[squat.index]["envelope"]["kind"] == "message"
    assert [e["entry"] for e in entries if e["kind"] == "overdue"] == [unanswered.index]
    assert not [e for e in entries if e["kind"] == "rejected"]


async def test_an_ack_under_any_other_id_is_refused(home: Path) -> None:
    clock = FrozenClock()
    async with serving(home, clock) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        sent = await alice.send(channel=CHANNEL, template="message", body={"text": "hello"})
        message = await bob.fetch(sent.index)
        own = ack_id(party="south", member="bob", reply_to=sent.id, ack=AckKind.RECEIVED)
        forged = [new_envelope_id(b"\x05" * 16),  # any id of bob's choosing
                  ack_id(party="north", member="alice", reply_to=sent.id, ack=AckKind.RECEIVED),
                  ack_id(party="south", member="bob", reply_to=sent.id, ack=AckKind.UNDERSTOOD)]
        for ident in forged:
            with pytest.raises(ProtocolViolation) as refused:
                await bob.submit_envelope(bob.envelope(
                    channel=CHANNEL, template="message", kind=Kind.ACK, body={"ack": "received"},
                    precedence=message.envelope.precedence, reply_to=sent.id, id=ident))
            assert refused.value.code == "envelope.invalid"
            assert f"must have id {own}" in refused.value.message
        # alice cannot take bob's ack id with an ack of her own either
        with pytest.raises(ProtocolViolation) as refused:
            await alice.submit_envelope(alice.envelope(
                channel=CHANNEL, template="message", kind=Kind.ACK, body={"ack": "received"},
                reply_to=sent.id, id=own))
        assert refused.value.code == "envelope.invalid"
        assert (await bob.ack(message, AckKind.RECEIVED)).id == own
        # once bob's ack is logged, an ack claiming to be his, sent by alice, is not "the same
        # ack": it is refused, and tells her nothing about his
        posing = Envelope.build(id=own, kind=Kind.ACK, channel=CHANNEL, sender="bob",
                                template="message", precedence=message.envelope.precedence,
                                created=datetime.now(UTC), reply_to=sent.id,
                                body={"ack": "received"})
        with pytest.raises(ProtocolViolation) as refused:
            await alice.submit_envelope(posing)
        assert refused.value.code == "auth.sender_mismatch"


async def test_a_refused_ack_is_an_error(home: Path) -> None:
    """`hotline ack` of an entry that is no message (here: an ack) is refused by the server: it
    says so and exits 1, never 'acknowledged'."""
    clock = FrozenClock()
    async with serving(home, clock) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        sent = await alice.send(channel=CHANNEL, template="message", body={"text": "hello"})
        acked = await bob.ack(await bob.fetch(sent.index), AckKind.RECEIVED)
        result = await cli(home, "ack", "--as", "alice", "--server", server.url,
                           "--index", str(acked.index))
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    assert result.stderr.startswith("error: ack.unknown_ref: "), result.stderr


async def test_other_content_under_a_logged_id_is_still_a_conflict(home: Path) -> None:
    """Only an ack sent again is 'the same' by its id; a message is the same only byte for byte."""
    clock = FrozenClock()
    async with serving(home, clock) as server:
        alice = await server.client("alice")
        first = await message_with_id(alice, "first", new_envelope_id(os.urandom(16)))
        accepted = await alice.submit_envelope(first)
        again = await alice.submit_envelope(first)  # a resend after a lost `accepted`
        assert (again.index, again.is_duplicate) == (accepted.index, True)
        with pytest.raises(ProtocolViolation) as refused:
            await alice.submit_envelope(await message_with_id(alice, "other", first.id))
        assert refused.value.code == "envelope.id_conflict"
