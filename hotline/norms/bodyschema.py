"""A template's ``fields``: what the body schema may declare, and a check that cannot stall. Pure.

Theory of operation: the schema comes from a party that may be hostile and the body from a sender
that may be, and every server, client and auditor of the channel runs one against the other. Two
rules keep that bounded:

1. **What a schema may declare** (checked when the template is loaded, each fault a
   ``ConfigError`` naming the key): a JSON Schema (draft 2020-12) of the keywords in ``KEYWORDS``
   and ``ANNOTATIONS`` only, so no ``$ref`` (shared subschemas multiply work; remote ones would be
   fetched), no ``patternProperties`` (every object lists its properties); every object closed
   with ``additionalProperties: false``; subschemas are objects (``false`` only as
   ``additionalProperties``); ``enum`` and ``const`` hold plain values (text, integers, booleans,
   null); ``format`` one the server checks; every ``pattern`` one that RE2 runs in linear time
   (``hotline.norms.patterns``). The file itself is bounded in bytes, depth and values
   (``hotline.norms.plainyaml``).
2. **What one check may cost**: every keyword the validator applies is charged against a budget
   of ``MAX_CHECK_STEPS``, a step being about a microsecond of work: one per keyword, plus the
   length of the list or map it walks (``enum``, ``properties``, ``items`` over a long array...),
   plus the size of a search (``Pattern.cost``), plus the length of each error it reports; the
   template's rules (``hotline.norms.rules``) charge the same budget for the values they
   visit. A check that runs out is refused (``template.too_costly``) at once. Steps are counted,
   not timed: a server, a client and an auditor on any machine reach the same verdict.

``uniqueItems`` is ours: jsonschema compares unhashable items pairwise (quadratic); here each item
gets a hashable key with JSON's equality (``1 != true``, key order ignored), in linear time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from hotline.canonical import JSONObject
from hotline.errors import ConfigError, WireError
from hotline.norms.fastschema import Check, compile_schema, json_key
from hotline.norms.patterns import Pattern, compile_pattern
from hotline.times import parse_time

MAX_CHECK_STEPS = 200_000  # at most about 0.2 s here; the fullest shipped body (60 KB) takes 41,000

KEYWORDS = frozenset({
    "type", "enum", "const", "properties", "required", "additionalProperties", "minProperties",
    "maxProperties", "propertyNames", "dependentRequired", "dependentSchemas", "items",
    "prefixItems", "contains", "minContains", "maxContains", "minItems", "maxItems", "uniqueItems",
    "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "allOf", "anyOf", "oneOf", "not", "if", "then", "else"})
ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "deprecated",
                         "readOnly", "writeOnly"})
KNOWN_FORMATS = ("date-time", "date")
MAX_PATTERNS = 256  # per template; a shipped one holds at most 11

_SCHEMA_MAPS = ("properties", "dependentSchemas")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
               "propertyNames")
_SCHEMA_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")


class OutOfSteps(Exception):
    """A body check used up its budget (``check``'s caller turns it into a refusal)."""


_budget: ContextVar[list[int] | None] = ContextVar("hotline_schema_budget", default=None)


def spend(steps: int) -> None:
    """Charge ``steps`` to the running check's budget (none outside a check).

    Raises:
        OutOfSteps: the budget is used up.
    """
    left = _budget.get()
    if left is not None:
        left[0] -= steps
        if left[0] < 0:
            raise OutOfSteps


@contextmanager
def budget() -> Iterator[None]:
    """Run a check on ``MAX_CHECK_STEPS`` (within an enclosing check: on the enclosing one's, so
    that the schema and the rules of one envelope share one budget)."""
    if _budget.get() is not None:
        yield
        return
    token = _budget.set([MAX_CHECK_STEPS])
    try:
        yield
    finally:
        _budget.reset(token)


# -- formats: jsonschema checks them only through a checker; ours knows the two templates use ---

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _check_time(value: object) -> bool:
    if isinstance(value, str):
        parse_time(value)  # raises WireError, which the format checker reports
    return True


def _check_date(value: object) -> bool:
    if isinstance(value, str):
        if not _DATE.fullmatch(value):
            raise ValueError("a date is YYYY-MM-DD")
        date.fromisoformat(value)
    return True


FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
FORMAT_CHECKER.checks("date-time", raises=(WireError,))(_check_time)
FORMAT_CHECKER.checks("date", raises=(ValueError,))(_check_date)


# -- the metered validator --------------------------------------------------------------------

def _width(value: Any) -> int:
    return len(value) if isinstance(value, (list, dict)) else 0


# What a keyword costs besides itself. A descent into a subschema (a new validator, the errors it
# reports) takes a few microseconds; walking one item of a list or map a fraction of one.
_DESCENT = 4
_ERROR = 6  # making an error and handing it up
_DESCENDS_PER_VALUE = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "properties",
                                 "dependentSchemas"})
_DESCENDS_PER_ITEM = frozenset({"items", "contains", "propertyNames"})
_DESCENDS_ONCE = {"not": 1, "if": 2}  # if: the condition, then its then or else
_WALKS_VALUE = frozenset({"enum", "required", "dependentRequired"})
_WALKS_ITEMS = frozenset({"additionalProperties"})

Keyword = Callable[[Any, Any, Any, Any], Iterable[ValidationError] | None]
Cost = Callable[[Any, Any], int]


def _items(instance: Any) -> int:
    return len(instance) if isinstance(instance, (list, dict)) else 0


def _cost(name: str) -> Cost:
    """The steps keyword ``name`` takes on an instance before any error it reports."""
    if name in _DESCENDS_PER_VALUE:
        return lambda value, instance: 1 + _DESCENT * _width(value)
    if name in _DESCENDS_PER_ITEM:
        return lambda value, instance: 1 + _DESCENT * _items(instance)
    if name in _WALKS_VALUE:
        return lambda value, instance: 1 + _width(value)
    if name in _WALKS_ITEMS:
        return lambda value, instance: 1 + _items(instance)
    if name == "format":
        return lambda value, instance: 1 + (len(instance) // 256 if isinstance(instance, str) else 0)
    steps = 1 + _DESCENT * _DESCENDS_ONCE.get(name, 0)
    return lambda value, instance: steps


def _metered(name: str, keyword: Keyword) -> Keyword:
    cost = _cost(name)

    def run(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        left = _budget.get()
        if left is None:  # outside first_error: unmetered
            yield from keyword(validator, value, instance, schema) or ()
            return
        left[0] -= cost(value, instance)
        if left[0] < 0:
            raise OutOfSteps
        for error in keyword(validator, value, instance, schema) or ():
            left[0] -= _ERROR + len(error.message) // 64  # a message may quote the instance
            if left[0] < 0:
                raise OutOfSteps
            yield error

    return run


def _pattern_keyword(patterns: dict[str, Pattern]) -> Keyword:
    """``pattern`` on RE2, with the template's own compiled patterns (a process-wide cache could
    be made to recompile them at every check)."""
    def pattern(validator: Any, source: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if isinstance(instance, str):
            compiled = patterns.get(source) or compile_pattern(source)
            spend(compiled.cost(instance))
            if not compiled.search(instance):
                yield ValidationError(f"does not match {source!r}")
    return pattern


def _unique_items(validator: Any, unique: Any, instance: Any,
                  schema: Any) -> Iterator[ValidationError]:
    if not unique or not isinstance(instance, list):
        return
    seen: set[Any] = set()
    for item in instance:
        size = [0]
        key = json_key(item, size)
        spend(size[0])
        if key in seen:
            yield ValidationError("has non-unique elements")
            return
        seen.add(key)


_Base = jsonschema.Draft202012Validator
_extend: Any = jsonschema.validators.extend  # untyped in some jsonschema releases
_BodyValidator = _extend(_Base, validators={
    name: _metered(name, _unique_items if name == "uniqueItems" else _Base.VALIDATORS[name])
    for name in KEYWORDS if name in _Base.VALIDATORS and name != "pattern"})


@dataclass(frozen=True)
class BodyValidator:
    """A ``fields`` schema's metered jsonschema validator, and its compiled check of valid
    bodies where it has one (``hotline.norms.fastschema``)."""

    metered: Any
    valid: Check | None


_METERED = frozenset(_BodyValidator.VALIDATORS) & KEYWORDS


def body_validator(schema: JSONObject) -> BodyValidator:
    """The validator for a ``fields`` schema that passed ``check_fields``: one class per
    template, holding its compiled patterns."""
    patterns = {sub["pattern"]: compile_pattern(sub["pattern"]) for sub, _ in walk_schema(schema, ())
                if isinstance(sub, dict) and isinstance(sub.get("pattern"), str)}
    cls = _extend(_BodyValidator, validators={
        "pattern": _metered("pattern", _pattern_keyword(patterns))})
    metered = cls(schema, format_checker=FORMAT_CHECKER)

    def delegate(name: str, value: Any, where: dict[str, Any]) -> Check:
        keyword, at = cls.VALIDATORS[name], metered.evolve(schema=where)

        def check(instance: Any) -> int | None:
            return None if next(iter(keyword(at, value, instance, where)), None) else 0
        return check

    return BodyValidator(metered=metered, valid=compile_schema(
        schema, cost=_cost, keywords=frozenset(_BodyValidator.VALIDATORS), metered=_METERED,
        patterns=patterns, conforms=FORMAT_CHECKER.conforms, delegate=delegate))


def first_error(validator: BodyValidator, body: Any) -> ValidationError | None:
    """The most relevant error of ``body``, or None: a valid body by the compiled check where
    the schema has one (charged the steps the metered check would take), anything else by the
    metered check.

    Raises:
        OutOfSteps: the check would cost more than ``MAX_CHECK_STEPS``.
    """
    with budget():
        left = _budget.get()
        assert left is not None
        before = left[0]
        steps = validator.valid(body) if validator.valid is not None else None
        if steps is not None:
            spend(steps)
            return None
        left[0] = before  # what a delegated keyword charged, the metered check charges again
        found: ValidationError | None = best_match(validator.metered.iter_errors(body))
    return found


# -- what a schema may declare (at load) --------------------------------------------------------

def walk_schema(schema: Any, path: tuple[str, ...]) -> Iterator[tuple[Any, tuple[str, ...]]]:
    """Every subschema of a JSON Schema (not the property-name maps themselves), with its path."""
    yield schema, path
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                yield from walk_schema(sub, (*path, key, name))
        elif key in _SCHEMA_ONE:
            yield from walk_schema(value, (*path, key))
        elif key in _SCHEMA_LIST and isinstance(value, list):
            for i, sub in enumerate(value):
                yield from walk_schema(sub, (*path, key, str(i)))


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, bool))


def check_fields(schema: Any) -> None:
    """Refuse a ``fields`` schema that declares more than rule 1 of the module doc allows.

    Raises:
        ConfigError: naming the key at fault (the caller adds the file).
    """
    try:
        no_formats: Any = None  # patterns are RE2's, checked below
        _Base.check_schema(schema, format_checker=no_formats)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"not a JSON Schema (draft 2020-12): {exc.message}",
                          path=("fields", *map(str, exc.absolute_path))) from None
    patterns = 0
    for sub, path in walk_schema(schema, ("fields",)):
        if not isinstance(sub, dict):
            if sub is False and path[-1] == "additionalProperties":
                continue
            raise ConfigError("a subschema is an object (false only as additionalProperties)",
                              path=path)
        for key in sub:
            if key not in KEYWORDS and key not in ANNOTATIONS:
                raise ConfigError(f"{key!r} is not a keyword a template may use (no $ref, "
                                  "patternProperties or unevaluated*; a misspelt keyword would "
                                  "silently check nothing)", path=(*path, key))
        _check_subschema(sub, path)
        patterns += "pattern" in sub
        if patterns > MAX_PATTERNS:
            raise ConfigError(f"more than {MAX_PATTERNS} patterns in one template", path=path)


def _check_subschema(sub: JSONObject, path: tuple[str, ...]) -> None:
    if (sub.get("type") == "object" or "properties" in sub) and sub.get("additionalProperties") \
            is not False:
        raise ConfigError("an object must say additionalProperties: false (and list its "
                          "properties)", path=path)
    if "format" in sub and sub["format"] not in KNOWN_FORMATS:
        raise ConfigError(f"format {sub['format']!r} is not checked here; use one of "
                          f"{', '.join(KNOWN_FORMATS)} or a pattern", path=(*path, "format"))
    values = [*sub.get("enum", []), *([sub["const"]] if "const" in sub else [])]
    if not all(_plain(v) for v in values):
        raise ConfigError("enum and const values are text, integers, booleans or null",
                          path=(*path, "enum" if "enum" in sub else "const"))
    if "pattern" in sub:
        try:
            compile_pattern(sub["pattern"])
        except ConfigError as exc:
            raise ConfigError(exc.detail, path=(*path, "pattern")) from None
