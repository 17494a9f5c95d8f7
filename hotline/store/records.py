"""What the store hands out: a stored entry (index and leaf bytes) decoded defensively.

A leaf read back from the disk is hostile input like any other (a damaged page, an edited file):
decoding it either gives the entry with the fields the server reads, of the types it reads them
as, or raises ``StoreError`` ``store.damaged`` naming the index; never a KeyError later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hotline.canonical import parse
from hotline.display import article
from hotline.errorcodes import Code
from hotline.errors import HotlineError, StoreError

ROSTER_KINDS = ("enrollment", "revocation", "agreement")

# Top-level fields the server reads, by entry kind, and their JSON types.
_FIELDS: dict[str, dict[str, type]] = {
    "envelope": {"channel": str, "party": str, "envelope": dict, "sig": dict},
    "enrollment": {"document": dict, "sigs": list},
    "revocation": {"document": dict, "sigs": list},
    "agreement": {"document": dict, "sigs": list, "channel": str},
    "health": {"channel": str},
    "overdue": {"channel": str},
}
_ENVELOPE_FIELDS: dict[str, type] = {"id": str, "kind": str, "template": str, "precedence": str}


def damaged(index: int, what: str) -> StoreError:
    return StoreError(f"entry {index} in the database is damaged: {what}", code=Code.STORE_DAMAGED)


def _check_fields(index: int, obj: dict[str, Any], fields: dict[str, type], where: str) -> None:
    for name, kind in fields.items():
        value = obj.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise damaged(index, f"{where}{name} is missing or not {article(kind.__name__)}")


def decode_leaf(index: int, leaf: bytes) -> dict[str, Any]:
    """The entry whose leaf bytes are ``leaf``, stored at ``index``.

    Raises:
        StoreError: ``store.damaged`` if the leaf is not a strict JSON object holding its own
            index, a ``kind`` and a ``time``, and the fields its kind needs.
    """
    try:
        entry = parse(leaf)
    except HotlineError as exc:
        raise damaged(index, f"its leaf is not valid JSON ({exc.message})") from exc
    if not isinstance(entry, dict):
        raise damaged(index, "its leaf is not a JSON object")
    if entry.get("index") != index or isinstance(entry.get("index"), bool):
        raise damaged(index, "its leaf holds another index")
    _check_fields(index, entry, {"kind": str, "time": str}, "")
    _check_fields(index, entry, _FIELDS.get(entry["kind"], {}), "")
    if entry["kind"] == "envelope":
        _check_fields(index, entry["envelope"], _ENVELOPE_FIELDS, "envelope.")
    return entry


@dataclass(frozen=True)
class StoredEntry:
    index: int
    leaf: bytes
    parsed: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def entry(self) -> dict[str, Any]:
        """The entry object (the leaf bytes are its RFC 8785 encoding), decoded once.

        Raises:
            StoreError: ``store.damaged`` naming the index (``decode_leaf``).
        """
        if self.parsed is None:
            object.__setattr__(self, "parsed", decode_leaf(self.index, self.leaf))
        assert self.parsed is not None
        return self.parsed


@dataclass(frozen=True)
class Appended:
    entry: StoredEntry
    duplicate: bool
