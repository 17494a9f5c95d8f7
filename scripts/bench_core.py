#!/usr/bin/env python3
"""Benchmark of hotline's core path: send -> durable accept -> verified delivery.

A benchmark, not a test: it prints figures and never fails on them. What it measures, per run:

1. **Latency**: alice sends ``--latency-samples`` messages one at a time (after ``--warmup``);
   each sample is the time from just before ``submit`` until alice holds ``accepted`` (the entry
   is committed with ``synchronous=FULL``) *and* bob has received the ``deliver`` frame and
   verified it (signature + roster) with his own pinned authorities.
2. **Throughput**: ``--messages`` messages with ``--window`` of them in flight end to end (a
   slot frees when its message is both accepted and verified at bob); msg/s = messages / time
   until the last one is accepted and delivered.
3. **Baseline A**: raw Ed25519 verifications per second (``cryptography``, one core, this
   process) over the signed bytes of the same kind of envelope.
4. **Baseline B**: a bare aiohttp WebSocket echo server in a child process, driven by a
   ``websockets`` client exactly like hotline's: sequential round trips (p50/p99) and pipelined
   frames/s with the same window and the same frame size as a hotline ``submit`` frame.
Extra figures (not baselines of the aim, but they explain it): one SQLite commit in WAL mode
with ``synchronous=FULL`` in the same folder (the fsync floor of any durable latency), the rate
of hotline's own verification paths, and the CPU share of the server and of the client process
during the throughput phase (which side saturates).

Topology: the real server (``python -m hotline.cli serve``) and the echo server each run in a
child process; alice and bob share this process's event loop. Everything is on 127.0.0.1. Each
run makes a fresh deployment in a temporary folder (removed at the end) and fresh children
(stopped in ``finally``). With ``--runs K`` every figure is the median of K runs.

    .venv/bin/python scripts/bench_core.py                 # table, defaults (~30 s)
    .venv/bin/python scripts/bench_core.py --json          # machine-readable
    .venv/bin/python scripts/bench_core.py --profile-server /tmp/server.prof   # cProfile stats
    .venv/bin/python scripts/bench_core.py --baseline-ref main   # before/after, this machine

**Before/after** (``--baseline-ref REF``): REF is checked out in a temporary ``git worktree``
(removed at the end) and each run is REF's own benchmark and this tree's, in turn, each in a
child process with ``PYTHONPATH`` at its tree (its deployment, its alice and bob, its server: a
wire change between the two cannot break the comparison), the order alternating between runs.
It prints both medians and their ratio for every figure that depends on the server, and the
in-process figures both measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import (
    footer,
    machine_cpu,
    machine_info,
    median_figures,
    percentile,
    proc_cpu_seconds,
    rate,
    run_bench,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hotline.canonical import dumps
from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.deployment import CHANNEL, init_deployment
from hotline.entries import EnvelopeEntry
from hotline.envelope import Envelope, Kind, Precedence, new_envelope_id
from hotline.epochkeys import EpochPrivateKey, Reader
from hotline.hybrid import Ed25519Suite, Ed25519SuiteSigner, HybridSigningKey
from hotline.keyfiles import load_private_key
from hotline.keys import Domain, SigningKey, signed_bytes
from hotline.norms.files import load_templates
from hotline.roster import decode_document, sign_document
from hotline.sealing import SealContext, make_disclosures, open_sealed, seal
from hotline.wire.frames import Deliver, Submit, encode

HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
AIM_MSGS_PER_S = 2000.0
AIM_P50_MS = 2.0
ECHO_READY = "echo server listening on "
HOTLINE_READY = "hotline server listening on "
REPO = Path(__file__).resolve().parent.parent


# -- small helpers -------------------------------------------------------------------------------


def message_text(i: int, size: int) -> str:
    head = f"benchmark message {i}: "
    return (head + "x" * max(0, size - len(head)))[:max(size, len(head))]


# -- child processes -----------------------------------------------------------------------------

@dataclass
class Child:
    """A server in a child process: started, waited for, always stopped."""

    name: str
    argv: list[str]
    ready_prefix: str
    log_path: Path
    cwd: Path
    proc: asyncio.subprocess.Process | None = None
    url: str = ""
    _log: Any = None
    env: dict[str, str] = field(default_factory=dict)  # besides this process's environment
    ready_timeout: float = READY_TIMEOUT

    async def start(self) -> str:
        self._log = self.log_path.open("wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        for var in ("all_proxy", "ALL_PROXY", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
            env.pop(var, None)
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=self._log, cwd=self.cwd, env=env)
        assert self.proc.stdout is not None
        deadline = time.perf_counter() + self.ready_timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise RuntimeError(f"{self.name}: not ready within {self.ready_timeout:.0f} s; "
                                   f"log: {self.tail()}")
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            except TimeoutError:
                continue
            if not line:
                await self.proc.wait()
                raise RuntimeError(f"{self.name}: exited with {self.proc.returncode} before it "
                                   f"was ready; log: {self.tail()}")
            text = line.decode(errors="replace").strip()
            if text.startswith(self.ready_prefix):
                self.url = text[len(self.ready_prefix):].strip()
                return self.url

    def tail(self, limit: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-limit:].decode(errors="replace")
        return ""

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; returns the exit code."""
        proc = self.proc
        try:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            return proc.returncode if proc is not None else None
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


def log_problems(path: Path) -> dict[str, int]:
    """Count warning/error lines and tracebacks in a child's stderr log (structlog JSON lines)."""
    counts = {"warning": 0, "error": 0, "traceback": 0}
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if '"level": "warning"' in line:
                counts["warning"] += 1
            elif '"level": "error"' in line or '"level": "critical"' in line:
                counts["error"] += 1
            if "Traceback" in line or '"exception"' in line:
                counts["traceback"] += 1
    return counts


# -- echo server (child mode) --------------------------------------------------------------------

def echo_server_main() -> None:
    """``--echo-server``: a bare aiohttp WebSocket echo, settings as hotline's (no compression)."""
    from aiohttp import WSMsgType, web

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/echo", handler)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, HOST, 0).start()
        host, port = runner.addresses[0][:2]
        print(f"{ECHO_READY}ws://{host}:{port}/echo", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


# -- measurements --------------------------------------------------------------------------------

@dataclass
class Params:
    messages: int
    latency_samples: int
    warmup: int
    window: int
    text_bytes: int
    runs: int
    crypto_seconds: float
    sqlite_commits: int
    servers: int = 1  # hotline servers sharing one PostgreSQL log (HOTLINE_STORE_URL)
    offered_rate: float = 1000.0  # msg/s offered in the open-loop phase (0: skip it)
    offered_seconds: float = 3.0


@dataclass
class RunResult:
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def typical_envelope(sender: str, text: str, key: SigningKey) -> tuple[Envelope, dict[str, str]]:
    env = Envelope.build(id=new_envelope_id(os.urandom(16)), kind=Kind.MESSAGE, channel=CHANNEL,
                         sender=sender, template="message", precedence=Precedence.ROUTINE,
                         created=datetime.now(UTC), body={"text": text})
    return env, env.sign(key)


def servers_cpu_seconds(servers: list[Child]) -> float | None:
    """CPU seconds of every server process together (None where /proc is not readable)."""
    found = [proc_cpu_seconds(s.proc.pid) if s.proc is not None else None for s in servers]
    return None if None in found else sum(f for f in found if f is not None)


async def measure_hotline(servers: list[Child], home: Path, params: Params, result: RunResult,
                          client_profile: cProfile.Profile | None) -> int:
    """Latency then throughput against the running servers (alice sends through the first,
    bob receives from the last); returns the submit frame size."""
    loop = asyncio.get_running_loop()
    clients: list[Client] = []
    try:
        for name, url in (("alice", servers[0].url), ("bob", servers[-1].url)):
            profile = Profile.load(home, name)
            client = Client.for_profile(profile)
            await client.connect(url)
            clients.append(client)
    except BaseException:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        raise
    alice, bob = clients
    waiting: dict[str, asyncio.Future[float]] = {}
    verify_failures = 0

    async def bob_reader() -> None:
        nonlocal verify_failures
        while True:
            frame = await bob.deliveries.get()
            if not isinstance(frame, Deliver) or not isinstance(frame.entry, EnvelopeEntry):
                continue
            try:
                delivered = bob.verify(frame)
            except Exception as exc:  # a delivery that does not verify fails its message
                verify_failures += 1
                sent = waiting.pop(frame.entry.envelope.id, None)
                failure = RuntimeError(f"bob could not verify index {frame.index}: {exc!r}")
                if sent is not None and not sent.done():
                    sent.set_exception(failure)
                else:
                    result.notes.append(str(failure))
                continue
            future = waiting.pop(delivered.envelope.id, None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

    reader = asyncio.create_task(bob_reader(), name="bench-bob")

    def guard(awaitable: Awaitable[Any]) -> Awaitable[Any]:
        """Fail fast if either connection drops instead of waiting forever."""
        async def run() -> Any:
            task = asyncio.ensure_future(awaitable)
            watch = {task, alice.closed, bob.closed, reader}
            done, _ = await asyncio.wait(watch, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            who = "alice" if alice.closed.done() else "bob" if bob.closed.done() else "reader"
            detail = (alice.closed.result() if who == "alice" else bob.closed.result()
                      if who == "bob" else repr(reader.exception()))
            raise RuntimeError(f"{who} failed during the benchmark: {detail}")
        return run()

    # The text is sealed to the parties' liaisons, as `hotline send` seals it: their epoch keys
    # proven logged once, then one HPKE box per liaison per message.
    message = alice.templates.resolve(alice.roster.agreements[CHANNEL], "message")

    async def sealed_message(i: int) -> Envelope:
        return await alice.sealed_envelope(channel=CHANNEL, template=message, log_key=alice.log_key,
                                           body={"text": message_text(i, params.text_bytes)})

    async def one(i: int, env: Envelope | None = None, at: float | None = None
                  ) -> tuple[float, float, float]:
        """Message ``i`` (``env``: sealed beforehand), sent now or at ``at`` (perf_counter)."""
        env = env or await sealed_message(i)
        future: asyncio.Future[float] = loop.create_future()
        waiting[env.id] = future
        if at is not None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
        t0 = time.perf_counter() if at is None else at  # open loop: from when it was due
        await alice.submit_envelope(env)  # accepted, or the typed error raised
        t_accepted = time.perf_counter()
        t_delivered = await future
        return t0, t_accepted, t_delivered

    try:
        env = await sealed_message(0)
        frame_size = len(encode(Submit(envelope=env, sig=env.sign(alice.key))).encode())

        # 1. sequential latency
        samples, accepted_only = [], []
        for i in range(params.warmup + params.latency_samples):
            t0, t_acc, t_del = await guard(one(i))
            if i >= params.warmup:
                samples.append((max(t_acc, t_del) - t0) * 1000)
                accepted_only.append((t_acc - t0) * 1000)
        result.figures["hotline_p50_ms"] = percentile(samples, 50)
        result.figures["hotline_p99_ms"] = percentile(samples, 99)
        result.figures["hotline_accepted_p50_ms"] = percentile(accepted_only, 50)

        # 2. pipelined throughput: `window` workers, one message in flight each, end to end
        base = params.warmup + params.latency_samples
        counter = iter(range(base, base + params.messages))
        under_load: list[float] = []

        async def worker() -> None:
            for i in counter:
                t0, t_acc, t_del = await one(i)
                under_load.append((max(t_acc, t_del) - t0) * 1000)

        server_cpu0 = servers_cpu_seconds(servers)
        client_cpu0 = time.process_time()
        machine0 = machine_cpu()
        if client_profile is not None:
            client_profile.enable()
        start = time.perf_counter()
        try:
            await guard(run_workers(worker, params.window))
        finally:
            if client_profile is not None:
                client_profile.disable()
        elapsed = time.perf_counter() - start
        client_cpu = time.process_time() - client_cpu0
        server_cpu1 = servers_cpu_seconds(servers)
        machine1 = machine_cpu()
        result.figures["hotline_msgs_per_s"] = params.messages / elapsed
        result.figures["hotline_load_p50_ms"] = percentile(under_load, 50)
        result.figures["hotline_load_p99_ms"] = percentile(under_load, 99)
        result.figures["client_cpu_pct"] = 100 * client_cpu / elapsed
        if server_cpu0 is not None and server_cpu1 is not None:
            result.figures["server_cpu_pct"] = 100 * (server_cpu1 - server_cpu0) / elapsed
            result.figures["server_cpu_us_per_msg"] = 1e6 * (server_cpu1 - server_cpu0) / params.messages
            if machine0 is not None and machine1 is not None:
                # CPU used by anything else on the machine (other jobs would skew the figures)
                others = (machine1[0] - machine0[0]) - client_cpu - (server_cpu1 - server_cpu0)
                result.figures["other_cpu_pct"] = max(0.0, 100 * others / elapsed)
                result.figures["steal_pct"] = 100 * (machine1[1] - machine0[1]) / elapsed
        if params.offered_rate > 0:
            await guard(measure_offered(one, sealed_message, base + params.messages, params,
                                        result))
        if verify_failures:
            result.notes.append(f"{verify_failures} deliveries failed verification at bob")
        return frame_size
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()


async def measure_offered(one: Callable[..., Awaitable[tuple[float, float, float]]],
                          seal: Callable[[int], Awaitable[Envelope]], first: int,
                          params: Params, result: RunResult) -> None:
    """3. Open loop: ``offered_rate`` msg/s for ``offered_seconds``, each message sealed
    beforehand (the server's load, not the sender's sealing) and sent when due whatever the
    others' progress; send→verified delivery timed from when it was due, so a server that falls
    behind shows in the latency, not in a slower sender."""
    count = max(1, round(params.offered_rate * params.offered_seconds))
    sealed = [await seal(first + k) for k in range(count)]
    start = time.perf_counter() + 0.05
    timed = await asyncio.gather(*(one(first + k, env, start + k / params.offered_rate)
                                   for k, env in enumerate(sealed)))
    latencies = [(max(acc, delivered) - due) * 1000 for due, acc, delivered in timed]
    done = max(max(acc, delivered) for _, acc, delivered in timed)
    result.figures["offered_rate"] = params.offered_rate
    result.figures["offered_p50_ms"] = percentile(latencies, 50)
    result.figures["offered_p99_ms"] = percentile(latencies, 99)
    result.figures["offered_achieved_per_s"] = count / (done - start)


async def measure_echo(url: str, params: Params, frame_size: int, result: RunResult) -> None:
    """Sequential round trips and pipelined frames/s against the bare echo server."""
    from websockets.asyncio.client import connect

    # Same client settings as hotline.client.connection.Client.
    ws = await connect(url, proxy=None, compression=None, max_size=16 * 1024 * 1024, max_queue=64)
    pad = "x" * max(0, frame_size - 10)

    def frame(i: int) -> str:
        return f"{i:09d}:{pad}"

    try:
        rtts = []
        for i in range(params.warmup + params.latency_samples):
            t0 = time.perf_counter()
            await ws.send(frame(i))
            echoed = await ws.recv()
            t1 = time.perf_counter()
            if echoed[:9] != f"{i:09d}":
                raise RuntimeError("echo out of order")
            if i >= params.warmup:
                rtts.append((t1 - t0) * 1000)
        result.figures["echo_p50_ms"] = percentile(rtts, 50)
        result.figures["echo_p99_ms"] = percentile(rtts, 99)

        loop = asyncio.get_running_loop()
        waiting: dict[int, asyncio.Future[None]] = {}

        async def reader() -> None:
            async for text in ws:
                future = waiting.pop(int(text[:9]), None)
                if future is not None:
                    future.set_result(None)

        counter = iter(range(params.messages))

        async def worker() -> None:
            for i in counter:
                future = loop.create_future()
                waiting[i] = future
                await ws.send(frame(i))
                await future

        read_task = asyncio.create_task(reader())
        start = time.perf_counter()
        try:
            workers = asyncio.ensure_future(run_workers(worker, params.window))
            done, _ = await asyncio.wait({workers, read_task}, return_when=asyncio.FIRST_COMPLETED)
            if workers not in done:
                workers.cancel()
                raise RuntimeError(f"echo connection ended early: {read_task.exception()!r}")
            workers.result()
            result.figures["echo_frames_per_s"] = params.messages / (time.perf_counter() - start)
        finally:
            read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await read_task
    finally:
        await ws.close()


async def run_workers(worker: Callable[[], Coroutine[Any, Any, None]], count: int) -> None:
    """Run ``count`` workers; the first failure cancels the others (no stray sends)."""
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(count):
                group.create_task(worker())
    except BaseExceptionGroup as group_exc:
        raise group_exc.exceptions[0] from None


def measure_crypto(params: Params, result: RunResult) -> None:
    """Baseline A (raw Ed25519 verify) and, for context, hotline's own verification paths."""
    key = SigningKey.generate()
    env, sig = typical_envelope("alice", message_text(0, params.text_bytes), key)
    data = signed_bytes(Domain.ENVELOPE, env.to_json())
    private = Ed25519PrivateKey.generate()
    raw_sig = private.sign(data)
    public = private.public_key()
    result.figures["ed25519_verify_per_s"] = rate(lambda: public.verify(raw_sig, data),
                                                  params.crypto_seconds)
    result.figures["ed25519_sign_per_s"] = rate(lambda: private.sign(data), params.crypto_seconds / 2)
    pub = key.public_key
    result.figures["envelope_verify_per_s"] = rate(lambda: env.verify(pub, sig),
                                                   params.crypto_seconds / 2)
    as_json = env.to_json()
    result.figures["envelope_from_json_per_s"] = rate(lambda: Envelope.from_json(as_json),
                                                      params.crypto_seconds / 2)


def measure_pq(params: Params, result: RunResult) -> None:
    """Per-message cost of sealed fields and hybrid signatures, beside Ed25519-only in the same
    run (one core, this process): signing and verifying a typical envelope with Ed25519 and with
    Ed25519 + ML-DSA-65; sealing two fields to 3 parties x 2 members (one field to all six, one
    to the mediator's two: six HPKE boxes, MLKEM768-X25519) and opening one box. Checking the six
    epoch keys' signatures is left out: a sender does it once per epoch, not per message."""
    seconds = params.crypto_seconds / 2
    text = message_text(0, params.text_bytes)
    env, _ = typical_envelope("alice", text, SigningKey.generate())
    key, hybrid = SigningKey.generate(), HybridSigningKey.generate()
    ed_sig, hy_sig = (k.sign_canonical(domain=Domain.ENVELOPE, canonical=env.canonical)
                      for k in (key, hybrid))
    suite = Ed25519SuiteSigner(hybrid)  # a heartbeat the agreement lets be signed so
    suite_sig = suite.sign_canonical(domain=Domain.ENVELOPE, canonical=env.canonical)
    suite_key = Ed25519Suite(hybrid.public_key)
    us: dict[str, Callable[[], object]] = {
        "ed25519_env_sign_us": lambda: key.sign_canonical(domain=Domain.ENVELOPE, canonical=env.canonical),
        "ed25519_env_verify_us": lambda: key.public_key.verify_canonical(
            domain=Domain.ENVELOPE, canonical=env.canonical, signature=ed_sig),
        "hybrid_env_sign_us": lambda: hybrid.sign_canonical(domain=Domain.ENVELOPE,
                                                            canonical=env.canonical),
        "hybrid_env_verify_us": lambda: hybrid.public_key.verify_canonical(
            domain=Domain.ENVELOPE, canonical=env.canonical, signature=hy_sig),
        "suite_env_sign_us": lambda: suite.sign_canonical(domain=Domain.ENVELOPE,
                                                          canonical=env.canonical),
        "suite_env_verify_us": lambda: suite_key.verify_canonical(
            domain=Domain.ENVELOPE, canonical=env.canonical, signature=suite_sig),
    }
    members = [(party, f"{party}-{i}", EpochPrivateKey.generate())
               for party in ("north", "south", "mediator") for i in (1, 2)]
    readers = [Reader(party, name, private.document(party=party, member=name, epoch=1,
                                                    length=timedelta(hours=24)))
               for party, name, private in members]
    audience = {"assessment": readers, "private_note": [r for r in readers if r.party == "mediator"]}
    context = SealContext(channel=CHANNEL, envelope=env.id)

    def seal_one() -> Any:
        fields = {"assessment": text, "private_note": text}
        return seal(make_disclosures(fields, {name: os.urandom(16) for name in fields}), audience,
                    context)
    sealed = seal_one()
    party, name, private = members[-1]
    keys = {readers[-1].key.key_id: private}
    us["seal_3x2_us"] = seal_one
    us["open_box_us"] = lambda: open_sealed(sealed, party=party, member=name, keys=keys,
                                            context=context)
    for figure, fn in us.items():
        result.figures[figure] = 1e6 / rate(fn, seconds)
    result.figures["ed25519_sig_bytes"] = len(dumps(ed_sig))
    result.figures["hybrid_sig_bytes"] = len(dumps(hy_sig))
    result.figures["suite_sig_bytes"] = len(dumps(suite_sig))
    result.figures["sealed_3x2_bytes"] = len(dumps(sealed.to_json()))


def render_pq(med: dict[str, float]) -> list[str]:
    """The table of ``measure_pq``'s figures, each beside its Ed25519-only baseline."""
    def row(label: str, figure: str, base_label: str, base: str, unit: str = "µs") -> str:
        top, bottom = med.get(figure), med.get(base)
        ratio = f"{top / bottom:.1f}×" if top is not None and bottom else "n/a"

        def show(value: float | None) -> str:
            if unit != "µs":
                return fmt(value, " B")
            return "n/a" if value is None else f"{value:,.1f} µs"
        return f"| {label} | {show(top)} | {base_label} {show(bottom)} | {ratio} |"
    return ["", "Sealed fields and hybrid signatures, per message, one core (medians):", "",
            "| per message | cost | Ed25519-only baseline | ratio |", "|---|---|---|---|",
            row("sign an envelope, Ed25519 + ML-DSA-65", "hybrid_env_sign_us",
                "Ed25519 sign", "ed25519_env_sign_us"),
            row("verify an envelope, Ed25519 + ML-DSA-65", "hybrid_env_verify_us",
                "Ed25519 verify", "ed25519_env_verify_us"),
            row("seal 2 fields to 3 parties × 2 members (6 HPKE boxes)", "seal_3x2_us",
                "Ed25519 sign", "ed25519_env_sign_us"),
            row("open one box (a reader)", "open_box_us", "Ed25519 verify", "ed25519_env_verify_us"),
            row("sign a heartbeat, hybrid key in the Ed25519 suite (`ed25519_only`)",
                "suite_env_sign_us", "Ed25519 sign", "ed25519_env_sign_us"),
            row("verify it", "suite_env_verify_us", "Ed25519 verify", "ed25519_env_verify_us"),
            row("signature on the wire", "hybrid_sig_bytes", "Ed25519", "ed25519_sig_bytes", "B"),
            row("its signature on the wire (Ed25519 suite)", "suite_sig_bytes", "Ed25519",
                "ed25519_sig_bytes", "B"),
            row("sealed fields on the wire (6 boxes)", "sealed_3x2_bytes", "Ed25519 signature",
                "ed25519_sig_bytes", "B")]


def measure_sqlite(folder: Path, params: Params, result: RunResult) -> None:
    """The durability floor: one-row commits in WAL mode with synchronous=FULL, same folder."""
    path = folder / "fsync-floor.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, leaf BLOB)")
        leaf = b"x" * 700
        times = []
        for i in range(params.sqlite_commits + 10):
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?, ?)", (i, leaf))
            conn.execute("COMMIT")
            if i >= 10:
                times.append((time.perf_counter() - t0) * 1000)
        result.figures["sqlite_commit_p50_ms"] = percentile(times, 50)
        result.figures["sqlite_commit_p99_ms"] = percentile(times, 99)
    finally:
        conn.close()


def without_rate_limit(home: Path) -> None:
    """The benchmark sends thousands of messages an hour; the shipped `message` template agrees
    120. Its parties agree an unlimited copy instead (same template, `rate` removed, re-signed
    agreement), so the path measured is the same one, minus the refusal. The server's own
    per-member ceiling (`limits.member_rate`, 500/s) is lifted for the same reason."""
    with (home / "hotline.toml").open("a") as config:
        config.write("\n[limits]\nmember_rate = 1000000.0\nmember_burst = 1000000\n")
    path = home / "protocols" / "message.yaml"
    text = path.read_text()
    start = text.index("\nrate:\n")
    end = text.index("\naudience:", start)
    path.write_text(text[:start] + text[end:])
    refs = [t.ref() for t in sorted(load_templates(home / "protocols"), key=lambda t: t.id)]
    file = home / "roster" / f"90-agreement-{CHANNEL}-v1.json"
    doc = dict(json.loads(file.read_text())["document"], templates=refs)
    keys = [load_private_key(home / "keys" / f"authority-{p}.pem") for p in ("north", "south", "mediator")]
    file.write_text(dumps(sign_document(decode_document(doc), *keys).to_json()))


async def one_run(k: int, params: Params, base_dir: Path | None, keep: bool,
                  server_profile: Path | None, client_profile: Path | None) -> RunResult:
    """One run: every figure, in this process and its two children."""
    result = RunResult()
    workdir = Path(tempfile.mkdtemp(prefix="hotline-bench-", dir=base_dir))
    home = workdir / "home"
    init_deployment(home, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin="bench.hotline.local", force=False)
    without_rate_limit(home)
    serve: list[str] = [sys.executable]
    if server_profile is not None:
        out = server_profile if params.runs == 1 else server_profile.with_name(
            f"{server_profile.name}.run{k}")
        serve += ["-m", "cProfile", "-o", str(out.resolve())]
        result.notes.append(f"server ran under cProfile (slower); stats in {out}")
    server = Child("hotline server", [*serve, "-m", "hotline.cli", "--home", str(home), "serve"],
                   HOTLINE_READY, workdir / "server.log", workdir)
    servers = [server]
    echo = Child("echo server", [sys.executable, str(Path(__file__).resolve()), "--echo-server"],
                 ECHO_READY, workdir / "echo.log", workdir)
    profiler = cProfile.Profile() if client_profile is not None else None
    failed = False
    try:
        _, echo_url = await asyncio.gather(server.start(), echo.start())
        for n in range(1, params.servers):  # followers: each home a copy of the first's
            copy = Path(shutil.copytree(home, workdir / f"home-{n}"))
            servers.append(Child(f"hotline server {n + 1}", [sys.executable, "-m", "hotline.cli",
                                                            "--home", str(copy), "serve"],
                                 HOTLINE_READY, workdir / f"server-{n + 1}.log", workdir))
            await servers[-1].start()
        frame_size = await measure_hotline(servers, home, params, result, profiler)
        await measure_echo(echo_url, params, frame_size, result)
        result.figures["submit_frame_bytes"] = frame_size
        measure_crypto(params, result)
        measure_pq(params, result)
        measure_sqlite(workdir, params, result)
        result.figures["db_bytes"] = sum(p.stat().st_size for p in home.glob("hotline.db*"))
    except Exception:
        failed = True
        raise
    finally:
        codes = {}
        for child in (*servers, echo):
            try:
                codes[child.name] = await child.stop()
            except Exception as exc:  # keep stopping the others
                result.notes.append(f"could not stop {child.name}: {exc!r}")
        for child in servers:
            problems = log_problems(child.log_path)
            if failed:
                print(f"run {k} failed; {child.name} exit code {codes.get(child.name)}, last "
                      f"lines of its log:\n{child.tail(1500)}", file=sys.stderr)
            elif any(problems.values()):
                result.notes.append(f"{child.name} log: {problems['error']} error, "
                                    f"{problems['warning']} warning line(s), "
                                    f"{problems['traceback']} traceback(s) (last lines: "
                                    f"{child.tail(600)!r})")
            if codes.get(child.name) not in (0, None):
                result.notes.append(f"{child.name} exited with {codes[child.name]} on SIGTERM")
        if profiler is not None and client_profile is not None:
            out = client_profile if params.runs == 1 else client_profile.with_name(
                f"{client_profile.name}.run{k}")
            profiler.dump_stats(out)
            result.notes.append(f"client throughput phase profiled; stats in {out}")
        if keep:
            result.notes.append(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


# -- report --------------------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "%":
        return f"{value:.0f} %"
    return f"{value:,.0f}{unit}"


def render(params: Params, med: dict[str, float], runs: list[RunResult],
           machine: dict[str, Any], command: str) -> str:
    g = med.get

    def ratio(a: str, b: str) -> str:
        top, bottom = g(a), g(b)
        if top is None or not bottom:
            return "n/a"
        return f"{top / bottom:.2f}×"

    rows = [
        ("send→verified delivery p50", fmt(g("hotline_p50_ms"), "ms"),
         f"WS echo RTT p50 {fmt(g('echo_p50_ms'), 'ms')}", ratio("hotline_p50_ms", "echo_p50_ms")),
        ("send→verified delivery p99", fmt(g("hotline_p99_ms"), "ms"),
         f"WS echo RTT p99 {fmt(g('echo_p99_ms'), 'ms')}", ratio("hotline_p99_ms", "echo_p99_ms")),
        ("send→accepted (durable) p50", fmt(g("hotline_accepted_p50_ms"), "ms"),
         f"SQLite FULL commit p50 {fmt(g('sqlite_commit_p50_ms'), 'ms')}",
         ratio("hotline_accepted_p50_ms", "sqlite_commit_p50_ms")),
        ("accepted+delivered msg/s", fmt(g("hotline_msgs_per_s"), " msg/s"),
         f"WS echo {fmt(g('echo_frames_per_s'), ' frames/s')}",
         ratio("hotline_msgs_per_s", "echo_frames_per_s")),
        ("accepted+delivered msg/s", fmt(g("hotline_msgs_per_s"), " msg/s"),
         f"Ed25519 verify {fmt(g('ed25519_verify_per_s'), '/s')}",
         ratio("hotline_msgs_per_s", "ed25519_verify_per_s")),
    ]
    out = [f"# hotline core benchmark — median of {params.runs} run(s)", "",
           "| metric | hotline | baseline | ratio |", "|---|---|---|---|"]
    out += [f"| {m} | {h} | {b} | {r} |" for m, h, b, r in rows]
    out += ["", "Context (medians):", "",
            "| figure | value |", "|---|---|",
            f"| latency under load p50 / p99 (window {params.window}) | "
            f"{fmt(g('hotline_load_p50_ms'), 'ms')} / {fmt(g('hotline_load_p99_ms'), 'ms')} |",
            f"| open loop, {fmt(g('offered_rate'), ' msg/s')} offered (sealed beforehand): "
            f"send→verified delivery p50 / p99, from when due; achieved | "
            f"{fmt(g('offered_p50_ms'), 'ms')} / {fmt(g('offered_p99_ms'), 'ms')}; "
            f"{fmt(g('offered_achieved_per_s'), ' msg/s')} |",
            f"| server process CPU during throughput | {fmt(g('server_cpu_pct'), '%')} of one core |",
            f"| bench process CPU (alice + bob) during throughput | "
            f"{fmt(g('client_cpu_pct'), '%')} of one core |",
            f"| other processes' CPU / VM steal during throughput | "
            f"{fmt(g('other_cpu_pct'), '%')} / {fmt(g('steal_pct'), '%')} |",
            f"| SQLite FULL commit p99 | {fmt(g('sqlite_commit_p99_ms'), 'ms')} |",
            f"| Ed25519 sign/s (raw) | {fmt(g('ed25519_sign_per_s'), '')} |",
            f"| hotline `Envelope.verify`/s (JCS + verify) | {fmt(g('envelope_verify_per_s'), '')} |",
            f"| hotline `Envelope.from_json`/s (validation) | "
            f"{fmt(g('envelope_from_json_per_s'), '')} |",
            f"| submit frame size | {fmt(g('submit_frame_bytes'), ' B')} |",
            f"| database after a run | {fmt(g('db_bytes'), ' B')} |"]
    if len(runs) > 1:
        def each(key: str, spec: str) -> str:
            return " / ".join(format(r.figures[key], spec) if key in r.figures else "n/a"
                              for r in runs)
        out += ["", f"Per run: msg/s {each('hotline_msgs_per_s', ',.0f')}; p50 ms "
                f"{each('hotline_p50_ms', '.2f')}; p99 ms {each('hotline_p99_ms', '.2f')}; "
                f"Ed25519 verify/s {each('ed25519_verify_per_s', ',.0f')}; echo frames/s "
                f"{each('echo_frames_per_s', ',.0f')}."]
    p50, tput = g("hotline_p50_ms"), g("hotline_msgs_per_s")
    out += ["", "Aim: "
            + (f"≥ {AIM_MSGS_PER_S:,.0f} msg/s durable and delivered: "
               f"{'met' if tput and tput >= AIM_MSGS_PER_S else 'NOT met'}; ")
            + f"p50 ≤ {AIM_P50_MS:g} ms: {'met' if p50 and p50 <= AIM_P50_MS else 'NOT met'}."]
    out += render_pq(med)
    out += ["", f"Command: `{command}`",
            f"Parameters: messages={params.messages}, latency samples={params.latency_samples} "
            f"(after {params.warmup} warm-up), window={params.window}, text={params.text_bytes} "
            f"chars, runs={params.runs}.",
            "Topology: hotline server and echo server each in a child process "
            "(`python -m hotline.cli serve`, aiohttp); alice and bob (websockets clients) share "
            "the benchmark process's event loop; all on 127.0.0.1, no TLS. Latency = just before "
            "alice's submit until alice has `accepted` and bob has received and verified the "
            "delivery. Ratio = hotline ÷ baseline.",
            *footer(machine, runs)]
    return "\n".join(out)


# -- before/after --------------------------------------------------------------------------------

# The figures that depend on the server, with their unit and which way is better.
COMPARED = (("hotline_p50_ms", "send→verified delivery p50", "ms", "lower"),
            ("hotline_p99_ms", "send→verified delivery p99", "ms", "lower"),
            ("hotline_accepted_p50_ms", "send→accepted (durable) p50", "ms", "lower"),
            ("hotline_msgs_per_s", "accepted+delivered msg/s", " msg/s", "higher"),
            ("hotline_load_p50_ms", "latency under load p50", "ms", "lower"),
            ("hotline_load_p99_ms", "latency under load p99", "ms", "lower"),
            ("server_cpu_us_per_msg", "server CPU per message", " µs", "lower"),
            ("server_cpu_pct", "server CPU during throughput", "%", "context"),
            ("client_cpu_pct", "client CPU during throughput", "%", "context"),
            ("envelope_from_json_per_s", "Envelope.from_json (strict decode), one core", "/s", "higher"),
            ("envelope_verify_per_s", "envelope signature check, one core", "/s", "higher"),
            ("submit_frame_bytes", "submit frame", " B", "context"),
            ("db_bytes", "database after a run", " B", "context"))


@contextlib.contextmanager
def baseline_tree(ref: str, base_dir: Path | None) -> Iterator[tuple[Path, str]]:
    """REF checked out (detached) in a temporary git worktree; yields (its folder, its commit).
    The worktree is removed however the benchmark ends."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    parent = Path(tempfile.mkdtemp(prefix="hotline-baseline-", dir=base_dir))
    tree = parent / "tree"
    try:
        git("worktree", "add", "--detach", str(tree), commit)
        yield tree, commit
    finally:
        with contextlib.suppress(RuntimeError):
            git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(parent, ignore_errors=True)
        with contextlib.suppress(RuntimeError):
            git("worktree", "prune")


def imported_from(folder: Path) -> None:
    """Check that a child given ``PYTHONPATH=folder`` imports ``hotline`` from there (and not,
    say, from an editable install elsewhere)."""
    done = subprocess.run([sys.executable, "-c", "import hotline; print(hotline.__file__)"],
                          env=dict(os.environ, PYTHONPATH=str(folder)), capture_output=True,
                          text=True, cwd=tempfile.gettempdir())
    where = Path(done.stdout.strip() or "?").resolve()
    if done.returncode or not where.is_relative_to(folder.resolve()):
        raise RuntimeError(f"with PYTHONPATH={folder}, hotline comes from {where}: {done.stderr}")


def render_comparison(params: Params, ref: str, commit: str, before: dict[str, float],
                      after: dict[str, float], runs: int, machine: dict[str, Any],
                      command: str, all_runs: list[RunResult]) -> str:
    out = [f"# hotline core benchmark, before/after — median of {runs} run(s) each", "",
           f"| metric | {ref} ({commit[:9]}) | working tree | ratio | better |",
           "|---|---|---|---|---|"]
    for key, label, unit, better in COMPARED:
        old, new = before.get(key), after.get(key)
        ratio = f"{new / old:.2f}×" if old and new is not None else "n/a"
        out.append(f"| {label} | {fmt(old, unit)} | {fmt(new, unit)} | {ratio} | {better} |")
    out += ["", f"Command: `{command}`",
            f"Parameters: messages={params.messages}, latency samples={params.latency_samples} "
            f"(after {params.warmup} warm-up), window={params.window}, text={params.text_bytes} "
            f"chars, runs={runs} per side, alternating which side goes first.",
            "Each side is its own tree's benchmark end to end (its deployment, its alice and "
            "bob, its server): a wire change between the two cannot break it. "
            "Ratio = working tree ÷ baseline.",
            *footer(machine, all_runs)]
    return "\n".join(out)


def side_run(folder: Path, params: Params, base_dir: Path | None) -> RunResult:
    """One whole run of ``folder``'s own benchmark (its clients and its server, ``PYTHONPATH``
    at ``folder``): each side speaks its own protocol, so a wire change between the two (the
    request ids of issue 14, say) cannot break the comparison."""
    argv = [sys.executable, str(folder / "scripts" / "bench_core.py"), "--json", "--runs", "1",
            "--messages", str(params.messages), "--latency-samples", str(params.latency_samples),
            "--warmup", str(params.warmup), "--window", str(params.window),
            "--text-bytes", str(params.text_bytes), "--crypto-seconds", str(params.crypto_seconds),
            "--sqlite-commits", str(params.sqlite_commits)]
    if base_dir is not None:
        argv += ["--dir", str(base_dir)]
    done = subprocess.run(argv, env=dict(os.environ, PYTHONPATH=str(folder)), cwd=folder,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the benchmark of {folder} failed:\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    result = RunResult()
    result.figures.update({k: float(v) for k, v in report["median"].items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return result


async def compare(args: argparse.Namespace, params: Params, command: str) -> int:
    """``--baseline-ref``: REF's benchmark and this tree's, alternately, ``--runs`` each."""
    load_before = os.getloadavg()[0]
    with baseline_tree(args.baseline_ref, args.dir) as (tree, commit):
        sides: dict[str, list[RunResult]] = {"baseline": [], "tree": []}
        code = {"baseline": tree, "tree": REPO}
        for folder in code.values():
            imported_from(folder)
        started = time.perf_counter()
        for k in range(1, params.runs + 1):
            order = ("baseline", "tree") if k % 2 else ("tree", "baseline")
            for side in order:
                result = await asyncio.to_thread(side_run, code[side], params, args.dir)
                sides[side].append(result)
                print(f"run {k}/{params.runs} {side}: "
                      f"{result.figures.get('hotline_msgs_per_s', 0):,.0f} msg/s, "
                      f"p50 {result.figures.get('hotline_p50_ms', 0):.2f} ms "
                      f"({time.perf_counter() - started:.0f} s elapsed)", file=sys.stderr, flush=True)
        before, after = median_figures(sides["baseline"]), median_figures(sides["tree"])
        machine = machine_info(args.dir or Path(tempfile.gettempdir()),
                               ("aiohttp", "websockets", "cryptography", "msgspec"),
                               event_loop=type(asyncio.get_running_loop()).__name__)
        machine.update(load_before=load_before, load_after=os.getloadavg()[0])
        all_runs = sides["baseline"] + sides["tree"]
        if args.json:
            print(json.dumps({"params": vars(params), "baseline_ref": args.baseline_ref,
                              "baseline_commit": commit, "baseline": before, "tree": after,
                              "ratio": {k: after[k] / before[k] for k in after
                                        if before.get(k)},
                              "runs": {side: [{"figures": r.figures, "notes": r.notes} for r in rs]
                                       for side, rs in sides.items()},
                              "machine": machine, "command": command}, indent=2))
        else:
            print(render_comparison(params, args.baseline_ref, commit, before, after, params.runs,
                                    machine, command, all_runs))
    return 0


# -- main ----------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark hotline's send -> durable accept -> verified delivery path "
                    "against raw Ed25519 and a bare aiohttp WebSocket echo.")
    parser.add_argument("--messages", type=int, default=5000,
                        help="messages in the throughput phase (default 5000)")
    parser.add_argument("--latency-samples", type=int, default=300,
                        help="sequential messages timed for p50/p99 (default 300)")
    parser.add_argument("--warmup", type=int, default=50,
                        help="sequential messages sent first and not timed (default 50)")
    parser.add_argument("--window", type=int, default=64,
                        help="messages in flight in the throughput phase (default 64)")
    parser.add_argument("--offered-rate", type=float, default=1000.0,
                        help="msg/s offered in the open-loop phase, each message sealed "
                             "beforehand (default 1000; 0 skips the phase)")
    parser.add_argument("--offered-seconds", type=float, default=3.0,
                        help="seconds of the open-loop phase (default 3)")
    parser.add_argument("--text-bytes", type=int, default=200,
                        help="characters of message text (default 200)")
    parser.add_argument("--runs", type=int, default=3,
                        help="repeat everything K times, report medians (default 3)")
    parser.add_argument("--crypto-seconds", type=float, default=0.5,
                        help="seconds spent on the raw Ed25519 verify baseline (default 0.5)")
    parser.add_argument("--sqlite-commits", type=int, default=200,
                        help="single-row commits timed for the fsync floor (default 200)")
    parser.add_argument("--servers", type=int, default=1,
                        help="hotline servers sharing one log (more than one needs the log in "
                             "PostgreSQL: HOTLINE_STORE_URL); alice sends through the first, bob "
                             "receives from the last, so each message crosses between servers")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the temporary deployments go (default: the system temp "
                             "dir); the disk under it sets the fsync cost")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--profile-server", type=Path, metavar="FILE",
                        help="run the server under cProfile and write pstats to FILE")
    parser.add_argument("--profile-client", type=Path, metavar="FILE",
                        help="cProfile this process during the throughput phase, to FILE")
    parser.add_argument("--baseline-ref", metavar="REF",
                        help="before/after: also run the server from git REF (a temporary "
                             "worktree), alternating with this tree's; print both and the ratio")
    parser.add_argument("--crypto-only", action="store_true",
                        help="only the in-process figures (Ed25519, hybrid signatures, sealing): "
                             "no server, a few seconds a run")
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("messages", "latency_samples", "window", "text_bytes", "runs", "sqlite_commits"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.crypto_seconds <= 0:
        parser.error("--warmup must be >= 0 and --crypto-seconds > 0")
    if args.offered_rate < 0 or args.offered_seconds <= 0:
        parser.error("--offered-rate must be >= 0 and --offered-seconds > 0")
    if args.baseline_ref and (args.profile_server or args.profile_client):
        parser.error("--baseline-ref measures without the profilers")
    return args


def crypto_only(args: argparse.Namespace, params: Params, command: str) -> int:
    """``--crypto-only``: the in-process figures, median of ``--runs`` runs, no server."""
    load_before = os.getloadavg()[0]
    runs = []
    for _ in range(params.runs):
        result = RunResult()
        measure_crypto(params, result)
        measure_pq(params, result)
        runs.append(result)
    med = median_figures(runs)
    if args.json:
        print(json.dumps({"params": vars(params), "median": med, "command": command}, indent=2))
        return 0
    machine = machine_info(Path(tempfile.gettempdir()), ("cryptography",))
    machine.update(load_before=load_before, load_after=os.getloadavg()[0])
    print("\n".join([f"# hotline crypto figures — median of {params.runs} run(s)", *render_pq(med),
                     "", f"Command: `{command}`", *footer(machine, runs)]))
    return 0


async def amain(args: argparse.Namespace, command: str) -> int:
    params = Params(messages=args.messages, latency_samples=args.latency_samples,
                    warmup=args.warmup, window=args.window, text_bytes=args.text_bytes,
                    runs=args.runs, crypto_seconds=args.crypto_seconds,
                    sqlite_commits=args.sqlite_commits, servers=args.servers,
                    offered_rate=args.offered_rate, offered_seconds=args.offered_seconds)
    if args.servers > 1 and not os.environ.get("HOTLINE_STORE_URL", "").startswith("postgresql"):
        print("--servers above 1 needs the log in PostgreSQL: set HOTLINE_STORE_URL (or run "
              "scripts/bench_store.py, which sets one up)", file=sys.stderr)
        return 2
    if args.baseline_ref:
        return await compare(args, params, command)
    if args.crypto_only:
        return crypto_only(args, params, command)
    runs: list[RunResult] = []
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    for k in range(1, params.runs + 1):
        result = await one_run(k, params, args.dir, args.keep, args.profile_server,
                               args.profile_client)
        runs.append(result)
        print(f"run {k}/{params.runs}: {result.figures.get('hotline_msgs_per_s', 0):,.0f} msg/s, "
              f"p50 {result.figures.get('hotline_p50_ms', 0):.2f} ms, "
              f"p99 {result.figures.get('hotline_p99_ms', 0):.2f} ms "
              f"({time.perf_counter() - started:.0f} s elapsed)", file=sys.stderr, flush=True)
    med = median_figures(runs)
    machine = machine_info(args.dir or Path(tempfile.gettempdir()),
                           ("aiohttp", "websockets", "cryptography", "sqlite-utils", "rfc8785", "structlog"),
                           event_loop=type(asyncio.get_running_loop()).__name__)
    machine.update(load_before=load_before, load_after=os.getloadavg()[0])
    if args.json:
        print(json.dumps({"params": vars(params), "median": med,
                          "runs": [{"figures": r.figures, "notes": r.notes} for r in runs],
                          "machine": machine, "command": command,
                          "aim": {"msgs_per_s": AIM_MSGS_PER_S, "p50_ms": AIM_P50_MS,
                                  "msgs_per_s_met": med.get("hotline_msgs_per_s", 0) >= AIM_MSGS_PER_S,
                                  "p50_met": med.get("hotline_p50_ms", 1e9) <= AIM_P50_MS}},
                         indent=2))
    else:
        print(render(params, med, runs, machine, command))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.echo_server:
        echo_server_main()
        return 0
    return run_bench("bench_core", amain, args, argv)


if __name__ == "__main__":
    sys.exit(main())
