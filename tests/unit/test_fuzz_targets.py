"""The fuzz harness cannot rot unnoticed: every target of ``scripts/fuzz.py`` runs here over its
seed corpus and a few hundred mutations of it, without atheris (CI does not install it), and
the harness itself counts a typed error as an answer and anything else as a crash it saves."""

from __future__ import annotations

import importlib.util
import random
import re
from pathlib import Path
from types import ModuleType

import pytest

from hotline.errorcodes import Code
from hotline.errors import HotlineError, WireError
from tests.fuzzing import SCRIPTS, answer, load_targets

T = load_targets()


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_harness", SCRIPTS / "fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = load_harness()


def test_the_harness_knows_every_target() -> None:
    assert set(FUZZ.TARGETS) == set(T.TARGETS)


@pytest.mark.parametrize("target", sorted(T.TARGETS))
def test_every_seed_is_a_valid_document_the_target_accepts(target: str) -> None:
    """The seeds are real documents: each one goes through its target without an error (the
    few deliberate near misses are named), so a change of format that breaks them shows here."""
    refused = {}
    for seed in T.seeds(target):
        result = answer(T.TARGETS[target], seed)
        if isinstance(result, HotlineError):
            refused[seed[:40]] = result.code
    expected = {  # a frame a server session refuses (the client takes it), a stale version, ...
        "frames": {"frame.out_of_order", "frame.unknown_type"},
        "roster": {"roster.conflict"}, "note": {"log.bad_note"}, "http": {"frame.malformed"},
    }
    assert set(refused.values()) <= expected.get(target, set()), refused
    assert len(refused) < len(T.seeds(target))


@pytest.mark.parametrize("target", sorted(T.TARGETS))
def test_every_target_survives_mutations_of_its_seeds(target: str) -> None:
    rng = random.Random(target)
    seeds = T.seeds(target)
    for _ in range(150):
        seed = rng.choice(seeds)
        data = (T.mutate_json(seed, rng) if target in T.JSON_TARGETS and rng.random() < 0.5
                else None) or FUZZ.mutate(rng, seed, seeds, 8192)
        answer(T.TARGETS[target], data)


def test_an_untyped_exception_is_a_crash_whose_input_is_saved(tmp_path: Path) -> None:
    def target(data: bytes) -> None:
        if data == b"typed":
            raise WireError("refused", code=Code.FRAME_MALFORMED)
        if data.startswith(b"bad"):
            raise KeyError("the defect")
        if data == b"uncoded":
            raise WireError("refused", code="Not A Code")

    stats = FUZZ.Stats("demo", tmp_path / "crashes", progress=3600)
    one = FUZZ.checked(target, stats, HotlineError, T.check_typed)
    for data in (b"fine", b"typed", b"bad 1", b"bad 2", b"uncoded"):
        one(data)
    assert (stats.inputs, stats.typed, stats.crashes) == (5, 1, 3)
    saved = sorted(p.read_bytes() for p in (tmp_path / "crashes").iterdir())
    assert saved == [b"bad 1", b"uncoded"]  # one file per distinct crash
    assert re.fullmatch(r"fuzz demo: 5 inputs in [0-9.]+ s \([0-9]+/s\): 1 typed errors, 3 crashes",
                        stats.line())


def test_the_random_engine_runs_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = FUZZ.main(["--engine", "random", "--target", "roster", "--runs", "200",
                        "--crashes", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.startswith("fuzz roster: 200 inputs in ") and out.endswith(" 0 crashes\n")
