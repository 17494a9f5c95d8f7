"""Start-up check: the database holds every checkpoint this log published, and nothing else.

Theory of operation:
- A checkpoint the log signed and published (the last one, kept outside the database in the
  checkpoint file; the latest one stored in the database; the latest one each witness cosigned)
  is a promise: the log will only ever grow from it. The database must therefore hold at least
  that many entries, and its tree at that size must have that root. Otherwise entries were lost
  (a truncated WAL, an old backup: ``store.rolled_back``) or changed (``store.inconsistent``),
  and signing anything now would sign the loss. The server refuses to start instead, saying what
  was lost and how to restore.
- Below the latest signed checkpoint every row is vouched for by that signature. Rows beyond it
  are normal after a crash (committed, perhaps acknowledged, not yet checkpointed), but the
  server accepts them as its own only if each carries its row MAC (``Store.verify_tail``).
- A database without the checkpoint file but with signed checkpoints is refused
  (``store.checkpoint_missing``), except at the first start after upgrading from a release that
  had neither the file nor row MACs (``Store.upgraded``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hotline.errorcodes import Code
from hotline.errors import LogError, StoreError
from hotline.store.base import Store
from hotline.store.checkpointfile import read_checkpoint_file
from hotline.tlog import Checkpoint, NoteVerifier, verify_checkpoint


@dataclass(frozen=True)
class Published:
    """A checkpoint this log signed, verified with its key, and where it was found."""

    checkpoint: Checkpoint
    note: str
    time: str
    source: str

    @property
    def size(self) -> int:
        return self.checkpoint.size


def _restore(store: Store, file: Path) -> str:
    return (f"Restore {store.location} {store.restore_advice} taken after that checkpoint; "
            f"never delete {file} to get past this: it is the record of what the log published")


def _published(note: str, time: str, source: str, verifier: NoteVerifier, *, code: Code) -> Published:
    try:
        checkpoint = verify_checkpoint(note, verifier)
    except LogError as exc:
        raise StoreError(f"{source} does not hold a checkpoint signed by this log's key: "
                         f"{exc.message}", code=code) from exc
    return Published(checkpoint, note, time, source)


async def verify_store(store: Store, *, file: Path, verifier: NoteVerifier) -> Published | None:
    """Check ``store`` against every checkpoint the log published; returns the latest one.

    Args:
        store: the open store (its tree head is the database's).
        file: the checkpoint file (``hotline.store.checkpointfile``).
        verifier: the log's note verifier key.

    Raises:
        StoreError: ``store.rolled_back``, ``store.inconsistent``, ``store.checkpoint_missing``,
            ``store.checkpoint_file``, ``store.unauthenticated_rows`` or ``store.damaged``, each
            saying what was lost or found and what to do.
    """
    size, _ = store.tree_head()
    published: list[Published] = []
    saved = read_checkpoint_file(file)
    if saved is not None:
        found = _published(saved.note, saved.time, f"the checkpoint file {file}", verifier,
                           code=Code.STORE_CHECKPOINT_FILE)
        if found.size != saved.size:
            raise StoreError(f"{file} says size {saved.size} but its note is of size {found.size}",
                             code=Code.STORE_CHECKPOINT_FILE)
        published.append(found)
    latest = await store.latest_checkpoint()
    if latest is not None:
        published.append(_published(latest[2], latest[1], "the database's latest checkpoint",
                                    verifier, code=Code.STORE_DAMAGED))
        if saved is None and not store.upgraded:
            raise StoreError(
                f"{file} is missing, but the database holds signed checkpoints (the latest: "
                f"{latest[0]} entries, signed at {latest[1]}): without that file a rolled-back "
                f"database cannot be told from a good one. Restore it from the backup taken with "
                f"{store.location}", code=Code.STORE_CHECKPOINT_MISSING)
    for witness, cosigned in sorted((await store.witnessed()).items()):
        rows = await store.checkpoints(since=cosigned - 1, limit=1)
        if not rows or rows[0][0] != cosigned:
            raise StoreError(f"witness {witness} cosigned checkpoint {cosigned}, which the database "
                             f"does not hold. {_restore(store, file)}", code=Code.STORE_INCONSISTENT)
        published.append(_published(rows[0][2], rows[0][1], f"cosigned by witness {witness}",
                                    verifier, code=Code.STORE_DAMAGED))

    # the rows of a release without row MACs are covered by the checkpoint signed at this start
    legacy = store.upgraded and saved is None
    if not published:  # nothing was ever signed: every row must be the server's
        await store.verify_tail(size if legacy else 0)
        return None
    largest = max(published, key=lambda p: p.size)
    if largest.size > size:
        raise StoreError(
            f"the database holds {size} entries but checkpoint {largest.size} was signed and "
            f"published at {largest.time} ({largest.source}): {largest.size - size} accepted "
            f"entries are missing. {_restore(store, file)}", code=Code.STORE_ROLLED_BACK)
    for item in published:
        if await store.root_at(item.size) != item.checkpoint.root_hash:
            raise StoreError(
                f"the database's tree at size {item.size} is not the one checkpoint {item.size} "
                f"published at {item.time} ({item.source}): entries below {item.size} were "
                f"changed or the tree is damaged. {_restore(store, file)}",
                code=Code.STORE_INCONSISTENT)
    await store.verify_tail(size if legacy else largest.size)
    return largest
