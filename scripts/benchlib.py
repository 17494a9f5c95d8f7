"""Helpers shared by the benchmarks in this folder (run them as ``python scripts/bench_*.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (q in 0..100) of a non-empty list."""
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` of wall time (batches of 200)."""
    for _ in range(50):
        fn()
    calls, start = 0, time.perf_counter()
    while True:
        for _ in range(200):
            fn()
        calls += 200
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed


def median_figures(runs: Sequence[Any]) -> dict[str, float]:
    """Per figure, the median over runs (objects with a ``figures`` dict) that measured it."""
    keys = sorted({k for r in runs for k in r.figures})
    return {k: statistics.median(r.figures[k] for r in runs if k in r.figures) for k in keys}


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def filesystem_of(path: Path) -> str:
    """Filesystem type and device holding ``path`` (longest mount-point prefix in /proc/mounts)."""
    best, answer = -1, "unknown"
    target = str(path.resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            device, mount, fstype = parts[0], parts[1].replace("\\040", " "), parts[2]
            if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) > best:
                best, answer = len(mount), f"{fstype} on {device}"
    return answer


def machine_info(folder: Path, packages: Sequence[str], **extra: Any) -> dict[str, Any]:
    """What a benchmark ran on: interpreter, CPU, the filesystem of ``folder``, package versions."""
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "filesystem": filesystem_of(folder),
        "folder": str(folder),
        **extra,
        "versions": {p: version_of(p) for p in packages} | {"sqlite": sqlite3.sqlite_version},
    }


def footer(machine: dict[str, Any], runs: Sequence[Any]) -> list[str]:
    """The report's last lines: what it ran on (``machine_info`` with ``load_before`` and
    ``load_after``; ``event_loop`` if given), then each run's notes (objects with ``notes``)."""
    loop = f" ({machine['event_loop']})" if "event_loop" in machine else ""
    out = [f"Machine: {machine['cpu']}, {machine['cpus']} CPU(s), {machine['platform']}, "
           f"{machine['python']}{loop}, 1-min load before/after {machine['load_before']:.2f}/"
           f"{machine['load_after']:.2f}; database on {machine['filesystem']} ({machine['folder']}). "
           "Versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()) + "."]
    notes = [f"run {i + 1}: {note}" for i, r in enumerate(runs) for note in r.notes]
    return out + (["", "Notes:", *(f"- {note}" for note in notes)] if notes else [])


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), from /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid: int) -> int | None:
    """Resident set size of a process, from /proc; None elsewhere."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def machine_cpu() -> tuple[float, float, float] | None:
    """(busy, steal, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    ticks = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    hz = os.sysconf("SC_CLK_TCK")
    idle, steal = ticks[3] + ticks[4], ticks[7]
    return (sum(ticks) - idle - steal) / hz, steal / hz, sum(ticks) / hz


def run_bench(name: str, amain: Callable[[Any, str], Coroutine[Any, Any, int]], args: Any,
              argv: list[str] | None) -> int:
    """Run a benchmark's ``amain(args, command)``; a failure is one line on stderr (a traceback
    with BENCH_TRACEBACK=1) and exit 1, Ctrl-C exits 130."""
    command = f"python scripts/{name}.py" + "".join(
        f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    try:
        return asyncio.run(amain(args, command))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a failed run: one line, not a traceback
        print(f"{name}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("BENCH_TRACEBACK"):
            raise
        return 1
