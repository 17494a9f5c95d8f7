"""Signed envelopes: build, sign, verify (docs/ARCHITECTURE.md "Envelope"). Pure: ids and times come in as
arguments.

An envelope is ``{v, id, kind, channel, sender, template, precedence, created, reply_to?, body,
sealed?}``: version 1 without sealed fields, version 2 with them (``hotline.sealing``: the digests
of the fields the host may not read and the readers' boxes; ``body`` then holds the clear fields
only), so that every envelope logged before sealed fields existed still verifies;
its sender signs it in the ``hotline/v1/envelope`` domain and the signature travels beside it, never
inside it. ``id`` is 128 random bits (base64url) chosen by the sender, which makes a resend
idempotent: the server answers a known id with the original ``accepted``. An ack's id is not
chosen: it is ``ack_id`` of its sender, message and kind (see there).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

import msgspec

from hotline.canonical import JSONObject, canonical_bytes
from hotline.errorcodes import Code
from hotline.errors import CODE_FORM, CryptoError, SealError, WireError
from hotline.keys import CanonicalSigner, CanonicalVerifier, Domain, b64url
from hotline.names import NAME, EnvelopeId, Name
from hotline.sealing import Sealed
from hotline.times import format_time, parse_time
from hotline.typed import convert

VERSION = 1
SEALED_VERSION = 2  # an envelope that carries sealed fields
MAX_ENVELOPE_BYTES = 64 * 1024


class Kind(StrEnum):
    MESSAGE = "message"
    ACK = "ack"
    HEARTBEAT = "heartbeat"
    ECHO = "echo"
    VIOLATION = "violation"  # a recipient's report that a sealed field it opened breaks the template


class Precedence(StrEnum):
    FLASH = "FLASH"
    IMMEDIATE = "IMMEDIATE"
    PRIORITY = "PRIORITY"
    ROUTINE = "ROUTINE"


class AckKind(StrEnum):
    RECEIVED = "received"
    UNDERSTOOD = "understood"


def new_envelope_id(random16: bytes) -> str:
    """Envelope id from 16 random bytes (the caller draws them: this module reads no randomness)."""
    if len(random16) != 16:
        raise WireError("an envelope id is 16 random bytes", code=Code.ENVELOPE_INVALID)
    return b64url(random16)


def ack_id(*, party: str, member: str, reply_to: str, ack: AckKind) -> str:
    """The one id an ack of ``reply_to`` by ``member`` of ``party`` may have.

    Deterministic, so that re-acking (after a replay) is an idempotent resend; bound to the
    sender, so that nobody else can use it: the server refuses an ack whose id is not this
    derivation for its authenticated sender, and logs acks under their own dedup key
    (``store_key``), so no message can take an ack's id first. Names cannot hold a newline, so
    the encoding is unambiguous.
    """
    text = f"hotline/v1/ack-id\n{party}\n{member}\n{reply_to}\n{ack.value}"
    return b64url(hashlib.sha256(text.encode()).digest()[:16])


def violation_id(*, party: str, member: str, reply_to: str, field: str) -> str:
    """The one id a violation report of ``field`` of ``reply_to`` by ``member`` may have: one
    report per reader, message and field (a resend is idempotent; a flood is not possible)."""
    text = f"hotline/v1/violation-id\n{party}\n{member}\n{reply_to}\n{field}"
    return b64url(hashlib.sha256(text.encode()).digest()[:16])


def check_ack_id(envelope: Envelope, *, party: str) -> None:
    """Raise WireError (``envelope.invalid``) unless an ack's (or a violation report's) id is
    the one derived from its sender (``ack_id``, ``violation_id``)."""
    if envelope.kind not in (Kind.ACK, Kind.VIOLATION) or envelope.reply_to is None:
        return
    if envelope.kind is Kind.VIOLATION:
        wanted = violation_id(party=party, member=envelope.sender, reply_to=envelope.reply_to,
                              field=envelope.body["field"])
    else:
        wanted = ack_id(party=party, member=envelope.sender, reply_to=envelope.reply_to,
                        ack=AckKind(envelope.body["ack"]))
    if envelope.id != wanted:
        raise WireError(f"an {envelope.kind}'s id is derived from its sender, the message and "
                        f"the {'field' if envelope.kind is Kind.VIOLATION else 'ack kind'}: "
                        f"this {envelope.kind} of {envelope.reply_to} by {envelope.sender} "
                        f"({party}) must have id {wanted}", code=Code.ENVELOPE_INVALID,
                        ref=envelope.id)




class Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, dict=True,
               omit_defaults=True):
    """A signed envelope's content; decoded strictly by ``from_json`` (``hotline.typed``)."""

    v: int
    id: EnvelopeId
    kind: Kind
    channel: Name
    sender: Name
    template: Name
    precedence: Precedence
    created: str
    body: JSONObject  # free-form: its template's schema checks it
    reply_to: EnvelopeId | None = None
    sealed: Sealed | None = None

    @classmethod
    def build(cls, *, id: str, kind: Kind | str, channel: str, sender: str, template: str,
              precedence: Precedence | str, created: datetime, body: JSONObject,
              reply_to: str | None = None, sealed: Sealed | None = None) -> Envelope:
        return cls.from_json({
            "v": VERSION if sealed is None else SEALED_VERSION, "id": id, "kind": str(kind),
            "channel": channel, "sender": sender, "template": template,
            "precedence": str(precedence), "created": format_time(created), "body": body,
            **({"reply_to": reply_to} if reply_to is not None else {}),
            **({"sealed": sealed.to_json()} if sealed is not None else {}),
        })

    @classmethod
    def from_json(cls, obj: Any) -> Envelope:
        """Validate an envelope object; WireError (``envelope.invalid``) names the field."""
        if isinstance(obj, dict) and isinstance(obj.get("v"), float):
            raise WireError("envelope.v: floating-point numbers are not allowed", code=Code.FRAME_FLOAT)
        return convert(obj, cls, what="envelope", code=Code.ENVELOPE_INVALID).checked()

    def checked(self) -> Envelope:
        """This envelope, once the rules beyond its fields' shapes hold (its version, its time,
        an ack's body, its size); a decoder that built it from JSON (``from_json``, an entry's
        decoder) calls this once. Raises WireError naming the rule."""
        env = self
        version = VERSION if env.sealed is None else SEALED_VERSION
        if env.v != version:
            raise WireError(f"envelope.v must be {version} (2 if and only if it has sealed fields)",
                            code=Code.ENVELOPE_INVALID)
        if env.sealed is not None:
            if env.kind is not Kind.MESSAGE:
                raise WireError("only a message has sealed fields", code=Code.ENVELOPE_INVALID)
            try:
                env.sealed.check()
            except SealError as exc:
                raise WireError(f"envelope.sealed: {exc.message}", code=Code.ENVELOPE_INVALID) from exc
            if clear := set(env.sealed.digests) & set(env.body):
                raise WireError(f"fields {', '.join(sorted(clear))} are both sealed and in clear",
                                code=Code.ENVELOPE_INVALID)
        env.__dict__["created_at"] = parse_time(env.created, field="envelope.created")
        if env.kind in (Kind.ACK, Kind.ECHO, Kind.VIOLATION) and env.reply_to is None:
            raise WireError(f"an {env.kind} envelope needs reply_to", code=Code.ENVELOPE_INVALID)
        if env.kind is Kind.ACK:
            ack = env.body.get("ack")
            if set(env.body) != {"ack"} or not isinstance(ack, str) or ack not in set(AckKind):
                raise WireError('ack body must be {"ack": "received" | "understood"}',
                                code=Code.ENVELOPE_INVALID)
        if env.kind is Kind.VIOLATION:
            body = env.body
            if (set(body) != {"field", "code", "reason"} or not isinstance(body["field"], str)
                    or not NAME.fullmatch(body["field"]) or not isinstance(body["code"], str)
                    or not CODE_FORM.fullmatch(body["code"]) or len(body["code"]) > 64
                    or not isinstance(body["reason"], str) or len(body["reason"]) > 500):
                raise WireError('a violation body is {"field": NAME, "code": CODE, "reason": TEXT '
                                "(at most 500 characters)}", code=Code.ENVELOPE_INVALID)
        # Encoded once: the size limit, the signature and the log entry all use these bytes.
        canonical = canonical_bytes(env.to_json())
        if len(canonical) > MAX_ENVELOPE_BYTES:
            boxes = "" if env.sealed is None else f", {len(env.sealed.boxes)} readers' boxes included"
            raise WireError(f"envelope of {len(canonical)} bytes{boxes} exceeds "
                            f"{MAX_ENVELOPE_BYTES}: shorten the body, or split it into several "
                            "messages", code=Code.FRAME_TOO_LARGE)
        env.__dict__["canonical"] = canonical
        return env

    @property
    def store_key(self) -> str:
        """The log's dedup key: the id, in a namespace of its own for acks (``ack:<id>``), so that
        a message, heartbeat or echo can never pre-empt an ack's (predictable) id, and a
        ``reply_to`` lookup by plain id only ever finds what is not an ack."""
        if self.kind in (Kind.ACK, Kind.VIOLATION):
            return f"{self.kind.value}:{self.id}"
        return self.id

    def to_json(self) -> JSONObject:
        """The envelope object as signed (``reply_to`` only when set; the body as given)."""
        obj: JSONObject = {
            "v": self.v, "id": self.id, "kind": self.kind.value, "channel": self.channel,
            "sender": self.sender, "template": self.template, "precedence": self.precedence.value,
            "created": self.created, "body": self.body,
        }
        if self.reply_to is not None:
            obj["reply_to"] = self.reply_to
        if self.sealed is not None:
            obj["sealed"] = self.sealed.to_json()
        return obj

    @cached_property
    def created_at(self) -> datetime:
        return parse_time(self.created, field="envelope.created")

    @cached_property
    def canonical(self) -> bytes:
        """The RFC 8785 bytes the sender signs (set once by ``from_json``)."""
        return canonical_bytes(self.to_json())

    def sign(self, key: CanonicalSigner) -> dict[str, str]:
        return key.sign_canonical(domain=Domain.ENVELOPE, canonical=self.canonical)

    def verify(self, key: CanonicalVerifier, sig: Any) -> None:
        """Raise CryptoError unless ``sig`` is ``key``'s envelope signature over this envelope."""
        try:
            key.verify_canonical(domain=Domain.ENVELOPE, canonical=self.canonical, signature=sig)
        except CryptoError as exc:
            raise exc.with_ref(self.id) from exc
