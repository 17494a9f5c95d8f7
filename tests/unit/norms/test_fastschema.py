"""Issue 18: the compiled check of valid bodies (``hotline.norms.fastschema``) gives exactly the
metered jsonschema check's verdict and steps. It answers exactly for the bodies the metered check
finds valid, and charges the same steps (its own, plus those of the keywords it hands to the
metered check). Checked on every shipped template's examples, on bodies derived from them, and on
random schemas of every keyword a template may use, with random bodies."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.norms.bodyschema import (
    MAX_CHECK_STEPS,
    BodyValidator,
    _budget,
    body_validator,
    budget,
    first_error,
)
from hotline.norms.files import load_templates, shipped_dir
from tests.template_examples import EXAMPLES

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=300)
SHIPPED = sorted(load_templates(shipped_dir()), key=lambda t: (t.id, t.version))


def metered(validator: BodyValidator, body: Any) -> tuple[bool, int]:
    """The metered check alone: whether it finds no error, and the steps it charged."""
    with budget():
        errors = list(validator.metered.iter_errors(body))  # what ``first_error`` charges
        left = _budget.get()
        assert left is not None
        return not errors, MAX_CHECK_STEPS - left[0]


def compiled(validator: BodyValidator, body: Any) -> tuple[int | None, int]:
    """The compiled check alone: its answer, and what its delegated keywords charged."""
    assert validator.valid is not None
    with budget():
        steps = validator.valid(body)
        left = _budget.get()
        assert left is not None
        return steps, MAX_CHECK_STEPS - left[0]


def same_verdict(validator: BodyValidator, body: Any) -> bool:
    """The property: the compiled check answers exactly for the bodies the metered check finds
    valid, with the steps it charges. True if it answered."""
    steps, delegated = compiled(validator, body)
    valid, charged = metered(validator, body)
    assert (steps is not None) == valid
    if steps is not None:
        assert steps + delegated == charged
    return steps is not None


def test_it_answers_for_every_valid_example_of_every_shipped_template() -> None:
    now = datetime.now(UTC)
    for template in SHIPPED:
        for case in EXAMPLES[template.id](now):
            answered = same_verdict(template._validator, case.body)
            assert answered or getattr(case, "code", None) is not None  # every valid one answered


def test_a_keyword_no_template_may_use_is_left_to_jsonschema() -> None:
    assert body_validator({"type": "object", "patternProperties": {"^a": {}}}).valid is None


def mutations(body: Any) -> st.SearchStrategy[Any]:
    """Bodies near ``body``: a field removed, added, or its value replaced by another JSON value."""
    leaves = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(
        ["", "x", "2026-12-05", "2026-12-05T12:00:00.000Z", "ROUTINE", "north", "a" * 300])

    def mutate(path: list[Any], replace: Any, drop: bool) -> Any:
        copied = copy.deepcopy(body)
        node = copied
        for step in path[:-1]:
            node = node[step]
        if drop and isinstance(node, dict):
            node.pop(path[-1], None)
        else:
            node[path[-1]] = replace
        return copied

    paths: list[list[Any]] = []

    def walk(value: Any, path: list[Any]) -> None:
        if isinstance(value, dict):
            paths.append([*path, "extra"])
            for key, sub in value.items():
                paths.append([*path, key])
                walk(sub, [*path, key])
        elif isinstance(value, list):
            for i, sub in enumerate(value[:3]):
                paths.append([*path, i])
                walk(sub, [*path, i])

    walk(body, [])
    if not paths:
        return st.just(body)
    return st.builds(mutate, st.sampled_from(paths), leaves | st.lists(leaves, max_size=3), st.booleans())


@FAST
@given(st.data())
def test_bodies_near_the_shipped_examples_get_the_metered_verdict(data: st.DataObject) -> None:
    template = data.draw(st.sampled_from(SHIPPED))
    case = data.draw(st.sampled_from(EXAMPLES[template.id](datetime(2026, 12, 5, tzinfo=UTC))))
    same_verdict(template._validator, data.draw(mutations(case.body)))


# -- random schemas of every keyword the compiled check takes -----------------------------------

TEXTS = st.sampled_from(["", "a", "ab", "abc", "2026-12-05", "2026-12-05T12:00:00.000Z", "b" * 300])
PLAIN = st.none() | st.booleans() | st.integers(-2, 2) | TEXTS


def leaf_schemas() -> st.SearchStrategy[dict[str, Any]]:
    small = st.integers(0, 3)
    return st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])}),
        st.fixed_dictionaries({"type": st.just("string")}, optional={
            "minLength": small, "maxLength": small, "pattern": st.sampled_from(["^a", "b$", "[0-9]"]),
            "format": st.sampled_from(["date", "date-time"])}),
        st.fixed_dictionaries({"type": st.just("integer")}, optional={
            "minimum": st.integers(-2, 2), "maximum": st.integers(-2, 2),
            "exclusiveMinimum": st.integers(-2, 2), "exclusiveMaximum": st.integers(-2, 2)}),
        st.fixed_dictionaries({"enum": st.lists(PLAIN, min_size=1, max_size=4)}),
        st.fixed_dictionaries({"const": PLAIN}),
        st.fixed_dictionaries({"type": st.lists(st.sampled_from(["string", "integer", "null", "boolean"]),
                                                min_size=1, max_size=3, unique=True)}),
        st.fixed_dictionaries({"description": st.just("annotations cost nothing")}),
    )


def schemas() -> st.SearchStrategy[dict[str, Any]]:
    def grow(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        names = st.sampled_from(["a", "b", "c"])
        objects = st.builds(
            lambda props, required, bounds, extra: {
                "type": "object", "properties": props, "additionalProperties": extra,
                **({"required": required} if required else {}), **bounds},
            st.dictionaries(names, inner, max_size=3), st.lists(names, max_size=2, unique=True),
            st.fixed_dictionaries({}, optional={"minProperties": st.integers(0, 2),
                                                "maxProperties": st.integers(0, 3)}),
            st.just(False) | inner)
        arrays = st.builds(
            lambda items, bounds: {"type": "array", "items": items, **bounds},
            inner | st.just(True),
            st.fixed_dictionaries({}, optional={"minItems": st.integers(0, 2), "maxItems": st.integers(0, 3),
                                                "uniqueItems": st.booleans()}))
        # what the compiled check hands to the metered one
        delegated = st.one_of(
            st.builds(lambda k, subs: {k: subs}, st.sampled_from(["anyOf", "oneOf", "allOf"]),
                      st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda sub: {"not": sub}, inner),
            st.builds(lambda a, b, c: {"if": a, "then": b, "else": c}, inner, inner, inner),
            st.builds(lambda sub, low: {"type": "array", "contains": sub, "minContains": low},
                      inner, st.integers(0, 2)),
            st.builds(lambda subs, rest: {"type": "array", "prefixItems": subs, "items": rest},
                      st.lists(inner, max_size=2), inner | st.just(False)),
            st.builds(lambda sub: {"type": "object", "propertyNames": sub,
                                   "dependentRequired": {"a": ["b"]}, "dependentSchemas": {"c": sub}},
                      inner),
            st.fixed_dictionaries({"type": st.just("integer"), "multipleOf": st.integers(1, 3)}))
        return objects | arrays | delegated
    return st.recursive(leaf_schemas(), grow, max_leaves=8)


def instances() -> st.SearchStrategy[Any]:
    return st.recursive(PLAIN, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=4),
                        max_leaves=12)


@FAST
@given(schemas(), st.data())
def test_random_schemas_and_bodies_get_the_metered_verdict_and_steps(schema: dict[str, Any],
                                                                      data: st.DataObject) -> None:
    validator = body_validator(schema)
    assert validator.valid is not None  # every keyword here is one a template may use
    for _ in range(5):
        same_verdict(validator, data.draw(instances()))


@pytest.mark.parametrize("body", [[1, True], [0, False], [1, 1.0], [{"a": 1}, {"a": True}], ["1", 1]])
def test_json_equality_in_enum_and_unique_items(body: list[Any]) -> None:
    """A boolean is not 1 or 0, in ``enum``, ``const`` and ``uniqueItems`` alike."""
    for schema in ({"type": "array", "uniqueItems": True}, {"enum": [1, 0]}, {"const": True}):
        validator = body_validator(schema)
        same_verdict(validator, body)
        for item in body:
            same_verdict(validator, item)


def test_a_body_refused_after_delegated_work_is_charged_that_work_once() -> None:
    """A body that fails only at its last item, after the compiled check handed every item's
    ``anyOf`` to the metered check: the metered check then runs over it again, and the steps of
    the first pass are given back, so a body that takes most of the budget once is refused as
    invalid, not as too costly."""
    validator = body_validator({"type": "array", "items": {"anyOf": [{"const": f"x{i}"} for i in range(50)]}})
    per_item = metered(validator, ["x49"] * 11)[1] - metered(validator, ["x49"] * 10)[1]
    items = int(MAX_CHECK_STEPS * 0.7) // per_item
    body = ["x49"] * items + ["none of them"]
    assert metered(validator, body)[1] < MAX_CHECK_STEPS < 2 * metered(validator, body[:-1])[1]
    error = first_error(validator, body)
    assert error is not None and list(error.absolute_path) == [items]
