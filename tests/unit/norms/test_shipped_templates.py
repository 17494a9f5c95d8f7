"""The shipped protocol templates (docs/ARCHITECTURE.md "Protocol templates", "Shipped templates"): they load,
their ids are the contract's, their
form is complete, and every example of ``tests.template_examples`` is accepted or refused by
``Template.check`` exactly as it says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hotline import deployment
from hotline.envelope import Envelope, Kind, Precedence, new_envelope_id
from hotline.errors import ProtocolViolation
from hotline.norms.agreement import Agreement
from hotline.norms.duration import parse_duration
from hotline.norms.files import load_templates, shipped_dir
from hotline.norms.rules import Context, Replied
from hotline.norms.template import AckRequirement, Audience, Template
from hotline.times import format_time
from tests.template_examples import (
    DEMO_CATALOGUE,
    EXAMPLES,
    PARTIES,
    SENDER_PARTY,
    TEMPLATE_IDS,
    Bad,
    Case,
    Example,
)

TEMPLATES = {t.id: t for t in load_templates(shipped_dir())}
NOW = datetime(2026, 3, 2, 9, 30, 15, 250_000, tzinfo=UTC)
# A second clock: the examples are relative to ``now``, so they hold on any date (here, year end).
NOWS = (NOW, datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))
CHANNEL = "north-south"
OTHER_PARTY = "south"
_counter = iter(range(1, 1 << 30))


def agreement(catalogue: list[dict[str, Any]] | None = None) -> Agreement:
    return Agreement.from_json({
        "type": "agreement", "channel": CHANNEL, "version": 1,
        "parties": [{"id": p, "authority": f"authority-key-of-{p}"} for p in PARTIES],
        "templates": [t.ref() for t in TEMPLATES.values()],
        "heartbeat": {"interval": 30, "grace": 90},
        "auditors": [{"id": "audrey", "authority": "authority-key-of-mediator"}],
        "witnesses": [{"id": f"{p}-agent", "authority": f"authority-key-of-{p}"} for p in PARTIES],
        "effective": format_time(NOW - timedelta(days=30)),
        "catalogue": DEMO_CATALOGUE if catalogue is None else catalogue,
    })


AGREEMENT = agreement()


def envelope_and_context(template: Template, example: Example, now: datetime) -> tuple[Envelope, Context]:
    role = (example.sender_role if isinstance(example, Bad) else None) or sorted(template.roles)[0]
    replied = None
    reply_to = None
    if example.reply_template is not None:
        kind = TEMPLATES[example.reply_template].kind
        replied = Replied(template=example.reply_template, party=OTHER_PARTY, kind=kind.value)
        reply_to = new_envelope_id(next(_counter).to_bytes(16, "big"))
    env = Envelope.build(id=new_envelope_id(next(_counter).to_bytes(16, "big")), kind=template.kind,
                         channel=CHANNEL, sender="alice", template=template.id,
                         precedence=example.precedence, created=now, body=example.body,
                         reply_to=reply_to)
    return env, Context(agreement=AGREEMENT, party=SENDER_PARTY, role=role, logged=now,
                        replied=replied)


def all_examples() -> Iterator[Any]:
    for template_id in TEMPLATE_IDS:
        for now in NOWS:
            for example in EXAMPLES[template_id](now):
                yield pytest.param(template_id, example, now,
                                   id=f"{template_id}:{example.name}@{now:%m-%d}")


def properties(schema: Any, path: str = "body") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every ``(path, name, schema)`` of a property or array item, however deep."""
    if not isinstance(schema, dict):
        return
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}.{name}", name, sub
        yield from properties(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield f"{path}[]", "", schema["items"]
        yield from properties(schema["items"], f"{path}[]")


# --- the set ---------------------------------------------------------------------------------------


def test_every_file_in_the_folder_is_a_template_and_loads() -> None:
    files = sorted(p for p in shipped_dir().iterdir() if not p.name.startswith("."))
    assert files and all(p.suffix == ".yaml" for p in files), files
    for path in files:
        template = Template.from_text(path.read_bytes(), source=str(path))
        assert path.stem == template.id
        assert template.version == (2 if template.id in VERSION_2 else 1)


# Version 2: the message's text sealed (issue 16); these four carry files (issue 19).
VERSION_2 = {"message", "data-exchange", "incident-at-sea", "risk-assessment", "humanitarian-notice"}


def test_documents_travel_with_the_reports_that_need_them() -> None:
    """What the hotlines the templates follow carry beside text: imagery of an incident at sea,
    the map of a risk, the exchanged data, the lists and documents of a humanitarian notice."""
    assert {t.id: list(t.attachments) for t in TEMPLATES.values() if t.attachments} == {
        "data-exchange": ["data_files"], "incident-at-sea": ["photos"],
        "risk-assessment": ["annexes"], "humanitarian-notice": ["documents"]}
    assert TEMPLATES["data-exchange"].attachments["data_files"].max_bytes >= 50_000_000
    assert "image/jpeg" in TEMPLATES["incident-at-sea"].attachments["photos"].media_types


def test_free_text_messages_are_for_the_parties_alone() -> None:
    """The host never reads a free-text message: its text is sealed to the channel's parties."""
    assert TEMPLATES["message"].readers == {"text": "parties"}


def test_the_ids_are_exactly_designs_section_13() -> None:
    design = ("message preagreed risk-assessment launch-notification unusual-activity-query "
              "unusual-activity-reply incident-at-sea data-exchange consultation-request "
              "humanitarian-notice heartbeat echo").split()
    assert set(TEMPLATES) == set(design) == set(TEMPLATE_IDS) == set(EXAMPLES)
    assert len(TEMPLATES) == len(design)


def test_a_signed_agreement_can_pin_them_all() -> None:
    assert AGREEMENT.template_ids() == set(TEMPLATES)
    for template in TEMPLATES.values():
        assert load_templates(shipped_dir()).resolve(AGREEMENT, template.id).sha256 == template.sha256


# --- their form ------------------------------------------------------------------------------------


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_basis_names_a_year_and_an_agreement(template_id: str) -> None:
    basis = TEMPLATES[template_id].basis
    assert re.search(r"\b(19[4-9]\d|20[0-2]\d)\b", basis), basis
    assert re.search(r"\b(Agreement|Convention|Conventions|Document|Memorandum|Treaty|Code|"
                     r"Protocol|protocol)\b", basis), basis


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_every_field_is_described_and_snake_case(template_id: str) -> None:
    fields = TEMPLATES[template_id].fields
    seen = list(properties(fields))
    assert seen
    for path, name, schema in seen:
        assert str(schema.get("description", "")).strip(), f"{template_id}: {path} has no description"
        if name:
            assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name), f"{template_id}: {path}"


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_strings_are_bounded_and_free_text_is_never_empty(template_id: str) -> None:
    free_text = False
    for path, _, schema in properties(TEMPLATES[template_id].fields):
        if schema.get("type") != "string" or "format" in schema:
            continue
        pattern = schema.get("pattern", "")
        if pattern.startswith("^") and pattern.endswith("$"):
            continue  # a closed form: tag, id, coordinate, code word
        free_text = True
        assert schema.get("minLength", 0) >= 1, f"{template_id}: {path} may be empty"
        assert schema.get("pattern") == r"\S", f"{template_id}: {path} may be blank"
        assert 1 <= schema.get("maxLength", 0) <= 16_000, f"{template_id}: {path} is unbounded"
    if free_text:
        lang = TEMPLATES[template_id].fields["properties"].get("lang")
        assert lang is not None, f"{template_id} has free text but no lang field"
        assert lang["pattern"] == "^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$"


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_senders_and_rate(template_id: str) -> None:
    template = TEMPLATES[template_id]
    if template.kind is Kind.MESSAGE:
        assert template.roles == {"liaison"}
        assert template.ack is not None
    else:
        assert template.roles == {"agent"} and template.ack is None
    if template_id == "humanitarian-notice":
        assert template.rate is None
        assert "rate:" not in "".join(line.split("#")[0] for line in
                                      (shipped_dir() / "humanitarian-notice.yaml").read_text().splitlines())
        assert set(template.allowed_precedence) == set(Precedence)
    elif template.kind is Kind.MESSAGE:
        assert template.rate is not None and template.rate.max >= 1


@pytest.mark.parametrize(("template_id", "kind", "deadline", "default"), [
    ("message", AckRequirement.RECEIVED, None, Precedence.ROUTINE),
    ("preagreed", AckRequirement.UNDERSTOOD, None, Precedence.FLASH),
    ("risk-assessment", AckRequirement.UNDERSTOOD, None, Precedence.PRIORITY),
    ("launch-notification", AckRequirement.UNDERSTOOD, None, Precedence.IMMEDIATE),
    ("unusual-activity-query", AckRequirement.REPLY, "PT48H", Precedence.PRIORITY),
    ("unusual-activity-reply", AckRequirement.RECEIVED, None, Precedence.PRIORITY),
    ("incident-at-sea", AckRequirement.UNDERSTOOD, None, Precedence.IMMEDIATE),
    ("data-exchange", AckRequirement.RECEIVED, "P3D", Precedence.ROUTINE),
    ("consultation-request", AckRequirement.REPLY, "PT48H", Precedence.PRIORITY),
    ("humanitarian-notice", AckRequirement.RECEIVED, "PT15M", Precedence.IMMEDIATE),
])
def test_ack_and_precedence(template_id: str, kind: AckRequirement, deadline: str | None,
                            default: Precedence) -> None:
    template = TEMPLATES[template_id]
    assert template.ack is not None and template.ack.kind is kind
    assert template.ack.deadline == (parse_duration(deadline) if deadline else None)
    assert template.default_precedence is default
    if deadline:  # the basis fixes it, whatever the precedence
        assert {template.ack_deadline(p) for p in template.allowed_precedence} == {parse_duration(deadline)}


def test_rules_where_the_brief_puts_them() -> None:
    def rule_ids(template_id: str) -> set[str]:
        return {type(r).__name__ for r in TEMPLATES[template_id].rules}

    assert rule_ids("launch-notification") == {"MinNotice", "Ordered"}
    notice = next(r for r in TEMPLATES["launch-notification"].rules if type(r).__name__ == "MinNotice")
    assert notice.field == "window.start" and notice.at_least == timedelta(hours=24)  # type: ignore[attr-defined]
    assert rule_ids("unusual-activity-reply") == {"ReplyTo", "Ordered"}
    assert rule_ids("data-exchange") == {"Sequential"}
    assert rule_ids("preagreed") == {"Catalogue"}
    assert rule_ids("risk-assessment") == {"PrecedenceFloor", "Ordered"}
    floor = next(r for r in TEMPLATES["risk-assessment"].rules if type(r).__name__ == "PrecedenceFloor")
    assert dict(floor.floor) == {"critical": Precedence.FLASH, "high": Precedence.IMMEDIATE,  # type: ignore[attr-defined]
                                 "elevated": Precedence.PRIORITY}
    # Every precedence a floor demands is one the template allows, or that level could never be sent.
    assert set(floor.floor.values()) <= set(TEMPLATES["risk-assessment"].allowed_precedence)  # type: ignore[attr-defined]
    assert TEMPLATES["unusual-activity-query"].audience is Audience.ADDRESSED
    assert TEMPLATES["preagreed"].fields["properties"].keys() == {"number", "code"}


def test_the_demo_catalogue_is_bilingual_and_agreeable() -> None:
    assert 5 <= len(DEMO_CATALOGUE) <= 8
    assert [e["number"] for e in DEMO_CATALOGUE] == list(range(1, len(DEMO_CATALOGUE) + 1))
    for entry in DEMO_CATALOGUE:
        assert set(entry["text"]) == {"en", "ru"}
        assert re.search("[а-яА-Я]", entry["text"]["ru"]) and not re.search("[а-яА-Я]", entry["text"]["en"])
    assert AGREEMENT.catalogue == deployment.DEMO_CATALOGUE
    code = TEMPLATES["preagreed"].fields["properties"]["code"]["pattern"]
    assert all(re.fullmatch(code, e["code"]) for e in DEMO_CATALOGUE)


# --- the examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_each_template_has_valid_and_two_kinds_of_invalid_examples(template_id: str) -> None:
    examples = EXAMPLES[template_id](NOW)
    assert any(isinstance(e, Case) for e in examples)
    codes = {e.code for e in examples if isinstance(e, Bad)}
    assert "template.invalid" in codes
    assert codes - {"template.invalid"}, f"{template_id}: no rule or norm violation among {codes}"
    assert len({e.name for e in examples}) == len(examples)
    rule_codes = {"MinNotice": "norm.late_notice", "Ordered": "norm.order", "Sequential": "norm.sequence",
                  "ReplyTo": "norm.reply_to", "Catalogue": "norm.catalogue",
                  "PrecedenceFloor": "norm.precedence_too_low"}
    for rule in TEMPLATES[template_id].rules:
        assert rule_codes[type(rule).__name__] in codes, f"{template_id}: rule {rule.id} never broken"


@pytest.mark.parametrize(("template_id", "example", "now"), list(all_examples()))
def test_example(template_id: str, example: Example, now: datetime) -> None:
    template = TEMPLATES[template_id]
    env, ctx = envelope_and_context(template, example, now)
    if isinstance(example, Case):
        template.check(env, ctx, composed=True)  # as the sender composed it, before sealing
        assert template.recipients(AGREEMENT, SENDER_PARTY, env.body)
        if template.readers:  # never sent so: the host refuses those fields in clear
            with pytest.raises(ProtocolViolation, match="may be read only by its readers"):
                template.check(env, ctx)
    else:
        with pytest.raises(ProtocolViolation) as info:
            template.check(env, ctx, composed=True)
        assert info.value.code == example.code, info.value.message
        if example.code == "template.invalid":
            assert template_id in info.value.message


def test_addressed_recipients_are_the_parties_named() -> None:
    query = TEMPLATES["unusual-activity-query"]
    case = next(e for e in EXAMPLES["unusual-activity-query"](NOW) if e.name == "request to two parties")
    assert query.recipients(AGREEMENT, SENDER_PARTY, case.body) == ["mediator", "south"]
    launch = TEMPLATES["launch-notification"]
    assert launch.recipients(AGREEMENT, SENDER_PARTY, {}) == ["mediator", "south"]


def test_reply_to_own_query_is_refused() -> None:
    reply = TEMPLATES["unusual-activity-reply"]
    case = next(e for e in EXAMPLES["unusual-activity-reply"](NOW) if isinstance(e, Case))
    env, ctx = envelope_and_context(reply, case, NOW)
    own = Context(agreement=AGREEMENT, party=SENDER_PARTY, role="liaison", logged=NOW,
                  replied=Replied(template="unusual-activity-query", party=SENDER_PARTY, kind="message"))
    with pytest.raises(ProtocolViolation) as info:
        reply.check(env, own)
    assert info.value.code == "norm.reply_to"
    reply.check(env, ctx)


def test_preagreed_needs_the_agreements_catalogue() -> None:
    preagreed = TEMPLATES["preagreed"]
    case = next(e for e in EXAMPLES["preagreed"](NOW) if isinstance(e, Case))
    env, _ = envelope_and_context(preagreed, case, NOW)
    bare = Context(agreement=agreement(catalogue=[]), party=SENDER_PARTY, role="liaison", logged=NOW)
    with pytest.raises(ProtocolViolation) as info:
        preagreed.check(env, bare)
    assert info.value.code == "norm.catalogue" and "none" in info.value.message


def test_launch_notice_boundary_is_exactly_24_hours() -> None:
    launch = TEMPLATES["launch-notification"]
    body = next(e for e in EXAMPLES["launch-notification"](NOW) if isinstance(e, Case)).body
    for hours, ok in ((24, True), (23.999, False)):
        start = format_time(NOW + timedelta(hours=hours))
        example = Case("edge", Precedence.IMMEDIATE, {**body, "window": {"start": start, "end": start}})
        env, ctx = envelope_and_context(launch, example, NOW)
        if ok:
            launch.check(env, ctx)
        else:
            with pytest.raises(ProtocolViolation, match="launch-notice-24h"):
                launch.check(env, ctx)
