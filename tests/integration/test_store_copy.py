"""``hotline store copy`` (issue 17, acceptance 4): a real SQLite log, written by the demo
server with checkpoints, copied into a real PostgreSQL database: every entry verified on the way,
the same roots at every checkpoint, and the server then serves the log from PostgreSQL and audits
clean. A damaged source or a target that is not empty is refused and nothing is written."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

from click.testing import CliRunner, Result

from hotline.cli import main
from hotline.keys import b64url
from hotline.store import open_store
from tests.conftest import Running, running_server
from tests.integration.test_attachment_upload import (
    CONTENT,
    add_dossier_agreement,
    logged_dossier,
    reader,
    stored,
)
from tests.integration.test_hybrid_keys import checkpointed
from tests.integration.test_rotation_audit import audit

FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}


async def store_copy(home: Path, *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, ["--home", str(home), "store", "copy",
                                                              *args])


async def some_messages(server: Running, count: int) -> None:
    alice = await server.client("alice")
    for n in range(count):
        await alice.send(channel="north-south", template="message", body={"text": f"m{n}"})
    await checkpointed(server)


async def test_a_sqlite_log_is_copied_verified_with_the_same_roots(home: Path,
                                                                   postgres_url: str) -> None:
    add_dossier_agreement(home)
    unsent = b"uploaded, never named" * 100
    async with running_server(home, **FAST) as server:
        await some_messages(server, 3)
        index, named = await logged_dossier(server, CONTENT)  # a message with a file
        alice = await server.client("alice")
        assert (await alice.upload(reader(unsent), sha256=b64url(hashlib.sha256(unsent).digest()),
                                   size=len(unsent))).stored
        await some_messages(server, 2)  # a second checkpoint
        source = server.hotline.store
        checkpoints, head = await source.checkpoints(), source.tree_head()
        roots = {size: await source.root_at(size) for size, _, _ in checkpoints}
        kept = await source.attachment_list()
    assert len(checkpoints) >= 2 and len(kept) == 2

    copied = await store_copy(home, "--from", f"sqlite:{home / 'hotline.db'}", "--to", postgres_url)
    assert copied.exit_code == 0, copied.output
    assert f"Copied {head[0]} entries" in copied.output
    assert f"{len(checkpoints)} checkpoints, each a root of the copy" in copied.output
    target = await open_store(postgres_url)  # no row-MAC key: it only reads
    try:
        assert target.tree_head() == head
        assert await target.checkpoints() == checkpoints
        assert {size: await target.root_at(size) for size in roots} == roots
        assert await target.attachment_list() == kept  # the unnamed one still unnamed
        assert await stored(target, named.ref.sha256) == CONTENT
        assert await target.attachment_uploaders(named.ref.sha256) == ["north"]
    finally:
        await target.close()
    assert "2 attachments, each checked against its SHA-256" in copied.output

    async with running_server(home, HOTLINE_STORE_URL=postgres_url, **FAST) as server:
        assert server.hotline.store.tree_head() == head  # the same log, served from PostgreSQL
        bob = await server.client("bob")
        saved = home / "received.pdf"
        with saved.open("a+b") as out:  # its file too
            await bob.download(index, named, out)
        assert saved.read_bytes() == CONTENT
        await some_messages(server, 1)
        code, out = await audit(home, server.url)
    assert code == 0, out

    again = await store_copy(home, "--to", postgres_url)  # append-only: never into a used log
    assert again.exit_code == 1 and "store.copy_refused" in again.output and "not empty" in again.output


async def test_a_damaged_source_is_refused_and_nothing_is_written(home: Path,
                                                                 postgres_url: str) -> None:
    async with running_server(home, **FAST) as server:
        await some_messages(server, 3)
    with sqlite3.connect(home / "hotline.db") as db:  # an edit behind the triggers' back
        db.execute("DROP TRIGGER entries_no_update")
        db.execute("UPDATE entries SET leaf = replace(leaf, 'm1', 'm9') WHERE idx = 15")
    refused = await store_copy(home, "--to", postgres_url)
    assert refused.exit_code == 1 and "store.damaged" in refused.output, refused.output
    target = await open_store(postgres_url)
    try:
        assert await target.size() == 0 and await target.latest_checkpoint() is None
    finally:
        await target.close()


async def test_an_attachment_damaged_in_the_source_is_refused(home: Path, postgres_url: str) -> None:
    add_dossier_agreement(home)
    async with running_server(home, **FAST) as server:
        _, named = await logged_dossier(server, CONTENT, receipt=True)
    with sqlite3.connect(home / "hotline.db") as db:
        db.execute("UPDATE attachment_chunks SET data = zeroblob(length(data)) WHERE sha256 = ? "
                   "AND start = 0", (named.ref.sha256,))
    refused = await store_copy(home, "--to", postgres_url)
    assert refused.exit_code == 1 and "store.copy_refused" in refused.output, refused.output
    assert f"the attachment {named.ref.sha256} in" in refused.output
    assert "is not its digest's content" in refused.output
    target = await open_store(postgres_url)  # checked before anything was written
    try:
        assert await target.size() == 0 and await target.attachment_list() == []
    finally:
        await target.close()
