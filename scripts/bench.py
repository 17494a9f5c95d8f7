#!/usr/bin/env python3
"""Every benchmark in one command, one table (issue 18): each goal's figure next to its baseline
measured in the same run, as a ratio, and whether the goal is met.

A benchmark, not a test: it prints figures and never fails on them. Each part is one of this
folder's benchmarks, run as it runs alone (its own deployment, server and clients, in a child
process) with ``--json``; this script only chooses their sizes and reads their figures, so there
is one harness per part and no copy of any:

- **core** (``bench_core.py``): accepted+delivered msg/s with 64 in flight, and send→verified
  delivery p50/p99 one message at a time; baselines: one core's raw Ed25519 verifications per
  second, and a bare WebSocket echo round trip, both measured in that run.
- **heartbeats** (``bench_heartbeat.py``): the server's CPU per envelope under three agents'
  heartbeats and echoes on N channels; baseline: one raw Ed25519 verification.
- **log** (``bench_tlog.py``): inclusion and consistency proof p99 at N entries, and ``audit
  verify``'s rate per core; baseline: raw Ed25519 verifications per second in that run. And
  ``hotline serve``'s start-up on a copy of that log; baseline: the same on an empty log.
- **idle** (``bench_idle.py``): the server's RSS per idle authenticated connection; baseline: a
  bare aiohttp WebSocket server's, in that run.

``--quick`` (under 2 minutes) runs small sizes; the full run is the issue's sizes (10^6 entries,
1,000 channels, 1,000 connections, medians of 3 runs; the log is built once and cached in
``.bench/``). Not measured yet, and shown so: latency at an offered 1,000 msg/s.

    .venv/bin/python scripts/bench.py --quick            # < 2 min
    .venv/bin/python scripts/bench.py                    # the issue's sizes (the first run builds the log)
    .venv/bin/python scripts/bench.py --quick --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import footer, machine_info, run_bench

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / ".bench"

# part -> (script, quick arguments, full arguments)
PARTS: dict[str, tuple[str, list[str], list[str]]] = {
    "core": ("bench_core.py",
             ["--runs", "1", "--messages", "1500", "--latency-samples", "150", "--warmup", "30",
              "--crypto-seconds", "0.3", "--sqlite-commits", "20", "--offered-seconds", "1"],
             ["--runs", "3"]),
    "heartbeats": ("bench_heartbeat.py",
                   ["--channels", "100", "--duration", "15", "--warmup", "3",
                    "--crypto-seconds", "0.3"],
                   ["--channels", "1000", "--duration", "60", "--runs", "3"]),
    "log": ("bench_tlog.py",
            ["--entries", "20000", "--cache", str(CACHE / "tlog-20000.db"), "--proof-samples",
             "500", "--proof-budget", "5", "--breakdown-entries", "2000", "--breakdown-rounds",
             "1", "--crypto-seconds", "0.3"],
            ["--entries", "1000000", "--runs", "3"]),
    "idle": ("bench_idle.py", ["--connections", "200"], ["--connections", "1000", "--runs", "3"]),
}


@dataclass(frozen=True)
class Goal:
    """One line of the table: a figure of a part, its baseline in the same run, the target."""

    what: str
    part: str
    figure: Callable[[dict[str, float]], float | None]
    unit: str
    baseline: Callable[[dict[str, float]], float | None]
    baseline_is: str
    ratio_target: float | None  # figure / baseline must reach it (None: only the absolute)
    higher_is_better: bool
    absolute: float | None = None  # the absolute target, if the issue gives one


def _verify_us(m: dict[str, float]) -> float | None:
    rate = m.get("ed25519_verify_per_s")
    return 1e6 / rate if rate else None


def _kb(value: float | None) -> float | None:
    return None if value is None else value / 1024


def _two_cores(m: dict[str, float]) -> float | None:
    rate = m.get("ed25519_verify_per_s")
    return 2 * rate if rate else None


GOALS = [
    Goal("accepted+delivered msg/s (64 in flight)", "core", lambda m: m.get("hotline_msgs_per_s"),
         "msg/s", _two_cores, "raw Ed25519 verify/s, both cores", 0.5, True, absolute=5000),
    Goal("send→verified delivery p50, one at a time", "core", lambda m: m.get("hotline_p50_ms"),
         "ms", lambda m: m.get("echo_p50_ms"), "ms, bare WebSocket echo p50", None, False,
         absolute=1.0),
    Goal("send→verified delivery p99, one at a time", "core", lambda m: m.get("hotline_p99_ms"),
         "ms", lambda m: m.get("echo_p99_ms"), "ms, bare WebSocket echo p99", None, False,
         absolute=5.0),
    Goal("send→verified delivery p50, 1,000 msg/s offered", "core",
         lambda m: m.get("offered_p50_ms"), "ms", lambda m: m.get("echo_p50_ms"),
         "ms, bare WebSocket echo p50", None, False, absolute=1.0),
    Goal("send→verified delivery p99, 1,000 msg/s offered", "core",
         lambda m: m.get("offered_p99_ms"), "ms", lambda m: m.get("echo_p99_ms"),
         "ms, bare WebSocket echo p99", None, False, absolute=5.0),
    Goal("server CPU per envelope (heartbeats)", "heartbeats",
         lambda m: m.get("server_cpu_us_per_envelope"), "µs", _verify_us,
         "µs, one raw Ed25519 verify", 2.0, False),
    Goal("inclusion proof p99", "log", lambda m: m.get("inclusion_p99_ms"), "ms",
         lambda m: m.get("inclusion_compute_p50_ms"), "ms, its hashing alone, p50", None, False,
         absolute=1.0),
    Goal("consistency proof p99", "log", lambda m: m.get("consistency_p99_ms"), "ms",
         lambda m: m.get("consistency_compute_p50_ms"), "ms, its hashing alone, p50", None, False,
         absolute=1.0),
    Goal("audit verify, entries/s per core", "log",
         lambda m: (m["audit_per_s"] / m.get("audit_cores", 1.0)) if "audit_per_s" in m else None,
         "/s", lambda m: m.get("ed25519_verify_per_s"), "raw Ed25519 verify/s, one core", 0.8, True),
    Goal("`hotline serve` restart, spawn to listening", "log", lambda m: m.get("startup_s"), "s",
         lambda m: m.get("startup_empty_s"), "s, the same server on an empty log", None, False,
         absolute=2.0),
    Goal("server RSS per idle authenticated connection", "idle",
         lambda m: _kb(m.get("hotline_rss_per_connection")), "KB",
         lambda m: _kb(m.get("echo_rss_per_connection")), "KB, bare aiohttp WebSocket", None, False,
         absolute=100),
]


# Figures beside the goals that explain them: (what, part, key, unit)
CONTEXT = [
    ("open loop at 1,000 msg/s offered: rate achieved", "core", "offered_achieved_per_s", "msg/s"),
    ("first start at that size with no saved obligations (a log from before them)", "log",
     "startup_cold_s", "s"),
    ("`audit verify` cores used", "log", "audit_cores", ""),
]


def _run_part(name: str, quick: bool) -> tuple[dict[str, float], float]:
    script, quick_args, full_args = PARTS[name]
    CACHE.mkdir(exist_ok=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / script), "--json",
                           *(quick_args if quick else full_args)],
                          capture_output=True, text=True, check=False, env=dict(os.environ))
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed: {done.stderr.strip()[-800:]}")
    figures: dict[str, float] = json.loads(done.stdout)["median"]
    return figures, time.perf_counter() - started


def _met(goal: Goal, value: float, base: float | None) -> bool:
    checks = []
    if goal.absolute is not None:
        checks.append(value >= goal.absolute if goal.higher_is_better else value <= goal.absolute)
    if goal.ratio_target is not None and base:
        ratio = value / base
        checks.append(ratio >= goal.ratio_target if goal.higher_is_better else ratio <= goal.ratio_target)
    return bool(checks) and all(checks)


def _target(goal: Goal) -> str:
    sign = "≥" if goal.higher_is_better else "≤"
    parts = [f"{sign} {goal.absolute:,g} {goal.unit}"] if goal.absolute is not None else []
    if goal.ratio_target is not None:
        parts.append(f"{sign} {goal.ratio_target:g}× baseline")
    return ", ".join(parts)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def rows(figures: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """One row per goal, from each part's median figures."""
    out = []
    for goal in GOALS:
        measured = figures.get(goal.part, {})
        value, base = goal.figure(measured), goal.baseline(measured)
        if value is None:
            continue
        what = goal.what + (f" at {int(measured['size']):,} entries" if "size" in measured else "")
        out.append({"goal": what, "part": goal.part, "value": value, "unit": goal.unit,
                    "baseline": base, "baseline_is": goal.baseline_is,
                    "ratio": value / base if base else None, "target": _target(goal),
                    "met": _met(goal, value, base)})
    return out


def render(table: list[dict[str, Any]], mode: str, seconds: dict[str, float],
           figures: dict[str, dict[str, float]]) -> list[str]:
    lines = [f"# hotline benchmarks ({mode}): each figure next to its baseline in the same run", "",
             "| goal | figure | baseline (same run) | ratio | target | met |",
             "|---|---|---|---|---|---|"]
    for row in table:
        base = (f"{_num(row['baseline'])} ({row['baseline_is']})" if row["baseline"] is not None
                else row["baseline_is"] + ": not measured")
        ratio = f"{row['ratio']:.2f}×" if row["ratio"] is not None else "–"
        lines.append(f"| {row['goal']} | {_num(row['value'])} {row['unit']} | {base} | {ratio} | "
                     f"{row['target']} | {'met' if row['met'] else 'NOT met'} |")
    also = [f"{what}: {_num(figures[part][key])} {unit}".rstrip() for what, part, key, unit in CONTEXT
            if key in figures.get(part, {})]
    lines += ["", *(["Also measured: " + "; ".join(also) + "."] if also else []),
              "Parts: " + ", ".join(f"{p} {s:.0f} s" for p, s in seconds.items()) + "."]
    return lines


async def amain(args: argparse.Namespace, command: str) -> int:
    load_before = os.getloadavg()[0]
    figures: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    for name in args.parts:
        print(f"{name} ({PARTS[name][0]}) ...", file=sys.stderr, flush=True)
        figures[name], seconds[name] = await asyncio.to_thread(_run_part, name, args.quick)
        print(f"{name}: {seconds[name]:.0f} s", file=sys.stderr, flush=True)
    table = rows(figures)
    machine = machine_info(CACHE, ["aiohttp", "websockets", "cryptography", "sqlite-utils"],
                           load_before=load_before, load_after=os.getloadavg()[0])
    if args.json:
        print(json.dumps({"mode": "quick" if args.quick else "full", "goals": table,
                          "parts": figures, "seconds": seconds,
                          "machine": machine, "command": command}, indent=2))
        return 0
    mode = "--quick" if args.quick else "full sizes"
    print("\n".join([*render(table, mode, seconds, figures), "", *footer(machine, []),
                     f"Command: {command}"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under 2 minutes")
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS),
                        help="run only these parts (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    return run_bench("bench", amain, args, argv)


if __name__ == "__main__":
    sys.exit(main())
