"""The README's screenshot of the liaison console (``docs/console.svg``) can be made again:
``scripts/console_screenshot.py`` runs its session (real server, agents and console, in this
event loop) and the SVG it writes shows what the README says the console shows.

The script stops everything it starts and waits only on bounded polls of the screen. This test
reads the screen back from the SVG: one row per ``y``, its ``<text>`` runs in ``x`` order,
unescaped (the export writes spaces as ``&#160;``)."""

from __future__ import annotations

import html
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow  # real servers or child processes in every test

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "console_screenshot.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("console_screenshot", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def svg_rows(svg: str) -> list[str]:
    """The exported screen as text rows (runs of blank cells are not exported: no padding)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in re.findall(r'<text [^>]*\bx="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    return ["".join(text for _, text in sorted(row)) for _, row in sorted(rows.items())]


async def test_the_script_makes_the_console_screenshot_the_readme_shows(tmp_path: Path) -> None:
    out = tmp_path / "console.svg"
    svg = await load_script().make_screenshot(out, width=80, height=24)

    assert out.read_text(encoding="utf-8") == svg
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    screen = "\n".join(svg_rows(svg))
    assert "hotline console" in screen  # the title
    assert "north-south" in screen and "● UP hb" in screen  # the channel, its health, heartbeat age
    assert "‼FLASH‼" in screen and "!IMMEDIATE!" in screen and "PRIORITY" in screen
    assert "risk-assessment:" in screen and "preagreed: #2 UNIDENTIFIED-OBJECTS" in screen
    assert "sig✓ logged incl✓ wit 3/3" in screen  # verification state, proven and witnessed
    assert "✓received" in screen and "✓understood" in screen  # acknowledgement state
    assert "YOU OWE 'understood'" in screen and "ACK OWED ×1" in screen
    assert "LINK UP" in screen and "bob@south liaison" in screen  # the status bar
    assert " u Ack " in screen and "? Help" in screen  # the key bar, one line at 80 columns
