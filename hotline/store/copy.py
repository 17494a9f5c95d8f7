"""Copy a log into another store, verifying every entry on the way (``hotline store copy``):
how a deployment moves from its SQLite file to PostgreSQL (docs/ha.md).

The source is first checked as the server checks its own database at start
(``hotline.store.integrity.verify_store``: every published checkpoint, the row MACs beyond the
last). Each page of entries is then checked before anything of it is written: each leaf against
the source's tree (the store's reads do that), and re-encoded at its index it must give the same
leaf bytes, since the target's sequencer logs it anew. The target must be empty (the log is
append-only: a copy that went wrong could not be taken back). At the end the target's tree must
have the source's root at every checkpoint the source holds, whose notes and cosignatures are
then copied over. Last the attachments (issue 19): each digest's content, checked against its
SHA-256 before anything is written and again as it is kept in the target, with who uploaded it
and whether a message named it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hotline.entries import leaf_bytes, with_index
from hotline.errorcodes import Code
from hotline.errors import StoreError
from hotline.keys import b64url
from hotline.store.base import Store
from hotline.store.integrity import verify_store
from hotline.tlog import NoteVerifier, verify_checkpoint

PAGE = 500


@dataclass(frozen=True)
class Copied:
    entries: int
    checkpoints: int  # each verified against the target's tree, then copied
    cosignatures: int
    root: bytes
    attachments: int = 0  # each checked against its digest, then kept


def _refused(message: str) -> StoreError:
    return StoreError(message, code=Code.STORE_COPY_REFUSED)


async def copy_log(source: Store, target: Store, *, checkpoint_file: Path, verifier: NoteVerifier,
                   progress: Callable[[int, int], None] = lambda done, total: None) -> Copied:
    """Copy every entry, checkpoint and cosignature of ``source`` into the empty ``target``.

    Raises:
        StoreError: ``store.copy_refused`` (a target that is not empty, an entry that would not
            be logged as it is), or what ``verify_store`` finds wrong with the source.
    """
    if await target.size() or await target.latest_checkpoint() is not None:
        raise _refused(f"{target.location} is not empty ({await target.size()} entries): copy "
                       "into an empty database (the log is append-only: nothing in it could be "
                       "replaced)")
    await verify_store(source, file=checkpoint_file, verifier=verifier)
    await _copy_attachments(source, None)  # all checked before anything is written
    total, _ = source.tree_head()
    last_time, done = "", 0
    while done < total:
        page = await source.entries(after=done - 1, limit=PAGE)
        ids = await source.envelope_ids(done, done + len(page))
        for expected, stored in enumerate(page, start=done):  # all checked before any is written
            if stored.index != expected:
                raise _refused(f"entry {expected} is missing from the source")
            entry = stored.entry
            last_time = max(entry.time, last_time)
            if leaf_bytes(with_index(entry, stored.index, time=last_time)) != stored.leaf:
                raise _refused(f"entry {stored.index} would not be logged as the source holds it "
                               "(its time goes back, or its leaf is not the canonical encoding)")
        futures = [target.enqueue(stored.entry, envelope_id=ids.get(stored.index)) for stored in page]
        for stored, appended in zip(page, await asyncio.gather(*futures), strict=True):
            if appended.duplicate or appended.stored.leaf != stored.leaf:
                raise _refused(f"entry {stored.index} was logged differently in the target: stop "
                               f"and drop {target.location}")
        done += len(page)
        progress(done, total)
    if target.tree_head() != source.tree_head():
        raise _refused("the target's tree differs from the source's after the copy")
    checkpoints = await source.checkpoints()
    for size, time, note in checkpoints:
        checkpoint = verify_checkpoint(note, verifier)
        if checkpoint.size != size or await target.root_at(size) != checkpoint.root_hash:
            raise _refused(f"the checkpoint of size {size} does not match the copied tree")
        await target.add_checkpoint(size, time, note)
    cosigned = 0
    for size, witness, line in await source.cosignature_rows(0, total):
        cosigned += await target.add_cosignature(size, witness, line)
    attachments = await _copy_attachments(source, target)
    return Copied(total, len(checkpoints), cosigned, target.tree_head()[1], attachments)


async def _copy_attachments(source: Store, target: Store | None) -> int:
    """Every stored attachment of ``source`` into ``target`` (None: only checked), a page of
    chunks at a time, each kept there only once its bytes are its digest's. Uploads under way
    are not copied (their parties resend them). Returns how many there are."""
    copied, after = 0, ""
    while listed := await source.attachment_list(after=after):
        for held in listed:
            digest, size, at = hashlib.sha256(), 0, -1
            while page := await source.attachment_chunks(held.sha256, after=at):
                for _, data in page:
                    digest.update(data)
                    size += len(data)
                if target is not None:
                    await target.add_attachment_chunks(held.sha256, page)
                at = page[-1][0]
            if size != held.size or b64url(digest.digest()) != held.sha256:
                raise _refused(f"the attachment {held.sha256} in {source.location} is not its "
                               f"digest's content ({size} of {held.size} bytes): the source is "
                               "damaged" + (f"; stop and drop {target.location}" if target else ""))
            if target is not None:
                await target.keep_attachment(held, await source.attachment_uploaders(held.sha256))
            copied += 1
        after = listed[-1].sha256
    return copied
