"""Issue 11, defect 8: receivers check exactly what the auditor checks (one function), and a
refused entry is shown as refused while the replay goes on. Real server, real sockets, the real
``hotline listen``.

The attack: south's authority revokes bob's key *as of a moment before* two of his messages were
logged (a backdated revocation, e.g. once it learns the key was stolen). One of them bob dated
before that moment. Before the fix a receiver accepted that one (it checked the key only at the
envelope's own ``created``), refused the other with an exception, and ``hotline listen`` aborted
there, never showing what came after.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hotline.client.connection import Client, Delivered, Refused
from hotline.client.profile import Profile
from hotline.client.sealer import keys_of, readers_for, sealed
from hotline.entries import to_json
from hotline.envelope import Envelope, Kind, new_envelope_id
from hotline.keyfiles import load_private_key
from hotline.roster import revocation, sign_document
from hotline.times import format_time
from hotline.verification import EntryRefused
from tests.conftest import Running, hotline_cli, running_server
from tests.integration.test_exchange import deliver_frame, post_roster

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL

WAIT = 10  # seconds: a safety net against hangs, never a synchronisation
CHANNEL = "north-south"


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(hotline_cli, home, *args)


async def revoke(server: Running, home: Path, member: str, party: str, *, at: datetime) -> None:
    key = Profile.load(home, member).signing_key()
    authority = load_private_key(home / "keys" / f"authority-{party}.pem")
    doc = revocation(party=party, member=member, key_id=key.key_id, revoked_at=at)
    status, _ = await post_roster(server, sign_document(doc, authority).to_json())
    assert status == 200


async def replay(client: Client, after: int, count: int) -> list[Delivered | Refused | dict[str, Any]]:
    await client.resume(CHANNEL, after)
    got: list[Delivered | Refused | dict[str, Any]] = []

    async def collect() -> None:
        async for item in client.deliveries_verified():
            got.append(item)
            if len(got) == count:
                return
    await asyncio.wait_for(collect(), WAIT)
    return got


@pytest.mark.slow
async def test_a_backdated_revocation_shows_refused_entries_and_the_replay_goes_on(home: Path) -> None:
    async with running_server(home) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        revoked_at = datetime.now(UTC)
        # bob's envelope dated before the revocation (the server logs it after), then one after;
        # sealed as `Client.sealed_envelope` seals, but at the earlier date
        early = bob.envelope(channel=CHANNEL, template="message", body={"text": "dated earlier"})
        early = Envelope.build(id=early.id, kind=Kind.MESSAGE, channel=CHANNEL, sender="bob",
                               template="message", precedence="ROUTINE", body=early.body,
                               created=revoked_at - timedelta(seconds=2))
        readers = readers_for(bob.roster, early, bob.templates.resolve(bob.roster.agreements[CHANNEL],
                                                                       "message"))
        await bob.prove_logged(keys_of(readers), bob.log_key, timeout=WAIT)
        first = await bob.submit_envelope(sealed(early, readers)[0])
        second = await bob.send(channel=CHANNEL, template="message", body={"text": "dated later"})
        await revoke(server, home, "bob", "south", at=revoked_at)
        after = await alice.send(channel=CHANNEL, template="message", body={"text": "after it"})

        carol = await server.client("carol")  # the roster she builds holds the revocation
        items = await replay(carol, first.index - 1, 3)
        assert [type(i) for i in items] == [Refused, Refused, Delivered]
        assert [i.index for i in items if isinstance(i, Refused | Delivered)] == [
            first.index, second.index, after.index]
        for refused in items[:2]:
            assert isinstance(refused, Refused) and refused.code == "verify.failed"
            assert "of bob (south): revoked at " in refused.reason, refused.reason
        assert server.body_seen(carol, await carol.fetch(after.index)) == {"text": "after it"}

        text, as_json = await asyncio.gather(*(
            cli(home, "listen", "--as", "carol", "--server", server.url, "--after",
                str(first.index - 1), "--count", "3", "--no-ack", *extra)
            for extra in ((), ("--json",))))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 5, lines  # two refused, one verified with the host's line, its proof
    for line, index in zip(lines[:2], (first.index, second.index), strict=True):
        assert line.startswith(f'[{index}] REFUSED on "north-south": verify.failed: key '), line
        assert "of bob (south): revoked at " in line and "[did NOT verify: not shown]" in line
        assert "dated" not in line  # nothing of a refused entry is shown as the sender's word
    assert lines[2].startswith(f"[{after.index}] ") and "Text: after it " in lines[2]
    assert lines[2].endswith("[signature verified]")
    assert lines[3].startswith("  [host, unsigned] received ack owed by mediator, south, due ")
    assert lines[4].startswith(f"[{after.index}] proven in the log: included in checkpoint ")

    assert as_json.returncode == 0, as_json.stderr
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    proof = records.pop()
    assert (proof["index"], proof["proof"]) == (after.index, "included")
    assert proof["checkpoint"] > after.index
    assert [r["index"] for r in records] == [first.index, second.index, after.index]
    for record in records[:2]:
        assert {k: record[k] for k in ("channel", "verified", "refused", "code")} == {
            "channel": CHANNEL, "verified": False, "refused": True, "code": "verify.failed"}
        assert "revoked at" in record["reason"] and "body" not in record
    assert records[2]["verified"] is True and records[2]["body"] == {"text": "after it"}


def logged_as(entry: dict[str, Any], envelope: Envelope, signer: str, home: Path, *,
              party: str, time: datetime) -> dict[str, Any]:
    """``entry`` as a hostile host would deliver it: another envelope, signed with ``signer``'s
    real key, logged at ``time``."""
    key = Profile.load(home, signer).signing_key()
    return {**entry, "time": format_time(time), "party": party, "envelope": envelope.to_json(),
            "sig": envelope.sign(key)}


async def test_the_client_checks_what_the_auditor_checks(home: Path) -> None:
    """Entries a server never logs (it checks the key now and the sender's role), as a hostile
    host would deliver them: the client refuses both, with the same check as the auditor."""
    async with running_server(home) as server:
        alice, carol = await server.client("alice"), await server.client("carol")
        sent = await alice.send(channel=CHANNEL, template="message", body={"text": "genuine"})
        genuine = await carol.fetch(sent.index)
        revoked_at = datetime.now(UTC)
        await revoke(server, home, "bob", "south", at=revoked_at)
        carol = await server.client("carol")  # with the revocation in her roster

    def envelope(sender: str, created: datetime) -> Envelope:
        return Envelope.build(id=new_envelope_id(b"\x06" * 16), kind=Kind.MESSAGE, channel=CHANNEL,
                              sender=sender, template="message", precedence="FLASH",
                              created=created, body={"text": "stand down"})

    # bob's key signs a message dated before its revocation; the host logs it after
    bobs = logged_as(to_json(genuine.entry), envelope("bob", revoked_at - timedelta(seconds=5)), "bob", home,
                     party="south", time=revoked_at + timedelta(seconds=1))
    # north's agent signs a message (agents send heartbeats, echoes and acks)
    agents = logged_as(to_json(genuine.entry), envelope("north-agent", revoked_at), "north-agent", home,
                       party="north", time=revoked_at + timedelta(seconds=1))
    for forged, reason in ((bobs, "of bob (south): revoked at "),
                           (agents, "an agent may not send message envelopes")):
        try:
            carol.verify(deliver_frame(sent.index, forged))
        except EntryRefused as exc:
            assert exc.code == "verify.failed" and reason in exc.reason, exc.reason
        else:
            raise AssertionError(f"accepted: {forged['envelope']}")
    # the same envelope of bob's, logged before the revocation, is his
    honest = {**bobs, "time": format_time(revoked_at - timedelta(seconds=1))}
    assert carol.verify(deliver_frame(sent.index, honest)).envelope.sender == "bob"
