"""Issue 19: a liaison uploads an attachment over its authenticated WebSocket in chunks; a line
cut during the upload resumes where the server's copy stands, and the server keeps the content
only once all of it has arrived and its SHA-256 is the one named. Who may upload, how large and
how much at once are bounded, and every malformed frame is a typed error. Real server, real
sockets, real SQLite file and PostgreSQL database."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hotline.attachments.refs import AttachmentRef
from hotline.canonical import dumps, parse
from hotline.client.connection import Client, ConnectError
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation, SealError
from hotline.keyfiles import load_private_key
from hotline.keys import b64url
from hotline.norms.files import load_templates
from hotline.norms.template import NamedAttachment
from hotline.roster import decode_document, sign_document
from hotline.store import Store
from hotline.wire import frames
from tests.conftest import Running, ServerProcess, hotline_cli, running_server
from tests.unit.norms.test_template_attachments import FORM

pytestmark = pytest.mark.both_stores

CONTENT = hashlib.sha256(b"seed").digest() * (1_500_000 // 32)  # 1.5 MB: 23 chunks
DIGEST = b64url(hashlib.sha256(CONTENT).digest())


def reader(content: bytes, cut: Callable[[int], None] | None = None) -> Callable[[int, int], bytes]:
    """``read_at`` over ``content``; ``cut(start)`` is called before each chunk is read."""
    def read_at(start: int, n: int) -> bytes:
        if cut is not None:
            cut(start)
        return content[start:start + n]
    return read_at


def cut_after(client: Client, limit: int) -> Callable[[int], None]:
    """Cut the line (the TCP connection aborted, as a network fault does) once ``limit`` bytes
    have been read for sending."""
    def cut(start: int) -> None:
        if start >= limit and client.ws is not None:
            client.ws.transport.abort()
    return cut


async def stored(store: Store, digest: str = DIGEST) -> bytes:
    """The content the store keeps for ``digest``."""
    content, at = b"", -1
    while page := await store.attachment_chunks(digest, after=at):
        content += b"".join(data for _, data in page)
        at = page[-1][0]
    return content


async def test_an_upload_cut_twice_resumes_and_the_content_is_kept_once_verified(home: Path) -> None:
    async with running_server(home) as server:
        store = server.hotline.store
        held = 0
        # The line is cut twice, part-way: each time after the server answered for some chunks
        # (at most UPLOAD_WINDOW = 8 of 64 KiB are in flight unanswered).
        for limit in (700_000, 1_300_000):
            alice = await server.client("alice")
            with pytest.raises(ConnectError):
                await alice.upload(reader(CONTENT, cut_after(alice, limit)), sha256=DIGEST,
                                   size=len(CONTENT))
            state = await store.upload_state("north", DIGEST)
            assert state is not None and held < state.received < len(CONTENT)
            held = state.received
            assert await store.attachment_size(DIGEST) is None
        alice = await server.client("alice")
        answer = await alice.upload(reader(CONTENT), sha256=DIGEST, size=len(CONTENT))
        assert answer.stored and answer.received == len(CONTENT)
        assert await stored(store) == CONTENT
        assert await store.upload_state("north", DIGEST) is None
        again = await alice.upload(reader(CONTENT), sha256=DIGEST, size=len(CONTENT))
        assert again.stored  # its answer lost with a line, asked again: nothing is resent


async def test_bytes_that_are_not_the_named_digests_are_refused_and_dropped(home: Path) -> None:
    forged = bytes(len(CONTENT))
    async with running_server(home) as server:
        alice = await server.client("alice")
        with pytest.raises(ProtocolViolation) as refused:
            await alice.upload(reader(forged), sha256=DIGEST, size=len(CONTENT))
        assert refused.value.code == Code.ATTACHMENT_DIGEST_MISMATCH
        store = server.hotline.store
        assert await store.upload_state("north", DIGEST) is None  # to be sent again
        assert await store.attachment_size(DIGEST) is None
        bob = await server.client("bob")  # another party's upload of that digest is its own
        assert (await bob.upload(reader(CONTENT), sha256=DIGEST, size=len(CONTENT))).stored
        status = await alice._request(frames.UploadStatus(sha256=DIGEST, size=len(CONTENT),
                                                          req=alice.session.next_req()),
                                      frames.Uploaded)
        assert (status.received, status.stored) == (0, False)  # north never learns south's


async def refusal(client: Client, content: bytes, *, size: int | None = None) -> str:
    digest = b64url(hashlib.sha256(content).digest())
    with pytest.raises(ProtocolViolation) as refused:
        await client.upload(reader(content), sha256=digest, size=len(content) if size is None else size)
    return str(refused.value.code)


async def test_who_may_upload_how_large_and_how_much_at_once_is_bounded(home: Path) -> None:
    async with running_server(home, HOTLINE_LIMITS_ATTACHMENT_BYTES="200000",
                              HOTLINE_LIMITS_UPLOADS_BYTES="300000") as server:
        agent = await server.client("north-agent")
        assert await refusal(agent, b"an agent's file") == Code.ATTACHMENT_REFUSED
        alice = await server.client("alice")
        assert await refusal(alice, os.urandom(200_001)) == Code.ATTACHMENT_REFUSED
        first, second = os.urandom(200_000), os.urandom(150_000)
        digest = b64url(hashlib.sha256(first).digest())
        begun = await alice._request(frames.Upload(sha256=digest, size=len(first), start=0,
                                                   data="AAAA", req=alice.session.next_req()),
                                     frames.Uploaded)
        assert (begun.received, begun.stored) == (3, False)  # under way, holding 200,000
        assert await refusal(alice, second) == Code.ATTACHMENT_REFUSED  # past 300,000
        carol = await server.client("carol")  # each party has its own share
        assert (await carol.upload(reader(second), sha256=b64url(hashlib.sha256(second).digest()),
                                   size=len(second))).stored


async def test_a_partys_day_of_uploads_is_bounded_and_what_is_never_named_expires(
        home: Path) -> None:
    """``limits.upload_bytes_per_day``: a party's share comes back as its bytes leave the day.
    ``limits.upload_expiry``: an upload with no chunk for that long is dropped (it stops counting
    against the party's uploads under way), and so is content no message named for that long;
    content a logged message names stays. The server's clock is the test's."""
    add_dossier_agreement(home)
    now = [datetime.now(UTC)]
    first, second, unsent = os.urandom(200_000), os.urandom(150_000), os.urandom(1000)
    digest = {name: b64url(hashlib.sha256(data).digest())
              for name, data in (("first", first), ("second", second), ("unsent", unsent))}
    async with running_server(home, lambda: now[0], HOTLINE_LIMITS_UPLOADS_BYTES="300000",
                              HOTLINE_LIMITS_UPLOAD_BYTES_PER_DAY="250000",
                              HOTLINE_LIMITS_UPLOAD_EXPIRY="3600") as server:
        store, alice = server.hotline.store, await server.client("alice")
        begun = await alice._request(frames.Upload(sha256=digest["first"], size=len(first),
                                                   start=0, data="AAAA",
                                                   req=alice.session.next_req()), frames.Uploaded)
        assert begun.received == 3  # ... then alice goes quiet: 200,000 of the 300,000 held
        assert await refusal(alice, second) == Code.ATTACHMENT_REFUSED
        now[0] += timedelta(hours=2)  # an hour without a chunk: the first upload is dropped
        assert (await alice.upload(reader(second), sha256=digest["second"], size=len(second))).stored
        assert await store.upload_state("north", digest["first"]) is None
        assert (await alice.upload(reader(unsent), sha256=digest["unsent"], size=len(unsent))).stored
        ref = {"sha256": digest["second"], "size": len(second), "media_type": "application/pdf",
               "name": "annex.pdf"}
        await alice.send(channel="north-south", template="dossier",  # the second is named
                         body={"text": "the annex", "files": [ref]})
        with pytest.raises(ProtocolViolation) as spent:  # 151,003 of 250,000 used today
            await alice.upload(reader(first), sha256=digest["first"], size=len(first))
        assert spent.value.code == Code.ATTACHMENT_REFUSED
        assert "north has uploaded its share of 250000 bytes in 24 hours" in spent.value.message
        now[0] += timedelta(hours=24)  # the day has passed: the upload resumes where it stopped
        assert (await alice.upload(reader(first), sha256=digest["first"], size=len(first))).stored
        assert await store.attachment_size(digest["unsent"]) == len(unsent)
        # the next upload begins (as the leader's periodic sweep does): what was kept a day ago
        # and never named is forgotten; what a logged message names stays
        assert await refusal(alice, b"x" * 300_001) == Code.ATTACHMENT_REFUSED
        assert await store.attachment_size(digest["unsent"]) is None
        assert await store.attachment_size(digest["second"]) == len(second)
        assert await store.attachment_size(digest["first"]) == len(first)


@pytest.mark.parametrize(("fields", "code"), [
    ({"sha256": "not-a-digest"}, Code.FRAME_MALFORMED),
    ({"start": -1}, Code.FRAME_MALFORMED),
    ({"size": 2 ** 31}, Code.FRAME_MALFORMED),
    ({"data": "!!!!"}, Code.ATTACHMENT_INVALID),
    ({"data": "A" * 90_000}, Code.ATTACHMENT_INVALID),
    ({"size": 10, "start": 8, "data": "AAAA"}, None),  # past its size: not taken
    ({"start": 3, "data": "AAAA"}, None),  # a gap: not taken
])
async def test_a_malformed_or_misplaced_chunk_writes_nothing(server: Running, fields: dict[str, object],
                                                             code: str | None) -> None:
    alice = await server.client("alice")
    frame = {"sha256": DIGEST, "size": len(CONTENT), "start": 0, "data": "AAAA", **fields}
    request = frames.Upload(**frame, req=alice.session.next_req())  # type: ignore[arg-type]
    if code is None:
        answer = await alice._request(request, frames.Uploaded)
        assert (answer.received, answer.stored) == (0, False)
    else:
        with pytest.raises(ProtocolViolation) as refused:
            await alice._request(request, frames.Uploaded)
        assert refused.value.code == code
    held = await server.hotline.store.upload_state("north", str(frame["sha256"]))
    assert held is None or held.received == 0


# -- a message with attachments is accepted only once they are all stored -----------------------

def add_dossier_agreement(home: Path, form: str = FORM) -> None:
    """The dossier template (files: PDF or PNG, 2 MB, 2 at most) in a version 2 of the demo
    agreement, signed by every party's authority (the server logs it at start)."""
    (home / "protocols" / "dossier.yaml").write_text(form)
    templates = load_templates(home / "protocols")
    signed = parse((home / "roster" / "90-agreement-north-south-v1.json").read_bytes())
    doc = dict(signed["document"], version=2, templates=[t.ref() for t in templates])
    keys = [load_private_key(home / "keys" / f"authority-{p}.pem")
            for p in ("north", "south", "mediator")]
    (home / "roster" / "91-agreement-north-south-v2.json").write_text(
        dumps(sign_document(decode_document(doc), *keys).to_json()))


async def test_a_message_naming_its_attachments_is_accepted_only_once_its_party_stored_them(
        home: Path) -> None:
    add_dossier_agreement(home)
    report = b"%PDF-1.7 the report" * 1000
    ref = {"sha256": b64url(hashlib.sha256(report).digest()), "size": len(report),
           "media_type": "application/pdf", "name": "report.pdf"}
    async with running_server(home) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        body = {"text": "see the report", "files": [ref]}
        with pytest.raises(ProtocolViolation) as missing:  # not uploaded yet: never accepted
            await alice.send(channel="north-south", template="dossier", body=body)
        assert missing.value.code == Code.ATTACHMENT_MISSING
        assert "body.files[0]" in missing.value.message and "report" not in missing.value.message
        assert (await bob.upload(reader(report), sha256=ref["sha256"], size=len(report))).stored
        with pytest.raises(ProtocolViolation) as others:  # south's upload is not north's
            await alice.send(channel="north-south", template="dossier", body=body)
        assert others.value.code == Code.ATTACHMENT_MISSING
        assert (await alice.upload(reader(report), sha256=ref["sha256"], size=len(report))).stored
        with pytest.raises(ProtocolViolation) as wrong_size:
            await alice.send(channel="north-south", template="dossier",
                             body={**body, "files": [{**ref, "size": len(report) - 1}]})
        assert wrong_size.value.code == Code.ATTACHMENT_MISSING
        accepted = await alice.send(channel="north-south", template="dossier", body=body)
        delivered = await bob.fetch(accepted.index)
        assert delivered.envelope.body["files"] == [ref]  # the log commits to the reference


# -- download -------------------------------------------------------------------------------------

class CutAfter:
    """A file that cuts ``client``'s line (TCP aborted) once it holds ``limit`` bytes."""

    def __init__(self, path: Path, client: Client, limit: int) -> None:
        self.file, self.client, self.limit = path.open("a+b"), client, limit

    def __getattr__(self, name: str) -> object:
        return getattr(self.file, name)

    def write(self, data: bytes) -> int:
        written = self.file.write(data)
        if self.file.tell() >= self.limit and self.client.ws is not None:
            self.client.ws.transport.abort()
        return written


async def download_cut_twice(server: Running, index: int, named: NamedAttachment, saved: Path,
                             size: int) -> None:
    """bob downloads ``named`` of entry ``index`` into ``saved``, his line cut twice part-way
    (at 400 kB and 1 MB), each time resuming from what the file holds."""
    for limit in (400_000, 1_000_000):
        bob = await server.client("bob")
        out = CutAfter(saved, bob, limit)
        with pytest.raises(ConnectError):
            await bob.download(index, named, out)  # type: ignore[arg-type]
        out.file.close()
        assert limit <= saved.stat().st_size < size
    bob = await server.client("bob")
    with saved.open("a+b") as resumed:
        await bob.download(index, named, resumed)


async def logged_dossier(server: Running, content: bytes, *,
                         receipt: bool = False) -> tuple[int, NamedAttachment]:
    """alice's dossier with ``content`` as its file, logged (``receipt``: and covered by a
    checkpoint)."""
    alice = await server.client("alice")
    ref = AttachmentRef(sha256=b64url(hashlib.sha256(content).digest()), size=len(content),
                        media_type="application/pdf", name="report.pdf")
    assert (await alice.upload(reader(content), sha256=ref.sha256, size=ref.size)).stored
    sent = await alice.send(channel="north-south", template="dossier",
                            body={"text": "see the report", "files": [ref.to_json()]})
    if receipt:
        await asyncio.wait_for(alice.receipt(sent.index), 10)
    return sent.index, NamedAttachment("files", 0, ref)


async def test_a_download_cut_twice_resumes_and_is_verified_before_it_is_kept(
        home: Path, tmp_path: Path) -> None:
    add_dossier_agreement(home)
    saved = tmp_path / "report.pdf"
    async with running_server(home) as server:
        index, named = await logged_dossier(server, CONTENT)
        await download_cut_twice(server, index, named, saved, len(CONTENT))
    assert saved.read_bytes() == CONTENT


async def test_a_chunk_altered_on_the_servers_disk_is_refused_naming_the_attachment(
        home: Path, tmp_path: Path, store_engine: str) -> None:
    if store_engine == "postgres":
        pytest.skip("the disk edited here is the SQLite file")
    add_dossier_agreement(home)
    async with running_server(home) as server:
        index, named = await logged_dossier(server, CONTENT)
    ref = named.ref
    with sqlite3.connect(home / "hotline.db") as db:  # the server stopped: its disk edited
        start, data = db.execute("SELECT start, data FROM attachment_chunks WHERE sha256 = ? "
                                 "ORDER BY start LIMIT 1 OFFSET 3", (ref.sha256,)).fetchone()
        db.execute("UPDATE attachment_chunks SET data = ? WHERE sha256 = ? AND start = ?",
                   (bytes([data[0] ^ 1]) + data[1:], ref.sha256, start))
    saved = tmp_path / "report.pdf"
    async with running_server(home) as server:
        bob = await server.client("bob")
        with saved.open("a+b") as out, pytest.raises(SealError) as refused:
            await bob.download(index, named, out)
        assert refused.value.code == Code.ATTACHMENT_DIGEST_MISMATCH
        assert refused.value.message.startswith(f"body.files[0] of entry {index}: ")
        assert saved.read_bytes() == b""  # nothing of it is kept
        for field, position, what in (("files", 1, Code.ATTACHMENT_MISSING),
                                      ("other", 0, Code.ATTACHMENT_MISSING)):
            with pytest.raises(ProtocolViolation) as missing:
                await bob.download(index, NamedAttachment(field, position, ref), io.BytesIO())
            assert missing.value.code == what
        with pytest.raises(ProtocolViolation) as no_entry:  # a roster entry names no attachment
            await bob.download(0, named, io.BytesIO())
        assert no_entry.value.code == Code.LOG_NO_ENTRY


# -- the command -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_send_attach_uploads_the_files_and_fetch_saves_them_verified(
        server_process: ServerProcess, tmp_path: Path) -> None:
    add_dossier_agreement(server_process.home)
    url = server_process.start()
    home = server_process.home
    report = tmp_path / "convoy report.pdf"
    report.write_bytes(b"%PDF-1.7 " + CONTENT[:300_000])
    sent = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel", "north-south",
                       "--template", "dossier", "--field", "text=see the report",
                       "--attach", f"files={report}")
    assert sent.returncode == 0, sent.stderr
    assert "uploaded convoy report.pdf (300,009 bytes, application/pdf)" in sent.stdout
    assert "accepted index=" in sent.stdout
    heard = hotline_cli(home, "listen", "--as", "bob", "--server", url, "--after", "-1",
                        "--count", "1", "--json")
    assert heard.returncode == 0, heard.stderr
    line = json.loads(heard.stdout.splitlines()[0])
    assert line["body"]["files"] == [{"sha256": b64url(hashlib.sha256(report.read_bytes()).digest()),
                                      "size": 300_009, "media_type": "application/pdf",
                                      "name": "convoy report.pdf"}]
    index = line["index"]
    saved = tmp_path / "saved"
    fetched = hotline_cli(home, "fetch", "--as", "bob", "--server", url, "--index", str(index),
                          "--out", str(saved))
    assert fetched.returncode == 0, fetched.stderr
    assert "body.files[0]: saved" in fetched.stdout and "its SHA-256 the signed one" in fetched.stdout
    assert (saved / "convoy report.pdf").read_bytes() == report.read_bytes()
    assert [p.name for p in saved.iterdir()] == ["convoy report.pdf"]  # no .part left
    again = hotline_cli(home, "fetch", "--as", "bob", "--server", url, "--index", str(index),
                        "--out", str(saved))
    assert again.returncode == 0 and "is already saved" in again.stdout, again.stderr
    (saved / "convoy report.pdf").write_bytes(b"something else")
    clash = hotline_cli(home, "fetch", "--as", "bob", "--server", url, "--index", str(index),
                        "--out", str(saved))
    assert clash.returncode == 1 and "exists with other content" in clash.stderr
    assert (saved / "convoy report.pdf").read_bytes() == b"something else"  # never overwritten
    for attach, said in ((f"pictures={report}", "has no attachment field 'pictures'"),
                         (f"files={tmp_path / 'none.pdf'}", "is not a file"),
                         ("files", "is not FIELD=PATH")):
        refused = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel",
                              "north-south", "--template", "dossier", "--field", "text=x",
                              "--attach", attach)
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr


# -- the audit -------------------------------------------------------------------------------------

async def test_audit_verify_checks_the_files_it_is_given_against_the_log(
        home: Path, tmp_path: Path) -> None:
    """`hotline audit verify --attachments DIR`: each file under DIR is matched to the verified
    entry that names its SHA-256 and size; a file no entry names fails the audit, naming it."""
    add_dossier_agreement(home)
    given = tmp_path / "given"
    given.mkdir()
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        index, named = await logged_dossier(server, CONTENT, receipt=True)
        bob = await server.client("bob")
        with (given / "report.pdf").open("a+b") as out:
            await bob.download(index, named, out)
        command = ["audit", "verify", "--as", "audrey", "--server", server.url,
                   "--require-witnesses", "0", "--state", str(home / "audit.json"),
                   "--attachments", str(given)]
        checked = await asyncio.to_thread(hotline_cli, home, *command)
        assert checked.returncode == 0, checked.stderr
        assert "attachments: 1 named by verified entries; 1 of the 1 files given match one" in \
            checked.stdout
        assert (f"{given / 'report.pdf'}: entry {index} body.files[0]: report.pdf (1,500,000 "
                "bytes, application/pdf), its SHA-256 the signed one") in checked.stdout
        (given / "annex.pdf").write_bytes(CONTENT[:-1])  # not what any entry names
        failed = await asyncio.to_thread(hotline_cli, home, *command)
        assert failed.returncode == 1
        assert f"FAILED: {given / 'annex.pdf'} (1,499,999 bytes) is named by no verified entry" in \
            failed.stderr
        as_json = await asyncio.to_thread(hotline_cli, home, *command, "--json")
        assert as_json.returncode == 1
        files = json.loads(as_json.stdout)["attachments"]
        assert files["unnamed"] == [str(given / "annex.pdf")] and files["named"] == 1
        assert [(m["index"], m["where"]) for m in files["matched"]] == [(index, "body.files[0]")]
        report = await asyncio.to_thread(hotline_cli, home, "audit", "report", "--as", "audrey",
                                         "--server", server.url, "--channel", "north-south",
                                         "--require-witnesses", "0")
        assert report.returncode == 0, report.stderr
        assert "Attached files: 1 (named by SHA-256 in verified entries" in report.stdout
        assert "body.files[0]" in report.stdout and named.ref.sha256 in report.stdout
