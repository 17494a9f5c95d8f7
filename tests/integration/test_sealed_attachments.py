"""Issue 19, acceptance 3: a sealed attachment field (``files``, sealed to south) carries a file
with a marker through `hotline send --attach` and `hotline fetch`. Only the sealed stream leaves
the sender: the server's database, every file under the home and the server's log output hold no
trace of the marker; bob (south) saves the very file, opened chunk by chunk, also after his line
is cut part-way; carol (mediator), alice (north, the sender, no reader) and the auditor obtain
neither the stream nor the key. A stream altered on the server's disk does not open, and the
reader is told which chunk of which attachment. Real server, real sockets, real SQLite file and
PostgreSQL database, real keys."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Input

from hotline.attachments.refs import SealedAttachmentRef
from hotline.attachments.stream import StreamPlace, new_key, seal_stream
from hotline.client.connection import Client
from hotline.client.outbox import OutboxState
from hotline.client.sealed_view import SealedView
from hotline.client.sealer import keys_of, readers_for, sealed
from hotline.console.screens import ComposeScreen, TextScreen
from hotline.envelope import new_envelope_id
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation
from hotline.keys import b64url
from hotline.norms.template import NamedAttachment
from hotline.sealing import StoredStream
from hotline.wire import frames
from tests.conftest import Running, hotline_cli, running_server
from tests.integration.test_attachment_upload import add_dossier_agreement, download_cut_twice, stored
from tests.integration.test_console import (
    Server,
    connected,
    console,
    messages_text,
    screen_text,
    until,
)
from tests.unit.norms.test_template_attachments import SEALED_FORM

MARKER = b"MARKER-sealed-attachment-7c41-convoy-photo "
CONTENT = MARKER * 35_000 + os.urandom(1000)  # 1.5 MB: 24 sealed chunks


async def sent_sealed(server: Running, tmp_path: Path) -> int:
    """alice sends the file through `hotline send --attach`: sealed, then uploaded."""
    photo = tmp_path / "convoy.png"
    photo.write_bytes(CONTENT)
    sent = await asyncio.to_thread(
        hotline_cli, server.home, "send", "--as", "alice", "--server", server.url, "--channel",
        "north-south", "--template", "dossier", "--field", "text=the convoy, photographed",
        "--attach", f"files={photo}")
    assert sent.returncode == 0, sent.stderr
    assert (f"uploaded convoy.png ({len(CONTENT):,} bytes, image/png, sealed to the readers of "
            "files)") in sent.stdout
    assert "sealed files to bob (south)" in sent.stdout
    match = re.search(r"accepted index=(\d+)", sent.stdout)
    assert match is not None, sent.stdout
    return int(match.group(1))


async def opened_by(client: Client, home: Path, index: int) -> NamedAttachment:
    """The attachment as ``client``'s member opens it: its reference, key and stream."""
    delivered = await client.fetch(index)
    view = SealedView(home, party=client.party, member=client.member, passphrase=None,
                      templates=client.templates)
    assert view.problem is None, view.problem
    opened = {name: d.value for name, d in view.opened(delivered.envelope).items()}
    template = client.templates.latest("dossier")
    assert template is not None
    [named] = template.opened_attachments(delivered.envelope, opened)
    return named


async def refused(client: Client, index: int) -> str:
    """What the server answers ``client`` asking for the stored stream itself."""
    with pytest.raises(ProtocolViolation) as refusal:
        await client._request(frames.Download(index=index, field="files", position=0, start=0,
                                              req=client.session.next_req()), frames.Chunk)
    return str(refusal.value.code)


@pytest.mark.both_stores
async def test_a_sealed_attachment_reaches_its_readers_and_its_plaintext_nothing_else(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_engine: str) -> None:
    add_dossier_agreement(home, SEALED_FORM)
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        index = await sent_sealed(server, tmp_path)
        logged = (await (await server.client("bob")).fetch(index)).envelope
        assert logged.sealed is not None and set(logged.body) == {"text"}
        [stream] = logged.sealed.attachments["files"]  # all the host knows: a sealed stream
        assert await server.hotline.store.attachment_size(stream.sha256) == stream.size

        fetched = await asyncio.to_thread(hotline_cli, home, "fetch", "--as", "bob", "--server",
                                          server.url, "--index", str(index), "--out",
                                          str(tmp_path / "bob"))
        assert fetched.returncode == 0, fetched.stderr
        assert "body.files[0]: saved" in fetched.stdout and "opened here" in fetched.stdout
        assert (tmp_path / "bob" / "convoy.png").read_bytes() == CONTENT

        # bob's line is cut twice part-way through; each time the fetch resumes after the last
        # chunk that opened, and what is kept is the signed content.
        bob = await server.client("bob")
        named = await opened_by(bob, home, index)
        saved = tmp_path / "resumed.png"
        await download_cut_twice(server, index, named, saved, len(CONTENT))
        assert saved.read_bytes() == CONTENT

        # No one outside the field's readers obtains the stream, the key or the file.
        for name in ("carol", "alice", "audrey"):
            client = await server.client(name)
            assert await refused(client, index) in (Code.ATTACHMENT_REFUSED, Code.LOG_NO_ENTRY), name
        carol = await asyncio.to_thread(hotline_cli, home, "fetch", "--as", "carol", "--server",
                                        server.url, "--index", str(index), "--out",
                                        str(tmp_path / "carol"))
        assert carol.returncode == 0, carol.stderr
        assert "body.files: sealed to others than mediator; not fetched" in carol.stderr
        assert not (tmp_path / "carol").exists()
        for key in (home / "keys" / "epoch").glob("bob-*.pem"):  # bob on a machine without them
            key.rename(tmp_path / key.name)
        keyless = await asyncio.to_thread(hotline_cli, home, "fetch", "--as", "bob", "--server",
                                          server.url, "--index", str(index), "--out",
                                          str(tmp_path / "keyless"))
        assert keyless.returncode == 0, keyless.stderr
        assert "body.files: sealed to south, but not opened here: no epoch key of yours" in \
            keyless.stderr
    for path in home.rglob("*"):  # the database, its WAL, the state, the staging: no plaintext
        if path.is_file():
            assert MARKER not in path.read_bytes(), path
    logs = capsys.readouterr()
    assert "attachment.stored" in logs.out + logs.err  # the server's log output was captured
    assert MARKER.decode() not in logs.out + logs.err
    if store_engine == "postgres":
        async with running_server(home) as server:  # the stored stream itself, read back
            content = await stored(server.hotline.store, stream.sha256)
        assert len(content) == stream.size and MARKER not in content


async def test_a_sealed_chunk_altered_on_the_servers_disk_does_not_open(
        home: Path, tmp_path: Path) -> None:
    add_dossier_agreement(home, SEALED_FORM)
    async with running_server(home) as server:
        index = await sent_sealed(server, tmp_path)
        stream = (await (await server.client("bob")).fetch(index)).envelope.sealed
        assert stream is not None
        digest = stream.attachments["files"][0].sha256
    with sqlite3.connect(home / "hotline.db") as db:  # the server stopped: its disk edited
        start, data = db.execute("SELECT start, data FROM attachment_chunks WHERE sha256 = ? "
                                 "ORDER BY start LIMIT 1 OFFSET 1", (digest,)).fetchone()
        db.execute("UPDATE attachment_chunks SET data = ? WHERE sha256 = ? AND start = ?",
                   (data[:100] + bytes([data[100] ^ 1]) + data[101:], digest, start))
    async with running_server(home) as server:
        fetched = await asyncio.to_thread(hotline_cli, home, "fetch", "--as", "bob", "--server",
                                          server.url, "--index", str(index), "--out",
                                          str(tmp_path / "bob"))
    assert fetched.returncode == 1, fetched.stdout
    assert "attachment.cannot_open" in fetched.stderr and "body.files[0] of entry" in fetched.stderr
    assert "chunk 1 of attachment 0 of field files does not open" in fetched.stderr
    assert [p.stat().st_size for p in (tmp_path / "bob").iterdir()] == [0]  # nothing kept


async def test_the_console_lists_the_files_and_saves_them_with_a_key(
        home: Path, tmp_path: Path) -> None:
    """bob's console shows the sealed file in the message's details, saves it with ``f`` in its
    folder (opened here, checked against the signed SHA-256), and says so in the details."""
    add_dossier_agreement(home, SEALED_FORM)
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        app = console(home, server.url, "bob", received=tmp_path / "received")
        async with app.run_test(size=(120, 40)) as pilot:
            await connected(pilot, app)
            index = await sent_sealed(server, tmp_path)
            await until(pilot, lambda: f"[{index}]" in screen_text(app), "the message")
            assert f"convoy.png ({len(CONTENT):,} bytes, image/png)" in "".join(messages_text(app))
            await pilot.press("f")  # the newest message is selected
            saved = tmp_path / "received" / str(index) / "convoy.png"
            await until(pilot, lambda: saved.exists(), "the file to be saved")
            assert saved.read_bytes() == CONTENT
            await pilot.press("d")
            await until(pilot, lambda: app.screen.id == "details", "the details")
            assert isinstance(app.screen, TextScreen)
            details = app.screen.text.plain
            assert f"body.files[0]: convoy.png ({len(CONTENT):,} bytes, image/png), SHA-256" in details
            assert f"sealed; saved in {saved}" in details


async def test_files_composed_offline_wait_in_the_outbox_across_a_restart_then_go(
        home: Path, tmp_path: Path) -> None:
    """The console's form takes the files' paths; composed while the line is down, the sealed
    file is staged beside the outbox (its sealed stream only) and kept across the console's
    restart, even with the original gone; the next run uploads it, then sends the message; bob
    saves the very file."""
    add_dossier_agreement(home, SEALED_FORM)
    photo = tmp_path / "convoy.png"
    photo.write_bytes(CONTENT)
    server = Server(home)
    await server.start()
    try:
        first = console(home, server.url, "alice")
        async with first.run_test(size=(120, 40)) as pilot:
            await connected(pilot, first)  # the readers' keys proven in the log, for offline
            await server.stop()
            await until(pilot, lambda: "retry" in screen_text(first), "the line down")
            first.action_compose("dossier")
            await until(pilot, lambda: isinstance(first.screen, ComposeScreen)
                        and bool(first.screen.query("#field-0")), "the dossier form")
            form = first.screen
            assert isinstance(form, ComposeScreen)
            files = form.form.field("files")
            assert files is not None and files.kind == "files"
            assert "SEALED: only south can read it" in files.hint
            paths = [f.path for f in form.form.fields]
            form.query_one(f"#field-{paths.index('text')}", Input).value = "the convoy"
            form.query_one(f"#field-{paths.index('files')}", Input).value = str(photo)
            await pilot.press("ctrl+s")
            await until(pilot, lambda: bool(first.outbox.pending()), "the message stored")
            [item] = first.outbox.pending()
            [staged] = first.outbox.files(item.id)
            assert MARKER not in Path(staged.path).read_bytes()  # its sealed stream only
        first.outbox.close()  # the console is gone; its outbox and staged file stay
        photo.unlink()  # so is the original: what leaves is what was staged and signed

        await server.start()
        second = console(home, server.url, "alice")
        async with second.run_test(size=(120, 40)) as pilot:
            def accepted() -> bool:
                got = second.outbox.get(item.id)
                return got is not None and got.state is OutboxState.ACCEPTED
            await until(pilot, accepted, "the message accepted, once its file was uploaded")
        done = second.outbox.get(item.id)
        assert done is not None and done.index is not None
        assert second.outbox.files(item.id) == [] and not Path(staged.path).exists()
        second.outbox.close()
        fetched = await asyncio.to_thread(hotline_cli, home, "fetch", "--as", "bob", "--server",
                                          server.url, "--index", str(done.index), "--out",
                                          str(tmp_path / "bob"))
        assert fetched.returncode == 0, fetched.stderr
        assert (tmp_path / "bob" / "convoy.png").read_bytes() == CONTENT
    finally:
        await server.stop()


async def test_a_reader_reports_references_that_do_not_match_their_sealed_streams(
        home: Path, tmp_path: Path) -> None:
    """The host cannot see a sealed reference, so alice can sign one that does not match the
    stream she names (a size one byte off): bob's view reports it as a violation of the template,
    and `hotline fetch` refuses to save it."""
    add_dossier_agreement(home, SEALED_FORM)
    async with running_server(home) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        template = alice.templates.latest("dossier")
        assert template is not None
        envelope_id, key = new_envelope_id(os.urandom(16)), new_key()
        place = StreamPlace(channel="north-south", envelope=envelope_id, field="files", position=0)
        stream = b"".join(seal_stream(io.BytesIO(CONTENT).read, key, place))
        digest = b64url(hashlib.sha256(stream).digest())
        assert (await alice.upload(lambda s, n: stream[s:s + n], sha256=digest,
                                   size=len(stream))).stored
        ref = SealedAttachmentRef(sha256=b64url(hashlib.sha256(CONTENT).digest()),
                                  size=len(CONTENT) + 1, media_type="image/png", name="convoy.png",
                                  key=b64url(key))
        composed = alice.envelope(channel="north-south", template="dossier", id=envelope_id,
                                  body={"text": "the convoy", "files": [ref.to_json()]})
        readers = readers_for(alice.roster, composed, template)
        await alice.prove_logged(keys_of(readers), server.log_key, timeout=10)
        forged, _ = sealed(composed, readers, {"files": [StoredStream(sha256=digest,
                                                                      size=len(stream))]})
        accepted = await alice.submit_envelope(forged)  # the host cannot tell
        view = SealedView(home, party="south", member="bob", passphrase=None,
                          templates=bob.templates)
        view.view(await bob.fetch(accepted.index), bob.roster)
        [(field, problem)] = view.violations[envelope_id]
        assert field == "files" and problem.code == Code.TEMPLATE_INVALID
        assert "body.files[0] does not match the sealed stream" in problem.message
        fetched = await asyncio.to_thread(hotline_cli, home, "fetch", "--as", "bob", "--server",
                                          server.url, "--index", str(accepted.index), "--out",
                                          str(tmp_path / "bob"))
    assert fetched.returncode == 1 and "does not match the sealed stream" in fetched.stderr
    assert not (tmp_path / "bob").exists()
