"""What a signed body says of an attachment: its reference. Pure.

Theory of operation: the signed body carries, per attachment, the SHA-256 of its content, its
size, a media type and a file name; the log commits to these only, the content travels apart.
A clear attachment's content is what the server stores. A sealed attachment field is sealed like
any sealed field: its references, each with the key of its sealed stream
(``SealedAttachmentRef``, ``hotline.attachments.stream``), are read only by the field's readers;
the envelope names in clear only the SHA-256 and size of each sealed stream the server stores
(``hotline.sealing.StoredStream``). Everything here is hostile input, above all to the receiver
who saves the file:

- ``name`` is one file name that is safe to create in any folder on Linux, macOS and Windows:
  no path (no ``/`` or ``\\``, not ``.`` or ``..``), no character a terminal obeys or that hides
  or reorders text (controls, bidi overrides, zero-width: ``evil‮fdp.exe`` must not pass for a
  PDF), none that Windows refuses (``<>:"|?*``), no Windows device name (``CON``, ``lpt1.txt``),
  no leading or trailing space or dot, at most 255 bytes of UTF-8.
- ``media_type`` is an RFC 6838 ``type/subtype`` in lower case, without parameters.
- ``sha256`` is unpadded base64url (43 characters), as every digest hotline signs.
- ``Digester`` checks bytes as they arrive against a reference: their number, then the digest.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from hotline.display import unsafe
from hotline.errorcodes import Code
from hotline.errors import SealError, WireError
from hotline.keys import b64url
from hotline.names import Digest
from hotline.typed import convert

# The ``$comment`` of an attachment field's derived schema: how a renderer knows a list of files.
FILES_COMMENT = "hotline: attachment references (files sent apart)"
MAX_ATTACHMENT_BYTES = 1 << 30  # no agreement may allow more per attachment (1 GiB)
MAX_NAME_BYTES = 255
MEDIA_TYPE_PATTERN = r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}\Z"
_WINDOWS_FORBIDDEN = frozenset('<>:"|?*/\\')
_DEVICE = re.compile(r"(?i)(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?\Z")


def file_name_problem(name: str) -> str | None:
    """Why ``name`` is not a file name safe to save under, in words (None: it is)."""
    if not name or name in (".", ".."):
        return "it is empty, or . or .."
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    if hidden := unsafe(name):
        return f"it holds {len(hidden)} control, format or invisible character(s)"
    if forbidden := sorted(set(name) & _WINDOWS_FORBIDDEN):
        return f"it holds {' '.join(forbidden)}, which make a path or which Windows refuses"
    if name != name.strip(" .") or name.startswith("-"):
        return "it starts or ends with a space or a dot, or starts with -"
    if _DEVICE.match(name):
        return "it is a Windows device name"
    return None


class AttachmentRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One attachment as a signed body names it."""

    sha256: Digest
    size: Annotated[int, Meta(ge=0, le=MAX_ATTACHMENT_BYTES)]
    media_type: Annotated[str, Meta(pattern=MEDIA_TYPE_PATTERN)]
    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME_BYTES)]

    @classmethod
    def from_json(cls, obj: Any, *, what: str = "an attachment") -> AttachmentRef:
        """Strictly decoded, its file name checked.

        Raises:
            WireError: ``attachment.invalid`` naming the field at fault, never its value.
        """
        ref = convert(obj, cls, what=what, code=Code.ATTACHMENT_INVALID)
        if problem := file_name_problem(ref.name):
            raise WireError(f"{what}.name is not a safe file name: {problem}",
                            code=Code.ATTACHMENT_INVALID)
        return ref

    def to_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class SealedAttachmentRef(AttachmentRef, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One attachment as a sealed field names it: its content's reference and the key of its
    sealed stream (base64url of 32 bytes), which only the field's readers see."""

    key: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]\Z")]

    @property
    def key_bytes(self) -> bytes:
        return base64.urlsafe_b64decode(self.key + "=")


class Digester:
    """The bytes of one attachment as they arrive, checked against its reference: never more
    than its size, and at the end exactly its size and its digest. Its errors name no value of
    the reference (the name is the sender's words)."""

    def __init__(self, ref: AttachmentRef) -> None:
        self.ref = ref
        self.received = 0
        self._hash = hashlib.sha256()

    def update(self, data: bytes) -> None:
        """Raises: SealError (``attachment.digest_mismatch``) past the signed size."""
        if self.received + len(data) > self.ref.size:
            raise SealError(f"the attachment is longer than the {self.ref.size} bytes its signed "
                            "reference names", code=Code.ATTACHMENT_DIGEST_MISMATCH)
        self.received += len(data)
        self._hash.update(data)

    def finish(self) -> None:
        """Raises: SealError (``attachment.digest_mismatch``): short, or not the signed bytes."""
        if self.received != self.ref.size or b64url(self._hash.digest()) != self.ref.sha256:
            raise SealError(f"the attachment is not the one its signed reference names "
                            f"({self.received} of {self.ref.size} bytes, or another SHA-256): "
                            "altered, cut short or replaced", code=Code.ATTACHMENT_DIGEST_MISMATCH)
