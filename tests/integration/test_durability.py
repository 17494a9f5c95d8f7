"""Acceptance 3: the server is killed with SIGKILL right after `accepted` and restarted: every
accepted envelope is there, `listen --after` replays them in order, and a resend of the same id
is answered with the original index, never stored twice."""

from __future__ import annotations

import asyncio
import json

import pytest

from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.envelope import Envelope
from tests.conftest import DEMO_ROSTER, ServerProcess, hotline_cli

pytestmark = pytest.mark.slow  # real servers or child processes in every test


async def connect(process: ServerProcess, name: str) -> Client:
    client = Client.for_profile(Profile.load(process.home, name))
    await client.connect(process.url)
    return client


async def message(client: Client, text: str) -> Envelope:
    """A message of ``text``, sealed as `Client.send` seals it, not yet sent."""
    template = client.templates.resolve(client.roster.agreements["north-south"], "message")
    return await client.sealed_envelope(channel="north-south", template=template,
                                        body={"text": text}, log_key=client.log_key)


async def test_sigkill_after_accepted_loses_nothing(server_process: ServerProcess) -> None:
    server_process.start()
    alice = await connect(server_process, "alice")
    sent: list[tuple[Envelope, dict[str, object]]] = []
    try:
        for n in range(10):  # one by one
            envelope = await message(alice, f"sequential {n}")
            sent.append((envelope, await alice.submit_envelope(envelope)))
        burst = [await message(alice, f"burst {n}") for n in range(40)]
        answers = await asyncio.gather(*(alice.submit_envelope(e) for e in burst))
        sent += list(zip(burst, answers, strict=True))
        server_process.kill()  # no shutdown, no flush: the process is gone
    finally:
        await alice.close()

    # entries 0..DEMO_ROSTER - 1: the roster
    assert sorted(a.index for _, a in sent) == list(range(DEMO_ROSTER, DEMO_ROSTER + len(sent)))
    server_process.start()
    result = await asyncio.to_thread(
        hotline_cli, server_process.home, "listen", "--as", "bob", "--server", server_process.url,
        "--after", "-1", "--count", str(len(sent)), "--json", "--no-ack")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    lines = [x for x in records if "proof" not in x]
    proven = {x["index"] for x in records if x.get("proof") == "included"}
    by_index = sorted(sent, key=lambda pair: pair[1].index)
    assert proven == {a.index for _, a in sent}  # each in the log after the restart too
    assert [(x["index"], x["id"]) for x in lines] == [(a.index, e.id) for e, a in by_index]
    assert all(x["verified"] and x["sender"] == "alice" for x in lines)

    alice = await connect(server_process, "alice")
    try:
        envelope, original = sent[3]
        again = await alice.submit_envelope(envelope)  # same id, same signature
        assert (again.index, again.is_duplicate) == (original.index, True)
        assert alice.welcome.log_size == DEMO_ROSTER + len(sent)
    finally:
        await alice.close()
    bob = await connect(server_process, "bob")
    try:
        assert bob.welcome.log_size == DEMO_ROSTER + len(sent)  # the resend stored nothing
    finally:
        await bob.close()
