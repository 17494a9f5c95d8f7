"""Forms generated from the shipped templates: required fields marked, enums as choices, the
catalogue as a choice in the officer's language; values typed and checked by the template's own
check (the server's), every refusal naming the form field at fault."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hotline.console.app import attached_files
from hotline.console.forms import FormError, body_from_form, build_form, deadline_text, envelope_from_form
from hotline.console.state import flatten
from hotline.envelope import Envelope, Precedence, new_envelope_id
from hotline.norms.agreement import Agreement
from hotline.norms.files import load_templates, shipped_dir
from hotline.norms.rules import Context
from hotline.times import format_time
from tests.template_examples import DEMO_CATALOGUE, EXAMPLES, PARTIES, Case

TEMPLATES = {t.id: t for t in load_templates(shipped_dir())}
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
AGREEMENT = Agreement.from_json({
    "type": "agreement", "channel": "north-south", "version": 1,
    "parties": [{"id": p, "authority": f"authority-key-of-{p}"} for p in PARTIES],
    "templates": [t.ref() for t in TEMPLATES.values()],
    "heartbeat": {"interval": 30, "grace": 90},
    "auditors": [{"id": "audrey", "authority": "authority-key-of-mediator"}],
    "witnesses": [{"id": f"{p}-agent", "authority": f"authority-key-of-{p}"} for p in PARTIES],
    "effective": format_time(NOW - timedelta(days=30)), "catalogue": DEMO_CATALOGUE})
CTX = Context(agreement=AGREEMENT, party="north", role="liaison", logged=NOW)


def build(template: str) -> Any:
    def make(body: dict[str, Any], precedence: Precedence) -> Envelope:
        return Envelope.build(id=new_envelope_id(bytes(16)), kind="message", channel="north-south",
                              sender="alice", template=template, precedence=precedence, created=NOW,
                              body=body)
    return make


def send(template: str, values: dict[str, str], precedence: Precedence | None = None) -> Envelope:
    form = build_form(TEMPLATES[template], catalogue=AGREEMENT.catalogue)
    return envelope_from_form(form, values, precedence=precedence or TEMPLATES[template].default_precedence,
                              ctx=CTX, build=build(template))


def refusal(template: str, values: dict[str, str], precedence: Precedence | None = None) -> FormError:
    with pytest.raises(FormError) as caught:
        send(template, values, precedence)
    return caught.value


def test_fields_required_marked_enums_as_choices_and_the_hint_from_the_schema() -> None:
    form = build_form(TEMPLATES["risk-assessment"])
    fields = {f.path: f for f in form.fields}
    assert fields["threat_level"].label == "* threat_level" and fields["threat_level"].kind == "choice"
    assert [v for _, v in fields["threat_level"].choices] == ["low", "elevated", "high", "critical"]
    assert fields["recommended_measures"].label == "  recommended_measures"
    assert "comma-separated" in fields["indicators"].hint
    assert "date-time" in fields["valid_from"].hint and "UTC" in fields["valid_from"].hint
    assert form.precedences == TEMPLATES["risk-assessment"].allowed_precedence


def test_nested_fields_are_dotted_and_lang_defaults_to_the_officers() -> None:
    form = build_form(TEMPLATES["launch-notification"], lang="ru")
    paths = [f.path for f in form.fields]
    assert "window.start" in paths and "launch_area.name" in paths
    message = build_form(TEMPLATES["message"], lang="ru")
    assert message.field("lang") is not None and message.field("lang").default == "ru"  # type: ignore[union-attr]


def test_preagreed_is_a_choice_of_the_catalogue_in_the_officers_language_and_fills_the_code() -> None:
    form = build_form(TEMPLATES["preagreed"], catalogue=AGREEMENT.catalogue, lang="ru")
    assert [f.path for f in form.fields] == ["number"]
    label, value = form.fields[0].choices[1]
    assert value == "2" and label.startswith("2 UNIDENTIFIED-OBJECTS: Наши системы")
    assert form.fields[0].default == ""  # nothing is chosen for the officer
    assert body_from_form(form, {"number": "2"}) == {"number": 2, "code": "UNIDENTIFIED-OBJECTS"}
    envelope = send("preagreed", {"number": "2"})
    assert envelope.precedence is Precedence.FLASH  # the template's default


def test_every_shipped_example_body_passes_the_form() -> None:
    """A valid example of each liaison template, written as text fields, gives the same body."""
    for template_id in ("message", "risk-assessment", "humanitarian-notice", "consultation-request"):
        case = next(c for c in EXAMPLES[template_id](NOW) if isinstance(c, Case))
        values = {path: _text(value) for path, value in flatten(case.body)}
        envelope = send(template_id, values, case.precedence)
        assert envelope.body == case.body, template_id


@pytest.mark.parametrize(("template", "values", "precedence", "field", "code"), [
    # a required field left empty
    ("message", {"text": " "}, None, "text", "template.invalid"),
    # the schema: a pattern, a format, an enum, a type
    ("message", {"text": "x", "lang": "not a tag"}, None, "lang", "template.invalid"),
    ("risk-assessment", {"threat_level": "low", "area": "a", "assessment": "b", "indicators": "c",
                         "valid_from": "2026-11-27T04:00:00Z", "valid_until": "tomorrow"},
     None, "valid_until", "template.invalid"),
    ("risk-assessment", {"threat_level": "dire", "area": "a", "assessment": "b", "indicators": "c",
                         "valid_from": "2026-11-27T04:00:00Z", "valid_until": "2026-11-27T05:00:00Z"},
     None, "threat_level", "template.invalid"),
    ("consultation-request", {"subject": "s", "requested_level": "minister", "urgency": "urgent",
                              "proposed_times": "2026-11-28T09:00:00Z", "duration_minutes": "ninety"},
     None, "duration_minutes", "template.invalid"),
    # the template's rules, with their own codes
    ("risk-assessment", {"threat_level": "critical", "area": "a", "assessment": "b", "indicators": "c",
                         "valid_from": "2026-11-27T04:00:00Z", "valid_until": "2026-11-27T05:00:00Z"},
     Precedence.PRIORITY, "threat_level", "norm.precedence_too_low"),
    ("risk-assessment", {"threat_level": "low", "area": "a", "assessment": "b", "indicators": "c",
                         "valid_from": "2026-11-27T05:00:00Z", "valid_until": "2026-11-27T04:00:00Z"},
     None, "valid_until", "norm.order"),
    ("preagreed", {"number": "99"}, None, "number", "norm.catalogue"),
])
def test_a_refusal_names_the_field_and_the_servers_code(template: str, values: dict[str, str],
                                                         precedence: Precedence | None, field: str,
                                                         code: str) -> None:
    error = refusal(template, values, precedence)
    assert (error.field, error.code) == (field, code), error.message


def test_a_precedence_the_template_does_not_allow_is_refused() -> None:
    case = next(c for c in EXAMPLES["data-exchange"](NOW) if isinstance(c, Case))
    values = {path: _text(value) for path, value in flatten(case.body)}
    error = refusal("data-exchange", values, Precedence.FLASH)
    assert (error.code, error.field) == ("norm.precedence_not_allowed", None)


def test_deadline_text_follows_the_precedence_or_the_templates_own() -> None:
    message = TEMPLATES["message"]
    assert deadline_text(message, Precedence.FLASH) == (
        "recipients owe 'received' ack within 10 min (the FLASH deadline)")
    assert "6 h" in deadline_text(message, Precedence.ROUTINE)
    notice = TEMPLATES["humanitarian-notice"]
    assert "15 min (the template's own deadline)" in deadline_text(notice, Precedence.ROUTINE)
    assert deadline_text(TEMPLATES["heartbeat"], Precedence.ROUTINE) == "no acknowledgement owed"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        if all(isinstance(v, str) and "," not in v for v in value):
            return ", ".join(value)
        return json.dumps(value)
    return str(value)


def test_an_attachment_field_takes_file_paths_read_by_the_shell(tmp_path: Path) -> None:
    """Issue 19: the form's files field holds paths; the console (the shell) reads each file for
    its reference, and anything that is no readable file is refused naming the field."""
    form = build_form(TEMPLATES["incident-at-sea"])
    photos = form.field("photos")
    assert photos is not None and photos.kind == "files" and not photos.required
    photo = tmp_path / "low pass.jpg"
    photo.write_bytes(b"\xff\xd8\xff a photo")
    values = {"photos": f" {photo} , "}
    found = attached_files(form, values)
    assert [(a.field, a.ref.name, a.ref.media_type, a.ref.size) for a in found["photos"]] == [
        ("photos", "low pass.jpg", "image/jpeg", 11)]
    refs = {"photos": [found["photos"][0].reference(False)]}
    case = next(c for c in EXAMPLES["incident-at-sea"](NOW) if isinstance(c, Case))
    typed = {path: _text(value) for path, value in flatten(case.body)}
    body = body_from_form(form, {**typed, **values}, refs)
    assert body == {**case.body, **refs}  # the paths typed never reach the body
    os.mkfifo(tmp_path / "fifo")
    for given in (tmp_path / "fifo", tmp_path, tmp_path / "missing.jpg"):
        with pytest.raises(FormError) as refused:  # a FIFO would block the reader: never opened
            attached_files(form, {"photos": str(given)})
        assert refused.value.field == "photos" and "is not a file" in refused.value.message
