"""The key ceremonies of a real deployment (docs/deployment.md), as functions over files.

A member makes its key on its own machine (``new_member_key``) and hands over only the public
file; a party's authority, on its own (ideally offline) machine, makes its key
(``new_authority``), signs enrollments and revocations (``enroll``, ``revoke``) and hands over to
a new key (``rotate``). Nothing here reads the environment or prompts: the passphrase is a
parameter (``hotline.passphrase`` finds it for the command line).

Every document is verified, as a receiver would verify it, against a roster of the authority's
own key before it is returned or written: never sign what you would refuse.
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple, Protocol

from hotline.canonical import dumps, parse
from hotline.errorcodes import Code
from hotline.errors import CryptoError, HotlineError
from hotline.hybrid import HybridSigningKey, MemberKey, MemberSigningKey, signing_key_from_pem
from hotline.keys import Signer, SigningKey, Verifier, same_safety_number
from hotline.names import NAME
from hotline.publicfiles import (
    AuthorityKeyFile,
    MemberKeyFile,
    PublicFile,
    fingerprint,
    read_authority_key,
)
from hotline.roster import (
    DOCUMENT_TYPES,
    Role,
    Roster,
    SignedDocument,
    document_bytes,
    enrollment,
    handover,
    revocation,
    sign_document,
)
from hotline.typed import to_json

KEY_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 (``PublicKey.key_id``)
MAX_REASON = 500  # as the revocation document allows
MAX_PRIVATE_FILE = 64 * 1024  # a PEM key is a few hundred bytes
MAX_VALIDITY = timedelta(days=3653)  # ten years: enroll again rather than for ever
_VALIDITY = re.compile(r"([0-9]{1,6})([ywdhm])")
_UNITS = {"y": timedelta(days=365), "w": timedelta(weeks=1), "d": timedelta(days=1),
          "h": timedelta(hours=1), "m": timedelta(minutes=1)}


class CeremonyError(HotlineError):
    """A ceremony refused before anything was written: it says what to do instead."""

    code = Code.CEREMONY_INVALID


class KeyPaths(NamedTuple):
    private: Path  # HOME/keys/NAME.pem, never leaves its machine
    public: Path  # HOME/keys/NAME.pub.json, handed over


class Rotation(NamedTuple):
    key: MemberSigningKey  # the new authority key, now HOME/keys/authority-P.pem
    handover: SignedDocument  # signed by the old key and the new
    handover_path: Path
    retired_path: Path  # the old private key: destroy it once the handover is logged


def parse_validity(text: str) -> timedelta:
    """``1y`` (365 days), ``2w``, ``90d``, ``12h``, ``30m``: how long an enrollment lasts."""
    match = _VALIDITY.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise CeremonyError(f"{text!r} is not a validity like 1y, 90d, 2w, 12h or 30m")
    delta = int(match[1]) * _UNITS[match[2]]
    if delta > MAX_VALIDITY:
        raise CeremonyError(f"{text!r} is longer than ten years: enroll again when it ends")
    return delta


def key_paths(home: Path, name: str) -> KeyPaths:
    return KeyPaths(home / "keys" / f"{name}.pem", home / "keys" / f"{name}.pub.json")


def authority_name(party: str) -> str:
    """The file name (without suffix) of ``party``'s authority key: ``authority-P``."""
    return f"authority-{party}"


def kid8(key: Verifier | str) -> str:
    """The first 8 characters of a KEY_ID, as file names carry it."""
    return (key if isinstance(key, str) else key.key_id)[:8]


def check_name(name: str, what: str) -> str:
    """A member or party name as the roster takes it (which also keeps it a plain file name)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise CeremonyError(f"{what} {name!r} is not a name: lowercase letters, digits, '.', '_' "
                            "and '-', starting with a letter or digit, at most 64 characters")
    return name


def _check_member_name(name: str) -> str:
    check_name(name, "member name")
    if name == "log" or name.startswith("authority-"):
        raise CeremonyError(f"member name {name!r} is reserved (the log key, a party's authority "
                            "key): choose another")
    return name


def _refuse_existing(paths: KeyPaths, what: str) -> None:
    for path in paths:
        if path.exists() or path.is_symlink():
            raise CeremonyError(f"{path} exists: {what} is never replaced. Use it "
                                f"(`hotline keys show`), or move it away yourself first",
                                code=Code.CEREMONY_KEY_EXISTS)


def _cannot_write(path: Path, exc: OSError) -> CeremonyError:
    return CeremonyError(f"{path}: cannot write it: {exc.strerror or exc}",
                         code=Code.CEREMONY_WRITE_FAILED)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` holding ``data``, never replacing a file there: written to a temporary
    file, synced, then linked into place, so no half-written file ever bears the name (where
    the medium has no hard links, a FAT stick, it is created exclusively and written instead)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        try:
            os.link(temp, path)  # fails if ``path`` exists: the file there stays
        except FileExistsError:
            raise CeremonyError(f"{path} exists: it is never replaced (give another --out, or "
                                "move it away yourself first)", code=Code.CEREMONY_KEY_EXISTS) from None
        except OSError:  # no hard links here
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
    except FileExistsError:
        raise CeremonyError(f"{path} exists: it is never replaced",
                            code=Code.CEREMONY_KEY_EXISTS) from None
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


class PrivateKeyFile(Protocol):
    """A private key that writes its own key file (a signing key, hybrid or not; an epoch key)."""

    def to_pem(self, passphrase: bytes | None = None) -> bytes: ...


def create_private(path: Path, key: PrivateKeyFile, passphrase: bytes | None) -> None:
    """Write ``key`` (PKCS#8 PEM, mode 0600) to ``path``, which must not exist."""
    _write_new(path, key.to_pem(passphrase), 0o600)


def write_public_new(path: Path, record: PublicFile | SignedDocument) -> None:
    """Write a public file (no secret: mode 0644) that must not exist yet."""
    value = record.to_json() if isinstance(record, SignedDocument) else to_json(record)
    _write_new(path, (dumps(value) + "\n").encode(), 0o644)


def read_private(path: Path) -> bytes:
    """A private key file's bytes, bounded (the key itself is checked by ``load_private``)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PRIVATE_FILE + 1)
    except OSError as exc:
        raise CeremonyError(f"{path}: cannot read the key: {exc.strerror}",
                            code=Code.CEREMONY_NO_KEY) from None
    if len(data) > MAX_PRIVATE_FILE:
        raise CryptoError(f"{path}: larger than {MAX_PRIVATE_FILE} bytes: not a key file",
                          code=Code.CRYPTO_BAD_KEY_FILE)
    return data


def is_encrypted(data: bytes) -> bool:
    """Whether a PEM private key needs a passphrase."""
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data


def load_private(path: Path, passphrase: bytes | None) -> SigningKey:
    """The log's key in ``path``: Ed25519 (C2SP signed notes); a wrong or missing passphrase
    is ``crypto.bad_key_file``."""
    key = load_member_private(path, passphrase)
    if not isinstance(key, SigningKey):
        raise CryptoError(f"{path}: the log key is Ed25519 (its ML-DSA-65 key is a file of its "
                          "own, [tlog] mldsa_key); this one is hybrid",
                          code=Code.CRYPTO_UNSUPPORTED_ALG)
    return key


def load_member_private(path: Path, passphrase: bytes | None) -> MemberSigningKey:
    """A member's or an authority's key in ``path``: Ed25519, or hybrid (Ed25519 + ML-DSA-65);
    errors as ``load_private``."""
    data = read_private(path)
    try:
        return signing_key_from_pem(data, passphrase if is_encrypted(data) else None)
    except CryptoError as exc:
        hint = " (wrong passphrase?)" if is_encrypted(data) else ""
        raise CryptoError(f"{path}: {exc.message}{hint}", code=Code.CRYPTO_BAD_KEY_FILE) from None


def _new_key(paths: KeyPaths, record_of: type[MemberKeyFile] | type[AuthorityKeyFile], name: str,
             passphrase: bytes | None, what: str, key: Signer) -> None:
    _refuse_existing(paths, what)
    record: PublicFile = (MemberKeyFile(name=name, key=key.public_key.to_json())
                          if record_of is MemberKeyFile
                          else AuthorityKeyFile(party=name, key=key.public_key.to_json()))
    create_private(paths.private, key, passphrase)  # first: a public file always has its key
    try:
        write_public_new(paths.public, record)
    except CeremonyError:  # the key never left: take it back rather than leave half a ceremony
        paths.private.unlink()
        raise


def new_member_key(home: Path, name: str, passphrase: bytes | None, *,
                   hybrid: bool = False) -> tuple[MemberSigningKey, Path, Path]:
    """A member's signing key, HOME/keys/NAME.pem (0600, encrypted with ``passphrase`` if given),
    and its public file HOME/keys/NAME.pub.json to hand to the party's authority; ``hybrid``: an
    Ed25519 + ML-DSA-65 key (hotline.hybrid). Refused (``ceremony.key_exists``, nothing written)
    if either file exists."""
    paths = key_paths(home, _check_member_name(name))
    key = HybridSigningKey.generate() if hybrid else SigningKey.generate()
    _new_key(paths, MemberKeyFile, name, passphrase, f"{name}'s key", key)
    return key, paths.private, paths.public


def new_authority(home: Path, party: str, passphrase: bytes | None, *,
                  hybrid: bool = False) -> tuple[MemberSigningKey, Path, Path]:
    """Party ``party``'s authority key, HOME/keys/authority-P.pem (0600), and its public file
    HOME/keys/authority-P.pub.json for the other parties and the operator to pin; ``hybrid``:
    Ed25519 + ML-DSA-65, so every roster document and agreement it signs needs both halves.
    Refused (``ceremony.key_exists``, nothing written) if either file exists."""
    paths = key_paths(home, authority_name(check_name(party, "party")))
    key = HybridSigningKey.generate() if hybrid else SigningKey.generate()
    _new_key(paths, AuthorityKeyFile, party, passphrase, f"{party}'s authority key", key)
    return key, paths.private, paths.public


def authority_parties(home: Path) -> list[str]:
    """The parties whose authority key this home holds (HOME/keys/authority-P.pem)."""
    folder = home / "keys"
    if not folder.is_dir():
        return []
    found = (p.name.removesuffix(".pem").removeprefix("authority-")
             for p in folder.glob("authority-*.pem"))
    return sorted(p for p in found if NAME.fullmatch(p) and ".retired-" not in p
                  and ".next-" not in p)


def choose_party(home: Path, party: str | None) -> str:
    """``party`` if given, else the one party whose authority key this home holds."""
    held = authority_parties(home)
    if party is not None:
        if party not in held:
            raise CeremonyError(f"{home}/keys holds no authority key for {party!r} (it holds: "
                                f"{', '.join(held) or 'none'}); make one with `hotline authority "
                                f"new --party {party}`", code=Code.CEREMONY_NO_KEY)
        return party
    if len(held) != 1:
        raise CeremonyError(f"{home}/keys holds {len(held)} authority keys "
                            f"({', '.join(held) or 'none'}): say which with --party",
                            code=Code.CEREMONY_NO_KEY)
    return held[0]


def own_roster(party: str, authority: MemberKey) -> Roster:
    """The roster a receiver who pinned only this authority builds: what it refuses, we do not
    sign."""
    return Roster(authorities={party: authority})


def _checked_in_transit(signed: SignedDocument) -> SignedDocument:
    """The document as a receiver decodes it from the file (catches what would not survive)."""
    return SignedDocument.from_json(parse(dumps(signed.to_json())))


def enroll(authority_key: MemberSigningKey, party: str, member: str, role: Role | str,
           member_key: MemberKey, not_before: datetime, not_after: datetime, *,
           key_name: str | None = None, other_name: bool = False) -> SignedDocument:
    """An enrollment of ``member_key`` as ``member`` of ``party`` in ``role``, signed by
    ``authority_key``, valid from ``not_before`` until ``not_after``.

    ``key_name`` is the name the member's public key file gives: a different name is refused
    (``ceremony.name_mismatch``: the file may be another member's) unless ``other_name`` says
    the authority means it (a member renamed, a file made before the name was agreed).
    """
    check_name(party, "party")
    check_name(member, "member name")
    if key_name is not None and key_name != member and not other_name:
        raise CeremonyError(f"the key file is {key_name}'s, not {member}'s: check you were "
                            "handed the right file (or say you mean it: --other-name)",
                            code=Code.CEREMONY_NAME_MISMATCH)
    try:
        chosen = Role(role)
    except ValueError:
        raise CeremonyError(f"role {role!r} is none of {', '.join(r.value for r in Role)}") from None
    if not_after <= not_before:
        raise CeremonyError(f"the enrollment would end ({not_after.isoformat()}) before it "
                            f"starts ({not_before.isoformat()}): not_after must be later")
    if member_key.key_id == authority_key.key_id:
        raise CeremonyError("that is the authority's own key: an authority enrolls members, it "
                            "is never one")
    doc = enrollment(party=party, member=member, role=chosen, key=member_key,
                     not_before=not_before, not_after=not_after)
    signed = _checked_in_transit(sign_document(doc, authority_key))
    own_roster(party, authority_key.public_key).check(signed)
    return signed


def revoke(authority_key: MemberSigningKey, party: str, member: str, key_id: str, at: datetime,
           reason: str | None) -> SignedDocument:
    """A revocation of ``member``'s key ``key_id`` from ``at`` on, signed by ``authority_key``:
    what the key signed before ``at`` stays valid, anything at or after it is refused."""
    check_name(party, "party")
    check_name(member, "member name")
    if not KEY_ID.fullmatch(key_id):
        raise CeremonyError(f"{key_id!r} is not a KEY_ID (43 characters, as `hotline keys show` "
                            "or `hotline roster show` print it)")
    if key_id == authority_key.key_id:
        raise CeremonyError("that is the authority's own key: to replace it, `hotline authority "
                            "rotate`")
    if reason is not None and len(reason) > MAX_REASON:
        raise CeremonyError(f"the reason is longer than {MAX_REASON} characters")
    doc = revocation(party=party, member=member, key_id=key_id, revoked_at=at, reason=reason)
    signed = _checked_in_transit(sign_document(doc, authority_key))
    # A roster refuses a revocation of a key it has not seen enrolled; the signature is what we
    # can check here, as the receiver will.
    authority_key.public_key.verify_canonical(domain=DOCUMENT_TYPES["revocation"],
                                              canonical=document_bytes(signed.document),
                                              signature=signed.sigs[0])
    return signed


def _pending(home: Path, party: str) -> list[Path]:
    return sorted((home / "keys").glob(f"{authority_name(party)}.next-*"))


def rotate(home: Path, party: str, passphrase: bytes | None, now: datetime, *,
           out: Path | None = None, hybrid: bool | None = None) -> Rotation:
    """Hand ``party``'s authority over to a new key (the new key encrypted with the same
    ``passphrase``; hybrid if ``hybrid``, or when None if the old one is: an authority moves to
    post-quantum signatures by a rotation); the handover is signed by both keys and written to
    ``out`` (default HOME/roster/handover-P-<new kid8>.json).

    Crash-safe order: the new key and its public file under ``.next-`` names, then the handover
    file; only then the old private key is moved to ``authority-P.retired-<old kid8>.pem`` and
    the new files renamed into place. An interrupted rotation is refused on the next try
    (``ceremony.key_exists``), naming the files to finish it by hand.
    """
    check_name(party, "party")
    paths = key_paths(home, authority_name(party))
    pending = _pending(home, party)
    if pending:
        raise CeremonyError(f"an earlier rotation of {party} was interrupted "
                            f"({', '.join(str(p) for p in pending)}): if its handover file "
                            "exists, finish it by moving the old key to .retired- and the .next- "
                            "files into place; else delete the .next- files and rotate again",
                            code=Code.CEREMONY_KEY_EXISTS)
    old = load_member_private(paths.private, passphrase)
    if paths.public.exists():
        pinned = read_authority_key(paths.public)
        if pinned.public_key.key_id != old.key_id or pinned.party != party:
            raise CeremonyError(f"{paths.public} is not the public file of {paths.private}: "
                                "which is your authority key? Fix that first",
                                code=Code.CEREMONY_SAFETY_MISMATCH)
    if hybrid is None:
        hybrid = isinstance(old, HybridSigningKey)
    new = HybridSigningKey.generate() if hybrid else SigningKey.generate()
    doc = handover(party=party, old=old.public_key, new=new.public_key, at=now)
    signed = _checked_in_transit(sign_document(doc, old, new))
    own_roster(party, old.public_key).check(signed)

    target = out or home / "roster" / f"handover-{party}-{kid8(new.public_key)}.json"
    retired = paths.private.with_name(f"{authority_name(party)}.retired-{kid8(old.public_key)}.pem")
    if target.exists() or retired.exists():
        raise CeremonyError(f"{target if target.exists() else retired} exists: not replaced",
                            code=Code.CEREMONY_KEY_EXISTS)
    stem = f"{authority_name(party)}.next-{kid8(new.public_key)}"
    next_private, next_public = home / "keys" / f"{stem}.pem", home / "keys" / f"{stem}.pub.json"
    try:
        create_private(next_private, new, passphrase)
        write_public_new(next_public, AuthorityKeyFile(party=party, key=new.public_key.to_json()))
        write_public_new(target, signed)
    except CeremonyError:  # the handover never left: the new key signed nothing that counts
        for path in (next_private, next_public):
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    # From here the handover exists: the new key must survive whatever happens.
    _write_new(retired, read_private(paths.private), 0o600)  # the old key, kept first
    try:
        os.replace(next_private, paths.private)
        os.replace(next_public, paths.public)
    except OSError as exc:
        raise _cannot_write(paths.private, exc) from None
    return Rotation(new, signed, target, retired)


def check_safety(key: Verifier, expected: str, what: str) -> None:
    """Refuse (``ceremony.safety_mismatch``) unless ``expected`` is ``key``'s safety number
    (spaces and dashes ignored, as a person types it)."""
    if not same_safety_number(expected, fingerprint(key)):
        raise CeremonyError(f"{what}'s safety number is {fingerprint(key)}, not the {expected!r} "
                            "you were given: do not use this file; ask for it again and compare "
                            "by voice or in person", code=Code.CEREMONY_SAFETY_MISMATCH)
