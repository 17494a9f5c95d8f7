"""Issue 15: the key ceremonies as functions over files (hotline/ceremony.py, hotline/passphrase.py).
Each refusal writes nothing; every document is one a roster of the authority's own key accepts."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hotline.ceremony import (
    CeremonyError,
    check_safety,
    choose_party,
    enroll,
    load_private,
    new_authority,
    new_member_key,
    parse_validity,
    revoke,
    rotate,
)
from hotline.errorcodes import Code
from hotline.errors import CryptoError, ProtocolViolation
from hotline.keys import SigningKey
from hotline.passphrase import existing_passphrase, new_passphrase
from hotline.publicfiles import (
    MAX_PUBLIC_FILE,
    BadPublicFile,
    fingerprint,
    read_authority_key,
    read_member_key,
)
from hotline.roster import Role, Roster, revocation, sign_document

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
YEAR = timedelta(days=365)


def files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")) if home.exists() else []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_member_key_is_made_0600_with_its_public_file(tmp_path: Path) -> None:
    key, private, public = new_member_key(tmp_path, "alice", b"secret")
    assert private == tmp_path / "keys" / "alice.pem" and mode(private) == 0o600
    assert b"ENCRYPTED" in private.read_bytes()
    assert load_private(private, b"secret").key_id == key.key_id
    record = read_member_key(public)
    assert record.name == "alice" and record.public_key.key_id == key.key_id
    assert files(tmp_path) == ["keys", "keys/alice.pem", "keys/alice.pub.json"]  # no temp left


def test_without_a_passphrase_the_key_is_plain(tmp_path: Path) -> None:
    key, private, _ = new_member_key(tmp_path, "alice", None)
    assert b"ENCRYPTED" not in private.read_bytes()
    assert load_private(private, None).key_id == key.key_id


def test_an_existing_key_is_never_replaced(tmp_path: Path) -> None:
    _, private, public = new_member_key(tmp_path, "alice", None)
    before = (private.read_bytes(), public.read_bytes())
    with pytest.raises(CeremonyError) as err:
        new_member_key(tmp_path, "alice", None)
    assert err.value.code == Code.CEREMONY_KEY_EXISTS
    assert (private.read_bytes(), public.read_bytes()) == before


def test_a_leftover_public_file_is_not_replaced_either(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "bob.pub.json").write_text("{}")
    with pytest.raises(CeremonyError, match="never replaced"):
        new_member_key(tmp_path, "bob", None)
    assert not (tmp_path / "keys" / "bob.pem").exists()


@pytest.mark.parametrize("name", ["../alice", "Alice", "", "a/b", "log", "authority-north",
                                  "x" * 65])
def test_a_name_that_is_no_member_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(CeremonyError):
        new_member_key(tmp_path, name, None)
    assert files(tmp_path) == []


def test_an_authority_key_is_made_and_never_replaced(tmp_path: Path) -> None:
    key, private, public = new_authority(tmp_path, "north", b"pw")
    assert private.name == "authority-north.pem" and mode(private) == 0o600
    record = read_authority_key(public)
    assert record.party == "north" and record.public_key.key_id == key.key_id
    with pytest.raises(CeremonyError) as err:
        new_authority(tmp_path, "north", b"pw")
    assert err.value.code == Code.CEREMONY_KEY_EXISTS
    assert load_private(private, b"pw").key_id == key.key_id


def test_the_wrong_passphrase_opens_nothing(tmp_path: Path) -> None:
    _, private, _ = new_authority(tmp_path, "north", b"right")
    with pytest.raises(CryptoError) as err:
        load_private(private, b"wrong")
    assert err.value.code == Code.CRYPTO_BAD_KEY_FILE and "wrong passphrase" in err.value.message


def test_an_oversized_private_key_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.pem"
    big.write_bytes(b"A" * (1 << 20))
    with pytest.raises(CryptoError, match="not a key file"):
        load_private(big, None)


def test_enroll_signs_what_a_roster_of_the_authority_accepts(tmp_path: Path) -> None:
    authority = SigningKey.generate()
    member = SigningKey.generate().public_key
    signed = enroll(authority, "north", "alice", "liaison", member, NOW, NOW + YEAR,
                    key_name="alice")
    roster = Roster(authorities={"north": authority.public_key})
    assert roster.add(signed.to_json()) == "enrollment"
    assert roster.enrollments[member.key_id].role is Role.LIAISON
    assert roster.enrollments[member.key_id].authority == authority.key_id


def test_enroll_refuses_a_key_file_of_another_name_unless_told(tmp_path: Path) -> None:
    authority, member = SigningKey.generate(), SigningKey.generate().public_key
    with pytest.raises(CeremonyError) as err:
        enroll(authority, "north", "bob", "liaison", member, NOW, NOW + YEAR, key_name="alice")
    assert err.value.code == Code.CEREMONY_NAME_MISMATCH
    signed = enroll(authority, "north", "bob", "liaison", member, NOW, NOW + YEAR,
                    key_name="alice", other_name=True)
    assert signed.document.member == "bob"  # type: ignore[union-attr]


@pytest.mark.parametrize("end", [NOW, NOW - timedelta(seconds=1)])
def test_enroll_refuses_an_end_not_after_the_start(end: datetime) -> None:
    with pytest.raises(CeremonyError, match="later"):
        enroll(SigningKey.generate(), "north", "alice", "agent",
               SigningKey.generate().public_key, NOW, end)


def test_enroll_refuses_a_role_that_is_none(tmp_path: Path) -> None:
    with pytest.raises(CeremonyError, match="role 'admin'"):
        enroll(SigningKey.generate(), "north", "alice", "admin",
               SigningKey.generate().public_key, NOW, NOW + YEAR)


def test_enroll_refuses_the_authoritys_own_key() -> None:
    authority = SigningKey.generate()
    with pytest.raises(CeremonyError, match="authority's own key"):
        enroll(authority, "north", "alice", "liaison", authority.public_key, NOW, NOW + YEAR)


def test_revoke_signs_a_revocation_the_roster_applies() -> None:
    authority, member = SigningKey.generate(), SigningKey.generate().public_key
    roster = Roster(authorities={"north": authority.public_key})
    roster.add(enroll(authority, "north", "bob", "liaison", member, NOW, NOW + YEAR))
    signed = revoke(authority, "north", "bob", member.key_id, NOW + timedelta(days=2),
                    "laptop lost")
    roster.add(signed)
    assert roster.enrollments[member.key_id].reason == "laptop lost"
    assert roster.enrollments[member.key_id].state_at(NOW + timedelta(days=3)) == Code.AUTH_REVOKED
    assert roster.enrollments[member.key_id].state_at(NOW + timedelta(days=1)) is None


@pytest.mark.parametrize(("key_id", "reason", "match"), [
    ("not-a-key-id", None, "not a KEY_ID"),
    ("A" * 43, "x" * 501, "longer than 500"),
])
def test_revoke_refuses_what_cannot_be_signed(key_id: str, reason: str | None, match: str) -> None:
    with pytest.raises(CeremonyError, match=match):
        revoke(SigningKey.generate(), "north", "bob", key_id, NOW, reason)


def test_rotate_hands_over_and_retires_the_old_key(tmp_path: Path) -> None:
    old, private, public = new_authority(tmp_path, "north", b"pw")
    member = SigningKey.generate().public_key
    before = enroll(old, "north", "alice", "liaison", member, NOW, NOW + YEAR)
    done = rotate(tmp_path, "north", b"pw", NOW + timedelta(hours=1))

    assert load_private(private, b"pw").key_id == done.key.key_id  # the new key is in place
    assert read_authority_key(public).public_key.key_id == done.key.key_id
    assert done.retired_path.name == f"authority-north.retired-{old.key_id[:8]}.pem"
    assert mode(done.retired_path) == 0o600 and mode(private) == 0o600
    assert load_private(done.retired_path, b"pw").key_id == old.key_id
    assert done.handover_path == (tmp_path / "roster" /
                                  f"handover-north-{done.key.key_id[:8]}.json")
    assert not list((tmp_path / "keys").glob("*.next-*"))

    roster = Roster(authorities={"north": old.public_key})  # the pin made before the rotation
    roster.add(before.to_json())
    roster.add(json.loads(done.handover_path.read_text()))
    late = enroll(old, "north", "mallory", "liaison", SigningKey.generate().public_key,
                  NOW, NOW + YEAR)
    with pytest.raises(ProtocolViolation) as err:
        roster.add(late)
    assert err.value.code == Code.ROSTER_RETIRED_AUTHORITY
    assert roster.add(enroll(done.key, "north", "carol", "liaison",
                             SigningKey.generate().public_key, NOW, NOW + YEAR)) == "enrollment"
    assert member.key_id in roster.enrollments  # history under the old key stays


def test_rotate_with_the_wrong_passphrase_writes_nothing(tmp_path: Path) -> None:
    new_authority(tmp_path, "north", b"pw")
    before = {p: p.read_bytes() for p in (tmp_path / "keys").iterdir()}
    with pytest.raises(CryptoError):
        rotate(tmp_path, "north", b"nope", NOW)
    assert {p: p.read_bytes() for p in (tmp_path / "keys").iterdir()} == before
    assert not (tmp_path / "roster").exists()


def test_rotate_refuses_a_public_file_of_another_key(tmp_path: Path) -> None:
    _, _, public = new_authority(tmp_path, "north", None)
    other = SigningKey.generate().public_key.to_json()
    public.write_text(json.dumps({"type": "authority-key", "party": "north", "key": other}))
    with pytest.raises(CeremonyError) as err:
        rotate(tmp_path, "north", None, NOW)
    assert err.value.code == Code.CEREMONY_SAFETY_MISMATCH
    assert not (tmp_path / "roster").exists()
    assert len(list((tmp_path / "keys").iterdir())) == 2


def test_an_interrupted_rotation_is_refused_until_finished(tmp_path: Path) -> None:
    new_authority(tmp_path, "north", None)
    (tmp_path / "keys" / "authority-north.next-abcdefgh.pem").write_text("")
    with pytest.raises(CeremonyError, match="interrupted") as err:
        rotate(tmp_path, "north", None, NOW)
    assert err.value.code == Code.CEREMONY_KEY_EXISTS


def test_the_party_is_the_only_one_held_or_must_be_named(tmp_path: Path) -> None:
    with pytest.raises(CeremonyError, match="none") as err:
        choose_party(tmp_path, None)
    assert err.value.code == Code.CEREMONY_NO_KEY
    new_authority(tmp_path, "north", None)
    assert choose_party(tmp_path, None) == "north"
    rotate(tmp_path, "north", None, NOW)  # a retired key is not a second party
    assert choose_party(tmp_path, None) == "north"
    new_authority(tmp_path, "south", None)
    with pytest.raises(CeremonyError, match="north, south"):
        choose_party(tmp_path, None)
    assert choose_party(tmp_path, "south") == "south"
    with pytest.raises(CeremonyError, match="no authority key for 'west'"):
        choose_party(tmp_path, "west")


def test_a_tampered_public_key_file_is_refused(tmp_path: Path) -> None:
    _, _, public = new_member_key(tmp_path, "alice", None)
    value = json.loads(public.read_text())
    value["key"]["pub"] = value["key"]["pub"][:-4] + "AAA="  # 32 bytes still, another key
    public.write_text(json.dumps(value))
    record = read_member_key(public)  # a well-formed file: only the safety number tells
    with pytest.raises(CeremonyError) as err:
        check_safety(record.public_key, fingerprint(SigningKey.generate().public_key), "it")
    assert err.value.code == Code.CEREMONY_SAFETY_MISMATCH
    value["key"]["pub"] = "AAAA"
    public.write_text(json.dumps(value))
    with pytest.raises(BadPublicFile, match="key"):
        read_member_key(public)


def test_the_safety_number_is_compared_as_a_person_types_it() -> None:
    key = SigningKey.generate().public_key
    check_safety(key, fingerprint(key).replace(" ", "-"), "it")
    check_safety(key, fingerprint(key).replace(" ", ""), "it")


def test_a_public_file_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    _, _, authority_file = new_authority(tmp_path, "north", None)
    with pytest.raises(BadPublicFile, match=r"holds an authority's public key .*, not a member's"):
        read_member_key(authority_file)
    signed = tmp_path / "doc.json"
    signed.write_text(json.dumps(sign_document(revocation(
        party="north", member="bob", key_id="A" * 43, revoked_at=NOW),
        SigningKey.generate()).to_json()))
    with pytest.raises(BadPublicFile, match="no hotline public key"):
        read_member_key(signed)


def test_an_oversized_public_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.pub.json"
    big.write_text(" " * (MAX_PUBLIC_FILE + 1) + "{}")
    with pytest.raises(BadPublicFile, match="larger than"):
        read_member_key(big)


@pytest.mark.parametrize(("text", "days"), [("1y", 365), ("90d", 90), ("2w", 14), ("12h", 0.5)])
def test_validities(text: str, days: float) -> None:
    assert parse_validity(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["", "0d", "1", "d", "1.5y", "11y", "-1d", "1 y 2d", "P1Y"])
def test_a_validity_that_is_none_is_refused(text: str) -> None:
    with pytest.raises(CeremonyError):
        parse_validity(text)


def test_a_new_passphrase_comes_from_the_env_a_prompt_or_is_refused() -> None:
    env = {"HOTLINE_PASSPHRASE": "pw"}
    assert new_passphrase("k", no_passphrase=False, env=env) == b"pw"
    assert new_passphrase("k", no_passphrase=True, env=env) is None
    asked: list[tuple[str, bool]] = []
    typed = new_passphrase("k", no_passphrase=False, env={}, interactive=lambda: True,
                           prompt=lambda text, confirm: asked.append((text, confirm)) or "typed")
    assert typed == b"typed" and asked == [("Passphrase for k", True)]
    with pytest.raises(CeremonyError) as err:
        new_passphrase("k", no_passphrase=False, env={}, interactive=lambda: False)
    assert err.value.code == Code.CEREMONY_NO_PASSPHRASE and "--no-passphrase" in err.value.message
    with pytest.raises(CeremonyError, match="empty"):
        new_passphrase("k", no_passphrase=False, env={}, interactive=lambda: True,
                       prompt=lambda text, confirm: "")


def test_an_existing_key_asks_only_if_it_is_encrypted(tmp_path: Path) -> None:
    _, plain, _ = new_member_key(tmp_path, "alice", None)
    _, locked, _ = new_member_key(tmp_path, "bob", b"pw")
    assert existing_passphrase(plain, env={}, interactive=lambda: False) is None
    assert existing_passphrase(locked, env={"HOTLINE_PASSPHRASE": "pw"}) == b"pw"
    with pytest.raises(CeremonyError) as err:
        existing_passphrase(locked, env={}, interactive=lambda: False)
    assert err.value.code == Code.CEREMONY_NO_PASSPHRASE
    assert os.access(locked, os.R_OK)


def test_a_rotation_whose_handover_cannot_be_written_leaves_the_old_key_alone(
        tmp_path: Path) -> None:
    old, _, _ = new_authority(tmp_path, "north", None)
    (tmp_path / "file").write_text("not a folder")
    before = {p.name: p.read_bytes() for p in (tmp_path / "keys").iterdir()}
    with pytest.raises(CeremonyError) as err:
        rotate(tmp_path, "north", None, NOW, out=tmp_path / "file" / "handover.json")
    assert err.value.code == Code.CEREMONY_WRITE_FAILED
    assert {p.name: p.read_bytes() for p in (tmp_path / "keys").iterdir()} == before
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    with pytest.raises(CeremonyError) as err:
        rotate(tmp_path, "north", None, NOW, out=taken)
    assert err.value.code == Code.CEREMONY_KEY_EXISTS and taken.read_text() == "{}"
    assert {p.name: p.read_bytes() for p in (tmp_path / "keys").iterdir()} == before
    assert rotate(tmp_path, "north", None, NOW).key.key_id != old.key_id  # and it can go on


def test_a_key_cannot_be_written_where_no_folder_can_be(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("a file where the folder should be")
    with pytest.raises(CeremonyError) as err:
        new_member_key(tmp_path, "alice", None)
    assert err.value.code == Code.CEREMONY_WRITE_FAILED
