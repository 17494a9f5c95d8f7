"""The error-code registry (``hotline.errorcodes``) is complete, used and the one source.

Every code has the form ``family.reason``, a meaning and the class it is raised as; no code in
``hotline/`` or ``scripts/`` is a string literal, an f-string or an unknown member; every code is
raised (or answered) somewhere; an error raised as another class than its code's is refused; the
README's table is the generated one.
"""

from __future__ import annotations

import ast
import importlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.console.forms import FormError
from hotline.errorcodes import Code, markdown_table
from hotline.errors import (
    CODE_FORM,
    MAX_CODE,
    AuthError,
    HotlineError,
    LogError,
    PeerCode,
    ProtocolViolation,
    WireError,
)
from hotline.wire import frames

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((ROOT / "hotline").rglob("*.py")), *sorted((ROOT / "scripts").rglob("*.py"))]
REGISTRY = ROOT / "hotline" / "errorcodes.py"
BY_VALUE = {code.value: code for code in Code}
LOG_CALLS = {"debug", "info", "warning", "error", "critical", "exception", "msg", "event"}


def _modules() -> list[str]:
    return [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for p in sorted((ROOT / "hotline").rglob("*.py"))]


def _error_classes() -> dict[str, type[HotlineError]]:
    """Every ``HotlineError`` class of hotline, by name (all modules imported)."""
    for name in _modules():
        importlib.import_module(name)
    found: dict[str, type[HotlineError]] = {"HotlineError": HotlineError}
    todo: list[type[HotlineError]] = [HotlineError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("hotline.") and found.get(sub.__name__) is not sub:
                assert sub.__name__ not in found, f"two error classes named {sub.__name__}"
                found[sub.__name__] = sub
                todo.append(sub)
    return found


def _trees() -> Iterator[tuple[Path, ast.Module]]:
    for path in SOURCES:
        yield path, ast.parse(path.read_text(), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


def _member(node: ast.expr) -> str | None:
    """``X`` of ``Code.X``, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Code":
        return node.attr
    return None


def _name(func: ast.expr) -> str | None:
    """The name a call calls (``f`` of ``f(...)`` and of ``m.f(...)``)."""
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


# Records whose ``code`` field is data, not an error code (a catalogue item's code word).
DATA_WITH_A_CODE = frozenset({"CatalogueItem"})


def _code_values(tree: ast.Module) -> Iterator[ast.expr]:
    """Every expression given as a code: ``code=`` keywords and ``code =`` in a class body."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) not in DATA_WITH_A_CODE:
            yield from (k.value for k in node.keywords if k.arg == "code")
        elif isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "code" for t in stmt.targets):
                    yield stmt.value
                elif (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                      and stmt.target.id == "code" and stmt.value is not None):
                    yield stmt.value


def test_every_code_has_the_form_a_meaning_and_a_class() -> None:
    classes = _error_classes()
    assert len(Code) == len(BY_VALUE) >= 62
    for code in Code:
        assert CODE_FORM.fullmatch(code.value) and len(code.value) <= MAX_CODE, code
        assert code.name == code.value.upper().replace(".", "_"), code
        assert code.meaning and "\n" not in code.meaning and "|" not in code.meaning, code
        assert code.raised_as in classes, f"{code.value}: no error class {code.raised_as}"


def test_every_error_class_defaults_to_a_code_of_its_own_class() -> None:
    for name, cls in _error_classes().items():
        assert isinstance(cls.code, Code), f"{name}.code is not a registry member"
        assert cls.code.raised_as in {k.__name__ for k in cls.__mro__}, (name, cls.code)


def test_no_code_is_a_string_an_fstring_or_an_unknown_member() -> None:
    """Codes come from the registry only: ``code="x.y"``, ``code=f"{kind}.x"`` and ``Code.NOPE``
    are refused, as is a registered code written as a string anywhere (a positional code, a
    comparison): docstrings and the event names of log calls are not codes."""
    faults = []
    for path, tree in _trees():
        for value in _code_values(tree):
            if isinstance(value, ast.JoinedStr | ast.BinOp) or (
                    isinstance(value, ast.Constant) and isinstance(value.value, str)):
                faults.append(f"{_where(path, value)}: code={ast.unparse(value)}")
        if path == REGISTRY:
            continue
        skip: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                first = node.body[0] if node.body else None
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                    skip.add(id(first.value))
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) in LOG_CALLS:
                    skip.add(id(node.args[0]))
        for node in ast.walk(tree):
            name = _member(node) if isinstance(node, ast.expr) else None
            if name is not None and name not in Code.__members__:
                faults.append(f"{_where(path, node)}: Code.{name} is not in the registry")
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
                    and node.value in BY_VALUE):
                faults.append(f"{_where(path, node)}: {node.value!r} is Code.{BY_VALUE[node.value].name}")
    assert not faults, "\n".join(faults)


def test_every_code_is_raised_or_answered_somewhere() -> None:
    """No dead codes: each member is named outside the registry (a raise site, a class default,
    an answer built by hand); a code only a peer sends is a PeerCode, never registered."""
    used = {name for path, tree in _trees() if path != REGISTRY
            for node in ast.walk(tree) if isinstance(node, ast.expr) and (name := _member(node))}
    assert set(Code.__members__) - used == set()


def test_every_raise_site_uses_its_codes_class() -> None:
    """Statically, for calls of an error class by name: ``ProtocolViolation(code=Code.FRAME_X)``
    would be refused at run time (only AuthError may carry another class's code)."""
    faults = []
    for path, tree in _trees():
        if path.is_relative_to(ROOT / "scripts"):
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts)
                                         .removesuffix(".__init__"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            cls = getattr(module, node.func.id, None)
            if not (isinstance(cls, type) and issubclass(cls, HotlineError)):
                continue
            for keyword in node.keywords:
                name = _member(keyword.value) if keyword.arg == "code" else None
                if name is None:
                    continue
                names = {k.__name__ for k in cls.__mro__}
                if Code[name].raised_as not in names and "AuthError" not in names:
                    faults.append(f"{_where(path, node)}: {cls.__name__} raised with "
                                  f"{Code[name].value} ({Code[name].raised_as})")
    assert not faults, "\n".join(faults)


def test_an_error_raised_as_another_class_than_its_codes_is_refused() -> None:
    with pytest.raises(TypeError, match="raised as ProtocolViolation"):
        WireError("m", code=Code.AUTH_SENDER_MISMATCH)
    with pytest.raises(TypeError, match="raised as WireError"):
        ProtocolViolation("m", code=Code.FRAME_MALFORMED)
    with pytest.raises(TypeError, match="a code is a Code"):
        LogError("m", code="log.bad_proof")  # type: ignore[arg-type]
    assert FormError("m", code=Code.TEMPLATE_INVALID).code is Code.TEMPLATE_INVALID  # a subclass
    # the verdict that closes a session names whichever rule refused it
    assert AuthError("m", code=Code.FRAME_OUT_OF_ORDER).code is Code.FRAME_OUT_OF_ORDER
    # a peer's code is the peer's word: any class may carry it, only its form is checked
    assert ProtocolViolation("m", code=PeerCode("frame.malformed")).code == Code.FRAME_MALFORMED
    assert ProtocolViolation("m", code=PeerCode("other.new_reason")).code == "other.new_reason"
    for bad in ("frame", "Frame.Malformed", "frame.malfo/med", "a" * 65 + ".b", "x.y\n"):
        assert not PeerCode.accepts(bad)
        with pytest.raises(ValueError, match="not a code"):
            PeerCode(bad)


def test_with_ref_names_the_envelope_without_changing_the_error() -> None:
    error = ProtocolViolation("refused", code=Code.CHANNEL_UNKNOWN)
    named = error.with_ref("e1")
    assert (type(named), named.code, named.message, named.ref) == (
        ProtocolViolation, Code.CHANNEL_UNKNOWN, "refused", "e1")
    assert error.ref is None
    sent = json.loads(frames.encode(frames.error(named)))
    assert sent == {"type": "error", "code": "channel.unknown", "message": "refused", "ref": "e1"}


def test_the_readme_table_is_the_registry() -> None:
    readme = (ROOT / "README.md").read_text()
    begin, end = "<!-- error-codes:begin -->\n", "<!-- error-codes:end -->"
    assert readme.count(begin) == 1 and readme.count(end) == 1
    table = readme[readme.index(begin) + len(begin):readme.index(end)]
    assert table == markdown_table(), ("README.md's error table differs from the registry: "
                                       "paste hotline.errorcodes.markdown_table() between the markers")
