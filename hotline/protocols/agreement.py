"""Channel agreements (DESIGN.md §4): the document every party's authority signs. Pure.

``{type: "agreement", channel, version, parties: [{id, authority}], templates: [{id, version,
sha256}], heartbeat: {interval, grace}, auditors, effective, catalogue?}``. ``authority`` is the KEY_ID of the
party's authority key: naming it here is what gives that key, and no other, power over the channel.
The signatures travel beside the document as a list, one per named party.

``catalogue`` (optional) is the pre-agreed message list of the 1976 hotline practice: ``[{number,
code, text: {lang: text}}]``, each message stored in every party's language, so that a ``preagreed``
message carries only its number and code word and each receiver reads the text in its own language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hotline.envelope import check_name
from hotline.errors import ProtocolViolation, WireError
from hotline.times import parse_time

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FIELDS = {"type", "channel", "version", "parties", "templates", "heartbeat", "auditors", "effective"}
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
    auditors: tuple[str, ...]
    effective: str
    document: dict[str, Any]
    catalogue: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_json(cls, doc: Any) -> Agreement:
        if not isinstance(doc, dict) or doc.get("type") != "agreement":
            raise _violation('an agreement document has "type": "agreement"')
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
        parties: dict[str, str] = {}
        if not isinstance(doc["parties"], list) or len(doc["parties"]) < 2:
            raise _violation("agreement.parties must list at least two parties")
        for i, entry in enumerate(doc["parties"]):
            if not isinstance(entry, dict) or set(entry) != {"id", "authority"}:
                raise _violation(f'agreement.parties[{i}] must be {{"id", "authority"}}')
            try:
                party = check_name(entry["id"], field_name=f"agreement.parties[{i}].id")
            except WireError as exc:
                raise _violation(exc.message) from exc
            if party in parties:
                raise _violation(f"agreement.parties names {party} twice")
            if not isinstance(entry["authority"], str) or not entry["authority"]:
                raise _violation(f"agreement.parties[{i}].authority must be a key id")
            parties[party] = entry["authority"]
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
        auditors = doc["auditors"]
        if not isinstance(auditors, list) or not all(isinstance(a, str) for a in auditors):
            raise _violation("agreement.auditors must be a list of member names")
        return cls(channel=channel, version=version, parties=parties, templates=tuple(templates),
                   heartbeat_interval=hb["interval"], heartbeat_grace=hb["grace"],
                   auditors=tuple(auditors), effective=effective, document=doc,
                   catalogue=_catalogue(doc.get("catalogue", [])))

    def template_ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.templates)


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
