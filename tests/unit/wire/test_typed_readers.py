"""Issue 14, acceptance 1 for the client side and the frame senders: no module that sends or
reads frames indexes a frame or an entry by string key; they go through ``hotline.wire.frames``
and ``hotline.entries``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "hotline"
READERS = sorted({*PACKAGE.glob("client/*.py"), *PACKAGE.glob("console/*.py"),
                  *PACKAGE.glob("agent/*.py"), *PACKAGE.glob("wire/*.py"),
                  *(PACKAGE / name for name in ("cli.py", "logwatch.py", "doctor_probe.py",
                                                "verification.py", "server/hub.py",
                                                "server/app.py", "server/checkpoints.py"))})
STRING_KEYED = re.compile(r"""\b(entry|frame|welcome|answer|accepted)\[["']"""
                          r"""|\b(entry|frame)\.get\(["']""")


@pytest.mark.parametrize("module", READERS, ids=[str(p.relative_to(PACKAGE)) for p in READERS])
def test_no_frame_or_entry_is_read_by_string_key(module: Path) -> None:
    found = [f"{module.name}:{n}: {line.strip()}" for n, line in
             enumerate(module.read_text().splitlines(), 1) if STRING_KEYED.search(line)]
    assert not found, "\n".join(found)
