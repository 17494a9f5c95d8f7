"""Issue 11, defects 9, 10, 13 and 14: the log never goes back, rows the server never wrote are
refused, large log reads neither exhaust the server nor stall its members, and the HTTP API and
the files keep their small promises.

Each attack is done the way the issue describes it, on a real server (in this process, or
``hotline serve`` in a child process where it must be killed or must refuse to start) over real
sockets, with real SQLite files: a truncated WAL, a damaged page, a one-byte edit of a leaf, a row
appended with plain ``sqlite3``, eight concurrent large reads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hotline.canonical import canonical_bytes
from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.httpauth import sign_request
from hotline.store.checkpointfile import checkpoint_path, read_checkpoint_file
from hotline.tlog import Frontier, leaf_hash
from tests.conftest import (
    DEMO_ROSTER,
    Running,
    ServerProcess,
    body_seen,
    copy_database,
    hotline_cli,
    running_server,
    witness_all,
)

WAIT = 30  # seconds: a safety net against hangs, never a synchronisation
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
ORIGIN = "hotline.test"


# -- helpers ----------------------------------------------------------------------------------------

def database(home: Path) -> Path:
    return home / "hotline.db"


def refused_start(home: Path, **env: str) -> str:
    """``hotline serve`` on a database it must refuse: it exits 1 with exactly one line
    ``error: CODE: message`` and no traceback; returns that line."""
    result = subprocess.run([sys.executable, "-m", "hotline.cli", "--home", str(home), "serve"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "HOTLINE_SERVER_PORT": "0", **env})
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "listening on" not in result.stdout, result.stdout
    assert "Traceback" not in result.stderr and "KeyError" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


async def connect(url: str, home: Path, name: str) -> Client:
    client = Client.for_profile(Profile.load(home, name))
    await client.connect(url)
    return client


def http_base(url: str) -> str:
    return url.replace("ws://", "http://").removesuffix("/v1/ws")


def signed_headers(home: Path, name: str, path: str, query: str) -> dict[str, str]:
    key = Profile.load(home, name).signing_key()
    return {"Authorization": sign_request(key, method="GET", path=path, query=query,
                                          origin=ORIGIN, now=datetime.now(UTC))}


async def get(http: aiohttp.ClientSession, url: str, path: str, query: str = "",
              headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with http.get(f"{http_base(url)}{path}" + (f"?{query}" if query else ""),
                        headers=headers or {}) as response:
        return response.status, await response.read()


async def entries(http: aiohttp.ClientSession, url: str, home: Path, start: int,
                  end: int) -> tuple[int, bytes]:
    query = f"start={start}&end={end}"
    return await get(http, url, "/v1/log/entries", query,
                     signed_headers(home, "audrey", "/v1/log/entries", query))


async def send_messages(client: Client, count: int, text: str = "message") -> list[int]:
    indexes = []
    for n in range(count):
        accepted = await client.send(channel="north-south", template="message",
                                     body={"text": f"{text} {n}"})
        indexes.append(int(accepted.index))
    return indexes


@pytest.fixture
def umask() -> Iterator[None]:
    """The usual umask (022), under which SQLite would create world-readable files."""
    old = os.umask(0o022)
    try:
        yield None
    finally:
        os.umask(old)


# -- defect 9: the log never goes back --------------------------------------------------------------

@pytest.mark.slow
async def test_a_truncated_wal_under_a_published_checkpoint_is_refused(
        server_process: ServerProcess) -> None:
    """Truncating the WAL drops committed transactions silently (SQLite cannot know). The server
    must not start at the smaller size and sign it: it refuses, saying what was lost."""
    home = server_process.home
    url = server_process.start(**FAST)
    wal = database(home).with_name("hotline.db-wal")
    before = wal.stat().st_size  # the WAL as it was with the roster only
    alice = await connect(url, home, "alice")
    try:
        last = (await send_messages(alice, 5))[-1]
        await asyncio.wait_for(alice.receipt(last), WAIT)  # checkpoint DEMO_ROSTER + 5 published
    finally:
        await alice.close()
    server_process.kill()  # the WAL is left as it is: nothing folded into the database
    published = read_checkpoint_file(checkpoint_path(database(home)))
    assert published is not None and published.size == DEMO_ROSTER + 5

    os.truncate(wal, before)  # the attack (or the fault): every later transaction is gone
    line = refused_start(home)
    assert line == (
        f"error: store.rolled_back: the database holds {DEMO_ROSTER} entries but checkpoint "
        f"{DEMO_ROSTER + 5} was signed and published at {published.time} (the checkpoint file "
        f"{checkpoint_path(database(home))}): 5 accepted entries are missing. Restore "
        f"{database(home)} together with its -wal from a backup taken after that checkpoint; "
        f"never delete {checkpoint_path(database(home))} to get past this: it is the record of "
        "what the log published")
    with sqlite3.connect(database(home)) as db:  # and nothing smaller was signed
        assert db.execute("SELECT MAX(size) FROM checkpoints").fetchone()[0] == DEMO_ROSTER
    assert read_checkpoint_file(checkpoint_path(database(home))) == published


@pytest.mark.slow
async def test_a_deleted_checkpoint_file_is_refused(home: Path) -> None:
    async with running_server(home, **FAST) as server:
        await send_messages(await server.client("alice"), 2)
    checkpoint_path(database(home)).unlink()
    line = refused_start(home)
    assert line.startswith(f"error: store.checkpoint_missing: {checkpoint_path(database(home))} "
                           "is missing, but the database holds signed checkpoints"), line


def overflow_page_of(data: bytes, leaf: bytes) -> int:
    """The offset of a 4 KiB page of ``data`` that is an overflow page of the row holding
    ``leaf``, not its last (its 4-byte next-page number, then 4092 bytes of the leaf)."""
    for offset in range(0, len(data), 4096):
        body = data[offset + 4:offset + 4096]
        if len(body) == 4092 and body in leaf:
            return offset
    raise AssertionError("no overflow page of the leaf")


@pytest.mark.slow
async def test_a_damaged_page_fails_health_and_reads_while_running_and_start_after(
        home: Path) -> None:
    async with running_server(home, **FAST) as server:  # a leaf several pages long (sealed text)
        sent = await (await server.client("alice")).send(channel="north-south", template="message",
                                                         body={"text": "Q" * 3000})
    with contextlib.closing(sqlite3.connect(database(home))) as db:
        (leaf,) = db.execute("SELECT leaf FROM entries WHERE idx = ?", (sent.index,)).fetchone()
    data = database(home).read_bytes()  # the clean stop folded the WAL into the database
    page = overflow_page_of(data, bytes(leaf))

    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        status, body = await get(http, server.url, "/healthz")
        assert (status, json.loads(body)["storage"]) == (200, "ok")
        with database(home).open("r+b") as handle:  # the disk goes bad under the server
            handle.seek(page)
            handle.write(b"\xff\xff\xff\xff")  # the overflow chain now points nowhere
        status, body = await entries(http, server.url, home, 0, DEMO_ROSTER + 1)
        answer = json.loads(body)
        assert status == 503 and answer["code"] == "store.read_failed", (status, answer)
        assert "malformed" in answer["message"], answer
        status, body = await get(http, server.url, "/healthz")
        health = json.loads(body)
        assert status == 503 and health["status"] == "failing", health
        assert "malformed" in health["storage"], health

    line = refused_start(home)  # PRAGMA quick_check finds it at the next start
    assert line.startswith(f"error: store.damaged: PRAGMA quick_check found damage in "
                           f"{database(home)}: "), line
    assert "Restore the database together with its -wal from a backup" in line, line


@pytest.mark.slow
async def test_a_one_byte_edit_of_a_leaf_is_named_at_start(home: Path) -> None:
    async with running_server(home, **FAST):
        pass
    with sqlite3.connect(database(home)) as db:
        (leaf,) = db.execute("SELECT leaf FROM entries WHERE idx = 3").fetchone()
    data = bytearray(database(home).read_bytes())
    assert data.find(bytes(leaf)) > 0  # the clean stop folded the WAL into the database
    at = data.find(bytes(leaf)) + bytes(leaf).find(b'"document"') + len(b'"documen')
    assert data[at:at + 1] == b"t"
    data[at] = ord("T")  # "document" -> "documenT": the replay would have hit a KeyError
    database(home).write_bytes(bytes(data))
    line = refused_start(home)
    assert line == ("error: store.damaged: entry 3 in the database is damaged: its leaf does not "
                    "match the log's tree (its leaf hash)"), line


# -- defect 10: rows the server never wrote ---------------------------------------------------------

def append_row(home: Path, entry: dict[str, Any]) -> int:
    """What whoever holds the file can do without the log key: append the next row with plain
    sqlite3 (the append-only triggers allow it), with its tree nodes; returns its index."""
    with sqlite3.connect(database(home)) as db:
        (size,) = db.execute("SELECT COUNT(*) FROM entries").fetchone()
        nodes = dict(((level, index), bytes(value)) for level, index, value
                     in db.execute("SELECT level, idx, hash FROM nodes"))
        leaf = canonical_bytes({"index": size, **entry})
        db.execute("INSERT INTO entries (idx, time, kind, channel, leaf) VALUES (?, ?, ?, ?, ?)",
                   (size, entry["time"], entry["kind"], entry.get("channel"), leaf))
        frontier = Frontier.from_nodes(size, lambda level, index: nodes[level, index])
        db.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)",
                       frontier.append(leaf_hash(leaf)))
    return int(size)


@pytest.mark.slow
async def test_a_row_appended_to_the_file_is_refused(home: Path, tmp_path: Path) -> None:
    async with running_server(home, **FAST) as server:
        alice = await server.client("alice")
        last = (await send_messages(alice, 2))[-1]
        await asyncio.wait_for(alice.receipt(last), WAIT)  # a checkpoint covers every row
    backup = tmp_path / "backup"
    copy_database(home, backup)
    with sqlite3.connect(database(home)) as db:
        (time_,) = db.execute("SELECT MAX(time) FROM entries").fetchone()
    index = append_row(home, {"time": time_, "kind": "rejected", "party": "south", "member": "bob",
                              "template": "message", "code": "norm.sender_not_allowed",
                              "reason": "bob tried to send a launch notification",
                              "channel": "north-south"})
    line = refused_start(home)
    assert line.startswith(f"error: store.unauthenticated_rows: entry {index} is beyond the last "
                           f"signed checkpoint ({index} entries) but does not carry the row MAC "
                           "of a server holding the log key: it was not written by a hotline "
                           "server"), line
    assert "restore it together with its -wal from a backup" in line, line

    copy_database(backup, home)  # the untouched log starts, and its audit passes
    async with running_server(home, **FAST) as server:
        await witness_all(home, server.url)
        audit = await asyncio.to_thread(hotline_cli, home, "audit", "verify", "--as", "audrey",
                                        "--server", server.url)
    assert audit.returncode == 0, audit.stderr
    assert audit.stdout.startswith(f"OK: log {ORIGIN}: {DEMO_ROSTER + 2} entries verified"), audit.stdout


@pytest.mark.slow
async def test_rows_committed_after_the_last_checkpoint_survive_a_crash(
        server_process: ServerProcess) -> None:
    """Entries committed (and acknowledged) but not yet checkpointed when the server dies are
    the server's own (their row MACs verify): the restart accepts and checkpoints them."""
    home = server_process.home
    url = server_process.start(HOTLINE_TLOG_CHECKPOINT_DELAY="3600")  # no checkpoint after start
    alice = await connect(url, home, "alice")
    try:
        sent = await send_messages(alice, 5)
    finally:
        await alice.close()
    server_process.kill()
    saved = read_checkpoint_file(checkpoint_path(database(home)))
    assert saved is not None and saved.size == DEMO_ROSTER < sent[-1]

    url = server_process.start(**FAST)
    async with aiohttp.ClientSession() as http:
        status, body = await get(http, url, "/v1/log/checkpoint")
    assert status == 200 and body.decode().split("\n")[1] == str(DEMO_ROSTER + 5)
    bob = await connect(url, home, "bob")
    try:
        assert bob.welcome.log_size == DEMO_ROSTER + 5
        assert body_seen(home, bob, await bob.fetch(sent[-1])) == {"text": "message 4"}
    finally:
        await bob.close()


# -- defect 13: /v1/log/entries is bounded in bytes and off the event loop ---------------------------

# 42,400 bytes of UTF-8, sealed to the 3 liaisons: encrypted once and base64-encoded (4/3 of it)
# beside three boxes, so each envelope is near the 64 KiB limit (about 62,500 bytes)
BIG = "\U0001d54f" * 10_600
PAGE_BYTES = 4 * 1024 * 1024  # limits.entries_page_bytes, the default


async def read_everything(http: aiohttp.ClientSession, url: str, home: Path, size: int,
                          pages: list[tuple[int, int, int]]) -> None:
    """Page through entries 0..size-1 as an auditor does; records each page's (rows, leaf
    bytes, response bytes). Parsing runs in a thread: this process's loop also measures pings."""
    start = 0
    while start < size:
        status, body = await entries(http, url, home, start, size)
        assert status == 200, body[:300]
        page = await asyncio.to_thread(json.loads, body)
        leaves = sum(len(base64.b64decode(r["leaf"])) for r in page if "leaf" in r)
        pages.append((len(page), leaves, len(body)))
        start = page[-1]["index"] + 1


@pytest.mark.slow
async def test_concurrent_large_reads_stay_bounded_and_do_not_stall_a_member(
        server_process: ServerProcess) -> None:
    home = server_process.home
    url = server_process.start(**FAST)
    alice, bob, carol = [await connect(url, home, n) for n in ("alice", "bob", "carol")]
    try:
        # Ten big envelopes in flight at a time: each is delivered to alice and bob, and a
        # burst of 200 would outgrow a reader's send queue on a loaded machine (4008).
        for _ in range(20):
            await asyncio.gather(*(member.send(channel="north-south", template="message",
                                               body={"text": BIG})
                                   for member in (alice, bob) for _ in range(5)))
        size = DEMO_ROSTER + 200
        pages: list[tuple[int, int, int]] = []
        rtts: list[float] = []
        async with aiohttp.ClientSession() as http:
            readers = asyncio.gather(*(read_everything(http, url, home, size, pages)
                                       for _ in range(8)))
            while not readers.done() or len(rtts) < 5:  # carol pings all along
                sent = time.perf_counter()
                await carol.ping()
                rtts.append(time.perf_counter() - sent)
            await readers
    finally:
        for member in (alice, bob, carol):
            await member.close()

    assert max(rtts) < 1.0, sorted(rtts)[-5:]
    assert sum(rows for rows, _, _ in pages) == 8 * size
    for rows, leaves, length in pages:  # each page: at most 4 MiB of leaves, or one entry
        assert leaves <= PAGE_BYTES or rows == 1, (rows, leaves)
        assert length <= 2.5 * PAGE_BYTES, length  # leaf in base64 and as the entry
    assert len(pages) >= 8 * 3  # 12 MB of leaves each: bounded pages, not one 28 MB answer

    server_process.stop()  # the auditor verifies such a log end to end with short pages
    url = server_process.start(HOTLINE_LIMITS_ENTRIES_PAGE_BYTES="150000")
    await witness_all(home, url)
    audit = await asyncio.to_thread(hotline_cli, home, "audit", "verify", "--as", "audrey",
                                    "--server", url)
    assert audit.returncode == 0, audit.stderr
    assert audit.stdout.startswith(f"OK: log {ORIGIN}: {size} entries verified"), audit.stdout


# -- defect 14: integer parameters, file permissions ------------------------------------------------

TOO_LARGE = ("9999999999999999999", str(2**53), str(2**63))  # 19 digits; beyond 2^53 - 1


async def test_every_integer_parameter_beyond_2_53_is_a_typed_400(server: Running) -> None:
    cases = {
        "/v1/log/checkpoints": ["since={}"],
        "/v1/log/proof/inclusion": ["index={}&size=8", "index=0&size={}"],
        "/v1/log/proof/consistency": ["old={}&size=8", "old=1&size={}"],
        "/v1/log/entries": ["start={}&end=8", "start=0&end={}"],
    }
    async with aiohttp.ClientSession() as http:
        for path, queries in cases.items():
            for template in queries:
                for value in TOO_LARGE:
                    query = template.format(value)
                    headers = signed_headers(server.home, "audrey", path, query)
                    status, body = await get(http, server.url, path, query, headers)
                    answer = json.loads(body)
                    assert (status, answer["code"]) == (400, "http.bad_parameter"), (path, query, body)
                # the largest allowed value is a number like any other: never a 500
                query = template.format(2**53 - 1)
                status, body = await get(http, server.url, path, query,
                                         signed_headers(server.home, "audrey", path, query))
                assert status in (200, 400) and json.loads(body) is not None, (path, query, body)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_database_and_checkpoint_files_are_private(home: Path, umask: None) -> None:
    assert mode(home) == 0o700  # `hotline init` made the deployment's folder the owner's only
    store = {"HOTLINE_STORE_PATH": "data/hotline.db"}  # a folder the server creates
    db = home / "data" / "hotline.db"
    async with running_server(home, **FAST, **store) as server:
        alice = await server.client("alice")
        last = (await send_messages(alice, 2))[-1]
        await asyncio.wait_for(alice.receipt(last), WAIT)  # written, and a checkpoint saved
        files = [db, db.with_name("hotline.db-wal"), db.with_name("hotline.db-shm"),
                 checkpoint_path(db)]
        assert [mode(f) for f in files] == [0o600] * 4
        assert mode(db.parent) == 0o700

    os.chmod(db, 0o644)  # made readable by an earlier release, or by hand
    async with running_server(home, **FAST, **store):
        assert mode(db) == 0o600
