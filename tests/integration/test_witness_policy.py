"""Defect 11: the witness policy. The server hears only the witnesses the agreements name (each
checked with the key its named authority enrolled, picked by the line's key name and key hash),
at most one cosignature per witness and checkpoint; and serving checkpoints never fails, whatever
the cosignatures table holds.

The attack as found: 100 enrolled agents each cosign one checkpoint. Then the same table, grown
further by hand in a stopped server's database, must still be served.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hotline.canonical import dumps
from hotline.client.profile import Profile
from hotline.errors import StoreError
from hotline.keyfiles import load_private_key
from hotline.keys import SigningKey
from hotline.roster import Role, enrollment, sign_document
from hotline.tlog import cosign, parse_note, verify_checkpoint
from hotline.tlog.note import MAX_SIGNATURES, NoteSignature
from tests.conftest import Running, hotline_cli, running_server, witness_all

pytestmark = pytest.mark.slow  # real servers or child processes in every test

FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
AGENTS = 100
WAIT = 10  # seconds: a safety net against hangs, never a synchronisation
NAMED = ["mediator-agent", "north-agent", "south-agent"]  # the demo agreement's witnesses


def url(server: Running, path: str) -> str:
    return server.url.replace("ws://", "http://").removesuffix("/v1/ws") + path


async def post(http: aiohttp.ClientSession, server: Running, path: str,
               body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(url(server, path), data=dumps(body)) as response:
        return response.status, await response.json()


async def get_text(http: aiohttp.ClientSession, server: Running, path: str) -> str:
    async with http.get(url(server, path)) as response:
        assert response.status == 200, await response.text()
        return await response.text()


def signers(note: str) -> list[str]:
    return [sig.name for sig in parse_note(note).signatures]


async def served_notes(http: aiohttp.ClientSession, server: Running) -> list[str]:
    """Every note the three public endpoints serve (each answering 200)."""
    latest = await get_text(http, server, "/v1/log/checkpoint")
    history = [h["note"] for h in json.loads(await get_text(http, server, "/v1/log/checkpoints"))]
    witnessed = [w["note"] for w in json.loads(await get_text(http, server, "/v1/log/witnessed"))]
    return [latest, *history, *witnessed]


def agents(home: Path) -> dict[str, SigningKey]:
    """North's authority enrolls 100 more agents: enrolled, valid, and named by no agreement.
    One of them is called south-agent (names are per party): north's, not south's witness."""
    return {f"agent-{n:03d}" if n else "south-agent": SigningKey.generate() for n in range(AGENTS)}


async def enroll(http: aiohttp.ClientSession, server: Running, home: Path,
                 keys: dict[str, SigningKey]) -> None:
    north = load_private_key(home / "keys" / "authority-north.pem")
    now = datetime.now(UTC)
    for name, key in keys.items():
        doc = enrollment(party="north", member=name, role=Role.AGENT, key=key.public_key,
                         not_before=now - timedelta(minutes=1), not_after=now + timedelta(days=1))
        status, answer = await post(http, server, "/v1/roster", sign_document(doc, north).to_json())
        assert status == 200, answer
    alice = await server.client("alice")  # then a checkpoint covers them all: alice's receipt
    accepted = await alice.send(channel="north-south", template="message", body={"text": "now"})
    await asyncio.wait_for(alice.receipt(accepted.index), WAIT)


async def audit(home: Path, server: Running, state: Path) -> str:
    result = await asyncio.to_thread(hotline_cli, home, "audit", "verify", "--as", "audrey",
                                     "--server", server.url, "--state", str(state))
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_only_named_witnesses_are_heard(home: Path, tmp_path: Path) -> None:
    keys = agents(home)
    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        await enroll(http, server, home, keys)
        note = await get_text(http, server, "/v1/log/checkpoint")
        log_key = Profile.load(home, "audrey").log_key
        assert log_key is not None
        size = verify_checkpoint(note, log_key).size
        body = parse_note(note).body
        stamp = int(datetime.now(UTC).timestamp())
        for name, key in keys.items():  # the attack: every enrolled agent cosigns
            status, answer = await post(http, server, "/v1/log/cosignature", {
                "size": size, "cosignature": cosign(body, name=name, key=key, timestamp=stamp)})
            assert (status, answer["code"]) == (400, "log.unknown_witness"), (name, answer)
        for notes in [await served_notes(http, server)]:
            assert all(signers(n) == ["hotline.test"] for n in notes)

        await witness_all(home, server.url)  # the three witnesses the agreement names
        witnessed = json.loads(await get_text(http, server, "/v1/log/witnessed"))
        assert [w["size"] for w in witnessed] == [size]
        # At most one cosignature per witness and checkpoint: a second one is a clean answer.
        north_agent = Profile.load(home, "north-agent").signing_key()
        # a second earlier than any the witness can have used (it signed after ``stamp``), so
        # the line differs from the witness's own (Ed25519 is deterministic)
        again = cosign(body, name="north-agent", key=north_agent, timestamp=stamp - 1)
        assert await post(http, server, "/v1/log/cosignature",
                          {"size": size, "cosignature": again}) == (200, {"added": False})
        for served in await served_notes(http, server):
            names = signers(served)
            assert names[0] == "hotline.test"
            if f"\n{size}\n" in served:
                assert sorted(names[1:]) == NAMED
                assert again.strip() not in served
        assert "witnessed: entries 0.." in await audit(home, server, tmp_path / "fresh.json")


async def test_serving_survives_a_flooded_cosignatures_table(home: Path, tmp_path: Path) -> None:
    """Rows written straight into the table of a stopped server (no policy ever checked them):
    more lines than a note may carry, unnamed agents' genuine cosignatures, garbage, copies of a
    named witness's line. Every endpoint still answers 200 with notes that parse, at most one
    line per named witness; the audit passes. A row cosigning a checkpoint the database never
    held is a database that went back or was edited: the server refuses to start on it."""
    keys = agents(home)
    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        await enroll(http, server, home, keys)
        await witness_all(home, server.url)
        note = await get_text(http, server, "/v1/log/checkpoint")
    size = int(parse_note(note).body.split("\n")[1])
    body = parse_note(note).body
    genuine = [sig.line() for sig in parse_note(note).signatures[1:]]
    assert len(genuine) == 3
    stamp = int(datetime.now(UTC).timestamp())
    rows = [(size, f"north/{name}", cosign(body, name=name, key=key, timestamp=stamp))
            for name, key in keys.items()]
    rows += [(size, f"junk-{n}", f"junk line {n}") for n in range(100)]
    rows += [(size, f"copy-{n}", genuine[n % 3]) for n in range(100)]
    db = sqlite3.connect(home / "hotline.db")
    try:
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f"DROP TRIGGER {trigger}")
        db.executemany("INSERT INTO cosignatures (size, witness, line) VALUES (?, ?, ?)", rows)
        db.commit()
        (count,) = db.execute("SELECT COUNT(*) FROM cosignatures WHERE size = ?", (size,)).fetchone()
        assert count > MAX_SIGNATURES
    finally:
        db.close()

    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        for served in await served_notes(http, server):
            names = signers(served)
            assert len(names) <= MAX_SIGNATURES and names[0] == "hotline.test"
            assert len(names) == len(set(names))
            if f"\n{size}\n" in served:
                assert sorted(names[1:]) == NAMED
                assert {NoteSignature.line(s) for s in parse_note(served).signatures[1:]} == set(genuine)
        stdout = await audit(home, server, tmp_path / "fresh.json")
        assert f"witnessed: entries 0..{size - 1} (checkpoint {size}), cosigned by all 3" in stdout

    db = sqlite3.connect(home / "hotline.db")
    try:
        db.execute("INSERT INTO cosignatures (size, witness, line) VALUES (?, ?, ?)",
                   (size + 1000, "north/north-agent", genuine[0]))
        db.commit()
    finally:
        db.close()
    with pytest.raises(StoreError) as refused:
        async with running_server(home, **FAST):
            pass
    assert refused.value.code == "store.inconsistent"
