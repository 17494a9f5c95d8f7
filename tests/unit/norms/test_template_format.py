"""The template file format (docs/ARCHITECTURE.md "Protocol templates"): what the loader refuses and how it
says so, the strict
YAML it reads, the digest an agreement pins, and the ISO 8601 durations templates write."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import ConfigError, ProtocolViolation
from hotline.norms.agreement import Agreement, TemplateRef
from hotline.norms.duration import MAX_DURATION, describe_duration, format_duration, parse_duration
from hotline.norms.files import load_templates
from hotline.norms.template import Template
from hotline.norms.templateset import TemplateSet
from hotline.times import format_time

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=200)
FILE = "protocols/probe.yaml"

# A small valid template; each malformed case below changes one thing in it.
GOOD = """\
format: 1
id: probe
version: 1
title: Probe notification
basis: 1988 Agreement on Notifications of Launches, Art. I (24 hours notice).
senders:
  roles: [liaison]
precedence:
  default: IMMEDIATE
  allowed: [FLASH, IMMEDIATE]
ack:
  kind: understood
  deadline: PT30M
rate:
  max: 10
  per: PT1H
audience: all
rules:
  - rule: min_notice
    field: window.start
    at_least: PT24H
fields:
  type: object
  additionalProperties: false
  required: [window]
  properties:
    window:
      type: object
      additionalProperties: false
      description: The window.
      properties:
        start:
          type: string
          format: date-time
          description: Opens.
"""


def load(text: str, source: str = FILE) -> Template:
    return Template.from_text(text, source=source)


def edited(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def test_the_probe_template_is_valid() -> None:
    template = load(GOOD)
    assert template.id == "probe" and template.ack is not None
    assert template.ack.deadline == timedelta(minutes=30)
    assert template.rate is not None and template.rate.per == timedelta(hours=1)


# Each case: (name, malformed text, what the message must name besides the file).
MALFORMED = [
    ("bad YAML", GOOD + "  oops: [unclosed\n", ["line "]),
    ("duplicate key", edited("title: Probe notification\n", "title: Probe notification\ntitle: Another\n"),
     ["duplicate key 'title'", "line 5"]),
    ("float", edited("  max: 10\n", "  max: 10.5\n"), ["'10.5'", "floating-point", "line 15"]),
    ("float in the schema", edited("          format: date-time\n",
                                   "          format: date-time\n          maxLength: 1.5e+3\n"),
     ["'1.5e+3'", "floating-point"]),
    ("unknown top-level key", edited("audience: all\n", "audience: all\ncolour: red\n"), ["'colour'"]),
    ("missing fields", GOOD.split("fields:\n")[0], ["'fields' is a required property"]),
    ("body not an object", edited("fields:\n  type: object\n", "fields:\n  type: array\n"),
     ["fields.type"]),
    ("nested additionalProperties not false",
     edited("      type: object\n      additionalProperties: false\n", "      type: object\n"),
     ["fields.properties.window", "additionalProperties: false"]),
    ("nested additionalProperties true",
     edited("      additionalProperties: false\n      description: The window.\n",
            "      additionalProperties: true\n      description: The window.\n"),
     ["fields.properties.window", "additionalProperties: false"]),
    ("not a JSON Schema", edited("          type: string\n", "          type: text\n"),
     ["fields.properties.window.properties.start.type", "JSON Schema"]),
    ("bad ack duration", edited("  deadline: PT30M\n", "  deadline: 30 minutes\n"),
     ["ack.deadline", "ISO 8601"]),
    ("month in a duration", edited("  per: PT1H\n", "  per: P1M\n"), ["rate.per", "'P1M'"]),
    ("bad rule duration", edited("    at_least: PT24H\n", "    at_least: 24h\n"),
     ["rules.0.at_least", "'24h'"]),
    ("unknown rule", edited("  - rule: min_notice\n", "  - rule: max_notice\n"),
     ["rules.0.rule", "min_notice"]),
    ("rule missing its field", edited("    at_least: PT24H\n", ""),
     ["rules.0", "'at_least' is a required property"]),
    ("rule with an unknown key", edited("    at_least: PT24H\n", "    at_least: PT24H\n    within: P1D\n"),
     ["rules.0", "'within'"]),
    ("default precedence not allowed", edited("  default: IMMEDIATE\n", "  default: ROUTINE\n"),
     ["precedence.default", "ROUTINE"]),
    ("unknown precedence", edited("  allowed: [FLASH, IMMEDIATE]\n", "  allowed: [FLASH, URGENT]\n"),
     ["precedence.allowed.1", "'URGENT'"]),
    ("addressed without to", edited("audience: all\n", "audience: addressed\n"),
     ["audience", '"to"']),
    ("ack on a heartbeat template", edited("audience: all\n", "audience: all\nkind: heartbeat\n"),
     ["ack", "only message templates"]),
    ("bad id", edited("id: probe\n", "id: Probe Template\n"), ["id", "'Probe Template'"]),
    ("version zero", edited("version: 1\n", "version: 0\n"), ["version"]),
    ("short basis", edited("basis: 1988 Agreement on Notifications of Launches, Art. I (24 hours notice).\n",
                           "basis: a treaty\n"), ["basis"]),
    ("unknown sender role", edited("  roles: [liaison]\n", "  roles: [auditor]\n"),
     ["senders.roles.0", "'auditor'"]),
    ("not UTF-8", GOOD.replace("Probe notification", "Probe \udcff"), ["UTF-8"]),
]


@pytest.mark.parametrize(("name", "text", "named"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_template_is_refused_naming_file_and_key(name: str, text: str, named: list[str]) -> None:
    data = text.encode("utf-8", "surrogateescape")
    with pytest.raises(ConfigError) as info:
        Template.from_text(data, source=FILE)
    message = info.value.message
    assert message.startswith(f"{FILE}: "), message
    for part in named:
        assert part in message, f"{name}: {part!r} not in {message!r}"
    assert info.value.code == "config.invalid"


def test_too_large_a_file_is_refused() -> None:
    with pytest.raises(ConfigError, match="at most"):
        load(GOOD + "# " + "x" * 300_000 + "\n")


def test_yes_no_and_dates_stay_strings() -> None:
    text = edited("          description: Opens.\n",
                  "          description: Opens.\n"
                  "          enum: [yes, no, NO, on, off, Y, n, 2026-01-01, 2026-01-01T00:00:00Z, null]\n"
                  "          examples: [true, false]\n")
    schema = load(text).fields["properties"]["window"]["properties"]["start"]
    assert schema["enum"] == ["yes", "no", "NO", "on", "off", "Y", "n", "2026-01-01",
                              "2026-01-01T00:00:00Z", None]
    assert schema["examples"] == [True, False]


def test_the_digest_is_the_files_bytes() -> None:
    template = load(GOOD)
    assert template.sha256 == hashlib.sha256(GOOD.encode()).hexdigest()
    # A comment is part of the signed file too: any byte changed is another template.
    assert load(GOOD + "# note\n").sha256 != template.sha256
    assert template.ref() == TemplateRef("probe", 1, template.sha256)


def agreement_pinning(*templates: Template) -> Agreement:
    return Agreement.from_json({
        "type": "agreement", "channel": "north-south", "version": 1,
        "parties": [{"id": "north", "authority": "k1"}, {"id": "south", "authority": "k2"}],
        "templates": [t.ref() for t in templates],
        "heartbeat": {"interval": 30, "grace": 90}, "auditors": [],
        "witnesses": [{"id": "north-agent", "authority": "k1"}],
        "effective": format_time(datetime(2026, 1, 1, tzinfo=UTC)),
    })


def test_an_edited_file_no_longer_matches_the_agreement(tmp_path: Path) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text(GOOD)
    original = load_templates(tmp_path)
    signed = agreement_pinning(next(iter(original)))
    assert original.resolve(signed, "probe").sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    data = bytearray(path.read_bytes())
    at = data.index(b"max: 10") + len(b"max: 1")
    data[at:at + 1] = b"2"  # one byte: max 10 -> max 12
    path.write_bytes(bytes(data))
    changed = load_templates(tmp_path)
    (template,) = changed
    assert template.rate is not None and template.rate.max == 12
    assert template.sha256 != signed.templates[0].sha256
    with pytest.raises(ProtocolViolation) as info:
        changed.resolve(signed, "probe")
    assert info.value.code == "template.mismatch"
    assert str(path) in info.value.message and "changed after the parties signed" in info.value.message

    path.unlink()
    (tmp_path / "other.yaml").write_text(GOOD.replace("id: probe", "id: other"))
    with pytest.raises(ProtocolViolation) as info:
        load_templates(tmp_path).resolve(signed, "probe")
    assert info.value.code == "template.mismatch" and "not installed" in info.value.message


def test_a_template_not_in_the_agreement_is_unknown() -> None:
    probe = load(GOOD)
    other = load(GOOD.replace("id: probe", "id: other"), source="protocols/other.yaml")
    templates = TemplateSet([probe, other])
    signed = agreement_pinning(probe)
    assert templates.resolve(signed, "probe") is probe
    with pytest.raises(ProtocolViolation) as info:
        templates.resolve(signed, "other")
    assert info.value.code == "template.unknown" and "agreed: probe" in info.value.message
    assert templates.agreed(signed) == [probe]


def test_two_different_files_cannot_claim_the_same_version() -> None:
    probe = load(GOOD)
    twin = load(GOOD + "# edited\n", source="protocols/probe-copy.yaml")
    with pytest.raises(ConfigError) as info:
        TemplateSet([probe, twin])
    assert "protocols/probe-copy.yaml" in info.value.message and "version" in info.value.message
    newer = load(GOOD.replace("version: 1", "version: 2") + "# edited\n", source="protocols/probe-2.yaml")
    templates = TemplateSet([probe, newer])
    assert templates.latest("probe") is newer and len(templates) == 2


def test_load_templates_refuses_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_templates(tmp_path / "absent")
    with pytest.raises(ConfigError, match="no protocol templates"):
        load_templates(tmp_path)
    (tmp_path / "bad.yaml").write_text(GOOD.replace("version: 1", "version: one"))
    with pytest.raises(ConfigError) as info:
        load_templates(tmp_path)
    assert str(tmp_path / "bad.yaml") in info.value.message and "version" in info.value.message


# --- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "delta", "shortest"), [
    ("PT10M", timedelta(minutes=10), "PT10M"),
    ("PT48H", timedelta(hours=48), "P2D"),
    ("P3D", timedelta(days=3), "P3D"),
    ("P1DT12H", timedelta(hours=36), "P1DT12H"),
    ("PT90M", timedelta(minutes=90), "PT1H30M"),
    ("PT1H30M15S", timedelta(hours=1, minutes=30, seconds=15), "PT1H30M15S"),
    ("P2W", timedelta(weeks=2), "P14D"),
    ("PT0S", timedelta(0), "PT0S"),
    ("P0D", timedelta(0), "PT0S"),
])
def test_duration_parsing_and_formatting(text: str, delta: timedelta, shortest: str) -> None:
    assert parse_duration(text) == delta
    assert format_duration(delta) == shortest
    assert parse_duration(shortest) == delta


@pytest.mark.parametrize("text", ["P1M", "P1Y", "P1Y2M", "PT1.5S", "P", "PT", "P1DT", "-P1D", "P1W2D",
                                  "pt10m", "PT10m", " PT10M", "10M", "", "P1H", "PT1D"])
def test_calendar_and_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601 duration"):
        parse_duration(text)


def test_non_text_durations_are_refused() -> None:
    for value in (None, 10, ["PT1H"]):
        with pytest.raises(ValueError):
            parse_duration(value)


@FAST
@given(st.integers(min_value=0, max_value=int(MAX_DURATION.total_seconds())))
def test_duration_round_trip(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    text = format_duration(delta)
    assert parse_duration(text) == delta
    assert format_duration(parse_duration(text)) == text


def test_describe_duration_for_people() -> None:
    assert describe_duration(timedelta(days=2)) == "2 d"
    assert describe_duration(timedelta(minutes=90)) == "1 h 30 min"
    assert describe_duration(timedelta(0)) == "0 s"
    assert describe_duration(-timedelta(minutes=10)) == "-10 min"


# --- gaps the first review of the loader found, each closed and pinned here -----------------------


def test_an_absurd_duration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"ack\.deadline"):
        load(edited("  deadline: PT30M\n", "  deadline: P99999999999D\n"))


def test_an_object_field_without_properties_is_refused() -> None:
    with pytest.raises(ConfigError, match="additionalProperties"):
        load(edited("          description: Opens.\n",
                    "          description: Opens.\n    extra:\n      type: object\n"
                    "      description: Anything at all.\n"))


def test_a_rule_on_a_missing_field_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"window\.strat"):
        load(edited("    field: window.start\n", "    field: window.strat\n"))


def test_addressed_to_must_be_a_list_of_parties() -> None:
    with pytest.raises(ConfigError, match="audience"):
        load(edited("audience: all\n", "audience: addressed\n").replace(
            "  required: [window]\n", "  required: [window, to]\n").replace(
            "  properties:\n    window:\n",
            "  properties:\n    to:\n      type: string\n      description: One party.\n    window:\n"))


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ConfigError, match="datetime"):
        load(edited("          format: date-time\n", "          format: datetime\n"))


def test_yaml_1_1_sexagesimal_and_octal_stay_strings() -> None:
    text = edited("          description: Opens.\n",
                  "          description: Opens.\n          enum: [12:30, 0755]\n")
    schema = load(text).fields["properties"]["window"]["properties"]["start"]
    assert schema["enum"] == ["12:30", "0755"]
