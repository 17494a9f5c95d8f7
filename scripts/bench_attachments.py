#!/usr/bin/env python3
"""Benchmark of attachment uploads (issue 19): MB/s into the server, next to what the disk and
the crypto alone do in the same run, and the server's memory while several members upload at
once. A benchmark, not a test: it prints figures and never fails on them.

Per run, on a fresh demo deployment with the real server in a child process (``synchronous=FULL``):

1. **Sealing**: ``--mb`` MB sealed in 64 KiB chunks (``hotline.attachments.stream``: the STREAM
   construction, ChaCha20-Poly1305), in this process: MB/s. Baseline: one HPKE seal
   (ML-KEM-768+X25519, the construction that seals a field) of the same bytes at once, MB/s.
2. **Upload**: alice uploads the sealed stream (``Client.upload``: 64 KiB chunks, 8 in flight,
   each durable before it is answered, the SHA-256 checked at the end), MB/s from the first
   chunk to ``stored``. Baseline: the same bytes written to a file on the same disk in 64 KiB
   writes with an fsync each, MB/s (what durable chunk by chunk costs without hotline).
3. **Memory**: ``--uploaders`` liaisons of different parties upload ``--mb`` MB each at once;
   the server's peak RSS (``/proc/PID/status``, sampled every 50 ms) against its RSS before.

    .venv/bin/python scripts/bench_attachments.py                 # 50 MB, 3 uploaders (~1 min)
    .venv/bin/python scripts/bench_attachments.py --mb 10 --runs 3 --json
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_core import HOTLINE_READY, Child
from benchlib import footer, machine_info, median_figures, proc_rss_bytes, run_bench

from hotline.attachments.stream import CHUNK, StreamPlace, new_key, seal_stream
from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.deployment import init_deployment
from hotline.epochkeys import EpochPrivateKey
from hotline.keys import b64url
from hotline.sealing import SUITE

PLACE = StreamPlace(channel="north-south", envelope="A" * 22, field="imagery", position=0)
UPLOADERS = ("alice", "bob", "carol")  # a liaison of each party: each its own share


@dataclass
class Run:
    figures: dict[str, float] = field(default_factory=dict)


def sealed_content(plain: bytes) -> tuple[bytes, float]:
    """``plain`` sealed as a stream, and the seconds sealing took."""
    started = time.perf_counter()
    sealed = b"".join(seal_stream(io.BytesIO(plain).read, new_key(), PLACE))
    return sealed, time.perf_counter() - started


def hpke_mb_per_s(data: bytes) -> float:
    """One HPKE seal of ``data`` at once, with the sealed-field suite (ML-KEM-768+X25519,
    HKDF-SHA256, ChaCha20-Poly1305) to a fresh epoch key, MB/s."""
    key = EpochPrivateKey.generate().hpke.public_key()
    started = time.perf_counter()
    SUITE.encrypt(data, key, b"bench")
    return len(data) / 1e6 / (time.perf_counter() - started)


def fsync_mb_per_s(folder: Path, data: bytes) -> float:
    """``data`` written in 64 KiB writes, an fsync after each, MB/s."""
    path = folder / "fsync.bin"
    started = time.perf_counter()
    with path.open("wb") as out:
        for start in range(0, len(data), CHUNK):
            out.write(data[start:start + CHUNK])
            out.flush()
            os.fsync(out.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return len(data) / 1e6 / elapsed


async def upload(client: Client, data: bytes) -> float:
    """Seconds ``client`` takes to upload ``data`` until the server has stored it."""
    digest = b64url(hashlib.sha256(data).digest())
    started = time.perf_counter()
    answer = await client.upload(lambda start, n: data[start:start + n], sha256=digest,
                                 size=len(data))
    if not answer.stored:
        raise RuntimeError("the server did not store the upload")
    return time.perf_counter() - started


async def peak_rss(pid: int, done: asyncio.Event) -> int:
    peak = 0
    while not done.is_set():
        peak = max(peak, proc_rss_bytes(pid) or 0)
        try:
            await asyncio.wait_for(done.wait(), 0.05)
        except TimeoutError:
            pass
    return max(peak, proc_rss_bytes(pid) or 0)


async def one_run(args: argparse.Namespace, workdir: Path) -> Run:
    home = workdir / "home"
    init_deployment(home, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin="bench.hotline.local", force=False)
    size = args.mb * 1_000_000 + 10_000_000
    server = Child("hotline server", [sys.executable, "-m", "hotline.cli", "--home", str(home),
                                      "serve"], HOTLINE_READY, workdir / "server.log", workdir)
    server.env.update(HOTLINE_LIMITS_ATTACHMENT_BYTES=str(size),
                      HOTLINE_LIMITS_UPLOADS_BYTES=str(2 * size))
    plain = os.urandom(args.mb * 1_000_000)
    sealed, seconds = sealed_content(plain)
    figures = {"seal_mb_per_s": args.mb / seconds, "hpke_mb_per_s": hpke_mb_per_s(plain),
               "fsync_mb_per_s": fsync_mb_per_s(workdir, sealed)}
    clients: list[Client] = []
    try:
        await server.start()
        assert server.proc is not None
        for name in UPLOADERS[:args.uploaders]:
            profile = Profile.load(home, name)
            client = Client.for_profile(profile)
            await client.connect(server.url)
            clients.append(client)
        figures["upload_mb_per_s"] = args.mb / await upload(clients[0], sealed)
        contents = [os.urandom(len(sealed)) for _ in clients]
        before = proc_rss_bytes(server.proc.pid) or 0
        done = asyncio.Event()
        watcher = asyncio.create_task(peak_rss(server.proc.pid, done))
        started = time.perf_counter()
        await asyncio.gather(*(upload(c, data) for c, data in zip(clients, contents, strict=True)))
        elapsed = time.perf_counter() - started
        done.set()
        figures["rss_before_bytes"] = before
        figures["rss_peak_bytes"] = await watcher
        figures["concurrent_mb_per_s"] = len(clients) * args.mb / elapsed
        return Run(figures)
    finally:
        for client in clients:
            await client.close()
        await server.stop()


async def amain(args: argparse.Namespace, command: str) -> int:
    load_before = os.getloadavg()[0]
    runs: list[Run] = []
    folder = Path(tempfile.mkdtemp(prefix="hotline-bench-attach-", dir=args.dir))
    try:
        for k in range(args.runs):
            workdir = folder / f"run{k}"
            workdir.mkdir()
            runs.append(await one_run(args, workdir))
            got = runs[-1].figures
            print(f"run {k + 1}/{args.runs}: upload {got['upload_mb_per_s']:.1f} MB/s, "
                  f"{args.uploaders} at once peak RSS "
                  f"{(got['rss_peak_bytes'] - got['rss_before_bytes']) / 1e6:+.1f} MB",
                  file=sys.stderr, flush=True)
            shutil.rmtree(workdir, ignore_errors=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    med = median_figures(runs)
    if args.json:
        print(json.dumps({"median": med, "runs": [r.figures for r in runs], "command": command},
                         indent=2))
        return 0
    mb = 1e6
    machine = machine_info(Path(args.dir or tempfile.gettempdir()), ["aiohttp", "websockets",
                                                                   "cryptography"],
                           load_before=load_before, load_after=os.getloadavg()[0])
    print("\n".join([
        f"# Attachment uploads — median of {args.runs} run(s), {args.mb} MB", "",
        "| figure | hotline | baseline (same run) | ratio |", "|---|---|---|---|",
        f"| seal in 64 KiB chunks (STREAM, ChaCha20-Poly1305) | {med['seal_mb_per_s']:.0f} MB/s | "
        f"one HPKE seal of it all {med['hpke_mb_per_s']:.0f} MB/s | "
        f"{med['seal_mb_per_s'] / med['hpke_mb_per_s']:.2f}× |",
        f"| upload, each 64 KiB chunk durable, digest checked | {med['upload_mb_per_s']:.1f} MB/s | "
        f"64 KiB writes + fsync each {med['fsync_mb_per_s']:.1f} MB/s | "
        f"{med['upload_mb_per_s'] / med['fsync_mb_per_s']:.2f}× |",
        f"| {args.uploaders} members uploading {args.mb} MB each at once | "
        f"{med['concurrent_mb_per_s']:.1f} MB/s in all | | |",
        f"| server RSS: before / peak during those uploads | "
        f"{med['rss_before_bytes'] / mb:.0f} / {med['rss_peak_bytes'] / mb:.0f} MB "
        f"({(med['rss_peak_bytes'] - med['rss_before_bytes']) / mb:+.1f} MB for "
        f"{args.uploaders * args.mb} MB uploaded) | | |",
        "", *footer(machine, []), f"Command: {command}"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=50, help="MB per upload (default 50)")
    parser.add_argument("--uploaders", type=int, default=3, choices=(1, 2, 3),
                        help="members uploading at once (default 3)")
    parser.add_argument("--runs", type=int, default=1, help="repeat K times, report medians")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the temporary deployments go (the disk sets the fsync cost)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    if args.mb < 1 or args.runs < 1:
        parser.error("--mb and --runs must be at least 1")
    return run_bench("bench_attachments", amain, args, argv)


if __name__ == "__main__":
    sys.exit(main())
