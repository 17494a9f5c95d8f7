"""The console's view-model and forms are pure (no Textual, no I/O, no clock), and no part of the
console reaches into the server or the store: it sees only what a member receives."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_layers import PACKAGE, imports, offending

PURE = ["state.py", "forms.py"]
FORBIDDEN_IN_PURE = {"textual", "rich", "aiohttp", "websockets", "sqlite3", "asyncio", "socket", "os",
                     "time", "random", "urllib", "hotline.server", "hotline.store", "hotline.client"}


@pytest.mark.parametrize("module", PURE)
def test_view_model_and_forms_are_pure(module: str) -> None:
    path = PACKAGE / "console" / module
    assert not offending(imports(path), FORBIDDEN_IN_PURE)
    text = path.read_text()
    assert "datetime.now(" not in text and ".utcnow(" not in text


@pytest.mark.parametrize("path", sorted((PACKAGE / "console").glob("*.py")), ids=lambda p: p.name)
def test_console_does_not_reach_into_the_server(path: Path) -> None:
    assert not offending(imports(path), {"hotline.server", "hotline.store"})
