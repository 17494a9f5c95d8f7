"""hotline.norms.bodytext: a body reads as ``Title: value`` in the template's order, never as
Python or JSON (issue 13, item 8); whatever a peer put in it renders inert."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hotline.display import unsafe
from hotline.norms.bodytext import body_line, body_lines, is_flat
from hotline.norms.files import load_templates, shipped_dir
from tests.hostile_text import hostile_text as hostile
from tests.template_examples import incident_at_sea

SHIPPED = load_templates(shipped_dir())
INCIDENT = SHIPPED.latest("incident-at-sea")
assert INCIDENT is not None
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

UNITS_BODY: dict[str, Any] = {
    # keys deliberately out of the schema's order: the schema's order is what is shown
    "narrative": "Three low passes.",
    "units": [{"name": "Steadfast", "party": "north", "kind": "surface_ship", "speed_knots": 14},
              {"party": "south", "kind": "aircraft", "name": "patrol aircraft"}],
    "position": {"longitude": "34.2100", "latitude": "43.1050"},
    "time": "2026-12-01T06:00:00.000Z",
    "prohibited_acts": ["simulated_attack", "aerobatics_over_ships"],
}


def test_a_units_body_is_titled_lines_in_the_schemas_order() -> None:
    assert body_lines(UNITS_BODY, INCIDENT.fields) == [
        "Time: 2026-12-01T06:00:00.000Z",
        "Position:",
        "  Latitude: 43.1050",
        "  Longitude: 34.2100",
        "Units:",
        "  1. Party id: north",
        "     Kind: surface_ship",
        "     Name: Steadfast",
        "     Speed (knots): 14",
        "  2. Party id: south",
        "     Kind: aircraft",
        "     Name: patrol aircraft",
        "Prohibited acts: simulated_attack, aerobatics_over_ships",
        "Narrative: Three low passes.",
    ]


def test_the_one_line_form_nests_in_parentheses_and_brackets() -> None:
    assert body_line(UNITS_BODY, INCIDENT.fields) == (
        "Time: 2026-12-01T06:00:00.000Z; Position: (Latitude: 43.1050, Longitude: 34.2100); "
        "Units: [(Party id: north, Kind: surface_ship, Name: Steadfast, Speed (knots): 14), "
        "(Party id: south, Kind: aircraft, Name: patrol aircraft)]; "
        "Prohibited acts: simulated_attack, aerobatics_over_ships; Narrative: Three low passes.")


def test_without_a_schema_keys_are_made_readable_and_values_plain() -> None:
    body = {"speed_knots": 3, "armed": True, "escort": None, "tags": [], "extra": {}}
    assert body_lines(body) == ["Speed knots: 3", "Armed: yes", "Escort: none", "Tags: (none)",
                                "Extra: (none)"]
    assert body_line({"a_b": [1, 2], "c": {"d": False}}) == "A b: 1, 2; C: (D: no)"
    assert is_flat({"a": [1, "x"], "b": "y"}) and not is_flat({"a": [{"b": 1}]})


def test_no_shipped_example_shows_python_or_json() -> None:
    body = incident_at_sea(NOW)[0].body
    text = "\n".join(body_lines(body, INCIDENT.fields)) + body_line(body, INCIDENT.fields)
    assert "{" not in text and "'" not in text and '"' not in text and "=" not in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | hostile,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile, inner, max_size=3),
    max_leaves=12)


@given(st.dictionaries(hostile, json_values, max_size=4))
def test_any_body_renders_inert_lines(body: dict[str, Any]) -> None:
    lines = body_lines(body, INCIDENT.fields)
    line = body_line(body, INCIDENT.fields)
    for text in (*lines, line):
        assert unsafe(text) == [] and "\n" not in text
    if is_flat(body):
        assert len(lines) == len(body)  # one line per field
    assert len(lines) >= len(body)
