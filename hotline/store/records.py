"""What the store hands out: a stored entry (index and leaf bytes) and its typed entry.

A leaf read back from the disk is hostile input like any other (a damaged page, an edited file):
decoding it (``hotline.entries.decode_leaf``) either gives the typed entry or raises
``StoreError`` ``store.damaged`` naming the index; never a KeyError later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hotline import entries
from hotline.entries import Entry, EntryError
from hotline.errorcodes import Code
from hotline.errors import StoreError


def damaged(index: int, what: str) -> StoreError:
    return StoreError(f"entry {index} in the database is damaged: {what}", code=Code.STORE_DAMAGED)


def decode_leaf(index: int, leaf: bytes) -> Entry:
    """The entry whose leaf bytes are ``leaf``, stored at ``index``.

    Raises:
        StoreError: ``store.damaged`` if the leaf is not the strict encoding of an entry (the
            ``EntryError`` in words), or the entry holds another index.
    """
    try:
        entry = entries.decode_leaf(leaf)
    except EntryError as exc:
        raise damaged(index, exc.message) from None
    if entry.index != index:
        raise damaged(index, "its leaf holds another index")
    return entry


@dataclass(frozen=True)
class StoredEntry:
    index: int
    leaf: bytes
    decoded: Entry | None = field(default=None, compare=False, repr=False)

    @property
    def entry(self) -> Entry:
        """The typed entry (the leaf bytes are its RFC 8785 encoding), decoded once.

        Raises:
            StoreError: ``store.damaged`` naming the index (``decode_leaf``).
        """
        if self.decoded is None:
            object.__setattr__(self, "decoded", decode_leaf(self.index, self.leaf))
        assert self.decoded is not None
        return self.decoded


@dataclass(frozen=True)
class Appended:
    stored: StoredEntry
    duplicate: bool
