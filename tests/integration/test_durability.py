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
from tests.conftest import ServerProcess, hotline_cli

pytestmark = pytest.mark.slow  # real servers or child processes in every test


async def connect(process: ServerProcess, name: str) -> Client:
    client = Client.for_profile(Profile.load(process.home, name))
    await client.connect(process.url)
    return client


async def test_sigkill_after_accepted_loses_nothing(server_process: ServerProcess) -> None:
    server_process.start()
    alice = await connect(server_process, "alice")
    sent: list[tuple[Envelope, dict[str, object]]] = []
    try:
        for n in range(10):  # one by one
            envelope = alice.envelope(channel="north-south", template="message",
                                      body={"text": f"sequential {n}"})
            sent.append((envelope, await alice.submit_envelope(envelope)))
        burst = [alice.envelope(channel="north-south", template="message",
                                body={"text": f"burst {n}"}) for n in range(40)]
        answers = await asyncio.gather(*(alice.submit_envelope(e) for e in burst))
        sent += list(zip(burst, answers, strict=True))
        server_process.kill()  # no shutdown, no flush: the process is gone
    finally:
        await alice.close()

    assert sorted(a.index for _, a in sent) == list(range(8, 8 + len(sent)))  # 0..7: roster
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
        assert alice.welcome.log_size == 8 + len(sent)
    finally:
        await alice.close()
    bob = await connect(server_process, "bob")
    try:
        assert bob.welcome.log_size == 8 + len(sent)  # the resend stored nothing
    finally:
        await bob.close()
