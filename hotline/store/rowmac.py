"""Row MACs: how the server tells the rows it wrote from rows appended to its database file.

Every row the sequencer writes carries HMAC-SHA256(K, "hotline/v1/store-row\\n" || index (8 bytes,
big-endian) || leaf), with K derived by HKDF-SHA256 from the log signing key's private bytes
(info ``hotline/v1/store-row-mac``): only the holder of the log key can write a row that passes.
A checkpoint signed with that key already vouches for the rows below it; at start the rows beyond
the last signed checkpoint (committed, perhaps acknowledged, not yet checkpointed when the server
stopped) must each carry a valid MAC (``hotline.store.integrity``).

State the server saves to start faster (``Store.save_state``) carries HMAC-SHA256(K,
"hotline/v1/store-state\n" || name || "\n" || data): a damaged or planted save is not used.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hotline.keys import SigningKey
from hotline.tlog.note import private_key

ROW_MAC_INFO = b"hotline/v1/store-row-mac"
_ROW_DOMAIN = b"hotline/v1/store-row\n"
_STATE_DOMAIN = b"hotline/v1/store-state\n"


def row_mac_key(key: SigningKey) -> bytes:
    """The row-MAC key of the log whose checkpoints ``key`` signs."""
    raw = private_key(key).private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=ROW_MAC_INFO).derive(raw)


def _hmac(key: bytes, index: int, leaf: bytes) -> hmac.HMAC:
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(_ROW_DOMAIN + index.to_bytes(8, "big") + leaf)
    return h


def row_mac(key: bytes, index: int, leaf: bytes) -> bytes:
    return _hmac(key, index, leaf).finalize()


def row_mac_valid(key: bytes, index: int, leaf: bytes, mac: bytes | None) -> bool:
    """Whether ``mac`` authenticates ``leaf`` at ``index`` (constant-time comparison)."""
    if mac is None:
        return False
    try:
        _hmac(key, index, leaf).verify(mac)
    except InvalidSignature:
        return False
    return True


def state_mac(key: bytes, name: str, data: bytes) -> bytes:
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(_STATE_DOMAIN + name.encode() + b"\n" + data)
    return h.finalize()
