"""Issue 19: a sealed attachment's content in chunks (STREAM, as age lays it out). Every chunk
opens only at its own place, in its own attachment, under its key; a stream altered, reordered,
cut or extended does not open; sealing holds at most two chunks in memory."""

from __future__ import annotations

import io

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.attachments.stream import (
    CHUNK,
    SEALED_CHUNK,
    TAG,
    ChunkOpener,
    StreamPlace,
    chunk_count,
    new_key,
    seal_stream,
    sealed_size,
)
from hotline.canonical import canonical_bytes
from hotline.errorcodes import Code
from hotline.errors import SealError

KEY = bytes(range(32))
PLACE = StreamPlace(channel="north-south", envelope="A" * 22, field="imagery", position=0)


def content(size: int) -> bytes:
    return bytes(i * 7 % 251 for i in range(size))


def sealed(data: bytes, key: bytes = KEY, place: StreamPlace = PLACE) -> list[bytes]:
    return list(seal_stream(io.BytesIO(data).read, key, place))


def opened(chunks: list[bytes], key: bytes = KEY, place: StreamPlace = PLACE) -> bytes:
    opener = ChunkOpener(key, place, sum(map(len, chunks)))
    return b"".join(opener.open(i, c) for i, c in enumerate(chunks))


def test_the_layout_is_age_s_stream_bound_to_the_attachment_s_place() -> None:
    """Independently of the module: ChaCha20-Poly1305, nonce = 88-bit counter || last flag, the
    associated data the attachment's place."""
    aad = b"hotline/v1/attachment-stream\n" + canonical_bytes(
        {"channel": "north-south", "envelope": "A" * 22, "field": "imagery", "position": 0})
    aead = ChaCha20Poly1305(KEY)
    assert sealed(b"") == [aead.encrypt(bytes(11) + b"\x01", b"", aad)]
    data = content(CHUNK + 5)
    assert sealed(data) == [aead.encrypt(bytes(11) + b"\x00", data[:CHUNK], aad),
                            aead.encrypt((1).to_bytes(11, "big") + b"\x01", data[CHUNK:], aad)]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_every_size_seals_and_opens_chunk_by_chunk(size: int) -> None:
    data = content(size)
    chunks = sealed(data)
    assert sum(map(len, chunks)) == sealed_size(size)
    assert len(chunks) == chunk_count(sealed_size(size)) == max(1, -(-size // CHUNK))
    assert all(len(c) == SEALED_CHUNK for c in chunks[:-1])
    assert opened(chunks) == data


@settings(deadline=None, max_examples=40, derandomize=True, database=None)
@given(st.integers(0, 3 * CHUNK + 7), st.lists(st.integers(1, CHUNK + 3), min_size=1, max_size=8))
def test_short_reads_seal_the_same_stream(size: int, reads: list[int]) -> None:
    """A file or socket that returns fewer bytes than asked changes nothing."""
    data, turn = content(size), [0]
    buffer = io.BytesIO(data)

    def read(n: int) -> bytes:
        turn[0] += 1
        return buffer.read(min(n, reads[turn[0] % len(reads)]))
    assert list(seal_stream(read, KEY, PLACE)) == sealed(data)


def test_sealing_reads_at_most_two_chunks_ahead() -> None:
    data = io.BytesIO(content(10 * CHUNK))
    stream = seal_stream(data.read, KEY, PLACE)
    next(stream)
    assert data.tell() <= 2 * CHUNK


def refused(chunks: list[bytes], *, size: int | None = None, key: bytes = KEY,
            place: StreamPlace = PLACE) -> SealError:
    with pytest.raises(SealError) as caught:
        opener = ChunkOpener(key, place, sum(map(len, chunks)) if size is None else size)
        for i, chunk in enumerate(chunks):
            opener.open(i, chunk)
    assert caught.value.code == Code.ATTACHMENT_CANNOT_OPEN, caught.value.message
    return caught.value


def test_an_altered_chunk_is_refused_naming_it() -> None:
    chunks = sealed(content(3 * CHUNK))
    chunks[1] = chunks[1][:100] + bytes([chunks[1][100] ^ 1]) + chunks[1][101:]
    assert "chunk 1 of attachment 0 of field imagery does not open" in refused(chunks).message


def test_chunks_reordered_repeated_or_moved_do_not_open() -> None:
    chunks = sealed(content(3 * CHUNK))
    refused([chunks[1], chunks[0], chunks[2]])
    refused([chunks[0], chunks[0], chunks[2]])
    other = sealed(content(3 * CHUNK), place=StreamPlace("north-south", "A" * 22, "imagery", 1))
    refused([chunks[0], other[1], chunks[2]])
    refused(chunks, place=StreamPlace("north-south", "B" * 22, "imagery", 0))  # another envelope
    refused(chunks, key=new_key())


def test_a_stream_cut_or_extended_does_not_open() -> None:
    chunks = sealed(content(3 * CHUNK))
    refused(chunks[:2])  # cut at a chunk boundary: chunk 1 was not sealed as the last
    refused([*chunks[:2], chunks[2][:-1]])  # the last chunk cut short
    refused([*chunks, sealed(b"")[0]])  # one chunk more
    with pytest.raises(SealError):  # a size that no stream has
        ChunkOpener(KEY, PLACE, 2 * SEALED_CHUNK + TAG)
    for size in (0, TAG - 1):
        with pytest.raises(SealError):
            chunk_count(size)


def test_a_chunk_of_the_wrong_length_is_refused_before_decryption() -> None:
    chunks = sealed(content(CHUNK + 10))
    opener = ChunkOpener(KEY, PLACE, sum(map(len, chunks)))
    with pytest.raises(SealError, match="is 100 bytes, not 65552"):
        opener.open(0, chunks[0][:100])
    with pytest.raises(SealError, match="has no chunk 2"):
        opener.open(2, chunks[1])
    assert opener.span(1) == (SEALED_CHUNK, SEALED_CHUNK + 10 + TAG)


@pytest.mark.parametrize("place", [("North", "A" * 22, "f", 0), ("c", "short", "f", 0),
                                   ("c", "A" * 22, "F/x", 0), ("c", "A" * 22, "f", -1),
                                   ("c", "A" * 22, "f", 1024)])
def test_a_place_is_checked(place: tuple[str, str, str, int]) -> None:
    with pytest.raises(SealError):
        StreamPlace(*place)
    with pytest.raises(SealError):
        ChunkOpener(b"short", PLACE, TAG)
