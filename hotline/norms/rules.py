"""Cross-field norms a JSON Schema cannot say (DESIGN.md §6 ``rules``). Pure.

Each rule is a small object with ``check(envelope, ctx)`` that returns ``None`` or raises a
``ProtocolViolation`` with the rule's own code, naming the rule and the field. A template lists
them under ``rules:`` and all of them must hold. Field paths are dotted (``window.start``); ``[]``
steps into every item of a list (``tables[].lines``). A rule skips a field that is absent: whether
a field is required is the schema's business, not the rule's. The values a rule visits are
steps of the envelope's check budget (``hotline.norms.bodyschema``), so that no number of
rules over however long a list can stall a check.

====================  ==============================================  =========================
rule                  holds when                                      code
====================  ==============================================  =========================
``min_notice``        ``field`` (a time) is at least ``at_least``      ``norm.late_notice``
                      after the server logged the envelope
``ordered``           the ``fields`` (times or dates) never go back;   ``norm.order``
                      optionally span at most ``max_span``
``sequential``        each list at ``field`` numbers its items by      ``norm.sequence``
                      ``key`` 1, 2, 3, ... with no gap
``reply_to``          the envelope answers a message of one of          ``norm.reply_to``
                      ``templates`` sent by another party
``catalogue``         ``number`` (and ``code``) name an entry of the    ``norm.catalogue``
                      agreement's pre-agreed catalogue
``precedence_floor``  precedence is at least what ``field``'s value     ``norm.precedence_too_low``
                      implies (``floor: {value: precedence}``)
====================  ==============================================  =========================
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any, Protocol

import jsonschema
from jsonschema.exceptions import best_match

from hotline.display import article
from hotline.envelope import Envelope, Precedence
from hotline.errors import ConfigError, HotlineError, ProtocolViolation
from hotline.norms.agreement import Agreement
from hotline.norms.bodyschema import spend
from hotline.norms.duration import describe_duration, parse_duration
from hotline.times import parse_time

PRECEDENCE_RANK = {Precedence.ROUTINE: 0, Precedence.PRIORITY: 1, Precedence.IMMEDIATE: 2,
                   Precedence.FLASH: 3}


@dataclass(frozen=True)
class Replied:
    """The message an envelope's ``reply_to`` names, as the server found it in the log."""

    template: str
    party: str
    kind: str


@dataclass(frozen=True, kw_only=True)
class Context:
    """What a rule may know beyond the envelope: the channel's agreement, the sender, and when
    the envelope counts as sent.

    ``logged`` is the server's log time (the moment it checks the envelope; the auditor passes
    the entry's ``time``; a client checking before it sends passes its own clock). Every
    time-based norm is measured from it, never from the sender's own ``created``, which the
    sender chooses: a notice backdated by two days would otherwise pass a 24-hour minimum.
    """

    agreement: Agreement
    party: str
    role: str
    logged: datetime
    replied: Replied | None = None


class Rule(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def message(self) -> str: ...  # the agreement's own words, added to every refusal

    def check(self, envelope: Envelope, ctx: Context) -> None: ...

    def describe(self) -> str: ...


def values_at(body: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every ``(concrete path, value)`` at a rule path; absent steps yield nothing. Each value
    visited is a step of the running check's budget (``bodyschema.spend``)."""
    spend(1)
    head, _, rest = path.partition(".")
    many = head.endswith("[]")
    key = head[:-2] if many else head
    if not isinstance(body, dict) or key not in body:
        return
    value = body[key]
    items = list(enumerate(value)) if many and isinstance(value, list) else [(None, value)]
    if many and not isinstance(value, list):
        return
    for i, item in items:
        here = f"{key}[{i}]" if i is not None else key
        if rest:
            yield from ((f"{here}.{p}", v) for p, v in values_at(item, rest))
        else:
            yield here, item


def _moment(value: Any, field: str) -> datetime:
    """A date-time, or a date (midnight UTC); the schema already checked the form."""
    spend(4)  # a parse: a few microseconds
    if isinstance(value, str) and len(value) == 10:
        try:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        except ValueError:
            pass
    try:
        return parse_time(value, field=f"body.{field}")
    except HotlineError:  # never the value: the reason names the field
        raise ProtocolViolation(f"body.{field} is not an RFC 3339 UTC time or a date",
                                code="template.invalid") from None


def _broken(rule: Rule, detail: str, code: str) -> ProtocolViolation:
    """A rule's refusal: which rule, what is wrong, then the agreement's own words for it.

    ``detail`` names fields and what the rule needs, never a body value: refusals are logged as
    ``rejected`` entries that other parties read."""
    return ProtocolViolation(f"rule {rule.id}: {detail}. {rule.message}".strip(), code=code)


@dataclass(frozen=True)
class MinNotice:
    id: str
    field: str
    at_least: timedelta
    message: str

    def check(self, envelope: Envelope, ctx: Context) -> None:
        for path, value in values_at(envelope.body, self.field):
            if _moment(value, path) - ctx.logged < self.at_least:
                raise _broken(self, f"body.{path} must be at least "
                              f"{describe_duration(self.at_least)} after the time the server logs "
                              "the envelope (not the time it says it was created)",
                              "norm.late_notice")

    def describe(self) -> str:
        return f"{self.field} at least {describe_duration(self.at_least)} after sending"


@dataclass(frozen=True)
class Ordered:
    id: str
    fields: tuple[str, ...]
    max_span: timedelta | None
    message: str

    def check(self, envelope: Envelope, ctx: Context) -> None:
        found = [(path, _moment(value, path))
                 for f in self.fields for path, value in values_at(envelope.body, f)]
        for (p1, t1), (p2, t2) in pairwise(found):
            if t2 < t1:
                raise _broken(self, f"body.{p2} is before body.{p1}", "norm.order")
        if self.max_span is not None and len(found) >= 2 and found[-1][1] - found[0][1] > self.max_span:
            raise _broken(self, f"body.{found[0][0]} to body.{found[-1][0]} spans more than "
                                f"{describe_duration(self.max_span)}", "norm.order")

    def describe(self) -> str:
        span = f", within {describe_duration(self.max_span)}" if self.max_span else ""
        return " <= ".join(self.fields) + span


@dataclass(frozen=True)
class Sequential:
    id: str
    field: str
    key: str
    message: str

    def check(self, envelope: Envelope, ctx: Context) -> None:
        for path, items in values_at(envelope.body, self.field):
            if not isinstance(items, list):
                continue
            for n, item in enumerate(items, start=1):
                spend(1)
                got = item.get(self.key) if isinstance(item, dict) else None
                if got != n or isinstance(got, bool):
                    raise _broken(self, f"body.{path}[{n - 1}].{self.key} must be {n} (items are "
                                        "numbered 1, 2, 3, ... without gaps)", "norm.sequence")

    def describe(self) -> str:
        return f"{self.field}: {self.key} numbered 1, 2, 3, ..."


@dataclass(frozen=True)
class ReplyTo:
    id: str
    templates: tuple[str, ...]
    message: str

    def check(self, envelope: Envelope, ctx: Context) -> None:
        replied = ctx.replied
        wanted = " or ".join(self.templates)
        if envelope.reply_to is None or replied is None:
            raise _broken(self, f"it must answer {article(wanted)} (reply_to its id)", "norm.reply_to")
        if replied.template not in self.templates or replied.kind != "message":
            raise _broken(self, f"reply_to names {article(replied.template)}, not {article(wanted)}",
                          "norm.reply_to")
        if replied.party == ctx.party:
            raise _broken(self, f"{ctx.party} cannot answer its own {replied.template}", "norm.reply_to")

    def describe(self) -> str:
        return "answers a " + " or ".join(self.templates) + " of another party"


@dataclass(frozen=True)
class Catalogue:
    id: str
    message: str

    def check(self, envelope: Envelope, ctx: Context) -> None:
        number = envelope.body.get("number")
        spend(1 + len(ctx.agreement.catalogue))
        items = {e["number"]: e for e in ctx.agreement.catalogue}
        item = items.get(number) if isinstance(number, int) and not isinstance(number, bool) else None
        if item is None:
            known = ", ".join(str(n) for n in sorted(items)) or "none"
            raise _broken(self, f"body.number must be a number of the catalogue of channel "
                                f"{ctx.agreement.channel} (numbers: {known})", "norm.catalogue")
        code = envelope.body.get("code")
        if code is not None and code != item["code"]:
            raise _broken(self, "body.code must be the code word of the catalogue message that "
                                "body.number names", "norm.catalogue")

    def describe(self) -> str:
        return "number from the agreement's catalogue"


@dataclass(frozen=True)
class PrecedenceFloor:
    id: str
    field: str
    floor: Mapping[str, Precedence]
    message: str

    def check(self, envelope: Envelope, ctx: Context) -> None:
        for path, value in values_at(envelope.body, self.field):
            needed = self.floor.get(value) if isinstance(value, str) else None
            if needed is not None and PRECEDENCE_RANK[envelope.precedence] < PRECEDENCE_RANK[needed]:
                raise _broken(self, f"body.{path} calls for a higher precedence than "
                                    f"{envelope.precedence}", "norm.precedence_too_low")

    def describe(self) -> str:
        return f"{self.field} implies " + ", ".join(f"{k}: {v}+" for k, v in self.floor.items())


_STR = {"type": "string", "minLength": 1}
_COMMON = {"rule": {"type": "string"}, "id": {"type": "string", "pattern": "^[a-z0-9-]{1,64}$"},
           "message": {"type": "string"}}
RULE_SCHEMAS: dict[str, dict[str, Any]] = {
    "min_notice": {"required": ["field", "at_least"], "properties": {"field": _STR, "at_least": _STR}},
    "ordered": {"required": ["fields"], "properties": {
        "fields": {"type": "array", "minItems": 2, "items": _STR}, "max_span": _STR}},
    "sequential": {"required": ["field", "key"], "properties": {"field": _STR, "key": _STR}},
    "reply_to": {"required": ["templates"], "properties": {
        "templates": {"type": "array", "minItems": 1, "items": _STR}}},
    "catalogue": {"properties": {}},
    "precedence_floor": {"required": ["field", "floor"], "properties": {
        "field": _STR, "floor": {"type": "object", "minProperties": 1,
                                 "additionalProperties": {"enum": [p.value for p in Precedence]}}}},
}
_VALIDATORS = {name: jsonschema.Draft202012Validator(
    {"type": "object", "additionalProperties": False, **schema,
     "properties": {**_COMMON, **schema["properties"]}}) for name, schema in RULE_SCHEMAS.items()}


def rule_from_json(doc: Any, *, source: str, path: tuple[str, ...]) -> Rule:
    """One ``rules:`` item; ConfigError names the file and the key."""
    name = doc.get("rule") if isinstance(doc, dict) else None
    validator = _VALIDATORS.get(name) if isinstance(name, str) else None
    if validator is None or not isinstance(name, str):
        raise ConfigError(f"rule must be one of {', '.join(RULE_SCHEMAS)}", file=source,
                          path=(*path, "rule"))
    error = best_match(validator.iter_errors(doc))
    if error is not None:
        raise ConfigError(error.message, file=source, path=(*path, *map(str, error.absolute_path)))
    rule_id = doc.get("id", name.replace("_", "-"))
    message = doc.get("message", "").strip()

    def duration(key: str) -> timedelta:
        try:
            return parse_duration(doc[key])
        except ValueError as exc:
            raise ConfigError(str(exc), file=source, path=(*path, key)) from None

    match name:
        case "min_notice":
            return MinNotice(rule_id, doc["field"], duration("at_least"), message)
        case "ordered":
            return Ordered(rule_id, tuple(doc["fields"]),
                           duration("max_span") if "max_span" in doc else None, message)
        case "sequential":
            return Sequential(rule_id, doc["field"], doc["key"], message)
        case "reply_to":
            return ReplyTo(rule_id, tuple(doc["templates"]), message)
        case "catalogue":
            return Catalogue(rule_id, message)
        case _:
            return PrecedenceFloor(rule_id, doc["field"],
                                   {k: Precedence(v) for k, v in doc["floor"].items()}, message)


TIME_FORMATS = ("date-time", "date")


def schema_at(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The subschema of a rule path (``tables[].lines``), or None if the schema has no such field."""
    node: Any = schema
    for part in path.split("."):
        many = part.endswith("[]")
        props = node.get("properties", {}) if isinstance(node, dict) else {}
        node = props.get(part[:-2] if many else part)
        if many:
            node = node.get("items") if isinstance(node, dict) and node.get("type") == "array" else None
        if not isinstance(node, dict):
            return None
    return node if isinstance(node, dict) else None


def check_rule_fields(rule: Rule, fields: dict[str, Any], allowed: Iterable[Precedence], *,
                      source: str, path: tuple[str, ...]) -> None:
    """At load: a rule names fields the schema has, of the kind it needs. A typo such as
    ``window.strat`` would otherwise load and then never apply."""

    def field(name: str, key: str) -> dict[str, Any]:
        sub = schema_at(fields, name)
        if sub is None:
            raise ConfigError(f"{name!r} is not a field of this template", file=source,
                              path=(*path, key))
        return sub

    def timed(name: str, key: str) -> None:
        if field(name, key).get("format") not in TIME_FORMATS:
            raise ConfigError(f"{name!r} must be a date-time or date field for this rule",
                              file=source, path=(*path, key))

    match rule:
        case MinNotice():
            timed(rule.field, "field")
        case Ordered():
            for name in rule.fields:
                timed(name, "fields")
        case Sequential():
            items = field(rule.field, "field")
            key_schema = items.get("items", {}).get("properties", {}).get(rule.key, {})
            if items.get("type") != "array" or key_schema.get("type") != "integer":
                raise ConfigError(f"{rule.field!r} must be a list of objects with an integer "
                                  f"{rule.key!r}", file=source, path=(*path, "key"))
        case PrecedenceFloor():
            enum = field(rule.field, "field").get("enum")
            strangers = sorted(set(rule.floor) - set(enum)) if enum is not None else []
            if strangers:
                raise ConfigError(f"{', '.join(strangers)} is not a value of {rule.field!r}",
                                  file=source, path=(*path, "floor"))
            barred = sorted({p.value for p in rule.floor.values()} - {p.value for p in allowed})
            if barred:
                raise ConfigError(f"precedence {', '.join(barred)} is not allowed by this template",
                                  file=source, path=(*path, "floor"))
        case Catalogue():
            field("number", "rule")
        case _:
            pass
