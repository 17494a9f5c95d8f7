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
from hotline.keys import Signer, b64decode
from hotline.publicfiles import read_signed
from hotline.roster import SignedDocument, sign_document

_FILE = re.compile(r"(?P<member>[a-z0-9][a-z0-9._-]{0,63})-(?P<hours>\d{1,3})h-(?P<epoch>\d{1,13})\.pem")


@dataclass(frozen=True)
class MadeEpochKey:
    epoch: int
    private: Path  # HOME/keys/epoch/NAME-HOURSh-EPOCH.pem (0600)
    document: Path  # HOME/roster/epoch-NAME-HOURSh-EPOCH-KID8.json, to submit
    signed: SignedDocument


def epoch_folder(home: Path) -> Path:
    return home / "keys" / "epoch"


def _stem(member: str, epoch: int, length: timedelta) -> str:
    """``NAME-HOURSh-EPOCH``: epochs of different lengths are numbered apart."""
    return f"{member}-{int(length.total_seconds()) // 3600}h-{epoch}"


def private_path(home: Path, member: str, epoch: int, length: timedelta) -> Path:
    return epoch_folder(home) / f"{_stem(member, epoch, length)}.pem"


def document_paths(home: Path, member: str, epoch: int, length: timedelta) -> list[Path]:
    """The public documents ``make_epoch_key`` wrote for that key (one, unless copied)."""
    return sorted((home / "roster").glob(f"epoch-{_stem(member, epoch, length)}-*.json"))


def make_epoch_key(home: Path, *, party: str, member: str, signer: Signer, epoch: int,
                   length: timedelta, passphrase: bytes | None) -> MadeEpochKey:
    """A fresh key for ``epoch``: its private half written (never over an existing one: one key
    per member and epoch), its public document signed by the member's enrolled key."""
    private = EpochPrivateKey.generate()
    doc = private.document(party=party, member=member, epoch=epoch, length=length)
    signed = sign_document(doc, signer)
    path = private_path(home, member, epoch, length)
    create_private(path, private, passphrase)
    out = home / "roster" / f"epoch-{_stem(member, epoch, length)}-{kid8(doc.key_id)}.json"
    write_public_new(out, signed)
    return MadeEpochKey(epoch, path, out, signed)


def _held(home: Path, member: str) -> list[tuple[Path, int, timedelta]]:
    """``member``'s private epoch key files here: (path, epoch, length)."""
    folder = epoch_folder(home)
    found = []
    for path in sorted(folder.glob(f"{member}-*.pem")) if folder.is_dir() else []:
        match = _FILE.fullmatch(path.name)
        if match is not None and match["member"] == member and int(match["hours"]) > 0:
            found.append((path, int(match["epoch"]), timedelta(hours=int(match["hours"]))))
    return found


def retire_epoch_keys(home: Path, *, member: str, now: datetime, keep_after: timedelta) -> list[int]:
    """Delete ``member``'s epoch private keys whose epoch (of the length each file names) ended
    more than ``keep_after`` before ``now`` (the longest ack deadline: a message sealed late in
    an epoch is still read); returns the epochs retired. What was read with them stays in the
    member's local store."""
    retired = []
    for path, epoch, length in _held(home, member):
        if epoch_start(epoch + 1, length) + keep_after <= now:
            path.unlink()
            retired.append(epoch)
    return retired


def load_epoch_keys(home: Path, *, member: str, passphrase: bytes | None) -> dict[str, EpochPrivateKey]:
    """``member``'s epoch private keys still on this machine, by epoch key id (each matched to
    the public document ``make_epoch_key`` wrote beside it in ``HOME/roster``; a key whose
    document is gone is skipped: nothing names it)."""
    keys: dict[str, EpochPrivateKey] = {}
    for path, epoch, length in _held(home, member):
        private = EpochPrivateKey.from_pem(path.read_bytes(), passphrase)
        for doc_path in document_paths(home, member, epoch, length):
            doc = read_signed(doc_path).document
            if isinstance(doc, EpochKey) and b64decode(doc.pub, what="epoch key") == private.public_bytes():
                keys[doc.key_id] = private
    return keys
