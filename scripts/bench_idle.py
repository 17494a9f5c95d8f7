#!/usr/bin/env python3
"""Benchmark of the server's memory per idle authenticated connection.

A benchmark, not a test: it prints figures and never fails on them. Per run:

1. The real server (``python -m hotline.cli serve``) in a child process, on a fresh demo
   deployment; ``--warmup`` members connect and authenticate first (imports, caches), then the
   server's RSS is read (``/proc/PID/status``), ``--connections`` more connect, authenticate,
   receive their welcome and roster, and stay idle; RSS is read again. Figure: the growth divided
   by the connections.
2. **Baseline**: the same with a bare aiohttp WebSocket echo server in a child process (the
   ``bench_core.py`` one, no hotline code): what any aiohttp WebSocket costs.

The clients are raw ``websockets`` connections in this process (the challenge, the signed ``auth``
frame, then nothing), opened a few at a time (the server admits at most 16 unauthenticated
sockets per address). With ``--runs K`` every figure is the median of K runs.

    .venv/bin/python scripts/bench_idle.py                   # 1,000 connections (~20 s)
    .venv/bin/python scripts/bench_idle.py --connections 200 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench_core import ECHO_READY, HOTLINE_READY, Child
from benchlib import footer, machine_info, median_figures, proc_rss_bytes, run_bench
from websockets.asyncio.client import ClientConnection, connect

from hotline.client.profile import Profile
from hotline.deployment import init_deployment
from hotline.wire.frames import Challenge, encode
from hotline.wire.session import ClientSession

AT_ONCE = 8  # handshakes in flight (the server's per-address bound on them is 16)


def rss_bytes(pid: int) -> int:
    rss = proc_rss_bytes(pid)
    if rss is None:
        raise RuntimeError(f"cannot read the RSS of process {pid} (/proc/{pid}/status)")
    return rss


@dataclass
class Run:
    figures: dict[str, float] = field(default_factory=dict)


async def member(url: str, profile: Profile | None) -> ClientConnection:
    """One connection: authenticated as ``profile`` (welcome and roster read), or bare."""
    ws = await connect(url, proxy=None, compression=None, max_size=None)
    if profile is not None:
        session = ClientSession(key=profile.signing_key(), origin=profile.origin)
        challenge = session.receive(await ws.recv())
        assert isinstance(challenge, Challenge)
        await ws.send(encode(session.auth_frame(challenge, now=datetime.now(UTC))))
        for expected in ("welcome", "roster"):
            frame = json.loads(await ws.recv())
            if frame["type"] != expected:
                raise RuntimeError(f"expected {expected}, got {frame}")
    return ws


async def open_many(url: str, profile: Profile | None, count: int) -> list[ClientConnection]:
    opened: list[ClientConnection] = []
    for start in range(0, count, AT_ONCE):
        opened += await asyncio.gather(*(member(url, profile)
                                         for _ in range(min(AT_ONCE, count - start))))
    return opened


async def per_connection(child: Child, profile: Profile | None, args: argparse.Namespace) -> float:
    """RSS growth of ``child`` per idle connection, in bytes."""
    assert child.proc is not None
    warm = await open_many(child.url, profile, args.warmup)
    await asyncio.sleep(0.5)  # let the server finish its welcome bursts before reading RSS
    before = rss_bytes(child.proc.pid)
    idle = await open_many(child.url, profile, args.connections)
    await asyncio.sleep(0.5)
    after = rss_bytes(child.proc.pid)
    for ws in (*warm, *idle):
        await ws.close()
    return (after - before) / args.connections


async def one_run(args: argparse.Namespace) -> Run:
    workdir = Path(tempfile.mkdtemp(prefix="hotline-bench-idle-"))
    home = workdir / "home"
    init_deployment(home, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin="bench.hotline.local", force=False)
    server = Child("hotline server", [sys.executable, "-m", "hotline.cli", "--home", str(home),
                                      "serve"], HOTLINE_READY, workdir / "server.log", workdir)
    echo = Child("echo server", [sys.executable, str(Path(__file__).with_name("bench_core.py")),
                                 "--echo-server"], ECHO_READY, workdir / "echo.log", workdir)
    server.env["HOTLINE_LIMITS_MAX_CONNECTIONS"] = str(args.connections + args.warmup + 16)
    try:
        await asyncio.gather(server.start(), echo.start())
        figures = {"hotline_rss_per_connection": await per_connection(
            server, Profile.load(home, "alice"), args)}
        figures["echo_rss_per_connection"] = await per_connection(echo, None, args)
        assert server.proc is not None
        figures["server_rss_bytes"] = rss_bytes(server.proc.pid)
        return Run(figures)
    finally:
        await asyncio.gather(server.stop(), echo.stop())
        shutil.rmtree(workdir, ignore_errors=True)


async def amain(args: argparse.Namespace, command: str) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.connections + 256)), hard))
    load_before = os.getloadavg()[0]
    runs: list[Run] = []
    for k in range(args.runs):
        runs.append(await one_run(args))
        got = runs[-1].figures
        print(f"run {k + 1}/{args.runs}: {got['hotline_rss_per_connection'] / 1024:.1f} KB per "
              f"connection (echo {got['echo_rss_per_connection'] / 1024:.1f} KB)",
              file=sys.stderr, flush=True)
    med = median_figures(runs)
    if args.json:
        print(json.dumps({"median": med, "runs": [r.figures for r in runs], "command": command},
                         indent=2))
        return 0
    kb = {k: v / 1024 for k, v in med.items()}
    ratio = med["hotline_rss_per_connection"] / med["echo_rss_per_connection"]
    machine = machine_info(Path(tempfile.gettempdir()), ["aiohttp", "websockets"],
                           load_before=load_before, load_after=os.getloadavg()[0])
    print("\n".join([
        f"# Server memory per idle authenticated connection — median of {args.runs} run(s), "
        f"{args.connections:,} connections", "",
        "| figure | hotline | baseline: bare aiohttp WebSocket | ratio |", "|---|---|---|---|",
        f"| RSS per idle connection | {kb['hotline_rss_per_connection']:.1f} KB | "
        f"{kb['echo_rss_per_connection']:.1f} KB | {ratio:.2f}× |",
        f"| server RSS with {args.connections + args.warmup:,} members connected | "
        f"{kb['server_rss_bytes'] / 1024:.1f} MB | | |", "",
        f"Aim: ≤ 100 KB per idle connection: "
        f"{'met' if kb['hotline_rss_per_connection'] <= 100 else 'NOT met'}.",
        *footer(machine, []), f"Command: {command}"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000,
                        help="idle connections measured (default 1,000)")
    parser.add_argument("--warmup", type=int, default=8,
                        help="connections opened before the first RSS reading (default 8)")
    parser.add_argument("--runs", type=int, default=1, help="repeat K times, report medians")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    return run_bench("bench_idle", amain, args, argv)


if __name__ == "__main__":
    sys.exit(main())
