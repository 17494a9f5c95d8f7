"""Shared by the fuzz properties: the harness's targets and valid documents
(``scripts/fuzz_targets.py``), the one rule every parser keeps, and hostile inputs.

The rule: any input gives a value or exactly one typed error, a ``HotlineError`` whose code has
the form ``family.reason``. ``answer`` returns either; any other exception propagates, so the
property fails with the parser's own traceback.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import strategies as st

from hotline.errors import CODE_FORM, HotlineError

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_targets() -> ModuleType:
    """``scripts/fuzz_targets.py``, imported once under its own name."""
    if "fuzz_targets" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fuzz_targets", SCRIPTS / "fuzz_targets.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["fuzz_targets"] = module
        spec.loader.exec_module(module)
    return sys.modules["fuzz_targets"]


def answer(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``: its value, or the typed error it raised (checked for a dotted
    code and a text message)."""
    try:
        return fn(*args, **kwargs)
    except HotlineError as exc:
        assert isinstance(exc.code, str) and CODE_FORM.fullmatch(exc.code), (type(exc), exc.code)
        assert isinstance(exc.message, str)
        return exc


# -- hostile values -------------------------------------------------------------------------------

LONG = "x" * 70_000  # over every field and frame limit but the largest
scalars = (st.none() | st.booleans()
           | st.integers() | st.sampled_from([2**53 - 1, 2**53, -(2**53), 2**63, 2**64, 10**400])
           | st.floats() | st.sampled_from([float("nan"), float("inf"), -0.0])
           | st.text(max_size=12)  # includes lone surrogates, controls, bidi marks
           | st.sampled_from(["", LONG, "\ud800", "\x00", "\u202e", "north", "alice", "agreement",
                              "2026-12-01T09:00:00.000Z", "ed25519", "A" * 22]))


def nested(depth: int) -> Any:
    value: Any = []
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


deep = st.sampled_from([31, 32, 33, 40]).map(nested)  # deeper nesting: as text, in the tests
hostile = st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                       | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=8) | deep


def paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside ``value`` (object keys and list positions), the root included, down to
    a depth of 40 (a deep value from ``nested`` is edited as a whole)."""
    out = [here]
    if len(here) >= 40:
        return out
    if isinstance(value, dict):
        for key, child in value.items():
            out += paths(child, (*here, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += paths(child, (*here, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, document: Any, edits: int = 3) -> Any:
    """``document`` (a JSON value, not changed) with up to ``edits`` edits at any depth: a field
    dropped or added, a value retyped, replaced by a hostile one, or wrapped in a list."""
    value = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, edits))):
        where = draw(st.sampled_from(paths(value)), label="at")
        if not where:
            value = draw(hostile) if draw(st.integers(0, 9)) == 0 else value
            continue
        parent = value
        for step in where[:-1]:
            parent = parent[step]
        last = where[-1]
        op = draw(st.sampled_from(["drop", "replace", "add", "wrap"]))
        if op == "drop":
            del parent[last]
        elif op == "replace":
            parent[last] = draw(hostile)
        elif op == "wrap":
            parent[last] = [parent[last]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8) | st.just("extra"))] = draw(hostile)
        else:
            parent.insert(last, draw(hostile))
    return value


def json_text(value: Any) -> str:
    """``value`` as JSON text the way a peer may write it: NaN, Infinity and huge numbers as
    they are, lone surrogates as escapes."""
    return json.dumps(value, allow_nan=True)


def with_duplicate_key(text: str) -> str:
    """A JSON object's text with its first member repeated (``{"a":1,...}`` -> ``{"a":1,"a":1,...}``)."""
    value = json.loads(text)
    if not isinstance(value, dict) or not value:
        return text
    key, item = next(iter(value.items()))
    return "{" + json.dumps(key) + ":" + json.dumps(item) + "," + text[1:]


@st.composite
def text_edits(draw: st.DrawFn, text: str) -> str:
    """A line-based text (a note, a bundle) with a few edits: a line dropped, repeated, swapped
    or replaced, a character flipped, bytes cut off or added."""
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "repeat", "replace", "flip", "cut", "append"]))
        if op == "drop" and len(lines) > 1:
            del lines[at]
        elif op == "repeat":
            lines.insert(at, lines[at])
        elif op == "replace":
            lines[at] = draw(st.text(max_size=30) | st.sampled_from(
                ["", "— ", "— name", "— a AAAA", "index 0", "index 01", "extra ", "0", "-1",
                 "18446744073709551616", "\r", "c2sp.org/tlog-proof@v1", LONG[:200]]))
        elif op == "flip" and lines[at]:
            i = draw(st.integers(0, len(lines[at]) - 1))
            lines[at] = lines[at][:i] + draw(st.characters()) + lines[at][i + 1:]
        elif op == "cut":
            lines[at] = lines[at][:draw(st.integers(0, len(lines[at])))]
        elif op == "append":
            lines.append(draw(st.text(max_size=20)))
    return "\n".join(lines)
