"""The public files that travel between the machines of a real deployment (docs/deployment.md):
a member's public key (``hotline keys new``) and a party authority's (``hotline authority new``).

Each is a small JSON object naming whose key it is. They hold nothing secret: they go by email,
USB or courier, and their owner reads the safety number out so the receiver can compare it
(``hotline.keys.safety_number``). A signed roster document travels as a file too
(``read_signed``), checked by whoever receives it against their own pins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from hotline.canonical import dumps, parse
from hotline.errorcodes import Code
from hotline.errors import ConfigError, CryptoError, HotlineError
from hotline.hybrid import MemberKey, member_key_from_json
from hotline.keys import PublicKeyJSON, Verifier, safety_number
from hotline.names import Name
from hotline.roster import SignedDocument
from hotline.typed import convert, to_json

MAX_PUBLIC_FILE = 16 * 1024  # a key file is a few hundred bytes
MAX_SIGNED_FILE = 1024 * 1024  # as the server takes a roster document


class BadPublicFile(ConfigError):
    """A public key file or signed document file that is not one (or not the kind expected)."""

    code = Code.KEYS_BAD_PUBLIC_FILE


class MemberKeyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
                    tag_field="type", tag="member-key"):
    """A member's public key, as its owner hands it to the party's authority."""

    name: Name
    key: PublicKeyJSON  # Ed25519, or hybrid (``hotline.hybrid.member_key_from_json``)

    @property
    def public_key(self) -> MemberKey:
        return member_key_from_json(self.key)


class AuthorityKeyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
                       tag_field="type", tag="authority-key"):
    """A party authority's public key, as the party hands it to the other parties and the host."""

    party: Name
    key: PublicKeyJSON  # Ed25519, or hybrid (``authority new --hybrid``)

    @property
    def public_key(self) -> MemberKey:
        return member_key_from_json(self.key)


PublicFile = MemberKeyFile | AuthorityKeyFile


def fingerprint(key: Verifier) -> str:
    """What a person reads out for one key: its safety number."""
    return safety_number(key.key_id)


def write_public(path: Path, record: PublicFile | SignedDocument) -> None:
    """Write a public file (world-readable is fine: it holds no secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    value = record.to_json() if isinstance(record, SignedDocument) else to_json(record)
    path.write_text(dumps(value) + "\n", encoding="utf-8")


def _read_json(path: Path, limit: int) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadPublicFile(f"cannot read it: {exc.strerror}", file=str(path)) from None
    if len(data) > limit:
        raise BadPublicFile(f"larger than {limit} bytes: not a hotline file", file=str(path))
    try:
        return parse(data)
    except HotlineError as exc:
        raise BadPublicFile(f"not strict JSON ({exc.message})", file=str(path)) from None


def _read_public(path: Path, kind: type[MemberKeyFile] | type[AuthorityKeyFile],
                 what: str) -> Any:
    value = _read_json(path, MAX_PUBLIC_FILE)
    found = value.get("type") if isinstance(value, dict) else None
    if found != kind.__struct_config__.tag:
        hint = {"member-key": "a member's public key (`hotline keys new`)",
                "authority-key": "an authority's public key (`hotline authority new`)"}
        held = hint.get(found, "no hotline public key") if isinstance(found, str) else \
            "no hotline public key"
        raise BadPublicFile(f"holds {held}, not {what}", file=str(path))
    record = convert(value, kind, what=what, code=Code.KEYS_BAD_PUBLIC_FILE, error=BadPublicFile)
    try:
        record.public_key  # noqa: B018 - checks the key's form
    except CryptoError as exc:
        raise BadPublicFile(f"key: {exc.message}", file=str(path)) from None
    return record


def read_member_key(path: Path) -> MemberKeyFile:
    """A member's public key file; else BadPublicFile (``keys.bad_public_file``)."""
    record: MemberKeyFile = _read_public(path, MemberKeyFile, "a member's public key")
    return record


def read_authority_key(path: Path) -> AuthorityKeyFile:
    """An authority's public key file; else BadPublicFile (``keys.bad_public_file``)."""
    record: AuthorityKeyFile = _read_public(path, AuthorityKeyFile, "an authority's public key")
    return record


def read_signed(path: Path) -> SignedDocument:
    """A signed roster document file (its form checked, not its signatures: those are checked
    against the reader's own pins); else BadPublicFile."""
    value = _read_json(path, MAX_SIGNED_FILE)
    try:
        return SignedDocument.from_json(value)
    except HotlineError as exc:
        raise BadPublicFile(exc.message, file=str(path)) from None
