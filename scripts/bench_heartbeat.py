#!/usr/bin/env python3
"""Benchmark of hotline's heartbeat load: N channels, three parties' agents, one server.

A benchmark, not a test: it prints figures and never fails on them. What it measures, per run:

1. **Setup**: a deployment of three parties (north, south, mediator) made by ``init_deployment``
   with the agreement interval ``--interval``, then ``--channels`` channels in all: the demo
   channel ``north-south`` and N-1 copies of its agreement (``bench-00001``, ...), each signed by
   the three authorities (``keys/authority-*.pem``) and written to ``roster/``, which the server
   logs when it starts (the start time, roster import included, is reported).
2. **Load**: the real server (``python -m hotline.cli --home H serve``, port 0, log level
   ``--server-log-level``) and the three real agents (``python -m hotline.cli --home H agent
   --as PARTY-agent --server URL``), each in a child process. Each agent is a member of every
   channel: it runs N heartbeat loops and echoes every other party's heartbeats, so the server
   takes 3N/interval heartbeats/s and twice that in echoes. After the three agents said
   ``agent.connected`` and ``--warmup`` seconds more, the benchmark measures ``--duration``
   seconds: CPU of the server and of each agent (user + system of the process and its threads,
   from ``/proc/PID/stat``) as a share of one core, and of the rest of the machine.
3. **From the log** (the SQLite file, read-only, once the server stopped), for the entries
   committed in the window: heartbeats and echoes per second against the expected rates; the
   heartbeat → echo delay (echo entry's log time − the log time of the heartbeat it
   ``reply_to``s, the same quantity as the server's ``hotline_echo_rtt_seconds``), p50/p99/max;
   the heartbeat's own ingress delay (envelope ``created`` by the agent → logged); the gaps
   between a party's successive heartbeats on a channel; the share of heartbeats echoed by both
   other parties within one interval; the busiest second; ``health`` entries (state changes) in
   the window; per entry, the time until the first signed checkpoint covering it (the server
   aims at ``checkpoint_delay``, 1 s); the channels' states from ``GET /metrics`` (and the
   scrape's wall time) at the start and end of the window.
4. **Storage**: the database's logical size (``page_count × page_size``, WAL included) at both
   ends of the window, divided by the entries logged in it: bytes per entry including rows,
   indexes, Merkle node rows, checkpoints and page slack; split per heartbeat and per echo by
   their own leaf size. From that, the cost per channel per day (three parties: 3 heartbeats and
   6 echoes per interval) at the measured interval and at 60 s. ``dbstat`` at the end gives the
   share of the Merkle nodes and the indexes.
5. **Baseline**: raw Ed25519 verifications per second (``cryptography``, one core, this
   process) over a heartbeat envelope's signed bytes, just before the servers start and just
   after they stop; the server's CPU per logged envelope is stated against one verify.
6. **Context**, measured in this process on the same inputs: one ``AgentState.next`` (the
   agent's per-heartbeat counter file, rewritten and fsynced, with N channels in it) and one
   ``HealthMonitor.sweep`` over N channels (the server runs one every ``[health] sweep`` second).
With ``--runs K`` every figure is the median of K runs (each with a fresh deployment).

On a shared machine, ``--wait-quiet PCT`` waits before each run until other jobs leave the CPUs
(the share they take during the window is reported either way); ``--pin-server CPU`` gives the
server a CPU of its own and the agents the others; ``--profile-server`` / ``--profile-agent``
write cProfile stats of the server / of north-agent (slower: not for the figures).

    .venv/bin/python scripts/bench_heartbeat.py                     # 1000 channels, ~2 min
    .venv/bin/python scripts/bench_heartbeat.py --channels 50 --duration 20   # quick
    .venv/bin/python scripts/bench_heartbeat.py --runs 3 --wait-quiet 50
    .venv/bin/python scripts/bench_heartbeat.py --json
    .venv/bin/python scripts/bench_heartbeat.py --profile-server /tmp/s.prof --profile-agent /tmp/a.prof
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchlib import (
    footer,
    machine_cpu,
    machine_info,
    median_figures,
    percentile,
    proc_cpu_seconds,
    proc_rss_bytes,
    rate,
    run_bench,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hotline.agent.heartbeat import AgentState
from hotline.canonical import dumps, parse
from hotline.deployment import CHANNEL, init_deployment
from hotline.entries import PENDING, EnvelopeEntry, HealthEntry, decode_leaf, kind_of, with_index
from hotline.envelope import Envelope, Kind, Precedence, new_envelope_id
from hotline.keyfiles import load_private_key
from hotline.keys import Domain, signed_bytes
from hotline.norms.agreement import Agreement
from hotline.roster import decode_document, sign_document
from hotline.server.monitor import HealthMonitor, Metrics
from hotline.times import format_time, parse_time
from hotline.wire.frames import Roster, encode

PARTIES = ("north", "south", "mediator")
STATES = ("UP", "DEGRADED", "DOWN", "UNKNOWN")
AGENTS = tuple(f"{p}-agent" for p in PARTIES)
ORIGIN = "bench.hotline.local"
ROOT = Path(__file__).resolve().parent.parent
HOTLINE_READY = "hotline server listening on "
STOP_TIMEOUT = 15.0
DAY = 86_400
STATE_LINE = re.compile(r'^hotline_channel_state\{channel="([^"]+)",hotline_channel_state="([A-Z]+)"\} 1\.0$')


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class RunResult:
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- the deployment ------------------------------------------------------------------------------

def channel_names(count: int) -> list[str]:
    return [CHANNEL] + [f"bench-{i:05d}" for i in range(1, count)]


def build_deployment(home: Path, channels: int, interval: int) -> list[dict[str, Any]]:
    """``init_deployment`` with three parties, then the demo agreement copied to every other
    channel and signed by the three authorities. Returns every signed roster document."""
    init_deployment(home, parties=list(PARTIES), heartbeat_interval=interval, port=0,
                    origin=ORIGIN, force=False)
    roster = home / "roster"
    demo = parse((roster / f"90-agreement-{CHANNEL}-v1.json").read_bytes())
    authorities = [load_private_key(home / "keys" / f"authority-{p}.pem") for p in PARTIES]
    for name in channel_names(channels)[1:]:
        signed = sign_document(decode_document(dict(demo["document"], channel=name)), *authorities)
        (roster / f"91-agreement-{name}-v1.json").write_text(dumps(signed.to_json()) + "\n")
    return [parse(p.read_bytes()) for p in sorted(roster.glob("*.json"))]


# -- child processes -----------------------------------------------------------------------------

def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without proxies or HOTLINE_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HOTLINE_") and k.lower() not in ("all_proxy", "http_proxy", "https_proxy")}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


@dataclass
class Child:
    """A child process with its stderr in a log file: started, always stopped."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    _log: Any = None

    async def start(self, *, pipe_stdout: bool = False) -> None:
        self._log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if pipe_stdout else asyncio.subprocess.DEVNULL,
            stderr=self._log, env=self.env)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def ready_line(self, prefix: str, timeout: float) -> str:
        """The rest of the first stdout line starting with ``prefix``."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.perf_counter() + timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise RuntimeError(f"{self.name}: not ready within {timeout:.0f} s; log: {self.tail()}")
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            except TimeoutError:
                continue
            if not line:
                await self.proc.wait()
                raise RuntimeError(f"{self.name}: exited with {self.proc.returncode} before it was "
                                   f"ready; log: {self.tail()}")
            text = line.decode(errors="replace").strip()
            if text.startswith(prefix):
                return text[len(prefix):].strip()

    def tail(self, limit: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-limit:].decode(errors="replace")
        return ""

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        out = []
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    value = json.loads(line)
                    if isinstance(value, dict):
                        out.append(value)
        return out

    async def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """``sig`` (SIGTERM), then SIGKILL after STOP_TIMEOUT; returns the exit code."""
        proc = self.proc
        try:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
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


def pin(pid: int, cpus: set[int]) -> None:
    """CPU affinity of every thread of ``pid`` (threads it starts later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


def http_get(url: str, timeout: float = 30.0) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return str(response.read().decode())


def channel_states(base: str) -> tuple[collections.Counter[str], float]:
    """How many channels are in each state, from ``GET /metrics``; and the scrape's wall time."""
    states: collections.Counter[str] = collections.Counter()
    t0 = time.perf_counter()
    text = http_get(base + "/metrics")
    seconds = time.perf_counter() - t0
    for line in text.splitlines():
        match = STATE_LINE.match(line)
        if match:
            states[match.group(2)] += 1
    return states, seconds


def log_summary(events: list[dict[str, Any]]) -> collections.Counter[str]:
    """Warning-or-worse events by name (``level event``; asyncio's multi-line messages by their
    first line, task numbers left out)."""
    def name(event: Any) -> str:
        first = str(event).splitlines()[0] if str(event) else ""
        return re.sub(r"Task-\d+", "Task-N", first)[:100]
    return collections.Counter(f"{e.get('level')} {name(e.get('event'))}" for e in events
                               if e.get("level") in ("warning", "error", "critical"))


# -- the database ----------------------------------------------------------------------------------

def db_connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


def db_snapshot(path: Path) -> tuple[int, int]:
    """(entries, logical bytes: page_count × page_size as the latest commit left them)."""
    conn = db_connect(path)
    try:
        (last,) = conn.execute("SELECT MAX(idx) FROM entries").fetchone()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
        return (0 if last is None else int(last) + 1), int(pages) * int(size)
    finally:
        conn.close()


def analyse_log(path: Path, first: int, end: int, interval: float, result: RunResult) -> dict[str, float]:
    """Figures from the entries ``first <= idx < end``; returns leaf bytes per kind."""
    fig = result.figures
    conn = db_connect(path)
    try:
        heartbeats: dict[str, tuple[datetime, str]] = {}  # id -> (log time, party)
        beats_of: dict[tuple[str, str], list[datetime]] = collections.defaultdict(list)
        echoes: list[tuple[str, datetime, str]] = []  # (reply_to, log time, party)
        kinds: collections.Counter[str] = collections.Counter()
        leaf_bytes: collections.Counter[str] = collections.Counter()
        health_to: collections.Counter[str] = collections.Counter()
        per_second: collections.Counter[int] = collections.Counter()
        ingress_ms: list[float] = []
        last_time: datetime | None = None
        logged: list[datetime] = []  # log time of entry first + i
        rows = conn.execute("SELECT leaf FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                            (first, end))
        for (leaf,) in rows:
            entry = decode_leaf(bytes(leaf))
            at = entry.time_at
            last_time = at
            logged.append(at)
            kind = kind_of(entry)
            if isinstance(entry, EnvelopeEntry):
                envelope = entry.envelope
                kind = envelope.kind.value
                per_second[int(at.timestamp())] += 1
                if envelope.kind is Kind.HEARTBEAT:
                    heartbeats[envelope.id] = (at, entry.party)
                    beats_of[(entry.channel, entry.party)].append(at)
                    ingress_ms.append((at - envelope.created_at).total_seconds() * 1000)
                elif envelope.kind is Kind.ECHO and envelope.reply_to is not None:
                    echoes.append((envelope.reply_to, at, entry.party))
            elif isinstance(entry, HealthEntry):
                health_to[entry.new.value] += 1
            kinds[kind] += 1
            leaf_bytes[kind] += len(leaf)

        delays_ms: list[float] = []
        echoed_by: dict[str, set[str]] = collections.defaultdict(set)
        looked_up = 0
        for reply_to, at, party in echoes:
            beat = heartbeats.get(reply_to)
            if beat is None:  # a heartbeat logged before the window
                row = conn.execute("SELECT time FROM entries WHERE envelope_id = ?", (reply_to,)).fetchone()
                if row is None:
                    continue
                looked_up += 1
                beat = (parse_time(row[0]), "")
            delays_ms.append((at - beat[0]).total_seconds() * 1000)
            echoed_by[reply_to].add(party)
        checkpoints = [(int(size), parse_time(at)) for size, at in
                       conn.execute("SELECT size, time FROM checkpoints ORDER BY size")]
    finally:
        conn.close()

    # Checkpoints: one covers every commit within ``checkpoint_delay`` (1 s) when the server keeps
    # up. Per entry of the window: its log time -> the first signed checkpoint that covers it.
    sizes = [n for n, _ in checkpoints]
    coverage: list[float] = []
    for offset, at in enumerate(logged):
        k = bisect.bisect_right(sizes, first + offset)  # first checkpoint of size > index
        if k < len(checkpoints):
            coverage.append((checkpoints[k][1] - at).total_seconds())
    if coverage:
        fig["covered_p50_s"] = percentile(coverage, 50)
        fig["covered_p99_s"] = percentile(coverage, 99)
        fig["covered_max_s"] = max(coverage)
    fig["uncovered_at_stop"] = len(logged) - len(coverage)
    fig["checkpoints_signed"] = sum(1 for _, t in checkpoints if logged and logged[0] <= t <= logged[-1])

    fig["entries"] = sum(kinds.values())
    for kind in ("heartbeat", "echo", "health", "rejected", "overdue", "message", "ack"):
        fig[f"count_{kind}"] = kinds.get(kind, 0)
    for state, count in health_to.items():
        fig[f"health_to_{state}"] = count
    if delays_ms:
        fig["delay_p50_ms"] = percentile(delays_ms, 50)
        fig["delay_p99_ms"] = percentile(delays_ms, 99)
        fig["delay_max_ms"] = max(delays_ms)
        fig["delay_samples"] = len(delays_ms)
        fig["delay_over_1s"] = sum(d > 1000 for d in delays_ms)
    if ingress_ms:
        fig["ingress_p50_ms"] = percentile(ingress_ms, 50)
        fig["ingress_p99_ms"] = percentile(ingress_ms, 99)
        fig["ingress_max_ms"] = max(ingress_ms)
    gaps = [(b - a).total_seconds() for times in beats_of.values() for a, b in itertools.pairwise(times)]
    if gaps:
        fig["gap_p50_s"] = percentile(gaps, 50)
        fig["gap_p99_s"] = percentile(gaps, 99)
        fig["gap_max_s"] = max(gaps)
    if last_time is not None:
        due = [i for i, (at, _) in heartbeats.items() if at <= last_time - timedelta(seconds=interval)]
        if due:
            both = sum(len(echoed_by[i]) >= len(PARTIES) - 1 for i in due)
            fig["echoed_by_both_pct"] = 100 * both / len(due)
            fig["echo_checked_heartbeats"] = len(due)
    if len(per_second) > 2:
        full = sorted(per_second)[1:-1]  # the first and last seconds are partial
        fig["peak_envelopes_1s"] = max(per_second[s] for s in full)
        fig["busy_seconds_pct"] = 100 * sum(per_second[s] > 0 for s in full) / (full[-1] - full[0] + 1)
    if looked_up:
        result.notes.append(f"{looked_up} echoes answered heartbeats logged before the window "
                            "(their delay is counted)")
    return dict(leaf_bytes)


def db_breakdown(path: Path) -> dict[str, int]:
    """Bytes of each table and index (``dbstat``, pages), for the whole database."""
    conn = db_connect(path)
    try:
        return {name: int(size) for name, size in
                conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")}
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


# -- in-process measurements -----------------------------------------------------------------------

def measure_crypto(seconds: float) -> float:
    """Raw Ed25519 verifications per second over a heartbeat envelope's signed bytes."""
    now = datetime.now(UTC)
    env = Envelope.build(id=new_envelope_id(os.urandom(16)), kind=Kind.HEARTBEAT, channel=CHANNEL,
                         sender="north-agent", template="heartbeat", precedence=Precedence.ROUTINE,
                         created=now, body={"seq": 12345, "sent": format_time(now)})
    data = signed_bytes(Domain.ENVELOPE, env.to_json())
    private = Ed25519PrivateKey.generate()
    sig, public = private.sign(data), private.public_key()
    return rate(lambda: public.verify(sig, data), seconds)


def _beat_id(channel: str, name: str) -> str:
    return new_envelope_id(hashlib.sha256(f"{channel}/{name}".encode()).digest()[:16])


def _logged(index: int, time: str, channel: str, party: str, kind: Kind, envelope_id: str, *,
            reply_to: str | None = None) -> EnvelopeEntry:
    """A heartbeat or an echo as logged (unsigned: the health sweep reads no signature)."""
    env = Envelope.build(id=envelope_id, kind=kind, channel=channel, sender=f"{party}-agent",
                         template=kind.value, precedence=Precedence.ROUTINE,
                         created=parse_time(time), body={}, reply_to=reply_to)
    entry = EnvelopeEntry(index=PENDING, time=time, channel=channel, party=party, envelope=env,
                          sig={"alg": "ed25519"})
    logged = with_index(entry, index)
    assert isinstance(logged, EnvelopeEntry)
    return logged


def measure_agent_state(folder: Path, channels: list[str], calls: int = 200) -> float:
    """µs per ``AgentState.next`` with every channel's counter in the file (median of calls)."""
    state = AgentState(folder / "agent-state-probe.json", {c: 1000 for c in channels})
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        state.next(channels[i % len(channels)])
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


async def measure_sweep(documents: list[dict[str, Any]], rounds: int = 7) -> tuple[float, int]:
    """ms per ``HealthMonitor.sweep`` over every channel, all UP (no transition to log)."""
    agreements = {}
    for signed in documents:
        if signed["document"]["type"] == "agreement":
            agreement = Agreement.from_json(signed["document"])
            agreements[agreement.channel] = agreement
    now = datetime.now(UTC)
    roster: Any = SimpleNamespace(agreements=agreements)
    unused: Any = None  # no transition is logged: the store and the hub are never reached
    monitor = HealthMonitor(store=unused, hub=unused, roster=roster, metrics=Metrics(), missed=3,
                            clock=lambda: now)
    started = now - timedelta(seconds=5)
    monitor.sync_agreements()
    index = 0
    beat_at, echo_at = format_time(now - timedelta(seconds=2)), format_time(now - timedelta(seconds=1))
    for channel, health in monitor.channels.items():
        health.started = started
        for party in PARTIES:
            index += 1
            health.observe(_logged(index, beat_at, channel, party, Kind.HEARTBEAT,
                                   _beat_id(channel, party)))
        for party in PARTIES:
            for other in PARTIES:
                if other != party:
                    index += 1
                    health.observe(_logged(index, echo_at, channel, party, Kind.ECHO,
                                           _beat_id(channel, f"{party}>{other}"),
                                           reply_to=_beat_id(channel, other)))
        health.evaluate(now)
    up = sum(h.state.value == "UP" for h in monitor.channels.values())
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await monitor.sweep()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, up


# -- one run ---------------------------------------------------------------------------------------

def window_cpu(before: dict[str, float | None], after: dict[str, float | None], seconds: float,
               fig: dict[str, float], prefix: str) -> None:
    for name in before:
        b, a = before[name], after.get(name)
        if b is not None and a is not None:
            fig[f"{prefix}{name}_cpu_pct"] = 100 * (a - b) / seconds


async def machine_busy(seconds: float) -> float | None:
    """Busy share of the whole machine over ``seconds`` (% of one CPU), from /proc/stat."""
    before = machine_cpu()
    await asyncio.sleep(seconds)
    after = machine_cpu()
    return None if before is None or after is None else 100 * (after[0] - before[0]) / seconds


async def wait_quiet(limit: float, patience: float) -> float | None:
    """Wait (at most ``patience`` s) until the machine is busy below ``limit`` % over 5 s."""
    deadline = time.perf_counter() + patience
    while True:
        busy = await machine_busy(5.0)
        if busy is None or busy < limit or time.perf_counter() > deadline:
            return busy
        progress(f"machine busy {busy:.0f} % (other jobs); waiting for < {limit:g} %…")


async def one_run(k: int, args: argparse.Namespace) -> RunResult:
    result = RunResult()
    fig = result.figures
    busy = await (wait_quiet(args.wait_quiet, args.quiet_patience) if args.wait_quiet is not None
                  else machine_busy(3.0))
    if busy is not None:
        fig["machine_busy_before_pct"] = busy
    base_dir = (args.dir or ROOT / ".bench").resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="heartbeat-", dir=base_dir))
    home = workdir / "home"
    db = home / "hotline.db"
    names = channel_names(args.channels)
    t_setup = time.perf_counter()
    documents = build_deployment(home, args.channels, args.interval)
    fig["setup_s"] = time.perf_counter() - t_setup
    fig["roster_documents"] = len(documents)
    fig["roster_frame_bytes"] = len(encode(Roster(documents=documents)).encode())
    progress(f"run {k}: deployment with {args.channels:,} channels in {workdir} "
             f"({fig['setup_s']:.1f} s); measuring the in-process baselines…")
    fig["ed25519_before_per_s"] = measure_crypto(args.crypto_seconds)
    fig["agent_state_next_us"] = measure_agent_state(workdir, names)
    fig["sweep_ms"], up = await measure_sweep(documents)
    if up != len(names):
        result.notes.append(f"sweep probe: only {up} of {len(names)} channels were UP")

    serve = [sys.executable]
    if args.profile_server is not None:
        out = args.profile_server if args.runs == 1 else args.profile_server.with_name(
            f"{args.profile_server.name}.run{k}")
        serve += ["-m", "cProfile", "-o", str(out.resolve())]
        result.notes.append(f"server ran under cProfile (slower); stats in {out}")
    serve += ["-m", "hotline.cli", "--home", str(home), "serve"]
    server = Child("server", serve, workdir / "server.log",
                   child_env({"HOTLINE_SERVER_PORT": "0", "HOTLINE_LOG_LEVEL": args.server_log_level}))
    agents = []
    for name in AGENTS:
        argv = [sys.executable]
        if args.profile_agent is not None and name == AGENTS[0]:
            out = args.profile_agent if args.runs == 1 else args.profile_agent.with_name(
                f"{args.profile_agent.name}.run{k}")
            argv += ["-m", "cProfile", "-o", str(out.resolve())]
            result.notes.append(f"{name} ran under cProfile (slower); stats in {out}")
        argv += ["-m", "hotline.cli", "--home", str(home), "agent", "--as", name, "--server", "",
                 "--log-level", args.agent_log_level]
        agents.append(Child(name, argv, workdir / f"{name}.log", child_env({})))
    failed = False
    codes: dict[str, int | None] = {}
    try:
        t0 = time.perf_counter()
        await server.start(pipe_stdout=True)
        url = await server.ready_line(HOTLINE_READY, args.ready_timeout)
        fig["server_start_s"] = time.perf_counter() - t0
        base = url.replace("ws://", "http://").removesuffix("/v1/ws")
        progress(f"run {k}: server ready at {url} after {fig['server_start_s']:.1f} s "
                 f"(roster import of {len(documents)} documents); starting the agents…")
        t0 = time.perf_counter()
        for agent in agents:
            agent.argv[agent.argv.index("--server") + 1] = url
            await agent.start()
        if args.pin_server is not None:  # the server alone on one CPU, the agents on the others
            others = set(os.sched_getaffinity(0)) - {args.pin_server}
            pin(server.pid, {args.pin_server})
            for agent in agents:
                pin(agent.pid, others or {args.pin_server})
            result.notes.append(f"server pinned to CPU {args.pin_server}, agents to CPU(s) "
                                f"{sorted(others)}; other processes run anywhere")
        pending = set(AGENTS)
        while pending:
            await asyncio.sleep(0.2)
            for agent in agents:
                if not agent.running:
                    raise RuntimeError(f"{agent.name} exited with {agent.proc and agent.proc.returncode}; "
                                       f"log: {agent.tail()}")
                if agent.name in pending and any(e.get("event") == "agent.connected" for e in agent.events()):
                    pending.discard(agent.name)
            if time.perf_counter() - t0 > args.ready_timeout:
                raise RuntimeError(f"agents {sorted(pending)} not connected within {args.ready_timeout} s")
        fig["agents_connected_s"] = time.perf_counter() - t0
        progress(f"run {k}: agents connected after {fig['agents_connected_s']:.1f} s; warm-up "
                 f"{args.warmup:g} s…")
        await asyncio.sleep(args.warmup)

        states0, scrape0 = channel_states(base)
        for state in STATES:
            fig[f"start_{state}"] = states0.get(state, 0)
        pids = {"server": server.pid} | {a.name: a.pid for a in agents}
        rss0 = {n: proc_rss_bytes(p) for n, p in pids.items()}
        cpu0 = {n: proc_cpu_seconds(p) for n, p in pids.items()}
        machine0 = machine_cpu()
        entries0, bytes0 = db_snapshot(db)
        w0 = time.perf_counter()
        progress(f"run {k}: measuring {args.duration:g} s from entry {entries0:,} "
                 f"(channels at start: {dict(states0)})")
        last_report, last_entries = w0, entries0
        while (left := args.duration - (time.perf_counter() - w0)) > 0:
            await asyncio.sleep(min(10.0, left))
            for child in (server, *agents):
                if not child.running:
                    raise RuntimeError(f"{child.name} exited during the window; log: {child.tail()}")
            now = time.perf_counter()
            entries, _ = db_snapshot(db)
            cpu = proc_cpu_seconds(server.pid)
            cpu_start = cpu0["server"]
            share = 100 * (cpu - cpu_start) / (now - w0) if cpu is not None and cpu_start is not None else 0.0
            progress(f"  {now - w0:5.0f} s: {(entries - last_entries) / (now - last_report):6.0f} "
                     f"entries/s, server CPU {share:.0f} % so far")
            last_report, last_entries = now, entries
        entries1, bytes1 = db_snapshot(db)
        cpu1 = {n: proc_cpu_seconds(p) for n, p in pids.items()}
        machine1 = machine_cpu()
        seconds = time.perf_counter() - w0
        fig["window_s"] = seconds
        states1, scrape1 = channel_states(base)
        fig["metrics_scrape_ms"] = 1000 * max(scrape0, scrape1)
        for state in STATES:
            fig[f"end_{state}"] = states1.get(state, 0)
        window_cpu(cpu0, cpu1, seconds, fig, "")
        fig["agents_cpu_pct"] = sum(fig.get(f"{a}_cpu_pct", 0.0) for a in AGENTS)
        if machine0 is not None and machine1 is not None:
            ours = sum((cpu1[n] or 0.0) - (cpu0[n] or 0.0) for n in pids)
            fig["other_cpu_pct"] = max(0.0, 100 * ((machine1[0] - machine0[0]) - ours) / seconds)
            fig["steal_pct"] = 100 * (machine1[1] - machine0[1]) / seconds
        rss1 = {n: proc_rss_bytes(p) for n, p in pids.items()}
        fig["server_rss_mb"] = (rss1["server"] or 0) / 1e6
        fig["agent_rss_mb"] = max((rss1[a] or 0) for a in AGENTS) / 1e6
        for name in pids:  # growth over the window, per minute
            b, a = rss0[name], rss1[name]
            if a is not None and b is not None:
                key = "server" if name == "server" else name
                fig[f"{key}_rss_growth_mb_per_min"] = (a - b) / 1e6 * 60 / seconds
    except Exception:
        failed = True
        raise
    finally:
        for child in (*agents, server):
            if child is server and not failed:
                await asyncio.sleep(3.0)  # a checkpoint (delay 1 s) for the last commits, if it keeps up
            try:  # SIGINT for an agent under cProfile: it writes its stats on the way out
                codes[child.name] = await child.stop(
                    signal.SIGINT if child.argv[1:3] == ["-m", "cProfile"] and child is not server
                    else signal.SIGTERM)
            except Exception as exc:  # keep stopping the others
                result.notes.append(f"could not stop {child.name}: {exc!r}")
        if failed:
            progress(f"run {k} failed; server exit code {codes.get('server')}, last lines of its "
                     f"log:\n{server.tail(1500)}")
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)

    # The log, once the server has stopped (its WAL is checkpointed into the file).
    progress(f"run {k}: reading entries {entries0:,}..{entries1 - 1:,} of the log…")
    leaf_bytes = analyse_log(db, entries0, entries1, args.interval, result)
    fig["ed25519_after_per_s"] = measure_crypto(args.crypto_seconds)
    fig["ed25519_verify_per_s"] = statistics.mean([fig["ed25519_before_per_s"], fig["ed25519_after_per_s"]])
    n = fig["entries"]
    fig["entries_per_s"] = n / seconds
    fig["heartbeats_per_s"] = fig["count_heartbeat"] / seconds
    fig["echoes_per_s"] = fig["count_echo"] / seconds
    fig["expected_heartbeats_per_s"] = len(PARTIES) * args.channels / args.interval
    fig["expected_echoes_per_s"] = (len(PARTIES) - 1) * fig["expected_heartbeats_per_s"]
    envelopes = fig["count_heartbeat"] + fig["count_echo"]
    if envelopes and "server_cpu_pct" in fig:
        fig["server_cpu_us_per_envelope"] = fig["server_cpu_pct"] / 100 * seconds / envelopes * 1e6
        fig["agent_cpu_us_per_envelope"] = fig["agents_cpu_pct"] / 100 * seconds / envelopes * 1e6
        if fig["server_cpu_pct"] > 0:
            fig["capacity_envelopes_per_s"] = envelopes / seconds / (fig["server_cpu_pct"] / 100)
            per_channel = (len(PARTIES) + len(PARTIES) * (len(PARTIES) - 1)) / args.interval
            fig["capacity_channels"] = fig["capacity_envelopes_per_s"] / per_channel

    # Storage: growth of the logical size over the window, split by each kind's own leaf.
    if n:
        grown = bytes1 - bytes0
        fig["db_growth_bytes"] = grown
        fig["bytes_per_entry"] = grown / n
        rest = (grown - sum(leaf_bytes.values())) / n
        fig["overhead_bytes_per_entry"] = rest
        for kind in ("heartbeat", "echo"):
            if fig[f"count_{kind}"]:
                fig[f"leaf_bytes_{kind}"] = leaf_bytes[kind] / fig[f"count_{kind}"]
                fig[f"bytes_per_{kind}"] = fig[f"leaf_bytes_{kind}"] + rest
        if "bytes_per_heartbeat" in fig and "bytes_per_echo" in fig:
            per_round = (len(PARTIES) * fig["bytes_per_heartbeat"]
                         + len(PARTIES) * (len(PARTIES) - 1) * fig["bytes_per_echo"])
            fig["per_channel_day_bytes"] = per_round * DAY / args.interval
            fig["per_channel_day_60s_bytes"] = per_round * DAY / 60
            fig["per_channel_day_10s_bytes"] = per_round * DAY / 10
    total_entries, _ = db_snapshot(db)
    breakdown = db_breakdown(db)
    if breakdown and total_entries:
        fig["nodes_bytes_per_entry"] = breakdown.get("nodes", 0) / total_entries
        fig["index_bytes_per_entry"] = sum(v for k_, v in breakdown.items()
                                           if k_.startswith(("entries_", "sqlite_autoindex_entries"))
                                           ) / total_entries
        fig["table_bytes_per_entry"] = breakdown.get("entries", 0) / total_entries
    fig["db_file_bytes"] = sum(p.stat().st_size for p in home.glob("hotline.db*"))

    server_events = log_summary(server.events())
    if server_events:
        result.notes.append("server log (warning or worse): " + ", ".join(
            f"{name} ×{count}" for name, count in server_events.most_common(8)))
    for agent in agents:
        events = agent.events()
        connects = sum(e.get("event") == "agent.connected" for e in events)
        if connects > 1:
            result.notes.append(f"{agent.name} connected {connects} times (reconnections)")
            fig["agent_reconnections"] = fig.get("agent_reconnections", 0) + connects - 1
        problems = log_summary(events)
        if problems:
            reasons = {str(e.get("reason"))[:160] for e in events if e.get("event") == "agent.disconnected"}
            result.notes.append(f"{agent.name} log: " + ", ".join(
                f"{name} ×{count}" for name, count in problems.most_common(6))
                + (f" (disconnect reasons: {sorted(reasons)[:3]})" if reasons else ""))
    for name, code in codes.items():
        if code not in (0, None, 130, -signal.SIGTERM):
            result.notes.append(f"{name} exited with {code} on SIGTERM")
    if args.keep:
        result.notes.append(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


# -- report ----------------------------------------------------------------------------------------

def fmt_n(value: float | None, spec: str = ",.0f", unit: str = "") -> str:
    return "n/a" if value is None else f"{format(value, spec)}{unit}"


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return "n/a"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:,.1f} {unit}"
    return f"{value:,.0f} B"


def render(args: argparse.Namespace, med: dict[str, float], runs: list[RunResult],
           machine: dict[str, Any], command: str) -> str:
    g = med.get
    n, interval = args.channels, args.interval

    def ratio(a: float | None, b: float | None, spec: str = ".2f") -> str:
        return "n/a" if a is None or not b else f"{format(a / b, spec)}×"

    verify_us = 1e6 / g("ed25519_verify_per_s", 1e9)
    envelopes_per_s = (g("heartbeats_per_s") or 0) + (g("echoes_per_s") or 0)
    states_end = {s: g(f"end_{s}") for s in STATES if g(f"end_{s}")}
    states_start = {s: g(f"start_{s}") for s in STATES if g(f"start_{s}")}
    health = {s: g(f"health_to_{s}") for s in STATES if g(f"health_to_{s}")}

    def states(d: dict[str, float | None]) -> str:
        return ", ".join(f"{s} {v:,.0f}" for s, v in d.items() if v) or "none reported"

    out = [f"# hotline heartbeat benchmark — {n:,} channels × 3 agents, interval {interval} s, "
           f"median of {len(runs)} run(s)", "",
           "| metric | value | baseline / expected (same run) | ratio |", "|---|---|---|---|",
           f"| server CPU | {fmt_n(g('server_cpu_pct'), '.0f', ' %')} of one core | "
           f"one core | {fmt_n((g('server_cpu_pct') or 0) / 100, '.2f', '×')} |",
           f"| heartbeats logged/s | {fmt_n(g('heartbeats_per_s'), ',.1f')} | "
           f"expected 3 × {n:,} / {interval} s = {fmt_n(g('expected_heartbeats_per_s'), ',.1f')} | "
           f"{ratio(g('heartbeats_per_s'), g('expected_heartbeats_per_s'))} |",
           f"| echoes logged/s | {fmt_n(g('echoes_per_s'), ',.1f')} | "
           f"expected 2 × heartbeats = {fmt_n(g('expected_echoes_per_s'), ',.1f')} | "
           f"{ratio(g('echoes_per_s'), g('expected_echoes_per_s'))} |",
           f"| heartbeat → echo delay p50 / p99 / max | {fmt_n(g('delay_p50_ms'), ',.0f')} / "
           f"{fmt_n(g('delay_p99_ms'), ',.0f')} / {fmt_n(g('delay_max_ms'), ',.0f')} ms | "
           f"interval {interval} s | p99 = {ratio(g('delay_p99_ms'), interval * 1000.0, '.3f')} "
           "of an interval |",
           f"| server CPU per logged heartbeat or echo | {fmt_n(g('server_cpu_us_per_envelope'), ',.0f')} µs "
           f"| raw Ed25519 verify {verify_us:,.0f} µs | "
           f"{ratio(g('server_cpu_us_per_envelope'), verify_us, '.1f')} |",
           f"| envelopes logged/s (heartbeats + echoes) | {envelopes_per_s:,.0f}/s | raw Ed25519 "
           f"verify {fmt_n(g('ed25519_verify_per_s'))}/s (1 core) | "
           f"{ratio(envelopes_per_s, g('ed25519_verify_per_s'))} |",
           f"| channels UP at the end of the window (`/metrics`) | {fmt_n(g('end_UP'))} of {n:,} | "
           f"all {n:,} | {ratio(g('end_UP') or 0, float(n))} |",
           f"| storage per channel per day, interval {interval} s | "
           f"{fmt_bytes(g('per_channel_day_bytes'))} | "
           f"{fmt_n(g('bytes_per_heartbeat'))} B/heartbeat, {fmt_n(g('bytes_per_echo'))} B/echo, "
           f"{3 * DAY // interval:,} heartbeats + {6 * DAY // interval:,} echoes | |",
           ""]
    out += ["Context (medians):", "", "| figure | value |", "|---|---|",
            f"| agents' CPU (north / south / mediator; sum) | "
            f"{' / '.join(fmt_n(g(f'{a}_cpu_pct'), '.0f', ' %') for a in AGENTS)}; "
            f"{fmt_n(g('agents_cpu_pct'), '.0f', ' %')} of one core "
            f"({fmt_n(g('agent_cpu_us_per_envelope'), ',.0f')} µs per logged envelope, all agents) |",
            f"| other processes' CPU / VM steal during the window (machine busy just before the run) | "
            f"{fmt_n(g('other_cpu_pct'), '.0f', ' %')} / {fmt_n(g('steal_pct'), '.0f', ' %')} "
            f"({fmt_n(g('machine_busy_before_pct'), '.0f', ' %')}) |",
            f"| server CPU capacity implied (envelopes/s at 100 % of one core; channels at {interval} s) "
            f"| {fmt_n(g('capacity_envelopes_per_s'))}/s; {fmt_n(g('capacity_channels'))} channels |",
            f"| heartbeat ingress (agent `created` → logged) p50 / p99 / max | "
            f"{fmt_n(g('ingress_p50_ms'))} / {fmt_n(g('ingress_p99_ms'))} / "
            f"{fmt_n(g('ingress_max_ms'))} ms |",
            f"| gap between a party's heartbeats on a channel p50 / p99 / max | "
            f"{fmt_n(g('gap_p50_s'), '.2f')} / {fmt_n(g('gap_p99_s'), '.2f')} / "
            f"{fmt_n(g('gap_max_s'), '.2f')} s |",
            f"| heartbeats echoed by both other parties within one interval | "
            f"{fmt_n(g('echoed_by_both_pct'), '.2f', ' %')} of {fmt_n(g('echo_checked_heartbeats'))} |",
            f"| echoes later than 1 s | {fmt_n(g('delay_over_1s'))} of {fmt_n(g('delay_samples'))} |",
            f"| busiest second / mean (envelopes logged) | {fmt_n(g('peak_envelopes_1s'))} / "
            f"{envelopes_per_s:,.0f}; seconds with any envelope "
            f"{fmt_n(g('busy_seconds_pct'), '.0f', ' %')} |",
            f"| `health` entries (state changes) logged in the window | {states(health)} |",
            f"| channels at the start / end of the window (`/metrics`) | {states(states_start)} / "
            f"{states(states_end)} |",
            f"| entry logged → first checkpoint covering it p50 / p99 / max (checkpoint delay 1 s); "
            f"checkpoints signed in the window; window entries still uncovered when the server stopped | "
            f"{fmt_n(g('covered_p50_s'), '.1f')} / {fmt_n(g('covered_p99_s'), '.1f')} / "
            f"{fmt_n(g('covered_max_s'), '.1f')} s; {fmt_n(g('checkpoints_signed'))}; "
            f"{fmt_n(g('uncovered_at_stop'))} |",
            f"| `GET /metrics` wall time (slower of the two scrapes) | "
            f"{fmt_n(g('metrics_scrape_ms'), ',.0f', ' ms')} |",
            f"| refused submissions logged (`rejected`) in the window | {fmt_n(g('count_rejected'))} |",
            f"| agent reconnections | {fmt_n(g('agent_reconnections', 0))} |",
            f"| server start, roster import of {fmt_n(g('roster_documents'))} documents included | "
            f"{fmt_n(g('server_start_s'), '.1f', ' s')} |",
            f"| agents connected (roster frame {fmt_bytes(g('roster_frame_bytes'))} each) after | "
            f"{fmt_n(g('agents_connected_s'), '.1f', ' s')} |",
            f"| `AgentState.next` (counter file of {n:,} channels, fsync) | "
            f"{fmt_n(g('agent_state_next_us'), ',.0f', ' µs')}; × {n / interval:,.0f}/s per agent = "
            f"{fmt_n((g('agent_state_next_us') or 0) * n / interval / 1e4, '.1f', ' %')} of its event loop |",
            f"| `HealthMonitor.sweep` over {n:,} channels (every 1 s) | "
            f"{fmt_n(g('sweep_ms'), '.1f', ' ms')} = {fmt_n((g('sweep_ms') or 0) / 10, '.1f', ' %')} "
            f"of one core |",
            f"| RSS at the end: server / largest agent (growth over the window, per minute) | "
            f"{fmt_n(g('server_rss_mb'), ',.0f', ' MB')} / {fmt_n(g('agent_rss_mb'), ',.0f', ' MB')} "
            f"({fmt_n(g('server_rss_growth_mb_per_min'), '+,.1f')} / "
            f"{' / '.join(fmt_n(g(f'{a}_rss_growth_mb_per_min'), '+,.1f') for a in AGENTS)} MB/min) |",
            f"| Ed25519 verify/s before / after | {fmt_n(g('ed25519_before_per_s'))} / "
            f"{fmt_n(g('ed25519_after_per_s'))} |"]
    day10 = g("per_channel_day_10s_bytes") or 0.0
    out += ["", "Storage (growth of the database's logical size over the window ÷ entries logged):", "",
            "| figure | value |", "|---|---|",
            f"| database growth / entries | {fmt_bytes(g('db_growth_bytes'))} / "
            f"{fmt_n(g('entries'))} = {fmt_n(g('bytes_per_entry'))} B per entry |",
            f"| leaf (the JCS entry) per heartbeat / per echo | {fmt_n(g('leaf_bytes_heartbeat'))} B / "
            f"{fmt_n(g('leaf_bytes_echo'))} B |",
            f"| rest per entry (row, indexes, Merkle nodes, checkpoints, page slack) | "
            f"{fmt_n(g('overhead_bytes_per_entry'))} B (whole file: Merkle nodes "
            f"{fmt_n(g('nodes_bytes_per_entry'))} B, entries' indexes {fmt_n(g('index_bytes_per_entry'))} B, "
            f"entries table {fmt_n(g('table_bytes_per_entry'))} B per entry) |",
            f"| per heartbeat / per echo, all included | {fmt_n(g('bytes_per_heartbeat'))} B / "
            f"{fmt_n(g('bytes_per_echo'))} B |",
            f"| per channel per day at 10 s (3 + 6 per interval: 25,920 + 51,840) | "
            f"{fmt_bytes(day10)} ({fmt_bytes(day10 * n)} for {n:,} channels; "
            f"{fmt_bytes(day10 * 365)} per channel per year) |",
            f"| per channel per day at 60 s (4,320 + 8,640) | {fmt_bytes(g('per_channel_day_60s_bytes'))} "
            f"({fmt_bytes((g('per_channel_day_60s_bytes') or 0) * n)} for {n:,} channels) |",
            f"| database file after the run | {fmt_bytes(g('db_file_bytes'))} |"]
    if len(runs) > 1:
        def each(key: str, spec: str) -> str:
            return " / ".join(format(r.figures[key], spec) if key in r.figures else "n/a" for r in runs)
        out += ["", f"Per run: server CPU % {each('server_cpu_pct', '.0f')}; delay p99 ms "
                f"{each('delay_p99_ms', ',.0f')}; envelopes/s {each('entries_per_s', ',.0f')}; "
                f"Ed25519/s {each('ed25519_verify_per_s', ',.0f')}."]
    out += ["", f"Command: `{command}`",
            f"Parameters: channels={n:,} (north-south + {n - 1:,} copies of its agreement, each "
            f"signed by the three authorities), interval={interval} s (grace {interval} s, "
            f"health sweep 1 s, K=3), warm-up {args.warmup:g} s after the three agents connected, "
            f"window {args.duration:g} s, server log level {args.server_log_level}, agents' "
            f"{args.agent_log_level}, runs={len(runs)}.",
            "Topology: the server and the three agents each in a child process "
            "(`python -m hotline.cli serve` / `agent`), all on 127.0.0.1, no TLS, defaults of "
            "`hotline init` otherwise (`synchronous=FULL`, commit batch 512, checkpoint delay 1 s, "
            "receipts on). Delay = echo's log time − the log time of the heartbeat it answers "
            "(both stamped by the server when it takes the submission, ms resolution). CPU = "
            "utime + stime from /proc over the window ÷ its wall time. Storage = growth of "
            "`page_count × page_size` over the window ÷ entries logged in it.",
            *footer(machine, runs)]
    return "\n".join(out)


# -- main ----------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark hotline under heartbeat load: N channels, three agents, one server; "
                    "server CPU, heartbeat→echo delay, storage per channel per day.")
    parser.add_argument("--channels", type=int, default=1000, help="channels (default 1000)")
    parser.add_argument("--interval", type=int, default=10,
                        help="heartbeat interval written into the agreements, s (default 10)")
    parser.add_argument("--duration", type=float, default=60.0,
                        help="measured window, s (default 60: six intervals)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds after the agents connected before measuring "
                             "(default: two intervals)")
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat K times with fresh deployments, report medians (default 1)")
    parser.add_argument("--crypto-seconds", type=float, default=1.0,
                        help="seconds per raw Ed25519 baseline, before and after (default 1.0)")
    parser.add_argument("--ready-timeout", type=float, default=600.0,
                        help="seconds the server and the agents get to start (default 600)")
    parser.add_argument("--server-log-level", default="warning",
                        choices=("debug", "info", "warning", "error"), help="default warning")
    parser.add_argument("--agent-log-level", default="info",
                        choices=("debug", "info", "warning", "error"), help="default info")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the temporary deployments go (default .bench/ in the repository)")
    parser.add_argument("--keep", action="store_true", help="keep the deployment folders")
    parser.add_argument("--profile-server", type=Path, metavar="FILE",
                        help="run the server under cProfile and write pstats to FILE")
    parser.add_argument("--wait-quiet", type=float, metavar="PCT",
                        help="before each run, wait until the machine is busy below PCT %% of one "
                             "CPU over 5 s (shared machines; at most --quiet-patience s)")
    parser.add_argument("--quiet-patience", type=float, default=900.0,
                        help="seconds --wait-quiet waits at most (default 900)")
    parser.add_argument("--pin-server", type=int, metavar="CPU",
                        help="pin the server (all its threads) to this CPU and the agents to the "
                             "others (Linux), to see what the server does with a core of its own")
    parser.add_argument("--profile-agent", type=Path, metavar="FILE",
                        help="run north-agent under cProfile and write pstats to FILE")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    args = parser.parse_args(argv)
    for name in ("channels", "interval", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.duration <= 0 or args.crypto_seconds <= 0:
        parser.error("--duration and --crypto-seconds must be > 0")
    if args.warmup is None:
        args.warmup = 2.0 * args.interval
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    return args


async def amain(args: argparse.Namespace, command: str) -> int:
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    runs: list[RunResult] = []
    for k in range(1, args.runs + 1):
        result = await one_run(k, args)
        runs.append(result)
        f = result.figures
        progress(f"run {k}/{args.runs}: server CPU {f.get('server_cpu_pct', 0):.0f} %, "
                 f"{f.get('entries_per_s', 0):,.0f} entries/s, delay p99 {f.get('delay_p99_ms', 0):,.0f} ms "
                 f"({time.perf_counter() - started:.0f} s elapsed)")
    med = median_figures(runs)
    machine = machine_info((args.dir or ROOT / ".bench").resolve(),
                           ("aiohttp", "websockets", "cryptography", "sqlite-utils", "rfc8785",
                            "structlog", "prometheus-client"))
    machine.update(load_before=load_before, load_after=os.getloadavg()[0])
    if args.json:
        print(json.dumps({"params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                          "median": med, "runs": [{"figures": r.figures, "notes": r.notes} for r in runs],
                          "machine": machine, "command": command}, indent=2))
    else:
        print(render(args, med, runs, machine, command))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench("bench_heartbeat", amain, args, argv)


if __name__ == "__main__":
    sys.exit(main())
