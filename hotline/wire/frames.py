"""Every frame of the WebSocket protocol, both ways, typed once. Pure.

A frame is one JSON object, a frozen ``msgspec`` Struct here tagged by its ``type``. The server
and the client build frames only as these and send them with ``encode``; they read them only
through ``decode`` (``hotline.wire.session`` calls it with the side's frame set and size limit),
which parses strictly (``hotline.canonical.parse``) and converts (``hotline.typed``): a frame of
the wrong shape is one ``WireError`` naming the field, never a ``KeyError`` in a reader.

Codes of a refused frame: ``frame.malformed`` (not an object, a field missing or of the wrong
type, an unknown field where refused), ``frame.unknown_type``, ``frame.too_large`` and the
parser's (``frame.float``, ...); a ``submit``'s envelope is refused with its own codes
(``envelope.invalid``) and names the envelope's id; a ``deliver``'s entry with the entry's
(``entry.malformed``, ``entry.unknown_kind``, ``hotline.entries``).

Request ids: a request (``submit``, ``resume``, ``fetch``, ``ping``) may carry ``req``, a
non-negative integer the client chooses; the server echoes it in the frame that answers it:
``accepted`` or ``error`` for a submit, ``resumed`` or ``error`` for a resume, ``deliver`` or
``error`` for a fetch, ``pong`` for a ping, and in the ``error`` for a request it refuses (a frame
so malformed that its ``req`` cannot be read is answered without one). A request without ``req``
is answered without one. Frames that answer no request (``roster``, ``checkpoint``, ``health``,
live ``deliver`` and ``receipt``, which follows a checkpoint and names its entry by index) carry
none.

Compatibility rule, so that either side can be upgraded without breaking the other's readers:

- Server frames: a reader ignores the fields it does not know, at every level of a frame (a
  newer server may add optional fields, e.g. to ``health``). A server only ever adds optional
  fields; it never removes a field, changes its type or meaning, or makes it required. A new
  frame type is refused by older clients (``frame.unknown_type``, reported and skipped).
- Client frames: the server refuses unknown fields (``frame.malformed``): it is the side peers
  attack, and a field it does not know would be silently dropped. So servers are upgraded
  before clients, and a client sends a new field only to servers that know it.
- A ``deliver``'s entry is a log entry: it follows the entries' own rule (``hotline.entries``).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from hotline.attachments.refs import MAX_ATTACHMENT_BYTES
from hotline.attachments.stream import SEALED_CHUNK
from hotline.canonical import JSONObject, canonical_bytes, parse
from hotline.display import shown
from hotline.entries import Entry, HealthState, leaf_bytes
from hotline.entries import decode as decode_entry
from hotline.envelope import Envelope
from hotline.errorcodes import Code
from hotline.errors import HotlineError, PeerCode, WireError
from hotline.keys import PublicKeyJSON, SignatureJSON
from hotline.names import Digest, Name
from hotline.typed import convert

Index = Annotated[int, Meta(ge=0)]
UPLOAD_CHUNK = SEALED_CHUNK  # the most bytes one ``upload`` frame carries: one sealed chunk
Req = int | UnsetType
"""A request id: absent (``UNSET``) or a non-negative integer."""
_ReqField = Annotated[int, Meta(ge=0)] | UnsetType


class _ClientFrame(msgspec.Struct, frozen=True, kw_only=True, tag_field="type",
                   forbid_unknown_fields=True):
    """A frame the client sends; the server refuses unknown fields."""


class _ServerFrame(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """A frame the server sends; the client ignores unknown fields."""


# -- client -> server ------------------------------------------------------------------------------

class Auth(_ClientFrame, frozen=True, tag="auth"):
    """The answer to ``challenge``: ``sig`` signs the other fields in the auth domain."""

    nonce: str
    origin: str
    key: PublicKeyJSON
    client_time: str
    sig: SignatureJSON

    def payload(self) -> AuthPayload:
        """The object signed in the ``hotline/v1/auth`` domain."""
        return auth_payload(nonce=self.nonce, origin=self.origin, key=self.key,
                            client_time=self.client_time)


class Submit(_ClientFrame, frozen=True, tag="submit"):
    """A signed envelope to log (decoded by ``Envelope.from_json``: every rule, not only shape)."""

    envelope: Envelope
    sig: SignatureJSON
    req: _ReqField = UNSET


class Resume(_ClientFrame, frozen=True, tag="resume"):
    """Replay ``channel`` after index ``after`` (-1: from the start), then go live."""

    channel: str
    after: Annotated[int, Meta(ge=-1)]
    req: _ReqField = UNSET


class Fetch(_ClientFrame, frozen=True, tag="fetch"):
    index: Index
    req: _ReqField = UNSET


class Ping(_ClientFrame, frozen=True, tag="ping"):
    data: str | UnsetType = UNSET
    req: _ReqField = UNSET


class Upload(_ClientFrame, frozen=True, tag="upload"):
    """Bytes ``start`` on of the attachment of digest ``sha256``, ``size`` bytes in all, as
    base64 (at most ``UPLOAD_CHUNK`` bytes a frame): the server appends them only at exactly the
    end of what it holds of this member's party's upload, and answers ``uploaded``."""

    sha256: Digest
    size: Annotated[int, Meta(ge=0, le=MAX_ATTACHMENT_BYTES)]
    start: Annotated[int, Meta(ge=0)]
    data: str
    req: _ReqField = UNSET


class UploadStatus(_ClientFrame, frozen=True, tag="upload_status"):
    """How much of the attachment of digest ``sha256`` the server holds (to resume an upload)."""

    sha256: Digest
    size: Annotated[int, Meta(ge=0, le=MAX_ATTACHMENT_BYTES)]
    req: _ReqField = UNSET


class Download(_ClientFrame, frozen=True, tag="download"):
    """Bytes ``start`` on of attachment ``position`` of field ``field`` of logged entry
    ``index`` (one on this session's channels), answered by one ``chunk``."""

    index: Index
    field: Name
    position: Annotated[int, Meta(ge=0, le=63)]
    start: Annotated[int, Meta(ge=0)]
    req: _ReqField = UNSET


class _SubmitWire(_ClientFrame, frozen=True, tag="submit"):
    envelope: JSONObject  # decoded by ``Envelope.from_json``, which names its id in a refusal
    sig: SignatureJSON
    req: _ReqField = UNSET


ClientFrame = Auth | Submit | Resume | Fetch | Ping | Upload | UploadStatus | Download
Request = Submit | Resume | Fetch | Ping | Upload | UploadStatus | Download


# -- server -> client ------------------------------------------------------------------------------

class Challenge(_ServerFrame, frozen=True, tag="challenge"):
    nonce: str
    origin: str
    server_time: str


class Welcome(_ServerFrame, frozen=True, tag="welcome"):
    """The session is open: who the server took this key for, and its channels."""

    member: str
    party: str
    role: str
    channels: list[str]
    log_size: int


class Roster(_ServerFrame, frozen=True, tag="roster"):
    """Signed roster documents (each checked by the reader against its pinned authorities) and,
    position for position, the log index the host says each is logged at (a claim the reader
    proves before it relies on it, e.g. before sealing to an epoch key)."""

    documents: list[Any]
    indexes: list[Annotated[int, Meta(ge=0)]] | UnsetType = UNSET


class Accepted(_ServerFrame, frozen=True, tag="accepted"):
    """A submission is durably logged as entry ``index`` (``duplicate``: logged before)."""

    id: str
    index: int
    duplicate: bool | UnsetType = UNSET
    req: _ReqField = UNSET

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate is True


class Deliver(_ServerFrame, frozen=True, tag="deliver"):
    """Log entry ``index`` (live, replayed, or the answer to a fetch)."""

    index: int
    entry: Entry
    req: _ReqField = UNSET


class Resumed(_ServerFrame, frozen=True, tag="resumed"):
    """The replay of ``channel`` ended at ``index``; the channel is live from here."""

    channel: str
    index: int
    req: _ReqField = UNSET


class Error(_ServerFrame, frozen=True, tag="error"):
    """A refusal: a stable dotted ``code``, a message in words, the envelope id it is about."""

    code: str
    message: str
    ref: str | UnsetType = UNSET
    req: _ReqField = UNSET

    @property
    def ref_id(self) -> str | None:
        return self.ref if isinstance(self.ref, str) else None


class Uploaded(_ServerFrame, frozen=True, tag="uploaded"):
    """What the server holds of this party's upload of ``sha256``: ``received`` bytes (send on
    from there); ``stored``: all of it, its digest checked, kept."""

    sha256: str
    received: int
    stored: bool
    req: _ReqField = UNSET


class Chunk(_ServerFrame, frozen=True, tag="chunk"):
    """Bytes ``start`` on of the attachment of digest ``sha256`` (``size`` bytes in all), as
    base64: at most ``UPLOAD_CHUNK`` of them, none past the end."""

    sha256: str
    size: int
    start: int
    data: str
    req: _ReqField = UNSET


class Pong(_ServerFrame, frozen=True, tag="pong"):
    data: str | UnsetType = UNSET
    req: _ReqField = UNSET


class Checkpoint(_ServerFrame, frozen=True, tag="checkpoint"):
    note: str  # a signed checkpoint note, unverified until the reader checks it


class Receipt(_ServerFrame, frozen=True, tag="receipt"):
    """The inclusion proof of entry ``index`` in the checkpoint of ``size`` (base64 hashes, the
    entry's leaf), pushed once a signed checkpoint covers one of the member's submissions."""

    index: int
    size: int
    proof: list[str]
    checkpoint: str
    leaf: str


class PartyHealthNow(msgspec.Struct, frozen=True, kw_only=True):
    """One party's health in a live ``health`` frame (the fields of a ``health`` entry's
    parties); a reader needs only its state and the reason."""

    state: HealthState
    reason: str
    condition: str = ""
    last_heartbeat: str | None = None
    last_echo: str | None = None
    rtt_ms: int | None = None


class Health(_ServerFrame, frozen=True, tag="health"):
    """A channel's health now, as the host judges it (unsigned, not logged;
    ``hotline.health`` builds it)."""

    channel: str
    state: HealthState
    since: str
    interval: int
    parties: dict[str, PartyHealthNow]

    def reasons(self) -> tuple[str, ...]:
        """Why the channel is not UP: the reason of each party not UP, in party order."""
        return tuple(self.parties[p].reason for p in sorted(self.parties)
                     if self.parties[p].state is not HealthState.UP)


class _DeliverWire(_ServerFrame, frozen=True, tag="deliver"):
    index: int
    entry: Any
    req: _ReqField = UNSET


ServerFrame = (Challenge | Welcome | Roster | Accepted | Deliver | Resumed | Error | Pong
               | Checkpoint | Receipt | Health | Uploaded | Chunk)
Frame = ClientFrame | ServerFrame
Answer = Accepted | Deliver | Resumed | Error | Pong | Uploaded | Chunk

CLIENT_TYPES = frozenset(cls.__struct_config__.tag for cls in ClientFrame.__args__)
SERVER_TYPES = frozenset(cls.__struct_config__.tag for cls in ServerFrame.__args__)
_WIRE: dict[str, type[Any]] = {
    **{str(cls.__struct_config__.tag): cls for cls in ServerFrame.__args__},
    **{str(cls.__struct_config__.tag): cls for cls in ClientFrame.__args__},
    "submit": _SubmitWire, "deliver": _DeliverWire,
}


class AuthPayload(msgspec.Struct, frozen=True, kw_only=True):
    """The object a client signs in the ``hotline/v1/auth`` domain: the ``auth`` frame without
    its ``type`` and ``sig``."""

    nonce: str
    origin: str
    key: PublicKeyJSON
    client_time: str

    def signed_bytes(self) -> bytes:
        """Its RFC 8785 bytes, what the signature covers (after the domain)."""
        return canonical_bytes(msgspec.to_builtins(self))


def auth_payload(*, nonce: str, origin: str, key: PublicKeyJSON, client_time: str) -> AuthPayload:
    """The object a client signs in the ``hotline/v1/auth`` domain."""
    return AuthPayload(nonce=nonce, origin=origin, key=key, client_time=client_time)


def error(exc: HotlineError, *, req: Req = UNSET) -> Error:
    """The ``error`` frame that answers with ``exc`` (the request ``req``, if any)."""
    return Error(code=exc.code, message=exc.message, ref=UNSET if exc.ref is None else exc.ref,
                 req=req)


# -- encoding --------------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()


def encode(frame: Frame) -> str:
    """One frame as the JSON text sent."""
    if isinstance(frame, Deliver):
        return deliver_text(frame.index, leaf_bytes(frame.entry), req=frame.req)
    return _encoder.encode(frame).decode()


def deliver_text(index: int, leaf: bytes, *, req: Req = UNSET) -> str:
    """``encode(Deliver(index=index, entry=<the entry of leaf>, req=req))`` without decoding the
    entry: the leaf is the entry's JSON (RFC 8785) as logged, spliced in as is."""
    tail = f',"req":{req}' if isinstance(req, int) else ""
    return f'{{"type":"deliver","index":{index},"entry":{leaf.decode()}{tail}}}'


# -- decoding --------------------------------------------------------------------------------------

def peek_req(value: Any) -> Req:
    """The request id of a parsed frame, if it has a readable one (to answer even a refusal)."""
    req = value.get("req") if isinstance(value, dict) else None
    return req if isinstance(req, int) and not isinstance(req, bool) and req >= 0 else UNSET


def decode_value(value: Any, *, allowed: frozenset[str]) -> Frame:
    """A parsed JSON value as one of the ``allowed`` frame types.

    Raises:
        WireError: ``frame.malformed`` or ``frame.unknown_type`` naming the field; a submit's
            envelope with its own code and id (``ref``); a deliver's entry with the entry's code.
    """
    if not isinstance(value, dict):
        raise WireError("a frame is a JSON object", code=Code.FRAME_MALFORMED)
    kind = value.get("type")
    if not isinstance(kind, str):
        raise WireError('a frame needs a string "type"', code=Code.FRAME_MALFORMED)
    if kind not in allowed:
        raise WireError(f"unknown frame type {shown(kind, limit=40)}", code=Code.FRAME_UNKNOWN_TYPE)
    frame = convert(value, _WIRE[kind], what=kind)
    if isinstance(frame, _SubmitWire):
        return _submit(frame)
    if isinstance(frame, _DeliverWire):
        return _deliver(frame)
    if isinstance(frame, Error) and not PeerCode.accepts(frame.code):
        # A peer's code becomes the code of the error raised from it: only a code's form is taken.
        raise WireError("error.code must be a code like family.reason", code=Code.FRAME_MALFORMED)
    result: Frame = frame
    return result


def parse_text(text: str | bytes, *, max_bytes: int) -> Any:
    """The JSON value of one text frame (strict: ``hotline.canonical.parse``); a binary frame is
    refused."""
    if isinstance(text, bytes):
        raise WireError("binary frames are not accepted; send JSON text", code=Code.FRAME_MALFORMED)
    return parse(text, max_bytes=max_bytes)


def decode(text: str | bytes, *, allowed: frozenset[str], max_bytes: int) -> Frame:
    """Parse and decode one frame (``parse_text``, ``decode_value``)."""
    return decode_value(parse_text(text, max_bytes=max_bytes), allowed=allowed)


def _submit(frame: _SubmitWire) -> Submit:
    try:
        envelope = Envelope.from_json(frame.envelope)
    except WireError as exc:
        ref = frame.envelope.get("id")
        raise WireError(exc.message, code=exc.code, ref=ref if isinstance(ref, str) else None) from None
    return Submit(envelope=envelope, sig=frame.sig, req=frame.req)


def _deliver(frame: _DeliverWire) -> Deliver:
    entry = decode_entry(frame.entry, what=f"entry {frame.index}")
    if entry.index != frame.index:
        raise WireError(f"entry delivered as {frame.index} says it is entry {entry.index}",
                        code=Code.FRAME_MALFORMED)
    return Deliver(index=frame.index, entry=entry, req=frame.req)
