#!/usr/bin/env python3
"""Coverage-guided fuzzing of hotline's parsers with atheris (libFuzzer for Python).

    pip install -e '.[fuzz]'
    python scripts/fuzz.py --target frames --runs 1000000
    python scripts/fuzz.py --target frames --target roster --runs 1000000   # one after the other

Each target (``scripts/fuzz_targets.py``) feeds one input to a parser a peer or the host can
reach. An input that gives a value or a typed error (``HotlineError`` with a dotted code) is
fine; any other exception is a crash: its input is saved under ``--crashes`` (one file per
distinct exception and place), its traceback printed, and fuzzing goes on. The seed corpus is
made at start from real documents signed with fixed test keys (``fuzz_targets.seeds``) and
written to ``--corpus`` (a temporary directory by default), where libFuzzer also keeps the new
inputs that reached new code. Everything runs in one process on one core.

Output: a progress line every ``--progress`` seconds, then one final line per target::

    fuzz frames: 1000000 inputs in 230.1 s (4346/s): 731022 typed errors, 0 crashes

Exit status 0 if no crash, 1 otherwise. ``--engine random`` runs a plain mutator over the same
seeds where atheris does not install (no coverage guidance).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

TARGETS = ("frames", "roster", "canonical", "envelope", "note", "bundle", "http")


class Stats:
    """What one target's run saw, printed as progress and as the final line."""

    def __init__(self, target: str, crashes_dir: Path, progress: float) -> None:
        self.target, self.crashes_dir, self.progress = target, crashes_dir, progress
        self.inputs = self.typed = self.crashes = 0
        self.seen: set[str] = set()
        self.start = self.last = time.monotonic()

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.inputs / elapsed if elapsed > 0 else 0.0
        return (f"fuzz {self.target}: {self.inputs} inputs in {elapsed:.1f} s ({rate:.0f}/s): "
                f"{self.typed} typed errors, {self.crashes} crashes")

    def tick(self) -> None:
        if self.inputs & 0x3FF == 0 and time.monotonic() - self.last >= self.progress:
            self.last = time.monotonic()
            print(self.line(), flush=True)

    def crash(self, data: bytes, exc: BaseException) -> None:
        self.crashes += 1
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        kind = f"{type(exc).__name__} at {where}"
        if kind in self.seen:
            return
        self.seen.add(kind)
        self.crashes_dir.mkdir(parents=True, exist_ok=True)
        path = self.crashes_dir / f"crash-{self.target}-{hashlib.sha1(data).hexdigest()[:16]}"
        path.write_bytes(data)
        print(f"CRASH {self.target}: {kind}; input saved to {path} ({len(data)} bytes): "
              f"{data[:200]!r}", flush=True)
        traceback.print_exception(exc, file=sys.stdout)


def checked(target: Callable[[bytes], None], stats: Stats, errors: type[BaseException],
            check: Callable[[BaseException], None]) -> Callable[[bytes], None]:
    """``target`` counting its answers: a typed error (``errors``, which ``check`` accepts: it has
    a dotted code) is an answer, anything else a crash."""

    def one(data: bytes) -> None:
        stats.inputs += 1
        try:
            try:
                target(data)
            except errors as exc:
                check(exc)
                stats.typed += 1
        except Exception as exc:  # the defect this harness looks for
            stats.crash(data, exc)
        stats.tick()

    return one


def load_targets(instrument: bool) -> ModuleType:
    """``fuzz_targets`` (beside this file), with hotline's code instrumented for coverage when
    atheris runs it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if not instrument:
        return importlib.import_module("fuzz_targets")
    import atheris
    with atheris.instrument_imports(include=["hotline"]):
        return importlib.import_module("fuzz_targets")


def write_corpus(module: ModuleType, target: str, corpus: Path) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    longest = 0
    for seed in module.seeds(target):
        (corpus / f"seed-{hashlib.sha1(seed).hexdigest()[:16]}").write_bytes(seed)
        longest = max(longest, len(seed))
    return longest


def run_atheris(args: argparse.Namespace) -> None:
    """libFuzzer over the target; it never returns: the target's last run ends the process
    (libFuzzer's own exit skips Python's ``atexit`` once it has read a corpus)."""
    import atheris
    module = load_targets(instrument=True)
    stats = Stats(args.target[0], args.crashes, args.progress)
    temporary = args.corpus is None
    corpus = Path(tempfile.mkdtemp(prefix="hotline-fuzz-")) if temporary else args.corpus / stats.target
    longest = write_corpus(module, stats.target, corpus)
    args.crashes.mkdir(parents=True, exist_ok=True)  # libFuzzer's own artifacts (timeouts) too
    one = checked(module.TARGETS[stats.target], stats, module.HotlineError, module.check_typed)

    def counted(data: bytes) -> None:
        one(data)
        if stats.inputs == args.runs:
            if temporary:
                shutil.rmtree(corpus, ignore_errors=True)
            finish(stats)

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if stats.target in module.JSON_TARGETS and rng.random() < 0.5:
            edited = module.mutate_json(data, rng)
            if edited is not None and len(edited) <= max_size:
                return bytes(edited)
        return bytes(atheris.Mutate(data, max_size))

    atheris.Setup([sys.argv[0], str(corpus), f"-max_len={max(args.max_len, longest)}", "-timeout=10",
                   f"-seed={args.seed}", f"-artifact_prefix={args.crashes}/"], counted,
                  custom_mutator=mutator)
    atheris.Fuzz()


def finish(stats: Stats) -> None:
    """The final line, then exit: 1 if anything crashed."""
    print(stats.line(), flush=True)
    sys.stderr.flush()
    os._exit(1 if stats.crashes else 0)


def run_random(args: argparse.Namespace) -> int:
    """A plain mutator over the seeds: no coverage guidance, for where atheris is missing."""
    module = load_targets(instrument=False)
    stats = Stats(args.target[0], args.crashes, args.progress)
    seeds = module.seeds(stats.target)
    one = checked(module.TARGETS[stats.target], stats, module.HotlineError, module.check_typed)
    rng = random.Random(args.seed)
    structured = stats.target in module.JSON_TARGETS
    for _ in range(args.runs if args.runs is not None else 1_000_000):
        seed = rng.choice(seeds)
        edited = module.mutate_json(seed, rng) if structured and rng.random() < 0.5 else None
        one(edited[:args.max_len] if edited is not None else mutate(rng, seed, seeds, args.max_len))
    print(stats.line(), flush=True)
    return 1 if stats.crashes else 0


TOKENS = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"null", b"true", b"1.5", b"-0", b"1e400",
          b"NaN", b"9007199254740993", b"\\ud800", b"\xff", b"\xed\xa0\x80", b"\n", b"\n\n", b"\r",
          b"\xe2\x80\x94 ", b"+", b"=", b"[" * 40, b'"type"', b'"document"', b'"sigs"']


def mutate(rng: random.Random, data: bytes, seeds: list[bytes], max_len: int) -> bytes:
    """One to four random edits: flip, insert a token, delete, duplicate, splice."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(out))
        op = rng.randrange(5)
        if op == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[at:at] = rng.choice(TOKENS)
        elif op == 2:
            del out[at:at + rng.randint(1, 16)]
        elif op == 3:
            out[at:at] = out[at:at + rng.randint(1, 64)]
        else:
            other = rng.choice(seeds)
            cut = rng.randint(0, len(other))
            out[at:] = other[cut:cut + rng.randint(0, 256)]
    return bytes(out[:max_len])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fuzz hotline's parsers: every input must give a value or a typed error.",
        epilog=f"targets: {', '.join(TARGETS)}")
    parser.add_argument("--target", action="append", choices=TARGETS,
                        help="a parser to fuzz (repeat for several, run one after the other; "
                             "default: frames and roster)")
    parser.add_argument("--runs", type=int, default=None,
                        help="inputs per target (default: until interrupted; 1000000 for "
                             "--engine random)")
    parser.add_argument("--engine", choices=("atheris", "random"), default=None,
                        help="atheris (coverage-guided; the default where it is installed) or "
                             "random (a plain mutator)")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="corpus directory (seeds are written here; libFuzzer adds what "
                             "finds new code); default: a temporary directory")
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"),
                        help="where crashing inputs are saved (default: ./fuzz-crashes)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--max-len", type=int, default=8192,
                        help="longest input tried, at least the longest seed (default 8192)")
    parser.add_argument("--progress", type=float, default=30.0,
                        help="seconds between progress lines (default 30)")
    args = parser.parse_args(argv)
    args.target = args.target or ["frames", "roster"]
    if args.engine is None:
        try:
            import atheris  # noqa: F401
            args.engine = "atheris"
        except ImportError:
            print("fuzz: atheris is not installed (pip install -e '.[fuzz]'); using the random "
                  "mutator", file=sys.stderr)
            args.engine = "random"
    if len(args.target) > 1:  # libFuzzer runs once per process: one child per target
        status = 0
        for target in args.target:
            child = [sys.executable, __file__, *_forward(args), "--target", target]
            status |= subprocess.run(child, check=False).returncode
        return status
    if args.engine == "random":
        return run_random(args)
    run_atheris(args)
    return 0


def _forward(args: argparse.Namespace) -> list[str]:
    out: list[Any] = ["--engine", args.engine, "--crashes", args.crashes, "--seed", args.seed,
                      "--max-len", args.max_len, "--progress", args.progress]
    if args.runs is not None:
        out += ["--runs", args.runs]
    if args.corpus is not None:
        out += ["--corpus", args.corpus]
    return [str(item) for item in out]


if __name__ == "__main__":
    sys.exit(main())
