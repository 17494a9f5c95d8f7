"""hotline.tlog is pure (docs/ARCHITECTURE.md "Layers"): no I/O, clock or randomness, and it imports
only layers below it (errors, keys) and ``cryptography``. tests/unit/test_layers.py predates this
package, so the same rules are applied here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_layers import FORBIDDEN_IN_PURE, imports, offending

PACKAGE = Path(__file__).resolve().parents[3] / "hotline" / "tlog"
MODULES = sorted(PACKAGE.glob("*.py"))
ALLOWED_HOTLINE = {"hotline.errorcodes", "hotline.errors", "hotline.keys"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_tlog_does_no_io(path: Path) -> None:
    names = imports(path)
    assert not offending(names, FORBIDDEN_IN_PURE | {"datetime", "pathlib", "io"})
    ours = {n for n in names if n.startswith("hotline")}
    assert {n for n in ours if not n.startswith("hotline.tlog")} <= ALLOWED_HOTLINE
    text = path.read_text()
    assert "datetime.now(" not in text and "os.urandom" not in text and ".generate()" not in text


def test_package_is_found() -> None:
    assert {p.name for p in MODULES} >= {"merkle.py", "note.py", "checkpoint.py", "cosignature.py",
                                          "proof_bundle.py", "__init__.py"}
