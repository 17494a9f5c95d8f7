"""``scripts/bench_core.py --baseline-ref``: the baseline's server really imports ``hotline`` from
a worktree of that ref, and the worktree is gone afterwards, however the benchmark ends."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.fuzzing import SCRIPTS

ROOT = SCRIPTS.parent


def bench_core(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(SCRIPTS))  # bench_core imports benchlib beside it
    spec = importlib.util.spec_from_file_location("bench_core_under_test", SCRIPTS / "bench_core.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


def worktrees() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "worktree", "list", "--porcelain"],
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture
def git_checkout() -> None:
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--git-dir"],
                      capture_output=True).returncode:
        pytest.skip("not a git checkout")


@pytest.mark.usefixtures("git_checkout")
def test_the_baseline_tree_holds_the_ref_and_is_removed_even_on_failure(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bench = bench_core(monkeypatch)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    with pytest.raises(RuntimeError, match="the benchmark failed"), \
            bench.baseline_tree("HEAD", tmp_path) as (tree, commit):
        assert commit == head
        assert (tree / "hotline" / "cli.py").is_file()
        assert str(tree) in worktrees()
        bench.imported_from(tree)  # a child with PYTHONPATH=tree imports the ref's hotline
        with pytest.raises(RuntimeError, match="hotline comes from"):
            bench.imported_from(tmp_path)  # no hotline there: it would come from elsewhere
        raise RuntimeError("the benchmark failed")
    assert not tree.exists() and str(tree) not in worktrees()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("git_checkout")
def test_an_unknown_ref_is_refused_before_anything_is_made(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bench = bench_core(monkeypatch)
    with pytest.raises(RuntimeError, match="no-such-ref"), bench.baseline_tree("no-such-ref", tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []
    assert "hotline-baseline-" not in worktrees()
