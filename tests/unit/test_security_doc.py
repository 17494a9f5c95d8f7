"""SECURITY.md cannot rot: every test it names exists, every claim about an adversary names at
least one test, and every default in its limits table is the one in the code.

A reference is ``tests/<path>.py::name`` or ``tests/<path>.py::Class::method``; it resolves when
the file exists and ``ast`` finds a test function (or a ``Test`` class, and the method in it) of
that name. A claim is a bullet (``- ...`` and its indented continuation lines) under
``## Adversaries``; the gaps that no test shows live in their own section, outside it.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import re
from pathlib import Path

from hotline.config import Config

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "SECURITY.md"
REFERENCE = re.compile(r"tests/[\w/]+\.py(?:::\w+)+")
CONFIG_KEY = re.compile(r"`([a-z_]+)\.([a-z_]+)`")
CONSTANT = re.compile(r"`(hotline(?:\.\w+)+)\.([A-Z_]+)`")
LITERAL = re.compile(r"`([^`]+)`")


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"SECURITY.md has no '## {heading}' section"
    return match.group(1)


def bullets(text: str) -> list[str]:
    """Each top-level bullet with its indented continuation lines, joined."""
    items: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("- "):
            current = [line[2:]]
            items.append(current)
        elif current is not None and line.startswith("  ") and line.strip():
            current.append(line.strip())
        else:
            current = None
    return [" ".join(item) for item in items]


@functools.cache
def _body(file: Path) -> list[ast.stmt]:
    return ast.parse(file.read_text()).body


def unresolved(reference: str, root: Path = ROOT) -> str | None:
    """Why ``reference`` names no test, or None when it does."""
    path, *names = reference.split("::")
    file = root / path
    if not file.is_file():
        return f"{reference}: no file {path}"
    scope = _body(file)
    for depth, name in enumerate(names):
        last = depth == len(names) - 1
        kinds = ((ast.FunctionDef, ast.AsyncFunctionDef) if last else ()) + (
            (ast.ClassDef,) if not last or len(names) == 1 else ())
        found = next((n for n in scope if isinstance(n, kinds) and n.name == name), None)
        if found is None:
            return f"{reference}: no {'test' if last else 'class'} {name} in {path}"
        if not name.startswith("Test" if isinstance(found, ast.ClassDef) else "test"):
            return f"{reference}: {name} is not collected by pytest"
        scope = found.body if isinstance(found, ast.ClassDef) else []
    return None


def problems(text: str, root: Path = ROOT) -> list[str]:
    """Everything wrong with a SECURITY.md text: references that name no test, claims that name
    no test, adversaries without claims."""
    found = [why for ref in sorted(set(REFERENCE.findall(text)))
             if (why := unresolved(ref, root)) is not None]
    adversaries = section(text, "Adversaries")
    for claim in bullets(adversaries):
        if not REFERENCE.search(claim):
            found.append(f"claim names no test: {claim[:100]}")
    for name, body in re.findall(r"^### ([^\n]+)\n(.*?)(?=^### |\Z)", adversaries, re.M | re.S):
        if not bullets(body):
            found.append(f"adversary {name} has no claims")
    return found


def test_every_reference_names_an_existing_test_and_every_claim_names_one() -> None:
    text = DOC.read_text()
    assert problems(text) == []
    assert len(bullets(section(text, "Adversaries"))) >= 50  # the parser found the claims


def test_a_wrong_name_or_a_claim_without_a_test_is_caught() -> None:
    text = DOC.read_text()
    real = "tests/integration/test_tamper.py::test_split_view"
    assert real in text

    def new_problems(edited: str) -> set[str]:
        return set(problems(edited)) - set(problems(text))
    misspelt = text.replace(real, real + "s", 1)
    assert new_problems(misspelt) == {
        f"{real}s: no test test_split_views in tests/integration/test_tamper.py"}
    untested = text.replace("**Cannot**\n", "**Cannot**\n\n- Read minds, trust us.\n", 1)
    assert new_problems(untested) == {"claim names no test: Read minds, trust us."}
    wrapped = text.replace("**Cannot**\n", "**Cannot**\n\n- Read minds,\n  trust us.\n", 1)
    assert new_problems(wrapped) == {"claim names no test: Read minds, trust us."}


def test_references_resolve_as_pytest_collects_them(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "class TestThing:\n    def test_m(self):\n        pass\n    def helper(self):\n        pass\n"
        "async def test_f():\n    pass\n"
        "def helper():\n    pass\n")
    for good in ("tests/test_x.py::test_f", "tests/test_x.py::TestThing",
                 "tests/test_x.py::TestThing::test_m"):
        assert unresolved(good, tmp_path) is None, good
    for bad, why in (("tests/test_y.py::test_f", "no file"),
                     ("tests/test_x.py::test_g", "no test test_g"),
                     ("tests/test_x.py::helper", "not collected"),
                     ("tests/test_x.py::TestThing::helper", "not collected"),
                     ("tests/test_x.py::TestThing::test_n", "no test test_n"),
                     ("tests/test_x.py::test_f::test_m", "no class test_f")):
        message = unresolved(bad, tmp_path)
        assert message is not None and why in message, (bad, message)


def test_every_default_in_the_limits_table_is_the_codes() -> None:
    rows = [line.split("|")[1:-1] for line in section(DOC.read_text(), "Resource limits and their defaults")
            .splitlines() if line.startswith("| ") and not line.startswith("| bound")]
    defaults = {f.name: f.default_factory() for f in dataclasses.fields(Config)
                if f.default_factory is not dataclasses.MISSING}
    checked = 0
    for _, setting, default, _ in (map(str.strip, row) for row in rows):
        expected = LITERAL.fullmatch(default)
        if (key := CONFIG_KEY.fullmatch(setting)) is not None:
            sect = defaults[key.group(1)]
            assert key.group(2) in {f.name for f in dataclasses.fields(sect)}, setting
            actual = getattr(sect, key.group(2))
        elif (constant := CONSTANT.fullmatch(setting)) is not None:
            actual = getattr(importlib.import_module(constant.group(1)), constant.group(2))
        else:
            assert expected is None, f"{setting}: a default in backquotes needs a setting to check"
            continue
        assert expected is not None, f"{setting}: its default must be a literal in backquotes"
        value = ast.literal_eval(expected.group(1))
        assert (type(value), value) == (type(actual), actual), setting
        checked += 1
    assert checked >= 40
