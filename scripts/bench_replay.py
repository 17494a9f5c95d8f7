#!/usr/bin/env python3
"""Benchmark the server's start-up replay of deadlines and rate windows on a heartbeat-heavy log.

At start the server rebuilds its open ack deadlines and rate windows from the recent window of the
log (up to the longest ack deadline, 3 days for ``data-exchange``). On a busy deployment almost
every entry of that window is a heartbeat or an echo, which owe nothing and are never counted. The
replay reads only messages, acks and overdue notices, found through the indexed ``envelope_kind``
column (``Store.selected``); the baseline, measured in the same run on the same file, is what it
did before: read and parse every entry of the window.

The log is a real store (``synchronous=FULL``, Merkle nodes) of ``--entries`` entries, built once
and cached in ``--dir``: per 100 entries one message, one ack, and heartbeats and echoes (two
echoes per heartbeat, as with three parties), each with a body of ``--pad`` characters.

    .venv/bin/python scripts/bench_replay.py                  # 300,000 entries, ~2 min to build
    .venv/bin/python scripts/bench_replay.py --entries 1000000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import run_bench

from hotline.entries import EnvelopeEntry
from hotline.store import Store, open_store

MAC_KEY = bytes(32)  # row-MAC key of this synthetic log (a server derives it from its log key)

KINDS = ("message", "ack")


def envelope_kind(n: int) -> str:
    return {0: "message", 1: "ack"}.get(n % 100) or ("echo" if n % 3 == 0 else "heartbeat")


async def build(path: Path, entries: int, pad: int) -> None:
    store = await open_store(path, mac_key=MAC_KEY)
    try:
        size = await store.size()
        pending = []
        for n in range(size, entries):
            kind = envelope_kind(n)
            pending.append(store.enqueue({"time": "2026-11-27T00:00:00.000Z", "kind": "envelope",
                                          "channel": f"channel-{n % 1000}", "party": "p", "sig": {},
                                          "envelope": {"id": f"e{n}", "kind": kind, "template": kind,
                                                       "precedence": "ROUTINE", "n": n,
                                                       "pad": "x" * pad}}))
            if len(pending) == 2000:  # a progress line every 2,000 entries
                await asyncio.gather(*pending)
                pending = []
                print(f"\rbuilding the log: {n + 1:,} of {entries:,} entries", end="", file=sys.stderr)
        await asyncio.gather(*pending)
        print(file=sys.stderr)
    finally:
        await store.close()


async def every_entry(store: Store) -> int:
    """The baseline: every entry of the window read and parsed, the irrelevant ones skipped."""
    after, found = -1, 0
    while True:
        page = await store.entries(after=after, limit=1000)
        for stored in page:
            after = stored.index
            found += isinstance(entry := stored.entry, EnvelopeEntry) and entry.envelope.kind in KINDS
        if len(page) < 1000:
            return found


async def selected(store: Store) -> int:
    """What the replay does: only the kinds that matter, by index."""
    found = 0
    async for stored in store.selected(after=-1, envelope_kinds=KINDS, kinds=("overdue",)):
        found += isinstance(entry := stored.entry, EnvelopeEntry) and entry.envelope.kind in KINDS
    return found


async def amain(args: Any, command: str) -> int:
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"replay-{args.entries}-{args.pad}.db"
    await build(path, args.entries, args.pad)
    store = await open_store(path)
    try:
        base, ours = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            expected = await every_entry(store)
            base.append(time.perf_counter() - start)
            start = time.perf_counter()
            found = await selected(store)
            ours.append(time.perf_counter() - start)
            if found != expected:
                raise RuntimeError(f"selected {found} messages and acks, the full read {expected}")
    finally:
        await store.close()
    b, o = statistics.median(base), statistics.median(ours)
    print(f"| replay of {args.entries:,} entries ({expected:,} messages and acks) | hotline "
          f"(selected) {o:.3f} s | baseline (every entry) {b:.2f} s | {b / o:.0f}× faster |")
    print(f"Median of {args.runs} runs. Command: `{command}`")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=300_000, help="entries in the log (default 300000)")
    parser.add_argument("--pad", type=int, default=300, help="characters of body per entry (default 300)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs, median reported (default 3)")
    parser.add_argument("--dir", type=Path, default=Path(".bench"),
                        help="where the log is built and cached (default .bench)")
    return run_bench("bench_replay", amain, parser.parse_args(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
