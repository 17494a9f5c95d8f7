"""A member's local store of what it has read from sealed fields, encrypted at rest under its
passphrase (docs/ARCHITECTURE.md "Sealed fields"): once an epoch key is retired, this store is
the only place its fields can still be read, and only with the passphrase.

The file is ``hotline-readstore-v1`` || salt (16 bytes) || nonce (12 bytes) || ChaCha20-Poly1305
ciphertext of the JSON ``{"entries": {envelope id: {field: disclosure}}}``, under a key derived
from the passphrase with scrypt (RFC 7914; n=2^15, r=8, p=1), the header as associated data. The
key is derived once per store opened (scrypt is slow on purpose: a guesser pays it per guess, a
member once per session); each save draws a new nonce (96 random bits) under it and replaces the
file whole (written beside it, synced, renamed).
Disclosures are kept as they were sealed, so each can still be checked against its logged digest.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from hotline.canonical import canonical_bytes, parse
from hotline.errorcodes import Code
from hotline.errors import HotlineError, SealError
from hotline.sealing import Disclosure

MAGIC = b"hotline-readstore-v1\n"
SALT_BYTES = 16
NONCE_BYTES = 12
SCRYPT_N = 2**15
MAX_FILE = 256 * 1024 * 1024


def _key(passphrase: bytes, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=8, p=1).derive(passphrase)


class ReadStore:
    """What one member has read, by envelope id then field (``Disclosure`` objects)."""

    def __init__(self, path: Path, passphrase: bytes) -> None:
        if not passphrase:
            raise SealError("the read store is encrypted under a passphrase: give one",
                            code=Code.SEAL_INVALID)
        self.path, self._passphrase = path, passphrase
        self.entries: dict[str, dict[str, Disclosure]] = {}
        self._salt = b""  # and the key derived from it: set by ``open`` or the first ``save``
        self._key = b""

    @classmethod
    def open(cls, path: Path, passphrase: bytes) -> ReadStore:
        """The store in ``path`` (empty if there is none yet).

        Raises:
            SealError: ``seal.cannot_open`` for a wrong passphrase or an altered file,
                ``seal.invalid`` for a file that is not a read store.
        """
        store = cls(path, passphrase)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return store
        if len(data) > MAX_FILE or not data.startswith(MAGIC) or len(data) < len(MAGIC) + 28 + 16:
            raise SealError(f"{path} is not a hotline read store", code=Code.SEAL_INVALID)
        salt = data[len(MAGIC):len(MAGIC) + SALT_BYTES]
        nonce = data[len(MAGIC) + SALT_BYTES:len(MAGIC) + SALT_BYTES + NONCE_BYTES]
        header = data[:len(MAGIC) + SALT_BYTES + NONCE_BYTES]
        key = _key(passphrase, salt)
        try:
            plain = ChaCha20Poly1305(key).decrypt(nonce, data[len(header):], header)
        except InvalidTag as exc:
            raise SealError(f"{path} does not open: a wrong passphrase, or the file was altered",
                            code=Code.SEAL_CANNOT_OPEN) from exc
        try:
            value = parse(plain)
            entries = value["entries"]
            store.entries = {ref: {name: Disclosure.from_encoded(text) for name, text in fields.items()}
                             for ref, fields in entries.items()}
        except (HotlineError, KeyError, TypeError, AttributeError) as exc:
            raise SealError(f"{path} holds no read store", code=Code.SEAL_INVALID) from exc
        store._salt, store._key, store._passphrase = salt, key, b""
        return store

    def add(self, ref: str, opened: dict[str, Disclosure]) -> None:
        """Keep the fields opened from envelope ``ref`` (call ``save`` to write them)."""
        self.entries.setdefault(ref, {}).update(opened)

    def save(self) -> None:
        """Encrypt and write the whole store (mode 0600), replacing the file at once."""
        if not self._key:  # a new store: its salt and key, once
            self._salt = os.urandom(SALT_BYTES)
            self._key, self._passphrase = _key(self._passphrase, self._salt), b""
        nonce = os.urandom(NONCE_BYTES)
        header = MAGIC + self._salt + nonce
        plain = canonical_bytes({"entries": {ref: {name: d.encoded for name, d in fields.items()}
                                             for ref, fields in self.entries.items()}})
        data = header + ChaCha20Poly1305(self._key).encrypt(nonce, plain, header)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
