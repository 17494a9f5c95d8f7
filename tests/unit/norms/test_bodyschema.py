"""Issue 20, defect 3: no template can stall a body check. Patterns run on RE2 (linear time), and
what RE2 cannot run is refused when the template is loaded; a schema declares only keywords
whose work is bounded; and every check is metered, a check past its budget refused
(``template.too_costly``). The hostile inputs here would take hours under a backtracking engine
or a quadratic ``uniqueItems``: these tests finishing at all is that evidence."""

from __future__ import annotations

import copy
import re
import textwrap
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.canonical import dumps
from hotline.envelope import Envelope, Kind, new_envelope_id
from hotline.errors import ConfigError, ProtocolViolation
from hotline.norms.bodyschema import MAX_CHECK_STEPS, MAX_PATTERNS
from hotline.norms.files import load_templates, shipped_dir
from hotline.norms.patterns import MAX_PATTERN_CHARS, compile_pattern
from hotline.norms.rules import Context
from hotline.norms.template import Template
from hotline.times import format_time
from tests.template_examples import EXAMPLES, Case
from tests.unit.norms.test_shipped_templates import AGREEMENT

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=300)
FILE = "protocols/hostile.yaml"
EVIL = "a" * 30 + "!"  # 2^30 paths for a backtracking engine to try against ^(a+)+$


def form(fields: str) -> str:
    """A template whose body schema is ``fields`` (YAML, the mapping under ``fields:``)."""
    return textwrap.dedent("""\
        format: 1
        id: hostile
        version: 1
        title: A form a hostile party proposed
        basis: Test fixture, not shipped; signed by every party all the same.
        senders: {roles: [liaison]}
        precedence: {default: ROUTINE, allowed: [ROUTINE]}
        ack: none
        audience: all
        fields:
        """) + textwrap.indent(textwrap.dedent(fields), "  ")


def text_form(schema: str) -> Template:
    """A template with one required field ``text`` of ``schema`` (flow YAML)."""
    return Template.from_text(form(f"""\
        type: object
        additionalProperties: false
        required: [text]
        properties:
          text: {schema}
        """), source=FILE)


def refusal(template: Template, body: Any) -> ProtocolViolation:
    with pytest.raises(ProtocolViolation) as info:
        template.check_body(body)
    return info.value


# -- patterns -----------------------------------------------------------------------------------

def test_a_catastrophic_pattern_is_answered_at_once_and_correctly() -> None:
    template = text_form("{type: string, pattern: '^(a+)+$'}")
    for text in (EVIL, "a" * 60_000 + "!"):
        violation = refusal(template, {"text": text})
        assert violation.code == "template.invalid"
        assert violation.message == "hostile: body.text: is not in the form the agreed template defines"
    template.check_body({"text": "aaaa"})


@pytest.mark.parametrize(("pattern", "said"), [
    (r"^(a+)\1$", "backreferences and lookaround are not allowed"),
    (r"^(?=a)a+$", "backreferences and lookaround are not allowed"),
    (r"^(?!b)a+$", "backreferences and lookaround are not allowed"),
    (r"(?<=a)b", "backreferences and lookaround are not allowed"),
    (r"\Qa.b\E", r"\Q...\E"),
    (r"[\S]", r"\S inside [...]"),
    ("a" * (MAX_PATTERN_CHARS + 1), f"at most {MAX_PATTERN_CHARS} characters"),
    (r"[a-z]{1000}[0-9]{1000}", "RE2 instructions"),
    (r"(", "missing )"),
])
def test_a_pattern_re2_cannot_run_linearly_is_refused_at_load(pattern: str, said: str) -> None:
    quoted = pattern.replace("'", "''")
    with pytest.raises(ConfigError) as info:
        text_form(f"{{type: string, pattern: '{quoted}'}}")
    assert info.value.message.startswith(f"{FILE}: fields.properties.text.pattern: ")
    assert said in info.value.message


def test_a_template_holds_a_bounded_number_of_patterns() -> None:
    """Each compiled pattern may hold up to 256 KiB for its DFA: a template holds at most
    MAX_PATTERNS of them."""
    props = "".join(f"  p{i}: {{type: string, pattern: '^{i}$'}}\n" for i in range(MAX_PATTERNS + 1))
    fields = f"type: object\nadditionalProperties: false\nproperties:\n{props}"
    with pytest.raises(ConfigError, match=f"more than {MAX_PATTERNS} patterns"):
        Template.from_text(form(fields), source=FILE)
    Template.from_text(form(fields.rsplit("  p", 1)[0] + "\n"), source=FILE)


def test_patterns_under_property_names_are_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"fields\.propertyNames\.pattern: .*backreferences"):
        Template.from_text(form("""\
            type: object
            additionalProperties: false
            propertyNames: {pattern: '^(a)\\1$'}
            """), source=FILE)


def test_patterns_keep_ecma_262_meaning() -> None:
    """JSON Schema patterns are ECMA-262: \\s is every Unicode space (so "not blank" still refuses
    a text of only no-break or ideographic spaces), \\d is ASCII, $ ends the text."""
    blank = text_form(r"{type: string, pattern: '\S'}")
    for text in ("\u3000\u00a0 \t\u2003\ufeff", ""):
        assert refusal(blank, {"text": text}).code == "template.invalid"
    blank.check_body({"text": "\u3000x"})
    assert compile_pattern(r"^\s$").search("\u2028")
    assert not compile_pattern(r"^\d+$").search("\u0663\u0664")  # Arabic-Indic digits
    assert not compile_pattern(r"^[a-z]+$").search("abc\n")
    assert compile_pattern(r"^[\s-]+$").search("\u00a0-")
    assert compile_pattern(r"[]a]").search("]") and compile_pattern(r"[^]a]").search("b")
    assert compile_pattern(r"^[[:alpha:]\s]+$").search("ab c")


# Patterns from a small grammar, on texts of a small alphabet without newlines: RE2 (with ECMA's
# \s spelled out) answers as Python's re does where both are defined.
ATOMS = st.sampled_from(["a", "b", "1", ".", r"\d", r"\w", r"\s", r"\S", "[ab]", "[^a]", "[a-c1]",
                         r"\.", "-", " "])
PATTERNS = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map(lambda p: f"(?:{p[0]}|{p[1]})"),
        st.tuples(inner, st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "*?"])).map(
            lambda p: f"(?:{p[0]}){p[1]}"),
        inner.map(lambda p: f"({p})"),
    ),
    max_leaves=8,
).flatmap(lambda p: st.sampled_from([p, f"^{p}", f"{p}$", f"^{p}$"]))


@FAST
@given(PATTERNS, st.text(alphabet="ab1.- \t", max_size=12))
def test_re2_agrees_with_python_re_on_plain_patterns(pattern: str, text: str) -> None:
    assert compile_pattern(pattern).search(text) == (re.search(pattern, text) is not None)


# -- keywords -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "fields", "key", "said"), [
    ("$ref and $defs", """\
        type: object
        additionalProperties: false
        $defs: {t: {type: string}}
        properties: {text: {$ref: '#/$defs/t'}}
        """, "fields.$defs", "'$defs' is not a keyword"),
    ("$ref", """\
        type: object
        additionalProperties: false
        properties: {text: {$ref: 'https://example.org/schema.json'}}
        """, "fields.properties.text.$ref", "no $ref"),
    ("patternProperties", """\
        type: object
        additionalProperties: false
        patternProperties: {'^(a+)+$': {type: string}}
        """, "fields.patternProperties", "patternProperties"),
    ("unevaluatedProperties", """\
        type: object
        additionalProperties: false
        unevaluatedProperties: false
        """, "fields.unevaluatedProperties", "unevaluated"),
    ("a misspelt keyword", """\
        type: object
        additionalProperties: false
        properties: {text: {type: string, maxlength: 10}}
        """, "fields.properties.text.maxlength", "misspelt"),
    ("a boolean subschema", """\
        type: object
        additionalProperties: false
        properties: {text: {not: true}}
        """, "fields.properties.text.not", "a subschema is an object"),
    ("an object in an enum", """\
        type: object
        additionalProperties: false
        properties: {text: {enum: [a, {b: 1}]}}
        """, "fields.properties.text.enum", "enum and const values"),
    ("a list as const", """\
        type: object
        additionalProperties: false
        properties: {text: {const: [1, 2]}}
        """, "fields.properties.text.const", "enum and const values"),
])
def test_a_schema_declares_only_bounded_keywords(name: str, fields: str, key: str, said: str) -> None:
    with pytest.raises(ConfigError) as info:
        Template.from_text(form(fields), source=FILE)
    assert info.value.message.startswith(f"{FILE}: {key}: "), info.value.message
    assert said in info.value.message, name


# -- the budget ---------------------------------------------------------------------------------

def test_a_check_past_its_budget_is_refused() -> None:
    """3,000 alternatives for each of 20,000 items: 6 * 10^7 subschema checks, about a minute of
    work unmetered; refused after MAX_CHECK_STEPS."""
    alternatives = ", ".join(f"{{const: x{i}}}" for i in range(3000))
    template = text_form(f"{{type: array, items: {{anyOf: [{alternatives}]}}}}")
    template.check_body({"text": ["x2999"] * 3})
    violation = refusal(template, {"text": [0] * 20_000})
    assert violation.code == "template.too_costly"
    assert violation.message.startswith(f"hostile: checking this body against the template takes "
                                        f"more than {MAX_CHECK_STEPS} steps")


def test_the_fullest_shipped_body_is_well_within_the_budget() -> None:
    """The shipped form that allows the largest body (data-exchange: 500 lines a table), filled to
    the envelope's 64 KiB, takes about a fifth of the budget."""
    template = load_templates(shipped_dir()).latest("data-exchange")
    assert template is not None
    example = next(c for c in EXAMPLES["data-exchange"](datetime.now(UTC)) if isinstance(c, Case))
    line = example.body["tables"][0]["lines"][1]
    body = copy.deepcopy(example.body)
    body["tables"] = [{"table": "military_forces", "lines": []}]
    lines: list[dict[str, Any]] = body["tables"][0]["lines"]
    while len(dumps(body)) < 60_000:
        lines.append({**line, "line": len(lines) + 1})
    template.check_body(body)
    lines[-1]["personnel"] = "many"
    assert refusal(template, body).message.startswith("data-exchange: body.tables[0].lines[")


def test_rules_share_the_checks_budget() -> None:
    """300 rules each walking a list of 2,400 times (about six seconds of parsing unmetered):
    the schema and the rules of one envelope draw on one budget."""
    rules = "".join(f"  - {{rule: ordered, id: r{i}, fields: ['at[]', 'at[]']}}\n" for i in range(300))
    text = form("""\
        type: object
        additionalProperties: false
        properties:
          at: {type: array, items: {type: string, format: date-time}}
        """).replace("fields:\n", "rules:\n" + rules + "fields:\n")
    template = Template.from_text(text, source=FILE)
    now = datetime.now(UTC)

    def check(times: int) -> None:
        envelope = Envelope.build(id=new_envelope_id(bytes(16)), kind=Kind.MESSAGE,
                                  channel="north-south", sender="alice", template="hostile",
                                  precedence="ROUTINE", created=now,
                                  body={"at": [format_time(now)] * times})
        template.check(envelope, Context(agreement=AGREEMENT, party="north", role="liaison",
                                         logged=now))

    check(3)
    with pytest.raises(ProtocolViolation) as info:
        check(2400)
    assert info.value.code == "template.too_costly"


def test_unique_items_is_linear_with_json_equality() -> None:
    template = text_form("{type: array, uniqueItems: true}")
    template.check_body({"text": [{"n": n} for n in range(20_000)]})  # pairwise: 2 * 10^8 checks
    template.check_body({"text": [1, True, 0, False, "1", None, [1], [True], {"a": 1}, {"a": True}]})
    for same in ([{"a": 1, "b": [2]}, {"b": [2], "a": 1}], [[1, 2], [1, 2]], [None, None]):
        assert refusal(template, {"text": same}).message == \
            "hostile: body.text: must not list the same item twice"


BODIES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=40)
SHIPPED = sorted(load_templates(shipped_dir()), key=lambda t: (t.id, t.version))


@FAST
@given(st.sampled_from(SHIPPED), BODIES)
def test_any_body_is_accepted_or_refused_with_a_typed_error(template: Template, body: Any) -> None:
    try:
        template.check_body(body)
    except ProtocolViolation as exc:
        assert exc.code == "template.invalid"
