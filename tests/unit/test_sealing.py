"""hotline.sealing: SD-JWT disclosures and digests, HPKE boxes per reader, and every way a host
or a sender could try to read, move, swap or forge what is sealed.

docs/ARCHITECTURE.md "Sealed fields".
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.canonical import MAX_SAFE_INT, canonical_bytes
from hotline.epochkeys import EpochKey, EpochPrivateKey, Reader
from hotline.errorcodes import Code
from hotline.errors import SealError
from hotline.keys import b64url
from hotline.sealing import (
    Disclosure,
    SealContext,
    Sealed,
    digest_of,
    make_disclosures,
    open_sealed,
    seal,
    verify_disclosure,
)

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=100)
MARKER = "MARKER-7f3a9c-launch-at-0400"
CONTEXT = SealContext(channel="north-south", envelope=b64url(bytes(16)))
DAY = timedelta(hours=24)
PARTIES = {"north": ["alice", "anna"], "south": ["bob", "bea"], "mediator": ["mia", "max"]}


class Member:
    def __init__(self, party: str, name: str, epoch: int = 100) -> None:
        self.party, self.name = party, name
        self.private = EpochPrivateKey.generate()
        self.key: EpochKey = self.private.document(party=party, member=name, epoch=epoch, length=DAY)

    @property
    def reader(self) -> Reader:
        return Reader(self.party, self.name, self.key)

    def open(self, sealed: Sealed, context: SealContext = CONTEXT) -> dict[str, Any]:
        opened = open_sealed(sealed, party=self.party, member=self.name,
                             keys={self.key.key_id: self.private}, context=context)
        return {name: d.value for name, d in opened.items()}


@pytest.fixture(scope="module")
def members() -> dict[str, Member]:
    return {name: Member(party, name) for party, names in PARTIES.items() for name in names}


def salts(*names: str) -> dict[str, bytes]:
    return {name: bytes([i + 1]) * 16 for i, name in enumerate(names)}


def audience_sealed(members: dict[str, Member]) -> Sealed:
    """``assessment`` to every party, ``private_note`` to the mediator only."""
    disclosures = make_disclosures({"assessment": f"north will hold: {MARKER}",
                                    "private_note": {"text": MARKER, "priority": 2}},
                                   salts("assessment", "private_note"))
    everyone = [m.reader for m in members.values()]
    mediator = [m.reader for m in members.values() if m.party == "mediator"]
    return seal(disclosures, {"assessment": everyone, "private_note": mediator}, CONTEXT)


def test_digest_is_sd_jwt_s_rfc_9901_vector() -> None:
    """RFC 9901 (SD-JWT) section 4.2.3's example disclosure and its digest."""
    disclosure = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
    assert digest_of(disclosure) == "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"


def test_a_disclosure_is_the_canonical_salt_name_value_array() -> None:
    d = Disclosure(bytes(16), "family_name", "Möbius")
    raw = base64.urlsafe_b64decode(d.encoded + "==")
    assert raw == canonical_bytes([b64url(bytes(16)), "family_name", "Möbius"])
    assert d.digest == digest_of(d.encoded)
    assert Disclosure.from_encoded(d.encoded) == d


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@FAST
@given(salt=st.binary(min_size=16, max_size=16), value=JSON)
def test_every_json_value_round_trips_through_its_disclosure(salt: bytes, value: Any) -> None:
    d = Disclosure(salt, "field", value)
    assert verify_disclosure(d.encoded, name="field", digest=d.digest) == d


@pytest.mark.parametrize("text", [
    b64url(b'["AAAAAAAAAAAAAAAAAAAAAA", "f", 1]'),  # not RFC 8785 (a space): two forms, one value
    b64url(canonical_bytes(["AAAAAAAAAAAAAAAAAAAAAA", "f"])),
    b64url(canonical_bytes(["AAAA", "f", 1])),  # a short salt
    b64url(canonical_bytes(["AAAAAAAAAAAAAAAAAAAAAA", "Not A Name", 1])),
    b64url(canonical_bytes({"salt": "AAAAAAAAAAAAAAAAAAAAAA"})),
    b64url(b'["AAAAAAAAAAAAAAAAAAAAAA","f",1.5]'),
    b64url(canonical_bytes(["AAAAAAAAAAAAAAAAAAAAAA", "f", 1])) + "=",
    "not base64url!",
    42,
])
def test_malformed_disclosures_are_refused_typed(text: Any) -> None:
    with pytest.raises(SealError) as err:
        Disclosure.from_encoded(text)
    assert err.value.code == Code.SEAL_INVALID


def test_a_forged_disclosure_does_not_match_the_logged_digest() -> None:
    real = Disclosure(bytes(16), "launch_window", "04:00-05:00")
    forged = Disclosure(bytes(16), "launch_window", "06:00-07:00")
    other_field = Disclosure(bytes(16), "target", "04:00-05:00")
    for fake, name in ((forged, "launch_window"), (other_field, "launch_window"),
                       (real, "target")):
        with pytest.raises(SealError) as err:
            verify_disclosure(fake.encoded, name=name, digest=real.digest)
        assert err.value.code == Code.SEAL_DIGEST_MISMATCH


def test_each_reader_opens_exactly_what_its_audience_grants(members: dict[str, Member]) -> None:
    sealed = audience_sealed(members)
    assert [(b.party, b.member) for b in sealed.boxes] == sorted(
        (m.party, m.name) for m in members.values())
    for member in members.values():
        opened = member.open(sealed)
        if member.party == "mediator":
            assert opened == {"assessment": f"north will hold: {MARKER}",
                              "private_note": {"text": MARKER, "priority": 2}}
        else:
            assert opened == {"assessment": f"north will hold: {MARKER}"}
    outsider = Member("east", "eve")
    assert outsider.open(sealed) == {}


def test_the_sealed_form_carries_no_trace_of_the_values(members: dict[str, Member]) -> None:
    """What the host stores and serves: the JSON, and every base64 string in it decoded."""
    sealed = audience_sealed(members)
    text = json.dumps(sealed.to_json())
    assert MARKER not in text and "north will hold" not in text
    blobs = [base64.b64decode(box.enc) for box in sealed.boxes]
    blobs += [base64.b64decode(text) for text in sealed.ciphertexts.values()]
    assert not any(MARKER.encode() in blob for blob in blobs)
    assert Sealed.from_json(json.loads(text)) == sealed


def test_a_box_moved_to_another_envelope_or_channel_does_not_open(members: dict[str, Member]) -> None:
    sealed = audience_sealed(members)
    mia = members["mia"]
    for context in (SealContext(channel="north-south", envelope=b64url(b"\x01" * 16)),
                    SealContext(channel="east-west", envelope=CONTEXT.envelope)):
        with pytest.raises(SealError) as err:
            mia.open(sealed, context)
        assert err.value.code == Code.SEAL_CANNOT_OPEN


def test_a_box_relabelled_for_another_reader_or_fields_does_not_open(members: dict[str, Member]) -> None:
    sealed = audience_sealed(members)
    mia, bob = members["mia"], members["bob"]
    mia_box = next(b for b in sealed.boxes if b.member == "mia")
    # The host gives bob mia's box (bob's name, bob's key id): it was not sealed to him.
    as_bob = msgspec.structs.replace(mia_box, party="south", member="bob", key=bob.key.key_id)
    # The host narrows mia's box to one field, hoping to make her drop the other unseen.
    narrowed = msgspec.structs.replace(mia_box, fields=["assessment"])
    for box in (as_bob, narrowed):
        boxes = [box if (b.party, b.member) == (box.party, box.member) else b for b in sealed.boxes]
        tampered = msgspec.structs.replace(sealed, boxes=boxes)
        with pytest.raises(SealError) as err:
            (bob if box is as_bob else mia).open(tampered)
        assert err.value.code == Code.SEAL_CANNOT_OPEN


def test_a_field_ciphertext_altered_or_moved_does_not_open(members: dict[str, Member]) -> None:
    """The host flips a bit of a field's ciphertext, or puts one field's ciphertext under the
    other's name: the key in the reader's box does not open it."""
    sealed = audience_sealed(members)
    raw = bytearray(base64.b64decode(sealed.ciphertexts["assessment"]))
    raw[0] ^= 1
    flipped = {**sealed.ciphertexts, "assessment": base64.b64encode(bytes(raw)).decode()}
    swapped = {"assessment": sealed.ciphertexts["private_note"],
               "private_note": sealed.ciphertexts["assessment"]}
    for ciphertexts in (flipped, swapped):
        with pytest.raises(SealError) as err:
            members["mia"].open(msgspec.structs.replace(sealed, ciphertexts=ciphertexts))
        assert err.value.code == Code.SEAL_CANNOT_OPEN and "sealed field" in err.value.message


def test_a_field_is_carried_once_whatever_its_readers(members: dict[str, Member]) -> None:
    """A long text sealed to six readers costs its size once, and a box of the same small size
    per reader: the sealed part grows with the readers by boxes alone."""
    text = "x" * 10_000
    one, six = (seal(make_disclosures({"text": text}, salts("text")), {"text": readers}, CONTEXT)
                for readers in ([members["bob"].reader], [m.reader for m in members.values()]))
    assert one.ciphertexts.keys() == six.ciphertexts.keys() == {"text"}
    assert len(six.ciphertexts["text"]) == len(one.ciphertexts["text"]) > 10_000
    box_sizes = {len(box.enc) for box in six.boxes}
    assert len(box_sizes) == 1 and box_sizes.pop() < 1_700  # a KEM ciphertext and one key
    for member in members.values():
        assert member.open(six) == {"text": text}


def test_a_swapped_digest_is_caught_by_the_reader(members: dict[str, Member]) -> None:
    """Signed digests are the truth: a box holding anything else is refused, even if it opens."""
    sealed = audience_sealed(members)
    other = Disclosure(bytes(16), "assessment", "north will withdraw")
    tampered = msgspec.structs.replace(sealed, digests={**sealed.digests, "assessment": other.digest})
    with pytest.raises(SealError) as err:
        members["bob"].open(tampered)
    assert err.value.code == Code.SEAL_DIGEST_MISMATCH


def test_a_retired_epoch_key_cannot_open_an_old_box(members: dict[str, Member]) -> None:
    """The stolen-laptop case at its core: bob now holds only this epoch's key; a box sealed to
    his key of two epochs ago does not open with it (only his local store can still show it)."""
    sealed = audience_sealed(members)  # sealed to bob's epoch-100 key
    bob_now = EpochPrivateKey.generate()
    key_now = bob_now.document(party="south", member="bob", epoch=102, length=DAY)
    with pytest.raises(SealError) as err:
        open_sealed(sealed, party="south", member="bob", keys={key_now.key_id: bob_now},
                    context=CONTEXT)
    assert err.value.code == Code.SEAL_NO_KEY
    box = next(b for b in sealed.boxes if b.member == "bob")
    with pytest.raises(SealError) as err:  # nor by presenting today's key under the old id
        open_sealed(sealed, party="south", member="bob", keys={box.key: bob_now}, context=CONTEXT)
    assert err.value.code == Code.SEAL_CANNOT_OPEN


def test_sealing_refuses_a_field_nobody_could_read(members: dict[str, Member]) -> None:
    disclosures = make_disclosures({"a": 1, "b": 2}, salts("a", "b"))
    with pytest.raises(SealError) as err:
        seal(disclosures, {"a": [members["bob"].reader]}, CONTEXT)
    assert err.value.code == Code.SEAL_NO_READER


def test_sealing_refuses_a_key_offered_under_another_members_name(members: dict[str, Member]) -> None:
    disclosures = make_disclosures({"a": 1}, salts("a"))
    wrong = Reader("south", "bob", members["mia"].key)
    with pytest.raises(SealError) as err:
        seal(disclosures, {"a": [wrong]}, CONTEXT)
    assert err.value.code == Code.SEAL_BAD_EPOCH_KEY


def _box(member: str, fields: list[str]) -> dict[str, Any]:
    return {"party": "south", "member": member, "key": "A" * 43, "fields": fields,
            "enc": base64.b64encode(b"x" * 40).decode()}


def _sealed(digests: dict[str, str], boxes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A sealed part, each digest with a (well-formed) ciphertext unless ``extra`` says other."""
    return {"digests": digests, "ciphertexts": dict.fromkeys(digests, "AAAA"), "boxes": boxes,
            **extra}


A, B = {"a": "A" * 43}, {"a": "A" * 43, "b": "A" * 43}


@pytest.mark.parametrize(("sealed", "why"), [
    (_sealed(A, [_box("bob", ["a"]), _box("bob", ["a"])]), "two boxes"),
    (_sealed(B, [_box("bob", ["b", "a"])]), "in order"),
    (_sealed(A, [_box("bob", ["a", "a"])]), "distinct"),
    (_sealed(A, [_box("bob", ["a", "b"])]), "no digest"),
    (_sealed(B, [_box("bob", ["a"])]), "no reader"),
    (_sealed({"a": "A" * 42}, [_box("bob", ["a"])]), "digests"),
    (_sealed(A, [{**_box("bob", ["a"]), "enc": "***"}]), "base64"),
    (_sealed(A, []), "boxes"),
    (_sealed(A, [_box(f"m{i}", ["a"]) for i in range(65)]), "boxes"),
    (_sealed(A, [_box("bob", ["a"])], clear=1), "clear"),
    (_sealed(A, [_box("bob", ["a"])], ciphertexts={}), "ciphertexts"),
    (_sealed(A, [_box("bob", ["a"])], ciphertexts={"b": "AAAA"}), "one digest and one ciphertext"),
    (_sealed(A, [_box("bob", ["a"])], ciphertexts={"a": "AAAA", "b": "AAAA"}),
     "one digest and one ciphertext"),
    (_sealed(A, [_box("bob", ["a"])], ciphertexts={"a": "***"}), "base64"),
])
def test_the_host_checks_the_shape_without_reading(sealed: dict[str, Any], why: str) -> None:
    with pytest.raises(SealError) as err:
        Sealed.from_json(sealed)
    assert err.value.code == Code.SEAL_INVALID and why in err.value.message


def test_a_context_is_a_channel_and_an_envelope_id() -> None:
    with pytest.raises(SealError):
        SealContext(channel="North South", envelope=CONTEXT.envelope)
    with pytest.raises(SealError):
        SealContext(channel="north-south", envelope="short")
