"""Channel agreements (DESIGN.md §4): the document every party's authority signs. Pure.

``{type: "agreement", channel, version, parties: [{id, authority}], templates: [{id, version,
sha256}], heartbeat: {interval, grace}, auditors: [{id, authority}], witnesses: [{id, authority}],
effective, catalogue?}``. ``authority`` is the KEY_ID of an authority key: naming it beside a party
is what gives that key, and no other, power over the channel; naming it beside an auditor or a
witness (a member name) says which authority may enroll that member for this channel, so that no
other authority can claim the name. Witnesses are agents whose cosignatures of the log's
checkpoints the parties require (at least one, at most ``MAX_NAMED``); auditors read the channel.
The signatures travel beside the document as a list, one per named party.

``catalogue`` (optional) is the pre-agreed message list of the 1976 hotline practice: ``[{number,
code, text: {lang: text}}]``, each message stored in every party's language, so that a ``preagreed``
message carries only its number and code word and each receiver reads the text in its own language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hotline.envelope import check_name
from hotline.errors import ProtocolViolation, WireError
from hotline.times import parse_time

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FIELDS = {"type", "channel", "version", "parties", "templates", "heartbeat", "auditors", "witnesses",
           "effective"}
MAX_PARTIES = 64  # an agreement among every OSCE state would name 57
MAX_NAMED = 16  # auditors, and witnesses, one agreement may name
_LANG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")


def _violation(message: str) -> ProtocolViolation:
    return ProtocolViolation(message, code="roster.invalid")


@dataclass(frozen=True)
class TemplateRef:
    id: str
    version: int
    sha256: str


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
    document: dict[str, Any]
    catalogue: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_json(cls, doc: Any) -> Agreement:
        if not isinstance(doc, dict) or doc.get("type") != "agreement":
            raise _violation('an agreement document has "type": "agreement"')
        if "witnesses" not in doc and _FIELDS - {"witnesses"} <= set(doc):
            raise _violation('agreement.witnesses is required: the agents whose cosignatures the '
                             'parties require, as [{"id": AGENT, "authority": KEY_ID}]; auditors '
                             'are named the same way')
        if not _FIELDS <= set(doc) <= _FIELDS | {"catalogue"}:
            raise _violation(f"agreement fields must be exactly {', '.join(sorted(_FIELDS))} "
                             "and optionally catalogue")
        try:
            channel = check_name(doc["channel"], field_name="agreement.channel")
            effective = doc["effective"]
            parse_time(effective, field="agreement.effective")
        except WireError as exc:
            raise _violation(exc.message) from exc
        version = doc["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _violation("agreement.version must be a positive integer")
        parties = dict(_named(doc["parties"], "parties", least=2, most=MAX_PARTIES))
        templates: list[TemplateRef] = []
        if not isinstance(doc["templates"], list) or not doc["templates"]:
            raise _violation("agreement.templates must list at least one template")
        for i, ref in enumerate(doc["templates"]):
            if (not isinstance(ref, dict) or set(ref) != {"id", "version", "sha256"}
                    or not isinstance(ref["version"], int) or isinstance(ref["version"], bool)
                    or not isinstance(ref["sha256"], str) or not _SHA256_HEX.fullmatch(ref["sha256"])):
                raise _violation(f'agreement.templates[{i}] must be {{"id", "version": int, "sha256": hex}}')
            try:
                check_name(ref["id"], field_name=f"agreement.templates[{i}].id")
            except WireError as exc:
                raise _violation(exc.message) from exc
            templates.append(TemplateRef(ref["id"], ref["version"], ref["sha256"]))
        hb = doc["heartbeat"]
        if (not isinstance(hb, dict) or set(hb) != {"interval", "grace"}
                or not all(isinstance(hb[k], int) and not isinstance(hb[k], bool) and hb[k] > 0
                           for k in ("interval", "grace"))):
            raise _violation('agreement.heartbeat must be {"interval": seconds, "grace": seconds}')
        return cls(channel=channel, version=version, parties=parties, templates=tuple(templates),
                   heartbeat_interval=hb["interval"], heartbeat_grace=hb["grace"],
                   auditors=_named(doc["auditors"], "auditors", least=0),
                   witnesses=_named(doc["witnesses"], "witnesses", least=1),
                   effective=effective, document=doc,
                   catalogue=_catalogue(doc.get("catalogue", [])))

    def template_ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.templates)


def _named(items: Any, what: str, *, least: int, most: int = MAX_NAMED) -> Mapping[str, str]:
    """``[{"id": NAME, "authority": KEY_ID}]`` -> ``{NAME: KEY_ID}`` (``least``..``most``
    entries, each name once): the parties, and the auditors and witnesses, each with the
    authority key that gives it its place."""
    form = '{"id": NAME, "authority": KEY_ID}'
    if not isinstance(items, list):
        raise _violation(f"agreement.{what} must be a list of {form}")
    if not least <= len(items) <= most:
        raise _violation(f"agreement.{what} must name {least} to {most} entries")
    named: dict[str, str] = {}
    for i, item in enumerate(items):
        if isinstance(item, str):
            raise _violation(f"agreement.{what}[{i}] is a bare name: name each as {form}, with "
                             "the authority key that may enroll it")
        if not isinstance(item, dict) or set(item) != {"id", "authority"}:
            raise _violation(f"agreement.{what}[{i}] must be {form}")
        try:
            name = check_name(item["id"], field_name=f"agreement.{what}[{i}].id")
        except WireError as exc:
            raise _violation(exc.message) from exc
        if name in named:
            raise _violation(f"agreement.{what} names {name} twice")
        if not isinstance(item["authority"], str) or not item["authority"]:
            raise _violation(f"agreement.{what}[{i}].authority must be a key id")
        named[name] = item["authority"]
    return MappingProxyType(named)


def _catalogue(items: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(items, list):
        raise _violation("agreement.catalogue must be a list of {number, code, text}")
    numbers: set[int] = set()
    for i, item in enumerate(items):
        where = f"agreement.catalogue[{i}]"
        if not isinstance(item, dict) or set(item) != {"number", "code", "text"}:
            raise _violation(f"{where} must be {{number, code, text}}")
        number, code, text = item["number"], item["code"], item["text"]
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 9999:
            raise _violation(f"{where}.number must be an integer 1..9999")
        if number in numbers:
            raise _violation(f"{where}.number {number} appears twice")
        numbers.add(number)
        if not isinstance(code, str) or not re.fullmatch(r"[A-Z][A-Z0-9-]{1,31}", code):
            raise _violation(f"{where}.code must be an upper-case code word")
        if (not isinstance(text, dict) or not text
                or not all(isinstance(k, str) and _LANG.fullmatch(k) and isinstance(v, str) and v
                           for k, v in text.items())):
            raise _violation(f"{where}.text must map language tags to the message text")
    return tuple(items)
