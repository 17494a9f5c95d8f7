"""The crash harness (``scripts/crashtest.py``) in short: three rounds of SIGKILLing the real
server under load, each at an armed crash point, then the harness's checks after every restart.

It starts everything it uses (a temporary deployment, ``hotline serve`` children, three liaison
clients) and stops it. The seed is fixed and each armed point is waited for as long as it takes
(``--armed-wait 120``: the senders keep the server busy until the point fires), so which point
each kill hit does not depend on timing; what the test asserts never does."""

from __future__ import annotations

import importlib.util
import io
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "crashtest.py"

pytestmark = pytest.mark.slow


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crashtest", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("points", ["commit.before,commit.after,checkpoint.signed",
                                    "checkpoint.filed,checkpoint.stored,random"])
async def test_sigkill_at_each_crash_point_loses_and_duplicates_nothing(tmp_path: Path,
                                                                        points: str) -> None:
    crashtest = load_script()
    options = crashtest.parser().parse_args(
        ["--rounds", "3", "--seed", "7", "--armed-wait", "120", "--points", points,
         "--keep", str(tmp_path / "run")])
    out = io.StringIO()
    summary = await crashtest.crashtest(options, out)

    assert summary.failures == [], out.getvalue()
    assert summary.rounds == 3
    assert summary.kills == Counter(points.split(","))  # each kill where it was armed
    assert summary.accepted > 0 and summary.lost == 0 and summary.duplicated == 0
    assert summary.audits == summary.audits_clean == 3
    # every checkpoint seen (pushed, polled, the log's history) proven consistent with the last
    assert summary.checkpoints >= summary.checkpoint_sources["history"] > 0
    assert summary.ok and out.getvalue().splitlines()[-2].split() == ["result", "OK"]
