"""Private key files: PKCS#8 PEM, mode 0600, passphrase-encrypted when a passphrase is given."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from hotline.errors import ConfigError, CryptoError
from hotline.hybrid import MemberSigningKey, signing_key_from_pem
from hotline.keys import Signer, SigningKey, load_private_pem, private_pem


def save_private_key(path: Path, key: Signer | MLDSA65PrivateKey, passphrase: bytes | None = None) -> None:
    """Write a PKCS#8 PEM readable by the owner only (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem([key], passphrase) if isinstance(key, MLDSA65PrivateKey)
                     else key.to_pem(passphrase))
    os.chmod(path, 0o600)


def load_private_key(path: Path, passphrase: bytes | None = None) -> SigningKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key file: {exc.strerror}", file=str(path)) from exc
    return SigningKey.from_pem(data, passphrase)


def load_member_key(path: Path, passphrase: bytes | None = None) -> MemberSigningKey:
    """A member's key file: Ed25519, or Ed25519 + ML-DSA-65 (``hotline keys new --hybrid``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key file: {exc.strerror}", file=str(path)) from exc
    return signing_key_from_pem(data, passphrase)


def _log_passphrase() -> bytes | None:
    value = os.environ.get("HOTLINE_LOG_KEY_PASSPHRASE") or os.environ.get("HOTLINE_PASSPHRASE")
    return value.encode() if value else None


def load_log_key(path: Path) -> SigningKey:
    """The log key, opened with ``HOTLINE_LOG_KEY_PASSPHRASE`` if set, else ``HOTLINE_PASSPHRASE``
    (the server, backup and restore all read it so)."""
    return load_private_key(path, _log_passphrase())


def load_mldsa_log_key(path: Path) -> MLDSA65PrivateKey:
    """The log's ML-DSA-65 key (``[tlog] mldsa_key``), opened as the log key is."""
    try:
        keys = load_private_pem(path.read_bytes(), _log_passphrase(), what="the ML-DSA-65 log key")
    except OSError as exc:
        raise ConfigError(f"cannot read key file: {exc.strerror}", file=str(path)) from exc
    except CryptoError as exc:
        raise ConfigError(exc.message, file=str(path)) from exc
    key = keys[0] if len(keys) == 1 else None
    if not isinstance(key, MLDSA65PrivateKey):
        raise ConfigError("not an ML-DSA-65 key ([tlog] mldsa_key)", file=str(path))
    return key
