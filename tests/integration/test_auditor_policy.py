"""Acceptance 3: the auditor's witness policy fails closed. An auditor with no saved state
compares the log against the latest checkpoint each witness cosigned and requires the witnesses
the agreement names (all of them by default): it refuses a rolled-back log, a split view and a
log a named witness never cosigned, and its verdict ends at the checkpoint the witnesses cosigned.

The host is hostile and holds the disk (and the log key): it swaps in an older copy of its
database, or rewrites an entry and re-signs every checkpoint after it. Another slice keeps the
server's latest checkpoint in a file beside the database so that it refuses such a start; the
hostile host removes or replaces that file too (every ``hotline.db*`` file it does not restore).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hotline.agent.witness import WitnessAlarm
from hotline.canonical import canonical_bytes
from hotline.client.connection import Client
from hotline.keyfiles import load_private_key
from hotline.store.checkpointfile import SavedCheckpoint, checkpoint_path, write_checkpoint_file
from hotline.times import format_time, parse_time
from hotline.tlog import Checkpoint, Frontier, leaf_hash, sign_checkpoint
from tests.conftest import (
    WITNESSES,
    Running,
    copy_database,
    hotline_cli,
    running_server,
    witness_all,
    witness_once,
)

WAIT = 10  # seconds: a safety net against hangs, never a synchronisation
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
ORIGIN = "hotline.test"
ALL = "mediator/mediator-agent, north/north-agent, south/south-agent"
NOT_COSIGNED = ("; a log rolled back or forked behind the witnesses' backs shows no cosignature "
                "of theirs, or they have not run yet")


async def send(client: Client, count: int) -> int:
    """``count`` messages; returns the log size once a signed checkpoint covers them."""
    last = -1
    for n in range(count):
        last = (await client.send(channel="north-south", template="message",
                                  body={"text": f"message {n}"})).index
    await asyncio.wait_for(client.receipt(last), WAIT)
    return last + 1


async def audit(home: Path, server: Running | None, tmp_path: Path,
                *extra: str) -> subprocess.CompletedProcess[str]:
    """`hotline audit verify` as audrey with no saved state (a fresh state file each time)."""
    fresh = tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}.json"
    source = ("--server", server.url) if server is not None else ()
    return await asyncio.to_thread(hotline_cli, home, "audit", "verify", "--as", "audrey",
                                   *source, "--state", str(fresh), *extra)


def failed(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.startswith("FAILED: "), result.stderr
    return result.stderr.strip()


def ok(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line.strip() for line in result.stdout.splitlines()]


@pytest.mark.slow
async def test_fresh_auditor_refuses_a_rolled_back_log(home: Path, tmp_path: Path) -> None:
    older = tmp_path / "older"
    older.mkdir()
    async with running_server(home, **FAST) as server:
        old_size = await send(await server.client("alice"), 2)
    copy_database(home, older)  # the host keeps a copy of the database as it is now
    async with running_server(home, **FAST) as server:
        size = await send(await server.client("alice"), 3)
        await witness_all(home, server.url)  # every witness cosigns the larger log
        assert f"witnessed: entries 0..{size - 1} (checkpoint {size}), cosigned by all 3 named " \
               "witnesses" in ok(await audit(home, server, tmp_path))

    copy_database(older, home)  # ... and swaps it back in: the log goes back to old_size
    async with running_server(home, **FAST) as server:
        for name in WITNESSES:  # the witnesses will not cosign the smaller log
            with pytest.raises(WitnessAlarm, match="rollback"):
                await asyncio.to_thread(witness_once, home, server.url, name)
        assert failed(await audit(home, server, tmp_path)) == (
            f"FAILED: no checkpoint is cosigned by all 3 named witnesses: {ALL} cosigned none"
            + NOT_COSIGNED)
        # The host lets the rolled-back log grow past what the witnesses saw: still refused.
        grown = await send(await server.client("alice"), size - old_size + 1)
        assert grown > size
        for name in WITNESSES:
            with pytest.raises(WitnessAlarm, match="inconsistent"):
                await asyncio.to_thread(witness_once, home, server.url, name)
        assert failed(await audit(home, server, tmp_path)) == (
            f"FAILED: no checkpoint is cosigned by all 3 named witnesses: {ALL} cosigned none"
            + NOT_COSIGNED)


def rewrite_history(home: Path, index: int) -> None:
    """The host moves the last entry's log time by a millisecond (no sender signs it) and, with
    the log key it holds, re-signs every checkpoint after it over the new tree, and the record
    of the latest one beside the database; the cosignature rows stay. The server rebuilds its
    tree from the entries at the next start."""
    key = load_private_key(home / "keys" / "log.pem")
    db = sqlite3.connect(home / "hotline.db", isolation_level=None)
    try:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f"DROP TRIGGER {name}")
        db.execute("BEGIN")
        (leaf,) = db.execute("SELECT leaf FROM entries WHERE idx = ?", (index,)).fetchone()
        entry: dict[str, Any] = json.loads(leaf)
        entry["time"] = format_time(parse_time(entry["time"]) + timedelta(milliseconds=1))
        db.execute("UPDATE entries SET leaf = ? WHERE idx = ?", (canonical_bytes(entry), index))
        roots, frontier = {}, Frontier()
        for (stored,) in db.execute("SELECT leaf FROM entries ORDER BY idx").fetchall():
            frontier.append(leaf_hash(bytes(stored)))
            roots[frontier.size] = frontier.root()
        for (size,) in db.execute("SELECT size FROM checkpoints WHERE size > ?", (index,)).fetchall():
            db.execute("UPDATE checkpoints SET note = ? WHERE size = ?",
                       (sign_checkpoint(Checkpoint(ORIGIN, size, roots[size]), key), size))
        db.execute("DELETE FROM nodes WHERE ((idx + 1) << level) > ?", (index,))
        latest = db.execute("SELECT size, time, note FROM checkpoints ORDER BY size DESC "
                            "LIMIT 1").fetchone()
        db.execute("COMMIT")
    finally:
        db.close()
    # and the record of the latest checkpoint the server keeps beside the database, re-signed too
    write_checkpoint_file(checkpoint_path(home / "hotline.db"), SavedCheckpoint(*latest))


async def test_fresh_auditor_refuses_a_split_view(home: Path, tmp_path: Path) -> None:
    async with running_server(home, **FAST) as server:
        size = await send(await server.client("alice"), 3)
        await witness_all(home, server.url)
    rewrite_history(home, size - 1)  # the witnesses cosigned another tree of this size
    async with running_server(home, **FAST) as server:
        message = failed(await audit(home, server, tmp_path))
    assert re.fullmatch(
        rf"FAILED: checkpoint {size} \(from the log\): the cosignature of "
        r"(mediator/mediator-agent|north/north-agent|south/south-agent) does not verify \(.+\): "
        r"that witness signed another checkpoint of this size \(a split view\), or the line is "
        r"forged", message), message


@pytest.mark.slow
async def test_fresh_auditor_refuses_a_missing_witness(home: Path, tmp_path: Path) -> None:
    async with running_server(home, **FAST) as server:
        size = await send(await server.client("alice"), 2)
        await witness_all(home, server.url, ("north-agent", "south-agent"))  # mediator's never runs
        assert failed(await audit(home, server, tmp_path)) == (
            "FAILED: no checkpoint is cosigned by all 3 named witnesses: mediator/mediator-agent "
            f"cosigned none (cosigned: north/north-agent up to {size}, south/south-agent up to "
            f"{size})" + NOT_COSIGNED)
        lines = ok(await audit(home, server, tmp_path, "--require-witnesses", "2"))
        assert lines[2] == (f"witnessed: entries 0..{size - 1} (checkpoint {size}), cosigned by 2 "
                            "of the 3 named witnesses")
        assert lines[3] == (f"witnesses (largest checkpoint cosigned): mediator/mediator-agent "
                            f"none, north/north-agent up to {size} (1 checkpoint), "
                            f"south/south-agent up to {size} (1 checkpoint)")
        assert failed(await audit(home, server, tmp_path, "--require-witnesses", "4")) == (
            f"FAILED: the policy requires 4 witnesses, but the agreements name only 3: {ALL}")
        unwitnessed = ok(await audit(home, server, tmp_path, "--require-witnesses", "0"))
        assert unwitnessed[2] == (f"witnessed: entries 0..{size - 1} (checkpoint {size}), no "
                                  "witness required (--require-witnesses 0): nothing shows "
                                  "others see this log")
        bad = await audit(home, server, tmp_path, "--require-witnesses", "most")
        assert bad.returncode == 2 and "give a number of witnesses" in bad.stderr


@pytest.mark.slow
async def test_verdict_ends_at_the_checkpoint_every_witness_cosigned(home: Path, tmp_path: Path) -> None:
    """A live log grows between the witnesses' rounds: the entries after the witnessed
    checkpoint are verified but reported as not yet cosigned; an export carries the witnessed
    checkpoints, so the same verdict holds offline."""
    export = tmp_path / "log.jsonl"
    async with running_server(home, **FAST) as server:
        alice = await server.client("alice")
        witnessed = await send(alice, 2)
        await witness_all(home, server.url)
        size = await send(alice, 3)
        live = ok(await audit(home, server, tmp_path))
        as_json = json.loads((await audit(home, server, tmp_path, "--json")).stdout)
        exported = await asyncio.to_thread(hotline_cli, home, "audit", "export", "--as", "audrey",
                                           "--server", server.url, "--out", str(export))
        assert exported.returncode == 0, exported.stderr
    assert live[0].startswith(f"OK: log {ORIGIN}: {size} entries verified")
    assert live[2] == (f"witnessed: entries 0..{witnessed - 1} (checkpoint {witnessed}), cosigned "
                       "by all 3 named witnesses")
    assert live[4] == (f"not yet cosigned by every witness: entries {witnessed}..{size - 1} "
                       f"({size - witnessed}; verified, but outside the witnessed range)")
    assert (as_json["ok"], as_json["size"], as_json["witnessed_size"], as_json["unwitnessed"],
            as_json["required_witnesses"]) == (True, size, witnessed, size - witnessed, 3)
    assert as_json["witnesses"] == {w: witnessed for w in ALL.split(", ")}
    records = [json.loads(line) for line in export.read_text().splitlines()]
    assert [r["size"] for r in records if r["type"] == "witnessed"] == [witnessed]
    # Offline, with no state and no server: the export's witnessed checkpoints give the verdict.
    assert ok(await audit(home, None, tmp_path, "--export", str(export))) == live
