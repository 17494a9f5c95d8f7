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

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

from hotline.canonical import canonical_bytes
from hotline.display import article
from hotline.envelope import Kind, Name
from hotline.errorcodes import Code
from hotline.errors import AuthError, CryptoError, ProtocolViolation, WireError
from hotline.keys import Domain, PublicKey, SignatureJSON, SigningKey
from hotline.norms.agreement import Agreement, AgreementDocument, decode_agreement
from hotline.times import format_time, parse_time
from hotline.typed import convert


class Role(StrEnum):
    LIAISON = "liaison"
    AGENT = "agent"
    AUDITOR = "auditor"


SENDABLE: dict[Role, frozenset[Kind]] = {
    Role.LIAISON: frozenset({Kind.MESSAGE, Kind.ACK}),
    Role.AGENT: frozenset({Kind.HEARTBEAT, Kind.ECHO, Kind.ACK}),
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
    keys: list[dict[str, str]]  # exactly one public key's JSON form (``PublicKey.from_json``)
    not_before: str
    not_after: str


class RevocationDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
                         tag_field="type", tag="revocation"):
    """A party's authority withdraws one member's key from a moment on."""

    party: Name
    member: str
    key: str  # the KEY_ID
    revoked_at: str


RosterDocument = EnrollmentDocument | RevocationDocument | AgreementDocument
DOCUMENT_TYPES = {"enrollment": Domain.ENROLLMENT, "revocation": Domain.REVOCATION,
                  "agreement": Domain.AGREEMENT}  # each type's signature domain
_SIGNED_FORM = 'a signed roster document is {"document": {...}, "sigs": [...]}'


def type_of(doc: RosterDocument) -> str:
    """The document's ``type`` as it is written."""
    tag = doc.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


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


def sign_document(doc: RosterDocument, *keys: SigningKey) -> SignedDocument:
    """``doc`` with one signature per key, in its type's domain."""
    domain, canonical = DOCUMENT_TYPES[type_of(doc)], document_bytes(doc)
    return SignedDocument(document=doc,
                          sigs=[k.sign_canonical(domain=domain, canonical=canonical) for k in keys])


def enrollment(*, party: str, member: str, role: Role | str, key: PublicKey, not_before: datetime,
               not_after: datetime) -> EnrollmentDocument:
    return EnrollmentDocument(party=party, member=member, role=Role(role), keys=[key.to_json()],
                              not_before=format_time(not_before), not_after=format_time(not_after))


def revocation(*, party: str, member: str, key_id: str, revoked_at: datetime) -> RevocationDocument:
    return RevocationDocument(party=party, member=member, key=key_id,
                              revoked_at=format_time(revoked_at))


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
    key: PublicKey
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None = None

    def state_at(self, moment: datetime) -> Code | None:
        """None if valid at ``moment``, else the reason code."""
        if self.revoked_at is not None and moment >= self.revoked_at:
            return Code.AUTH_REVOKED
        if moment < self.not_before:
            return Code.AUTH_NOT_YET_VALID
        if moment >= self.not_after:
            return Code.AUTH_EXPIRED
        return None


@dataclass(frozen=True)
class Member:
    """An authenticated identity: the enrollment behind one key."""

    party: str
    member: str
    role: Role
    key_id: str


@dataclass
class Roster:
    authorities: Mapping[str, PublicKey]
    enrollments: dict[str, Enrollment] = field(default_factory=dict)  # by key id
    agreements: dict[str, Agreement] = field(default_factory=dict)  # by channel

    def _authority(self, party: Any) -> PublicKey:
        if not isinstance(party, str) or party not in self.authorities:
            raise ProtocolViolation(f"party {party!r} has no authority key known here",
                                    code=Code.ROSTER_UNKNOWN_PARTY)
        return self.authorities[party]

    def _verify_single(self, signed: SignedDocument, party: str) -> None:
        kind = signed.type
        if len(signed.sigs) != 1:
            raise _invalid(f"{article(kind)} carries exactly one signature")
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
        else:
            self._agree(Agreement.of(doc), signed, commit)
        return signed.type

    def _enroll(self, doc: EnrollmentDocument, signed: SignedDocument, commit: bool) -> None:
        if len(doc.keys) != 1:
            raise _invalid("enrollment.keys must hold exactly one key")
        try:
            key = PublicKey.from_json(doc.keys[0])
        except CryptoError as exc:
            raise _invalid(f"enrollment.keys[0]: {exc.message}") from exc
        not_before = _moment(doc.not_before, "enrollment.not_before")
        not_after = _moment(doc.not_after, "enrollment.not_after")
        if not_after <= not_before:
            raise _invalid("enrollment.not_after must be later than not_before")
        self._verify_single(signed, doc.party)
        existing = self.enrollments.get(key.key_id)
        if existing is not None and (existing.party, existing.member) != (doc.party, doc.member):
            raise ProtocolViolation(f"key {key.key_id} is already enrolled for {existing.member} "
                                    f"({existing.party})", code=Code.ROSTER_CONFLICT)
        if commit:
            revoked = existing.revoked_at if existing else None
            self.enrollments[key.key_id] = Enrollment(doc.party, doc.member, doc.role, key,
                                                      not_before, not_after, revoked)

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
            if signer not in by_key:
                raise _invalid(f"agreement signature by {signer!r}, which is no party's authority")
            party, authority = by_key[signer]
            try:
                authority.verify_canonical(domain=Domain.AGREEMENT, canonical=canonical,
                                           signature=sig)
            except CryptoError as exc:
                raise ProtocolViolation(f"agreement signature of {party} does not verify",
                                        code=Code.ROSTER_BAD_SIGNATURE) from exc
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

    def public_key(self, key_id: str) -> PublicKey:
        enrolled = self.enrollments.get(key_id)
        if enrolled is None:
            raise AuthError(f"key {key_id} is not enrolled by any party", code=Code.AUTH_UNKNOWN_KEY)
        return enrolled.key

    def channels_of(self, member: Member) -> list[str]:
        """Channels ``member`` may read, sorted."""
        return sorted(c for c, a in self.agreements.items() if self._in_agreement(member, a))

    def _in_agreement(self, member: Member, agreement: Agreement) -> bool:
        enrolled = self.enrollments.get(member.key_id)
        authority = self.authorities.get(member.party)
        if enrolled is None or authority is None:
            return False
        if agreement.parties.get(member.party) == authority.key_id:
            return True
        # An auditor the parties named, enrolled by the very authority they named for it.
        return member.role is Role.AUDITOR and agreement.auditors.get(member.member) == authority.key_id

    def authority_key_id(self, party: str) -> str | None:
        """The KEY_ID of ``party``'s pinned authority, if this roster pins one."""
        authority = self.authorities.get(party)
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

    def check_send(self, member: Member, channel: str, kind: Kind) -> Agreement:
        """The channel's agreement if ``member`` may send ``kind`` on it."""
        agreement = self.check_channel(member, channel)
        if kind not in SENDABLE[member.role]:
            raise ProtocolViolation(f"{article(member.role)} may not send {kind} envelopes",
                                    code=Code.NORM_SENDER_NOT_ALLOWED)
        return agreement
