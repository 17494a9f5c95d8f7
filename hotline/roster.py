"""Who may do what: enrollments, revocations and agreements, checked against party authorities.

Pure (DESIGN.md §4). The server and every client build the same ``Roster`` from the same signed
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

from hotline.display import article
from hotline.envelope import Kind, check_name
from hotline.errorcodes import Code
from hotline.errors import AuthError, CryptoError, ProtocolViolation, WireError
from hotline.keys import Domain, PublicKey, SigningKey
from hotline.norms.agreement import Agreement
from hotline.times import format_time, parse_time


class Role(StrEnum):
    LIAISON = "liaison"
    AGENT = "agent"
    AUDITOR = "auditor"


SENDABLE: dict[Role, frozenset[Kind]] = {
    Role.LIAISON: frozenset({Kind.MESSAGE, Kind.ACK}),
    Role.AGENT: frozenset({Kind.HEARTBEAT, Kind.ECHO, Kind.ACK}),
    Role.AUDITOR: frozenset(),
}

_DOMAINS = {"enrollment": Domain.ENROLLMENT, "revocation": Domain.REVOCATION,
            "agreement": Domain.AGREEMENT}


def _invalid(message: str) -> ProtocolViolation:
    return ProtocolViolation(message, code=Code.ROSTER_INVALID)


def sign_document(doc: dict[str, Any], *keys: SigningKey) -> dict[str, Any]:
    """Wrap ``doc`` with one signature per key, in its type's domain."""
    domain = _DOMAINS[doc["type"]]
    return {"document": doc, "sigs": [k.sign(domain=domain, obj=doc) for k in keys]}


def enrollment(*, party: str, member: str, role: Role | str, key: PublicKey, not_before: datetime,
               not_after: datetime) -> dict[str, Any]:
    return {"type": "enrollment", "party": party, "member": member, "role": str(role),
            "keys": [key.to_json()], "not_before": format_time(not_before),
            "not_after": format_time(not_after)}


def revocation(*, party: str, member: str, key_id: str, revoked_at: datetime) -> dict[str, Any]:
    return {"type": "revocation", "party": party, "member": member, "key": key_id,
            "revoked_at": format_time(revoked_at)}


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

    def _verify_single(self, signed: dict[str, Any], party: str) -> None:
        sigs = signed["sigs"]
        if len(sigs) != 1:
            raise _invalid(f"{article(signed['document']['type'])} carries exactly one signature")
        try:
            self._authority(party).verify(domain=_DOMAINS[signed["document"]["type"]],
                                          obj=signed["document"], signature=sigs[0])
        except CryptoError as exc:
            raise ProtocolViolation(f"{signed['document']['type']} for {party}: not signed by "
                                    f"{party}'s authority ({exc.message})",
                                    code=Code.ROSTER_BAD_SIGNATURE) from exc

    def check(self, signed: Any) -> str:
        """Verify a signed document against the roster as it is, without applying it.

        Returns:
            The document type.

        Raises:
            ProtocolViolation: ``roster.invalid``, ``roster.bad_signature``,
                ``roster.unknown_party``, ``roster.conflict``.
        """
        self._apply(signed, commit=False)
        return str(signed["document"]["type"])

    def add(self, signed: Any) -> str:
        """Verify and apply a signed document (same errors as ``check``)."""
        self._apply(signed, commit=True)
        return str(signed["document"]["type"])

    def _apply(self, signed: Any, *, commit: bool) -> None:
        if (not isinstance(signed, dict) or set(signed) != {"document", "sigs"}
                or not isinstance(signed["document"], dict) or not isinstance(signed["sigs"], list)):
            raise _invalid('a signed roster document is {"document": {...}, "sigs": [...]}')
        doc = signed["document"]
        kind = doc.get("type")
        try:
            if kind == "enrollment":
                self._enroll(signed, commit)
            elif kind == "revocation":
                self._revoke(signed, commit)
            elif kind == "agreement":
                self._agree(signed, commit)
            else:
                raise _invalid(f"unknown roster document type {kind!r}")
        except WireError as exc:
            raise _invalid(exc.message) from exc

    def _enroll(self, signed: dict[str, Any], commit: bool) -> None:
        doc = signed["document"]
        fields = {"type", "party", "member", "role", "keys", "not_before", "not_after"}
        if set(doc) != fields:
            raise _invalid(f"enrollment fields must be exactly {', '.join(sorted(fields))}")
        party = check_name(doc["party"], field_name="enrollment.party")
        member = check_name(doc["member"], field_name="enrollment.member")
        try:
            role = Role(doc["role"])
        except ValueError:
            raise _invalid(f"enrollment.role must be one of {', '.join(Role)}") from None
        if not isinstance(doc["keys"], list) or len(doc["keys"]) != 1:
            raise _invalid("enrollment.keys must hold exactly one key")
        try:
            key = PublicKey.from_json(doc["keys"][0])
        except CryptoError as exc:
            raise _invalid(f"enrollment.keys[0]: {exc.message}") from exc
        not_before = parse_time(doc["not_before"], field="enrollment.not_before")
        not_after = parse_time(doc["not_after"], field="enrollment.not_after")
        if not_after <= not_before:
            raise _invalid("enrollment.not_after must be later than not_before")
        self._verify_single(signed, party)
        existing = self.enrollments.get(key.key_id)
        if existing is not None and (existing.party, existing.member) != (party, member):
            raise ProtocolViolation(f"key {key.key_id} is already enrolled for {existing.member} "
                                    f"({existing.party})", code=Code.ROSTER_CONFLICT)
        if commit:
            revoked = existing.revoked_at if existing else None
            self.enrollments[key.key_id] = Enrollment(party, member, role, key, not_before,
                                                      not_after, revoked)

    def _revoke(self, signed: dict[str, Any], commit: bool) -> None:
        doc = signed["document"]
        fields = {"type", "party", "member", "key", "revoked_at"}
        if set(doc) != fields:
            raise _invalid(f"revocation fields must be exactly {', '.join(sorted(fields))}")
        party = check_name(doc["party"], field_name="revocation.party")
        revoked_at = parse_time(doc["revoked_at"], field="revocation.revoked_at")
        self._verify_single(signed, party)
        enrolled = self.enrollments.get(doc["key"]) if isinstance(doc["key"], str) else None
        if enrolled is None or enrolled.party != party or enrolled.member != doc["member"]:
            raise _invalid(f"revocation names key {doc['key']!r} that {party} has not enrolled "
                           f"for {doc['member']!r}")
        if commit and (enrolled.revoked_at is None or revoked_at < enrolled.revoked_at):
            enrolled.revoked_at = revoked_at

    def _agree(self, signed: dict[str, Any], commit: bool) -> None:
        agreement = Agreement.from_json(signed["document"])
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
        signed_by = set()
        for sig in signed["sigs"]:
            signer = sig.get("key") if isinstance(sig, dict) else None
            if not isinstance(signer, str) or signer not in by_key:
                raise _invalid(f"agreement signature by {signer!r}, which is no party's authority")
            party, authority = by_key[signer]
            try:
                authority.verify(domain=Domain.AGREEMENT, obj=agreement.document, signature=sig)
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
