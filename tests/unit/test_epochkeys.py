"""hotline.epochkeys: epochs, signed epoch-key documents, the check a sender makes before
sealing (a forged key is refused), private halves at rest.

docs/ARCHITECTURE.md "Sealed fields".
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from hotline.epochkeys import (
    DEFAULT_EPOCH,
    EpochKey,
    EpochPrivateKey,
    epoch_of,
    epoch_start,
    publishable,
    verify_epoch_key,
)
from hotline.errorcodes import Code
from hotline.errors import CryptoError, SealError
from hotline.hybrid import HybridSigningKey
from hotline.keys import Domain, SigningKey

BOB = SigningKey.from_seed(bytes(range(32)))
HOST = SigningKey.from_seed(bytes(range(1, 33)))
DAY = DEFAULT_EPOCH
EPOCH = epoch_of(datetime(2026, 12, 6, 12, tzinfo=UTC), DAY)


@pytest.fixture(scope="module")
def private() -> EpochPrivateKey:
    return EpochPrivateKey.from_seeds(bytes(range(64)), bytes(range(100, 132)))


def test_epochs_cut_time_into_fixed_windows() -> None:
    assert DAY == timedelta(hours=24)
    midnight = datetime(2026, 12, 6, tzinfo=UTC)
    assert epoch_of(midnight, DAY) == EPOCH == (date(2026, 12, 6) - date(1970, 1, 1)).days
    assert epoch_of(midnight - timedelta(microseconds=1), DAY) == EPOCH - 1
    assert epoch_start(EPOCH, DAY) == midnight
    assert epoch_of(midnight, timedelta(hours=1)) == EPOCH * 24


def test_a_document_is_strict_and_names_its_window(private: EpochPrivateKey) -> None:
    doc = private.document(party="south", member="bob", epoch=EPOCH, length=DAY)
    assert doc.to_json()["type"] == "epoch-key" and doc.kem == "MLKEM768-X25519"
    assert EpochKey.from_json(doc.to_json()) == doc
    assert doc.not_before == datetime(2026, 12, 6, tzinfo=UTC)
    assert doc.not_after == datetime(2026, 12, 7, tzinfo=UTC)
    assert len(base64.b64decode(doc.pub)) == 1184 + 32
    assert EpochPrivateKey.from_seeds(bytes(range(64)), bytes(range(100, 132))).document(
        party="south", member="bob", epoch=EPOCH, length=DAY).key_id == doc.key_id


@pytest.mark.parametrize("mutate", [
    lambda d: {**d, "extra": 1},
    lambda d: {**d, "kem": "X25519"},
    lambda d: {**d, "type": "enrollment"},
    lambda d: {**d, "epoch": -1},
    lambda d: {**d, "length": 1},
    lambda d: {**d, "member": "Bob Smith"},
    lambda d: {**d, "pub": base64.b64encode(b"x" * 1215).decode()},
    lambda d: {**d, "pub": "not base64!"},
    lambda d: {k: v for k, v in d.items() if k != "party"},
])
def test_malformed_documents_are_refused_typed(private: EpochPrivateKey, mutate: Any) -> None:
    doc = private.document(party="south", member="bob", epoch=EPOCH, length=DAY).to_json()
    with pytest.raises(SealError) as err:
        EpochKey.from_json(mutate(doc))
    assert err.value.code == Code.SEAL_INVALID


def test_the_members_own_signed_key_is_accepted(private: EpochPrivateKey) -> None:
    doc = private.document(party="south", member="bob", epoch=EPOCH, length=DAY)
    verify_epoch_key(doc, doc.sign(BOB), enrolled=BOB.public_key, party="south", member="bob",
                     epoch=EPOCH, length=DAY)
    hybrid = HybridSigningKey.generate()  # hybrid enrolled keys sign epoch keys the same way
    verify_epoch_key(doc, doc.sign(hybrid), enrolled=hybrid.public_key, party="south",
                     member="bob", epoch=EPOCH, length=DAY)


def test_a_key_the_host_made_and_signed_is_refused() -> None:
    """Substitution: the host makes its own key pair for bob and signs it with its own key (or
    re-uses bob's old signature): the sender refuses it before sealing anything."""
    forged = EpochPrivateKey.generate().document(party="south", member="bob", epoch=EPOCH, length=DAY)
    for sig in (forged.sign(HOST), HOST.sign(domain=Domain.EPOCH_KEY, obj=forged.to_json())):
        with pytest.raises(SealError) as err:
            verify_epoch_key(forged, sig, enrolled=BOB.public_key, party="south", member="bob",
                             epoch=EPOCH, length=DAY)
        assert err.value.code == Code.SEAL_BAD_EPOCH_KEY
        assert "not signed by the member's enrolled key" in err.value.message


def test_bobs_signature_in_another_domain_is_refused(private: EpochPrivateKey) -> None:
    doc = private.document(party="south", member="bob", epoch=EPOCH, length=DAY)
    sig = BOB.sign(domain=Domain.ENVELOPE, obj=doc.to_json())
    with pytest.raises(SealError, match="enrolled key"):
        verify_epoch_key(doc, sig, enrolled=BOB.public_key, party="south", member="bob",
                         epoch=EPOCH, length=DAY)


@pytest.mark.parametrize(("party", "member", "epoch", "length", "why"), [
    ("south", "carol", EPOCH, DAY, "it is bob (south)'s"),
    ("north", "bob", EPOCH, DAY, "it is bob (south)'s"),
    ("south", "bob", EPOCH + 1, DAY, f"it is for epoch {EPOCH} of 86400 s"),
    ("south", "bob", EPOCH, timedelta(hours=1), f"it is for epoch {EPOCH} of 86400 s"),
])
def test_bobs_key_offered_for_another_member_or_epoch_is_refused(
        private: EpochPrivateKey, party: str, member: str, epoch: int, length: timedelta,
        why: str) -> None:
    doc = private.document(party="south", member="bob", epoch=EPOCH, length=DAY)
    with pytest.raises(SealError) as err:
        verify_epoch_key(doc, doc.sign(BOB), enrolled=BOB.public_key, party=party, member=member,
                         epoch=epoch, length=length)
    assert err.value.code == Code.SEAL_BAD_EPOCH_KEY and why in err.value.message


def test_a_key_swapped_after_signing_is_refused(private: EpochPrivateKey) -> None:
    doc = private.document(party="south", member="bob", epoch=EPOCH, length=DAY)
    sig = doc.sign(BOB)
    swapped = EpochKey.from_json({**doc.to_json(), "pub": EpochPrivateKey.generate().document(
        party="south", member="bob", epoch=EPOCH, length=DAY).pub})
    with pytest.raises(SealError):
        verify_epoch_key(swapped, sig, enrolled=BOB.public_key, party="south", member="bob",
                         epoch=EPOCH, length=DAY)


@pytest.mark.parametrize("passphrase", [None, b"correct horse"])
def test_private_halves_round_trip_through_pem(private: EpochPrivateKey, passphrase: bytes | None) -> None:
    pem = private.to_pem(passphrase)
    assert pem.count(b"-----BEGIN") == 2
    again = EpochPrivateKey.from_pem(pem, passphrase)
    assert again.public_bytes() == private.public_bytes()


def test_unreadable_key_files_are_a_typed_error(private: EpochPrivateKey) -> None:
    pem = private.to_pem(b"pw")
    for data, passphrase in ((pem, b"wrong"), (pem.split(b"-----END")[0], b"pw"),
                             (private.to_pem(None).split(b"-----END PRIVATE KEY-----\n")[1]
                              + private.to_pem(None), None),
                             (b"", None)):
        with pytest.raises(CryptoError) as err:
            EpochPrivateKey.from_pem(data, passphrase)
        assert err.value.code == Code.CRYPTO_BAD_KEY_FILE
    with pytest.raises(CryptoError):
        EpochPrivateKey.from_seeds(b"short", bytes(32))


def test_the_host_logs_a_key_only_near_its_epoch(private: EpochPrivateKey) -> None:
    """What bounds one member's keys in the log: an epoch not over, at most two ahead."""
    def doc(epoch: int) -> EpochKey:
        return private.document(party="south", member="bob", epoch=epoch, length=DAY)
    now = epoch_start(EPOCH, DAY) + timedelta(hours=12)
    assert [publishable(doc(e), now) for e in range(EPOCH - 2, EPOCH + 4)] == [
        False, False, True, True, True, False]
    assert not publishable(doc(EPOCH), epoch_start(EPOCH + 1, DAY))  # over the moment it ends
