"""Issue 20, defect 4: a template file is plain, bounded YAML. Anchors, aliases, tags, over-deep
nesting, too many values and oversize files are refused with a ConfigError naming the file, and
no input of any kind makes the loader raise anything else. The alias bombs below expand to 10^9
values under a YAML loader that follows aliases; here each is refused at its first anchor, so
these tests finishing at all is the evidence that no bomb is expanded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import ConfigError
from hotline.norms.plainyaml import MAX_BYTES, MAX_DEPTH, MAX_INT, MAX_NODES, load_yaml
from hotline.norms.template import Template
from tests.unit.norms.test_template_format import GOOD, edited

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=300)
FILE = "protocols/hostile.yaml"


def laughs(levels: int = 9) -> str:
    """The classic billion laughs: each level lists the previous one ten times (10^levels)."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels + 1):
        lines.append(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def refused(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(ConfigError) as info:
        load_yaml(data, source=FILE)
    assert info.value.message.startswith(f"{FILE}: ") and info.value.code == "config.invalid"
    return info.value.message


def test_a_billion_laughs_template_is_refused_at_its_first_anchor() -> None:
    bomb = edited("          description: Opens.\n",
                  "          description: *l9\n").replace("fields:\n", laughs() + "fields:\n")
    assert len(bomb) < 2000
    line = bomb.splitlines().index(laughs().splitlines()[0]) + 1
    with pytest.raises(ConfigError) as info:
        Template.from_text(bomb, source=FILE)
    assert info.value.message == \
        f"{FILE}: line {line}: anchors (&l0) are not allowed: a template is plain data"


HOSTILE = [
    ("anchor", "a: &x 1\n", "anchors (&x)"),
    ("alias", "a: *x\n", "aliases (*x)"),
    ("merge key with alias", "base: &b {a: 1}\nc:\n  <<: *b\n", "anchors (&b)"),
    ("anchored mapping", "a: &m\n  b: 1\n", "anchors (&m)"),
    ("binary tag", "a: !!binary aGVsbG8=\n", "tags (tag:yaml.org,2002:binary)"),
    ("set tag", "a: !!set {x, y}\n", "tags (tag:yaml.org,2002:set)"),
    ("python tag", "a: !!python/object:os.system [ls]\n", "tags (tag:yaml.org,2002:python/object:os.system)"),
    ("local tag", "a: !mine x\n", "tags (!mine)"),
    ("even !!str", "a: !!str 1\n", "tags (tag:yaml.org,2002:str)"),
    ("non-specific tag", "a: ! 1\n", "tags (!)"),
    ("tagged mapping", "a: !!map {b: 1}\n", "tags (tag:yaml.org,2002:map)"),
    ("deep flow", "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n", "nested deeper"),
    ("deep block", "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 1))
     + "  " * (MAX_DEPTH + 1) + "x: 1\n", "nested deeper"),
    ("too many values", "a: [" + ", ".join(["1"] * MAX_NODES) + "]\n", f"more than {MAX_NODES}"),
    ("huge integer", "a: " + "9" * 5000 + "\n", "integers are at most"),
    ("beyond 2^53", f"a: {MAX_INT + 1}\n", "integers are at most"),
    ("float", "a: 1.5\n", "floating-point"),
    ("list key", "? [a]\n: 1\n", "a key is text"),
    ("integer key", "1: x\n", "a key is text"),
    ("null key", "~: x\n", "a key is text"),
    ("duplicate key", "a: 1\na: 2\n", "duplicate key 'a'"),
    ("two documents", "a: 1\n---\nb: 2\n", "line 2"),
    ("control character", "a: \x07\n", "control characters"),
    ("not UTF-8", b"a: \xff\n", "UTF-8"),
    ("oversize", "a: x\n" + "#" * MAX_BYTES, f"at most {MAX_BYTES} bytes"),
]


@pytest.mark.parametrize(("name", "text", "said"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_what_is_not_plain_bounded_data_is_refused(name: str, text: str | bytes, said: str) -> None:
    assert said in refused(text), name


def nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_plain_data_loads_as_before() -> None:
    text = ("a: [1, -2, true, False, null, ~, text, '1.5', 2026-01-01, 12:30, 0755, yes]\n"
            "b: {c: 'quoted', '<<': merge keys are only text}\n"
            f"deep: {'[' * (MAX_DEPTH - 1)}{']' * (MAX_DEPTH - 1)}\n"
            f"big: {MAX_INT}\n")
    assert load_yaml(text.encode(), source=FILE) == {
        "a": [1, -2, True, False, None, None, "text", "1.5", "2026-01-01", "12:30", "0755", "yes"],
        "b": {"c": "quoted", "<<": "merge keys are only text"},
        "deep": nested(MAX_DEPTH - 1),
        "big": MAX_INT,
    }


def test_the_shipped_templates_are_plain_yaml() -> None:
    Template.from_text(GOOD, source=FILE)  # and tests/unit/norms/test_shipped_templates.py


# -- property: any input is plain data or a ConfigError -----------------------------------------

def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, bool)) or (
        isinstance(value, int) and abs(value) <= MAX_INT)


def loads_or_refuses(data: bytes) -> None:
    try:
        value = load_yaml(data, source=FILE)
    except ConfigError as exc:
        assert exc.message.startswith(f"{FILE}: ")
        return
    assert _plain(value), value


# YAML's own punctuation, anchors, aliases, tags, directives and a few scalars, glued at random.
TOKENS = st.sampled_from([
    "a", "b", "1", "-1", "1.5", "0x1F", "true", "~", "null", "'q'", '"d"', "\\u0000", "|", ">",
    ": ", ":", "- ", "-", "? ", "[", "]", "{", "}", ", ", "#c", "\n", "\n  ", "\n    ", "\t",
    "&a ", "*a", "&b ", "*b", "!!str ", "!!binary ", "!t ", "!<tag:x> ", "<<: ", "--- ", "...",
    "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "\x00", "\x85", "\ufeff", "é", "😀"])


@FAST
@given(st.lists(TOKENS, max_size=60).map("".join))
def test_yaml_like_text_is_data_or_a_config_error(text: str) -> None:
    loads_or_refuses(text.encode("utf-8", "surrogatepass"))


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_data_or_a_config_error(data: bytes) -> None:
    loads_or_refuses(data)


WORDS = st.text(alphabet="abcxyz019 ", max_size=6)
NESTED = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | WORDS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(WORDS, inner, max_size=4),
    max_leaves=30)


def flow(value: Any, marked: int, mark: str, seen: list[int]) -> str:
    """``value`` as flow YAML (JSON's syntax), ``mark`` before its ``marked``-th value."""
    here = mark if len(seen) == marked else ""
    seen.append(1)
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)}: {flow(v, marked, mark, seen)}" for k, v in value.items())
        return here + "{" + inner + "}"
    if isinstance(value, list):
        return here + "[" + ", ".join(flow(v, marked, mark, seen) for v in value) + "]"
    return here + json.dumps(value)


def count(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(count(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(count(v) for v in value)
    return 1


@FAST
@given(NESTED, st.sampled_from(["&x ", "!!str ", "!x ", "!!binary "]), st.data())
def test_an_anchor_or_tag_anywhere_is_refused(value: Any, mark: str, data: st.DataObject) -> None:
    """Any plain document loads as itself; with an anchor (and an alias to it) or a tag before
    any one of its values, it is refused."""
    document = {"v": value}
    assert load_yaml(flow(document, -1, "", []).encode(), source=FILE) == document
    marked = flow(document, data.draw(st.integers(0, count(document) - 1), label="at"), mark, [])
    if mark == "&x ":
        marked = marked.removesuffix("}") + ', "alias": *x}'
    with pytest.raises(ConfigError) as info:
        load_yaml(marked.encode(), source=FILE)
    assert ("anchors (&x)" if mark == "&x " else "tags (") in info.value.message


@FAST
@given(st.integers(1, 3 * MAX_DEPTH), st.sampled_from(["flow list", "flow map", "block map"]),
       st.integers(0, 64))
def test_depth_and_size_are_bounded_exactly(depth: int, style: str, padding: int) -> None:
    """Nested ``depth`` deep (the top mapping included): loaded up to MAX_DEPTH, refused past
    it; padded to just under or over MAX_BYTES: loaded or refused by size first."""
    inner = depth - 1
    match style:
        case "flow list":
            text = "a: " + "[" * inner + "]" * inner + "\n"
        case "flow map":
            text = "a: " + "{b: " * inner + "1" + "}" * inner + "\n"
        case _:
            text = "".join("  " * i + f"k{i}:\n" for i in range(inner)) + "  " * inner + "x: 1\n"
    if inner == 0:
        text = "a: 1\n"
    size = MAX_BYTES - len(text.encode()) - 32 + padding
    data = (text + "#" * max(size - 1, 0) + "\n").encode() if size > 0 else text.encode()
    if len(data) > MAX_BYTES:
        assert f"at most {MAX_BYTES} bytes" in refused(data)
    elif depth > MAX_DEPTH:
        assert "nested deeper" in refused(data)
    else:
        assert isinstance(load_yaml(data, source=FILE), dict)
