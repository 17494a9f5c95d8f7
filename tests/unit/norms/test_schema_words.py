"""A template's schema in words (issue 13, item 7 and the enums of item 15): the field help and
the refusals come from the schema's titles, descriptions and examples; each oneOf form is named
with the fields it needs; a pattern is said in words, never as the regular expression."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.errors import ProtocolViolation
from hotline.norms.bodyschema import walk_schema
from hotline.norms.files import load_templates, shipped_dir
from hotline.norms.forms import describe_fields, sealed_audiences
from hotline.norms.schemawords import expected, kind, label, listing
from hotline.norms.template import Template
from tests.template_examples import launch_notification

SHIPPED = load_templates(shipped_dir())
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def template(template_id: str) -> Template:
    found = SHIPPED.latest(template_id)
    assert found is not None
    return found


def refusal(template_id: str, body: Any) -> str:
    with pytest.raises(ProtocolViolation) as info:
        template(template_id).check_body(body)
    assert info.value.code == "template.invalid"
    return info.value.message


def patterns(t: Template) -> list[str]:
    return [sub["pattern"] for sub, _ in walk_schema(t.fields, ()) if isinstance(sub, dict)
            and "pattern" in sub]


ICBM = launch_notification(NOW)[0].body

# -- help ----------------------------------------------------------------------------------------


def test_help_names_each_form_of_impact_area_with_its_fields() -> None:
    text = describe_fields(template("launch-notification"))
    assert ("    impact_area takes exactly one of these forms:\n"
            "      - its boundary points (impact_area.boundary)\n"
            "      - its centre and radius (impact_area.centre, impact_area.radius)\n") in text


def test_help_says_enums_as_one_of_and_shows_the_keys_of_a_list_of_objects() -> None:
    text = describe_fields(template("incident-at-sea"))
    assert "any:" not in text and " | " not in text
    assert "* units                      a JSON list of 1 to 50 objects with the fields below" in text
    for key in ("      * party ", "      * kind ", "      * name ", "        identifier "):
        assert f"\n{key}" in text, key
    assert "one of: surface_ship, submarine, aircraft" in text
    lang = next(line for line in text.splitlines() if line.lstrip().startswith("lang "))
    assert "text: a language tag such as en or ru" in lang


@pytest.mark.parametrize("template_id", sorted({t.id for t in SHIPPED}))
def test_no_help_shows_a_regex_or_a_raw_type(template_id: str) -> None:
    t = template(template_id)
    text = describe_fields(t)
    assert "any:" not in text and "array of" not in text
    for source in patterns(t):
        if len(source) > 2:
            assert source not in text


@pytest.mark.parametrize("template_id", sorted({t.id for t in SHIPPED}))
def test_every_shipped_pattern_can_be_said_in_words(template_id: str) -> None:
    """A blank text is named as blank; any other pattern needs a title or examples."""
    for sub, path in walk_schema(template(template_id).fields, ()):
        if isinstance(sub, dict) and "pattern" in sub and sub["pattern"] != r"\S":
            assert expected(sub), path


# -- refusals ------------------------------------------------------------------------------------


def test_impact_area_with_neither_form_names_both_forms_and_their_fields() -> None:
    radius_only = {"name": "Eastern impact area K-7", "radius": ICBM["impact_area"]["radius"]}
    body = {**ICBM, "impact_area": radius_only}
    assert refusal("launch-notification", body) == (
        "launch-notification: body.impact_area: must be exactly one of: its boundary points "
        "(boundary) or its centre and radius (centre, radius); it is none of them")


def test_impact_area_with_both_forms_says_it_fits_more_than_one() -> None:
    both = {**ICBM["impact_area"], "boundary": [{"latitude": "1", "longitude": "2"}] * 3}
    assert refusal("launch-notification", {**ICBM, "impact_area": both}).endswith(
        "; it fits more than one")


def test_a_bad_language_tag_is_said_in_words() -> None:
    assert refusal("message", {"text": "hello", "lang": "english!"}) == \
        "message: body.lang: must be a language tag such as en or ru"


def test_a_bad_latitude_in_a_list_of_objects_is_said_in_words() -> None:
    boundary = [{"latitude": "91", "longitude": "2"}] + [{"latitude": "1", "longitude": "2"}] * 2
    body = {**ICBM, "impact_area": {"name": "K-7", "boundary": boundary}}
    assert refusal("launch-notification", body) == (
        "launch-notification: body.impact_area.boundary[0].latitude: must be a latitude such as "
        "62.925 or -33.5")


def test_blank_text_is_named_blank_and_an_enum_lists_its_members() -> None:
    assert refusal("message", {"text": "   "}) == "message: body.text: must not be blank"
    assert refusal("launch-notification", {**ICBM, "missile_class": "cruise"}) == (
        "launch-notification: body.missile_class: must be one of: ICBM, SLBM, IRBM, MRBM, SRBM")


def test_a_date_time_says_what_it_takes() -> None:
    body = {**ICBM, "window": {"start": "tomorrow", "end": ICBM["window"]["end"]}}
    assert refusal("launch-notification", body) == (
        "launch-notification: body.window.start: must be a valid date-time: a UTC date and time "
        "such as 2026-12-01T06:00:00Z")


REGEX_MARKS = re.compile(r"[\^$\\]|\{\d|\[[A-Za-z0-9]-")


@given(st.text(max_size=40))
def test_no_language_tag_refusal_shows_the_regex_or_the_value(tag: str) -> None:
    try:
        template("message").check_body({"text": "hello", "lang": tag})
    except ProtocolViolation as exc:
        assert not REGEX_MARKS.search(exc.message), exc.message
        assert exc.message in ("message: body.lang: must be a language tag such as en or ru",
                               "message: body.lang: must not be blank",
                               "message: body.lang: must be text")


# -- the words themselves ------------------------------------------------------------------------


@pytest.mark.parametrize(("schema", "words"), [
    ({"enum": ["ICBM", "SLBM"]}, "one of: ICBM, SLBM"),
    ({"enum": [True, None, 3]}, "one of: true, null, 3"),
    ({"const": "x"}, "exactly x"),
    ({"type": "integer", "minimum": 1, "maximum": 5}, "a whole number from 1 to 5"),
    ({"type": "integer", "minimum": 0}, "a whole number, at least 0"),
    ({"type": "string", "format": "date"}, "a date such as 2026-12-01 (YYYY-MM-DD)"),
    ({"type": "string", "pattern": "^x$", "title": "Code word", "examples": ["X"]},
     "text: a code word such as X"),
    ({"type": "string", "pattern": "^x$"}, "text"),
    ({"type": "array", "maxItems": 3, "items": {"enum": ["a", "b"]}},
     "a comma-separated list of up to 3 items, each one of: a, b"),
    ({"type": "array", "minItems": 1, "items": {"type": "object", "properties": {},
                                                 "additionalProperties": False}},
     "a JSON list of 1 or more objects with the fields below"),
    ({"type": "boolean"}, "true or false"),
])
def test_kind_vectors(schema: dict[str, Any], words: str) -> None:
    assert kind(schema) == words


def test_label_and_listing_vectors() -> None:
    assert label("speed_knots", {}) == "Speed knots"
    assert label("speed_knots", {"title": "Speed (knots)"}) == "Speed (knots)"
    assert expected({"title": "BCP 47 tag", "examples": ["en", "ru", "uk"]}) == \
        "a BCP 47 tag such as en, ru or uk"
    assert expected({"title": "Envelope id"}) == "an envelope id"
    assert expected({"examples": ["A1"]}) == "text like A1"
    assert expected({}) is None
    assert listing(["a"]) == "a" and listing(["a", "b"], "and") == "a and b"


def test_help_says_who_reads_each_sealed_field_and_nothing_when_none_is() -> None:
    text = describe_fields(template("message"))
    assert text.splitlines()[-1] == "sealed (the host never reads them): text: the parties"
    assert "sealed" not in describe_fields(template("incident-at-sea"))
    to_mediator = dataclasses.replace(template("message"), readers={"text": ("mediator",),
                                                                    "lang": "parties"})
    assert sealed_audiences(to_mediator) == "lang: the parties; text: mediator"
