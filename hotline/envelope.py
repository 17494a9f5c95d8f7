"""Signed envelopes: build, sign, verify (DESIGN.md §5). Pure: ids and times come in as arguments.

An envelope is ``{v, id, kind, channel, sender, template, precedence, created, reply_to?, body}``;
its sender signs it in the ``hotline/v1/envelope`` domain and the signature travels beside it, never
inside it. ``id`` is 128 random bits (base64url) chosen by the sender, which makes a resend
idempotent: the server answers a known id with the original ``accepted``. An ack's id is not
chosen: it is ``ack_id`` of its sender, message and kind (see there).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from hotline.canonical import canonical_bytes
from hotline.errorcodes import Code
from hotline.errors import CryptoError, WireError
from hotline.keys import Domain, PublicKey, SigningKey, b64url
from hotline.times import format_time, parse_time

VERSION = 1
MAX_ENVELOPE_BYTES = 64 * 1024
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
ENVELOPE_ID = re.compile(r"[A-Za-z0-9_-]{22}")


class Kind(StrEnum):
    MESSAGE = "message"
    ACK = "ack"
    HEARTBEAT = "heartbeat"
    ECHO = "echo"


class Precedence(StrEnum):
    FLASH = "FLASH"
    IMMEDIATE = "IMMEDIATE"
    PRIORITY = "PRIORITY"
    ROUTINE = "ROUTINE"


class AckKind(StrEnum):
    RECEIVED = "received"
    UNDERSTOOD = "understood"


_REQUIRED = ("v", "id", "kind", "channel", "sender", "template", "precedence", "created", "body")
_ALLOWED = frozenset(_REQUIRED) | {"reply_to"}


def check_name(value: Any, *, field_name: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise WireError(f"{field_name} must match [a-z0-9][a-z0-9._-]{{0,63}}", code=Code.ENVELOPE_INVALID)
    return value


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


def check_ack_id(envelope: Envelope, *, party: str) -> None:
    """Raise WireError (``envelope.invalid``) unless an ack's id is ``ack_id`` of its sender."""
    if envelope.kind is not Kind.ACK or envelope.reply_to is None:
        return
    wanted = ack_id(party=party, member=envelope.sender, reply_to=envelope.reply_to,
                    ack=AckKind(envelope.body["ack"]))
    if envelope.id != wanted:
        raise WireError(f"an ack's id is derived from its sender, the message and the ack kind: "
                        f"this ack of {envelope.reply_to} by {envelope.sender} ({party}) must have "
                        f"id {wanted}", code=Code.ENVELOPE_INVALID, ref=envelope.id)


@dataclass(frozen=True)
class Envelope:
    id: str
    kind: Kind
    channel: str
    sender: str
    template: str
    precedence: Precedence
    created: str
    body: dict[str, Any] = field(default_factory=dict)
    reply_to: str | None = None
    v: int = VERSION
    canonical: bytes = field(default=b"", compare=False, repr=False)  # set by from_json

    @classmethod
    def build(cls, *, id: str, kind: Kind | str, channel: str, sender: str, template: str,
              precedence: Precedence | str, created: datetime, body: dict[str, Any],
              reply_to: str | None = None) -> Envelope:
        return cls.from_json({
            "v": VERSION, "id": id, "kind": str(kind), "channel": channel, "sender": sender,
            "template": template, "precedence": str(precedence), "created": format_time(created),
            "body": body, **({"reply_to": reply_to} if reply_to is not None else {}),
        })

    @classmethod
    def from_json(cls, obj: Any) -> Envelope:
        """Validate an envelope object; WireError (``envelope.invalid``) names the field."""
        if not isinstance(obj, dict):
            raise WireError("envelope must be an object", code=Code.ENVELOPE_INVALID)
        missing = [k for k in _REQUIRED if k not in obj]
        if missing:
            raise WireError(f"envelope is missing {', '.join(missing)}", code=Code.ENVELOPE_INVALID)
        extra = sorted(set(obj) - _ALLOWED)
        if extra:
            raise WireError(f"envelope has unknown field(s) {', '.join(extra)}", code=Code.ENVELOPE_INVALID)
        if isinstance(obj["v"], float):
            raise WireError("envelope.v: floating-point numbers are not allowed", code=Code.FRAME_FLOAT)
        if obj["v"] != VERSION or isinstance(obj["v"], bool):
            raise WireError(f"envelope.v must be {VERSION}", code=Code.ENVELOPE_INVALID)
        if not isinstance(obj["id"], str) or not ENVELOPE_ID.fullmatch(obj["id"]):
            raise WireError("envelope.id must be 22 base64url characters (128 bits)",
                            code=Code.ENVELOPE_INVALID)
        try:
            kind = Kind(obj["kind"])
        except ValueError:
            raise WireError(f"envelope.kind must be one of {', '.join(Kind)}",
                            code=Code.ENVELOPE_INVALID) from None
        try:
            precedence = Precedence(obj["precedence"])
        except ValueError:
            raise WireError(f"envelope.precedence must be one of {', '.join(Precedence)}",
                            code=Code.ENVELOPE_INVALID) from None
        check_name(obj["channel"], field_name="envelope.channel")
        check_name(obj["sender"], field_name="envelope.sender")
        check_name(obj["template"], field_name="envelope.template")
        created_at = parse_time(obj["created"], field="envelope.created")
        if not isinstance(obj["body"], dict):
            raise WireError("envelope.body must be an object", code=Code.ENVELOPE_INVALID)
        reply_to = obj.get("reply_to")
        if reply_to is not None and (not isinstance(reply_to, str) or not ENVELOPE_ID.fullmatch(reply_to)):
            raise WireError("envelope.reply_to must be an envelope id", code=Code.ENVELOPE_INVALID)
        if kind in (Kind.ACK, Kind.ECHO) and reply_to is None:
            raise WireError(f"an {kind} envelope needs reply_to", code=Code.ENVELOPE_INVALID)
        if kind is Kind.ACK:
            ack = obj["body"].get("ack")
            if set(obj["body"]) != {"ack"} or not isinstance(ack, str) or ack not in set(AckKind):
                raise WireError('ack body must be {"ack": "received" | "understood"}',
                                code=Code.ENVELOPE_INVALID)
        env = cls(id=obj["id"], kind=kind, channel=obj["channel"], sender=obj["sender"],
                  template=obj["template"], precedence=precedence, created=obj["created"],
                  body=obj["body"], reply_to=reply_to)
        # Encoded once: the size limit, the signature and the log entry all use these bytes.
        canonical = canonical_bytes(env.to_json())
        if len(canonical) > MAX_ENVELOPE_BYTES:
            raise WireError(f"envelope of {len(canonical)} bytes exceeds {MAX_ENVELOPE_BYTES}",
                            code=Code.FRAME_TOO_LARGE)
        object.__setattr__(env, "canonical", canonical)
        env.__dict__["created_at"] = created_at  # the cached_property, already parsed
        return env

    @property
    def store_key(self) -> str:
        """The log's dedup key: the id, in a namespace of its own for acks (``ack:<id>``), so that
        a message, heartbeat or echo can never pre-empt an ack's (predictable) id, and a
        ``reply_to`` lookup by plain id only ever finds what is not an ack."""
        return f"ack:{self.id}" if self.kind is Kind.ACK else self.id

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "v": self.v, "id": self.id, "kind": self.kind.value, "channel": self.channel,
            "sender": self.sender, "template": self.template, "precedence": self.precedence.value,
            "created": self.created, "body": self.body,
        }
        if self.reply_to is not None:
            obj["reply_to"] = self.reply_to
        return obj

    @cached_property
    def created_at(self) -> datetime:
        return parse_time(self.created, field="envelope.created")

    def _canonical(self) -> bytes:
        return self.canonical or canonical_bytes(self.to_json())

    def sign(self, key: SigningKey) -> dict[str, str]:
        return key.sign_canonical(domain=Domain.ENVELOPE, canonical=self._canonical())

    def verify(self, key: PublicKey, sig: Any) -> None:
        """Raise CryptoError unless ``sig`` is ``key``'s envelope signature over this envelope."""
        try:
            key.verify_canonical(domain=Domain.ENVELOPE, canonical=self._canonical(), signature=sig)
        except CryptoError as exc:
            raise exc.with_ref(self.id) from exc
