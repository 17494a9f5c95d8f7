"""Refusal reasons never carry a body value (issue 11, defect 12).

A refusal's message goes into the sender's error frame, the server's log and the ``rejected``
entry that the other parties of the channel read: it names the field and the rule, never what the
sender wrote there. Two sweeps:

- every invalid example of every shipped template (tests/template_examples.py): no value of the
  refused body appears in the refusal (texts of four characters or more that are not the
  template's own enum words, and numbers of three digits or more: shorter ones would be found in
  any sentence);
- a probe template with one field per JSON Schema keyword and one use of every rule: a marker value
  placed in the offending field never appears in the refusal, while the field's name does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hotline.envelope import Envelope, Precedence, new_envelope_id
from hotline.errors import ProtocolViolation
from hotline.norms.rules import Context, Replied
from hotline.norms.template import Template
from hotline.times import format_time
from tests.template_examples import EXAMPLES, SENDER_PARTY, TEMPLATE_IDS, Bad
from tests.unit.norms.test_shipped_templates import (
    AGREEMENT,
    NOWS,
    TEMPLATES,
    envelope_and_context,
)


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def vocabulary(template: Template) -> set[str]:
    """The words a template defines itself (enum and const values): a refusal may list them as
    what the field must be; they say nothing of what the sender wrote."""
    words: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "enum" and isinstance(item, list):
                    words.update(str(v) for v in item)
                elif key == "const":
                    words.add(str(item))
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(template.fields)
    return words


def quoted(value: str, message: str) -> bool:
    """``value`` appears in ``message`` as a whole (party "north" is not in "north-south")."""
    return re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", message) is not None


def refusal(template: Template, envelope: Envelope, ctx: Context) -> ProtocolViolation:
    with pytest.raises(ProtocolViolation) as info:
        template.check(envelope, ctx)
    return info.value


def shipped_refusals() -> Iterator[Any]:
    for template_id in TEMPLATE_IDS:
        for now in NOWS:
            for example in EXAMPLES[template_id](now):
                if isinstance(example, Bad):
                    yield pytest.param(template_id, example, now,
                                       id=f"{template_id}:{example.name}@{now:%m-%d}")


@pytest.mark.parametrize(("template_id", "example", "now"), list(shipped_refusals()))
def test_no_shipped_invalid_example_is_quoted(template_id: str, example: Bad, now: datetime) -> None:
    template = TEMPLATES[template_id]
    env, ctx = envelope_and_context(template, example, now)
    message = refusal(template, env, ctx).message
    own_words = vocabulary(template)
    for value in leaves(example.body):
        if isinstance(value, str) and len(value) >= 4 and value not in own_words:
            assert not quoted(value, message), (value, message)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 100:
            assert not quoted(str(value), message), (value, message)


# -- the probe: every keyword, every rule, a marker in the offending field -----------------------

PROBE = """\
format: 1
id: probe
version: 1
title: Refusal-reason probe (test fixture)
basis: >-
  Test fixture, not shipped: one field per JSON Schema keyword and one use of every rule, so that
  a marker value in the offending field can be looked for in the refusal.
senders:
  roles: [liaison]
precedence:
  default: ROUTINE
  allowed: [FLASH, IMMEDIATE, PRIORITY, ROUTINE]
ack: none
audience: addressed
rules:
  - rule: min_notice
    field: window.start
    at_least: PT24H
  - rule: ordered
    fields: [window.start, window.end]
  - rule: sequential
    field: lines
    key: line
  - rule: precedence_floor
    field: level
    floor: {zzmarkerlevel: FLASH, low: PRIORITY}
  - rule: catalogue
fields:
  type: object
  additionalProperties: false
  required: [to]
  properties:
    to: {type: array, items: {type: string}}
    text: {type: string, maxLength: 40, pattern: "^[a-z ]*$"}
    long: {type: string, minLength: 80}
    kind: {enum: [alpha, beta]}
    fixed: {const: fixed}
    count: {type: integer, minimum: 1000000, maximum: 2000000}
    step: {type: integer, multipleOf: 7}
    when: {type: string, format: date-time}
    day: {type: string, format: date}
    tags: {type: array, items: {type: string}, uniqueItems: true}
    few: {type: array, items: {type: string}, maxItems: 1}
    level: {enum: [zzmarkerlevel, low, none]}
    number: {type: integer}
    code: {type: string}
    window:
      type: object
      additionalProperties: false
      properties:
        start: {type: string, format: date-time}
        end: {type: string, format: date-time}
    lines:
      type: array
      items:
        type: object
        additionalProperties: false
        properties:
          line: {type: integer}
"""
TEMPLATE = Template.from_text(PROBE, source="probe.yaml")
LOGGED = datetime(2026, 5, 17, 8, 15, 30, 125_000, tzinfo=UTC)
TO = ["south"]
VALID = {"to": TO, "number": 1}  # the rules run after the schema; the catalogue rule always


def at(**delta: float) -> str:
    return format_time(LOGGED + timedelta(**delta))


# (name, body, precedence, code, field named, markers that must not appear)
PROBES: list[tuple[str, dict[str, Any], Precedence, str, str, tuple[str, ...]]] = [
    ("type", {**VALID, "count": "ZZMARKER-type"}, Precedence.ROUTINE, "template.invalid",
     "body.count", ("ZZMARKER-type",)),
    ("maxLength", {**VALID, "text": "zzmarker " * 6}, Precedence.ROUTINE, "template.invalid",
     "body.text", ("zzmarker",)),
    ("pattern", {**VALID, "text": "ZZMARKER-pattern"}, Precedence.ROUTINE, "template.invalid",
     "body.text", ("ZZMARKER-pattern",)),
    ("minLength", {**VALID, "long": "ZZMARKER-long"}, Precedence.ROUTINE, "template.invalid",
     "body.long", ("ZZMARKER-long",)),
    ("enum", {**VALID, "kind": "ZZMARKER-enum"}, Precedence.ROUTINE, "template.invalid",
     "body.kind", ("ZZMARKER-enum",)),
    ("const", {**VALID, "fixed": "ZZMARKER-const"}, Precedence.ROUTINE, "template.invalid",
     "body.fixed", ("ZZMARKER-const",)),
    ("minimum", {**VALID, "count": 987_654}, Precedence.ROUTINE, "template.invalid",
     "body.count", ("987654",)),
    ("maximum", {**VALID, "count": 9_876_543}, Precedence.ROUTINE, "template.invalid",
     "body.count", ("9876543",)),
    ("multipleOf", {**VALID, "step": 9_876_541}, Precedence.ROUTINE, "template.invalid",
     "body.step", ("9876541",)),
    ("format date-time", {**VALID, "when": "2031-13-45T07:13:37.424Z"}, Precedence.ROUTINE,
     "template.invalid", "body.when", ("2031-13-45", "07:13:37")),
    ("format date", {**VALID, "day": "2031-02-31"}, Precedence.ROUTINE, "template.invalid",
     "body.day", ("2031-02-31",)),
    ("uniqueItems", {**VALID, "tags": ["zzmarker-dup", "zzmarker-dup"]}, Precedence.ROUTINE,
     "template.invalid", "body.tags", ("zzmarker",)),
    ("maxItems", {**VALID, "few": ["zzmarker-a", "zzmarker-b"]}, Precedence.ROUTINE,
     "template.invalid", "body.few", ("zzmarker",)),
    ("nested format", {**VALID, "window": {"start": "ZZMARKER-start"}}, Precedence.ROUTINE,
     "template.invalid", "body.window.start", ("ZZMARKER-start",)),
    ("item type", {**VALID, "lines": [{"line": "ZZMARKER-line"}]}, Precedence.ROUTINE,
     "template.invalid", "body.lines[0].line", ("ZZMARKER-line",)),
    ("an unknown field's value", {**VALID, "zzextra": "ZZMARKER-extra"}, Precedence.ROUTINE,
     "template.invalid", "body", ("ZZMARKER-extra",)),
    ("an unknown field named with the sender's text", {**VALID, "ZZMARKER secret plan": 1},
     Precedence.ROUTINE, "template.invalid", "body", ("ZZMARKER", "secret plan")),
    ("a value inside an unknown object", {**VALID, "window": {"zz": {"deep": "ZZMARKER-deep"}}},
     Precedence.ROUTINE, "template.invalid", "body.window", ("ZZMARKER-deep",)),
    ("required", {"number": 1, "text": "zzmarker"}, Precedence.ROUTINE, "template.invalid", "to",
     ("zzmarker",)),
    ("audience", {**VALID, "to": ["zzmarkerparty"]}, Precedence.ROUTINE, "norm.audience",
     "body.to", ("zzmarkerparty",)),
    ("min_notice", {**VALID, "window": {"start": at(hours=23, seconds=7)}}, Precedence.ROUTINE,
     "norm.late_notice", "body.window.start", (at(hours=23, seconds=7)[:19], "23 h")),
    ("ordered", {**VALID, "window": {"start": at(hours=30, seconds=7), "end": at(hours=25, seconds=9)}},
     Precedence.ROUTINE, "norm.order", "body.window.end",
     (at(hours=30, seconds=7)[:19], at(hours=25, seconds=9)[:19])),
    ("sequential", {**VALID, "lines": [{"line": 1}, {"line": 987_653}]}, Precedence.ROUTINE,
     "norm.sequence", "body.lines[1].line", ("987653",)),
    ("precedence_floor", {**VALID, "level": "zzmarkerlevel"}, Precedence.ROUTINE,
     "norm.precedence_too_low", "body.level", ("zzmarkerlevel",)),
    ("catalogue number", {**VALID, "number": 987_652}, Precedence.ROUTINE, "norm.catalogue",
     "body.number", ("987652",)),
    ("catalogue code word", {**VALID, "code": "ZZMARKER-code"}, Precedence.ROUTINE,
     "norm.catalogue", "body.code", ("ZZMARKER-code",)),
]


@pytest.mark.parametrize(("name", "body", "precedence", "code", "field", "markers"), PROBES,
                         ids=[p[0] for p in PROBES])
def test_a_marker_in_the_offending_field_is_never_quoted(name: str, body: dict[str, Any],
                                                         precedence: Precedence, code: str,
                                                         field: str, markers: tuple[str, ...]) -> None:
    envelope = Envelope.build(id=new_envelope_id(bytes(16)), kind="message", channel="north-south",
                              sender="alice", template="probe", precedence=precedence,
                              created=LOGGED - timedelta(days=2), body=body)
    ctx = Context(agreement=AGREEMENT, party=SENDER_PARTY, role="liaison", logged=LOGGED,
                  replied=Replied(template="probe", party="south", kind="message"))
    refused = refusal(TEMPLATE, envelope, ctx)
    assert refused.code == code, refused.message
    assert field in refused.message, refused.message
    for marker in markers:
        assert marker not in refused.message, (marker, refused.message)


def test_a_field_name_typo_is_still_named() -> None:
    """Naming the field is what makes a refusal useful: an unknown field shaped like a name (a
    typo) is named, with the fields the form does have."""
    envelope = Envelope.build(id=new_envelope_id(bytes(16)), kind="message", channel="north-south",
                              sender="alice", template="probe", precedence="ROUTINE",
                              created=LOGGED, body={**VALID, "colour": "red"})
    ctx = Context(agreement=AGREEMENT, party=SENDER_PARTY, role="liaison", logged=LOGGED)
    message = refusal(TEMPLATE, envelope, ctx).message
    assert "colour" in message and "red" not in message and "window" in message, message
