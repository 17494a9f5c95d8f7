"""Protocol templates (docs/ARCHITECTURE.md "Protocol templates"): the agreed form of one kind of message.
Pure.

Theory of operation:

- A template is one YAML file in ``protocols/``. ``Template.from_text(data, source=...)`` parses
  and checks it; any fault is a ``ConfigError`` naming the file, the key and what is wrong. The
  file is plain, bounded YAML (``plainyaml``: no anchors, aliases or tags) and its body schema
  declares only what can be checked in bounded time (``bodyschema``; patterns run on RE2). Its
  identity is ``{id, version, sha256}``, where ``sha256`` is the digest of the file's bytes: an
  agreement pins exactly that, so a file edited after the parties signed no longer matches.
- ``Template.check(envelope, ctx)`` is what the server runs on every submission, in a fixed order,
  each failure a ``ProtocolViolation`` with its own code:

  ===  ==========================================  ================================
  1    envelope kind is the template's kind        ``template.invalid``
  2    sender's role and party allowed             ``norm.sender_not_allowed``
  3    precedence allowed                          ``norm.precedence_not_allowed``
  4    sealed fields as ``readers`` declares them:  ``template.invalid``; a box for a
       each sealed, none in clear, boxes only for   party outside its field's readers
       parties among the field's readers; a sealed  ``norm.audience``
       attachment field's streams as declared
  5    body valid against ``fields`` (JSON Schema;  ``template.invalid``; past the
       the clear fields only, when some are sealed) check's budget ``template.too_costly``
  6    addressed parties are parties of the channel ``norm.audience``
  7    every rule holds (``hotline.norms.rules``) ``norm.<rule>``
  ===  ==========================================  ================================

  The rate limit is state, not form: the server keeps it (``Rate`` says how much).
- The acknowledgement a template requires (``ack``) and its deadline: the template's own
  ``deadline`` when it names one (its basis fixes it), else the precedence's default from
  military message-handling practice (FLASH 10 min, IMMEDIATE 30 min, PRIORITY 3 h, ROUTINE 6 h).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from hotline.attachments.refs import (
    FILES_COMMENT,
    MAX_ATTACHMENT_BYTES,
    MAX_NAME_BYTES,
    MEDIA_TYPE_PATTERN,
    AttachmentRef,
    SealedAttachmentRef,
)
from hotline.attachments.stream import StreamPlace, sealed_size
from hotline.canonical import JSONObject
from hotline.envelope import Envelope, Kind, Precedence
from hotline.errorcodes import Code
from hotline.errors import ConfigError, HotlineError, ProtocolViolation
from hotline.norms.agreement import Agreement, TemplateRef
from hotline.norms.bodyschema import (
    MAX_CHECK_STEPS,
    OutOfSteps,
    body_validator,
    budget,
    check_fields,
    first_error,
)
from hotline.norms.duration import parse_duration
from hotline.norms.plainyaml import MAX_BYTES, load_yaml
from hotline.norms.rules import Context, Rule, check_rule_fields, rule_from_json
from hotline.norms.schemawords import (
    FORMATS,
    alternatives,
    choices,
    examples,
    expected,
    label,
    listing,
)
from hotline.sealing import MAX_ATTACHMENTS, StoredStream

FORMAT = 1
MAX_TEMPLATE_BYTES = MAX_BYTES
MAX_ATTACHMENT_FIELDS = 8

DEFAULT_ACK_DEADLINE: Mapping[Precedence, timedelta] = {
    Precedence.FLASH: timedelta(minutes=10),
    Precedence.IMMEDIATE: timedelta(minutes=30),
    Precedence.PRIORITY: timedelta(hours=3),
    Precedence.ROUTINE: timedelta(hours=6),
}


class AckRequirement(StrEnum):
    RECEIVED = "received"      # any ack (received or understood) from each recipient party
    UNDERSTOOD = "understood"  # an officer's explicit "understood"
    REPLY = "reply"            # a message answering it (reply_to), e.g. a Vienna Document reply


class Audience(StrEnum):
    ALL = "all"              # every party of the channel other than the sender's must ack
    ADDRESSED = "addressed"  # the parties the body's ``to`` lists must ack (all still receive it)


_NAME = "^[a-z0-9][a-z0-9._-]{0,63}$"
_PRECEDENCES = [p.value for p in Precedence]
TEMPLATE_SCHEMA: JSONObject = {
    "type": "object",
    "required": ["format", "id", "version", "title", "basis", "senders", "precedence", "ack",
                 "audience", "fields"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "id": {"type": "string", "pattern": _NAME},
        "version": {"type": "integer", "minimum": 1},
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "basis": {"type": "string", "minLength": 20},
        "kind": {"enum": ["message", "heartbeat", "echo"]},
        "senders": {
            "type": "object", "required": ["roles"], "additionalProperties": False,
            "properties": {
                "roles": {"type": "array", "minItems": 1, "uniqueItems": True,
                          "items": {"enum": ["liaison", "agent"]}},
                "parties": {"type": "array", "uniqueItems": True,
                            "items": {"type": "string", "pattern": _NAME}},
            },
        },
        "precedence": {
            "type": "object", "required": ["default", "allowed"], "additionalProperties": False,
            "properties": {
                "default": {"enum": _PRECEDENCES},
                "allowed": {"type": "array", "minItems": 1, "uniqueItems": True,
                            "items": {"enum": _PRECEDENCES}},
            },
        },
        "ack": {"oneOf": [
            {"const": "none"},
            {"type": "object", "required": ["kind"], "additionalProperties": False,
             "properties": {"kind": {"enum": [a.value for a in AckRequirement]},
                            "deadline": {"type": "string"}}},
        ]},
        "rate": {"type": "object", "required": ["max", "per"], "additionalProperties": False,
                 "properties": {"max": {"type": "integer", "minimum": 1},
                                "per": {"type": "string"}}},
        "audience": {"enum": [a.value for a in Audience]},
        "rules": {"type": "array", "items": {"type": "object", "required": ["rule"]}},
        # Who may read each sealed field: every party of the channel, or the parties listed;
        # a field not named here is clear (the host reads it and checks it).
        "readers": {"type": "object", "additionalProperties": {"oneOf": [
            {"const": "parties"},
            {"type": "array", "minItems": 1, "uniqueItems": True,
             "items": {"type": "string", "pattern": _NAME}}]}},
        "fields": {"type": "object"},
        # Attachment fields (issue 19): each a list of references to content sent apart.
        "attachments": {"type": "object", "maxProperties": MAX_ATTACHMENT_FIELDS,
                        "propertyNames": {"pattern": _NAME}, "additionalProperties": {
            "type": "object", "required": ["media_types", "max_bytes", "max_count"],
            "additionalProperties": False, "properties": {
                "media_types": {"type": "array", "minItems": 1, "maxItems": 32, "uniqueItems": True,
                                "items": {"type": "string", "pattern": MEDIA_TYPE_PATTERN}},
                "max_bytes": {"type": "integer", "minimum": 1, "maximum": MAX_ATTACHMENT_BYTES},
                "max_count": {"type": "integer", "minimum": 1, "maximum": MAX_ATTACHMENTS}}}},
    },
}
_TEMPLATE_VALIDATOR = jsonschema.Draft202012Validator(TEMPLATE_SCHEMA)


@dataclass(frozen=True)
class Rate:
    max: int
    per: timedelta


@dataclass(frozen=True)
class Ack:
    kind: AckRequirement
    deadline: timedelta | None  # None: the precedence's default


@dataclass(frozen=True)
class AttachmentSpec:
    """What a template allows in one attachment field."""

    media_types: tuple[str, ...]
    max_bytes: int
    max_count: int


@dataclass(frozen=True)
class NamedAttachment:
    """An attachment a body names: attachment ``position`` of field ``field``, its signed
    reference, and for a sealed one (``ref`` then holds its key) the stream the server stores."""

    field: str
    position: int
    ref: AttachmentRef
    stored: StoredStream | None = None
    stream_place: StreamPlace | None = None  # a sealed one's: what its stream is bound to

    @staticmethod
    def place(field: str, position: int) -> str:
        return f"body.{field}[{position}]"

    @property
    def where(self) -> str:
        return self.place(self.field, self.position)

    @property
    def held(self) -> StoredStream:
        """The bytes the server stores: the content itself, or its sealed stream."""
        return self.stored or StoredStream(sha256=self.ref.sha256, size=self.ref.size)


@dataclass(frozen=True)
class HeldAttachment:
    """What the host knows of one attachment a logged entry names: its place, and the SHA-256 and
    size of the bytes it stores (a sealed attachment's stream), and whether it is sealed."""

    field: str
    position: int
    held: StoredStream
    sealed: bool

    @property
    def where(self) -> str:
        return NamedAttachment.place(self.field, self.position)


@dataclass(frozen=True)
class Template:
    id: str
    version: int
    title: str
    basis: str
    kind: Kind
    roles: frozenset[str]
    parties: frozenset[str]  # empty: any party of the channel
    default_precedence: Precedence
    allowed_precedence: tuple[Precedence, ...]
    ack: Ack | None
    rate: Rate | None
    audience: Audience
    rules: tuple[Rule, ...]
    fields: JSONObject
    sha256: str
    source: str
    _validator: Any = field(repr=False, compare=False)  # bodyschema.body_validator
    # sealed field -> "parties" (every party of the channel) or the parties that may read it
    readers: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    # the attachment fields and what each allows (their schemas are in ``fields``)
    attachments: Mapping[str, AttachmentSpec] = field(default_factory=dict)
    _clear_validator: Any = field(default=None, repr=False, compare=False)  # the clear fields

    @classmethod
    def from_text(cls, data: bytes | str, *, source: str) -> Template:
        """Parse and check one template file's bytes. ``source`` names it in errors.

        Raises:
            ConfigError: naming ``source``, the key at fault and what is wrong.
        """
        raw = data.encode() if isinstance(data, str) else data
        try:
            parsed = _parse(raw)
        except ConfigError as exc:
            raise exc.in_file(source) from None
        return dataclasses.replace(parsed, source=source)

    @classmethod
    def _from_bytes(cls, raw: bytes) -> Template:
        source = ""  # errors name no file here: from_text adds it
        doc = load_yaml(raw, source=source)  # bounded plain YAML: no aliases, tags or bombs
        error = best_match(_TEMPLATE_VALIDATOR.iter_errors(doc))
        if error is not None:
            raise ConfigError(error.message, file=source, path=_path(error.absolute_path))
        check_fields(doc["fields"])  # what a body schema may declare (bodyschema, rule 1)
        doc = dict(doc, fields=_with_attachments(doc, source))
        if doc["fields"].get("type") != "object":
            raise ConfigError('the body is an object: "type: object"', file=source,
                              path=("fields", "type"))
        kind = Kind(doc.get("kind", "message"))
        precedence = doc["precedence"]
        allowed = tuple(Precedence(p) for p in precedence["allowed"])
        default = Precedence(precedence["default"])
        if default not in allowed:
            raise ConfigError(f"{default} is not among the allowed precedences",
                              file=source, path=("precedence", "default"))
        ack = None
        if doc["ack"] != "none":
            if kind is not Kind.MESSAGE:
                raise ConfigError("only message templates can require an acknowledgement",
                                  file=source, path=("ack",))
            deadline = doc["ack"].get("deadline")
            ack = Ack(AckRequirement(doc["ack"]["kind"]),
                      _duration(deadline, source, ("ack", "deadline")) if deadline is not None
                      else None)
        rate = None
        if "rate" in doc:
            rate = Rate(doc["rate"]["max"], _duration(doc["rate"]["per"], source, ("rate", "per")))
        audience = Audience(doc["audience"])
        to = doc["fields"].get("properties", {}).get("to", {})
        if audience is Audience.ADDRESSED and (
                "to" not in doc["fields"].get("required", []) or to.get("type") != "array"
                or to.get("items", {}).get("type") != "string"):
            raise ConfigError('an addressed template requires a body field "to": an array of '
                              "party ids (the parties addressed)", file=source, path=("audience",))
        readers = _readers(doc, audience, source)
        rules = tuple(rule_from_json(rule, source=source, path=("rules", str(i)))
                      for i, rule in enumerate(doc.get("rules", [])))
        for i, rule in enumerate(rules):
            check_rule_fields(rule, doc["fields"], allowed, source=source, path=("rules", str(i)))
        return cls(
            id=doc["id"], version=doc["version"], title=doc["title"], basis=doc["basis"].strip(),
            kind=kind, roles=frozenset(doc["senders"]["roles"]),
            parties=frozenset(doc["senders"].get("parties", [])),
            default_precedence=default, allowed_precedence=allowed, ack=ack, rate=rate,
            audience=audience, rules=rules, fields=doc["fields"],
            sha256=hashlib.sha256(raw).hexdigest(), source=source,
            _validator=body_validator(doc["fields"]), readers=readers,
            attachments={name: AttachmentSpec(tuple(d["media_types"]), d["max_bytes"], d["max_count"])
                         for name, d in sorted(doc.get("attachments", {}).items())},
            _clear_validator=(body_validator(_clear_fields(doc["fields"], set(readers)))
                              if readers else None),  # built only when some fields are sealed
        )

    def attachment_refs(self, body: JSONObject) -> list[NamedAttachment]:
        """The attachments ``body`` names, each with its place (a sealed field's references,
        with their keys, when ``body`` holds it: the sender's, or a reader's once opened); the
        body has passed the schema, which checked each reference's shape and limits.

        Raises:
            ProtocolViolation: ``template.invalid``: a file name that is not safe to save under
                (``hotline.attachments.refs``), named by its place, never quoted.
        """
        found = []
        for name in self.attachments:
            kind = SealedAttachmentRef if name in self.readers else AttachmentRef
            for i, value in enumerate(body.get(name, [])):
                where = NamedAttachment.place(name, i)
                try:
                    found.append(NamedAttachment(name, i, kind.from_json(value, what=where)))
                except HotlineError as exc:
                    raise ProtocolViolation(f"{self.id}: {exc.message}",
                                            code=Code.TEMPLATE_INVALID) from None
        return found

    def opened_attachments(self, envelope: Envelope, opened: Mapping[str, Any]) -> list[NamedAttachment]:
        """The attachments a reader of ``envelope`` may fetch: those of its clear fields, and those
        of its sealed fields it opened (``opened``: field -> value), each paired with the
        stream the envelope names for it.

        Raises:
            ProtocolViolation: ``template.invalid`` when an opened field's references do not
                match the streams the envelope names (a sender's fault: report it).
        """
        streams = envelope.sealed.attachments if envelope.sealed is not None else {}
        found = []
        for named in self.attachment_refs({**envelope.body, **{
                name: value for name, value in opened.items() if name in streams}}):
            if named.field not in self.readers:
                found.append(named)
                continue
            given = streams[named.field]
            if (len(given) != len(opened[named.field]) or named.position >= len(given)
                    or given[named.position].size != sealed_size(named.ref.size)):
                raise ProtocolViolation(f"{self.id}: {named.where} does not match the sealed "
                                        "stream the envelope names for it",
                                        code=Code.TEMPLATE_INVALID)
            found.append(dataclasses.replace(named, stored=given[named.position], stream_place=StreamPlace(
                channel=envelope.channel, envelope=envelope.id, field=named.field,
                position=named.position)))
        return found

    def held_attachments(self, envelope: Envelope) -> list[HeldAttachment]:
        """What the host stores for each attachment ``envelope`` names, clear or sealed (it has
        passed ``check``)."""
        streams = envelope.sealed.attachments if envelope.sealed is not None else {}
        held = [HeldAttachment(n.field, n.position, n.held, False)
                for n in self.attachment_refs(envelope.body)]
        held += [HeldAttachment(name, i, stream, True)
                 for name, given in sorted(streams.items()) for i, stream in enumerate(given)]
        return held

    def check_sealed_field(self, clear: JSONObject, name: str, value: Any) -> None:
        """A recipient's check of sealed field ``name`` it opened, beside the clear fields (the
        other sealed fields left out): ProtocolViolation (``template.invalid``) naming the rule
        it breaks, never the value; what a ``violation`` report says."""
        key = (self.sha256, name)
        validator = _FIELD_VALIDATORS.get(key)
        if validator is None:
            validator = body_validator(_clear_fields(self.fields, set(self.readers) - {name}))
            _FIELD_VALIDATORS[key] = validator
        self._validate(validator, {**clear, name: value})

    def readers_of(self, name: str, channel_parties: Iterable[str]) -> set[str]:
        """The parties that may read sealed field ``name`` on a channel of ``channel_parties``."""
        readers = self.readers[name]
        return set(channel_parties) if readers == "parties" else set(readers) & set(channel_parties)

    def ref(self) -> TemplateRef:
        """``{id, version, sha256}`` as an agreement pins it."""
        return TemplateRef(self.id, self.version, self.sha256)

    def ack_deadline(self, precedence: Precedence) -> timedelta | None:
        """How long the recipients have to acknowledge a message of this template, if at all."""
        if self.ack is None:
            return None
        return self.ack.deadline if self.ack.deadline is not None else DEFAULT_ACK_DEADLINE[precedence]

    def recipients(self, agreement: Agreement, sender_party: str, body: Mapping[str, Any]) -> list[str]:
        """The parties that must acknowledge: all others, or those the body addresses."""
        if self.audience is Audience.ADDRESSED:
            return sorted(set(body.get("to", [])))
        return sorted(p for p in agreement.parties if p != sender_party)

    def check_body(self, body: Any) -> None:
        """Raise ProtocolViolation (``template.invalid``) naming the first field at fault and the
        schema rule it breaks, never its value (see ``describe_error``); ``template.too_costly``
        if checking it would take more than the budget (``bodyschema``, rule 2)."""
        self._validate(self._validator, body)

    def _validate(self, validator: Any, body: Any) -> None:
        """``check_body``'s check, with ``validator`` (the whole schema, or a part of it)."""
        try:
            error = first_error(validator, body)
        except OutOfSteps:
            raise self._too_costly() from None
        if error is not None:
            raise ProtocolViolation(f"{self.id}: {describe_error(error)}", code=Code.TEMPLATE_INVALID)

    def _too_costly(self) -> ProtocolViolation:
        return ProtocolViolation(
            f"{self.id}: checking this body against the template takes more than "
            f"{MAX_CHECK_STEPS} steps; the agreed form (or the body) is too large to check",
            code=Code.TEMPLATE_TOO_COSTLY)

    def check(self, envelope: Envelope, ctx: Context, *, composed: bool = False) -> None:
        """Everything the form of ``envelope`` must satisfy under this template (see module doc),
        the schema and the rules on one budget. ``composed``: the sender's check before sealing,
        with the fields it will seal still in clear, checked against the whole schema."""
        try:
            with budget():
                self._check(envelope, ctx, composed=composed)
        except OutOfSteps:
            raise self._too_costly() from None

    def _check(self, envelope: Envelope, ctx: Context, *, composed: bool) -> None:
        if envelope.kind is not self.kind:
            raise ProtocolViolation(f"{_article(envelope.kind)} {envelope.kind} envelope cannot use "
                                    f"template {self.id!r} (a template for {self.kind} envelopes)",
                                    code=Code.TEMPLATE_INVALID)
        if ctx.role not in self.roles or (self.parties and ctx.party not in self.parties):
            who = " or ".join(f"{r}s" for r in sorted(self.roles))
            if self.parties:
                who += " of " + ", ".join(sorted(self.parties))
            raise ProtocolViolation(f"{self.id}: only {who} may send it; {envelope.sender} is "
                                    f"{_article(ctx.role)} {ctx.role} of {ctx.party}",
                                    code=Code.NORM_SENDER_NOT_ALLOWED)
        if envelope.precedence not in self.allowed_precedence:
            raise ProtocolViolation(
                f"{self.id}: precedence {envelope.precedence} is not allowed; the agreement allows "
                f"{', '.join(self.allowed_precedence)}", code=Code.NORM_PRECEDENCE_NOT_ALLOWED)
        if composed:
            self._validate(self._validator, envelope.body)
        else:
            self._check_sealed(envelope, ctx)
            self._validate(self._clear_validator if self.readers else self._validator, envelope.body)
        self.attachment_refs(envelope.body)  # each file name safe to save under
        if self.audience is Audience.ADDRESSED:
            others = set(ctx.agreement.parties) - {ctx.party}
            strangers = sorted(set(envelope.body["to"]) - others)
            if strangers:
                raise ProtocolViolation(f"{self.id}: body.to must name only other parties of channel "
                                        f"{ctx.agreement.channel} ({', '.join(sorted(others))})",
                                        code=Code.NORM_AUDIENCE)
        for rule in self.rules:
            rule.check(envelope, ctx)

    def _check_sealed(self, envelope: Envelope, ctx: Context) -> None:
        """What the host checks of sealed fields without reading them: each field ``readers``
        names is sealed (never in clear), only those are, every required one is there, and each
        box goes to a party among its fields' readers."""
        sealed = envelope.sealed
        if in_clear := sorted(set(envelope.body) & set(self.readers)):
            raise ProtocolViolation(f"{self.id}: {', '.join(in_clear)} may be read only by its "
                                    "readers: seal it (hotline send does)", code=Code.TEMPLATE_INVALID)
        named = set(sealed.digests) if sealed is not None else set()
        if not_sealed := sorted(named - set(self.readers)):
            raise ProtocolViolation(f"{self.id}: {', '.join(not_sealed)} is not a sealed field: send "
                                    "it in clear", code=Code.TEMPLATE_INVALID)
        required = set(self.fields.get("required", [])) & set(self.readers)
        if missing := sorted(required - named):
            raise ProtocolViolation(f"{self.id}: the sealed field {', '.join(missing)} is required",
                                    code=Code.TEMPLATE_INVALID)
        for box in sealed.boxes if sealed is not None else ():
            for name in box.fields:
                if box.party not in self.readers_of(name, ctx.agreement.parties):
                    raise ProtocolViolation(f"{self.id}: {name} is sealed to {box.member} of "
                                            f"{box.party}, which may not read it",
                                            code=Code.NORM_AUDIENCE)
        streams = sealed.attachments if sealed is not None else {}
        for name in sorted(named & set(self.attachments)):
            spec, given = self.attachments[name], streams.get(name, [])
            if not 1 <= len(given) <= spec.max_count:
                raise ProtocolViolation(f"{self.id}: sealed.attachments.{name} names from 1 to "
                                        f"{spec.max_count} sealed streams, one per attachment",
                                        code=Code.TEMPLATE_INVALID)
            for i, stream in enumerate(given):
                if stream.size > sealed_size(spec.max_bytes):
                    raise ProtocolViolation(f"{self.id}: {NamedAttachment.place(name, i)} is larger "
                                            f"than the {spec.max_bytes} bytes allowed",
                                            code=Code.TEMPLATE_INVALID)
        if stray := sorted(set(streams) - set(self.attachments)):
            raise ProtocolViolation(f"{self.id}: {', '.join(stray)} is no attachment field",
                                    code=Code.TEMPLATE_INVALID)

    def field_specs(self) -> list[FieldSpec]:
        """The body's fields, flattened (``window.start``), in schema order: for forms and help."""
        return list(_field_specs(self.fields, prefix="", required=True))


_FIELD_VALIDATORS: dict[tuple[str, str], Any] = {}  # (template sha256, sealed field) -> validator


def _readers(doc: JSONObject, audience: Audience, source: str) -> dict[str, str | tuple[str, ...]]:
    """The template's ``readers``, each naming a field of the body; a template with sealed fields
    has no cross-field rules (the host could not check them on sealed values) and keeps ``to``
    clear (it decides who must acknowledge)."""
    given = doc.get("readers", {})
    properties = doc["fields"].get("properties", {})
    for name in given:
        if name not in properties:
            raise ConfigError(f"{name!r} is no field of the body", file=source, path=("readers", name))
        if name == "to" and audience is Audience.ADDRESSED:
            raise ConfigError('"to" says who must acknowledge: it stays clear', file=source,
                              path=("readers", name))
    if given and doc.get("rules"):
        raise ConfigError("a template with sealed fields has no rules: the host cannot check a "
                          "rule on values it may not read", file=source, path=("readers",))
    return {name: value if value == "parties" else tuple(value) for name, value in given.items()}


_DIGEST_EXAMPLE = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"  # SHA-256 of "test"


def attachment_schema(declared: JSONObject, *, sealed: bool = False) -> JSONObject:
    """The body schema of an attachment field as a template declares it: a list of at most
    ``max_count`` references (``hotline.attachments.refs``), each of an allowed media type and
    at most ``max_bytes``; a sealed field's references each hold the key of its stream."""
    digest = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{43}$", "examples": [_DIGEST_EXAMPLE]}
    properties: JSONObject = {
        "sha256": {**digest, "title": "SHA-256",
                   "description": "The file's SHA-256, unpadded base64url (43 characters)."},
        "size": {"type": "integer", "minimum": 0, "maximum": declared["max_bytes"],
                 "description": "The file's size in bytes."},
        "media_type": {"enum": list(declared["media_types"]),
                       "description": "The file's media type."},
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_BYTES, "pattern": r"\S",
                 "description": "The file name it is saved under (one name, no path)."}}
    if sealed:
        properties["key"] = {**digest, "title": "Stream key", "description": (
            "The key its sealed stream opens with (32 bytes, base64url): only its readers see it.")}
    return {"type": "array", "minItems": 1, "maxItems": declared["max_count"],
            "$comment": FILES_COMMENT,
            "description": "Attached files, each sent apart and named here by reference "
                           "(hotline send --attach FIELD=PATH fills it in).",
            "items": {"type": "object", "additionalProperties": False, "required": list(properties),
                      "description": "One attached file.", "properties": properties}}


def _with_attachments(doc: JSONObject, source: str) -> JSONObject:
    """``fields`` with each attachment field's schema added (none may be declared twice)."""
    declared = doc.get("attachments", {})
    fields: JSONObject = doc["fields"]
    properties = fields.get("properties", {})
    for name in declared:
        if name in properties:
            raise ConfigError(f"{name!r} is declared in fields too: an attachment field is "
                              "declared once, under attachments", file=source,
                              path=("attachments", name))
    if not declared:
        return fields
    sealed = doc.get("readers", {})
    return dict(fields, properties={**properties, **{
        name: attachment_schema(d, sealed=name in sealed) for name, d in declared.items()}})


def _clear_fields(fields: JSONObject, sealed: set[str]) -> JSONObject:
    """The body schema without the sealed fields: what the host checks."""
    if not sealed:
        return fields
    clear = dict(fields, properties={k: v for k, v in fields.get("properties", {}).items()
                                     if k not in sealed})
    if "required" in fields:
        clear["required"] = [name for name in fields["required"] if name not in sealed]
    return clear


@functools.lru_cache(maxsize=256)
def _parse(raw: bytes) -> Template:
    """Parsing and checking a file is costly (YAML, two JSON Schema passes); the same bytes always
    give the same template, so a process does it once per distinct file."""
    return Template._from_bytes(raw)


@dataclass(frozen=True)
class FieldSpec:
    path: str
    type: str  # JSON Schema type, "array of <type>" for arrays
    required: bool
    description: str = ""
    enum: tuple[Any, ...] = ()
    format: str | None = None
    schema: JSONObject = field(default_factory=dict, compare=False, repr=False)
    title: str = ""  # the schema's title, else the key made readable (schemawords.label)
    examples: tuple[str, ...] = ()


def _type(schema: Any) -> str:
    """A subschema's JSON type; an enum without one takes its members' (all text: ``string``)."""
    if not isinstance(schema, dict):
        return "any"
    if "type" in schema:
        return str(schema["type"])
    members = schema.get("enum", [schema["const"]] if "const" in schema else [])
    for name, test in (("string", str), ("boolean", bool), ("integer", int)):
        if members and all(isinstance(m, test) and (test is bool or not isinstance(m, bool))
                           for m in members):
            return name
    return "any"


def _field_specs(schema: JSONObject, *, prefix: str, required: bool) -> Iterator[FieldSpec]:
    needed = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        kind = _type(sub)
        if kind == "object" and "properties" in sub:
            yield from _field_specs(sub, prefix=path + ".", required=required and name in needed)
            continue
        if kind == "array":
            kind = f"array of {_type(sub.get('items', {}))}"
        yield FieldSpec(path=path, type=kind, required=required and name in needed,
                        description=str(sub.get("description", "")).strip(),
                        enum=tuple(sub.get("enum", ())), format=sub.get("format"), schema=sub,
                        title=label(name, sub), examples=tuple(examples(sub)))


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


_BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
           "exclusiveMaximum": "less than"}
_COUNTS = {"minLength": ("at least", "character"), "maxLength": ("at most", "character"),
           "minItems": ("at least", "item"), "maxItems": ("at most", "item"),
           "minProperties": ("at least", "field"), "maxProperties": ("at most", "field"),
           "minContains": ("at least", "matching item"), "maxContains": ("at most", "matching item")}


def describe_error(error: jsonschema.ValidationError) -> str:
    """``body.<field>: <the rule it breaks>``, built from the schema alone.

    jsonschema's own ``error.message`` quotes the offending value (``'xyz' is not one of ...``),
    and a refusal is logged where other parties read it: so the field is named by its path (a key
    the schema does not define only if it looks like a field name: see ``_key``)
    and the rule by the schema keyword and the schema's value, never the instance's.
    """
    return f"{_field_path(error)}: {_rule_text(error)}"


def _field_path(error: jsonschema.ValidationError) -> str:
    schema_path = list(error.absolute_schema_path)
    defined = {schema_path[i + 1] for i, part in enumerate(schema_path[:-1]) if part == "properties"}
    value: Any = error.validator_value
    if error.validator == "required":
        defined.update(p for p in value if isinstance(p, str))
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{_key(p, defined)}"
                    for p in error.absolute_path)
    return f"body{where}"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _key(name: Any, defined: set[Any]) -> str:
    """A field name as a refusal may show it: one the schema defines, or one shaped like a field
    name (a typo such as ``colour``); any other key is the sender's text, shown as ``<key>``."""
    return str(name) if name in defined or (isinstance(name, str) and _IDENTIFIER.fullmatch(name)) \
        else "<key>"


def _rule_text(error: jsonschema.ValidationError) -> str:
    keyword = str(error.validator)
    want: Any = error.validator_value
    instance = error.instance
    match keyword:
        case "required":
            have = instance if isinstance(instance, dict) else {}
            missing = [str(p) for p in want if p not in have]
            return f"missing required field(s) {', '.join(missing)}"
        case "additionalProperties" | "unevaluatedProperties":
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            extra = sorted(_key(k, set()) for k in instance if k not in known) \
                if isinstance(instance, dict) else []
            return (f"has field(s) {', '.join(extra)} that the agreed form does not define (its "
                    f"fields: {', '.join(sorted(known)) or 'none'})")
        case "type":
            types = want if isinstance(want, list) else [want]
            return "must be " + " or ".join(f"{_article(str(t))} {t}" for t in types)
        case "enum":
            return f"must be {choices(want)}"
        case "const":
            return f"must be {want}"
        case "format":
            return f"must be a valid {want}" + (f": {FORMATS[want]}" if want in FORMATS else "")
        case "pattern":
            return _pattern_text(error)
        case "multipleOf":
            return f"must be a multiple of {want}"
        case "uniqueItems":
            return "must not list the same item twice"
        case "oneOf" | "anyOf":
            return _alternatives_text(error)
        case "not":
            return "has a form the template excludes"
        case "dependentRequired":
            have = instance if isinstance(instance, dict) else {}
            for name, needs in (want.items() if isinstance(want, dict) else ()):
                lacking = [str(n) for n in needs if n not in have]
                if name in have and lacking:
                    return f"has {name}, which needs {listing(lacking, 'and')} too"
            return "misses a field that another field it has requires"
        case "propertyNames":
            return "has a field name the template does not allow"
        case "contains":
            return "has no item of the required form"
        case "None":  # a false schema
            return "is not allowed here"
    if keyword in _BOUNDS:
        return f"must be {_BOUNDS[keyword]} {want}"
    if keyword in _COUNTS:
        bound, unit = _COUNTS[keyword]
        return f"must have {bound} {want} {unit}{'' if want == 1 else 's'}"
    return f"breaks the schema rule {keyword!r}"


def _pattern_text(error: jsonschema.ValidationError) -> str:
    """A pattern in words (``must be a language tag such as en or ru``), never the expression:
    blank text is named as blank; otherwise the schema's title and examples say what it takes."""
    if isinstance(error.instance, str) and not error.instance.strip():
        return "must not be blank"
    words = expected(error.schema) if isinstance(error.schema, dict) else None
    return f"must be {words}" if words else "is not in the form the agreed template defines"


def _alternatives_text(error: jsonschema.ValidationError) -> str:
    """Which forms a oneOf/anyOf offers, each with the fields it requires, and whether the body
    has none of them or (oneOf) several."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword = str(error.validator)
    forms = alternatives(schema, keyword, "")
    if keyword == "anyOf":
        return f"must be at least one of: {forms}; it is none of them"
    several = not error.context  # jsonschema gives no sub-errors when more than one form fits
    return (f"must be exactly one of: {forms}; it "
            + ("fits more than one" if several else "is none of them"))


def _path(parts: Any) -> tuple[str, ...]:
    return tuple(str(p) for p in parts)


def _duration(text: str, source: str, path: tuple[str, ...]) -> timedelta:
    try:
        delta = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(str(exc), file=source, path=path) from None
    if not delta:
        raise ConfigError("a deadline or period must be longer than zero", file=source, path=path)
    return delta
