"""Joining a deployment (docs/deployment.md): a member's profile made from the operator's signed
descriptor, after the member compared every fingerprint with the parties and the operator out
of band. Explicit arguments only: the CLI (``hotline join``) prompts and reads the environment.

Everything is checked before anything is written: a mismatch, an unknown party, an unloadable
key or an existing profile leaves the home as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hotline.client.profile import Profile, write_profile
from hotline.descriptor import Descriptor, fingerprints
from hotline.errorcodes import Code
from hotline.errors import HotlineError
from hotline.keyfiles import load_member_key
from hotline.keys import safety_number, same_safety_number
from hotline.names import NAME
from hotline.norms.files import install_templates
from hotline.privatefiles import private_folder, write_private_atomically
from hotline.roster import Role

LOG = "log"  # the name --expect gives the log key's safety number
CA_FILE = "tls/ca.pem"


class JoinRefused(HotlineError):
    """Joining refused before anything was written (``join.refused``,
    ``join.fingerprint_mismatch``)."""

    code = Code.JOIN_REFUSED


@dataclass(frozen=True)
class Joined:
    profile: Path
    key: Path
    safety_number: str  # the member's own key, to read out to the party's authority


def check_expected(descriptor: Descriptor, expect: Mapping[str, str]) -> None:
    """Compare the descriptor's fingerprints with those the member was given out of band:
    every party's (the log key's too when given); a name that is neither is refused, as a
    typo must not pass for a check.

    Raises:
        JoinRefused: ``join.fingerprint_mismatch`` on a difference or a party not checked.
    """
    prints = fingerprints(descriptor)
    unknown = sorted(set(expect) - set(prints.authorities) - {LOG})
    if unknown:
        raise JoinRefused(f"--expect names {', '.join(unknown)}, which the descriptor does not "
                          f"(its parties: {', '.join(prints.authorities)}; and {LOG!r})",
                          code=Code.JOIN_FINGERPRINT_MISMATCH)
    missing = [p for p in prints.authorities if p not in expect]
    if missing:
        raise JoinRefused(f"no --expect for {', '.join(missing)}: compare every party's "
                          "authority fingerprint, or confirm interactively",
                          code=Code.JOIN_FINGERPRINT_MISMATCH)
    actual = {**prints.authorities, LOG: prints.log}
    wrong = [who for who, number in expect.items() if not same_safety_number(number, actual[who])]
    if wrong:
        raise JoinRefused(
            f"the fingerprint of {', '.join(wrong)} is not the one expected: this descriptor "
            "names another key. Do not join; ask the operator and the party, over another "
            "channel", code=Code.JOIN_FINGERPRINT_MISMATCH)


def join_profile(home: Path, *, descriptor: Descriptor, name: str, party: str, role: Role,
                 key_file: Path | None = None, passphrase: bytes | None = None,
                 expect: Mapping[str, str] | None = None, force: bool = False) -> Joined:
    """Write ``HOME/profiles/NAME.toml`` for ``descriptor`` (verified by the caller with
    ``verify_descriptor``), its TLS CA as ``HOME/tls/ca.pem`` and ``HOME/protocols`` if absent.

    The key is ``key_file`` (default ``HOME/keys/NAME.pem``), opened with ``passphrase`` to be
    sure it is usable; one elsewhere is copied as it is (still encrypted) to
    ``HOME/keys/NAME.pem``, so the home is the member's whole setup.

    Raises:
        JoinRefused: a bad name, a party the descriptor does not name, an existing profile or
            CA without ``force``, a different key already at ``HOME/keys/NAME.pem``, or
            ``expect`` not matching (``join.fingerprint_mismatch``).
        ConfigError, CryptoError: the key cannot be read or opened.
    """
    for what, value in (("--as", name), ("--party", party)):
        if not NAME.fullmatch(value):
            raise JoinRefused(f"{what} {value!r} must match {NAME.pattern}")
    if party not in descriptor.authorities:
        raise JoinRefused(f"the descriptor names no party {party!r} (its parties: "
                          f"{', '.join(sorted(descriptor.authorities))})")
    if expect is not None:
        check_expected(descriptor, expect)
    profile = home / "profiles" / f"{name}.toml"
    if profile.exists() and not force:
        raise JoinRefused(f"{profile} exists: give --force to replace it")
    dest = home / "keys" / f"{name}.pem"
    source = key_file or dest
    key = load_member_key(source, passphrase)
    data = source.read_bytes()
    copy = source.resolve() != dest.resolve()
    if copy and dest.exists() and dest.read_bytes() != data:
        raise JoinRefused(f"{dest} holds another key: give that one with --key, or move it away")
    ca_text = None if descriptor.ca_certificate() is None else str(descriptor.tls_ca)
    ca_path = home / CA_FILE
    if ca_text is not None and ca_path.exists() and ca_path.read_text() != ca_text and not force:
        raise JoinRefused(f"{ca_path} holds another CA: give --force to replace it")

    private_folder(home)
    if copy:
        write_private_atomically(dest, data)
    if ca_text is not None:
        ca_path.parent.mkdir(parents=True, exist_ok=True)
        ca_path.write_text(ca_text, encoding="ascii")
    if not (home / "protocols").exists():
        install_templates(home / "protocols")
    write_profile(home, name=name, party=party, role=role, servers=list(descriptor.servers),
                  origin=descriptor.origin, authorities=dict(descriptor.authorities),
                  log_key=descriptor.log_key, tls_ca=CA_FILE if ca_text is not None else None,
                  written_by="hotline join", log_key_mldsa=descriptor.mldsa_log_key)
    Profile.load(home, name)  # what was written reads back
    return Joined(profile=profile, key=dest, safety_number=safety_number(key.key_id))
