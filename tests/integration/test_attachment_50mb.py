"""Issue 19, acceptance 1: a 50 MB data file goes with a `data-exchange` (version 2) while the
line is cut twice, once during its upload and once during its download. The upload resumes where
the server's copy stands and the server keeps it only once its SHA-256 is the one named; the
message, sent twice (the first answer lost with a line), is logged once; the download resumes
after what the receiver holds and is kept only once every byte matched the signed reference. The
log holds exactly one entry naming the file. Real server, real sockets, real SQLite file and
PostgreSQL database."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pytest

from hotline.client.attaching import reference_of, upload_file
from hotline.client.connection import Client, ConnectError
from hotline.entries import EnvelopeEntry
from hotline.keys import b64url
from tests.conftest import running_server
from tests.integration.test_attachment_upload import CutAfter
from tests.template_examples import Case, data_exchange

pytestmark = [pytest.mark.slow, pytest.mark.both_stores]

SIZE = 50_000_000


def cut_reader(file: BinaryIO, client: Client, limit: int) -> Callable[[int, int], bytes]:
    """``read_at`` over ``file`` that cuts ``client``'s line (TCP aborted) once the upload has
    read ``limit`` bytes for sending."""
    def read_at(start: int, n: int) -> bytes:
        if start >= limit and client.ws is not None:
            client.ws.transport.abort()
        file.seek(start)
        return file.read(n)
    return read_at


async def test_a_50_mb_file_cut_once_each_way_arrives_intact_and_is_logged_once(
        home: Path, tmp_path: Path) -> None:
    source = tmp_path / "holdings.csv"
    with source.open("wb") as out:  # 50 MB, not compressible, written a megabyte at a time
        for _ in range(SIZE // 1_000_000):
            out.write(os.urandom(1_000_000))
    ref = reference_of(source)
    assert ref.size == SIZE and ref.media_type == "text/csv"
    annual = next(c for c in data_exchange(datetime.now(UTC)) if isinstance(c, Case))
    body = {**annual.body, "data_files": [ref.to_json()]}
    saved = tmp_path / "received" / "holdings.csv"
    saved.parent.mkdir()
    async with running_server(home) as server:
        store = server.hotline.store
        alice = await server.client("alice")
        with source.open("rb") as content, pytest.raises(ConnectError):  # cut during the upload
            await alice.upload(cut_reader(content, alice, 20_000_000), sha256=ref.sha256, size=SIZE)
        held = await store.upload_state("north", ref.sha256)
        assert held is not None and 20_000_000 - 8 * 65_552 <= held.received < SIZE
        alice = await server.client("alice")
        await upload_file(alice, source, sha256=ref.sha256, size=SIZE)  # resumes from there
        assert await store.attachment_size(ref.sha256) == SIZE  # its SHA-256 checked by the server

        envelope = alice.envelope(channel="north-south", template="data-exchange", body=body,
                                  precedence=annual.precedence)
        accepted = await alice.submit_envelope(envelope)
        again = await (await server.client("alice")).submit_envelope(envelope)  # an answer lost
        assert again.index == accepted.index and again.is_duplicate

        bob = await server.client("bob")
        template = bob.templates.latest("data-exchange")
        assert template is not None and template.version == 2
        delivered = await bob.fetch(accepted.index)
        [named] = template.opened_attachments(delivered.envelope, {})
        out = CutAfter(saved, bob, 25_000_000)  # cut during the download
        with pytest.raises(ConnectError):
            await bob.download(accepted.index, named, out)  # type: ignore[arg-type]
        out.file.close()
        assert 25_000_000 <= saved.stat().st_size < SIZE
        bob = await server.client("bob")
        with saved.open("a+b") as resumed:
            await bob.download(accepted.index, named, resumed)  # verified whole, or emptied

        naming, after = [], -1
        while page := await store.entries(after=after):
            naming += [s.entry.index for s in page if isinstance(s.entry, EnvelopeEntry)
                       and any(f.get("sha256") == ref.sha256  # type: ignore[union-attr]
                               for f in s.entry.envelope.body.get("data_files", []))]  # type: ignore[union-attr]
            after = page[-1].entry.index
    assert naming == [accepted.index]
    with saved.open("rb") as received:
        assert b64url(hashlib.file_digest(received, "sha256").digest()) == ref.sha256
