"""A compiled check of a template's ``fields`` schema for the common case: a valid body. Pure.

Theory of operation: ``hotline.norms.bodyschema`` checks a body with ``jsonschema``, metering
every keyword against the check's budget (the verdict, the first error and its message are
jsonschema's). That costs tens to hundreds of microseconds a body, most of it jsonschema's own
machinery (a new validator object per descent). ``compile_schema`` turns a schema into plain
closures that answer one question: is the body valid, and if so, how many steps would the
metered check have charged? It answers only when it is sure:

- It compiles the keywords that never evaluate a subschema that may fail on a valid body: on
  a valid body the metered check reports no error for them, so the steps it charges are the sum
  of each applied keyword's cost (``bodyschema._cost``, one definition), which the closures add
  up. A keyword that does (``anyOf``, ``oneOf``, ``not``, ``if``, ``contains``...) is handed
  to the metered check itself (``delegate``), which charges the running budget directly.
- At the first keyword that fails it gives up (``None``): the metered check runs and finds the
  error, with its message. A body is never refused here.

So ``first_error`` takes this path, spends the steps it returns and is done; or, on ``None``,
gives back what the delegated keywords charged and runs the metered check as before. The total
charged is the metered check's, so the budget runs out exactly when it would (what this path
charges before it gives up is a part of what the metered check charges). Each keyword below
does what jsonschema 4's does for draft 2020-12 (``jsonschema/_keywords.py``);
``tests/unit/norms/test_fastschema.py`` checks verdict and steps against the metered check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hotline.norms.patterns import Pattern

Check = Callable[[Any], int | None]
"""A compiled (sub)schema: the steps the metered check charges a valid instance, or None
(invalid, or not sure)."""

Cost = Callable[[Any, Any], int]
Conforms = Callable[[Any, str], bool]
Delegate = Callable[[str, Any, dict[str, Any]], Check]
"""The metered check of keyword ``name`` of ``value`` in ``schema``: 0 (its steps charged to the
running budget) if it finds no error, else None."""


def json_key(value: Any, size: list[int]) -> Any:
    """A hashable stand-in for ``value`` with JSON's equality (``uniqueItems``); counts the
    values it visits in ``size``."""
    size[0] += 1
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        size[0] += len(value) // 256
        return ("text", value)
    if isinstance(value, list):
        return ("list", tuple(json_key(v, size) for v in value))
    if isinstance(value, dict):
        return ("map", frozenset((k, json_key(v, size)) for k, v in value.items()))
    return ("other", id(value))


def _same(value: Any, instance: Any) -> bool:
    """jsonschema's ``equal`` for a plain ``value`` (text, integer, boolean, null: what
    ``enum`` and ``const`` may hold): a boolean equals only itself, never 1 or 0."""
    if value is instance:
        return True
    if isinstance(value, str) or isinstance(instance, str):
        return bool(value == instance)
    if isinstance(value, bool) or isinstance(instance, bool):
        return False  # not the same object, so not the same boolean
    return bool(value == instance)


def _number(instance: Any) -> bool:
    return isinstance(instance, (int, float)) and not isinstance(instance, bool)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda i: isinstance(i, dict),
    "array": lambda i: isinstance(i, list),
    "string": lambda i: isinstance(i, str),
    "integer": lambda i: (isinstance(i, int) and not isinstance(i, bool))
    or (isinstance(i, float) and i.is_integer()),
    "number": _number,
    "boolean": lambda i: isinstance(i, bool),
    "null": lambda i: i is None,
}

Valid = Callable[[Any], bool]


class _Compiler:
    """Compiles one schema with the keyword costs, patterns and formats of its metered check."""

    def __init__(self, cost: Callable[[str], Cost], keywords: frozenset[str],
                 metered: frozenset[str], patterns: Mapping[str, Pattern],
                 conforms: Conforms, delegate: Delegate) -> None:
        self.cost, self.keywords, self.metered = cost, keywords, metered
        self.patterns, self.conforms, self.delegate = patterns, conforms, delegate

    def schema(self, schema: Any) -> Check | None:
        if schema is True:
            return lambda instance: 0
        if not isinstance(schema, dict):
            return None  # ``false`` fails whatever it is given
        checks: list[Check] = []
        for name, value in schema.items():
            if name not in self.keywords:
                continue  # an annotation, or a keyword jsonschema reads only beside another
            if name not in self.metered:
                return None  # not one a template may use: the metered check decides
            make = getattr(self, "k_" + name, None)
            check = make(value, schema) if make is not None else None
            checks.append(check or self.delegate(name, value, schema))
        return _all(checks)

    def _simple(self, name: str, value: Any, valid: Valid) -> Check:
        """Keyword ``name`` of ``value``, which descends into nothing: its cost if ``valid``."""
        cost = self.cost(name)

        def check(instance: Any) -> int | None:
            return cost(value, instance) if valid(instance) else None
        return check

    # -- keywords ----------------------------------------------------------------------------

    def k_type(self, value: Any, schema: Any) -> Check | None:
        names = value if isinstance(value, list) else [value]
        if not all(isinstance(n, str) and n in _TYPES for n in names):
            return None
        tests = [_TYPES[n] for n in names]
        return self._simple("type", value, lambda i: any(test(i) for test in tests))

    def k_enum(self, value: Any, schema: Any) -> Check | None:
        if not isinstance(value, list):
            return None
        steps = self.cost("enum")(value, None)
        return lambda i: steps if any(_same(v, i) for v in value) else None

    def k_const(self, value: Any, schema: Any) -> Check | None:
        return self._simple("const", value, lambda i: _same(value, i))

    def k_required(self, value: Any, schema: Any) -> Check | None:
        if not isinstance(value, list):
            return None
        steps = self.cost("required")(value, None)
        return lambda i: steps if not isinstance(i, dict) or all(n in i for n in value) else None

    def k_properties(self, value: Any, schema: Any) -> Check | None:
        if not isinstance(value, dict):
            return None
        subs: list[tuple[str, Check]] = []
        for name, sub in value.items():
            compiled = self.schema(sub)
            if compiled is None:
                return None
            subs.append((name, compiled))
        own = self.cost("properties")(value, None)

        def check(instance: Any) -> int | None:
            total = own
            if isinstance(instance, dict):
                for name, sub in subs:
                    if name in instance:
                        steps = sub(instance[name])
                        if steps is None:
                            return None
                        total += steps
            return total
        return check

    def _each(self, name: str, value: Any, members: Callable[[Any], Iterable[Any] | None]) -> Check | None:
        """Keyword ``name``, whose subschema ``value`` (``false``: no member may be there)
        checks each of ``members(instance)`` (None: the keyword does not apply to it)."""
        sub = self.schema(value) if value is not False else None
        if value is not False and sub is None:
            return None
        cost = self.cost(name)

        def check(instance: Any) -> int | None:
            total = cost(value, instance)
            for member in members(instance) or ():
                steps = sub(member) if sub is not None else None
                if steps is None:
                    return None
                total += steps
            return total
        return check

    def k_additionalProperties(self, value: Any, schema: Any) -> Check | None:
        if "patternProperties" in schema:
            return None
        declared = schema.get("properties", {})
        return self._each("additionalProperties", value, lambda i: [
            v for k, v in i.items() if k not in declared] if isinstance(i, dict) else None)

    def k_items(self, value: Any, schema: Any) -> Check | None:
        if "prefixItems" in schema:
            return None  # items then checks only those after the prefix: the metered check does
        return self._each("items", value, lambda i: i if isinstance(i, list) else None)

    def k_uniqueItems(self, value: Any, schema: Any) -> Check | None:
        own = self.cost("uniqueItems")(value, None)

        def check(instance: Any) -> int | None:
            if not value or not isinstance(instance, list):
                return own
            total, seen = own, set()
            for item in instance:
                size = [0]
                key = json_key(item, size)
                total += size[0]
                if key in seen:
                    return None
                seen.add(key)
            return total
        return check

    def k_pattern(self, value: Any, schema: Any) -> Check | None:
        compiled = self.patterns.get(value) if isinstance(value, str) else None
        if compiled is None:
            return None
        own = self.cost("pattern")(value, None)

        def check(instance: Any) -> int | None:
            if not isinstance(instance, str):
                return own
            return own + compiled.cost(instance) if compiled.search(instance) else None
        return check

    def k_format(self, value: Any, schema: Any) -> Check | None:
        if not isinstance(value, str):
            return None
        cost = self.cost("format")

        def check(instance: Any) -> int | None:
            return cost(value, instance) if self.conforms(instance, value) else None
        return check

    def _bound(self, name: str, value: Any, test: Callable[[Any, Any], bool],
               applies: Callable[[Any], bool]) -> Check | None:
        if not _number(value):
            return None
        return self._simple(name, value, lambda i: not applies(i) or test(i, value))

    def k_minLength(self, value: Any, schema: Any) -> Check | None:
        return self._bound("minLength", value, lambda i, v: len(i) >= v, _is_text)

    def k_maxLength(self, value: Any, schema: Any) -> Check | None:
        return self._bound("maxLength", value, lambda i, v: len(i) <= v, _is_text)

    def k_minItems(self, value: Any, schema: Any) -> Check | None:
        return self._bound("minItems", value, lambda i, v: len(i) >= v, _is_list)

    def k_maxItems(self, value: Any, schema: Any) -> Check | None:
        return self._bound("maxItems", value, lambda i, v: len(i) <= v, _is_list)

    def k_minProperties(self, value: Any, schema: Any) -> Check | None:
        return self._bound("minProperties", value, lambda i, v: len(i) >= v, _is_map)

    def k_maxProperties(self, value: Any, schema: Any) -> Check | None:
        return self._bound("maxProperties", value, lambda i, v: len(i) <= v, _is_map)

    def k_minimum(self, value: Any, schema: Any) -> Check | None:
        return self._bound("minimum", value, lambda i, v: not i < v, _number)

    def k_maximum(self, value: Any, schema: Any) -> Check | None:
        return self._bound("maximum", value, lambda i, v: not i > v, _number)

    def k_exclusiveMinimum(self, value: Any, schema: Any) -> Check | None:
        return self._bound("exclusiveMinimum", value, lambda i, v: not i <= v, _number)

    def k_exclusiveMaximum(self, value: Any, schema: Any) -> Check | None:
        return self._bound("exclusiveMaximum", value, lambda i, v: not i >= v, _number)


def _is_text(instance: Any) -> bool:
    return isinstance(instance, str)


def _is_list(instance: Any) -> bool:
    return isinstance(instance, list)


def _is_map(instance: Any) -> bool:
    return isinstance(instance, dict)


def _all(checks: list[Check]) -> Check:
    def check(instance: Any) -> int | None:
        total = 0
        for one in checks:
            steps = one(instance)
            if steps is None:
                return None
            total += steps
        return total
    return check


def compile_schema(schema: Any, *, cost: Callable[[str], Cost], keywords: frozenset[str],
                   metered: frozenset[str], patterns: Mapping[str, Pattern],
                   conforms: Conforms, delegate: Delegate) -> Check | None:
    """``schema`` compiled (None if it uses a keyword no template may). ``cost``: each
    metered keyword's cost, as the metered check charges it; ``keywords``: those jsonschema
    acts on, ``metered`` those of them the check meters; ``patterns``: the template's compiled
    patterns; ``conforms``: its format check; ``delegate``: the metered check of one keyword."""
    return _Compiler(cost, keywords, metered, patterns, conforms, delegate).schema(schema)
