"""Disclosing one sealed field to an auditor or to the public (issue 16; docs/ARCHITECTURE.md
"Sealed fields"). Pure: the caller fetches the receipt and holds the disclosure.

A disclosure file is ``{"type": "hotline-disclosure", "v": 1, "to", "field", "disclosure",
"receipt"}``: the field's SD-JWT disclosure (salt, name, value) and a C2SP tlog-proof receipt of
the logged entry (its leaf inside). Anyone holding only the log's verifier key checks it
(``check_disclosure``): the receipt proves the entry is in the log at a signed checkpoint, and
the disclosure must be the one the entry's signed digest for that field commits to. A forged or
altered value fails (``seal.digest_mismatch``); so does a disclosure of another field or entry.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from hotline.canonical import dumps
from hotline.client.receipts import verify_receipt
from hotline.entries import EnvelopeEntry
from hotline.errorcodes import Code
from hotline.errors import SealError
from hotline.names import Name
from hotline.sealing import Disclosure, verify_disclosure
from hotline.tlog import Checkpoint, NoteVerifier
from hotline.typed import convert

MAX_FILE = 256 * 1024


class DisclosureFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
                     tag_field="type", tag="hotline-disclosure"):
    v: Literal[1]
    to: Literal["auditor", "public"]
    field: Name
    disclosure: str
    receipt: str  # C2SP tlog-proof text, the entry's leaf on its extra line

    def text(self) -> str:
        return dumps(msgspec.to_builtins(self)) + "\n"


def decode_disclosure_file(value: Any) -> DisclosureFile:
    return convert(value, DisclosureFile, what="disclosure file", code=Code.SEAL_INVALID,
                   error=SealError)


def check_disclosure(file: DisclosureFile, log_key: NoteVerifier
                     ) -> tuple[Checkpoint, EnvelopeEntry, Disclosure]:
    """The checkpoint, the logged entry and the field's disclosure, once all three hold together.

    Raises:
        LogError: the receipt does not prove the entry in the log ``log_key`` signs for.
        SealError: ``seal.digest_mismatch`` for a disclosure the entry's signed digest does not
            commit to, ``seal.invalid`` for an entry with no such sealed field.
    """
    checkpoint, entry = verify_receipt(file.receipt, log_key)
    if not isinstance(entry, EnvelopeEntry) or entry.envelope.sealed is None:
        raise SealError(f"entry {entry.index} holds no sealed fields", code=Code.SEAL_INVALID)
    digest = entry.envelope.sealed.digests.get(file.field)
    if digest is None:
        raise SealError(f"entry {entry.index} has no sealed field {file.field!r}",
                        code=Code.SEAL_INVALID)
    return checkpoint, entry, verify_disclosure(file.disclosure, name=file.field, digest=digest)
