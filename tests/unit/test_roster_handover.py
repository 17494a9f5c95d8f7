"""Authority rotation in hotline.roster: a handover signed by the old and the new key moves a
party's authority; what the old key signed before stays valid, what it signs after is refused
(``roster.retired_authority``), and the compliance report lists the keys with their validity."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hotline.audit.keys import channel_keys, render_keys
from hotline.errorcodes import Code
from hotline.errors import AuthError
from hotline.keys import Domain
from hotline.roster import Roster, handover, revocation, sign_document
from hotline.typed import to_json
from tests.unit.test_roster import (
    AUTH,
    CHANNEL,
    KEYS,
    NOW,
    T0,
    agreement_doc,
    empty,
    enrolled,
    fixed_key,
    member,
    refused,
    roster,
    sign_json,
)

__all__ = ["empty", "roster"]  # the shared fixtures

NEW_NORTH = fixed_key("authority/north/2")
HANDED = T0 + timedelta(days=10)


def handed_over(*, old: str = "north", by: tuple[object, ...] | None = None) -> dict[str, object]:
    doc = handover(party="north", old=AUTH[old].public_key, new=NEW_NORTH.public_key, at=HANDED)
    keys = by if by is not None else (AUTH["north"], NEW_NORTH)
    return sign_json(doc, *keys)  # type: ignore[arg-type]


@pytest.fixture
def rotated(roster: Roster) -> Roster:
    assert roster.add(handed_over()) == "handover"
    return roster


def test_a_handover_moves_the_authority_and_keeps_the_pinned_key(rotated: Roster) -> None:
    assert rotated.current["north"].key_id == NEW_NORTH.key_id
    assert rotated.authorities["north"].key_id == AUTH["north"].key_id  # the pin is unchanged
    assert rotated.authority_keys("north") == {AUTH["north"].key_id, NEW_NORTH.key_id}
    assert rotated.authority_key_id("north") == NEW_NORTH.key_id
    retired = rotated.retired[AUTH["north"].key_id]
    assert (retired.party, retired.at, retired.successor) == ("north", HANDED, NEW_NORTH.key_id)


def test_what_the_old_key_enrolled_before_stays_valid_and_in_the_channel(rotated: Roster) -> None:
    alice = member(rotated, "alice")
    assert alice.party == "north"
    assert rotated.channels_of(alice) == [CHANNEL]  # the agreement names the old key: it holds
    assert rotated.enrollments[KEYS["alice"].key_id].authority == AUTH["north"].key_id


def test_the_new_key_enrolls_and_revokes(rotated: Roster) -> None:
    newcomer = fixed_key("member/nadia")
    rotated.add(sign_json(enrolled("nadia", key=newcomer)["document"], NEW_NORTH))
    assert rotated.member_for_key(newcomer.key_id, at=NOW).member == "nadia"
    assert rotated.enrollments[newcomer.key_id].authority == NEW_NORTH.key_id
    # a member the old key enrolled is revoked by the new one
    revoke = revocation(party="north", member="alice", key_id=KEYS["alice"].key_id,
                        revoked_at=NOW, reason="laptop lost")
    rotated.add(sign_document(revoke, NEW_NORTH))
    with pytest.raises(AuthError) as info:
        member(rotated, "alice", NOW + timedelta(seconds=1))
    assert info.value.code == Code.AUTH_REVOKED
    assert rotated.enrollments[KEYS["alice"].key_id].reason == "laptop lost"


def test_the_old_key_signs_nothing_after_the_handover_whatever_time_it_claims(rotated: Roster) -> None:
    late = enrolled("mallory", key=fixed_key("member/mallory"), not_before=T0)  # backdated
    error = refused(rotated, late, Code.ROSTER_RETIRED_AUTHORITY)
    assert AUTH["north"].key_id in error.message and NEW_NORTH.key_id in error.message
    refused(rotated, sign_json(revocation(party="north", member="alice",
                                          key_id=KEYS["alice"].key_id, revoked_at=NOW),
                               AUTH["north"]), Code.ROSTER_RETIRED_AUTHORITY)
    # an agreement naming the new key, but signed by the old one for north
    doc = agreement_doc(version=2, authorities={"north": NEW_NORTH.key_id})
    refused(rotated, sign_json(doc, AUTH["north"], AUTH["south"], AUTH["mediator"]),
            Code.ROSTER_RETIRED_AUTHORITY)
    # a second handover from the retired key
    refused(rotated, handed_over(), Code.ROSTER_RETIRED_AUTHORITY)


def test_the_re_signed_agreement_names_the_new_key(rotated: Roster) -> None:
    stale = agreement_doc(version=2)  # still naming the old key
    refused(rotated, sign_json(stale, NEW_NORTH, AUTH["south"], AUTH["mediator"]),
            Code.ROSTER_BAD_SIGNATURE)
    doc = agreement_doc(version=2, authorities={"north": NEW_NORTH.key_id})
    assert rotated.add(sign_json(doc, NEW_NORTH, AUTH["south"], AUTH["mediator"])) == "agreement"
    assert rotated.channels_of(member(rotated, "alice")) == [CHANNEL]


@pytest.mark.parametrize("signers", ["old only", "new only", "old twice", "another party"])
def test_a_handover_needs_both_keys(roster: Roster, signers: str) -> None:
    by = {"old only": (AUTH["north"],), "new only": (NEW_NORTH,),
          "old twice": (AUTH["north"], AUTH["north"]),
          "another party": (AUTH["south"], NEW_NORTH)}[signers]
    refused(roster, handed_over(by=by), Code.ROSTER_UNSIGNED)
    assert roster.current["north"].key_id == AUTH["north"].key_id


def test_a_handover_signature_in_another_domain_does_not_verify(roster: Roster) -> None:
    doc = to_json(handover(party="north", old=AUTH["north"].public_key,
                           new=NEW_NORTH.public_key, at=HANDED))
    forged = {"document": doc, "sigs": [AUTH["north"].sign(domain=Domain.AGREEMENT, obj=doc),
                                        NEW_NORTH.sign(domain=Domain.HANDOVER, obj=doc)]}
    refused(roster, forged, Code.ROSTER_BAD_SIGNATURE)


def test_a_handover_from_another_key_or_to_a_taken_key_is_refused(roster: Roster) -> None:
    refused(roster, handed_over(old="south", by=(AUTH["south"], NEW_NORTH)),
            Code.ROSTER_BAD_SIGNATURE)  # south's key is not north's authority
    taken = handover(party="north", old=AUTH["north"].public_key,
                     new=KEYS["alice"].public_key, at=HANDED)
    refused(roster, sign_json(taken, AUTH["north"], KEYS["alice"]), Code.ROSTER_CONFLICT)
    to_south = handover(party="north", old=AUTH["north"].public_key,
                        new=AUTH["south"].public_key, at=HANDED)
    refused(roster, sign_json(to_south, AUTH["north"], AUTH["south"]), Code.ROSTER_CONFLICT)


def test_an_authority_key_is_never_enrolled_as_a_member(rotated: Roster) -> None:
    refused(rotated, sign_json(enrolled("alice", key=AUTH["north"])["document"], NEW_NORTH),
            Code.ROSTER_CONFLICT)


def test_the_report_lists_every_key_with_its_validity(rotated: Roster) -> None:
    replacement = fixed_key("member/alice/2")
    rotated.add(sign_document(revocation(party="north", member="alice",
                                         key_id=KEYS["alice"].key_id, revoked_at=NOW,
                                         reason="laptop lost"), NEW_NORTH))
    rotated.add(sign_json(enrolled("alice", key=replacement, not_before=NOW)["document"],
                          NEW_NORTH))
    keys = channel_keys(rotated, CHANNEL)
    north = [(a.key, a.pinned, a.successor) for a in keys.authorities if a.party == "north"]
    assert sorted(north) == sorted([(AUTH["north"].key_id, True, NEW_NORTH.key_id),
                                    (NEW_NORTH.key_id, False, None)])
    alice = [m for m in keys.members if m.member == "alice"]
    assert [(m.key, m.enrolled_by, m.revoked_at, m.reason) for m in alice] == [
        (KEYS["alice"].key_id, AUTH["north"].key_id, "2026-01-31T00:00:00.000Z", "laptop lost"),
        (replacement.key_id, NEW_NORTH.key_id, None, None)]
    assert "wendy" not in {m.member for m in keys.members}  # west is not on the channel
    text = "\n".join(render_keys(keys))
    assert "retired 2026-01-11 00:00" in text and "revoked: laptop lost" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert channel_keys(rotated, "no-such-channel").members == ()
