"""Channel agreements (docs/ARCHITECTURE.md "Roster: enrollments and agreements"): the document every party's
authority signs. Pure.

``{type: "agreement", channel, version, parties: [{id, authority}], templates: [{id, version,
sha256}], heartbeat: {interval, grace}, auditors: [{id, authority}], witnesses: [{id, authority}],
effective, catalogue?, ends?}``. ``authority`` is the KEY_ID of an authority key: naming it beside a party
is what gives that key, and no other, power over the channel; naming it beside an auditor or a
witness (a member name) says which authority may enroll that member for this channel, so that no
other authority can claim the name. Witnesses are agents whose cosignatures of the log's
checkpoints the parties require (at least one, at most ``MAX_NAMED``); auditors read the channel.
The signatures travel beside the document as a list, one per named party.

``catalogue`` (optional) is the pre-agreed message list of the 1976 hotline practice: ``[{number,
code, text: {lang: text}}]``, each message stored in every party's language, so that a ``preagreed``
message carries only its number and code word and each receiver reads the text in its own language.

``epoch_hours`` (optional, 1 to 744; 24 when absent) is the length of the epochs of the members'
encryption keys for fields sealed on this channel (``hotline.epochkeys``): the window a stolen
laptop exposes.

``ed25519_only`` (optional) names the templates whose envelopes a member with a hybrid
post-quantum key may sign with its Ed25519 half alone (``hotline.hybrid``: heartbeats and echoes,
frequent and cheap; a forgery after quantum computers exist would fake liveness, not content).
Every other template keeps both signatures of a hybrid key.

``ends`` (optional, RFC 3339) closes the channel by ceremony: from that moment nothing more is
sent on it (``Roster.check_send``), while its history stays readable. Absent, the document's
bytes are those of an agreement written before ``ends`` existed, so old signatures still verify.

``AgreementDocument`` is the document as signed (decoded strictly, re-encoded to the same bytes);
``Agreement`` is what it means once the rules beyond field shapes hold (counts, unique names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from hotline.epochkeys import DEFAULT_EPOCH, MAX_EPOCH_SECONDS
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation, WireError
from hotline.names import Name
from hotline.times import parse_time
from hotline.typed import convert

MAX_PARTIES = 64  # an agreement among every OSCE state would name 57
MAX_NAMED = 16  # auditors, and witnesses, one agreement may name
_NAMED_FORM = '{"id": NAME, "authority": KEY_ID}'


def _violation(message: str) -> ProtocolViolation:
    return ProtocolViolation(message, code=Code.ROSTER_INVALID)


class _Part(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class Named(_Part, frozen=True):
    """A party, auditor or witness with the KEY_ID of the authority that gives it its place."""

    id: Name
    authority: Annotated[str, Meta(min_length=1)]


class TemplateRef(_Part, frozen=True):
    """A template the parties agreed to, pinned by its SHA-256."""

    id: Name
    version: int
    sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}\Z")]


class Heartbeat(_Part, frozen=True, kw_only=True):
    interval: Annotated[int, Meta(gt=0)]  # seconds
    grace: Annotated[int, Meta(gt=0)]


class CatalogueItem(_Part, frozen=True, kw_only=True):
    """A pre-agreed message: its number, its code word, its text in each party's language."""

    number: Annotated[int, Meta(ge=1, le=9999)]
    code: Annotated[str, Meta(pattern=r"^[A-Z][A-Z0-9-]{1,31}\Z")]
    text: Annotated[dict[Annotated[str, Meta(pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*\Z")],
                         Annotated[str, Meta(min_length=1)]], Meta(min_length=1)]

    def text_in(self, lang: str) -> str:
        """The text in ``lang``, else in the first language it is written in."""
        return self.text.get(lang) or next(iter(self.text.values()))


MAX_EPOCH_HOURS = MAX_EPOCH_SECONDS // 3600


class AgreementDocument(_Part, frozen=True, kw_only=True, tag_field="type", tag="agreement"):
    """The agreement as its parties sign it: what ``msgspec.to_builtins`` gives back is the
    object it was decoded from, so its RFC 8785 bytes are the signed bytes."""

    channel: Name
    version: Annotated[int, Meta(ge=1)]
    parties: list[Named]
    templates: list[TemplateRef]
    heartbeat: Heartbeat
    auditors: list[Named]
    witnesses: list[Named]
    effective: str
    catalogue: list[CatalogueItem] | msgspec.UnsetType = msgspec.UNSET
    ends: str | msgspec.UnsetType = msgspec.UNSET  # the channel closes at this moment
    epoch_hours: Annotated[int, Meta(ge=1, le=MAX_EPOCH_HOURS)] | msgspec.UnsetType = msgspec.UNSET
    ed25519_only: Annotated[list[Name], Meta(max_length=64)] | msgspec.UnsetType = msgspec.UNSET


@dataclass(frozen=True)
class Agreement:
    channel: str
    version: int
    parties: dict[str, str]  # party id -> authority KEY_ID
    templates: tuple[TemplateRef, ...]
    heartbeat_interval: int
    heartbeat_grace: int
    auditors: Mapping[str, str]  # auditor member name -> KEY_ID of the authority that may enroll it
    witnesses: Mapping[str, str]  # witness (agent) member name -> KEY_ID of its enrolling authority
    effective: str
    document: AgreementDocument
    catalogue: tuple[CatalogueItem, ...] = ()
    ends: datetime | None = None  # from this moment the channel is closed
    epoch_length: timedelta = DEFAULT_EPOCH  # of its members' encryption keys (sealed fields)
    ed25519_only: frozenset[str] = frozenset()  # templates hybrid keys may sign with Ed25519 alone

    def closed_at(self, moment: datetime) -> bool:
        """Whether the channel is closed at ``moment`` (its agreement ended it by then)."""
        return self.ends is not None and moment >= self.ends

    @classmethod
    def from_json(cls, doc: Any) -> Agreement:
        """Decode and check an agreement document; ProtocolViolation (``roster.invalid``)."""
        return cls.of(decode_agreement(doc))

    @classmethod
    def of(cls, doc: AgreementDocument) -> Agreement:
        """The agreement ``doc`` states, once the rules beyond its fields' shapes hold."""
        try:
            effective = parse_time(doc.effective, field="agreement.effective")
            ends = None if isinstance(doc.ends, msgspec.UnsetType) else \
                parse_time(doc.ends, field="agreement.ends")
        except WireError as exc:
            raise _violation(exc.message) from exc
        if ends is not None and ends < effective:
            raise _violation("agreement.ends must not be earlier than agreement.effective")
        if not doc.templates:
            raise _violation("agreement.templates must list at least one template")
        catalogue = () if isinstance(doc.catalogue, msgspec.UnsetType) else tuple(doc.catalogue)
        numbers = [item.number for item in catalogue]
        for i, number in enumerate(numbers):
            if number in numbers[:i]:
                raise _violation(f"agreement.catalogue[{i}].number {number} appears twice")
        return cls(channel=doc.channel, version=doc.version,
                   parties=dict(_named(doc.parties, "parties", least=2, most=MAX_PARTIES)),
                   templates=tuple(doc.templates), heartbeat_interval=doc.heartbeat.interval,
                   heartbeat_grace=doc.heartbeat.grace,
                   auditors=_named(doc.auditors, "auditors", least=0),
                   witnesses=_named(doc.witnesses, "witnesses", least=1),
                   effective=doc.effective, document=doc, catalogue=catalogue, ends=ends,
                   epoch_length=DEFAULT_EPOCH if isinstance(doc.epoch_hours, msgspec.UnsetType)
                   else timedelta(hours=doc.epoch_hours),
                   ed25519_only=frozenset() if isinstance(doc.ed25519_only, msgspec.UnsetType)
                   else frozenset(doc.ed25519_only))

    def template_ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.templates)


def decode_agreement(doc: Any) -> AgreementDocument:
    """The agreement document ``doc`` (parsed JSON), its fields' shapes checked; else
    ProtocolViolation (``roster.invalid``) naming the field."""
    if not isinstance(doc, dict) or doc.get("type") != "agreement":
        raise _violation('an agreement document has "type": "agreement"')
    if "witnesses" not in doc and {"parties", "auditors", "templates", "heartbeat"} <= set(doc):
        raise _violation(f"agreement.witnesses is required: the agents whose cosignatures the "
                         f"parties require, as [{_NAMED_FORM}]; auditors are named the same way")
    for what in ("parties", "auditors", "witnesses"):
        items = doc.get(what)
        bare = next((i for i, e in enumerate(items) if isinstance(e, str)), None) \
            if isinstance(items, list) else None
        if bare is not None:  # the old form, which named no authority
            raise _violation(f"agreement.{what}[{bare}] is a bare name: name each as "
                             f"{_NAMED_FORM}, with the authority key that may enroll it")
    return convert(doc, AgreementDocument, what="agreement", code=Code.ROSTER_INVALID,
                   error=ProtocolViolation)


def _named(items: Sequence[Named], what: str, *, least: int,
           most: int = MAX_NAMED) -> Mapping[str, str]:
    """``[{"id": NAME, "authority": KEY_ID}]`` -> ``{NAME: KEY_ID}`` (``least``..``most``
    entries, each name once)."""
    if not least <= len(items) <= most:
        raise _violation(f"agreement.{what} must name {least} to {most} entries")
    named: dict[str, str] = {}
    for entry in items:
        if entry.id in named:
            raise _violation(f"agreement.{what} names {entry.id} twice")
        named[entry.id] = entry.authority
    return MappingProxyType(named)
