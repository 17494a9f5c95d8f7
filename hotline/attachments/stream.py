"""A sealed attachment's content, encrypted in chunks that each open on their own. Pure.

Theory of operation: the content is encrypted under a fresh 256-bit key with the STREAM
construction (Hoang, Reyhanitabar, Rogaway and Vizár, "Online Authenticated-Encryption and its
Nonce-Reuse Misuse-Resistance", CRYPTO 2015) exactly as age lays out its payload
(age-encryption.org/v1): ChaCha20-Poly1305 (RFC 8439) over chunks of ``CHUNK`` bytes, each
chunk's nonce its 88-bit big-endian counter followed by a flag byte, 1 on the last chunk and 0
on every other. So a chunk that is altered, moved, dropped or repeated, or a stream cut after any
chunk but the last, does not open. One key seals one stream, so the counter never repeats under
a key. The associated data (``stream_aad``) binds every chunk to the attachment's place: the
channel, the envelope, the field and the attachment's position in it, so a stream moved to
another attachment does not open either.

The bytes the server stores, moves and names by SHA-256 are the sealed chunks back to back:
every chunk is ``SEALED_CHUNK`` bytes but the last, which holds the rest (a tag at least). A
reader who holds the key opens them one by one as they arrive (``ChunkOpener``), so a download
cut by a lost line resumes after the last chunk that opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from hotline.canonical import canonical_bytes
from hotline.errorcodes import Code
from hotline.errors import SealError
from hotline.names import ENVELOPE_ID, NAME

CHUNK = 64 * 1024  # plaintext bytes a chunk holds, all but the last (age's)
TAG = 16  # Poly1305
SEALED_CHUNK = CHUNK + TAG
KEY_BYTES = 32
AAD_PREFIX = b"hotline/v1/attachment-stream\n"
MAX_CHUNKS = 1 << 32  # far beyond any size an agreement allows; the counter has 88 bits


def new_key() -> bytes:
    """A fresh stream key (one key seals one stream)."""
    return ChaCha20Poly1305.generate_key()


@dataclass(frozen=True)
class StreamPlace:
    """Where a sealed attachment belongs: what every chunk of it is bound to."""

    channel: str
    envelope: str
    field: str
    position: int  # the attachment's index among the field's attachments

    def __post_init__(self) -> None:
        if (not NAME.fullmatch(self.channel) or not ENVELOPE_ID.fullmatch(self.envelope)
                or not NAME.fullmatch(self.field) or not 0 <= self.position < 1024):
            raise SealError("an attachment's place is a channel name, an envelope id, a field "
                            "name and a position from 0 to 1023", code=Code.SEAL_INVALID)

    def aad(self) -> bytes:
        return AAD_PREFIX + canonical_bytes({"channel": self.channel, "envelope": self.envelope,
                                             "field": self.field, "position": self.position})


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def sealed_size(plain_size: int) -> int:
    """The size of the sealed stream of ``plain_size`` bytes (at least one chunk, maybe empty)."""
    if plain_size < 0:
        raise ValueError("a size is not negative")
    chunks = max(1, -(-plain_size // CHUNK))
    return plain_size + chunks * TAG


def chunk_count(size: int) -> int:
    """How many chunks a sealed stream of ``size`` bytes holds.

    Raises:
        SealError: ``attachment.cannot_open``: no stream seals to that size (a cut stream).
    """
    chunks = max(1, -(-size // SEALED_CHUNK))
    last = size - (chunks - 1) * SEALED_CHUNK
    if size < TAG or last < TAG or (last == TAG and chunks > 1) or chunks > MAX_CHUNKS:
        raise SealError(f"no sealed attachment is {size} bytes long: it was cut or padded",
                        code=Code.ATTACHMENT_CANNOT_OPEN)
    return chunks


def seal_stream(read: Callable[[int], bytes], key: bytes, place: StreamPlace) -> Iterator[bytes]:
    """The sealed chunks of what ``read(n)`` gives (a file's ``read``: at most ``n`` bytes, and
    ``b""`` at its end), one chunk in memory at a time, plus the next one read ahead to know
    which chunk is the last."""
    aead, aad = ChaCha20Poly1305(key), place.aad()
    chunk, index = _read_full(read), 0
    while True:
        following = _read_full(read) if len(chunk) == CHUNK else b""
        last = not following
        yield aead.encrypt(_nonce(index, last), chunk, aad)
        if last:
            return
        chunk, index = following, index + 1


def _read_full(read: Callable[[int], bytes]) -> bytes:
    """Up to ``CHUNK`` bytes: fewer only at the end of the content."""
    parts, wanted = [], CHUNK
    while wanted:
        part = read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)


class ChunkOpener:
    """A reader's side of one sealed stream of ``size`` bytes (from the signed reference):
    opens its chunks in order, from any chunk a download resumes at."""

    def __init__(self, key: bytes, place: StreamPlace, size: int) -> None:
        if len(key) != KEY_BYTES:
            raise SealError(f"an attachment key is {KEY_BYTES} bytes", code=Code.SEAL_INVALID)
        self._aead, self._aad, self.place = ChaCha20Poly1305(key), place.aad(), place
        self.chunks = chunk_count(size)
        self.size = size

    def span(self, index: int) -> tuple[int, int]:
        """The byte range ``[start, end)`` of chunk ``index`` in the stream."""
        if not 0 <= index < self.chunks:
            raise SealError(f"the attachment has no chunk {index}", code=Code.ATTACHMENT_CANNOT_OPEN)
        start = index * SEALED_CHUNK
        return start, min(start + SEALED_CHUNK, self.size)

    def open(self, index: int, sealed: bytes) -> bytes:
        """The plaintext of chunk ``index``.

        Raises:
            SealError: ``attachment.cannot_open`` naming the chunk: not its length, or it does
                not open there (altered, moved from another chunk or attachment, another key).
        """
        start, end = self.span(index)
        if len(sealed) != end - start:
            raise SealError(f"chunk {index} of attachment {self.place.position} of field "
                            f"{self.place.field} is {len(sealed)} bytes, not {end - start}",
                            code=Code.ATTACHMENT_CANNOT_OPEN)
        try:
            return self._aead.decrypt(_nonce(index, index == self.chunks - 1), sealed, self._aad)
        except InvalidTag:
            raise SealError(f"chunk {index} of attachment {self.place.position} of field "
                            f"{self.place.field} does not open: altered, moved from elsewhere, or "
                            "sealed with another key", code=Code.ATTACHMENT_CANNOT_OPEN) from None
