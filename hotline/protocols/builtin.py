"""Built-in templates until template files land (DESIGN.md §13): ``message``, ``heartbeat``,
``echo``. Each is fixed data with a SHA-256 over its canonical JSON, which is what an agreement
pins, so a changed definition no longer matches the agreements signed over it. Pure."""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from hotline.canonical import canonical_bytes
from hotline.errors import ProtocolViolation
from hotline.protocols.agreement import Agreement

MAX_TEXT = 16_000
_LANG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")  # BCP 47 shape

DEFINITIONS: dict[str, dict[str, Any]] = {
    "message": {"id": "message", "version": 1, "title": "Free text",
                "fields": {"text": "string, 1..16000 characters, required",
                           "lang": "BCP 47 language tag, default en"}},
    "heartbeat": {"id": "heartbeat", "version": 1, "title": "Agent heartbeat",
                  "fields": {"seq": "integer >= 0", "sent": "RFC 3339 time"}},
    "echo": {"id": "echo", "version": 1, "title": "Agent echo of a heartbeat",
             "fields": {"received": "RFC 3339 time"}},
}


@functools.cache
def _sha256(template_id: str) -> str:
    return hashlib.sha256(canonical_bytes(DEFINITIONS[template_id])).hexdigest()


def template_ref(template_id: str) -> dict[str, Any]:
    """``{id, version, sha256}`` as an agreement lists it."""
    return {"id": template_id, "version": DEFINITIONS[template_id]["version"],
            "sha256": _sha256(template_id)}


def _invalid(template: str, message: str) -> ProtocolViolation:
    return ProtocolViolation(f"{template}: {message}", code="template.invalid")


def check_body(agreement: Agreement, template: str, kind: str, body: dict[str, Any]) -> None:
    """Raise ProtocolViolation unless ``template`` is agreed on the channel and ``body`` fits it.

    Acks carry the acked message's template and an ack body, checked by the envelope itself.
    """
    agreed = {t.id: t for t in agreement.templates}
    ref = agreed.get(template)
    if ref is None or template not in DEFINITIONS:
        raise ProtocolViolation(f"template {template!r} is not agreed on channel {agreement.channel}",
                                code="template.unknown")
    if ref.sha256 != _sha256(template):
        raise ProtocolViolation(f"template {template!r} differs from the version the agreement "
                                "pins", code="template.mismatch")
    if kind == "ack":
        return
    if template == "message":
        if set(body) - {"text", "lang"}:
            raise _invalid(template, f"unknown field(s) {', '.join(sorted(set(body) - {'text', 'lang'}))}")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _invalid(template, "body.text is required and must be non-empty text")
        if len(text) > MAX_TEXT:
            raise _invalid(template, f"body.text is longer than {MAX_TEXT} characters")
        lang = body.get("lang", "en")
        if not isinstance(lang, str) or not _LANG.fullmatch(lang):
            raise _invalid(template, "body.lang must be a BCP 47 language tag such as en or ru")
