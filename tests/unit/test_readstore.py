"""hotline.readstore: what a member read from sealed fields, encrypted at rest under its
passphrase (scrypt + ChaCha20-Poly1305): readable with the passphrase, nothing without it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hotline.errors import SealError
from hotline.readstore import MAGIC, ReadStore
from hotline.sealing import Disclosure

MARKER = "MARKER-readstore-41d2"
OPENED = {"note": Disclosure(bytes(16), "note", MARKER), "when": Disclosure(bytes([1]) * 16, "when", 4)}


def saved(path: Path, passphrase: bytes = b"bob pw") -> ReadStore:
    store = ReadStore.open(path, passphrase)
    store.add("A" * 22, OPENED)
    store.save()
    return store


def test_what_was_read_comes_back_with_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "state" / "bob.read"
    assert ReadStore.open(path, b"bob pw").entries == {}  # none yet
    saved(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data.startswith(MAGIC) and MARKER.encode() not in data
    again = ReadStore.open(path, b"bob pw")
    assert again.entries == {"A" * 22: OPENED}
    again.add("B" * 22, {"note": OPENED["note"]})
    again.save()
    assert set(ReadStore.open(path, b"bob pw").entries) == {"A" * 22, "B" * 22}
    assert path.read_bytes()[len(MAGIC):len(MAGIC) + 28] != data[len(MAGIC):len(MAGIC) + 28]  # new salt


def test_without_the_passphrase_or_with_an_altered_file_nothing_opens(tmp_path: Path) -> None:
    path = tmp_path / "bob.read"
    saved(path)
    with pytest.raises(SealError) as err:
        ReadStore.open(path, b"wrong")
    assert err.value.code == "seal.cannot_open"
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SealError) as err:
        ReadStore.open(path, b"bob pw")
    assert err.value.code == "seal.cannot_open"
    for junk in (b"", b"not a store", MAGIC + b"x" * 10):
        path.write_bytes(junk)
        with pytest.raises(SealError) as err:
            ReadStore.open(path, b"bob pw")
        assert err.value.code == "seal.invalid"
    with pytest.raises(SealError):
        ReadStore(path, b"")
