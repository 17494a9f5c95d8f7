"""Epoch keys in the roster (issue 16, acceptance 2 at its core): a member publishes its key for
an epoch, signed by the key its party enrolled; a key the host made, or signed with anything else,
never enters the roster, so a sender never seals to it (``sealing.readers_of``).

Same fixed keys as tests/unit/test_roster.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from hotline.epochkeys import DEFAULT_EPOCH, EpochKey, EpochPrivateKey, epoch_of
from hotline.errors import ProtocolViolation, SealError
from hotline.hybrid import HybridSigningKey
from hotline.keys import Domain, SigningKey
from hotline.norms.agreement import Agreement
from hotline.roster import Role, Roster, readers_of
from hotline.sealing import SealContext, make_disclosures, seal
from tests.unit.test_roster import AUTHORITIES, KEYS, NOW, agreed, agreement_doc, enrolled, refused, sign_json

EPOCH = epoch_of(NOW, DEFAULT_EPOCH)
DAY = int(DEFAULT_EPOCH.total_seconds())
HOST = SigningKey.from_seed(bytes(range(5, 37)))


def key_of(member: str, party: str, epoch: int = EPOCH) -> EpochKey:
    return EpochPrivateKey.generate().document(party=party, member=member, epoch=epoch,
                                               length=DEFAULT_EPOCH)


@pytest.fixture
def roster() -> Roster:
    r = Roster(authorities=AUTHORITIES)
    for name in ("alice", "bob", "north-relay", "observer"):
        r.add(enrolled(name))
    return r


def test_a_member_publishes_its_own_key_and_senders_seal_to_it(roster: Roster) -> None:
    bob = key_of("bob", "south")
    assert roster.add(sign_json(bob, KEYS["bob"])) == "epoch-key"
    roster.add(sign_json(bob, KEYS["bob"]))  # the same key again changes nothing
    assert roster.epoch_keys[(DAY, EPOCH)][("south", "bob")] == (bob, KEYS["bob"].key_id)
    readers = readers_of(roster, ["south"], at=NOW)
    assert [(r.party, r.member, r.key) for r in readers] == [("south", "bob", bob)]
    assert readers_of(roster, ["south"], at=NOW + DEFAULT_EPOCH) == []
    assert readers_of(roster, ["north"], at=NOW) == []


def test_a_key_the_host_made_never_enters_the_roster(roster: Roster) -> None:
    """Substitution: whatever the host signs a key for bob with, a roster refuses it, so a
    sender finds no reader and seals nothing (``seal.no_reader``)."""
    forged = key_of("bob", "south")
    refused(roster, sign_json(forged, HOST), "roster.signer_not_valid")
    refused(roster, sign_json(forged, KEYS["alice"]), "roster.signer_not_valid")  # another member
    as_bob = {"document": forged.to_json(), "sigs": [{**HOST.sign(domain=Domain.EPOCH_KEY,
                                                                  obj=forged.to_json()),
                                                      "key": KEYS["bob"].key_id}]}
    refused(roster, as_bob, "roster.bad_signature")  # bob's key id, the host's signature
    in_another_domain = {"document": forged.to_json(),
                         "sigs": [KEYS["bob"].sign(domain=Domain.ENVELOPE, obj=forged.to_json())]}
    refused(roster, in_another_domain, "roster.bad_signature")
    assert roster.epoch_keys == {}
    context = SealContext(channel="north-south", envelope="A" * 22)
    with pytest.raises(SealError) as err:
        seal(make_disclosures({"note": "x"}, {"note": bytes(16)}),
             {"note": readers_of(roster, ["south"], at=NOW)}, context)
    assert err.value.code == "seal.no_reader"


def test_a_member_signs_only_its_own_key_and_one_per_epoch(roster: Roster) -> None:
    refused(roster, sign_json(key_of("alice", "north"), KEYS["bob"]), "roster.signer_not_valid")
    roster.add(sign_json(key_of("bob", "south"), KEYS["bob"]))
    error = refused(roster, sign_json(key_of("bob", "south"), KEYS["bob"]), "roster.conflict")
    assert "one key per member and epoch" in error.message


def test_a_revoked_key_publishes_nothing_after_and_its_keys_stop_being_read(roster: Roster) -> None:
    bob = key_of("bob", "south")
    roster.add(sign_json(bob, KEYS["bob"]))
    revoked_at = NOW + timedelta(hours=1)
    roster.enrollments[KEYS["bob"].key_id].revoked_at = revoked_at
    assert readers_of(roster, ["south"], at=NOW)  # before the revocation
    assert readers_of(roster, ["south"], at=revoked_at) == []
    later = key_of("bob", "south", EPOCH + 2)
    refused(roster, sign_json(later, KEYS["bob"]), "roster.signer_not_valid")


def test_a_new_laptop_replaces_the_revoked_keys_epoch_key_and_only_it(roster: Roster) -> None:
    """bob's laptop is lost: south revokes its key, enrolls his new one, and the new laptop
    publishes this epoch's key at once, in place of the one the lost laptop holds. Without the
    revocation, a second key of bob's is refused as before."""
    lost = key_of("bob", "south")
    roster.add(sign_json(lost, KEYS["bob"]))
    new_signer = SigningKey.from_seed(bytes(range(40, 72)))
    roster.add(enrolled("bob", party="south", role=Role.LIAISON, key=new_signer))
    fresh = key_of("bob", "south")
    refused(roster, sign_json(fresh, new_signer), "roster.conflict")  # both of bob's keys valid
    roster.enrollments[KEYS["bob"].key_id].revoked_at = NOW
    roster.add(sign_json(fresh, new_signer))
    assert [r.key for r in readers_of(roster, ["south"], at=NOW)] == [fresh]
    assert roster.published_epochs("south", "bob", new_signer.key_id) == {DAY: {EPOCH}}
    assert roster.published_epochs("south", "bob", KEYS["bob"].key_id) == {}  # given way
    refused(roster, sign_json(key_of("bob", "south"), new_signer), "roster.conflict")  # one only


def test_auditors_are_not_readers_and_hybrid_members_publish_alike(roster: Roster) -> None:
    roster.add(sign_json(key_of("observer", "mediator"), KEYS["observer"]))
    assert readers_of(roster, ["mediator"], at=NOW) == []
    hybrid = HybridSigningKey.generate()
    roster.add(enrolled("bea", party="south", role=Role.LIAISON, key=hybrid))  # type: ignore[arg-type]
    roster.add(sign_json(key_of("bea", "south"), hybrid))  # type: ignore[arg-type]
    assert [r.member for r in readers_of(roster, ["south"], at=NOW)] == ["bea"]


def test_a_key_is_for_epochs_of_a_length_its_partys_agreements_set(roster: Roster) -> None:
    """24 h always; another length only once an agreement of the member's party sets it, and
    senders on that channel seal to keys of that length (one member cannot fill the log with
    keys of every length it can name)."""
    half_day = timedelta(hours=12)

    def key(length: timedelta) -> EpochKey:
        return EpochPrivateKey.generate().document(party="south", member="bob",
                                                   epoch=epoch_of(NOW, length), length=length)

    early = key(half_day)
    assert refused(roster, sign_json(early, KEYS["bob"]), "roster.epoch_length")
    roster.add(agreed(agreement_doc(epoch_hours=12)))
    assert roster.epoch_lengths("south") == {DEFAULT_EPOCH, half_day}
    assert roster.epoch_lengths("west") == {DEFAULT_EPOCH}  # not on that channel
    roster.add(sign_json(early, KEYS["bob"]))
    daily = key(DEFAULT_EPOCH)
    roster.add(sign_json(daily, KEYS["bob"]))  # one key per member, epoch and length
    assert [r.key for r in readers_of(roster, ["south"], at=NOW, length=half_day)] == [early]
    assert [r.key for r in readers_of(roster, ["south"], at=NOW)] == [daily]
    assert Agreement.from_json(agreement_doc(epoch_hours=12)).epoch_length == half_day
    assert Agreement.from_json(agreement_doc()).epoch_length == DEFAULT_EPOCH
    for hours in (0, 745, "12"):
        with pytest.raises(ProtocolViolation):
            Agreement.from_json(agreement_doc(epoch_hours=hours))
