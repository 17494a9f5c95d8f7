#!/usr/bin/env python3
"""Benchmark of attachments (issue 19): MB/s into and out of the server, next to what the disk
and the crypto alone do in the same run, and the server's memory while several members upload at
once. A benchmark, not a test: it prints figures and never fails on them.

Per run, on a fresh demo deployment with the real server in a child process (``synchronous=FULL``):

1. **Sealing**: ``--mb`` MB sealed in 64 KiB chunks (``hotline.attachments.stream``: the STREAM
   construction, ChaCha20-Poly1305), in this process: MB/s. Baseline: one HPKE seal
   (ML-KEM-768+X25519, the construction that seals a field) of the same bytes at once, MB/s.
2. **Upload**: alice uploads the sealed stream (``Client.upload``: 64 KiB chunks, 8 in flight,
   each durable before it is answered, the SHA-256 checked at the end), MB/s from the first
   chunk to ``stored``. Baseline: the same bytes written to a file on the same disk in 64 KiB
   writes with an fsync each, MB/s (what durable chunk by chunk costs without hotline).
3. **Download**: alice names a clear ``--mb`` MB file in a ``data-exchange`` (version 2, its
   ``data_files``); bob downloads it (``Client.download``: 8 chunks in flight, every byte checked
   against the signed size and SHA-256), MB/s. Baseline: the same stored chunks read straight
   from the server's SQLite file in this process, MB/s (what reading the blobs costs without
   hotline). Beside it, opening a sealed stream chunk by chunk in this process
   (``ChunkOpener``), MB/s.
4. **Memory**: ``--uploaders`` liaisons of different parties upload ``--mb`` MB each at once;
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
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench_core import HOTLINE_READY, Child
from benchlib import footer, machine_info, median_figures, proc_rss_bytes, run_bench

from hotline.attachments.refs import AttachmentRef
from hotline.attachments.stream import CHUNK, ChunkOpener, StreamPlace, new_key, seal_stream
from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.deployment import init_deployment
from hotline.epochkeys import EpochPrivateKey
from hotline.keys import b64url
from hotline.norms.template import NamedAttachment
from hotline.sealing import SUITE

PLACE = StreamPlace(channel="north-south", envelope="A" * 22, field="imagery", position=0)
UPLOADERS = ("alice", "bob", "carol")  # a liaison of each party: each its own share


@dataclass
class Run:
    figures: dict[str, float] = field(default_factory=dict)


def sealed_content(plain: bytes, key: bytes) -> tuple[bytes, float]:
    """``plain`` sealed as a stream under ``key``, and the seconds sealing took."""
    started = time.perf_counter()
    sealed = b"".join(seal_stream(io.BytesIO(plain).read, key, PLACE))
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


def open_mb_per_s(sealed: bytes, key: bytes) -> float:
    """``sealed`` opened chunk by chunk (``ChunkOpener``), MB/s of plaintext."""
    opener = ChunkOpener(key, PLACE, len(sealed))
    started, plain = time.perf_counter(), 0
    for index in range(opener.chunks):
        start, end = opener.span(index)
        plain += len(opener.open(index, sealed[start:end]))
    return plain / 1e6 / (time.perf_counter() - started)


def sqlite_read_mb_per_s(database: Path, sha256: str) -> float:
    """The stored chunks of ``sha256`` read straight from the server's SQLite file, MB/s."""
    started, size = time.perf_counter(), 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        for (data,) in db.execute("SELECT data FROM attachment_chunks WHERE sha256 = ? ORDER BY "
                                  "start", (sha256,)):
            size += len(data)
    return size / 1e6 / (time.perf_counter() - started)


async def download(sender: Client, receiver: Client, plain: bytes, folder: Path) -> float:
    """Seconds ``receiver`` takes to download ``plain``, named by ``sender`` in a logged
    ``data-exchange``, checked against its signed SHA-256."""
    ref = AttachmentRef(sha256=b64url(hashlib.sha256(plain).digest()), size=len(plain),
                        media_type="text/csv", name="holdings.csv")
    await upload(sender, plain)
    year = datetime.now(UTC).year
    body = {"party": sender.party, "exchange_type": "annual", "exchange_date": f"{year}-12-10",
            "effective_date": f"{year + 1}-01-01", "data_files": [ref.to_json()],
            "tables": [{"table": "military_forces", "lines": [{"line": 1, "designation": "1st Army"}]}]}
    accepted = await sender.send(channel="north-south", template="data-exchange", body=body)
    out = folder / "download.bin"
    started = time.perf_counter()
    with out.open("a+b") as saving:
        await receiver.download(accepted.index, NamedAttachment("data_files", 0, ref), saving)
    elapsed = time.perf_counter() - started
    out.unlink()
    return elapsed


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
    key = new_key()
    sealed, seconds = sealed_content(plain, key)
    figures = {"seal_mb_per_s": args.mb / seconds, "hpke_mb_per_s": hpke_mb_per_s(plain),
               "fsync_mb_per_s": fsync_mb_per_s(workdir, sealed),
               "open_mb_per_s": open_mb_per_s(sealed, key)}
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
        receiver = Client.for_profile(Profile.load(home, "bob"))
        await receiver.connect(server.url)
        clients.append(receiver)
        figures["download_mb_per_s"] = args.mb / await download(clients[0], receiver, plain, workdir)
        figures["sqlite_read_mb_per_s"] = sqlite_read_mb_per_s(
            home / "hotline.db", b64url(hashlib.sha256(plain).digest()))
        clients.remove(receiver)
        await receiver.close()
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
            print(f"run {k + 1}/{args.runs}: upload {got['upload_mb_per_s']:.1f} MB/s, download "
                  f"{got['download_mb_per_s']:.1f} MB/s, "
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
        f"| download, every byte checked against the signed SHA-256 | "
        f"{med['download_mb_per_s']:.1f} MB/s | the stored chunks read from SQLite "
        f"{med['sqlite_read_mb_per_s']:.0f} MB/s | "
        f"{med['download_mb_per_s'] / med['sqlite_read_mb_per_s']:.2f}× |",
        f"| open a sealed stream chunk by chunk | {med['open_mb_per_s']:.0f} MB/s | "
        f"the seal above {med['seal_mb_per_s']:.0f} MB/s | "
        f"{med['open_mb_per_s'] / med['seal_mb_per_s']:.2f}× |",
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
