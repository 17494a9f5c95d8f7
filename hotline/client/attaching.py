"""Attaching files to a message (the shell around ``hotline.attachments``): each file's reference
read from it a chunk at a time; for a field the template seals, the file sealed under a fresh key
to a staging file, which is what is uploaded, so the host only ever receives the sealed stream."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hotline.attachments.refs import AttachmentRef, Digester, SealedAttachmentRef
from hotline.attachments.stream import StreamPlace, new_key, seal_stream
from hotline.canonical import JSONObject
from hotline.client.connection import Client
from hotline.client.outbox import StagedFile
from hotline.display import shown
from hotline.keys import b64url
from hotline.norms.template import NamedAttachment
from hotline.sealing import StoredStream


def reference_of(path: Path) -> AttachmentRef:
    """``path``'s reference: its SHA-256 (read a chunk at a time), its size, its media type
    guessed from its name (``application/octet-stream`` if unknown) and its name."""
    with path.open("rb") as content:
        digest = hashlib.file_digest(content, "sha256").digest()
        size = content.tell()
    media_type = mimetypes.guess_type(path.name, strict=True)[0] or "application/octet-stream"
    return AttachmentRef(sha256=b64url(digest), size=size, media_type=media_type, name=path.name)


@dataclass(frozen=True)
class Attached:
    """A file given for attachment field ``field``, with its reference and, should the field be
    sealed, the key its stream is sealed under (drawn once, whichever way it is sent)."""

    field: str
    path: Path
    ref: AttachmentRef
    key: bytes

    @classmethod
    def of(cls, field: str, path: Path) -> Attached:
        return cls(field, path, reference_of(path), new_key())

    def reference(self, sealed: bool) -> JSONObject:
        """What the body names: the reference, and for a sealed field its stream's key."""
        if not sealed:
            return self.ref.to_json()
        return SealedAttachmentRef(**self.ref.to_json(), key=b64url(self.key)).to_json()


def with_references(body: JSONObject, files: list[Attached], sealed: set[str]
                    ) -> tuple[JSONObject, list[int]]:
    """``body`` with each file's reference appended to its field (``sealed``: the fields the
    template seals), and each file's position in its field."""
    out, positions = dict(body), []
    for file in files:
        given = out.get(file.field)
        refs = list(given) if isinstance(given, list) else []
        positions.append(len(refs))
        out[file.field] = [*refs, file.reference(file.field in sealed)]
    return out, positions


def _seal_file(file: Attached, place: StreamPlace, staged: Path) -> StoredStream:
    """Seal ``file`` for ``place`` under its key into ``staged`` (a chunk in memory at a time);
    the stream's SHA-256 and size, as the envelope names them."""
    digest, size = hashlib.sha256(), 0
    with file.path.open("rb") as plain, staged.open("wb") as out:
        for chunk in seal_stream(plain.read, file.key, place):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return StoredStream(sha256=b64url(digest.digest()), size=size)


def stage(files: list[Attached], *, channel: str, envelope: str, sealed: set[str],
          folder: Path, positions: list[int] | None = None
          ) -> tuple[list[StagedFile], dict[str, list[StoredStream]]]:
    """Each of ``files`` (in the body's order; ``positions``: each one's place in its field,
    by default counted from 0) staged in ``folder`` for envelope ``envelope`` on ``channel``: a
    file of a field in ``sealed`` sealed for its place, a clear one copied (so what leaves is
    what was signed, whatever happens to the original), each flushed to disk. The staged
    files, and the sealed streams per field (``Client.sealed_envelope``).

    Raises:
        SealError: ``attachment.digest_mismatch``: a clear file changed since it was read.
    """
    folder.mkdir(parents=True, exist_ok=True)
    staged, streams, counted = [], dict[str, list[StoredStream]](), dict[str, int]()
    for n, file in enumerate(files):
        counted[file.field] = counted.get(file.field, -1) + 1
        position = positions[n] if positions is not None else counted[file.field]
        target = folder / f"{file.field}-{position}"
        if file.field in sealed:
            stream = _seal_file(file, StreamPlace(channel=channel, envelope=envelope,
                                                  field=file.field, position=position), target)
            streams.setdefault(file.field, []).append(stream)
            staged.append(StagedFile(str(target), stream.sha256, stream.size))
        else:
            digester = Digester(file.ref)
            with file.path.open("rb") as source, target.open("wb") as out:
                while chunk := source.read(1 << 20):
                    digester.update(chunk)
                    out.write(chunk)
            digester.finish()
            staged.append(StagedFile(str(target), file.ref.sha256, file.ref.size))
        with target.open("rb+") as written:
            os.fsync(written.fileno())
    return staged, streams


async def upload_file(client: Client, path: Path, *, sha256: str, size: int) -> None:
    """Upload ``path`` as the content of ``sha256`` (resumed where the server's copy stands)."""
    with path.open("rb") as content:
        await client.upload(_reader(content), sha256=sha256, size=size)


def _reader(content: BinaryIO) -> Callable[[int, int], bytes]:
    def read_at(start: int, n: int) -> bytes:
        content.seek(start)
        return content.read(n)
    return read_at


def _saved_as(out: Path, named: NamedAttachment) -> Path | None:
    """Where ``named`` is saved in ``out`` if it is there with its signed content (None: not yet).

    Raises:
        SaveClash: a file of that name holds other content (it is never overwritten).
    """
    target = out / named.ref.name
    if not target.exists():
        return None
    with target.open("rb") as held:
        if b64url(hashlib.file_digest(held, "sha256").digest()) != named.ref.sha256:
            raise SaveClash(target)
    return target


class SaveClash(Exception):
    """A file of the attachment's name is there with other content."""

    def __init__(self, target: Path) -> None:
        super().__init__(f"{target} exists with other content: move it, or save elsewhere")
        self.target = target


async def save_attachments(client: Client, index: int, files: list[NamedAttachment], out: Path,
                           say: Callable[[str], None]) -> None:
    """Save each of ``files`` (the attachments of entry ``index``) in ``out`` under its signed
    name: downloaded to ``NAME.part`` (a save cut off resumes from it), checked against its
    signed size and SHA-256 (a sealed one opened chunk by chunk), then renamed; one already
    there with its signed content is left as it is. ``say`` hears a line per file.

    Raises:
        SaveClash: a file of that name holds other content (nothing is overwritten).
        SealError, ProtocolViolation, ConnectError: as ``Client.download`` (the ``.part`` file
            is kept for a resume, or emptied if its bytes were not the signed ones).
    """
    out.mkdir(parents=True, exist_ok=True)
    for named in files:
        ref = named.ref
        if _saved_as(out, named) is not None:
            say(f"{named.where}: {shown(ref.name)} is already saved in {out}")
            continue
        target = out / ref.name
        partial = target.with_name(target.name + ".part")
        with partial.open("a+b") as saving:
            await client.download(index, named, saving)
        partial.replace(target)
        opened_here = ", opened here" if named.stored is not None else ""
        say(f"{named.where}: saved {shown(str(target))} ({ref.size:,} bytes, {ref.media_type}, "
            f"its SHA-256 the signed one{opened_here})")
