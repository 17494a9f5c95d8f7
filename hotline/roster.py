"""Who may do what: enrollments, revocations and agreements, checked against party authorities.

Pure (docs/ARCHITECTURE.md "Roster: enrollments and agreements"). The server and every client build the same
``Roster`` from the same signed
documents, each trusting only the authority keys it pinned itself; so the host cannot enroll
anyone, and a client can check any sender without trusting the host.

Rule 1: a member's key counts only inside an enrollment its party's authority signed, between
``not_before`` and ``not_after``, and before any ``revoked_at`` the same authority signed for it.
Rule 2: a channel exists only under an agreement whose every named party's authority signed it; a
newer version replaces it only when every party of both versions signed the newer one.
Rule 3: a member may use a channel only if its party is named in the agreement *with the same
authority key that enrolled it*, or it is an auditor the agreement names *together with that
authority key*; liaisons send messages and acks, agents heartbeats, echoes and acks, auditors only
read.
Rule 4: a member is (party, member name): names are scoped per party, so no authority can claim or
block a name another authority may enroll; a key belongs to exactly one (party, member).

A signed document travels as ``{"document": {...}, "sigs": [signature, ...]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from hotline.canonical import canonical_bytes
from hotline.display import article
from hotline.envelope import Envelope, Kind
from hotline.epochkeys import DEFAULT_EPOCH, EpochKey, Reader, epoch_of, verify_epoch_key
from hotline.errorcodes import Code
from hotline.errors import AuthError, CryptoError, HotlineError, ProtocolViolation, SealError, WireError
from hotline.hybrid import (
    Ed25519Suite,
    Ed25519SuiteSigner,
    MemberKey,
    member_key_from_json,
)
from hotline.keys import CanonicalSigner, CanonicalVerifier, Domain, SignatureJSON, Signer
from hotline.names import Name
from hotline.norms.agreement import Agreement, AgreementDocument, decode_agreement
from hotline.times import format_time, parse_time
from hotline.typed import convert


class Role(StrEnum):
    LIAISON = "liaison"
    AGENT = "agent"
    AUDITOR = "auditor"


SENDABLE: dict[Role, frozenset[Kind]] = {
    Role.LIAISON: frozenset({Kind.MESSAGE, Kind.ACK, Kind.VIOLATION}),
    Role.AGENT: frozenset({Kind.HEARTBEAT, Kind.ECHO, Kind.ACK, Kind.VIOLATION}),
    Role.AUDITOR: frozenset(),
}


def _invalid(message: str) -> ProtocolViolation:
    return ProtocolViolation(message, code=Code.ROSTER_INVALID)


class EnrollmentDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
                         tag_field="type", tag="enrollment"):
    """A party's authority vouches for one member's key, for an interval."""

    party: Name
    member: Name
    role: Role
    keys: list[dict[str, str]]  # exactly one public key's JSON form (``member_key_from_json``)
    not_before: str
    not_after: str


class RevocationDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
                         tag_field="type", tag="revocation"):
    """A party's authority withdraws one member's key from a moment on."""

    party: Name
    member: str
    key: str  # the KEY_ID
    revoked_at: str
    reason: Annotated[str, Meta(max_length=500)] | msgspec.UnsetType = msgspec.UNSET  # in words


class HandoverDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
                       tag_field="type", tag="handover"):
    """A party's authority hands over to a new key: signed by both, the old (the party's current
    authority) and the new, so neither alone can take over or be replaced."""

    party: Name
    old: str  # the KEY_ID of the authority key handing over
    new: dict[str, str]  # the new authority's public key (``member_key_from_json``): Ed25519 or hybrid
    at: str  # when the handover was signed


RosterDocument = (EnrollmentDocument | RevocationDocument | AgreementDocument | HandoverDocument
                  | EpochKey)
DOCUMENT_TYPES = {"enrollment": Domain.ENROLLMENT, "revocation": Domain.REVOCATION,
                  "agreement": Domain.AGREEMENT, "handover": Domain.HANDOVER,
                  "epoch-key": Domain.EPOCH_KEY}  # each type's signature domain
_SIGNED_FORM = 'a signed roster document is {"document": {...}, "sigs": [...]}'


def type_of(doc: RosterDocument) -> str:
    """The document's ``type`` as it is written."""
    tag = doc.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def describe(signed: SignedDocument | RosterDocument) -> str:
    """A document in words: ``agreement north-south version 2``, ``enrollment of alice (north)``."""
    doc = signed.document if isinstance(signed, SignedDocument) else signed
    if isinstance(doc, AgreementDocument):
        return f"agreement {doc.channel} version {doc.version}"
    if isinstance(doc, HandoverDocument):
        return f"handover of {doc.party}'s authority from {doc.old}"
    return f"{type_of(doc)} of {doc.member} ({doc.party})"


def document_bytes(doc: RosterDocument) -> bytes:
    """The RFC 8785 bytes the authorities sign: those of the object ``doc`` was decoded from."""
    return canonical_bytes(msgspec.to_builtins(doc))


class SignedDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A roster document with its authorities' signatures beside it, as it travels and is logged."""

    document: RosterDocument
    sigs: list[SignatureJSON]

    @property
    def type(self) -> str:
        return type_of(self.document)

    def to_json(self) -> Any:
        """The ``{"document", "sigs"}`` object, as sent and logged."""
        return msgspec.to_builtins(self)

    @classmethod
    def from_json(cls, value: Any) -> SignedDocument:
        """Decode a signed document; ProtocolViolation (``roster.invalid``) names the field.

        A signature not of a signature's form is, on an enrollment or a revocation, a signature
        that does not verify (``roster.bad_signature``), as one naming another key would be.
        """
        if isinstance(value, SignedDocument):
            return value
        if (not isinstance(value, dict) or set(value) != {"document", "sigs"}
                or not isinstance(value["document"], dict) or not isinstance(value["sigs"], list)):
            raise _invalid(_SIGNED_FORM)
        document = decode_document(value["document"])
        kind = type_of(document)
        sigs = convert(value["sigs"], list[SignatureJSON], what=f"{kind} signature",
                       code=Code.ROSTER_INVALID if kind == "agreement" else Code.ROSTER_BAD_SIGNATURE,
                       error=ProtocolViolation)
        return cls(document=document, sigs=sigs)


def decode_document(value: Any) -> RosterDocument:
    """An enrollment, revocation or agreement document (parsed JSON), its fields' shapes
    checked; else ProtocolViolation (``roster.invalid``) naming the field."""
    kind = value.get("type") if isinstance(value, dict) else None
    if not isinstance(kind, str) or kind not in DOCUMENT_TYPES:
        raise _invalid(f"unknown roster document type {kind!r}")
    if kind == "agreement":
        return decode_agreement(value)
    document: RosterDocument = convert(value, RosterDocument, what=kind, code=Code.ROSTER_INVALID,
                                       error=ProtocolViolation)
    return document


def sign_document(doc: RosterDocument, *keys: Signer) -> SignedDocument:
    """``doc`` with one signature per key, in its type's domain."""
    domain, canonical = DOCUMENT_TYPES[type_of(doc)], document_bytes(doc)
    return SignedDocument(document=doc,
                          sigs=[k.sign_canonical(domain=domain, canonical=canonical) for k in keys])


def enrollment(*, party: str, member: str, role: Role | str, key: MemberKey, not_before: datetime,
               not_after: datetime) -> EnrollmentDocument:
    return EnrollmentDocument(party=party, member=member, role=Role(role), keys=[key.to_json()],
                              not_before=format_time(not_before), not_after=format_time(not_after))


def revocation(*, party: str, member: str, key_id: str, revoked_at: datetime,
               reason: str | None = None) -> RevocationDocument:
    return RevocationDocument(party=party, member=member, key=key_id,
                              revoked_at=format_time(revoked_at),
                              reason=msgspec.UNSET if reason is None else reason)


def handover(*, party: str, old: MemberKey | str, new: MemberKey, at: datetime) -> HandoverDocument:
    """The handover of ``party``'s authority from ``old`` (a key or its KEY_ID) to ``new``; sign
    it with both keys (``sign_document(doc, old_key, new_key)``)."""
    return HandoverDocument(party=party, old=old if isinstance(old, str) else old.key_id,
                            new=new.to_json(), at=format_time(at))


def _moment(text: str, field: str) -> datetime:
    try:
        return parse_time(text, field=field)
    except WireError as exc:
        raise _invalid(exc.message) from None


@dataclass
class Enrollment:
    party: str
    member: str
    role: Role
    key: MemberKey
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None = None
    authority: str = ""  # the KEY_ID of the authority key that signed the enrollment
    reason: str | None = None  # the revocation's, in the authority's words

    def state_at(self, moment: datetime) -> Code | None:
        """None if valid at ``moment``, else the reason code."""
        if self.revoked_at is not None and moment >= self.revoked_at:
            return Code.AUTH_REVOKED
        if moment < self.not_before:
            return Code.AUTH_NOT_YET_VALID
        if moment >= self.not_after:
            return Code.AUTH_EXPIRED
        return None


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One enrolled key as the views and reports show it (times in RFC 3339)."""

    party: str
    member: str
    role: str
    key: str  # KEY_ID
    enrolled_by: str  # the KEY_ID of the authority key that signed the enrollment
    not_before: str
    not_after: str
    revoked_at: str | None
    reason: str | None  # the revocation's, in the authority's words


def key_record(enrolled: Enrollment) -> KeyRecord:
    return KeyRecord(party=enrolled.party, member=enrolled.member, role=enrolled.role.value,
                     key=enrolled.key.key_id, enrolled_by=enrolled.authority,
                     not_before=format_time(enrolled.not_before),
                     not_after=format_time(enrolled.not_after),
                     revoked_at=None if enrolled.revoked_at is None else format_time(enrolled.revoked_at),
                     reason=enrolled.reason)


@dataclass(frozen=True)
class Member:
    """An authenticated identity: the enrollment behind one key."""

    party: str
    member: str
    role: Role
    key_id: str


@dataclass(frozen=True)
class Retired:
    """An authority key its party handed over from: what it signed before stays valid."""

    party: str
    key: MemberKey
    at: datetime  # the handover's time
    successor: str  # the KEY_ID it handed over to


@dataclass(frozen=True)
class RefusedDocument:
    """A roster document a reader's roster refused, as it may be told: its type and the code,
    never its content (the host sent it; nothing in it is vouched for). ``unpinned``: the
    parties it names whose authority the reader did not pin (``roster.unknown_party``)."""

    type: str  # "enrollment", "revocation", "agreement", "handover", or "unknown"
    code: str
    unpinned: tuple[str, ...] = ()


def refused_document(value: Any, error: HotlineError, roster: Roster) -> RefusedDocument:
    """What may be said of ``value`` (a signed document's JSON, or one), refused with ``error``."""
    try:
        doc: RosterDocument | None = SignedDocument.from_json(value).document
    except HotlineError:
        doc = None
    if doc is None:
        return RefusedDocument(type="unknown", code=str(error.code))
    named = [p.id for p in doc.parties] if isinstance(doc, AgreementDocument) else [doc.party]
    unpinned = tuple(sorted({p for p in named if p not in roster.current})) \
        if error.code == Code.ROSTER_UNKNOWN_PARTY else ()
    return RefusedDocument(type=type_of(doc), code=str(error.code), unpinned=unpinned)


@dataclass
class Roster:
    """``authorities`` are the keys pinned out of band (each party's first); ``current`` follows
    the handovers logged since, in log order."""

    authorities: Mapping[str, MemberKey]  # Ed25519, or hybrid: then both halves are required
    enrollments: dict[str, Enrollment] = field(default_factory=dict)  # by key id
    agreements: dict[str, Agreement] = field(default_factory=dict)  # by channel
    current: dict[str, MemberKey] = field(default_factory=dict)  # party -> its authority now
    retired: dict[str, Retired] = field(default_factory=dict)  # by key id
    # (epoch length in seconds, epoch) -> (party, member) -> the key and the KEY_ID of the
    # enrolled key that signed it
    epoch_keys: dict[tuple[int, int], dict[tuple[str, str], tuple[EpochKey, str]]] = field(
        default_factory=dict)

    def __post_init__(self) -> None:
        self.current = {**self.authorities, **self.current}

    def _authority(self, party: Any) -> MemberKey:
        if not isinstance(party, str) or party not in self.current:
            raise ProtocolViolation(f"party {party!r} has no authority key known here",
                                    code=Code.ROSTER_UNKNOWN_PARTY)
        return self.current[party]

    def authority_keys(self, party: str) -> set[str]:
        """The KEY_IDs ``party``'s authority has had: the pinned one, and each it handed over to."""
        return {k for k, r in self.retired.items() if r.party == party} | (
            {self.current[party].key_id} if party in self.current else set())

    def _not_retired(self, key_id: object, what: str) -> None:
        """Refuse a signature by a key its party handed over from: whatever time the document
        claims, the handover came first in the log, so the old key now signs nothing."""
        retired = self.retired.get(key_id) if isinstance(key_id, str) else None
        if retired is not None:
            raise ProtocolViolation(
                f"{what} is signed by {retired.party}'s retired authority key {retired.key.key_id}, "
                f"handed over to {retired.successor} at {format_time(retired.at)}: have the "
                "current authority sign it", code=Code.ROSTER_RETIRED_AUTHORITY)

    def _verify_single(self, signed: SignedDocument, party: str) -> None:
        kind = signed.type
        if len(signed.sigs) != 1:
            raise _invalid(f"{article(kind)} carries exactly one signature")
        self._not_retired(signed.sigs[0].get("key"), f"{article(kind)} for {party}")
        try:
            self._authority(party).verify_canonical(domain=DOCUMENT_TYPES[kind],
                                                    canonical=document_bytes(signed.document),
                                                    signature=signed.sigs[0])
        except CryptoError as exc:
            raise ProtocolViolation(f"{kind} for {party}: not signed by {party}'s authority "
                                    f"({exc.message})", code=Code.ROSTER_BAD_SIGNATURE) from exc

    def check(self, signed: SignedDocument | Any) -> str:
        """Verify a signed document (or its JSON form) against the roster as it is, without
        applying it.

        Returns:
            The document type.

        Raises:
            ProtocolViolation: ``roster.invalid``, ``roster.bad_signature``,
                ``roster.unknown_party``, ``roster.conflict``.
        """
        return self._apply(SignedDocument.from_json(signed), commit=False)

    def add(self, signed: SignedDocument | Any) -> str:
        """Verify and apply a signed document (same errors as ``check``)."""
        return self._apply(SignedDocument.from_json(signed), commit=True)

    def _apply(self, signed: SignedDocument, *, commit: bool) -> str:
        doc = signed.document
        if isinstance(doc, EnrollmentDocument):
            self._enroll(doc, signed, commit)
        elif isinstance(doc, RevocationDocument):
            self._revoke(doc, signed, commit)
        elif isinstance(doc, HandoverDocument):
            self._hand_over(doc, signed, commit)
        elif isinstance(doc, EpochKey):
            self._publish_epoch_key(doc, signed, commit)
        else:
            self._agree(Agreement.of(doc), signed, commit)
        return signed.type

    def _enroll(self, doc: EnrollmentDocument, signed: SignedDocument, commit: bool) -> None:
        if len(doc.keys) != 1:
            raise _invalid("enrollment.keys must hold exactly one key")
        try:
            key = member_key_from_json(doc.keys[0])
        except CryptoError as exc:
            raise _invalid(f"enrollment.keys[0]: {exc.message}") from exc
        not_before = _moment(doc.not_before, "enrollment.not_before")
        not_after = _moment(doc.not_after, "enrollment.not_after")
        if not_after <= not_before:
            raise _invalid("enrollment.not_after must be later than not_before")
        self._verify_single(signed, doc.party)
        if key.key_id in self.retired or any(a.key_id == key.key_id for a in self.current.values()):
            raise ProtocolViolation(f"key {key.key_id} is a party's authority key, which enrolls "
                                    "members and is never one", code=Code.ROSTER_CONFLICT)
        existing = self.enrollments.get(key.key_id)
        if existing is not None and (existing.party, existing.member) != (doc.party, doc.member):
            raise ProtocolViolation(f"key {key.key_id} is already enrolled for {existing.member} "
                                    f"({existing.party})", code=Code.ROSTER_CONFLICT)
        if commit:
            revoked, reason = (existing.revoked_at, existing.reason) if existing else (None, None)
            self.enrollments[key.key_id] = Enrollment(
                doc.party, doc.member, doc.role, key, not_before, not_after, revoked,
                authority=self._authority(doc.party).key_id, reason=reason)

    def _revoke(self, doc: RevocationDocument, signed: SignedDocument, commit: bool) -> None:
        party = doc.party
        revoked_at = _moment(doc.revoked_at, "revocation.revoked_at")
        self._verify_single(signed, party)
        enrolled = self.enrollments.get(doc.key)
        if enrolled is None or enrolled.party != party or enrolled.member != doc.member:
            raise _invalid(f"revocation names key {doc.key!r} that {party} has not enrolled "
                           f"for {doc.member!r}")
        if commit and (enrolled.revoked_at is None or revoked_at < enrolled.revoked_at):
            enrolled.revoked_at = revoked_at
            enrolled.reason = doc.reason if isinstance(doc.reason, str) else None

    def _hand_over(self, doc: HandoverDocument, signed: SignedDocument, commit: bool) -> None:
        at = _moment(doc.at, "handover.at")
        old = self._authority(doc.party)
        self._not_retired(doc.old, f"the handover of {doc.party}")
        if doc.old != old.key_id:
            raise ProtocolViolation(f"the handover of {doc.party} is from key {doc.old}, which is "
                                    f"not {doc.party}'s authority ({old.key_id})",
                                    code=Code.ROSTER_BAD_SIGNATURE)
        try:
            new = member_key_from_json(doc.new)
        except CryptoError as exc:
            raise _invalid(f"handover.new: {exc.message}") from exc
        if (new.key_id in self.retired or new.key_id in self.enrollments
                or any(a.key_id == new.key_id for a in self.current.values())):
            raise ProtocolViolation(f"the handover of {doc.party} is to key {new.key_id}, which "
                                    "is already an authority's or a member's", code=Code.ROSTER_CONFLICT)
        by_signer = {sig.get("key"): sig for sig in signed.sigs}
        if len(signed.sigs) != 2 or set(by_signer) != {old.key_id, new.key_id}:
            raise ProtocolViolation(f"the handover of {doc.party} must be signed by both the old "
                                    "and the new authority key, and by nothing else",
                                    code=Code.ROSTER_UNSIGNED)
        canonical = document_bytes(doc)
        for key, which in ((old, "old"), (new, "new")):
            try:
                key.verify_canonical(domain=Domain.HANDOVER, canonical=canonical,
                                     signature=by_signer[key.key_id])
            except CryptoError as exc:
                raise ProtocolViolation(f"the handover of {doc.party}: the {which} key's signature "
                                        f"does not verify ({exc.message})",
                                        code=Code.ROSTER_BAD_SIGNATURE) from exc
        if commit:
            self.retired[old.key_id] = Retired(doc.party, old, at, new.key_id)
            self.current[doc.party] = new

    def _publish_epoch_key(self, doc: EpochKey, signed: SignedDocument, commit: bool) -> None:
        """A member's encryption key for one epoch, signed by a key its party enrolled for it and
        valid during the epoch; one key per member and epoch, never replaced (a host that
        would swap one must forge the member's signature, and a member who lost one uses the
        next epoch), except by one signed with another of the member's keys once the key that
        signed it is revoked: the lost laptop holds that key's private half, and the member's
        new one must be readable at once."""
        who = f"the epoch {doc.epoch} key of {doc.member} ({doc.party})"
        if len(signed.sigs) != 1:
            raise _invalid(f"{who} carries exactly one signature")
        signer = self.enrollments.get(signed.sigs[0].get("key", ""))
        if signer is None or (signer.party, signer.member) != (doc.party, doc.member):
            raise ProtocolViolation(f"{who} is not signed by a key {doc.party} enrolled for "
                                    f"{doc.member}", code=Code.ROSTER_SIGNER_NOT_VALID)
        # The signing key must be valid at some moment of the epoch: from its start, or from
        # the enrollment's if that is later (a member enrolled today publishes for today).
        moment = max(doc.not_before, signer.not_before)
        state = Code.AUTH_NOT_YET_VALID if moment >= doc.not_after else signer.state_at(moment)
        if state is not None:
            raise ProtocolViolation(f"{who}: its signing key is {state.split('.')[1].replace('_', ' ')} "
                                    f"during the epoch", code=Code.ROSTER_SIGNER_NOT_VALID)
        try:
            doc.public_key  # noqa: B018 - a key no one could seal to is refused now
            verify_epoch_key(doc, signed.sigs[0], enrolled=signer.key, party=doc.party,
                             member=doc.member, epoch=doc.epoch, length=timedelta(seconds=doc.length))
        except SealError as exc:
            raise ProtocolViolation(exc.message, code=Code.ROSTER_BAD_SIGNATURE) from exc
        lengths = self.epoch_lengths(doc.party)
        if timedelta(seconds=doc.length) not in lengths:
            raise ProtocolViolation(
                f"{who} is for epochs of {doc.length} s; {doc.party}'s channels use "
                + ", ".join(f"{int(t.total_seconds()) // 3600} h" for t in sorted(lengths)),
                code=Code.ROSTER_EPOCH_LENGTH)
        slot, epoch = (doc.party, doc.member), (doc.length, doc.epoch)
        existing = self.epoch_keys.get(epoch, {}).get(slot)
        if existing is not None and existing[0].key_id != doc.key_id and not self._superseded(
                existing[1], by=signer.key.key_id):
            raise ProtocolViolation(f"{who} is already published ({existing[0].key_id}): one key "
                                    "per member and epoch", code=Code.ROSTER_CONFLICT)
        if commit:
            self.epoch_keys.setdefault(epoch, {})[slot] = (doc, signer.key.key_id)

    def _superseded(self, signed_by: str, *, by: str) -> bool:
        """Whether an epoch key signed with ``signed_by`` gives way to one signed with ``by``:
        ``signed_by`` is revoked (in this log, so every replay decides alike) and ``by`` is
        another key."""
        before = self.enrollments.get(signed_by)
        return before is not None and before.revoked_at is not None and by != signed_by

    def epoch_lengths(self, party: str) -> set[timedelta]:
        """The epoch lengths ``party``'s members publish keys for: 24 h, and each its channels'
        agreements set (a bound on what one member can add to the log: a few keys per epoch of
        each length in use, never one per length anyone can name)."""
        return {DEFAULT_EPOCH} | self.agreed_epoch_lengths(party)

    def agreed_epoch_lengths(self, party: str) -> set[timedelta]:
        """The epoch lengths the agreements of ``party``'s channels set: those its liaisons keep
        keys for."""
        return {a.epoch_length for a in self.agreements.values() if party in a.parties}

    def published_epochs(self, party: str, member: str, key_id: str) -> dict[int, set[int]]:
        """Epoch length (seconds) -> the epochs ``member`` of ``party`` published its key for,
        signed with its key ``key_id`` (one signed by another of its keys is not counted)."""
        out: dict[int, set[int]] = {}
        for (length, epoch), keys in self.epoch_keys.items():
            logged = keys.get((party, member))
            if logged is not None and logged[1] == key_id:
                out.setdefault(length, set()).add(epoch)
        return out

    def _agree(self, agreement: Agreement, signed: SignedDocument, commit: bool) -> None:
        previous = self.agreements.get(agreement.channel)
        for party, key_id in agreement.parties.items():
            if self._authority(party).key_id != key_id:
                raise ProtocolViolation(f"agreement names {key_id} as {party}'s authority, which "
                                        "is not the authority key known here",
                                        code=Code.ROSTER_BAD_SIGNATURE)
        required = set(agreement.parties)
        if previous is not None:
            if agreement.version <= previous.version:
                raise ProtocolViolation(
                    f"agreement for {agreement.channel} version {agreement.version} does not "
                    f"supersede version {previous.version}", code=Code.ROSTER_CONFLICT)
            required |= set(previous.parties)  # a party can be dropped only with its consent
        by_key = {}
        for party in required:
            authority = self._authority(party)
            by_key[authority.key_id] = (party, authority)
        canonical = document_bytes(signed.document)
        signed_by = set()
        for sig in signed.sigs:
            signer = sig.get("key")
            self._not_retired(signer, f"the agreement for {agreement.channel}")
            if signer not in by_key:
                raise _invalid(f"agreement signature by {signer!r}, which is no party's authority")
            party, authority = by_key[signer]
            try:
                authority.verify_canonical(domain=Domain.AGREEMENT, canonical=canonical,
                                           signature=sig)
            except CryptoError as exc:
                raise ProtocolViolation(f"agreement signature of {party} does not verify "
                                        f"({exc.message})", code=Code.ROSTER_BAD_SIGNATURE) from exc
            signed_by.add(party)
        unsigned = sorted(set(required) - signed_by)
        if unsigned:
            raise ProtocolViolation(f"agreement for {agreement.channel} lacks the signature of "
                                    f"{', '.join(unsigned)}", code=Code.ROSTER_UNSIGNED)
        if commit:
            self.agreements[agreement.channel] = agreement

    # -- queries -------------------------------------------------------------------------------

    def member_for_key(self, key_id: str, *, at: datetime) -> Member:
        """The member whose enrollment of ``key_id`` is valid at ``at``.

        Raises:
            AuthError: ``auth.unknown_key``, ``auth.revoked``, ``auth.not_yet_valid``,
                ``auth.expired``.
        """
        enrolled = self.enrollments.get(key_id)
        if enrolled is None:
            raise AuthError(f"key {key_id} is not enrolled by any party", code=Code.AUTH_UNKNOWN_KEY)
        reason = enrolled.state_at(at)
        if reason is not None:
            raise AuthError(f"key {key_id} of {enrolled.member} ({enrolled.party}): "
                            f"{reason.split('.')[1].replace('_', ' ')} at {format_time(at)}",
                            code=reason)
        return Member(enrolled.party, enrolled.member, enrolled.role, key_id)

    def public_key(self, key_id: str) -> MemberKey:
        enrolled = self.enrollments.get(key_id)
        if enrolled is None:
            raise AuthError(f"key {key_id} is not enrolled by any party", code=Code.AUTH_UNKNOWN_KEY)
        return enrolled.key

    def envelope_key(self, key_id: str, channel: str, template: str) -> CanonicalVerifier:
        """The enrolled key ``key_id`` as it verifies an envelope of ``template`` on ``channel``:
        in the Ed25519 suite when the channel's agreement lets that template be signed so
        (``ed25519_only``), else as it is (both halves of a hybrid key)."""
        key = self.public_key(key_id)
        agreement = self.agreements.get(channel)
        return Ed25519Suite(key) if agreement is not None and template in agreement.ed25519_only else key

    def channels_of(self, member: Member) -> list[str]:
        """Channels ``member`` may read, sorted."""
        return sorted(c for c, a in self.agreements.items() if self._in_agreement(member, a))

    def _in_agreement(self, member: Member, agreement: Agreement) -> bool:
        enrolled = self.enrollments.get(member.key_id)
        keys = self.authority_keys(member.party)  # an agreement signed before a handover holds
        if enrolled is None or not keys:
            return False
        if agreement.parties.get(member.party) in keys:
            return True
        # An auditor the parties named, enrolled by the very authority they named for it.
        return member.role is Role.AUDITOR and agreement.auditors.get(member.member) in keys

    def authority_key_id(self, party: str) -> str | None:
        """The KEY_ID of ``party``'s current authority, if this roster knows one."""
        authority = self.current.get(party)
        return None if authority is None else authority.key_id

    def check_channel(self, member: Member, channel: str) -> Agreement:
        """The channel's agreement if ``member`` may read it; else ProtocolViolation."""
        agreement = self.agreements.get(channel)
        if agreement is None:
            raise ProtocolViolation(f"no channel {channel!r} exists under an agreement",
                                    code=Code.CHANNEL_UNKNOWN)
        if not self._in_agreement(member, agreement):
            raise ProtocolViolation(f"{member.member} ({member.party}) is not a member of "
                                    f"channel {channel}", code=Code.CHANNEL_NOT_MEMBER)
        return agreement

    def check_send(self, member: Member, channel: str, kind: Kind, *, at: datetime) -> Agreement:
        """The channel's agreement if ``member`` may send ``kind`` on it at ``at`` (the server:
        now; a verifier: when the entry was logged). A channel whose agreement ``ends`` takes
        nothing from then on (``channel.closed``); reading its history stays allowed
        (``check_channel``)."""
        agreement = self.check_channel(member, channel)
        if kind not in SENDABLE[member.role]:
            raise ProtocolViolation(f"{article(member.role)} may not send {kind} envelopes",
                                    code=Code.NORM_SENDER_NOT_ALLOWED)
        if agreement.closed_at(at):
            assert agreement.ends is not None
            raise ProtocolViolation(f"channel {channel} was closed at {format_time(agreement.ends)} "
                                    f"by its agreement version {agreement.version}",
                                    code=Code.CHANNEL_CLOSED)
        return agreement


def envelope_signer(roster: Roster, key: Signer, envelope: Envelope) -> CanonicalSigner:
    """``key`` as it signs ``envelope``: in the Ed25519 suite when the channel's agreement (as
    ``roster`` knows it) lets its template be signed so (``Roster.envelope_key``)."""
    agreement = roster.agreements.get(envelope.channel)
    if agreement is not None and envelope.template in agreement.ed25519_only:
        return Ed25519SuiteSigner(key)
    return key


def readers_of(roster: Roster, parties: Iterable[str], *, at: datetime,
               length: timedelta = DEFAULT_EPOCH) -> list[Reader]:
    """The members fields for ``parties`` are sealed to at ``at``: every liaison and agent of
    those parties who published a key for the epoch of ``length`` that ``at`` falls in, that
    this roster verified, signed by a key its party enrolled for it and still valid at ``at``.
    A key the host made, or one this roster refused, is never among them: a sender seals
    nothing to it (``seal.no_reader`` if that leaves a field with no reader)."""
    wanted = set(parties)
    readers = []
    slot = (int(length.total_seconds()), epoch_of(at, length))
    for (party, member), (key, signer) in sorted(roster.epoch_keys.get(slot, {}).items()):
        enrolled = roster.enrollments.get(signer)
        if (party in wanted and enrolled is not None and enrolled.role is not Role.AUDITOR
                and enrolled.state_at(at) is None):
            readers.append(Reader(party, member, key))
    return readers
