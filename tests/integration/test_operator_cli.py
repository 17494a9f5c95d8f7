"""Issue 15, the operator and joining: `hotline server new|pin|descriptor` and `hotline join`.
The server home holds only the log key, the TLS material, the config and templates; every
refusal (a mismatch, a private key, a tampered descriptor) writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hotline.cli import main
from hotline.client.profile import Profile
from hotline.config import load_config
from hotline.descriptor import fingerprints, read_descriptor
from hotline.keyfiles import save_private_key
from hotline.keys import PublicKey, SigningKey, safety_number
from hotline.operator_home import pin_authority
from hotline.publicfiles import AuthorityKeyFile, write_public
from tests.conftest import ServerProcess

PARTIES = ("north", "south")


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args],
                              env={"HOTLINE_PASSPHRASE": "", "HOTLINE_LOG_KEY_PASSPHRASE": "",
                                   **(env or {})})


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()} if folder.exists() else {}


@pytest.fixture
def authorities(tmp_path: Path) -> dict[str, SigningKey]:
    """Each party's authority key, its public file in the party's own folder."""
    keys = {}
    for party in PARTIES:
        keys[party] = SigningKey.generate()
        folder = tmp_path / f"authority-{party}"
        save_private_key(folder / "keys" / f"authority-{party}.pem", keys[party])
        write_public(folder / "keys" / f"authority-{party}.pub.json",
                     AuthorityKeyFile(party=party, key=keys[party].public_key.to_json()))
    return keys


def pub(tmp_path: Path, party: str) -> str:
    return str(tmp_path / f"authority-{party}" / "keys" / f"authority-{party}.pub.json")


@pytest.fixture
def operator(tmp_path: Path, authorities: dict[str, SigningKey]) -> Path:
    """A server home with every party pinned (their numbers compared) and its descriptor."""
    home = tmp_path / "operator"
    made = run(home, "server", "new", "--origin", "hotline.test", "--listen", "127.0.0.1:0",
               env={"HOTLINE_LOG_KEY_PASSPHRASE": "log secret"})
    assert made.exit_code == 0, made.output
    for party, key in authorities.items():
        pinned = run(home, "server", "pin", "--party", party, "--authority", pub(tmp_path, party),
                     "--expect", safety_number(key.key_id))
        assert pinned.exit_code == 0, pinned.output
        assert "Restart the server" in pinned.output and "grants nothing" in pinned.output
    done = run(home, "server", "descriptor", env={"HOTLINE_LOG_KEY_PASSPHRASE": "log secret"})
    assert done.exit_code == 0, done.output
    return home


def expects(descriptor: Path) -> list[str]:
    prints = fingerprints(read_descriptor(descriptor.read_bytes()))
    args = [f"--expect={p}={n}" for p, n in prints.authorities.items()]
    return [*args, f"--expect=log={prints.log}"]


@pytest.fixture
def member(tmp_path: Path) -> Path:
    """alice's home, holding only her own key (made on her machine)."""
    home = tmp_path / "alice"
    save_private_key(home / "keys" / "alice.pem", SigningKey.generate(), b"alice secret")
    return home


def test_server_new_holds_only_the_log_key_tls_config_and_templates(tmp_path: Path) -> None:
    home = tmp_path / "op"
    made = run(home, "server", "new", "--origin", "hotline.test", "--tls", "--tls-name",
               "hl.example", "--listen", "0.0.0.0:8443", "--no-passphrase")
    assert made.exit_code == 0, made.output
    top = {p.name for p in home.iterdir()}
    assert top == {"keys", "tls", "hotline.toml", "protocols"}
    assert sorted(p.name for p in (home / "keys").iterdir()) == ["log.pem"]
    assert {str(p.relative_to(home)) for p in home.rglob("*.pem")} == {
        "keys/log.pem", "tls/ca.pem", "tls/server.pem"}
    config = load_config(home / "hotline.toml", home=home, env={})
    assert dict(config.roster.authorities) == {} and config.server.origin == "hotline.test"
    assert "wss://hl.example:8443/v1/ws" in made.output
    before = files(home)
    again = run(home, "server", "new", "--origin", "hotline.test", "--no-passphrase")
    assert again.exit_code == 1 and "already holds" in again.output
    assert files(home) == before


def test_server_new_without_a_passphrase_and_no_terminal_is_refused(tmp_path: Path) -> None:
    done = run(tmp_path / "op", "server", "new", "--origin", "hotline.test")
    assert done.exit_code == 1 and "ceremony.no_passphrase" in done.output  # as `keys new`
    assert "HOTLINE_LOG_KEY_PASSPHRASE or HOTLINE_PASSPHRASE" in done.output
    assert not (tmp_path / "op").exists()


def test_server_new_refuses_plain_text_off_loopback(tmp_path: Path) -> None:
    done = run(tmp_path / "op", "server", "new", "--origin", "hotline.test", "--listen",
               "0.0.0.0:8470", "--no-passphrase")
    assert done.exit_code == 1 and "config.insecure_listen" in done.output
    assert not (tmp_path / "op").exists()


def test_pin_with_a_wrong_number_or_unconfirmed_or_a_private_key_writes_nothing(
        tmp_path: Path, authorities: dict[str, SigningKey]) -> None:
    home = tmp_path / "op"
    assert run(home, "server", "new", "--origin", "o", "--no-passphrase").exit_code == 0
    before = files(home)
    wrong = run(home, "server", "pin", "--party", "north", "--authority", pub(tmp_path, "north"),
                "--expect", safety_number(authorities["south"].key_id))
    assert wrong.exit_code == 1 and "server.pin_refused" in wrong.output
    unconfirmed = run(home, "server", "pin", "--party", "north", "--authority",
                      pub(tmp_path, "north"))
    assert unconfirmed.exit_code == 1 and "not confirmed" in unconfirmed.output
    private = run(home, "server", "pin", "--party", "north", "--authority",
                  str(tmp_path / "authority-north" / "keys" / "authority-north.pem"), "--yes")
    assert private.exit_code == 1 and "PRIVATE key" in private.output
    other = run(home, "server", "pin", "--party", "north", "--authority", pub(tmp_path, "south"),
                "--yes")
    assert other.exit_code == 1 and "not of 'north'" in other.output
    assert files(home) == before


def test_repinning_a_party_to_another_key_needs_replace_and_keeps_the_operators_lines(
        tmp_path: Path, authorities: dict[str, SigningKey]) -> None:
    home = tmp_path / "op"
    assert run(home, "server", "new", "--origin", "o", "--no-passphrase").exit_code == 0
    config = home / "hotline.toml"
    config.write_text(config.read_text() + "\n[limits]\n# mine\nmax_frame_bytes = 65536\n")
    assert run(home, "server", "pin", "--party", "north", "--authority", pub(tmp_path, "north"),
               "--yes").exit_code == 0
    before = files(home)
    replaced = SigningKey.generate().public_key
    with pytest.raises(Exception, match="pinned to another key"):
        pin_authority(home, party="north", key=replaced)
    assert files(home) == before
    assert pin_authority(home, party="north", key=authorities["north"].public_key) is False
    assert pin_authority(home, party="north", key=replaced, replace=True) is True
    loaded = load_config(config, home=home, env={})
    assert PublicKey.from_text(loaded.roster.authorities["north"]) == replaced
    assert loaded.limits.max_frame_bytes == 65536 and "# mine" in config.read_text()


def test_the_descriptor_verifies_and_names_the_pins_and_log_key(
        operator: Path, authorities: dict[str, SigningKey]) -> None:
    record = read_descriptor((operator / "descriptor.json").read_bytes())
    assert record.authority_keys() == {p: k.public_key for p, k in authorities.items()}
    assert record.origin == "hotline.test" and record.servers == ["ws://127.0.0.1:0/v1/ws"]
    wrong = run(operator, "server", "descriptor", "--out", str(operator / "x.json"),
                env={"HOTLINE_LOG_KEY_PASSPHRASE": "wrong"})
    assert wrong.exit_code == 1 and not (operator / "x.json").exists()


def test_join_writes_a_profile_whose_pins_are_the_descriptors(operator: Path, member: Path) -> None:
    descriptor = operator / "descriptor.json"
    done = run(member, "join", str(descriptor), "--as", "alice", "--party", "north",
               *expects(descriptor), env={"HOTLINE_PASSPHRASE": "alice secret"})
    assert done.exit_code == 0, done.output
    assert "next: `hotline" in done.output and "doctor --as alice" in done.output
    profile = Profile.load(member, "alice")
    record = read_descriptor(descriptor.read_bytes())
    assert profile.authorities == record.authority_keys()
    assert profile.log_key is not None and profile.log_key.to_text() == record.log_key
    assert profile.origin == "hotline.test" and profile.party == "north"
    assert profile.key_file == member / "keys" / "alice.pem"
    assert (member / "protocols").is_dir()
    assert sorted(p.name for p in member.rglob("*.pem")) == ["alice.pem"]
    again = run(member, "join", str(descriptor), "--as", "alice", "--party", "north", "--yes",
                env={"HOTLINE_PASSPHRASE": "alice secret"})
    assert again.exit_code == 1 and "--force" in again.output


@pytest.mark.parametrize("wrong", ["north", "log"])
def test_join_with_a_wrong_expected_number_writes_nothing(operator: Path, member: Path,
                                                          wrong: str) -> None:
    descriptor = operator / "descriptor.json"
    args = [a if not a.startswith(f"--expect={wrong}=") else f"--expect={wrong}=1 2 3"
            for a in expects(descriptor)]
    before = files(member)
    done = run(member, "join", str(descriptor), "--as", "alice", "--party", "north", *args,
               env={"HOTLINE_PASSPHRASE": "alice secret"})
    assert done.exit_code == 1 and "join.fingerprint_mismatch" in done.output
    assert files(member) == before


def test_join_refuses_what_is_not_checked_or_not_its_own(operator: Path, member: Path) -> None:
    descriptor = operator / "descriptor.json"
    before = files(member)
    env = {"HOTLINE_PASSPHRASE": "alice secret"}
    partial = run(member, "join", str(descriptor), "--as", "alice", "--party", "north",
                  *expects(descriptor)[:1], env=env)
    assert partial.exit_code == 1 and "no --expect for south" in partial.output
    unconfirmed = run(member, "join", str(descriptor), "--as", "alice", "--party", "north", env=env)
    assert unconfirmed.exit_code == 1 and "not confirmed" in unconfirmed.output
    party = run(member, "join", str(descriptor), "--as", "alice", "--party", "west", "--yes",
                env=env)
    assert party.exit_code == 1 and "no party 'west'" in party.output
    passphrase = run(member, "join", str(descriptor), "--as", "alice", "--party", "north",
                     "--yes", env={"HOTLINE_PASSPHRASE": "wrong"})
    assert passphrase.exit_code == 1 and "crypto.bad_key_file" in passphrase.output
    nokey = run(member, "join", str(descriptor), "--as", "bob", "--party", "north", "--yes")
    assert nokey.exit_code == 1
    assert files(member) == before


def test_join_of_a_tampered_descriptor_is_refused(operator: Path, member: Path,
                                                  tmp_path: Path) -> None:
    value = json.loads((operator / "descriptor.json").read_text())
    value["descriptor"]["servers"] = ["ws://127.0.0.1:9999/v1/ws"]
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(value))
    before = files(member)
    done = run(member, "join", str(tampered), "--as", "alice", "--party", "north", "--yes",
               env={"HOTLINE_PASSPHRASE": "alice secret"})
    assert done.exit_code == 1 and "descriptor.bad_signature" in done.output
    assert files(member) == before


def test_join_copies_a_key_given_elsewhere_into_the_members_home(operator: Path,
                                                                 tmp_path: Path) -> None:
    usb = tmp_path / "usb" / "carol.pem"
    save_private_key(usb, SigningKey.generate())
    home = tmp_path / "carol"
    done = run(home, "join", str(operator / "descriptor.json"), "--as", "carol", "--party",
               "south", "--role", "auditor", "--key", str(usb), "--yes")
    assert done.exit_code == 0, done.output
    assert (home / "keys" / "carol.pem").read_bytes() == usb.read_bytes()
    assert (home / "keys" / "carol.pem").stat().st_mode & 0o777 == 0o600
    assert Profile.load(home, "carol").role == "auditor"


@pytest.mark.slow
def test_serve_runs_on_a_server_new_home(tmp_path: Path, authorities: dict[str, SigningKey]) -> None:
    home = tmp_path / "op"
    assert run(home, "server", "new", "--origin", "hotline.test", "--no-passphrase").exit_code == 0
    assert run(home, "server", "pin", "--party", "north", "--authority", pub(tmp_path, "north"),
               "--yes").exit_code == 0
    process = ServerProcess(home)
    try:
        url = process.start()
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/v1/ws")
    finally:
        process.stop()
