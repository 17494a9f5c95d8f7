"""Witness policy (pure): which witnesses the agreements name, their keys, and which cosignature
lines on a checkpoint are theirs. Shared by the server (accepting and serving cosignatures), the
auditor and the console, so they count the same witnesses.

Theory of operation:
- An agreement names each witness as ``{"id": AGENT, "authority": KEY_ID}``. The witnesses in
  force are the union over the current agreement of every channel.
- Member names are scoped per party, so a witness is the pair (party, member): the party whose
  pinned authority has the named KEY_ID, and the member name. Its keys are those that party's
  authority enrolled for that member as an agent. An agent of the same name enrolled by another
  authority is not that witness.
- A C2SP cosignature line carries the key name (the member name) and a 4-byte key hash
  (``SHA-256(name || 0x0A || 0x04 || key)[:4]``); the pair picks the key, so two parties' agents
  of one name never stand for each other.
- ``label`` (``party/member``) is the witness's stable name in storage, reports and JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from hotline.errors import LogError
from hotline.keys import PublicKey
from hotline.roster import Enrollment, Role, Roster
from hotline.tlog import CosignatureVerifier
from hotline.tlog.note import MAX_SIGNATURES, Note, NoteSignature, parse_note


@dataclass(frozen=True)
class NamedWitness:
    """A witness an agreement names: agent member name, its authority's KEY_ID and, when this
    roster pins that authority, the party it belongs to."""

    member: str
    authority: str
    party: str | None

    @property
    def label(self) -> str:
        if self.party is None:
            return f"{self.member} (authority {self.authority[:12]}, not pinned here)"
        return f"{self.party}/{self.member}"


@dataclass(frozen=True)
class WitnessKey:
    """One enrolled key of a named witness."""

    witness: NamedWitness
    enrollment: Enrollment
    verifier: CosignatureVerifier

    @property
    def slot(self) -> tuple[str, bytes]:
        return (self.verifier.name, self.verifier.key_id)


_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z: a cosignature timestamp may be up to 2^63-1
Slots = Mapping[tuple[str, bytes], Sequence[WitnessKey]]


def named_witnesses(roster: Roster, channels: Iterable[str] | None = None) -> list[NamedWitness]:
    """The witnesses the current agreements (of ``channels``, default all) name, by label."""
    by_authority: dict[str, str] = {}
    for party in roster.current:
        for kid in roster.authority_keys(party):  # a witness named before a handover stays named
            by_authority.setdefault(kid, party)
    wanted = roster.agreements if channels is None else \
        {c: roster.agreements[c] for c in channels if c in roster.agreements}
    named = {(member, authority) for agreement in wanted.values()
             for member, authority in agreement.witnesses.items()}
    return sorted((NamedWitness(m, a, by_authority.get(a)) for m, a in named),
                  key=lambda w: (w.label, w.authority))


def witness_keys(roster: Roster,
                 witnesses: Iterable[NamedWitness]) -> dict[tuple[str, bytes], list[WitnessKey]]:
    """Every enrolled agent key of each witness, by the (key name, key hash) of its lines."""
    wanted = {(w.party, w.member): w for w in witnesses if w.party is not None}
    slots: dict[tuple[str, bytes], list[WitnessKey]] = {}
    for enrolled in roster.enrollments.values():
        witness = wanted.get((enrolled.party, enrolled.member))
        # A witness cosigns in C2SP's Ed25519 form: a hybrid agent key is not a witness key.
        if witness is None or enrolled.role is not Role.AGENT or not isinstance(enrolled.key, PublicKey):
            continue
        key = WitnessKey(witness, enrolled, CosignatureVerifier(name=enrolled.member,
                                                                public_key=enrolled.key.raw))
        slots.setdefault(key.slot, []).append(key)
    return slots


def slot_of(line_or_sig: NoteSignature) -> tuple[str, bytes]:
    return (line_or_sig.name, line_or_sig.key_id)


def verify_line(signature: NoteSignature, body: str, slots: Slots, *,
                valid_at: datetime | None = None) -> tuple[WitnessKey, int] | None:
    """The named witness's key that made this cosignature of checkpoint ``body``, and its
    timestamp; None if the line is by no named witness's key, or by one not valid at
    ``valid_at`` (default: the line's own timestamp).

    Raises:
        LogError: the line carries a named witness's key name and hash but verifies under none of
            its keys.
    """
    candidates = slots.get(slot_of(signature), ())
    failure: LogError | None = None
    for key in candidates:
        try:
            timestamp = key.verifier.verify_timestamped(body.encode("utf-8"), signature.signature)
        except LogError as exc:
            failure = failure or exc
            continue
        moment = valid_at or datetime.fromtimestamp(min(timestamp, _LAST_SECOND), tz=UTC)
        if key.enrollment.state_at(moment) is None:
            return key, timestamp
        return None  # verified, but by a key not valid then: it does not count
    if failure is not None:
        raise failure
    return None


def servable(note: str, lines: Iterable[str], slots: Slots) -> str:
    """``note`` with the cosignature lines of named witnesses among ``lines``: at most one per
    witness (the first), malformed or foreign lines dropped, never more signatures than a note
    may carry. Nothing is verified (the readers verify). Never raises for what ``lines`` hold."""
    try:
        parsed = parse_note(note)
    except LogError:
        return note
    room = MAX_SIGNATURES - len(parsed.signatures)
    kept: list[NoteSignature] = []
    seen: set[str] = set()
    present = {slot_of(sig) for sig in parsed.signatures}
    for line in lines:
        if len(kept) >= room:
            break
        try:
            signature = NoteSignature.from_line(line)
        except (LogError, TypeError, ValueError):
            continue
        keys = slots.get(slot_of(signature), ())
        labels = {k.witness.label for k in keys}
        if not keys or labels & seen or slot_of(signature) in present:
            continue
        seen |= labels
        present.add(slot_of(signature))
        kept.append(signature)
    return Note(parsed.body, (*parsed.signatures, *kept)).text()
