"""hotline.roster and hotline.norms.agreement: who may do what (docs/ARCHITECTURE.md "Roster: enrollments and
agreements"; Rules 1-3).

A small deployment with fixed keys: authorities for north, south, mediator and west; alice (north
liaison), bob (south liaison), north-relay (north agent), observer (mediator auditor) and wendy
(west liaison); and channel ``north-south`` under an agreement of north, south and mediator only.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.canonical import check_value
from hotline.envelope import Kind
from hotline.errors import AuthError, ProtocolViolation, WireError
from hotline.keys import Domain, SigningKey
from hotline.norms.agreement import Agreement, TemplateRef
from hotline.roster import (
    DOCUMENT_TYPES,
    SENDABLE,
    Enrollment,
    Member,
    Role,
    Roster,
    SignedDocument,
    document_bytes,
    enrollment,
    revocation,
    sign_document,
)
from hotline.times import format_time
from hotline.typed import to_json

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=100)


def fixed_key(label: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(f"hotline-test/{label}".encode()).digest())


PARTIES = ("north", "south", "mediator", "west")
AUTH = {p: fixed_key(f"authority/{p}") for p in PARTIES}
AUTHORITIES = {p: k.public_key for p, k in AUTH.items()}

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOT_AFTER = T0 + timedelta(days=365)
NOW = T0 + timedelta(days=30)
MS = timedelta(milliseconds=1)
CHANNEL = "north-south"

# member -> (party, role)
PEOPLE = {
    "alice": ("north", Role.LIAISON),
    "bob": ("south", Role.LIAISON),
    "north-relay": ("north", Role.AGENT),
    "observer": ("mediator", Role.AUDITOR),
    "wendy": ("west", Role.LIAISON),
}
KEYS = {m: fixed_key(f"member/{m}") for m in PEOPLE}
TEMPLATE_SHA = hashlib.sha256(b"incident-report v1").hexdigest()


def enroll_doc(member: str, *, party: str | None = None, role: Role | None = None,
               key: SigningKey | None = None, not_before: datetime = T0,
               not_after: datetime = NOT_AFTER) -> dict[str, Any]:
    default_party, default_role = PEOPLE.get(member, ("north", Role.LIAISON))
    return to_json(enrollment(party=party or default_party, member=member,
                              role=role or default_role, key=(key or KEYS[member]).public_key,
                              not_before=not_before, not_after=not_after))


def enrolled(member: str, *, signer: str | None = None, **kwargs: Any) -> dict[str, Any]:
    doc = enroll_doc(member, **kwargs)
    return sign_json(doc, AUTH[signer or doc["party"]])


def agreement_doc(*, version: int = 1, parties: tuple[str, ...] = ("north", "south", "mediator"),
                  authorities: dict[str, str] | None = None, channel: str = CHANNEL,
                  **overrides: Any) -> dict[str, Any]:
    named = {p: AUTH[p].key_id for p in parties}
    named.update(authorities or {})
    doc = {
        "type": "agreement", "channel": channel, "version": version,
        "parties": [{"id": p, "authority": named[p]} for p in parties],
        "templates": [{"id": "incident-report", "version": 1, "sha256": TEMPLATE_SHA}],
        "heartbeat": {"interval": 30, "grace": 90},
        "auditors": [{"id": "observer", "authority": AUTH["mediator"].key_id}],
        "witnesses": [{"id": "north-relay", "authority": AUTH["north"].key_id}],
        "effective": format_time(T0),
    }
    doc.update(overrides)
    return doc


def agreed(doc: dict[str, Any] | None = None, *,
           by: tuple[str, ...] | None = None) -> dict[str, Any]:
    doc = doc or agreement_doc()
    signers = by if by is not None else tuple(p["id"] for p in doc["parties"])
    return sign_json(doc, *(AUTH[p] for p in signers))


def sign_json(doc: Any, *keys: SigningKey) -> dict[str, Any]:
    """``doc`` (a roster document or its JSON form, perhaps malformed) signed by ``keys`` in the
    domain of its type, as JSON: what a peer may send."""
    obj = to_json(doc)
    return {"document": obj, "sigs": [k.sign(domain=DOCUMENT_TYPES[obj["type"]], obj=obj)
                                        for k in keys]}


def sign_as(domain: Domain, doc: dict[str, Any], *parties: str) -> dict[str, Any]:
    """Like ``sign_json``, for documents whose ``type`` is not a roster type."""
    return {"document": doc, "sigs": [AUTH[p].sign(domain=domain, obj=doc) for p in parties]}


def refused(roster: Roster, signed: Any, code: str) -> ProtocolViolation:
    """``check`` and ``add`` both refuse ``signed`` with ``code`` and leave the roster as it was."""
    before = (copy.copy(roster.enrollments), copy.copy(roster.agreements),
              {k: e.revoked_at for k, e in roster.enrollments.items()})
    for method in (roster.check, roster.add):
        with pytest.raises(ProtocolViolation) as info:
            method(signed)
        assert info.value.code == code, info.value.message
    after = (copy.copy(roster.enrollments), copy.copy(roster.agreements),
             {k: e.revoked_at for k, e in roster.enrollments.items()})
    assert after == before
    return info.value


def member(roster: Roster, name: str, at: datetime = NOW) -> Member:
    return roster.member_for_key(KEYS[name].key_id, at=at)


def auth_code(roster: Roster, key_id: str, at: datetime) -> str:
    with pytest.raises(AuthError) as info:
        roster.member_for_key(key_id, at=at)
    return info.value.code


@pytest.fixture
def empty() -> Roster:
    return Roster(authorities=dict(AUTHORITIES))


@pytest.fixture
def roster(empty: Roster) -> Roster:
    for name in PEOPLE:
        assert empty.add(enrolled(name)) == "enrollment"
    assert empty.add(agreed()) == "agreement"
    return empty


# -- Rule 1: enrollments ----------------------------------------------------------------------

@pytest.mark.parametrize("name", list(PEOPLE))
def test_members_resolve_by_key(roster: Roster, name: str) -> None:
    party, role = PEOPLE[name]
    assert member(roster, name) == Member(party, name, role, KEYS[name].key_id)
    assert roster.public_key(KEYS[name].key_id) == KEYS[name].public_key


def test_unknown_key(roster: Roster) -> None:
    stranger = fixed_key("stranger").key_id
    assert auth_code(roster, stranger, NOW) == "auth.unknown_key"
    with pytest.raises(AuthError) as info:
        roster.public_key(stranger)
    assert info.value.code == "auth.unknown_key"


def test_enrollment_signed_by_wrong_authority(empty: Roster) -> None:
    refused(empty, enrolled("alice", signer="south"), "roster.bad_signature")


def test_enrollment_signed_by_the_member_itself(empty: Roster) -> None:
    signed = sign_json(enroll_doc("alice"), KEYS["alice"])
    refused(empty, signed, "roster.bad_signature")


def test_enrollment_signed_in_another_domain(empty: Roster) -> None:
    doc = enroll_doc("alice")
    signed = {"document": doc, "sigs": [AUTH["north"].sign(domain=Domain.REVOCATION, obj=doc)]}
    refused(empty, signed, "roster.bad_signature")


def test_enrollment_tampered_after_signing(empty: Roster) -> None:
    signed = enrolled("alice")
    signed["document"]["role"] = "auditor"
    refused(empty, signed, "roster.bad_signature")


@pytest.mark.parametrize("sigs", [[], "twice"], ids=["none", "two"])
def test_enrollment_needs_exactly_one_signature(empty: Roster, sigs: Any) -> None:
    signed = enrolled("alice")
    signed["sigs"] = [] if sigs == [] else signed["sigs"] * 2
    refused(empty, signed, "roster.invalid")


@pytest.mark.parametrize("sig", [None, "sig", {}, {"alg": "ed25519", "key": "k", "sig": "AA=="}])
def test_enrollment_malformed_signature(empty: Roster, sig: Any) -> None:
    signed = enrolled("alice")
    signed["sigs"] = [sig]
    refused(empty, signed, "roster.bad_signature")


def test_unknown_party(empty: Roster) -> None:
    east = fixed_key("authority/east")
    signed = sign_json(enroll_doc("eve", party="east", key=fixed_key("member/eve")), east)
    refused(empty, signed, "roster.unknown_party")


def test_revocation(roster: Roster) -> None:
    revoked_at = NOW
    signed = sign_json(revocation(party="north", member="alice", key_id=KEYS["alice"].key_id,
                                      revoked_at=revoked_at), AUTH["north"])
    assert roster.add(signed) == "revocation"
    assert member(roster, "alice", revoked_at - MS).member == "alice"
    assert member(roster, "alice", T0).member == "alice"
    assert auth_code(roster, KEYS["alice"].key_id, revoked_at) == "auth.revoked"
    assert auth_code(roster, KEYS["alice"].key_id, revoked_at + timedelta(days=1)) == "auth.revoked"
    # Revocation outranks expiry in the reported reason.
    assert auth_code(roster, KEYS["alice"].key_id, NOT_AFTER + MS) == "auth.revoked"
    # Others are untouched.
    assert member(roster, "bob", revoked_at + MS).member == "bob"


def _revoke(name: str, at: datetime, *, party: str | None = None,
            signer: str | None = None, key_id: str | None = None) -> dict[str, Any]:
    party = party or PEOPLE[name][0]
    doc = revocation(party=party, member=name, key_id=key_id or KEYS[name].key_id, revoked_at=at)
    return sign_json(doc, AUTH[signer or party])


def test_earliest_revocation_wins(roster: Roster) -> None:
    roster.add(_revoke("alice", NOW))
    roster.add(_revoke("alice", NOW + timedelta(days=5)))  # cannot postpone
    assert auth_code(roster, KEYS["alice"].key_id, NOW) == "auth.revoked"
    roster.add(_revoke("alice", NOW - timedelta(days=5)))  # can bring forward
    assert auth_code(roster, KEYS["alice"].key_id, NOW - timedelta(days=5)) == "auth.revoked"


def test_reenrollment_does_not_lift_revocation(roster: Roster) -> None:
    roster.add(_revoke("alice", NOW))
    roster.add(enrolled("alice", not_after=NOT_AFTER + timedelta(days=365)))
    assert auth_code(roster, KEYS["alice"].key_id, NOW + MS) == "auth.revoked"


def test_revocation_signed_by_wrong_authority(roster: Roster) -> None:
    refused(roster, _revoke("alice", NOW, signer="south"), "roster.bad_signature")
    assert member(roster, "alice").member == "alice"


def test_revocation_by_another_party(roster: Roster) -> None:
    # South's own authority cannot revoke north's member.
    refused(roster, _revoke("alice", NOW, party="south"), "roster.invalid")


def test_revocation_of_unknown_key(roster: Roster) -> None:
    refused(roster, _revoke("alice", NOW, key_id=fixed_key("stranger").key_id), "roster.invalid")


def test_revocation_naming_the_wrong_member(roster: Roster) -> None:
    doc = revocation(party="north", member="north-relay", key_id=KEYS["alice"].key_id,
                     revoked_at=NOW)
    refused(roster, sign_json(doc, AUTH["north"]), "roster.invalid")


def test_check_does_not_revoke(roster: Roster) -> None:
    assert roster.check(_revoke("alice", NOW)) == "revocation"
    assert member(roster, "alice", NOW + MS).member == "alice"


def test_not_yet_valid_and_expired(empty: Roster) -> None:
    start, end = T0 + timedelta(days=10), T0 + timedelta(days=20)
    empty.add(enrolled("alice", not_before=start, not_after=end))
    key_id = KEYS["alice"].key_id
    assert auth_code(empty, key_id, start - MS) == "auth.not_yet_valid"
    assert member(empty, "alice", start).member == "alice"  # not_before is inclusive
    assert member(empty, "alice", end - MS).member == "alice"
    assert auth_code(empty, key_id, end) == "auth.expired"  # not_after is exclusive
    assert auth_code(empty, key_id, end + timedelta(days=100)) == "auth.expired"


def test_enrollment_state_at() -> None:
    e = Enrollment("north", "alice", Role.LIAISON, KEYS["alice"].public_key, T0, NOT_AFTER,
                   revoked_at=NOW)
    assert e.state_at(T0 - MS) == "auth.not_yet_valid"
    assert e.state_at(NOW - MS) is None
    assert e.state_at(NOW) == "auth.revoked"


def test_enrollment_interval_must_be_positive(empty: Roster) -> None:
    refused(empty, enrolled("alice", not_after=T0), "roster.invalid")
    refused(empty, enrolled("alice", not_after=T0 - MS), "roster.invalid")


def test_member_names_are_scoped_per_party(roster: Roster) -> None:
    """Rule 4: south may enroll its own "alice"; it is (south, alice), not north's alice, and
    neither claims nor blocks the other."""
    other = fixed_key("member/other-alice")
    roster.add(enrolled("alice", party="south", key=other))
    assert member(roster, "alice").party == "north"
    south_alice = roster.member_for_key(other.key_id, at=NOW)
    assert (south_alice.party, south_alice.member) == ("south", "alice")
    roster.add(enrolled("alice", key=fixed_key("member/alice-2")))  # north still enrolls its own
    # A key stays bound to one (party, member): south cannot take north's alice key.
    refused(roster, enrolled("alice", party="south", key=KEYS["alice"]), "roster.conflict")


def test_key_enrolled_for_another_member(roster: Roster) -> None:
    refused(roster, enrolled("alicia", party="north", key=KEYS["alice"]), "roster.conflict")
    refused(roster, enrolled("bobby", party="south", key=KEYS["alice"]), "roster.conflict")


def test_same_party_may_enroll_a_second_key_for_a_member(roster: Roster) -> None:
    second = fixed_key("member/alice-2")
    roster.add(enrolled("alice", key=second))
    assert roster.member_for_key(second.key_id, at=NOW).member == "alice"
    assert member(roster, "alice").member == "alice"


def test_reenrollment_updates_role_and_interval(roster: Roster) -> None:
    roster.add(enrolled("alice", role=Role.AUDITOR, not_after=NOW + timedelta(days=1)))
    assert member(roster, "alice").role is Role.AUDITOR
    assert auth_code(roster, KEYS["alice"].key_id, NOW + timedelta(days=1)) == "auth.expired"


def test_check_does_not_enroll_and_add_does(empty: Roster) -> None:
    signed = enrolled("alice")
    assert empty.check(signed) == "enrollment"
    assert auth_code(empty, KEYS["alice"].key_id, NOW) == "auth.unknown_key"
    assert empty.enrollments == {}
    assert empty.add(signed) == "enrollment"
    assert member(empty, "alice").party == "north"


def test_check_sees_conflicts_against_applied_state(roster: Roster) -> None:
    # check() verifies against the roster as it is: a key conflict shows without applying.
    signed = enrolled("alicia", party="south", key=KEYS["alice"])
    with pytest.raises(ProtocolViolation) as info:
        roster.check(signed)
    assert info.value.code == "roster.conflict"


ENROLL_FIELDS = ["type", "party", "member", "role", "keys", "not_before", "not_after"]


@pytest.mark.parametrize(("field", "value"), [
    ("party", "North"), ("party", 5), ("member", ""), ("member", "Alice"), ("member", None),
    ("role", "admin"), ("role", "LIAISON"), ("role", None),
    ("keys", []), ("keys", "key"), ("keys", [{"alg": "ed25519"}]),
    ("keys", [{"alg": "x25519", "pub": "A" * 43 + "="}]),
    ("not_before", "2026-01-01"), ("not_after", 1767225600), ("not_before", None),
])
def test_malformed_enrollment(empty: Roster, field: str, value: Any) -> None:
    doc = enroll_doc("alice")
    doc[field] = value
    refused(empty, sign_json(doc, AUTH["north"]), "roster.invalid")


def test_enrollment_with_two_keys(empty: Roster) -> None:
    doc = enroll_doc("alice")
    doc["keys"] = doc["keys"] + [fixed_key("member/alice-2").public_key.to_json()]
    refused(empty, sign_json(doc, AUTH["north"]), "roster.invalid")


@pytest.mark.parametrize("field", ENROLL_FIELDS[1:])
def test_enrollment_missing_field(empty: Roster, field: str) -> None:
    doc = enroll_doc("alice")
    del doc[field]
    refused(empty, sign_json(doc, AUTH["north"]), "roster.invalid")


def test_enrollment_extra_field(empty: Roster) -> None:
    doc = {**enroll_doc("alice"), "admin": True}
    refused(empty, sign_json(doc, AUTH["north"]), "roster.invalid")


@pytest.mark.parametrize("signed", [
    None, [], "doc", {}, {"document": {}}, {"sigs": []},
    {"document": enroll_doc("alice"), "sigs": {}},
    {"document": "doc", "sigs": []},
    {"document": enroll_doc("alice"), "sigs": [], "extra": 1},
    {"document": {"type": "certificate"}, "sigs": []},
    {"document": {"type": None}, "sigs": []},
    {"document": {}, "sigs": []},
])
def test_malformed_signed_documents(empty: Roster, signed: Any) -> None:
    refused(empty, signed, "roster.invalid")


# -- Rule 2: agreements -----------------------------------------------------------------------

def test_agreement_applied(roster: Roster) -> None:
    agreement = roster.agreements[CHANNEL]
    assert agreement.version == 1
    assert agreement.parties == {p: AUTH[p].key_id for p in ("north", "south", "mediator")}
    assert agreement.templates == (TemplateRef("incident-report", 1, TEMPLATE_SHA),)
    assert agreement.template_ids() == frozenset({"incident-report"})
    assert (agreement.heartbeat_interval, agreement.heartbeat_grace) == (30, 90)
    assert agreement.auditors == {"observer": AUTH["mediator"].key_id}
    assert agreement.witnesses == {"north-relay": AUTH["north"].key_id}


def test_agreement_signature_order_does_not_matter(empty: Roster) -> None:
    empty.add(agreed(by=("mediator", "north", "south")))
    assert CHANNEL in empty.agreements


def test_agreement_missing_a_signature(empty: Roster) -> None:
    for missing in ("north", "south", "mediator"):
        by = tuple(p for p in ("north", "south", "mediator") if p != missing)
        err = refused(empty, agreed(by=by), "roster.unsigned")
        assert missing in err.message
    refused(empty, agreed(by=()), "roster.unsigned")
    assert empty.agreements == {}


def test_agreement_signed_twice_by_one_party_is_still_unsigned(empty: Roster) -> None:
    refused(empty, agreed(by=("north", "north", "south")), "roster.unsigned")


def test_agreement_naming_a_different_authority_key(empty: Roster) -> None:
    impostor = fixed_key("authority/impostor")
    doc = agreement_doc(authorities={"north": impostor.key_id})
    # Signed by the key it names, or by the real authority: refused either way.
    refused(empty, sign_json(doc, impostor, AUTH["south"], AUTH["mediator"]),
            "roster.bad_signature")
    refused(empty, agreed(doc), "roster.bad_signature")


def test_agreement_naming_another_partys_authority(empty: Roster) -> None:
    doc = agreement_doc(authorities={"north": AUTH["west"].key_id})
    refused(empty, sign_json(doc, AUTH["west"], AUTH["south"], AUTH["mediator"]),
            "roster.bad_signature")


def test_agreement_party_without_a_known_authority(empty: Roster) -> None:
    east = fixed_key("authority/east")
    doc = agreement_doc(parties=("north", "south"))
    doc["parties"].append({"id": "east", "authority": east.key_id})
    refused(empty, sign_json(doc, AUTH["north"], AUTH["south"], east), "roster.unknown_party")


def test_agreement_signed_by_an_outsider(empty: Roster) -> None:
    doc = agreement_doc()
    signed = sign_json(doc, AUTH["north"], AUTH["south"], AUTH["mediator"], AUTH["west"])
    refused(empty, signed, "roster.invalid")


def test_agreement_signature_that_does_not_verify(empty: Roster) -> None:
    signed = agreed()
    signed["sigs"][1] = AUTH["south"].sign(domain=Domain.AGREEMENT, obj=agreement_doc(version=9))
    refused(empty, signed, "roster.bad_signature")


def test_agreement_signed_in_another_domain(empty: Roster) -> None:
    doc = agreement_doc()
    signed = {"document": doc, "sigs": [AUTH["north"].sign(domain=Domain.AGREEMENT, obj=doc),
                                        AUTH["south"].sign(domain=Domain.ENROLLMENT, obj=doc),
                                        AUTH["mediator"].sign(domain=Domain.AGREEMENT, obj=doc)]}
    refused(empty, signed, "roster.bad_signature")


def test_agreement_tampered_after_signing(empty: Roster) -> None:
    signed = agreed()
    signed["document"]["auditors"] = []
    refused(empty, signed, "roster.bad_signature")


@pytest.mark.parametrize("key", [[], {}])
def test_agreement_signature_with_unhashable_key(empty: Roster, key: Any) -> None:
    signed = agreed()
    signed["sigs"][0] = {**signed["sigs"][0], "key": key}
    refused(empty, signed, "roster.invalid")


@pytest.mark.parametrize("sig", [None, "sig", {}, {"alg": "ed25519", "key": 5, "sig": "AA=="}])
def test_agreement_malformed_signature(empty: Roster, sig: Any) -> None:
    signed = agreed()
    signed["sigs"][0] = sig
    refused(empty, signed, "roster.invalid")


def test_check_does_not_create_a_channel(empty: Roster) -> None:
    empty.add(enrolled("alice"))
    assert empty.check(agreed()) == "agreement"
    assert empty.agreements == {}
    with pytest.raises(ProtocolViolation) as info:
        empty.check_channel(member(empty, "alice"), CHANNEL)
    assert info.value.code == "channel.unknown"
    empty.add(agreed())
    assert empty.check_channel(member(empty, "alice"), CHANNEL).version == 1


def test_newer_version_needs_old_and_new_parties(roster: Roster) -> None:
    # v2 drops mediator and adds west: mediator (old) and west (new) must both sign.
    doc = agreement_doc(version=2, parties=("north", "south", "west"))
    err = refused(roster, agreed(doc, by=("north", "south", "west")), "roster.unsigned")
    assert "mediator" in err.message
    err = refused(roster, agreed(doc, by=("north", "south", "mediator")), "roster.unsigned")
    assert "west" in err.message
    assert roster.agreements[CHANNEL].version == 1

    roster.add(agreed(doc, by=("north", "south", "mediator", "west")))
    assert roster.agreements[CHANNEL].version == 2
    assert roster.channels_of(member(roster, "wendy")) == [CHANNEL]
    # The observer (mediator's auditor) keeps access: v2 still names it among the auditors.
    assert roster.channels_of(member(roster, "observer")) == [CHANNEL]
    roster.add(agreed(agreement_doc(version=3, parties=("north", "south", "west"), auditors=[]),
                      by=("north", "south", "west")))
    assert roster.channels_of(member(roster, "observer")) == []


def test_newer_version_replaces(roster: Roster) -> None:
    roster.add(agreed(agreement_doc(version=5, heartbeat={"interval": 10, "grace": 20})))
    assert roster.agreements[CHANNEL].heartbeat_interval == 10
    assert roster.agreements[CHANNEL].version == 5


def test_same_version_refused(roster: Roster) -> None:
    refused(roster, agreed(agreement_doc(version=1, auditors=[])), "roster.conflict")
    assert roster.agreements[CHANNEL].auditors == {"observer": AUTH["mediator"].key_id}


def test_downgrade_after_upgrade_refused(roster: Roster) -> None:
    roster.add(agreed(agreement_doc(version=3)))
    refused(roster, agreed(agreement_doc(version=2)), "roster.conflict")
    assert roster.agreements[CHANNEL].version == 3


def test_newer_version_naming_a_different_authority_key(roster: Roster) -> None:
    impostor = fixed_key("authority/impostor")
    doc = agreement_doc(version=2, authorities={"north": impostor.key_id})
    # Signed by the real north, south and mediator authorities.
    refused(roster, agreed(doc), "roster.bad_signature")


def test_first_version_naming_a_different_authority_key(empty: Roster) -> None:
    # The same document as in the xfail above, as a first version: refused, as it should be.
    impostor = fixed_key("authority/impostor")
    refused(empty, agreed(agreement_doc(version=2, authorities={"north": impostor.key_id})),
            "roster.bad_signature")


def test_agreements_are_per_channel(roster: Roster) -> None:
    other = agreement_doc(channel="north-west", parties=("north", "west"))
    roster.add(agreed(other))
    assert roster.channels_of(member(roster, "alice")) == ["north-south", "north-west"]
    assert roster.channels_of(member(roster, "wendy")) == ["north-west"]
    assert roster.channels_of(member(roster, "bob")) == ["north-south"]


AGREEMENT_BAD = [
    ("type", "contract"),
    ("channel", "North South"),
    ("channel", None),
    ("version", 0),
    ("version", -1),
    ("version", True),
    ("version", "2"),
    ("parties", []),
    ("parties", [{"id": "north", "authority": AUTH["north"].key_id}]),
    ("parties", [{"id": "north", "authority": AUTH["north"].key_id},
                 {"id": "north", "authority": AUTH["north"].key_id}]),
    ("parties", [{"id": "north"}, {"id": "south"}]),
    ("parties", [{"id": "North", "authority": "k"}, {"id": "south", "authority": "k"}]),
    ("parties", [{"id": "north", "authority": ""}, {"id": "south", "authority": "k"}]),
    ("parties", [{"id": "north", "authority": 1}, {"id": "south", "authority": "k"}]),
    ("parties", "north,south"),
    ("templates", []),
    ("templates", [{"id": "t", "version": 1}]),
    ("templates", [{"id": "t", "version": "1", "sha256": TEMPLATE_SHA}]),
    ("templates", [{"id": "t", "version": True, "sha256": TEMPLATE_SHA}]),
    ("templates", [{"id": "t", "version": 1, "sha256": TEMPLATE_SHA.upper()}]),
    ("templates", [{"id": "t", "version": 1, "sha256": TEMPLATE_SHA[:-1]}]),
    ("templates", [{"id": "T", "version": 1, "sha256": TEMPLATE_SHA}]),
    ("heartbeat", {"interval": 0, "grace": 90}),
    ("heartbeat", {"interval": 30, "grace": -1}),
    ("heartbeat", {"interval": 30}),
    ("heartbeat", {"interval": True, "grace": 90}),
    ("heartbeat", {"interval": "30", "grace": 90}),
    ("heartbeat", {"interval": 30, "grace": 90, "jitter": 1}),
    ("heartbeat", 30),
    ("auditors", "observer"),
    ("auditors", [1]),
    ("auditors", ["observer"]),  # the old form: a bare name, with no authority
    ("auditors", [{"id": "observer"}]),
    ("auditors", [{"id": "Observer", "authority": "k"}]),
    ("auditors", [{"id": "observer", "authority": ""}]),
    ("auditors", [{"id": "observer", "authority": "k"}, {"id": "observer", "authority": "j"}]),
    ("auditors", [{"id": f"a{n}", "authority": "k"} for n in range(17)]),
    ("witnesses", []),
    ("witnesses", ["north-relay"]),
    ("witnesses", {"north-relay": "k"}),
    ("witnesses", [{"id": "north-relay", "authority": None}]),
    ("witnesses", [{"id": "north-relay", "authority": "k", "party": "north"}]),
    ("witnesses", [{"id": "w", "authority": "k"}, {"id": "w", "authority": "k"}]),
    ("witnesses", [{"id": f"w{n}", "authority": "k"} for n in range(17)]),
    ("effective", "2026-01-01"),
    ("effective", None),
]


@pytest.mark.parametrize(("field", "value"), AGREEMENT_BAD)
def test_malformed_agreement(empty: Roster, field: str, value: Any) -> None:
    doc = agreement_doc()
    doc[field] = value
    with pytest.raises(ProtocolViolation) as info:
        Agreement.from_json(doc)
    assert info.value.code == "roster.invalid"
    refused(empty, sign_as(Domain.AGREEMENT, doc, "north", "south", "mediator"), "roster.invalid")


@pytest.mark.parametrize("change", ["missing", "no-witnesses", "extra"])
def test_agreement_fields_are_exact(change: str) -> None:
    doc = agreement_doc()
    if change == "missing":
        del doc["auditors"]
    elif change == "no-witnesses":
        del doc["witnesses"]
    else:
        doc["sigs"] = []
    with pytest.raises(ProtocolViolation) as info:
        Agreement.from_json(doc)
    assert info.value.code == "roster.invalid"


@pytest.mark.parametrize("doc", [None, [], "agreement", {"type": "agreement"}])
def test_agreement_not_an_object(doc: Any) -> None:
    with pytest.raises(ProtocolViolation):
        Agreement.from_json(doc)


# -- Rule 3: channels and sending -------------------------------------------------------------

@pytest.mark.parametrize("name", ["alice", "bob", "north-relay", "observer"])
def test_parties_members_may_read(roster: Roster, name: str) -> None:
    assert roster.check_channel(member(roster, name), CHANNEL).channel == CHANNEL
    assert roster.channels_of(member(roster, name)) == [CHANNEL]


def test_bare_auditor_names_are_refused_with_the_new_form(empty: Roster) -> None:
    doc = agreement_doc(auditors=["observer"])
    err = refused(empty, agreed(doc), "roster.invalid")
    assert "bare name" in err.message and '{"id": NAME, "authority": KEY_ID}' in err.message
    del doc["witnesses"]
    err = refused(empty, agreed(doc), "roster.invalid")
    assert "agreement.witnesses is required" in err.message


def test_auditor_name_squatted_by_another_authority(empty: Roster) -> None:
    """Defect 6: west (pinned here, party to no channel) enrolls the auditor name the agreement
    gives mediator first; it reads nothing, and mediator's auditor still enrolls and reads."""
    empty.add(agreed(agreement_doc(parties=("north", "south"))))  # observer: mediator's auditor
    squatter_key = fixed_key("member/west-observer")
    empty.add(enrolled("observer", party="west", role=Role.AUDITOR, key=squatter_key))
    squatter = empty.member_for_key(squatter_key.key_id, at=NOW)
    assert empty.channels_of(squatter) == []
    with pytest.raises(ProtocolViolation) as info:
        empty.check_channel(squatter, CHANNEL)
    assert info.value.code == "channel.not_member"
    empty.add(enrolled("observer"))  # by mediator, the authority the agreement names
    assert empty.channels_of(member(empty, "observer")) == [CHANNEL]
    # The name counts only for an auditor: a liaison key mediator enrolls as "observer" reads nothing.
    liaison_key = fixed_key("member/observer-as-liaison")
    empty.add(enrolled("observer", role=Role.LIAISON, key=liaison_key))
    assert empty.channels_of(empty.member_for_key(liaison_key.key_id, at=NOW)) == []


def test_member_of_a_party_not_in_the_agreement(roster: Roster) -> None:
    wendy = member(roster, "wendy")
    with pytest.raises(ProtocolViolation) as info:
        roster.check_channel(wendy, CHANNEL)
    assert info.value.code == "channel.not_member"
    with pytest.raises(ProtocolViolation) as info:
        roster.check_send(wendy, CHANNEL, Kind.MESSAGE, at=NOW)
    assert info.value.code == "channel.not_member"
    assert roster.channels_of(wendy) == []


def test_unknown_channel(roster: Roster) -> None:
    with pytest.raises(ProtocolViolation) as info:
        roster.check_channel(member(roster, "alice"), "nowhere")
    assert info.value.code == "channel.unknown"


def test_forged_member_is_not_in_the_channel(roster: Roster) -> None:
    # A Member object for a key no authority enrolled grants nothing.
    forged = Member("north", "mallory", Role.LIAISON, fixed_key("member/mallory").key_id)
    with pytest.raises(ProtocolViolation) as info:
        roster.check_channel(forged, CHANNEL)
    assert info.value.code == "channel.not_member"


SEND_TABLE = [
    ("alice", Kind.MESSAGE, True), ("alice", Kind.ACK, True),
    ("alice", Kind.HEARTBEAT, False), ("alice", Kind.ECHO, False),
    ("bob", Kind.MESSAGE, True), ("bob", Kind.ACK, True),
    ("north-relay", Kind.HEARTBEAT, True), ("north-relay", Kind.ECHO, True),
    ("north-relay", Kind.ACK, True), ("north-relay", Kind.MESSAGE, False),
    ("observer", Kind.MESSAGE, False), ("observer", Kind.ACK, False),
    ("observer", Kind.HEARTBEAT, False), ("observer", Kind.ECHO, False),
    ("alice", Kind.VIOLATION, True), ("north-relay", Kind.VIOLATION, True),
    ("observer", Kind.VIOLATION, False),
]


@pytest.mark.parametrize(("name", "kind", "allowed"), SEND_TABLE)
def test_who_may_send_what(roster: Roster, name: str, kind: Kind, allowed: bool) -> None:
    who = member(roster, name)
    if allowed:
        assert roster.check_send(who, CHANNEL, kind, at=NOW).channel == CHANNEL
    else:
        with pytest.raises(ProtocolViolation) as info:
            roster.check_send(who, CHANNEL, kind, at=NOW)
        assert info.value.code == "norm.sender_not_allowed"


def test_send_table_matches_roles() -> None:
    assert SENDABLE[Role.AUDITOR] == frozenset()
    covered = {(PEOPLE[n][1], k) for n, k, _ in SEND_TABLE}
    assert all((role, kind) in covered for role in Role for kind in Kind)


def test_authority_not_pinned_here_grants_nothing(roster: Roster) -> None:
    # A roster that pins a different north authority: alice's enrollment does not count.
    other = Roster(authorities={**AUTHORITIES, "north": fixed_key("authority/other").public_key})
    refused(other, enrolled("alice"), "roster.bad_signature")
    refused(other, agreed(), "roster.bad_signature")


# -- every input yields a roster or a typed error ---------------------------------------------

any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=12)
    | st.sampled_from(["north", "south", "alice", "liaison", "agreement", "enrollment",
                       format_time(NOW), AUTH["north"].key_id]),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)


_DOMAIN_OF = {"enrollment": Domain.ENROLLMENT, "revocation": Domain.REVOCATION,
              "agreement": Domain.AGREEMENT}
_SIGNERS = {"enrollment": ("north",), "revocation": ("north",),
            "agreement": ("north", "south", "mediator")}


def _template(kind: str) -> dict[str, Any]:
    if kind == "enrollment":
        return enroll_doc("alice", key=fixed_key("member/alice-2"))
    if kind == "revocation":
        return to_json(revocation(party="north", member="alice", key_id=KEYS["alice"].key_id,
                                  revoked_at=NOW))
    return agreement_doc(version=2)


@FAST
@given(st.sampled_from(sorted(_DOMAIN_OF)), st.data())
def test_mutated_documents_yield_result_or_protocol_violation(kind: str, data: Any) -> None:
    """Any field replaced by any JSON value, validly signed: applied, or ProtocolViolation."""
    roster = Roster(authorities=dict(AUTHORITIES))
    roster.add(enrolled("alice"))
    roster.add(agreed())
    doc = _template(kind)
    field = data.draw(st.sampled_from([*sorted(doc), "extra"]), label="field")
    doc[field] = data.draw(any_json, label="value")
    try:
        check_value(doc)
    except WireError:
        sigs: list[Any] = []  # cannot be signed at all
    else:
        sigs = [AUTH[p].sign(domain=_DOMAIN_OF[kind], obj=doc) for p in _SIGNERS[kind]]
    signed = {"document": doc, "sigs": sigs}
    try:
        assert roster.check(signed) == doc["type"]
    except ProtocolViolation:
        return
    assert roster.add(signed) == doc["type"]


# -- decoding keeps the signed bytes ----------------------------------------------------------

names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,12}", fullmatch=True)
texts = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC)).map(format_time)
named = st.lists(st.fixed_dictionaries({"id": names, "authority": texts}), max_size=3)
documents = st.one_of(
    st.builds(lambda party, member, role, key, start, end: to_json(enrollment(
        party=party, member=member, role=role, key=fixed_key(key).public_key,
        not_before=T0, not_after=NOT_AFTER)) | {"not_before": start, "not_after": end},
        names, names, st.sampled_from(Role), texts, moments, moments),
    st.fixed_dictionaries({"type": st.just("revocation"), "party": names, "member": texts,
                           "key": texts, "revoked_at": moments}),
    st.fixed_dictionaries({
        "type": st.just("agreement"), "channel": names, "version": st.integers(1, 2**53 - 1),
        "parties": named, "auditors": named, "witnesses": named, "effective": moments,
        "templates": st.lists(st.fixed_dictionaries({
            "id": names, "version": st.integers(-(2**53 - 1), 2**53 - 1),
            "sha256": st.from_regex(r"[0-9a-f]{64}", fullmatch=True)}), max_size=2),
        "heartbeat": st.fixed_dictionaries({"interval": st.integers(1, 2**53 - 1),
                                            "grace": st.integers(1, 2**53 - 1)})},
        optional={"catalogue": st.lists(st.fixed_dictionaries({
            "number": st.integers(1, 9999), "code": st.from_regex(r"[A-Z][A-Z0-9-]{1,8}", fullmatch=True),
            "text": st.dictionaries(st.from_regex(r"[a-z]{2}(-[A-Z]{2})?", fullmatch=True), texts,
                                    min_size=1, max_size=2)}), max_size=2)}),
)


@FAST
@given(documents, st.lists(st.sampled_from(sorted(AUTH)), max_size=3))
def test_decoding_then_encoding_gives_the_signed_bytes(doc: dict[str, Any], signers: list[str]) -> None:
    """A document's signatures cover the RFC 8785 bytes of what was received: the typed record
    it decodes to encodes back to exactly those bytes (and signing the record signs them)."""
    signed = sign_json(doc, *(AUTH[p] for p in signers))
    decoded = SignedDocument.from_json(signed)
    assert document_bytes(decoded.document) == rfc8785.dumps(doc)
    assert rfc8785.dumps(decoded.to_json()) == rfc8785.dumps(signed)
    assert sign_document(decoded.document, *(AUTH[p] for p in signers)) == decoded


def test_sign_document_signs_what_the_roster_verifies(empty: Roster) -> None:
    doc = enrollment(party="north", member="alice", role=Role.LIAISON, key=KEYS["alice"].public_key,
                     not_before=T0, not_after=NOT_AFTER)
    assert empty.add(sign_document(doc, AUTH["north"])) == "enrollment"
    assert empty.add(sign_document(doc, AUTH["north"]).to_json()) == "enrollment"
    assert member(empty, "alice").role is Role.LIAISON
