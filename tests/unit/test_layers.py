"""The pure core does no I/O (docs/ARCHITECTURE.md "Layers"): no sockets, event loop, database or clock
imports;
and clients never import the server or the store (an auditor or liaison verifies from what it
receives, not from the host's internals)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hotline"
PURE = ["canonical.py", "errors.py", "keys.py", "times.py", "envelope.py", "roster.py", "witnesses.py",
        "wire/session.py", "wire/frames.py", "httpauth.py", "verification.py", "logwatch.py",
        "display.py", "health.py", "client/problems.py", "client/streams.py", "client/receipts.py",
        "tlsca.py", "audit/records.py", "audit/report.py", "audit/availability.py", "audit/verify.py",
        "audit/text.py", "entries.py", "typed.py", "hybrid.py", "epochkeys.py", "sealing.py",
        "names.py",
        *(f"norms/{p.name}" for p in (PACKAGE / "norms").glob("*.py") if p.name != "files.py"),
        *(f"tlog/{p.name}" for p in (PACKAGE / "tlog").glob("*.py"))]
FORBIDDEN_IN_PURE = {"aiohttp", "websockets", "sqlite3", "sqlite_utils", "asyncio", "socket",
                     "ssl", "http", "urllib", "os", "shutil", "pathlib", "threading", "time",
                     "random", "secrets", "subprocess", "structlog", "prometheus_client",
                     "textual", "hotline.clock", "hotline.server", "hotline.store",
                     "hotline.client"}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def offending(names: set[str], forbidden: set[str]) -> set[str]:
    return {n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)}


def test_the_pure_list_names_modules() -> None:
    assert all((PACKAGE / module).is_file() for module in PURE)
    assert {"norms/agreement.py", "tlog/merkle.py"} <= set(PURE)


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    assert not offending(imports(PACKAGE / module), FORBIDDEN_IN_PURE)


OUTSIDERS = sorted([*(PACKAGE / "audit").glob("*.py"), *(PACKAGE / "agent").glob("*.py")])


@pytest.mark.parametrize("path", OUTSIDERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_auditor_and_agent_do_not_reach_into_the_server(path: Path) -> None:
    """They check the log from outside, as any party could: from its API, never the host's
    internals."""
    assert not offending(imports(path), {"hotline.server", "hotline.store"})


@pytest.mark.parametrize("path", sorted((PACKAGE / "client").glob("*.py")), ids=lambda p: p.name)
def test_client_does_not_reach_into_the_server(path: Path) -> None:
    assert not offending(imports(path), {"hotline.server", "hotline.store"})


def test_pure_modules_read_no_clock() -> None:
    for module in PURE:
        text = (PACKAGE / module).read_text()
        assert "datetime.now(" not in text and ".utcnow(" not in text, module
