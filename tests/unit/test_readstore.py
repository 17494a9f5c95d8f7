"""hotline.readstore: what a member read from sealed fields, encrypted at rest under its
passphrase (scrypt + ChaCha20-Poly1305): readable with the passphrase, nothing without it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hotline import readstore
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
    salt = slice(len(MAGIC), len(MAGIC) + 16)
    nonce = slice(len(MAGIC) + 16, len(MAGIC) + 28)
    assert path.read_bytes()[salt] == data[salt] and path.read_bytes()[nonce] != data[nonce]


def test_scrypt_runs_once_per_store_not_per_save(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A member who reads a hundred sealed messages in a session pays scrypt once (on opening
    its store), not once per message: each save draws a new nonce under the same key."""
    calls = []
    real = readstore._key

    def counted(passphrase: bytes, salt: bytes) -> bytes:
        calls.append(salt)
        return real(passphrase, salt)
    monkeypatch.setattr(readstore, "_key", counted)
    path = tmp_path / "bob.read"
    store = ReadStore.open(path, b"bob pw")
    for n in range(5):
        store.add(f"{n:022d}", OPENED)
        store.save()
    assert len(calls) == 1  # the first save of a new store
    reopened = ReadStore.open(path, b"bob pw")
    reopened.add("Z" * 22, OPENED)
    reopened.save()
    assert len(calls) == 2 and calls[0] == calls[1]  # the opening; the save reuses its key
    assert len(ReadStore.open(path, b"bob pw").entries) == 6


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
