"""What a member's client has itself verified about the log: the pure half of its log watch (no
I/O; ``hotline.client.proofs`` fetches, this decides). The console and ``hotline listen`` share it.

Theory of operation:

- The client keeps one *chain* of checkpoints: each signed by the log key pinned in the
  profile, each proven consistent (RFC 9162 consistency proof) with the chain's head before it
  may join. The head is remembered across runs (the console's outbox file), so a log that later shows
  this client a shorter or different history is caught even after a restart.
- An entry is *included* once an inclusion proof leads from its own leaf hash (RFC 8785 bytes of
  the entry as delivered) to the root of a checkpoint on the chain; by consistency it is then in
  every later checkpoint too.
- A witness (named by the channel's agreement, known by its label ``party/member``: names are
  per party) has *seen* every entry below the largest checkpoint on the chain that it cosigned:
  that witness checked that checkpoint's consistency with everything it cosigned before, and
  the client checked it against its own chain. "Cosigned by all witnesses" for an entry means
  every witness of its channel has seen it.
- A checkpoint that does not join the chain (another root for the same size, a size below the
  head with no consistency proof, a proof that fails) sets ``alarm``: the log has shown this
  client two histories. Nothing is marked included or witnessed after that.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from hotline.entries import Entry, leaf_bytes
from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.tlog import (
    HASH_SIZE,
    Checkpoint,
    CosignatureVerifier,
    NoteVerifier,
    leaf_hash,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from hotline.tlog.note import parse_note, verified_signatures

Witness = tuple[str, CosignatureVerifier]  # (label ``party/member``, one of its keys)


class LogAlarm(LogError):
    """The log showed this client a history inconsistent with one it showed before."""

    code = Code.LOG_INCONSISTENT


class HeadJSON(TypedDict):
    """A head as it is kept: its size and its root in base64."""

    size: int
    root: str


@dataclass(frozen=True)
class Head:
    """A log head remembered across runs: the largest checkpoint a client verified (the head of
    its chain: the console, ``hotline listen``) or a witness cosigned. Kept as
    ``{"size": N, "root": base64 of the 32-byte root}`` (``hotline.client.loghead`` reads and
    writes the file); a root in hex, as the console and ``listen`` wrote it before, reads too."""

    size: int
    root: bytes

    def to_json(self) -> HeadJSON:
        return {"size": self.size, "root": base64.b64encode(self.root).decode("ascii")}

    @classmethod
    def from_json(cls, value: Any) -> Head | None:
        """The head ``value`` holds, or None if it holds none."""
        if not isinstance(value, dict):
            return None
        size, text = value.get("size"), value.get("root")
        if type(size) is not int or size < 0 or not isinstance(text, str):
            return None
        try:
            root = (bytes.fromhex(text) if len(text) == 2 * HASH_SIZE
                    else base64.b64decode(text, validate=True))
        except (ValueError, binascii.Error):
            return None
        return cls(size, root) if len(root) == HASH_SIZE else None


@dataclass
class ProofReport:
    """What is established about one logged entry; ``problems`` says what could not be."""

    index: int
    included_in: int | None = None  # the size of the chain checkpoint it was proven in
    seen_by: list[str] = field(default_factory=list)  # witnesses that cosigned a tree holding it
    witnesses: list[str] = field(default_factory=list)  # the channel's parties' witnesses
    head: int | None = None  # the size of the client's verified head
    failed: str | None = None  # its inclusion proof failed: delivered is not what was logged
    problems: list[str] = field(default_factory=list)

    @property
    def included(self) -> bool:
        return self.included_in is not None

    @property
    def all_witnessed(self) -> bool:
        return self.included and bool(self.witnesses) and set(self.witnesses) <= set(self.seen_by)

    def lines(self) -> list[str]:
        """The report, one statement a line, for the details view. The checkpoint named is the
        one the inclusion proof is against (the verified head until there is a proof): one
        tree size, not the head's beside the proof's."""
        out = []
        size = self.included_in if self.included else self.head
        if size is not None:
            out.append(f"checkpoint: tree size {size}, signed by the log key, consistent "
                       "with every one this client saw before")
        if self.failed is not None:
            out.append(f"inclusion proof: FAILED: {self.failed}")
        else:
            out.append("inclusion proof: " + (f"VERIFIED: entry {self.index} is in that tree"
                                              if self.included else "NOT VERIFIED yet"))
        if self.witnesses:
            got = sorted(set(self.seen_by) & set(self.witnesses))
            missing = sorted(set(self.witnesses) - set(self.seen_by))
            out.append(f"cosignatures: {len(got)} of {len(self.witnesses)} witnesses "
                       f"({', '.join(got) or 'none'})"
                       + (f"; not yet {', '.join(missing)}" if missing else " — ALL WITNESSES"))
        out += [f"problem: {p}" for p in self.problems]
        return out


class LogWatch:
    """The client's verified view of the log (see the module docstring)."""

    def __init__(self, log_key: NoteVerifier | None, head: Head | None = None) -> None:
        self.log_key, self.head = log_key, head
        self.included: dict[int, int] = {}  # entry index -> size of the checkpoint it was proven in
        self.failed: dict[int, str] = {}  # entry index -> why its inclusion proof failed
        self.seen_by: dict[str, int] = {}  # witness -> the largest chain checkpoint it cosigned
        self.alarm: str | None = None
        self.problem: str | None = None  # the last round's failure to fetch (cleared on success)

    # -- checkpoints -----------------------------------------------------------------------------

    def checkpoint(self, note: str) -> Checkpoint:
        """The checkpoint of ``note``, its log signature verified (LogError if it fails)."""
        if self.log_key is None:
            raise LogError("the profile pins no log key: nothing can be verified", code=Code.LOG_NO_KEY)
        return verify_checkpoint(note, self.log_key)

    def consistency_needed(self, checkpoint: Checkpoint, *,
                           latest: bool = False) -> tuple[int, int] | None:
        """The ``(old, new)`` sizes of the proof that ties ``checkpoint`` to the chain, if any
        (none for a ``latest`` checkpoint below the head: that is a rollback, see ``join``)."""
        head = self.head
        if head is None or head.size == 0 or checkpoint.size in (0, head.size):
            return None
        if latest and checkpoint.size < head.size:
            return None
        return (min(head.size, checkpoint.size), max(head.size, checkpoint.size))

    def join(self, checkpoint: Checkpoint, proof: Sequence[bytes] | None, *,
             latest: bool = False) -> None:
        """Tie a verified ``checkpoint`` to the chain with the consistency proof that
        ``consistency_needed`` asked for; it becomes the head if it is larger. A checkpoint the
        log presents as its ``latest`` may not be smaller than the head: the log has shrunk.

        Raises:
            LogAlarm: it does not extend the chain (nor does the chain extend it); ``alarm``
                keeps the reason.
        """
        if self.alarm is not None:
            raise LogAlarm(self.alarm)
        head = self.head
        if head is None or head.size == 0:
            self.head = Head(checkpoint.size, checkpoint.root_hash)
            return
        if latest and checkpoint.size < head.size:
            self._alarm(f"rollback: the log's latest checkpoint has {checkpoint.size} entries, "
                        f"fewer than the {head.size} this client verified before")
        if checkpoint.size == head.size and checkpoint.root_hash != head.root:
            self._alarm(f"split view: two different trees of size {head.size}")
        if checkpoint.size in (0, head.size):
            return
        mine = (head.size, head.root)
        theirs = (checkpoint.size, checkpoint.root_hash)
        (old_size, old_root), (new_size, new_root) = sorted((mine, theirs))
        if proof is None:
            self._alarm(f"no consistency proof between trees {old_size} and {new_size}")
        try:
            verify_consistency(old_size=old_size, new_size=new_size, old_root=old_root,
                               new_root=new_root, proof=list(proof or []))
        except LogError as exc:
            self._alarm(f"tree {new_size} does not extend tree {old_size}: {exc.message}")
        if checkpoint.size > head.size:
            self.head = Head(checkpoint.size, checkpoint.root_hash)

    def witnessed(self, note: str, checkpoint: Checkpoint,
                  witnesses: Iterable[Witness]) -> list[str]:
        """Record the cosignatures (of known witnesses: ``(label, key)``) on a checkpoint already
        joined to the chain; returns the labels of the witnesses whose cosignature verified.
        Each line is matched to its key by key name and key hash, so two parties' agents of
        one name never count for each other."""
        by_slot = {(v.name, v.key_id): label for label, v in witnesses}
        verifiers = [v for _, v in witnesses]
        labels = [by_slot[(sig.name, sig.key_id)]
                  for sig in verified_signatures(parse_note(note), verifiers)]
        for label in labels:
            self.seen_by[label] = max(checkpoint.size, self.seen_by.get(label, 0))
        return labels

    def _alarm(self, reason: str) -> None:
        self.alarm = (f"LOG INCONSISTENT: {reason}. The server has shown this client two "
                      "histories; tell the other parties and the auditors")
        raise LogAlarm(self.alarm)

    # -- entries ---------------------------------------------------------------------------------

    def wanted(self, indexes: Iterable[int]) -> list[int]:
        """Which of ``indexes`` the head covers and still need an inclusion proof."""
        if self.head is None or self.alarm is not None:
            return []
        return [i for i in indexes if i < self.head.size and i not in self.included
                and i not in self.failed]

    def include(self, index: int, entry: Entry, size: int, proof: Sequence[bytes]) -> None:
        """Check an inclusion proof of ``entry`` at ``index`` in the head of ``size``. A proof that
        fails is kept in ``failed``: the entry as delivered is not what the log holds there.

        Raises:
            LogError: the proof fails, or ``size`` is not the head's.
        """
        if self.head is None or size != self.head.size:
            raise LogError(f"proof against tree {size}, not the verified head", code=Code.LOG_BAD_PROOF)
        try:
            verify_inclusion(leaf_hash=leaf_hash(leaf_bytes(entry)), index=index, size=size,
                             proof=list(proof), root=self.head.root)
        except LogError as exc:
            self.failed[index] = (f"the entry as delivered is NOT the one logged at {index}: "
                                  f"{exc.message}")
            raise
        self.included[index] = size

    def report(self, index: int, witnesses: Sequence[str]) -> ProofReport:
        report = ProofReport(index, included_in=self.included.get(index),
                             seen_by=sorted(w for w, size in self.seen_by.items() if index < size),
                             witnesses=sorted(witnesses),
                             head=None if self.head is None else self.head.size,
                             failed=self.failed.get(index))
        if self.log_key is None:
            report.problems.append("the profile pins no log key: nothing can be verified")
        if self.alarm is not None:
            report.problems.append(self.alarm)
        elif self.problem is not None:
            report.problems.append(self.problem)
        elif report.head is not None and index >= report.head:
            report.problems.append(f"the latest checkpoint (size {report.head}) does not cover "
                                   "this entry yet")
        return report
