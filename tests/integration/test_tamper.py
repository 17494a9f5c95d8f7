"""Acceptance 3: tampering with a real log is caught by `hotline audit verify`, which exits 1
naming the entry or checkpoint at fault.

One log is built once per module (a real server, alice's messages and bob's acks, a checkpoint
covering them, a witness's cosignature, an auditor's export); each test tampers with its own
copy of that deployment, the way whoever holds the disk would: plain ``sqlite3`` on the server's
database file with the append-only triggers dropped, or an edited export file, and, where the
attack needs it, the log key the host holds. The live log is checked through a restarted
server; exports with ``--export``.

The server's own start-up checks (``hotline.store.integrity``) refuse a database edited by anyone
without the log key; the host holds it, so before restarting its server it also does what the
key allows (``host_passes_server_checks``). Against the key holder, the auditor is the check.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hotline.ahead import Verifiers
from hotline.audit.records import decode_entry
from hotline.audit.verify import AuditFailure, Auditor
from hotline.canonical import canonical_bytes, dumps
from hotline.client.profile import Profile
from hotline.deployment import init_deployment
from hotline.entries import PENDING, RejectedEntry
from hotline.envelope import AckKind, Envelope, new_envelope_id
from hotline.errors import StoreError
from hotline.keyfiles import load_private_key
from hotline.keys import SigningKey
from hotline.norms.files import load_templates
from hotline.roster import revocation, sign_document
from hotline.store import open_store, row_mac_key
from hotline.store.checkpointfile import SavedCheckpoint, checkpoint_path, write_checkpoint_file
from hotline.store.rowmac import row_mac
from hotline.times import format_time, parse_time
from hotline.tlog import Checkpoint, Frontier, leaf_hash, sign_checkpoint
from tests.conftest import DEMO_ROSTER, Running, copy_database, hotline_cli, running_server, witness_all

WAIT = 10  # seconds: a safety net against hangs, never a synchronisation
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
ORIGIN = "hotline.test"
# The roster entries, then alice's 5 messages, each followed by bob's ack:
MSG = [DEMO_ROSTER + 2 * n for n in range(5)]  # where alice's messages are
SIZE = DEMO_ROSTER + 10
ROOT_MISMATCH = re.compile(r"checkpoint (\d+) \(from the log\): its root does not match entries "
                           r"(\d+)\.\.(\d+); one of them was modified, inserted, deleted or reordered")


# -- the log, built once -------------------------------------------------------------------------

@dataclass(frozen=True)
class Log:
    home: Path
    export: Path


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(hotline_cli, home, *args)


async def _build(home: Path, export: Path) -> None:
    async with running_server(home, **FAST) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        last = -1
        for n in range(5):
            await alice.send(channel="north-south", template="message", body={"text": f"message {n}"})
            delivered = bob.verify(await asyncio.wait_for(bob.deliveries.get(), WAIT))
            last = (await bob.ack(delivered, AckKind.RECEIVED)).index
        assert last == SIZE - 1
        await asyncio.wait_for(bob.receipt(last), WAIT)  # a signed checkpoint covers everything
        cosigned = await cli(home, "witness", "--as", "north-agent", "--once", "--server", server.url)
        assert cosigned.returncode == 0, cosigned.stderr
        await witness_all(home, server.url, ("south-agent", "mediator-agent"))  # every named one
        exported = await cli(home, "audit", "export", "--as", "audrey", "--server", server.url,
                             "--out", str(export))
        assert exported.returncode == 0, exported.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Log:
    base = tmp_path_factory.mktemp("tamper")
    log = Log(base / "home", base / "export.jsonl")
    init_deployment(log.home, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin=ORIGIN, force=False)
    asyncio.run(_build(log.home, log.export))
    return log


@pytest.fixture
def log(built: Log, tmp_path: Path) -> Log:
    """This test's own copy of the deployment and its export."""
    copy = Log(tmp_path / "home", tmp_path / "export.jsonl")
    shutil.copytree(built.home, copy.home)
    shutil.copy2(built.export, copy.export)
    return copy


# -- tampering helpers ----------------------------------------------------------------------------

@contextlib.contextmanager
def attacker_db(home: Path) -> Iterator[sqlite3.Connection]:
    """The server's database opened with plain sqlite3 (server stopped), triggers dropped, one
    transaction."""
    db = sqlite3.connect(home / "hotline.db", isolation_level=None)
    try:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f"DROP TRIGGER {name}")
        db.execute("BEGIN")
        yield db
        db.execute("COMMIT")
    finally:
        db.close()


def host_passes_server_checks(home: Path) -> None:
    """What the host, holding the log key, adds to its edit (server stopped) so that its own
    server starts on it: each leaf's hash in its level-0 tree node (the nodes above, and so the
    signed roots, stay as they are), a row MAC on every row, and the checkpoint file set to the
    latest checkpoint left in the database."""
    key = row_mac_key(load_private_key(home / "keys" / "log.pem"))
    with attacker_db(home) as db:
        for index, leaf in db.execute("SELECT idx, leaf FROM entries").fetchall():
            db.execute("UPDATE nodes SET hash = ? WHERE level = 0 AND idx = ?",
                       (leaf_hash(bytes(leaf)), index))
            db.execute("UPDATE entries SET mac = ? WHERE idx = ?", (row_mac(key, index, bytes(leaf)), index))
        size, time, note = db.execute("SELECT size, time, note FROM checkpoints ORDER BY size DESC "
                                      "LIMIT 1").fetchone()
    write_checkpoint_file(checkpoint_path(home / "hotline.db"), SavedCheckpoint(size, time, note))


def read_entry(db: sqlite3.Connection, index: int) -> dict[str, Any]:
    (leaf,) = db.execute("SELECT leaf FROM entries WHERE idx = ?", (index,)).fetchone()
    value: dict[str, Any] = json.loads(leaf)
    return value


def write_entry(db: sqlite3.Connection, entry: dict[str, Any], *, at: int | None = None) -> None:
    """Overwrite the leaf of row ``at`` (default: the entry's own index)."""
    db.execute("UPDATE entries SET leaf = ? WHERE idx = ?",
               (canonical_bytes(entry), entry["index"] if at is None else at))


def insert_entry(db: sqlite3.Connection, entry: dict[str, Any]) -> None:
    envelope_id = entry["envelope"]["id"] if entry["kind"] == "envelope" else None
    db.execute("INSERT INTO entries (idx, time, kind, channel, envelope_id, leaf) VALUES (?, ?, ?, ?, ?, ?)",
               (entry["index"], entry["time"], entry["kind"], entry.get("channel"), envelope_id,
                canonical_bytes(entry)))


def forget_tree_from(db: sqlite3.Connection, index: int) -> None:
    """Delete every stored tree node covering leaf ``index`` or later, and every checkpoint (and
    cosignature) larger than ``index``: the server then rebuilds the tree from the entries."""
    db.execute("DELETE FROM nodes WHERE ((idx + 1) << level) > ?", (index,))
    db.execute("DELETE FROM checkpoints WHERE size > ?", (index,))
    db.execute("DELETE FROM cosignatures WHERE size > ?", (index,))


def load_export(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def save_export(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
                            for r in records))


def entry_record(entry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "entry", "index": entry["index"],
            "leaf": base64.b64encode(canonical_bytes(entry)).decode(), "entry": entry}


def edit_export(path: Path, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """Apply ``edit`` to the export's entries (as entry objects, in order); the leaves follow."""
    records = load_export(path)
    head = [r for r in records if r["type"] != "entry"]
    entries = [r["entry"] for r in records if r["type"] == "entry"]
    save_export(path, head + [entry_record(e) for e in edit(entries)])


def renumbered(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each entry its position as index, as a careful forger would."""
    return [{**e, "index": n} for n, e in enumerate(entries)]


def later(time: str, **delta: float) -> str:
    return format_time(parse_time(time) + timedelta(**delta))


def fabricated_rejection(index: int, time: str) -> dict[str, Any]:
    """A 'rejected' entry needs nobody's signature: the host could invent one blaming bob."""
    return {"index": index, "time": time, "kind": "rejected", "party": "south", "member": "bob",
            "template": "message", "code": "norm.sender_not_allowed",
            "reason": "bob tried to send a launch notification", "channel": "north-south"}


# -- running the auditor ----------------------------------------------------------------------------

async def verify_live(home: Path, server: Running, *extra: str) -> subprocess.CompletedProcess[str]:
    return await cli(home, "audit", "verify", "--as", "audrey", "--server", server.url, *extra)


async def verify_export(home: Path, export: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return await cli(home, "audit", "verify", "--as", "audrey", "--export", str(export), *extra)


def failure(result: subprocess.CompletedProcess[str]) -> str:
    """The auditor's one-line verdict: exit 1, ``FAILED: ...``, no crash."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("FAILED: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


def root_mismatch_covering(message: str, index: int) -> int:
    """Assert ``message`` names a checkpoint whose root no longer matches the entries around
    ``index``; returns that checkpoint's size."""
    match = ROOT_MISMATCH.search(message)
    assert match, message
    size, first, last = (int(g) for g in match.groups())
    assert first <= index <= last == size - 1, message
    return size


# -- the tests ------------------------------------------------------------------------------------

@pytest.mark.slow
async def test_untampered_log_and_export_verify(log: Log, tmp_path: Path) -> None:
    async with running_server(log.home, **FAST) as server:
        live, exported = await asyncio.gather(
            verify_live(log.home, server),
            verify_export(log.home, log.export, "--state", str(tmp_path / "fresh.json")))
    for result in (live, exported):
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert re.fullmatch(rf"OK: log {ORIGIN}: {SIZE} entries verified against \d+ signed "
                            rf"checkpoints \(largest {SIZE}\)", lines[0]), lines
        assert lines[1].strip() == (
            f"readable {SIZE} (envelopes 10, roster documents {DEMO_ROSTER}, health transitions 0, "
            "overdue notices 0, rejected attempts 0, rejection summaries 0); hidden from this "
            f"auditor 0 (hash only); {SIZE} in all")
        assert lines[2].strip() == (f"witnessed: entries 0..{SIZE - 1} (checkpoint {SIZE}), cosigned "
                                    "by all 3 named witnesses")
        assert lines[3].strip() == (
            f"witnesses (largest checkpoint cosigned): mediator/mediator-agent up to {SIZE} "
            f"(1 checkpoint), north/north-agent up to {SIZE} (1 checkpoint), "
            f"south/south-agent up to {SIZE} (1 checkpoint)")
        assert len(lines) == 4  # every entry is witnessed
    state = json.loads((log.home / "state" / "audrey.audit.json").read_text())
    assert f"\n{SIZE}\n" in state["checkpoints"][-1]  # the auditor remembers what it verified


@pytest.mark.slow
async def test_modified_entry(log: Log) -> None:
    with attacker_db(log.home) as db:  # a message's sealed text replaced in its leaf bytes
        entry = read_entry(db, MSG[1])
        entry["envelope"]["sealed"]["digests"]["text"] = entry["envelope"]["sealed"]["digests"]["text"][::-1]
        write_entry(db, entry)

    def retimed(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entries[MSG[2]]["time"] = later(entries[MSG[2]]["time"], milliseconds=1)  # no sender signed it
        return entries
    edit_export(log.export, retimed)

    host_passes_server_checks(log.home)
    async with running_server(log.home, **FAST) as server:
        live, exported = await asyncio.gather(verify_live(log.home, server),
                                              verify_export(log.home, log.export))
    message = failure(live)
    assert message.startswith(f"FAILED: entry {MSG[1]} (envelope): ") and "signature" in message, message
    root_mismatch_covering(failure(exported), MSG[2])


@pytest.mark.slow
async def test_deleted_entry(log: Log) -> None:
    with attacker_db(log.home) as db:
        db.execute("DELETE FROM entries WHERE idx = ?", (MSG[2],))
    edit_export(log.export, lambda entries: renumbered(entries[:MSG[2]] + entries[MSG[2] + 1:]))

    async with running_server(log.home, **FAST) as server:
        live, exported = await asyncio.gather(verify_live(log.home, server),
                                              verify_export(log.home, log.export))
    assert failure(live) == f"FAILED: entry {MSG[2]}: missing (the next record is entry {MSG[2] + 1})"
    message = failure(exported)  # renumbered: the ack of the deleted message or the signed roots
    if "reply_to" in message:  # give it away
        assert message.startswith(f"FAILED: entry {MSG[2]} (envelope): "), message
        assert "names no earlier message" in message, message
    elif "truncated" not in message:
        root_mismatch_covering(message, MSG[2])
    else:
        assert f"checkpoint of size {SIZE} (from the log) was signed" in message


@pytest.mark.slow
async def test_swapped_entries(log: Log, tmp_path: Path) -> None:
    with attacker_db(log.home) as db:
        first, second = read_entry(db, MSG[1]), read_entry(db, MSG[2])
        write_entry(db, second, at=MSG[1])
        write_entry(db, first, at=MSG[2])
    records = load_export(log.export)  # the same swap in an export: two rows trade leaves
    rows = {r["index"]: r for r in records if r["type"] == "entry"}
    rows[MSG[1]], rows[MSG[2]] = {**rows[MSG[2]], "index": MSG[1]}, {**rows[MSG[1]], "index": MSG[2]}
    in_place = tmp_path / "in-place.jsonl"
    save_export(in_place, [r for r in records if r["type"] != "entry"] + list(rows.values()))

    def swapped(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entries[MSG[1]], entries[MSG[2]] = entries[MSG[2]], entries[MSG[1]]
        return renumbered(entries)
    edit_export(log.export, swapped)

    # Even the key holder's server finds it: it decodes the recent entries, and a leaf holding
    # another index is damage. With the obligations it saved at its stop, it decodes them after
    # it listens, and says so (/healthz: failing); with none saved, before, and does not start.
    host_passes_server_checks(log.home)
    damage = f"entry {MSG[1]} in the database is damaged: its leaf holds another index"
    async with running_server(log.home, **FAST) as server:
        service = server.hotline
        assert service.restored_from is not None and service.unread_checked is not None
        found = await service.unread_checked
        assert found is not None and found.message == damage and service.store.problem == damage
    with attacker_db(log.home) as db:
        db.execute("DELETE FROM saved_state")
    with pytest.raises(StoreError, match=damage):
        async with running_server(log.home, **FAST):
            pass
    moved, exported = await asyncio.gather(verify_export(log.home, in_place),
                                           verify_export(log.home, log.export))
    assert failure(moved) == f"FAILED: entry {MSG[1]}: its leaf holds index {MSG[2]}"
    message = failure(exported)  # renumbered: caught by the times going back, or by the root
    if "log times never go back" in message:
        assert re.match(rf"FAILED: entry ({MSG[1]}|{MSG[1] + 1}|{MSG[2]}): logged at ", message), message
    else:
        root_mismatch_covering(message, MSG[1])


@pytest.mark.slow
async def test_inserted_entry(log: Log) -> None:
    with attacker_db(log.home) as db:  # a fabricated refusal slipped in before alice's 3rd message
        for (index,) in db.execute("SELECT idx FROM entries WHERE idx >= ? ORDER BY idx DESC",
                                   (MSG[2],)).fetchall():
            moved = read_entry(db, index)
            db.execute("UPDATE entries SET idx = ? WHERE idx = ?", (index + 1, index))
            write_entry(db, {**moved, "index": index + 1})
        insert_entry(db, fabricated_rejection(MSG[2], read_entry(db, MSG[2] - 1)["time"]))

    def replayed(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        copy = {**entries[MSG[1]], "time": entries[MSG[2] + 1]["time"]}  # alice's signed envelope again
        return renumbered([*entries[:MSG[3]], copy, *entries[MSG[3]:]])
    edit_export(log.export, replayed)

    host_passes_server_checks(log.home)
    async with running_server(log.home, **FAST) as server:
        live, exported = await asyncio.gather(verify_live(log.home, server),
                                              verify_export(log.home, log.export))
    root_mismatch_covering(failure(live), MSG[2])
    message = failure(exported)  # the copy is caught as a replay before the root is compared
    assert message.startswith(f"FAILED: entry {MSG[3]} (envelope): envelope "), message
    assert "a replay" in message, message


@pytest.mark.slow
async def test_truncated_log(log: Log) -> None:
    truncated = SIZE - 3
    edit_export(log.export, lambda entries: entries[:truncated])
    assert failure(await verify_export(log.home, log.export)) == (
        f"FAILED: checkpoint of size {SIZE} (from the log) was signed, but the log now has "
        f"{truncated} entries: it was truncated or rolled back")

    async with running_server(log.home, **FAST) as server:
        assert (await verify_live(log.home, server)).returncode == 0  # audrey remembers SIZE
    with attacker_db(log.home) as db:  # entries removed, and the checkpoints that covered them
        db.execute("DELETE FROM entries WHERE idx >= ?", (truncated,))
        forget_tree_from(db, truncated)
    host_passes_server_checks(log.home)
    async with running_server(log.home, **FAST) as server:  # the host re-signs at SIZE - 3
        async with aiohttp.ClientSession() as http, \
                http.get(server.url.replace("ws://", "http://").replace("/v1/ws", "/v1/log/checkpoint")) as r:
            assert f"\n{truncated}\n" in await r.text()
        live = await verify_live(log.home, server)
    assert failure(live) == (
        f"FAILED: checkpoint of size {SIZE} (from this auditor's state (seen before)) was signed, "
        f"but the log now has {truncated} entries: it was truncated or rolled back")


async def test_truncated_database_with_its_checkpoints_left_is_refused_by_the_server(log: Log) -> None:
    with attacker_db(log.home) as db:
        db.execute("DELETE FROM entries WHERE idx >= ?", (SIZE - 3,))
    with pytest.raises(StoreError, match=f"the log's tree holds {SIZE} leaves but the database "
                       f"only {SIZE - 3} entries: entries were lost or removed") as refused:
        async with running_server(log.home, **FAST):
            pass
    assert refused.value.code == "store.damaged"


@pytest.mark.slow
async def test_forged_envelope_signature(log: Log) -> None:
    with attacker_db(log.home) as db:  # appended after the last checkpoint, with a copied signature
        forged = read_entry(db, MSG[4])
        forged["index"] = SIZE
        forged["time"] = later(forged["time"], seconds=1)
        forged["envelope"] = {**forged["envelope"], "id": new_envelope_id(b"\x01" * 16),
                              "body": {"lang": "en"}}
        insert_entry(db, forged)

    def bad_signature(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sig = entries[MSG[3]]["sig"]["sig"]
        entries[MSG[3]]["sig"] = {**entries[MSG[3]]["sig"], "sig": ("B" if sig[0] == "A" else "A") + sig[1:]}
        return entries
    edit_export(log.export, bad_signature)

    host_passes_server_checks(log.home)
    async with running_server(log.home, **FAST) as server:  # the host signs a checkpoint of SIZE + 1
        live, exported = await asyncio.gather(verify_live(log.home, server),
                                              verify_export(log.home, log.export))
    for result, index in ((live, SIZE), (exported, MSG[3])):
        message = failure(result)
        assert message.startswith(f"FAILED: entry {index} (envelope): "), message
        assert "signature" in message, message


async def revoke_bob(home: Path) -> tuple[SigningKey, datetime]:
    """South's authority revokes bob (entry SIZE, logged by the server); returns bob's key and the
    revocation time."""
    bob = Profile.load(home, "bob").signing_key()
    south = load_private_key(home / "keys" / "authority-south.pem")
    revoked_at = datetime.now(UTC)
    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        doc = revocation(party="south", member="bob", key_id=bob.key_id, revoked_at=revoked_at)
        url = server.url.replace("ws://", "http://").replace("/v1/ws", "/v1/roster")
        async with http.post(url, data=dumps(sign_document(doc, south).to_json())) as response:
            assert (response.status, (await response.json())["index"]) == (200, SIZE)
    return bob, revoked_at


def signed_by_bob(bob: SigningKey, *, index: int, created: datetime, logged: datetime) -> dict[str, Any]:
    """An entry holding a message bob really signed (his key, not the host's)."""
    envelope = Envelope.build(id=new_envelope_id(b"\x02" * 16), kind="message", channel="north-south",
                              sender="bob", template="message", precedence="FLASH", created=created,
                              body={"text": "South accepts the terms"})
    return {"index": index, "time": format_time(logged), "kind": "envelope", "channel": "north-south",
            "party": "south", "envelope": envelope.to_json(), "sig": envelope.sign(bob)}


@pytest.mark.slow
async def test_message_from_a_revoked_key(log: Log, tmp_path: Path) -> None:
    bob, revoked_at = await revoke_bob(log.home)
    with attacker_db(log.home) as db:  # the server would refuse it: written straight to the file
        insert_entry(db, signed_by_bob(bob, index=SIZE + 1, created=revoked_at + timedelta(seconds=1),
                                       logged=revoked_at + timedelta(seconds=2)))
    backdated = tmp_path / "backdated.jsonl"
    host_passes_server_checks(log.home)
    async with running_server(log.home, **FAST) as server:  # the host signs a checkpoint of SIZE + 2
        exported = await cli(log.home, "audit", "export", "--as", "audrey", "--server", server.url,
                             "--out", str(backdated))
        assert exported.returncode == 0, exported.stderr
        # Signed by bob as if before the revocation, but logged after it.
        edit_export(backdated, lambda entries: [*entries[:-1], signed_by_bob(
            bob, index=SIZE + 1, created=revoked_at - timedelta(seconds=1),
            logged=revoked_at + timedelta(seconds=2))])
        live, backdated_result = await asyncio.gather(verify_live(log.home, server),
                                                      verify_export(log.home, backdated))
    for result in (live, backdated_result):
        message = failure(result)
        assert message.startswith(f"FAILED: entry {SIZE + 1} (envelope): key {bob.key_id} of bob "
                                  "(south): revoked at "), message


@pytest.mark.slow
async def test_message_from_a_revoked_key_backdated_behind_the_revocation(log: Log) -> None:
    bob, revoked_at = await revoke_bob(log.home)
    with attacker_db(log.home) as db:  # after entry SIZE (the revocation), dated before it
        insert_entry(db, signed_by_bob(bob, index=SIZE + 1, created=revoked_at - timedelta(seconds=2),
                                       logged=revoked_at - timedelta(seconds=1)))
    host_passes_server_checks(log.home)
    async with running_server(log.home, **FAST) as server:  # the host signs a checkpoint of SIZE + 2
        message = failure(await verify_live(log.home, server))
    assert message.startswith(f"FAILED: entry {SIZE + 1}: logged at "), message  # behind entry SIZE
    assert "log times never go back" in message, message


@pytest.mark.slow
async def test_replayed_envelope(log: Log) -> None:
    with attacker_db(log.home) as db:
        replay = {**read_entry(db, MSG[4]), "index": SIZE}  # alice's message 4, signature and all
        replay["time"] = later(replay["time"], seconds=30)
        db.execute("INSERT INTO entries (idx, time, kind, channel, envelope_id, leaf) "
                   "VALUES (?, ?, 'envelope', 'north-south', NULL, ?)",
                   (SIZE, replay["time"], canonical_bytes(replay)))
    host_passes_server_checks(log.home)
    async with running_server(log.home, **FAST) as server:  # the host signs a checkpoint of SIZE + 1
        message = failure(await verify_live(log.home, server))
    assert message.startswith(f"FAILED: entry {SIZE}"), message


@pytest.mark.slow
async def test_rolled_back_log(log: Log, tmp_path: Path) -> None:
    older = tmp_path / "older"
    older.mkdir()
    copy_database(log.home, older)  # the host keeps a copy of the database as it is now (SIZE)
    async with running_server(log.home, **FAST) as server:
        alice = await server.client("alice")
        for n in range(2):
            accepted = await alice.send(channel="north-south", template="message",
                                        body={"text": f"later {n}"})
        await asyncio.wait_for(alice.receipt(accepted.index), WAIT)
        seen = await verify_live(log.home, server)
        assert seen.returncode == 0 and f"(largest {SIZE + 2})" in seen.stdout, seen.stderr

    copy_database(older, log.home)
    async with running_server(log.home, **FAST) as server:
        live, exported = await asyncio.gather(verify_live(log.home, server),
                                              verify_export(log.home, log.export))
    for result in (live, exported):
        assert failure(result) == (
            f"FAILED: checkpoint of size {SIZE + 2} (from this auditor's state (seen before)) was "
            f"signed, but the log now has {SIZE} entries: it was truncated or rolled back")


@pytest.mark.slow
async def test_split_view(log: Log) -> None:
    async with running_server(log.home, **FAST) as server:
        assert (await verify_live(log.home, server)).returncode == 0  # audrey remembers SIZE

    # Another history of the same size, every leaf valid, signed with the key the host holds.
    log_key = load_private_key(log.home / "keys" / "log.pem")
    records = load_export(log.export)
    entries = [r["entry"] for r in records if r["type"] == "entry"]
    entries[-1] = fabricated_rejection(SIZE - 1, entries[-1]["time"])
    frontier = Frontier()
    for entry in entries:
        frontier.append(leaf_hash(canonical_bytes(entry)))
    other = sign_checkpoint(Checkpoint(ORIGIN, SIZE, frontier.root()), log_key)
    head = [{**r, "note": other} if r["type"] == "checkpoint" and r["size"] == SIZE else r
            for r in records if r["type"] != "entry"]
    save_export(log.export, head + [entry_record(e) for e in entries])

    with attacker_db(log.home) as db:  # the same other history on the live server
        write_entry(db, entries[-1])
        forget_tree_from(db, SIZE - 1)
    host_passes_server_checks(log.home)
    async with running_server(log.home, **FAST) as server:
        live, exported = await asyncio.gather(verify_live(log.home, server),
                                              verify_export(log.home, log.export))
    for result in (live, exported):
        assert failure(result) == (
            f"FAILED: split view: checkpoint of size {SIZE} from the log has another root than the "
            "one from this auditor's state (seen before): the log showed two different histories")


@pytest.mark.slow
async def test_verify_reaches_the_latest_checkpoint_of_a_long_log(home: Path) -> None:
    """A server signing one checkpoint per commit (default delay 1 s) passes 1000 checkpoints
    in under 20 minutes of traffic; the auditor must still verify up to the latest one."""
    async with running_server(home):
        pass  # roster logged, its checkpoint signed
    key = load_private_key(home / "keys" / "log.pem")
    store = await open_store(home / "hotline.db", mac_key=row_mac_key(key))
    try:  # 1001 refused attempts, as the server logs them
        await asyncio.gather(*(store.enqueue(RejectedEntry(
            index=PENDING, time=format_time(datetime.now(UTC)), party="north", member="alice",
            template="message", code="norm.rate_limited", reason=f"attempt {n}",
            channel="north-south")) for n in range(1001)))
    finally:
        await store.close()
    with attacker_db(home) as db:  # the checkpoints a long-running server signs, one per size
        leaves = [bytes(leaf) for (leaf,) in db.execute("SELECT leaf FROM entries ORDER BY idx")]
        frontier, notes = Frontier(), []
        for leaf in leaves:
            frontier.append(leaf_hash(leaf))
            if frontier.size > DEMO_ROSTER:
                note = sign_checkpoint(Checkpoint(ORIGIN, frontier.size, frontier.root()), key)
                notes.append((frontier.size, format_time(datetime.now(UTC)), note))
        db.executemany("INSERT INTO checkpoints (size, time, note) VALUES (?, ?, ?)", notes)
        # then the host rewrites one of the newest entries (the one before the last: its
        # level-0 node is under the latest checkpoints' roots, not one of them)
        last = read_entry(db, len(leaves) - 2)
        write_entry(db, {**last, "reason": "rewritten"})
    host_passes_server_checks(home)
    async with running_server(home) as server:
        result = await verify_live(home, server)
    message = failure(result)
    assert message == (f"FAILED: checkpoint {len(leaves) - 1} (from the log): its root does not "
                       f"match entries {len(leaves) - 2}..{len(leaves) - 2}; one of them was "
                       "modified, inserted, deleted or reordered since it was signed")


@pytest.mark.slow
async def test_export_rows_are_parsed_strictly(log: Log, tmp_path: Path) -> None:
    """Defect 14: strict integers everywhere. A row whose index is 9.0 (or a checkpoint whose
    size is a float), a duplicate key, a line that is not JSON: each is one FAILED naming the
    line, never accepted and never a traceback."""
    lines = log.export.read_text().splitlines()
    entry_line = next(n for n, line in enumerate(lines) if json.loads(line).get("index") == 9)
    checkpoint_line = next(n for n, line in enumerate(lines) if json.loads(line)["type"] == "checkpoint")
    cases = {
        "float index": (entry_line, lambda text: text.replace('"index":9,', '"index":9.0,', 1)),
        "float size": (checkpoint_line, lambda text: re.sub(r'"size":(\d+)', r'"size":\1.0', text, count=1)),
        "duplicate key": (entry_line, lambda text: text.replace('"index":9,', '"index":9,"index":9,', 1)),
        "not JSON": (entry_line, lambda text: text[:-5]),
        "true as index": (entry_line, lambda text: text.replace('"index":9,', '"index":true,', 1)),
    }
    results = {}
    for what, (number, edit) in cases.items():
        edited = list(lines)
        edited[number] = edit(edited[number])
        assert edited[number] != lines[number], what
        path = tmp_path / f"{what.replace(' ', '-')}.jsonl"
        path.write_text("\n".join(edited) + "\n")
        results[what] = (number + 1, await verify_export(log.home, path, "--state",
                                                         str(tmp_path / "fresh.json")))
    for what, (number, result) in results.items():
        message = failure(result)
        assert message.startswith(f"FAILED: export {what.replace(' ', '-')}.jsonl line "
                                  f"{number}: "), (what, message)
        if what == "true as index":  # well-formed JSON, but not an integer index
            assert message.endswith(": entry.index must be an integer, not bool")


# -- the auditor: signatures checked in threads, ahead of the entry being checked -------------------

def tampered_signature(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sig = entries[MSG[3]]["sig"]["sig"]
    entries[MSG[3]]["sig"] = {**entries[MSG[3]]["sig"], "sig": ("B" if sig[0] == "A" else "A") + sig[1:]}
    return entries


def signed_by_bobs_key(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries[MSG[2]]["sig"] = entries[MSG[2] + 1]["sig"]  # bob's ack's signature on alice's message
    return entries


def audit(log: Log, *, threads: int) -> tuple[str, int]:
    """The export through the auditor, as ``audit verify`` feeds it (signatures checked in
    ``threads`` threads, or inline): its verdict, and how many signatures went to the threads."""
    profile = Profile.load(log.home, "audrey")
    assert profile.log_key is not None
    auditor = Auditor(log_key=profile.log_key, authorities=profile.authorities,
                      templates=load_templates(log.home / "protocols"))
    records = load_export(log.export)
    for record in records:
        if record["type"] == "checkpoint":
            auditor.add_checkpoint(record["note"], source="the log")
    entries = [decode_entry({k: v for k, v in r.items() if k != "type"})
               for r in records if r["type"] == "entry"]
    verifiers = Verifiers(threads)
    try:
        for record, decoded in auditor.ahead(entries, verifiers):
            auditor.add_entry(record, decoded)
        verdict = f"passed: {auditor.report.envelopes} envelopes"
    except AuditFailure as exc:
        verdict = exc.message
    finally:
        verifiers.close()
    return verdict, verifiers.started


@pytest.mark.parametrize("edit", [None, tampered_signature, signed_by_bobs_key])
@pytest.mark.parametrize("read_ahead", [1, 4, 256])
def test_an_audit_with_signatures_checked_ahead_gives_the_inline_verdict(
        log: Log, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None,
        read_ahead: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read ahead by 1, 4 or 256 records: the roster documents at the log's start are taken
    before, or after, the envelopes they enroll are read ahead (an unknown key, or another key,
    is checked in turn)."""
    if edit is not None:
        edit_export(log.export, edit)
    monkeypatch.setattr("hotline.audit.verify.READ_AHEAD", read_ahead)
    inline, none_started = audit(log, threads=0)
    ahead, started = audit(log, threads=2)
    assert ahead == inline
    assert none_started == 0
    assert started > 0 if read_ahead < DEMO_ROSTER else started == 0
    if edit is None:
        assert inline == "passed: 10 envelopes"
    else:
        assert inline.startswith(f"entry {MSG[3] if edit is tampered_signature else MSG[2]} "), inline
