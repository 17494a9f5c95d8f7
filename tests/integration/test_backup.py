"""Issue 12, backup and restore: `hotline backup` while the server serves under load, and
`hotline restore`, which verifies what it restores and never silently rolls the log back.

Real servers (in this process, or `hotline serve` in a child process where its log is read), the
real commands in child processes, real SQLite files and keys. Archives are altered with Python's
own ``tarfile`` (an independent writer), as whoever holds one could.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hotline.agent.witness import WitnessAlarm
from hotline.client.connection import Client
from hotline.deployment import init_deployment
from hotline.envelope import Precedence
from hotline.keyfiles import load_private_key
from hotline.store.checkpointfile import checkpoint_path, read_checkpoint_file
from hotline.store.restores import read_restores
from hotline.tlog import Checkpoint, sign_checkpoint
from tests.conftest import (
    DEMO_ROSTER,
    ServerProcess,
    hotline_cli,
    running_server,
    witness_all,
    witness_once,
)

pytestmark = pytest.mark.slow  # real servers or child processes in every test

WAIT = 30  # seconds: a safety net against hangs, never a synchronisation
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
LOAD = {**FAST, "HOTLINE_LIMITS_MEMBER_RATE": "100000"}  # senders as fast as the server goes
NOTICE = {"category": "humanitarian_movement", "nature": "notification",
          "location": {"name": "Crossing point 4"}, "details": "Convoy of 12 trucks."}
ORIGIN = "hotline.test"
KEEP = ("hotline.toml", "keys", "roster", "protocols", "profiles")  # a deployment without its log


# -- helpers ----------------------------------------------------------------------------------------

def database(home: Path) -> Path:
    return home / "hotline.db"


def manifest_of(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        value: dict[str, Any] = json.loads(handle.read())
        return value


def refused(result: subprocess.CompletedProcess[str], code: str) -> str:
    """The command exited 1 with one line ``error: CODE: ...`` and no traceback; that line."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), result.stderr
    return lines[0]


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file of the deployment's log (the database, checkpoint file, records), its key, and
    anything hidden (a temporary file left behind). Not SQLite's -wal and -shm: opening the
    database to see whether a server holds it is an open like any other, which may fold the WAL
    into the database (here the WAL is empty: the database's bytes stay the same)."""
    found = {p.name: p.read_bytes() if p.is_file() else b"<folder>" for p in folder.iterdir()
             if p.name.startswith(("hotline.db", ".")) and not p.name.endswith(("-wal", "-shm"))}
    return {**found, "keys/log.pem": (folder / "keys" / "log.pem").read_bytes()}


async def send(client: Client, text: str, *, notice: bool = False) -> tuple[int, str]:
    """Send a message, its text sealed (or a humanitarian notice: never refused for rate, so
    senders can keep on); its (index, envelope id) once the server accepted it."""
    accepted = await (client.send(channel="north-south", template="humanitarian-notice",
                                  body={**NOTICE, "details": text}, precedence=Precedence.ROUTINE)
                      if notice else
                      client.send(channel="north-south", template="message", body={"text": text},
                                  precedence=Precedence.ROUTINE))
    return int(accepted.index), accepted.id


async def backup_under_load(home: Path, archive: Path) -> tuple[list[tuple[int, str]], int]:
    """Alice sends 10 messages; then alice and bob keep sending while `hotline backup` runs in
    another process. Returns the messages accepted before the backup started, and how many were
    accepted while it ran."""
    async with running_server(home, **LOAD) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        before = [await send(alice, f"before {n}") for n in range(10)]
        stop, started = asyncio.Event(), {"alice": asyncio.Event(), "bob": asyncio.Event()}
        during: list[int] = []

        async def sender(client: Client, name: str) -> None:
            n = 0
            while not stop.is_set():
                during.append((await send(client, f"{name} during {n}", notice=True))[0])
                started[name].set()
                n += 1

        senders = [asyncio.create_task(sender(alice, "alice")), asyncio.create_task(sender(bob, "bob"))]
        for event in started.values():  # both senders are under way before the backup starts
            await asyncio.wait_for(event.wait(), WAIT)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hotline.cli", "--home", str(home), "backup", str(archive),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        count_at_start = len(during)
        out, err = await asyncio.wait_for(process.communicate(), WAIT * 2)
        accepted_during = len(during) - count_at_start
        stop.set()
        await asyncio.gather(*senders)
        assert process.returncode == 0, (out, err)
        last = (await send(alice, "after the backup"))[0]
        await asyncio.wait_for(alice.receipt(last), WAIT)  # a checkpoint covers it: published
    return before, accepted_during


def new_home(home: Path, where: Path) -> Path:
    """The same deployment (config, keys, roster, templates, profiles) on a new host, without
    its log."""
    where.mkdir()
    for name in KEEP:
        source = home / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, where / name)
    return where


def audit_verify(home: Path, url: str, state: Path) -> subprocess.CompletedProcess[str]:
    return hotline_cli(home, "audit", "verify", "--as", "audrey", "--server", url, "--state",
                       str(state), "--require-witnesses", "0")


# -- a backup taken under load restores and verifies ------------------------------------------------

async def test_a_backup_taken_under_load_restores_on_a_new_host_and_verifies(
        home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar"
    before, during = await backup_under_load(home, archive)
    assert during >= 1  # senders were accepted while the backup ran: it did not block them
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    manifest = manifest_of(archive)
    with tarfile.open(archive) as tar:  # one file, three members, never a key
        assert tar.getnames() == ["manifest.json", "hotline.db.checkpoint", "hotline.db"]
    key = load_private_key(home / "keys" / "log.pem")
    assert key.to_pem(None) not in archive.read_bytes()
    assert manifest["log_size"] > before[-1][0]

    host = new_home(home, tmp_path / "restored")
    result = hotline_cli(host, "restore", str(archive))
    assert result.returncode == 0, result.stderr
    assert f"{manifest['log_size']:,} entries audited against" in result.stdout, result.stdout
    assert f"restored: {database(host)} ({manifest['log_size']:,} entries)" in result.stdout
    assert "LOST" not in result.stdout
    assert read_checkpoint_file(checkpoint_path(database(host))) is not None
    assert stat.S_IMODE(database(host).stat().st_mode) == 0o600

    async with running_server(host, **FAST) as server:  # it starts, serves, and holds them all
        bob = await server.client("bob")
        for index, envelope_id in before:
            assert (await bob.fetch(index)).envelope.id == envelope_id
        alice = await server.client("alice")
        index, _ = await send(alice, "on the restored log")
        assert index == manifest["log_size"]
        await asyncio.wait_for(alice.receipt(index), WAIT)
        verified = await asyncio.to_thread(audit_verify, host, server.url, tmp_path / "audrey.json")
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.startswith(f"OK: log {ORIGIN}: {index + 1} entries verified")


# -- restoring it after newer checkpoints were published --------------------------------------------

async def test_restoring_an_older_backup_is_refused_and_forced_names_the_lost_range(
        home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar"
    await backup_under_load(home, archive)
    async with running_server(home, **FAST) as server:  # witnesses and an auditor see the newest
        await witness_all(home, server.url)
        audited = await asyncio.to_thread(audit_verify, home, server.url, tmp_path / "audrey.json")
        assert audited.returncode == 0, audited.stderr
    manifest = manifest_of(archive)
    size, taken = manifest["log_size"], manifest["taken"]
    published = read_checkpoint_file(checkpoint_path(database(home)))
    assert published is not None and published.size > size
    lost = (f"entries {size}..{published.size - 1} ({published.size - size} entries), accepted "
            f"between {taken} (when the backup was taken) and {published.time} — covered by "
            f"checkpoint {published.size} signed {published.time} (the checkpoint file "
            f"{checkpoint_path(database(home))})")
    kept = files_of(home)

    line = refused(hotline_cli(home, "restore", str(archive)), "restore.rolls_back")
    assert line == (f"error: restore.rolls_back: restoring would roll the log back: the backup "
                    f"holds {size} entries, but {lost}. Those entries would be lost. Restore a "
                    "backup taken after that checkpoint; or, if none exists, restore this one "
                    "with --force, accepting the loss (witnesses will then flag this log as "
                    "rolled back: start a new log under a new key and origin instead, and keep "
                    "this one for audit)")
    assert files_of(home) == kept  # nothing changed, nothing left behind

    forced = hotline_cli(home, "restore", str(archive), "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"LOST: {lost}\n" in forced.stdout, forced.stdout
    assert "start a new log with a new key and origin" in forced.stdout
    # nothing deleted: the replaced database and checkpoint file are kept aside, intact
    aside = {p.name.split(".replaced-")[0]: p for p in home.glob("hotline.db*.replaced-*")}
    assert set(aside) == {"hotline.db", "hotline.db.checkpoint"}, sorted(home.iterdir())
    assert aside["hotline.db.checkpoint"].read_bytes() == kept["hotline.db.checkpoint"]
    with sqlite3.connect(f"file:{aside['hotline.db']}?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] >= published.size
    # the checkpoint file is now the backup's, so the server starts; the loss is on record
    restored = read_checkpoint_file(checkpoint_path(database(home)))
    assert restored is not None and restored.size == manifest["checkpoint"]["size"]
    (record,) = read_restores(home / "hotline.db.restores")
    assert record.lost is not None
    assert record.lost.first == size and record.lost.last == published.size - 1
    assert record.lost.checkpoint.note == published.note

    process = ServerProcess(home)
    try:
        url = process.start(**FAST)
        warnings = [json.loads(line) for line in process.log.read_text().splitlines()
                    if "store.restored_with_loss" in line]
        assert warnings and warnings[-1]["first"] == size
        assert warnings[-1]["last"] == published.size - 1
        assert warnings[-1]["checkpoint"] == published.size
        # ... and what everyone who saw checkpoint `published.size` sees now: a rollback
        with pytest.raises(WitnessAlarm, match="smaller than size"):
            await asyncio.to_thread(witness_once, home, url, "north-agent")
        verified = await asyncio.to_thread(audit_verify, home, url, tmp_path / "audrey.json")
        assert verified.returncode == 1 and "rolled back" in verified.stderr, verified.stderr
    finally:
        process.stop()


async def test_a_witness_copy_catches_a_rollback_the_disk_no_longer_shows(
        home: Path, tmp_path: Path) -> None:
    """The disk lost the database and its checkpoint file: only a copy kept elsewhere (here the
    saved checkpoint, as an operator or witness kept it) shows what was published."""
    archive = tmp_path / "backup.tar"
    await backup_under_load(home, archive)
    published = tmp_path / "published.json"
    shutil.copy(checkpoint_path(database(home)), published)
    host = new_home(home, tmp_path / "new-host")
    refused(hotline_cli(host, "restore", str(archive), "--published", str(published)),
            "restore.rolls_back")
    assert not database(host).exists()
    auditor_state = tmp_path / "audit-state.json"  # an auditor's state file is read as well
    note = json.loads(published.read_text())["note"]
    auditor_state.write_text(json.dumps({"checkpoints": [note]}))
    refused(hotline_cli(host, "restore", str(archive), "--published", str(auditor_state)),
            "restore.rolls_back")
    assert hotline_cli(host, "restore", str(archive)).returncode == 0  # without it: nothing known


# -- what is published must be this log's, and the backup consistent with it ------------------------

@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A deployment with a few messages, stopped, and a backup of it."""
    root = tmp_path_factory.mktemp("made")
    home = root / "home"
    init_deployment(home, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin=ORIGIN, force=False)

    async def fill() -> None:
        async with running_server(home, **FAST) as server:
            alice = await server.client("alice")
            for n in range(3):
                index, _ = await send(alice, f"message {n}")
            await asyncio.wait_for(alice.receipt(index), WAIT)
    asyncio.run(fill())
    archive = root / "backup.tar"
    result = hotline_cli(home, "backup", str(archive))
    assert result.returncode == 0, result.stderr
    return home, archive


@pytest.fixture
def deployment(made: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the made deployment (log included) and of its backup, for one test to alter."""
    home, archive = made
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    shutil.copy(archive, tmp_path / "backup.tar")
    return copy, tmp_path / "backup.tar"


def test_a_published_checkpoint_of_another_history_is_refused_even_forced(
        deployment: tuple[Path, Path], tmp_path: Path) -> None:
    home, archive = deployment
    size = manifest_of(archive)["log_size"]
    key = load_private_key(home / "keys" / "log.pem")
    other = tmp_path / "other.note"  # this log's key signed another root at a size it holds
    other.write_text(sign_checkpoint(Checkpoint(ORIGIN, size - 1, b"\x07" * 32), key))
    for extra in ((), ("--force",)):
        line = refused(hotline_cli(home, "restore", str(archive), "--published", str(other), *extra),
                       "restore.inconsistent")
        assert f"checkpoint {size - 1} signed at a time its source does not give ({other})" in line
        assert "cannot be restored, even with --force" in line
    stranger = tmp_path / "stranger"  # a note another log's key signed is no evidence at all
    init_deployment(stranger, parties=["north", "south"], heartbeat_interval=10, port=0,
                    origin=ORIGIN, force=False)
    forged = tmp_path / "forged.note"
    forged.write_text(sign_checkpoint(Checkpoint(ORIGIN, size + 50, b"\x07" * 32),
                                      load_private_key(stranger / "keys" / "log.pem")))
    refused(hotline_cli(home, "restore", str(archive), "--published", str(forged)),
            "restore.bad_published")


def test_restore_is_refused_while_the_server_runs(deployment: tuple[Path, Path]) -> None:
    home, archive = deployment
    process = ServerProcess(home)
    try:
        process.start(**FAST)
        kept = files_of(home)
        line = refused(hotline_cli(home, "restore", str(archive), "--force"),
                       "restore.server_running")
        assert "stop `hotline serve`" in line
        assert files_of(home) == kept
    finally:
        process.stop()
    assert hotline_cli(home, "restore", str(archive)).returncode == 0  # stopped: it restores


def test_backup_never_overwrites_a_file_unless_forced(deployment: tuple[Path, Path]) -> None:
    home, archive = deployment
    precious = archive.with_name("precious")
    precious.write_bytes(b"someone's file")
    line = refused(hotline_cli(home, "backup", str(precious)), "backup.exists")
    assert "--force" in line and precious.read_bytes() == b"someone's file"
    assert hotline_cli(home, "backup", str(precious), "--force").returncode == 0
    assert manifest_of(precious)["log_size"] == manifest_of(archive)["log_size"]
    assert sorted(p.name for p in precious.parent.iterdir() if p.name.startswith(".")) == []


# -- a tampered archive is refused ------------------------------------------------------------------

def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        found = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            found[member.name] = handle.read()
        return found


def rewrite(archive: Path, items: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in items:
            tar.addfile(info, None if data is None else io.BytesIO(data))


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def with_manifest(found: dict[str, bytes], db: bytes) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """The members with ``db`` as the database and a manifest whose hashes match it."""
    manifest = json.loads(found["manifest.json"])
    manifest["members"]["hotline.db"] = {"size": len(db), "sha256": hashlib.sha256(db).hexdigest()}
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    return [regular("manifest.json", text), regular("hotline.db.checkpoint",
                                                     found["hotline.db.checkpoint"]),
            regular("hotline.db", db)]


def flip_a_bit(archive: Path, home: Path) -> None:
    data = bytearray(archive.read_bytes())
    at = data.find(b"SQLite format 3") + 4096 + 100  # inside the database's second page
    data[at] ^= 0x01
    archive.write_bytes(bytes(data))


def wrong_hash(archive: Path, home: Path) -> None:
    found = members(archive)
    manifest = json.loads(found["manifest.json"])
    manifest["members"]["hotline.db"]["sha256"] = "0" * 64
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    rewrite(archive, [regular("manifest.json", text),
                      *(regular(n, found[n]) for n in ("hotline.db.checkpoint", "hotline.db"))])


def path_traversal(archive: Path, home: Path) -> None:
    found = members(archive)
    rewrite(archive, [regular("manifest.json", found["manifest.json"]),
                      regular("hotline.db.checkpoint", found["hotline.db.checkpoint"]),
                      regular("../hotline.db", found["hotline.db"])])


def symlink(archive: Path, home: Path) -> None:
    found = members(archive)
    link = tarfile.TarInfo("hotline.db")
    link.type, link.linkname = tarfile.SYMTYPE, str(home / "keys" / "log.pem")
    rewrite(archive, [regular("manifest.json", found["manifest.json"]),
                      regular("hotline.db.checkpoint", found["hotline.db.checkpoint"]), (link, None)])


def oversized(archive: Path, home: Path) -> None:
    """The database's header claims 7 GiB (its checksum made right)."""
    data = bytearray(archive.read_bytes())
    header = data.find(b"hotline.db\0")
    data[header + 124:header + 136] = b"%011o\0" % (7 << 30)
    data[header + 148:header + 156] = b" " * 8
    data[header + 148:header + 156] = b"%06o\0 " % sum(data[header:header + 512])
    archive.write_bytes(bytes(data))


def huge_manifest(archive: Path, home: Path) -> None:
    found = members(archive)
    rewrite(archive, [regular("manifest.json", b" " * (1 << 20)),
                      *(regular(n, found[n]) for n in ("hotline.db.checkpoint", "hotline.db"))])


def extra_member(archive: Path, home: Path) -> None:
    found = members(archive)
    rewrite(archive, [*(regular(n, d) for n, d in found.items()), regular("hotline.toml", b"x")])


def truncated(archive: Path, home: Path) -> None:
    data = archive.read_bytes()
    archive.write_bytes(data[:len(data) // 2])


def not_an_archive(archive: Path, home: Path) -> None:
    archive.write_bytes(os.urandom(4096))


def edited_with_hashes_remade(archive: Path, home: Path) -> None:
    """Whoever holds the archive edits an entry (the sealed text of "message 1", entry
    DEMO_ROSTER + 1: its digest in the signed body) and recomputes every hash in the manifest."""
    found = members(archive)
    db = found["hotline.db"]
    copy = archive.with_name("inspected.db")  # read with SQLite, which writes nothing beside it
    copy.write_bytes(db)
    try:
        with contextlib.closing(sqlite3.connect(f"file:{copy}?immutable=1", uri=True)) as sql:
            (leaf,) = sql.execute("SELECT leaf FROM entries WHERE idx = ?",
                                  (DEMO_ROSTER + 1,)).fetchone()
    finally:
        copy.unlink()
    digest = json.loads(leaf)["envelope"]["sealed"]["digests"]["text"].encode()
    assert db.count(digest) == 1  # in the leaf's bytes, and nowhere else
    at = db.find(digest)
    edited = (b"B" if digest[:1] == b"A" else b"A") + digest[1:]
    rewrite(archive, with_manifest(found, db[:at] + edited + db[at + len(digest):]))


def another_deployment(archive: Path, home: Path) -> None:
    """A real backup of another deployment of the same origin: another log key."""
    other = archive.with_name("other-home")
    init_deployment(other, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin=ORIGIN, force=False)
    asyncio.run(_start_once(other))
    archive.unlink()
    result = hotline_cli(other, "backup", str(archive))
    assert result.returncode == 0, result.stderr


async def _start_once(home: Path) -> None:
    async with running_server(home, **FAST):
        pass


TAMPERED: list[tuple[Callable[[Path, Path], None], str, str]] = [
    (flip_a_bit, "restore.hash_mismatch", "member hotline.db does not have the SHA-256"),
    (wrong_hash, "restore.hash_mismatch", "member hotline.db does not have the SHA-256"),
    (path_traversal, "restore.bad_archive", "'../hotline.db' is not the one a backup holds"),
    (symlink, "restore.bad_archive", "member hotline.db is a symbolic link"),
    (oversized, "restore.bad_archive", "says it is 7516192768 bytes, more than the archive holds"),
    (huge_manifest, "restore.bad_archive", "member manifest.json is 1048576 bytes, more than"),
    (extra_member, "restore.bad_archive", "the archive holds more after member hotline.db"),
    (truncated, "restore.bad_archive", "bytes, more than the archive holds after its header"),
    (not_an_archive, "restore.bad_archive", "header checksum of member manifest.json"),
    (edited_with_hashes_remade, "restore.bad_log", "the backup's log does not verify"),
    (another_deployment, "restore.wrong_log", "not signed by this deployment's log key"),
]


@pytest.mark.parametrize(("alter", "code", "said"), TAMPERED, ids=[t[0].__name__ for t in TAMPERED])
def test_a_tampered_archive_is_refused(deployment: tuple[Path, Path], alter: Callable[[Path, Path], None],
                                       code: str, said: str) -> None:
    home, archive = deployment
    alter(archive, home)
    kept = files_of(home)
    line = refused(hotline_cli(home, "restore", str(archive), "--force"), code)
    assert said in line, line
    assert files_of(home) == kept  # the log and its key untouched, no temporary file left
    assert not (home.parent / "hotline.db").exists()  # nothing written outside the home
