"""Issue 15: `hotline keys new|show` on a member's machine and `hotline authority
new|enroll|revoke|rotate` on the authority's, each in its own home folder; only public files move
between them. Every refusal is typed and writes nothing; no private key is ever printed."""

from __future__ import annotations

import json
import shutil
import stat
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.cli import main
from hotline.clock import utc_now
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation
from hotline.hybrid import HybridPublicKey, signing_key_from_pem
from hotline.keyfiles import save_private_key
from hotline.keys import SigningKey
from hotline.publicfiles import fingerprint, read_authority_key, read_member_key, read_signed
from hotline.roster import EnrollmentDocument, Roster
from hotline.times import format_time, parse_time


@dataclass
class Ran:
    code: int
    out: str
    err: str


def hotline(home: Path, *args: str, passphrase: str | None = None) -> Ran:
    """The command in this process, as from a script (no terminal: nobody to prompt)."""
    env = {"HOTLINE_PASSPHRASE": passphrase}
    result = CliRunner().invoke(main, ["--home", str(home), *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return Ran(result.exit_code, result.stdout, result.stderr)


def secrets_of(*homes: Path) -> list[str]:
    """The base64 lines of every private key in ``homes``: none may ever be printed."""
    lines = []
    for home in homes:
        for pem in home.rglob("*.pem"):
            lines += [line for line in pem.read_text().splitlines() if "-----" not in line]
    return lines


def assert_no_secret(ran: Ran, *homes: Path) -> None:
    text = ran.out + ran.err
    assert "PRIVATE KEY" not in text
    assert not any(line in text for line in secrets_of(*homes))


def listing(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*") if p.is_file()}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path]:
    """A member's home with alice's key and north's authority home, alice's public file copied
    over (the only file that travels)."""
    member, authority = tmp_path / "alice", tmp_path / "north"
    assert hotline(member, "keys", "new", "--as", "alice", passphrase="alice pw").code == 0
    assert hotline(authority, "authority", "new", "--party", "north", passphrase="north pw").code == 0
    shutil.copy(member / "keys" / "alice.pub.json", authority / "alice.pub.json")
    return member, authority


def test_keys_new_makes_a_private_key_0600_and_prints_only_what_to_hand_over(tmp_path: Path) -> None:
    ran = hotline(tmp_path, "keys", "new", "--as", "alice", passphrase="pw")
    assert ran.code == 0, ran.err
    private, public = tmp_path / "keys" / "alice.pem", tmp_path / "keys" / "alice.pub.json"
    assert mode(private) == 0o600 and b"ENCRYPTED PRIVATE KEY" in private.read_bytes()
    key = read_member_key(public).public_key
    assert str(public) in ran.out and key.key_id in ran.out and fingerprint(key) in ran.out
    assert "read it out" in ran.out
    assert_no_secret(ran, tmp_path)

    again = hotline(tmp_path, "keys", "new", "--as", "alice", "--no-passphrase")
    assert again.code == 1 and "ceremony.key_exists" in again.err
    assert read_member_key(public).public_key == key and b"ENCRYPTED" in private.read_bytes()


def test_keys_new_without_a_passphrase_or_a_terminal_refuses(tmp_path: Path) -> None:
    ran = hotline(tmp_path, "keys", "new", "--as", "alice")
    assert ran.code == 1 and "ceremony.no_passphrase" in ran.err and "--no-passphrase" in ran.err
    assert not tmp_path.exists() or listing(tmp_path) == {}
    plain = hotline(tmp_path, "keys", "new", "--as", "alice", "--no-passphrase")
    assert plain.code == 0 and "NOT encrypted" in plain.out


def test_keys_new_refuses_a_name_that_is_a_path(tmp_path: Path) -> None:
    ran = hotline(tmp_path / "m", "keys", "new", "--as", "../evil", "--no-passphrase")
    assert ran.code == 1 and "ceremony.invalid" in ran.err
    assert not list(tmp_path.rglob("*.pem"))


def test_keys_show_reads_the_public_file_or_derives_it_from_an_init_key(tmp_path: Path) -> None:
    hotline(tmp_path, "keys", "new", "--as", "alice", "--no-passphrase")
    shown = hotline(tmp_path, "keys", "show", "--as", "alice")
    key = read_member_key(tmp_path / "keys" / "alice.pub.json").public_key
    assert shown.code == 0 and key.to_text() in shown.out and fingerprint(key) in shown.out
    assert_no_secret(shown, tmp_path)

    bob = SigningKey.generate()  # as `hotline init` leaves it: the .pem alone
    save_private_key(tmp_path / "keys" / "bob.pem", bob, b"bob pw")
    locked = hotline(tmp_path, "keys", "show", "--as", "bob")
    assert locked.code == 1 and "ceremony.no_passphrase" in locked.err
    wrong = hotline(tmp_path, "keys", "show", "--as", "bob", passphrase="nope")
    assert wrong.code == 1 and "crypto.bad_key_file" in wrong.err
    assert not (tmp_path / "keys" / "bob.pub.json").exists()
    derived = hotline(tmp_path, "keys", "show", "--as", "bob", passphrase="bob pw")
    assert derived.code == 0 and bob.key_id in derived.out and "Wrote the public file" in derived.out
    assert read_member_key(tmp_path / "keys" / "bob.pub.json").public_key == bob.public_key
    assert_no_secret(derived, tmp_path)

    missing = hotline(tmp_path, "keys", "show", "--as", "carol")
    assert missing.code == 1 and "ceremony.no_key" in missing.err


def test_keys_show_refuses_a_public_file_that_is_not_the_members(tmp_path: Path) -> None:
    hotline(tmp_path, "keys", "new", "--as", "alice", "--no-passphrase")
    (tmp_path / "keys" / "alice.pub.json").write_text('{"type": "member-key", "name": "eve", '
                                                      '"key": {"alg": "ed25519", "pub": "AAAA"}}')
    ran = hotline(tmp_path, "keys", "show", "--as", "alice")
    assert ran.code == 1 and "keys.bad_public_file" in ran.err


def test_authority_new_makes_the_key_the_others_pin(tmp_path: Path) -> None:
    ran = hotline(tmp_path, "authority", "new", "--party", "north", passphrase="pw")
    assert ran.code == 0, ran.err
    assert mode(tmp_path / "keys" / "authority-north.pem") == 0o600
    key = read_authority_key(tmp_path / "keys" / "authority-north.pub.json").public_key
    assert key.key_id in ran.out and fingerprint(key) in ran.out
    assert_no_secret(ran, tmp_path)
    again = hotline(tmp_path, "authority", "new", "--party", "north", passphrase="pw")
    assert again.code == 1 and "ceremony.key_exists" in again.err
    assert read_authority_key(tmp_path / "keys" / "authority-north.pub.json").public_key == key


def test_enroll_writes_a_signed_enrollment_the_pinned_authority_accepts(
        homes: tuple[Path, Path]) -> None:
    member, authority = homes
    alice = read_member_key(member / "keys" / "alice.pub.json").public_key
    ran = hotline(authority, "authority", "enroll", "--member", "alice", "--role", "liaison",
                  "--key", str(authority / "alice.pub.json"), "--valid", "90d",
                  "--expect", fingerprint(alice), passphrase="north pw")
    assert ran.code == 0, ran.err
    path = authority / "roster" / f"enroll-alice-{alice.key_id[:8]}.json"
    assert str(path) in ran.out and "hand this file to the member" in ran.out
    assert "hotline roster submit" in ran.out and fingerprint(alice) in ran.out
    assert_no_secret(ran, member, authority)

    signed = read_signed(path)
    doc = signed.document
    assert isinstance(doc, EnrollmentDocument) and doc.role == "liaison"
    span = parse_time(doc.not_after) - parse_time(doc.not_before)
    assert span == timedelta(days=90)
    assert parse_time(doc.not_before) <= utc_now() - timedelta(minutes=4)
    pinned = read_authority_key(authority / "keys" / "authority-north.pub.json").public_key
    roster = Roster(authorities={"north": pinned})
    roster.add(signed)
    assert roster.enrollments[alice.key_id].member == "alice"


def test_enroll_refusals_write_nothing(homes: tuple[Path, Path], tmp_path: Path) -> None:
    _, authority = homes
    key_file = str(authority / "alice.pub.json")
    before = listing(authority)
    base = ("authority", "enroll", "--member", "alice", "--role", "liaison", "--key")
    other = fingerprint(SigningKey.generate().public_key)
    past = format_time(utc_now() - timedelta(days=1))
    cases = [
        ((*base, key_file, "--expect", other), "ceremony.safety_mismatch", "north pw"),
        (("authority", "enroll", "--member", "bob", "--role", "liaison", "--key", key_file),
         "ceremony.name_mismatch", "north pw"),
        ((*base, key_file, "--not-after", past), "already", "north pw"),
        ((*base, key_file, "--not-before", "yesterday"), "frame.bad_time", "north pw"),
        ((*base, key_file, "--valid", "forever"), "ceremony.invalid", "north pw"),
        ((*base, key_file), "crypto.bad_key_file", "wrong pw"),
        ((*base, key_file, "--party", "south"), "ceremony.no_key", "north pw"),
        ((*base, str(authority / "keys" / "authority-north.pub.json")), "keys.bad_public_file",
         "north pw"),
    ]
    for args, expected, passphrase in cases:
        ran = hotline(authority, *args, passphrase=passphrase)
        assert ran.code != 0 and expected in ran.err + ran.out, (args, ran.err)
        assert listing(authority) == before, args

    huge = tmp_path / "huge.pub.json"
    huge.write_text(" " * 100_000)
    ran = hotline(authority, *base, str(huge), passphrase="north pw")
    assert ran.code == 1 and "larger than" in ran.err and listing(authority) == before
    both = hotline(authority, *base, key_file, "--valid", "1y", "--not-after", past,
                   passphrase="north pw")
    assert both.code == 2 and listing(authority) == before


def test_enroll_with_another_name_when_the_authority_says_so(homes: tuple[Path, Path]) -> None:
    _, authority = homes
    ran = hotline(authority, "authority", "enroll", "--member", "alice.n", "--role", "agent",
                  "--key", str(authority / "alice.pub.json"), "--other-name",
                  "--out", str(authority / "e.json"), passphrase="north pw")
    assert ran.code == 0, ran.err
    doc = read_signed(authority / "e.json").document
    assert isinstance(doc, EnrollmentDocument) and doc.member == "alice.n"


def test_the_party_must_be_named_when_the_home_holds_several(homes: tuple[Path, Path]) -> None:
    _, authority = homes
    hotline(authority, "authority", "new", "--party", "south", passphrase="north pw")
    ran = hotline(authority, "authority", "enroll", "--member", "alice", "--role", "liaison",
                  "--key", str(authority / "alice.pub.json"), passphrase="north pw")
    assert ran.code == 1 and "ceremony.no_key" in ran.err and "north, south" in ran.err


def test_revoke_writes_a_signed_revocation(homes: tuple[Path, Path]) -> None:
    _, authority = homes
    alice = read_member_key(authority / "alice.pub.json").public_key
    hotline(authority, "authority", "enroll", "--member", "alice", "--role", "liaison",
            "--key", str(authority / "alice.pub.json"), passphrase="north pw")
    at = format_time(utc_now())
    ran = hotline(authority, "authority", "revoke", "--member", "alice", "--key", alice.key_id,
                  "--at", at, "--reason", "laptop lost", passphrase="north pw")
    assert ran.code == 0, ran.err
    path = authority / "roster" / f"revoke-alice-{alice.key_id[:8]}.json"
    assert str(path) in ran.out and "hotline roster submit" in ran.out
    pinned = read_authority_key(authority / "keys" / "authority-north.pub.json").public_key
    roster = Roster(authorities={"north": pinned})
    roster.add(read_signed(authority / "roster" / f"enroll-alice-{alice.key_id[:8]}.json"))
    roster.add(read_signed(path))
    assert roster.enrollments[alice.key_id].revoked_at == parse_time(at)
    assert roster.enrollments[alice.key_id].reason == "laptop lost"

    again = hotline(authority, "authority", "revoke", "--member", "alice", "--key", alice.key_id,
                    passphrase="north pw")
    assert again.code == 1 and "ceremony.key_exists" in again.err  # the file is not replaced
    bad = hotline(authority, "authority", "revoke", "--member", "alice", "--key", "nope",
                  "--out", str(authority / "r.json"), passphrase="north pw")
    assert bad.code == 1 and "ceremony.invalid" in bad.err and not (authority / "r.json").exists()


def test_rotate_hands_over_and_the_old_key_signs_nothing_after(
        homes: tuple[Path, Path], tmp_path: Path) -> None:
    _, authority = homes
    keys = authority / "keys"
    old = read_authority_key(keys / "authority-north.pub.json").public_key
    hotline(authority, "authority", "enroll", "--member", "alice", "--role", "liaison",
            "--key", str(authority / "alice.pub.json"), passphrase="north pw")
    alice = read_member_key(authority / "alice.pub.json").public_key
    enrolled_before = read_signed(authority / "roster" / f"enroll-alice-{alice.key_id[:8]}.json")

    ran = hotline(authority, "authority", "rotate", passphrase="north pw")
    assert ran.code == 0, ran.err
    assert_no_secret(ran, authority)
    new = read_authority_key(keys / "authority-north.pub.json").public_key
    assert new != old and new.key_id in ran.out and fingerprint(new) in ran.out
    retired = keys / f"authority-north.retired-{old.key_id[:8]}.pem"
    assert mode(retired) == 0o600 and mode(keys / "authority-north.pem") == 0o600
    assert str(retired) in ran.out and "destroy it" in ran.out
    handover = authority / "roster" / f"handover-north-{new.key_id[:8]}.json"
    assert str(handover) in ran.out and "hotline roster submit" in ran.out

    roster = Roster(authorities={"north": old})  # a receiver that pinned the old key
    roster.add(enrolled_before)
    roster.add(read_signed(handover))
    assert roster.current["north"] == new

    # the retired key, stolen or kept, signs an enrollment after the handover
    thief = tmp_path / "thief"
    (thief / "keys").mkdir(parents=True)
    shutil.copy(retired, thief / "keys" / "authority-north.pem")
    shutil.copy(authority / "alice.pub.json", thief / "mallory.pub.json")
    forged = hotline(thief, "authority", "enroll", "--member", "alice", "--role", "liaison",
                     "--key", str(thief / "mallory.pub.json"), "--out", str(thief / "f.json"),
                     passphrase="north pw")
    assert forged.code == 0, forged.err
    with pytest.raises(ProtocolViolation) as err:
        roster.add(read_signed(thief / "f.json"))
    assert err.value.code == Code.ROSTER_RETIRED_AUTHORITY

    bob = tmp_path / "bob"
    hotline(bob, "keys", "new", "--as", "bob", "--no-passphrase")
    fresh = hotline(authority, "authority", "enroll", "--member", "bob", "--role", "agent",
                    "--key", str(bob / "keys" / "bob.pub.json"), passphrase="north pw")
    assert fresh.code == 0, fresh.err
    bob_key = read_member_key(bob / "keys" / "bob.pub.json").public_key
    assert roster.add(read_signed(authority / "roster" /
                                  f"enroll-bob-{bob_key.key_id[:8]}.json")) == "enrollment"
    assert roster.enrollments[alice.key_id].authority == old.key_id  # history stays


def test_rotate_with_the_wrong_passphrase_changes_nothing(homes: tuple[Path, Path]) -> None:
    _, authority = homes
    before = listing(authority)
    ran = hotline(authority, "authority", "rotate", passphrase="wrong")
    assert ran.code == 1 and "crypto.bad_key_file" in ran.err
    assert listing(authority) == before


def test_an_unencrypted_authority_rotates_with_no_passphrase(tmp_path: Path) -> None:
    hotline(tmp_path, "authority", "new", "--party", "north", "--no-passphrase")
    refused = hotline(tmp_path, "authority", "rotate")  # a new key is not left plain unasked
    assert refused.code == 1 and "ceremony.no_passphrase" in refused.err
    assert not (tmp_path / "roster").exists()
    ran = hotline(tmp_path, "authority", "rotate", "--no-passphrase",
                  "--out", str(tmp_path / "h.json"))
    assert ran.code == 0, ran.err
    assert json.loads((tmp_path / "h.json").read_text())["document"]["type"] == "handover"
    assert b"ENCRYPTED" not in (tmp_path / "keys" / "authority-north.pem").read_bytes()


def test_a_hybrid_key_is_made_shown_and_enrolled_by_the_same_ceremony(tmp_path: Path) -> None:
    """``keys new --hybrid``: an Ed25519 + ML-DSA-65 key (two PKCS#8 blocks, both encrypted),
    whose public file the authority enrolls like any other; ``keys show`` reads it back."""
    member, authority = tmp_path / "alice", tmp_path / "north"
    ran = hotline(member, "keys", "new", "--as", "alice", "--hybrid", passphrase="alice pw")
    assert ran.code == 0, ran.err
    assert "ed25519+ml-dsa-65" in ran.out
    assert_no_secret(ran, member)
    pem = (member / "keys" / "alice.pem").read_bytes()
    assert pem.count(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") == 2
    assert mode(member / "keys" / "alice.pem") == 0o600
    alice = read_member_key(member / "keys" / "alice.pub.json").public_key
    assert isinstance(alice, HybridPublicKey)
    assert signing_key_from_pem(pem, b"alice pw").key_id == alice.key_id
    shown = hotline(member, "keys", "show", "--as", "alice")
    assert shown.code == 0 and fingerprint(alice) in shown.out

    assert hotline(authority, "authority", "new", "--party", "north", passphrase="north pw").code == 0
    shutil.copy(member / "keys" / "alice.pub.json", authority / "alice.pub.json")
    ran = hotline(authority, "authority", "enroll", "--member", "alice", "--role", "liaison",
                  "--key", str(authority / "alice.pub.json"), "--expect", fingerprint(alice),
                  passphrase="north pw")
    assert ran.code == 0, ran.err
    signed = read_signed(authority / "roster" / f"enroll-alice-{alice.key_id[:8]}.json")
    pinned = read_authority_key(authority / "keys" / "authority-north.pub.json").public_key
    roster = Roster(authorities={"north": pinned})
    roster.add(signed)
    assert roster.public_key(alice.key_id) == alice
