"""The auditor's verifier (docs/ARCHITECTURE.md "Transparency log"). Pure: records in, a report or the first
failure out.

Theory of operation: the auditor trusts only keys it pinned itself — the log's checkpoint key and
the parties' authority keys. It takes checkpoints first (each must carry the log's signature;
two of one size must agree), then every entry in index order:
- the leaf bytes are re-hashed into its own Merkle tree; whenever the tree reaches a
  checkpoint's size, the roots must be equal (so a modified, deleted, inserted or reordered entry
  is caught at the first checkpoint after it, and named when its own checks fail first);
- entries it may read are checked for what they claim: the entry is the leaf, its index is its
  position, roster documents verify against the pinned authorities (rebuilding the roster as of
  that entry), and every envelope passes ``verify_envelope_entry`` (hotline.verification: the
  same check every client runs: its sender's key as enrolled, unrevoked and valid both when it
  was created and when it was logged, the sender's role, the signature, an ack's derived id);
- given the templates, every envelope is checked against its agreed template at its log time,
  as the server did (a notice backdated by its sender does not pass a minimum-notice rule);
- log times never decrease and an envelope id appears once (acks in their own namespace), so the
  host can neither slip a revoked key's message behind its revocation by backdating it nor
  replay a signed message;
- entries it may not read arrive as leaf hashes only: they still count in the tree.
At the end, a checkpoint larger than the log (from the log's history, the witnesses' latest
cosigned checkpoints, or this auditor's state) is a truncation or rollback. Then the witness
policy (fail closed): the witnesses are those the channels' current agreements name
(``hotline.witnesses``); each one's cosignatures are verified with the keys its named authority
enrolled, and the verdict covers the log up to the largest checkpoint cosigned by the required
number of them (all, by default) — a witness that cosigned size N vouches that N extends all it
saw before, and the auditor checked every checkpoint against its own tree. Entries after that
checkpoint were verified but are not yet witnessed; if no checkpoint has the required
cosignatures, the audit fails naming the witnesses that did not cosign.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from hotline import entries
from hotline.ahead import Early, Verifiers
from hotline.audit.attachments import LoggedFile, logged_files
from hotline.audit.records import EntryRecord
from hotline.canonical import parse
from hotline.entries import (
    Entry,
    EntryError,
    EnvelopeEntry,
    Expects,
    HealthEntry,
    HealthState,
    OverdueEntry,
    RejectedEntry,
    RejectionsEntry,
    RosterEntry,
)
from hotline.envelope import Envelope, Kind
from hotline.errorcodes import Code
from hotline.errors import HotlineError, LogError, ProtocolViolation
from hotline.hybrid import MemberKey
from hotline.norms.obligations import Deadlines, lateness
from hotline.norms.rules import Context, Replied
from hotline.norms.template import Template
from hotline.norms.templateset import TemplateSet
from hotline.norms.violations import Reported, check_violation
from hotline.roster import Roster
from hotline.times import parse_time
from hotline.tlog import Checkpoint, Frontier, NoteVerifier, leaf_hash, verify_checkpoint
from hotline.tlog.note import parse_note
from hotline.verification import DEFAULT_SKEW, EntryRefused, Verified, verify_envelope_entry
from hotline.witnesses import Slots, named_witnesses, slot_of, verify_line, witness_keys


class AuditFailure(LogError):
    """The log failed an audit; the message names the entry or checkpoint and why."""

    code = Code.AUDIT_FAILED


@dataclass
class Report:
    origin: str
    size: int = 0
    readable: int = 0
    hidden: int = 0
    envelopes: int = 0
    roster_documents: int = 0
    rejected: int = 0
    rejection_summaries: int = 0  # ``rejections`` entries ...
    rejections_summarized: int = 0  # ... and the refusals beyond a member's budget they count
    overdue: int = 0
    health: int = 0
    checkpoints: int = 0
    largest_checkpoint: int = 0
    cosignatures: dict[str, int] = field(default_factory=dict)  # witness -> checkpoints cosigned
    witnesses: dict[str, int | None] = field(default_factory=dict)  # named -> largest cosigned
    required_witnesses: int = 0  # how many of them the policy required
    witnessed_size: int = 0  # the verdict covers entries 0..witnessed_size-1
    unwitnessed: int = 0  # entries verified after the witnessed checkpoint

    def kinds(self) -> list[tuple[str, int]]:
        """The readable entries by kind, every kind named: the counts add up to ``readable``
        (and with ``hidden``, to ``size``), as :meth:`Auditor.add_entry` counts each entry once."""
        return [("envelopes", self.envelopes), ("roster documents", self.roster_documents),
                ("health transitions", self.health), ("overdue notices", self.overdue),
                ("rejected attempts", self.rejected),
                ("rejection summaries", self.rejection_summaries)]


def _b64(text: str | None, what: str) -> bytes:
    if not isinstance(text, str):
        raise AuditFailure(f"{what} is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuditFailure(f"{what} is not base64") from exc


@dataclass(frozen=True)
class Decoded:
    """A readable record's leaf, decoded ahead of its turn; its failures are raised in turn, in
    the order ``Auditor._check_entry`` checks (strict JSON, the claimed object, the entry)."""

    leaf: bytes
    value: object = None
    entry: Entry | None = None
    unparsed: AuditFailure | None = None
    undecoded: AuditFailure | None = None
    early: Early | None = None  # an envelope's signature, being checked in a thread


def decode_leaf(index: int, leaf: bytes) -> Decoded:
    try:
        value = parse(leaf)
    except HotlineError as exc:
        return Decoded(leaf, unparsed=AuditFailure(
            f"entry {index}: leaf is not strict JSON ({exc.message})"))
    try:
        return Decoded(leaf, value, entries.decode(value, what=f"entry {index}"))
    except EntryError as exc:
        return Decoded(leaf, value, undecoded=AuditFailure(exc.message))


READ_AHEAD = 256
"""Records decoded, and their signatures started in the threads, ahead of the one checked."""


class Auditor:
    def __init__(self, *, log_key: NoteVerifier, authorities: dict[str, MemberKey],
                 clock_skew: timedelta = DEFAULT_SKEW, templates: TemplateSet | None = None) -> None:
        """``templates``: the protocol templates the auditor holds; with them, every logged
        envelope is also checked against its agreed template at its log time (``_check_norms``),
        and an agreed template not held here fails the audit. Without, only signatures, roster
        and obligations are checked."""
        self.log_key = log_key
        self.roster = Roster(dict(authorities))
        self.skew = clock_skew
        self.templates = templates
        self.frontier = Frontier()
        self.checkpoints: dict[int, tuple[Checkpoint, str, str]] = {}  # size -> (cp, note, source)
        self._notes: dict[int, dict[str, str]] = {}  # size -> every note of it seen -> its source
        self.report = Report(origin=log_key.name)
        self._last_time = ""  # the server's log times never decrease (RFC 3339, fixed width)
        # each envelope's dedup key (``Envelope.store_key``: acks apart) is logged once (a resend
        # is not stored); for all but acks, what a reply_to may need: (channel, kind, template,
        # party)
        self._logged: dict[str, tuple[str, str, str, str] | None] = {}
        self._shapes: dict[tuple[str, str, str, str], tuple[str, str, str, str]] = {}
        self._sealed: dict[str, Reported] = {}  # message id -> to whom its fields were sealed
        self.files: list[LoggedFile] = []  # the attachments the verified entries name
        self._expects: dict[str, Expects] = {}  # envelope id -> the ack it owes
        self._deadlines = Deadlines()
        self._health: dict[str, HealthState] = {}  # channel -> its last logged health state
        self._health_since: dict[str, datetime] = {}  # ... and when that state began

    def add_checkpoint(self, note: str, *, source: str) -> Checkpoint:
        """A signed checkpoint from ``source`` (the server, an export, a witness, our state)."""
        try:
            checkpoint = verify_checkpoint(note, self.log_key)
        except LogError as exc:
            raise AuditFailure(f"checkpoint from {source}: {exc.message}") from exc
        seen = self.checkpoints.get(checkpoint.size)
        if seen is not None and seen[0].root_hash != checkpoint.root_hash:
            raise AuditFailure(f"split view: checkpoint of size {checkpoint.size} from {source} has "
                               f"another root than the one from {seen[2]}: the log showed two "
                               "different histories")
        if seen is None:
            if checkpoint.size < self.frontier.size:
                raise AuditFailure(f"checkpoint of size {checkpoint.size} from {source} arrived "
                                   "after its entries; give checkpoints first")
            self.checkpoints[checkpoint.size] = (checkpoint, note, source)
            self._check_root()
        self._notes.setdefault(checkpoint.size, {}).setdefault(note, source)  # its cosignatures
        return checkpoint

    def ahead(self, records: Iterable[EntryRecord],
              verifiers: Verifiers) -> Iterator[tuple[EntryRecord, Decoded | None]]:
        """The records, each with its leaf decoded and its signature started in ``verifiers``'
        threads up to ``READ_AHEAD`` records before ``add_entry`` takes it (with the key this
        auditor's roster holds then: ``add_entry`` checks again whatever a roster document in
        between changed)."""
        window: deque[tuple[EntryRecord, Decoded | None]] = deque()
        for record in records:
            window.append((record, self._decode_ahead(record, verifiers)))
            if len(window) >= READ_AHEAD:
                yield window.popleft()
        yield from window

    def _decode_ahead(self, record: EntryRecord, verifiers: Verifiers) -> Decoded | None:
        if record.leaf is None:
            return None
        try:
            decoded = decode_leaf(record.index, _b64(record.leaf, f"entry {record.index} leaf"))
        except AuditFailure:
            return None  # raised in turn
        entry = decoded.entry
        if not isinstance(entry, EnvelopeEntry):
            return decoded
        envelope = entry.envelope
        try:
            key = self.roster.envelope_key(str(entry.sig.get("key")), envelope.channel,
                                           envelope.template)
        except HotlineError:
            return decoded  # an unknown key: refused in turn
        return replace(decoded, early=verifiers.start(envelope, key, entry.sig))

    def add_entry(self, record: EntryRecord, decoded: Decoded | None = None) -> Entry | None:
        """The next entry: its leaf (with the entry the host claims it holds) or, when hidden,
        its leaf hash. Returns the entry once checked (None for a hidden one). ``decoded``: its
        leaf, decoded by ``ahead``."""
        expected, index = self.frontier.size, record.index
        if index != expected:
            what = "missing" if index > expected else "repeated or out of order"
            raise AuditFailure(f"entry {expected}: {what} (the next record is entry {index})")
        entry: Entry | None = None
        if record.leaf is not None:
            if decoded is None:
                decoded = decode_leaf(index, _b64(record.leaf, f"entry {index} leaf"))
            entry = self._check_entry(index, decoded, record.entry)
            digest = leaf_hash(decoded.leaf)
            self.report.readable += 1
        else:
            digest = _b64(record.hash, f"entry {index} hash")
            if len(digest) != 32:
                raise AuditFailure(f"entry {index}: a leaf hash is 32 bytes")
            self.report.hidden += 1
        self.frontier.append(digest)
        self.report.size = self.frontier.size
        self._check_root()
        return entry

    def _check_root(self) -> None:
        size = self.frontier.size
        found = self.checkpoints.get(size)
        if found is not None and found[0].root_hash != self.frontier.root():
            earlier = max((s for s in self.checkpoints if s < size), default=0)
            raise AuditFailure(f"checkpoint {size} (from {found[2]}): its root does not match "
                               f"entries {earlier}..{size - 1}; one of them was modified, "
                               "inserted, deleted or reordered since it was signed")

    def _check_entry(self, index: int, decoded: Decoded, claimed: object) -> Entry:
        """The entry the leaf holds, once checked: the host's claimed entry object (if given)
        is the leaf's, the leaf the strict encoding of an entry at ``index``."""
        if decoded.unparsed is not None:
            raise decoded.unparsed
        if claimed is not None and claimed != decoded.value:
            raise AuditFailure(f"entry {index}: the entry object differs from its leaf bytes")
        if decoded.undecoded is not None:
            raise decoded.undecoded
        entry = decoded.entry
        assert entry is not None
        if entry.index != index:
            raise AuditFailure(f"entry {index}: its leaf holds index {entry.index}")
        kind = entries.kind_of(entry)
        if entry.time < self._last_time:
            raise AuditFailure(f"entry {index}: logged at {entry.time!r}, before the entry before "
                               f"it ({self._last_time}): log times never go back")
        self._last_time = entry.time
        try:
            if isinstance(entry, RosterEntry):
                self.roster.add(entry.signed)
                self.report.roster_documents += 1
            elif isinstance(entry, EnvelopeEntry):
                self._check_envelope(entry, index, decoded.early)
                self.report.envelopes += 1
            elif isinstance(entry, RejectedEntry):
                self.report.rejected += 1
            elif isinstance(entry, RejectionsEntry):
                self.report.rejections_summarized += _summary_count(entry)
                self.report.rejection_summaries += 1
            elif isinstance(entry, OverdueEntry):
                self._check_overdue(entry)
                self.report.overdue += 1
            else:
                self._check_health(entry)
                self.report.health += 1
        except HotlineError as exc:
            raise AuditFailure(f"entry {index} ({kind}): {exc.message}") from exc
        return entry

    def _check_envelope(self, entry: EnvelopeEntry, index: int, early: Early | None) -> None:
        try:
            verified = verify_envelope_entry(self.roster, entry, index=index, skew=self.skew,
                                             early=early)
        except EntryRefused as exc:  # the one check every receiver runs (hotline.verification)
            raise AuditFailure(exc.reason) from exc
        envelope = verified.envelope
        if envelope.store_key in self._logged:  # unique per namespace: acks have their own
            raise AuditFailure(f"envelope {envelope.id} is logged a second time (a replay)")
        if self.templates is not None:
            template = self._check_norms(verified)
            if template is not None and template.attachments:
                self.files += logged_files(entry, template)
        if envelope.kind is Kind.VIOLATION:  # the server's check: could its reporter read it?
            try:
                check_violation(envelope, self._sealed.get(envelope.reply_to or ""),
                                party=verified.member.party)
            except ProtocolViolation as exc:
                raise AuditFailure(f"violation report {envelope.id}: {exc.message}") from exc
        elif envelope.sealed is not None:
            self._sealed[envelope.id] = Reported.of(entry)
        answers = envelope.kind in (Kind.ACK, Kind.VIOLATION)  # never the target of a reply
        self._logged[envelope.store_key] = None if answers else self._shape(
            (envelope.channel, envelope.kind.value, envelope.template, verified.member.party))
        self._check_obligations(entry, envelope, verified.logged)

    def _shape(self, shape: tuple[str, str, str, str]) -> tuple[str, str, str, str]:
        """One shared tuple per (channel, kind, template, party): a log of millions of heartbeats
        holds a handful of these, not one per entry."""
        return self._shapes.setdefault(shape, shape)

    def _check_norms(self, verified: Verified) -> Template | None:
        """The agreed template's check, as the server ran it when it logged the envelope: at the
        entry's log time (never the sender's ``created``), against the agreement and roster of
        that moment and the logged envelope ``reply_to`` names. Only the rate limit is left out
        (the server's window state). The template a message passed (None for an answer)."""
        assert self.templates is not None
        envelope, member = verified.envelope, verified.member
        agreement = self.roster.agreements[envelope.channel]  # check_send found it
        template = self.templates.resolve(agreement, envelope.template)
        replied = None
        if envelope.reply_to is not None:
            wanted = {Kind.ACK: Kind.MESSAGE, Kind.MESSAGE: Kind.MESSAGE, Kind.ECHO: Kind.HEARTBEAT,
                      Kind.VIOLATION: Kind.MESSAGE}
            target = self._logged.get(envelope.reply_to)
            if (envelope.kind not in wanted or target is None or target[0] != envelope.channel
                    or target[1] != wanted[envelope.kind].value):
                raise AuditFailure(f"envelope {envelope.id}: reply_to {envelope.reply_to} names no "
                                   f"earlier {wanted.get(envelope.kind, 'envelope')} on channel "
                                   f"{envelope.channel}")
            replied = Replied(template=target[2], party=target[3], kind=target[1])
        if envelope.kind in (Kind.ACK, Kind.VIOLATION):
            if replied is None or replied.template != envelope.template:
                raise AuditFailure(f"envelope {envelope.id}: an {envelope.kind} carries the "
                                   "template of the message it answers")
            return None
        template.check(envelope, Context(agreement=agreement, party=member.party,
                                         role=member.role.value, logged=verified.logged,
                                         replied=replied))
        return template

    def _check_obligations(self, entry: EnvelopeEntry, envelope: Envelope, logged: datetime) -> None:
        """The server's own additions: ``late`` is true exactly when an ack or reply fulfilled a
        party's obligation after its due time."""
        expects = self._expects.get(envelope.reply_to) if envelope.reply_to else None
        late = (lateness(expects, party=entry.party, envelope=envelope, at=logged)
                if expects is not None else None)
        if bool(late) != entry.is_late:
            raise AuditFailure(f"envelope {envelope.id}: marked late={entry.is_late or None!r} "
                               f"but it was {'late' if late else 'not late'} against its due time")
        if isinstance(entry.expects, Expects):
            self._expects[envelope.id] = entry.expects
        self._deadlines.observe(entry)

    def _check_health(self, entry: HealthEntry) -> None:
        """Health transitions of a channel form one chain: each starts where the last ended,
        changes the state, and dates its start no later than it was logged."""
        channel = entry.channel
        previous = self._health.get(channel, HealthState.UNKNOWN)
        if channel not in self.roster.agreements:
            raise AuditFailure(f"health of {channel!r}, a channel under no agreement")
        if entry.old != previous or entry.new == previous:
            raise AuditFailure(f"health of {channel} goes from {entry.old.value!r} to "
                               f"{entry.new.value!r}, but its last logged state was {previous}")
        since = parse_time(entry.since, field="since")
        if since > entry.time_at:
            raise AuditFailure(f"health of {channel}: a state that begins after it was logged")
        began = self._health_since.get(channel)
        if began is not None and since < began:
            raise AuditFailure(f"health of {channel}: a state dated before the one it ends")
        self._health[channel] = entry.new
        self._health_since[channel] = since

    def _check_overdue(self, entry: OverdueEntry) -> None:
        """An overdue notice names a message still owed an ack, after its due time, with exactly
        the parties that had not answered."""
        pending = self._deadlines.pending(entry.ref)
        if pending is None:
            raise AuditFailure(f"overdue notice for {entry.ref!r}: no logged message owes "
                               "an acknowledgement under that id (or it was already answered)")
        logged = parse_time(entry.time, field="time")
        if (entry.due != self._expects[pending.envelope_id].due or logged < pending.due
                or entry.entry != pending.index or entry.channel != pending.channel):
            raise AuditFailure(f"overdue notice for message {pending.index}: its due time, index "
                               "or channel differs from the message's, or it precedes the due time")
        if sorted(pending.missing) != entry.missing:
            raise AuditFailure(f"overdue notice for message {pending.index} names "
                               f"{entry.missing} as missing, but the log shows "
                               f"{sorted(pending.missing)} had not acknowledged")
        self._deadlines.observe(entry)

    def finish(self, *, require_witnesses: int | None = None) -> Report:
        """After the last entry: no checkpoint may be larger than the log; then the witness
        policy (see the module docstring).

        Args:
            require_witnesses: how many named witnesses must have cosigned a checkpoint for the
                verdict to cover it; None means every one the agreements name; 0 requires none.

        Raises:
            AuditFailure: a rollback, a cosignature of a named witness that does not verify, or
                no checkpoint cosigned by the required witnesses.
        """
        size = self.frontier.size
        beyond = sorted((s, src) for s, (_, _, src) in self.checkpoints.items() if s > size)
        if beyond:
            s, source = beyond[-1]
            raise AuditFailure(f"checkpoint of size {s} (from {source}) was signed, but the log "
                               f"now has {size} entries: it was truncated or rolled back")
        named = named_witnesses(self.roster)
        latest = self._count_cosignatures(witness_keys(self.roster, named))
        self.report.witnesses = {w.label: latest.get(w.label) for w in named}
        self.report.checkpoints = len(self.checkpoints)
        self.report.largest_checkpoint = max(self.checkpoints, default=0)
        self.report.required_witnesses = len(named) if require_witnesses is None else require_witnesses
        self.report.witnessed_size = _witnessed_size(self.report.witnesses, size,
                                                     required=require_witnesses)
        self.report.unwitnessed = size - self.report.witnessed_size
        return self.report

    def _count_cosignatures(self, slots: Slots) -> dict[str, int]:
        """Verify every named witness's cosignature on every checkpoint seen; count them in the
        report and return each witness's largest cosigned checkpoint."""
        latest: dict[str, int] = {}
        for checkpoint_size, notes in sorted(self._notes.items()):
            cosigners: set[str] = set()
            for note, source in notes.items():
                parsed = parse_note(note)  # verified when it was added
                for signature in parsed.signatures:
                    labels = sorted({k.witness.label for k in slots.get(slot_of(signature), ())})
                    try:
                        found = verify_line(signature, parsed.body, slots)
                    except LogError as exc:
                        raise AuditFailure(
                            f"checkpoint {checkpoint_size} (from {source}): the cosignature of "
                            f"{' or '.join(labels)} does not verify ({exc.message}): that witness "
                            "signed another checkpoint of this size (a split view), or the line "
                            "is forged") from exc
                    if found is not None:
                        cosigners.add(found[0].witness.label)
            for label in cosigners:
                self.report.cosignatures[label] = self.report.cosignatures.get(label, 0) + 1
                latest[label] = max(checkpoint_size, latest.get(label, 0))
        return latest


def _witnessed_size(witnesses: dict[str, int | None], size: int, *, required: int | None) -> int:
    """The largest checkpoint cosigned by the required number of named witnesses: the
    ``required``-th largest of their latest cosigned sizes (each vouches for every size below).

    Raises:
        AuditFailure: the policy cannot be met; the message names every witness that did not
            cosign and the latest size each of the others did.
    """
    count = len(witnesses) if required is None else required
    if required == 0:
        return size
    policy = (f"all {len(witnesses)} named witnesses" if required is None
              else f"{required} of the {len(witnesses)} named witnesses")
    if not witnesses:
        raise AuditFailure("no agreement in this log names a witness, so nothing shows that "
                           "others see this same log (--require-witnesses 0 verifies without "
                           "witnesses)")
    if count > len(witnesses):
        raise AuditFailure(f"the policy requires {count} witnesses, but the agreements name only "
                           f"{len(witnesses)}: {', '.join(witnesses)}")
    sizes = sorted((s for s in witnesses.values() if s is not None), reverse=True)
    if len(sizes) < count:
        missing = [w for w, s in witnesses.items() if s is None]
        others = [f"{w} up to {s}" for w, s in witnesses.items() if s is not None]
        raise AuditFailure(f"no checkpoint is cosigned by {policy}: "
                           f"{', '.join(missing)} cosigned none"
                           + (f" (cosigned: {', '.join(others)})" if others else "")
                           + "; a log rolled back or forked behind the witnesses' backs shows no "
                           "cosignature of theirs, or they have not run yet")
    return sizes[count - 1]


def _summary_count(entry: RejectionsEntry) -> int:
    """A ``rejections`` summary: its count is the sum of its per-code counts."""
    count, codes = entry.count, entry.codes
    if not all(n > 0 for n in codes.values()) or sum(codes.values()) != count or count < 1:
        raise AuditFailure(f"a rejections summary whose count {count!r} is not the sum of its "
                           "codes' counts")
    return count
