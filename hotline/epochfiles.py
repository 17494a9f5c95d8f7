"""A member's epoch keys on its own machine (docs/ARCHITECTURE.md "Sealed fields"): made one epoch
at a time, kept encrypted under the member's passphrase in ``HOME/keys/epoch/``, published as a
signed ``epoch-key`` document, and deleted once retired, so that a stolen laptop holds the keys
of the epochs not yet retired and never the channel's history."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from hotline.ceremony import create_private, kid8, write_public_new
from hotline.epochkeys import EpochKey, EpochPrivateKey, epoch_start
from hotline.hybrid import MemberSigningKey
from hotline.keys import b64decode
from hotline.publicfiles import read_signed
from hotline.roster import SignedDocument, sign_document

_FILE = re.compile(r"(?P<member>[a-z0-9][a-z0-9._-]{0,63})-(?P<epoch>\d{1,13})\.pem")


@dataclass(frozen=True)
class MadeEpochKey:
    epoch: int
    private: Path  # HOME/keys/epoch/NAME-EPOCH.pem (0600)
    document: Path  # HOME/roster/epoch-NAME-EPOCH-KID8.json, to submit
    signed: SignedDocument


def epoch_folder(home: Path) -> Path:
    return home / "keys" / "epoch"


def make_epoch_key(home: Path, *, party: str, member: str, signer: MemberSigningKey, epoch: int,
                   length: timedelta, passphrase: bytes | None) -> MadeEpochKey:
    """A fresh key for ``epoch``: its private half written (never over an existing one: one key
    per member and epoch), its public document signed by the member's enrolled key."""
    private = EpochPrivateKey.generate()
    doc = private.document(party=party, member=member, epoch=epoch, length=length)
    signed = sign_document(doc, signer)
    path = epoch_folder(home) / f"{member}-{epoch}.pem"
    create_private(path, private, passphrase)
    out = home / "roster" / f"epoch-{member}-{epoch}-{kid8(doc.key_id)}.json"
    write_public_new(out, signed)
    return MadeEpochKey(epoch, path, out, signed)


def retire_epoch_keys(home: Path, *, member: str, now: datetime, length: timedelta,
                      keep_after: timedelta) -> list[int]:
    """Delete ``member``'s epoch private keys whose epoch ended more than ``keep_after`` before
    ``now`` (the longest ack deadline: a message sealed late in an epoch is still read); returns
    the epochs retired. What was read with them stays in the member's local store."""
    retired = []
    folder = epoch_folder(home)
    for path in sorted(folder.glob(f"{member}-*.pem")) if folder.is_dir() else []:
        match = _FILE.fullmatch(path.name)
        if match is None or match["member"] != member:
            continue
        epoch = int(match["epoch"])
        if epoch_start(epoch + 1, length) + keep_after <= now:
            path.unlink()
            retired.append(epoch)
    return retired


def load_epoch_keys(home: Path, *, member: str, passphrase: bytes | None) -> dict[str, EpochPrivateKey]:
    """``member``'s epoch private keys still on this machine, by epoch key id (each matched to
    the public document ``make_epoch_key`` wrote beside it in ``HOME/roster``; a key whose
    document is gone is skipped: nothing names it)."""
    keys: dict[str, EpochPrivateKey] = {}
    folder = epoch_folder(home)
    for path in sorted(folder.glob(f"{member}-*.pem")) if folder.is_dir() else []:
        match = _FILE.fullmatch(path.name)
        if match is None or match["member"] != member:
            continue
        private = EpochPrivateKey.from_pem(path.read_bytes(), passphrase)
        for doc_path in (home / "roster").glob(f"epoch-{member}-{match['epoch']}-*.json"):
            doc = read_signed(doc_path).document
            if isinstance(doc, EpochKey) and b64decode(doc.pub, what="epoch key") == private.public_bytes():
                keys[doc.key_id] = private
    return keys
