#!/usr/bin/env python3
"""Benchmark of hotline's transparency log at scale: proof generation and ``audit verify``.

A benchmark, not a test: it prints figures and never fails on them (a proof that does not verify
is reported in the notes). What it measures, per run:

1. **Build** (once, then cached): a real ``hotline.store.Store`` (SQLite, WAL,
   ``synchronous=FULL``, group commit of ``--commit-batch``) filled with ``--entries`` entries
   shaped like the server's: the roster first (one enrollment per member, signed by its party's
   authority, and the channel agreement signed by every authority), then envelope entries
   ``{"time", "kind": "envelope", "channel", "party", "envelope", "sig"}``, every envelope
   distinct and signed (the auditor refuses a repeated envelope id as a replay): alice and bob
   send messages of ``--text-bytes`` characters, every tenth is an agent's heartbeat; log times
   increase by 1 ms per entry. Each is enqueued with its envelope id as ``envelope_id``, as the
   server does (so the UNIQUE index and the duplicate lookup cost what they cost there).
   ``--sign-workers`` processes sign ahead of the store. All keys come from fixed seeds, so the
   database file alone is the cache (``--cache``, default ``.bench/tlog-N.db``); an
   interrupted build resumes from ``*.partial``. It ends with a checkpoint signed by the log key.
2. **Proofs** at the full size N: ``await store.inclusion_proof(i, N)`` for random i and
   ``await store.consistency_proof(m, N)`` for random m, p50/p99 after ``--proof-warmup``
   untimed ones; the SQLite reads run on the store's reader thread as on the server. Up to
   ``--proof-samples`` per kind within ``--proof-budget`` seconds (at least 10), because a slow
   store must not make the benchmark run for hours. For context: the store's node query run in
   this thread, the same nodes fetched by a join on a VALUES table (a reference, not hotline
   code), the pure computation (``inclusion_nodes`` + ``inclusion_proof`` from a node dict) and
   ``verify_inclusion``. Every proof is checked against the store's root.
3. **Audit**: ``hotline.audit.commands.run_audit`` (the loop of ``hotline audit verify``, with no
   progress bar) over the first ``--audit-entries`` entries (default: all, at most 100,000:
   10^6 takes about 6 minutes on a 2-core VM), fed with the records ``{"index", "leaf",
   "entry"}`` the export and the HTTP API give, read straight from SQLite in pages of 1000 (no
   HTTP), and one checkpoint of that size signed by the log key. Entries/s counts the
   auditor's time only; making the records is timed apart and reported.
4. **Baseline**: raw Ed25519 verifications per second (``cryptography``, one core, this
   process, public key objects loaded once) over the signed bytes of the log's envelopes,
   measured for ``--crypto-seconds`` just before and just after the audit; the baseline is
   their mean (the audit checks signatures in threads on every core, ``hotline.ahead``, so
   samples taken during it would read low). Ratio = audit entries/s ÷ that baseline; the aim
   is ≥ 0.80 per core used.
5. **Breakdown** of the auditor's per-entry cost over ``--breakdown-entries`` envelope records:
   each step ``Auditor.add_entry`` takes, run stage by stage with the same hotline functions
   (median of ``--breakdown-rounds``); ``--profile FILE`` adds a cProfile of the audit.
With ``--runs K`` steps 2-5 are repeated and every figure is the median of K runs.

    .venv/bin/python scripts/bench_tlog.py                      # 10^6 entries (build once)
    .venv/bin/python scripts/bench_tlog.py --entries 100000     # quick
    .venv/bin/python scripts/bench_tlog.py --json
    .venv/bin/python scripts/bench_tlog.py --profile /tmp/audit.prof   # cProfile the audit
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import cProfile
import functools
import hashlib
import io
import itertools
import json
import os
import pstats
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_core import HOTLINE_READY, Child
from benchlib import footer, machine_info, median_figures, percentile, rate, run_bench
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hotline.audit.commands import run_audit
from hotline.audit.records import CheckpointNote, CheckpointRecord, EntryRecord
from hotline.audit.verify import Auditor
from hotline.canonical import canonical_bytes, parse
from hotline.deployment import AUDITOR, CHANNEL, LIAISONS
from hotline.entries import PENDING, Entry, EnvelopeEntry, roster_entry
from hotline.entries import decode as decode_entry
from hotline.envelope import Envelope, Kind, Precedence, new_envelope_id
from hotline.keyfiles import save_private_key
from hotline.keys import Domain, PublicKey, SigningKey, b64encode, domain_bytes
from hotline.norms.files import load_templates, shipped_dir
from hotline.roster import Role, Roster, decode_document, enrollment, sign_document
from hotline.store import open_store, row_mac_key
from hotline.store.checkpointfile import SavedCheckpoint, checkpoint_path, write_checkpoint_file
from hotline.times import format_time, parse_time
from hotline.tlog import (
    Checkpoint,
    Frontier,
    NoteVerifier,
    consistency_nodes,
    consistency_proof,
    frontier_nodes,
    inclusion_nodes,
    inclusion_proof,
    leaf_hash,
    sign_checkpoint,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)

FORMAT = 2  # bump when the generated log changes: older caches are rebuilt
SEED = b"hotline-bench-tlog/v1/"
ORIGIN = "bench.hotline.local"
PARTIES = ("north", "south", "mediator")
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
AIM_PROOF_MS = 1.0
AIM_AUDIT_RATIO = 0.80
DEFAULT_AUDIT_CAP = 100_000  # audited entries unless --audit-entries: 10^6 takes ~6 min here
PAGE = 1000  # records per page, as hotline.client.logapi.LogClient reads them
ROOT = Path(__file__).resolve().parent.parent


# -- small helpers -------------------------------------------------------------------------------









def db_files(path: Path) -> list[Path]:
    return [p for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
            if p.exists()]


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in db_files(path))


def seeded_key(name: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(SEED + b"key/" + name.encode()).digest())


def seeded_id(label: str) -> str:
    return new_envelope_id(hashlib.sha256(SEED + b"id/" + label.encode()).digest()[:16])


def text_of(j: int, size: int) -> str:
    head = f"benchmark message {j}: "
    return (head + "x" * max(0, size - len(head)))[:max(size, len(head))]




def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the deterministic log -----------------------------------------------------------------------

@dataclass
class Signed:
    """One signed envelope of the log, and what the raw baseline needs to verify it again."""

    envelope: Envelope
    sig: dict[str, str]
    party: str
    public: Ed25519PublicKey
    signed: bytes  # DOMAIN || 0x0A || JCS(envelope): what the signature covers


class Fixture:
    """Keys, roster documents and every envelope of the log, all from fixed seeds (so the cached
    database is reproducible and needs no key files). Mirrors ``hotline init``'s demo deployment:
    three parties, a liaison and an agent each, the auditor, one channel agreed by every
    authority. Entry ``i`` is a pure function of ``i``: a build can resume anywhere."""

    def __init__(self, *, text_bytes: int) -> None:
        self.text_bytes = text_bytes
        self.authorities = {p: seeded_key(f"authority-{p}") for p in PARTIES}
        self.log_key = seeded_key("log")
        self.log_verifier = NoteVerifier(name=ORIGIN, public_key=self.log_key.public_key.raw)
        self.members: dict[str, tuple[str, Role, SigningKey]] = {}
        for party in PARTIES:
            self.members[LIAISONS[party]] = (party, Role.LIAISON, seeded_key(LIAISONS[party]))
            self.members[f"{party}-agent"] = (party, Role.AGENT, seeded_key(f"{party}-agent"))
        self.members[AUDITOR] = ("mediator", Role.AUDITOR, seeded_key(AUDITOR))
        self.publics = {name: Ed25519PublicKey.from_public_bytes(key.public_key.raw)
                        for name, (_, _, key) in self.members.items()}
        not_before, not_after = BASE_TIME - timedelta(days=1), BASE_TIME + timedelta(days=3650)
        self.documents: list[dict[str, Any]] = []
        for name, (party, role, key) in self.members.items():
            doc = enrollment(party=party, member=name, role=role, key=key.public_key,
                             not_before=not_before, not_after=not_after)
            self.documents.append(sign_document(doc, self.authorities[party]).to_json())
        agreement = {
            "type": "agreement", "channel": CHANNEL, "version": 1,
            "parties": [{"id": p, "authority": self.authorities[p].key_id} for p in PARTIES],
            "templates": [t.ref() for t in load_templates(shipped_dir())],
            "heartbeat": {"interval": 30, "grace": 30},
            "auditors": [{"id": AUDITOR, "authority": self.authorities["mediator"].key_id}],
            "witnesses": [{"id": f"{p}-agent", "authority": self.authorities[p].key_id}
                          for p in PARTIES],
            "effective": format_time(BASE_TIME - timedelta(days=1)),
        }
        self.documents.append(sign_document(decode_document(agreement),
                                            *self.authorities.values()).to_json())
        self.roster_count = len(self.documents)

    @property
    def authority_keys(self) -> dict[str, PublicKey]:
        return {p: k.public_key for p, k in self.authorities.items()}

    def signed(self, i: int) -> Signed:
        """The envelope logged at index ``i`` (>= roster_count), signed: alice and bob take turns
        sending messages, every tenth is an agent's heartbeat; created 20 ms before it is logged."""
        created = BASE_TIME + timedelta(milliseconds=i - 20)
        if i % 10 == 9:
            sender = ("north-agent", "south-agent")[(i // 10) % 2]
            kind, template = Kind.HEARTBEAT, "heartbeat"
            body: dict[str, Any] = {"seq": i, "sent": format_time(created)}
            precedence = Precedence.ROUTINE
        else:
            sender, kind, template = ("alice", "bob")[i % 2], Kind.MESSAGE, "message"
            body = {"text": text_of(i, self.text_bytes), "lang": "en"}
            precedence = Precedence.PRIORITY if i % 7 == 0 else Precedence.ROUTINE
        party, _, key = self.members[sender]
        env = Envelope.build(id=seeded_id(f"envelope/{i}"), kind=kind, channel=CHANNEL,
                             sender=sender, template=template, precedence=precedence,
                             created=created, body=body)
        return Signed(env, env.sign(key), party, self.publics[sender],
                      domain_bytes(Domain.ENVELOPE, env.canonical))

    def entry(self, i: int) -> tuple[Entry, str]:
        """Entry ``i`` as the server enqueues it (at index ``PENDING``: the store sets it) and its
        ``envelope_id`` (the dedup key: the envelope id, or ``doc:`` + SHA-256 for the roster)."""
        logged = format_time(BASE_TIME + timedelta(milliseconds=i))
        if i < self.roster_count:
            signed = self.documents[i]
            return (roster_entry(signed, time=logged),
                    "doc:" + hashlib.sha256(canonical_bytes(signed)).hexdigest())
        item = self.signed(i)
        return (EnvelopeEntry(index=PENDING, time=logged, channel=CHANNEL, party=item.party,
                              envelope=item.envelope, sig=item.sig), item.envelope.id)

    @functools.cached_property
    def sample(self) -> list[Signed]:
        """The log's first 1000 envelopes (for the raw Ed25519 baseline)."""
        return [self.signed(i) for i in range(self.roster_count, self.roster_count + 1000)]


_WORKER: Fixture | None = None


def _worker_init(text_bytes: int) -> None:
    global _WORKER
    _WORKER = Fixture(text_bytes=text_bytes)


def _worker_entries(lo: int, hi: int) -> tuple[list[tuple[Entry, str]], float]:
    """Entries ``lo..hi-1``, signed in a worker process, and the CPU seconds it took."""
    assert _WORKER is not None
    start = time.process_time()
    entries = [_WORKER.entry(i) for i in range(lo, hi)]
    return entries, time.process_time() - start


# -- build ---------------------------------------------------------------------------------------

@dataclass
class BuildInfo:
    cached: bool
    entries: int
    seconds: float = 0.0
    rate: float = 0.0
    resumed_from: int = 0
    sign_cpu_seconds: float = 0.0
    when: str = ""


def meta_path(db: Path) -> Path:
    return db.with_name(db.name + ".json")


def wanted_meta(args: argparse.Namespace) -> dict[str, Any]:
    return {"format": FORMAT, "entries": args.entries, "text_bytes": args.text_bytes}


def remove_db(path: Path) -> None:
    for p in db_files(path):
        p.unlink()
    with contextlib.suppress(FileNotFoundError):
        meta_path(path).unlink()


async def build(db: Path, args: argparse.Namespace) -> BuildInfo:
    """Fill ``db`` (or resume ``db.partial``) up to ``args.entries`` entries, then rename it.

    Worker processes sign the envelopes chunk by chunk, ahead of the store; this process enqueues
    each chunk while the previous one commits, so the store always has a queue (group commit).
    """
    want = wanted_meta(args)
    if db.exists():
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads(meta_path(db).read_text())
            if {k: meta.get(k) for k in want} == want and meta.get("complete"):
                return BuildInfo(cached=True, entries=args.entries, seconds=meta["seconds"],
                                 rate=meta["rate"], resumed_from=meta.get("resumed_from", 0),
                                 sign_cpu_seconds=meta.get("sign_cpu_seconds", 0.0),
                                 when=meta.get("when", ""))
        progress(f"cache {db} does not match these parameters: rebuilding it")
        remove_db(db)
    partial = db.with_name(db.name + ".partial")
    if partial.exists():
        with contextlib.suppress(OSError, ValueError):
            if json.loads(meta_path(partial).read_text()) != want:
                remove_db(partial)
    if not partial.exists():
        remove_db(partial)  # stray -wal/-shm or meta
    partial.parent.mkdir(parents=True, exist_ok=True)
    meta_path(partial).write_text(json.dumps(want))

    loop = asyncio.get_running_loop()
    fixture = Fixture(text_bytes=args.text_bytes)
    store = await open_store(partial, batch=args.commit_batch, mac_key=row_mac_key(fixture.log_key))
    signer = ProcessPoolExecutor(max_workers=args.sign_workers, initializer=_worker_init,
                                 initargs=(args.text_bytes,))
    try:
        start_size = await store.size()
        if start_size:
            progress(f"resuming the build of {partial} at entry {start_size:,}")
        total, chunk = args.entries, args.enqueue_chunk
        starts = list(range(start_size, total, chunk))
        signing: collections.deque[asyncio.Future[Any]] = collections.deque()
        ahead = iter(starts)

        def sign_next() -> None:
            lo = next(ahead, None)
            if lo is not None:
                signing.append(loop.run_in_executor(signer, _worker_entries, lo, min(total, lo + chunk)))

        for _ in range(args.sign_workers + 1):
            sign_next()
        started = last_report = time.perf_counter()
        sign_cpu = 0.0
        previous: tuple[int, list[asyncio.Future[Any]]] | None = None

        async def committed(lo: int, futures: list[asyncio.Future[Any]]) -> None:
            results = await asyncio.gather(*futures)
            hi = lo + len(results)
            if results[0].stored.index != lo or results[-1].stored.index != hi - 1 or any(
                    r.duplicate for r in results):
                raise RuntimeError(f"store assigned unexpected indexes in {lo}..{hi - 1}")

        for lo in starts:
            entries, cpu = await signing.popleft()
            sign_cpu += cpu
            sign_next()
            current = (lo, [store.enqueue(e, envelope_id=eid) for e, eid in entries])
            if previous is not None:
                await committed(*previous)
            previous = current
            now = time.perf_counter()
            if now - last_report > 10:
                done = lo - start_size
                progress(f"  built {lo:,}/{total:,} entries ({done / (now - started):,.0f}/s)")
                last_report = now
        if previous is not None:
            await committed(*previous)
        seconds = time.perf_counter() - started
        size, root = store.tree_head()
        if size != total:
            raise RuntimeError(f"the store holds {size} entries, expected {total}")
        if await store.checkpoint(size) is None:
            await store.add_checkpoint(size, format_time(BASE_TIME + timedelta(milliseconds=size)),
                                       sign_checkpoint(Checkpoint(ORIGIN, size, root), fixture.log_key))
    finally:
        signer.shutdown(wait=True, cancel_futures=True)
        await store.close()
    built = total - start_size
    info = BuildInfo(cached=False, entries=total, seconds=seconds,
                     rate=built / seconds if seconds > 0 else 0.0, resumed_from=start_size,
                     sign_cpu_seconds=sign_cpu, when=format_time(datetime.now(UTC)))
    # Store.close() closes its writer before its read-only reader, so the WAL is left behind
    # (a read-only last connection cannot checkpoint it): fold it in before renaming the file.
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")  # no -wal/-shm while the file is renamed
    finally:
        conn.close()
    if len(db_files(partial)) != 1:
        raise RuntimeError(f"{partial}: its -wal/-shm files are still there after a checkpoint")
    partial.rename(db)
    meta_path(partial).unlink()
    meta_path(db).write_text(json.dumps({**want, "complete": True, "seconds": info.seconds,
                                         "rate": info.rate, "resumed_from": start_size,
                                         "sign_cpu_seconds": sign_cpu, "when": info.when,
                                         "commit_batch": args.commit_batch}))
    return info


# -- measurements --------------------------------------------------------------------------------

@dataclass
class RunResult:
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    breakdown: dict[str, float] = field(default_factory=dict)  # step -> µs per entry


def nodes_sql(conn: sqlite3.Connection, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The query ``Store._nodes`` runs (a join on a VALUES table), in this thread."""
    if not wanted:
        return {}
    values = ",".join("(?, ?)" for _ in wanted)
    rows = conn.execute(f"WITH w(l, i) AS (VALUES {values}) SELECT n.level, n.idx, n.hash FROM w "
                        "JOIN nodes n ON n.level = w.l AND n.idx = w.i",
                        [n for node in wanted for n in node]).fetchall()
    return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}


def nodes_join(conn: sqlite3.Connection, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The same nodes by a row-value ``IN (VALUES ...)``, which SQLite 3.40 plans as a full scan
    of the node table (the store's query before it became a join; kept as a reference)."""
    if not wanted:
        return {}
    values = ",".join("(?, ?)" for _ in wanted)
    rows = conn.execute(f"SELECT level, idx, hash FROM nodes WHERE (level, idx) IN (VALUES {values})",
                        [n for node in wanted for n in node]).fetchall()
    return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}


def root_from(size: int, nodes: dict[tuple[int, int], bytes]) -> bytes:
    """The tree root at ``size`` from its frontier nodes."""
    return Frontier.from_nodes(size, lambda level, index: nodes[level, index]).root()


async def timed_samples(name: str, make: Callable[[int], Any], args: argparse.Namespace,
                        rng: random.Random, pick: Callable[[random.Random], int],
                        result: RunResult) -> list[tuple[int, float, Any]]:
    """``(argument, ms, answer)`` of ``await make(argument)`` for random arguments: warm-up, then up
    to ``--proof-samples``, within ``--proof-budget`` seconds (at least 10 timed)."""
    deadline = time.perf_counter() + args.proof_budget
    warm = 0
    for _ in range(args.proof_warmup):
        if time.perf_counter() > deadline - 0.75 * args.proof_budget:  # warm-up: a quarter at most
            break
        await make(pick(rng))
        warm += 1
    samples: list[tuple[int, float, Any]] = []
    while len(samples) < args.proof_samples:
        if len(samples) >= 10 and time.perf_counter() > deadline:
            result.notes.append(f"{name}: time budget of {args.proof_budget:g} s spent after "
                                f"{len(samples)} timed samples (of {args.proof_samples}) and "
                                f"{warm} warm-up ones")
            break
        arg = pick(rng)
        t0 = time.perf_counter()
        answer = await make(arg)
        samples.append((arg, (time.perf_counter() - t0) * 1000, answer))
    return samples


async def measure_proofs(db: Path, args: argparse.Namespace, run: int, result: RunResult) -> None:
    rng = random.Random(run * 7919 + args.entries)
    store = await open_store(db, batch=args.commit_batch)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    try:
        size, root = store.tree_head()
        f = result.figures
        f["size"] = size

        # 1. through the store (reader-thread hop + SQL + computation), as the server does it
        incl = await timed_samples("inclusion proofs", lambda i: store.inclusion_proof(i, size),
                                   args, rng, lambda r: r.randrange(size), result)
        times = [ms for _, ms, _ in incl]
        f["inclusion_samples"] = len(incl)
        f["inclusion_p50_ms"], f["inclusion_p99_ms"] = percentile(times, 50), percentile(times, 99)
        f["inclusion_max_ms"] = max(times)
        f["inclusion_proof_hashes"] = statistics.mean(len(p) for _, _, p in incl)
        cons = await timed_samples("consistency proofs", lambda m: store.consistency_proof(m, size),
                                   args, rng, lambda r: r.randrange(1, size), result)
        times = [ms for _, ms, _ in cons]
        f["consistency_samples"] = len(cons)
        f["consistency_p50_ms"], f["consistency_p99_ms"] = percentile(times, 50), percentile(times, 99)
        f["consistency_max_ms"] = max(times)

        # 2. the same work split: the store's SQL in this thread; the same nodes by a join on a
        # VALUES table (reference); the computation alone from a node dict
        split = [i for i, _, _ in incl[:100]]
        sql_t: list[float] = []
        join_t: list[float] = []
        split_deadline = time.perf_counter() + args.proof_budget / 3
        for i in split:
            if len(sql_t) >= 5 and time.perf_counter() > split_deadline:
                break
            wanted = inclusion_nodes(i, size)
            t0 = time.perf_counter()
            nodes_sql(conn, wanted)
            t1 = time.perf_counter()
            nodes_join(conn, wanted)
            sql_t.append((t1 - t0) * 1000)
            join_t.append((time.perf_counter() - t1) * 1000)
        f["inclusion_sql_p50_ms"] = percentile(sql_t, 50)
        f["inclusion_join_p50_ms"] = percentile(join_t, 50)
        compute_t = []
        fetched = [(i, nodes_sql(conn, inclusion_nodes(i, size))) for i, _, _ in incl]
        for i, nodes in fetched:
            t0 = time.perf_counter()
            inclusion_nodes(i, size)  # what the store computes before its query
            inclusion_proof(i, size, nodes)
            compute_t.append((time.perf_counter() - t0) * 1000)
        f["inclusion_compute_p50_ms"] = percentile(compute_t, 50)
        cons_compute = []
        for m, _, _ in cons:
            nodes = nodes_sql(conn, consistency_nodes(m, size))
            t0 = time.perf_counter()
            consistency_nodes(m, size)
            consistency_proof(m, size, nodes)
            cons_compute.append((time.perf_counter() - t0) * 1000)
        f["consistency_compute_p50_ms"] = percentile(cons_compute, 50)
        loop = asyncio.get_running_loop()  # one run_in_executor round trip doing nothing
        hop = []
        for _ in range(500):
            t0 = time.perf_counter()
            await loop.run_in_executor(None, int)
            hop.append((time.perf_counter() - t0) * 1000)
        f["executor_hop_p50_ms"] = percentile(hop, 50)

        # 3. correctness: every proof verifies against the store's root (not timed)
        bad = 0

        def failed(message: str) -> None:
            nonlocal bad
            bad += 1
            if bad <= 3:
                result.notes.append(message)
        indexes = [i for i, _, _ in incl]
        leaves = dict(conn.execute(
            f"SELECT idx, leaf FROM entries WHERE idx IN ({','.join('?' for _ in indexes)})",
            indexes).fetchall())
        verify_t = []
        for i, _, proof in incl:
            t0 = time.perf_counter()
            try:
                verify_inclusion(leaf_hash=leaf_hash(bytes(leaves[i])), index=i, size=size,
                                 proof=proof, root=root)
            except Exception as exc:  # report, do not stop the benchmark
                failed(f"INCLUSION PROOF FAILED for index {i} at size {size}: {exc!r}")
            verify_t.append(time.perf_counter() - t0)
        f["verify_inclusion_per_s"] = len(verify_t) / sum(verify_t)
        for m, _, proof in cons:
            try:
                old_root = root_from(m, nodes_sql(conn, frontier_nodes(m)))
                verify_consistency(old_size=m, new_size=size, old_root=old_root, new_root=root,
                                   proof=proof)
            except Exception as exc:
                failed(f"CONSISTENCY PROOF FAILED {m}->{size}: {exc!r}")
        f["proofs_failed"] = bad
    finally:
        conn.close()
        await store.close()


def measure_baseline(fixture: Fixture, seconds: float) -> tuple[float, float]:
    """(raw Ed25519 verify/s, hotline Envelope.verify/s) over the log's envelopes, one core."""
    items = fixture.sample
    next_item = itertools.cycle(items).__next__

    raw_sigs = [(it.public, base64.b64decode(it.sig["sig"]), it.signed) for it in items]
    pos = 0

    def raw() -> None:
        nonlocal pos
        public, sig, data = raw_sigs[pos]
        public.verify(sig, data)
        pos = pos + 1 if pos + 1 < len(raw_sigs) else 0

    pubkeys = {it.envelope.sender: PublicKey(it.public.public_bytes_raw()) for it in items}

    def hotline_verify() -> None:
        it = next_item()
        it.envelope.verify(pubkeys[it.envelope.sender], it.sig)

    return rate(raw, seconds), rate(hotline_verify, seconds / 2)


def audit_records(db: Path, limit: int, timer: list[float]) -> Iterator[EntryRecord]:
    """Records as ``GET /v1/log/entries`` gives them to an auditor who may read everything, read
    straight from SQLite in pages; the time spent making them is added to ``timer[0]``."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    try:
        cursor = conn.execute("SELECT idx, leaf FROM entries WHERE idx < ? ORDER BY idx", (limit,))
        while True:
            t0 = time.perf_counter()
            rows = cursor.fetchmany(PAGE)
            page = [EntryRecord(idx, b64encode(leaf), json.loads(leaf)) for idx, leaf in rows]
            timer[0] += time.perf_counter() - t0
            if not page:
                return
            yield from page
    finally:
        conn.close()


async def checkpoint_note(db: Path, fixture: Fixture, size: int, commit_batch: int) -> str:
    """The log's signed checkpoint of ``size``: the stored one, or a fresh signature over the
    store's root at that size (an earlier tree head, for a shorter audit)."""
    store = await open_store(db, batch=commit_batch)
    try:
        stored = [note for s, _, note in await store.checkpoints(since=size - 1) if s == size]
        if stored:
            return stored[0]
        return sign_checkpoint(Checkpoint(ORIGIN, size, await store.root_at(size)), fixture.log_key)
    finally:
        await store.close()


def measure_audit(db: Path, fixture: Fixture, note: str, count: int, args: argparse.Namespace,
                  result: RunResult, profiler: cProfile.Profile | None) -> None:
    f = result.figures
    raw0, env0 = measure_baseline(fixture, args.crypto_seconds)
    auditor = Auditor(log_key=fixture.log_verifier, authorities=fixture.authority_keys)
    made = [0.0]
    records = audit_records(db, count, made)
    cpu0, t0 = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    try:
        # size_hint 0: never a progress bar; no witness ran on this synthetic log
        checkpoint = CheckpointRecord(CheckpointNote(count, note), "the log")
        report = run_audit(auditor, checkpoints=[checkpoint],
                           entries=records, remembered=[], size_hint=0, require_witnesses=0)
    finally:
        if profiler is not None:
            profiler.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    raw1, env1 = measure_baseline(fixture, args.crypto_seconds)
    if report.size != count or report.readable != count:
        result.notes.append(f"audit covered {report.size} entries ({report.readable} readable), "
                            f"expected {count}")
    audit_only = wall - made[0]
    f["audit_entries"] = report.size
    f["audit_envelopes"] = report.envelopes
    f["audit_seconds"] = audit_only
    f["audit_per_s"] = report.size / audit_only
    f["audit_with_read_per_s"] = report.size / wall
    f["audit_with_read_seconds"] = wall
    f["record_us"] = made[0] / report.size * 1e6
    f["audit_cores"] = cpu / wall
    f["ed25519_before_per_s"], f["ed25519_after_per_s"] = raw0, raw1
    # the baseline: one free core, measured just before and just after (the samples taken during
    # the audit share the cores with its verification threads, so they read low)
    f["ed25519_verify_per_s"] = (raw0 + raw1) / 2
    f["envelope_verify_per_s"] = (env0 + env1) / 2
    f["audit_ratio"] = f["audit_per_s"] / f["ed25519_verify_per_s"]
    # per core used: the process's CPU time over the audit's wall time
    f["audit_ratio_per_core"] = f["audit_ratio"] / max(1.0, f["audit_cores"])


def server_home(folder: Path, fixture: Fixture) -> Path:
    """A server home for the fixture's log: its log key, its parties' authorities pinned, the
    shipped templates, no database yet."""
    home = folder / "home"
    (home / "keys").mkdir(parents=True)
    (home / "roster").mkdir()
    save_private_key(home / "keys" / "log.pem", fixture.log_key)
    shutil.copytree(shipped_dir(), home / "protocols")
    pinned = "".join(f'{p} = "{k.public_key.to_text()}"\n' for p, k in fixture.authorities.items())
    (home / "hotline.toml").write_text(
        f'[server]\nhost = "127.0.0.1"\nport = 0\norigin = "{ORIGIN}"\n\n[store]\n'
        f'path = "hotline.db"\n\n[roster]\ndir = "roster"\n\n[roster.authorities]\n{pinned}')
    return home


STARTUP_TIMEOUT = 1800.0  # seconds: start-up at 10^6 entries replays minutes of work (README)


async def time_to_listen(home: Path) -> float:
    """Seconds from ``hotline serve``'s spawn to its listening line (then it is stopped)."""
    child = Child("hotline server", [sys.executable, "-m", "hotline.cli", "--home", str(home),
                                     "serve"], HOTLINE_READY, home.parent / "server.log",
                  home.parent, ready_timeout=STARTUP_TIMEOUT)
    started = time.perf_counter()
    try:
        await child.start()
        return time.perf_counter() - started
    finally:
        code = await child.stop()
        if code not in (0, None):
            raise RuntimeError(f"hotline serve exited {code}: {child.tail()}")


async def measure_startup(db: Path, fixture: Fixture, args: argparse.Namespace,
                          result: RunResult) -> None:
    """``hotline serve`` from spawn to listening, on a copy of the log (its checkpoint file
    beside it, the page cache warm from the copy): its first start, with no saved obligations
    (it reads every message and ack of the log's last 3 days: all of it here), then a restart
    (it reads the obligations the first saved, and the log after them). The baseline: the same
    server on an empty log in the same home (interpreter, imports, keys, templates)."""
    folder = Path(tempfile.mkdtemp(prefix="hotline-bench-start-", dir=db.parent))
    try:
        home = server_home(folder, fixture)
        empty = await time_to_listen(home)
        remove_db(home / "hotline.db")
        checkpoint_path(home / "hotline.db").unlink(missing_ok=True)
        shutil.copyfile(db, home / "hotline.db")
        note = await checkpoint_note(db, fixture, args.entries, args.commit_batch)
        write_checkpoint_file(checkpoint_path(home / "hotline.db"),
                              SavedCheckpoint(args.entries, format_time(BASE_TIME), note))
        result.figures["startup_cold_s"] = await time_to_listen(home)
        result.figures["startup_s"] = await time_to_listen(home)
        result.figures["startup_empty_s"] = empty
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure_breakdown(db: Path, fixture: Fixture, count: int, rounds: int,
                      result: RunResult) -> None:
    """Each step ``Auditor.add_entry`` takes for an envelope record, stage by stage over ``count``
    records (µs per entry, median of ``rounds`` rounds)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    try:
        rows = conn.execute("SELECT idx, leaf FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?",
                            (fixture.roster_count, count)).fetchall()
    finally:
        conn.close()
    records = [{"index": idx, "leaf": b64encode(leaf), "entry": json.loads(leaf)} for idx, leaf in rows]
    n = len(records)
    if not n:
        return
    roster = Roster(fixture.authority_keys)
    for signed in fixture.documents:
        roster.add(signed)
    steps: dict[str, list[float]] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        steps.setdefault(name, []).append((time.perf_counter() - t0) / n * 1e6)
        return out

    def times(entries: list[EnvelopeEntry], envelopes: list[Envelope]) -> list[tuple[datetime, datetime]]:
        out = []
        for e, env in zip(entries, envelopes, strict=True):
            logged = parse_time(e.time, field="time")
            out.append((logged, env.created_at))
            env.created_at  # noqa: B018 - the auditor reads the property twice
        return out

    def roster_checks(entries: list[EnvelopeEntry], envelopes: list[Envelope],
                      moments: list[tuple[datetime, datetime]]) -> list[PublicKey]:
        out = []
        for e, env, (logged, created) in zip(entries, envelopes, moments, strict=True):
            key_id = str(e.sig.get("key"))
            member = roster.member_for_key(key_id, at=created)
            roster.member_for_key(key_id, at=logged)
            _ = (member.member, member.party) != (env.sender, e.party)
            roster.check_send(member, env.channel, env.kind, at=logged)
            out.append(roster.public_key(member.key_id))
        return out

    def hashing(leaves: list[bytes]) -> None:
        frontier = Frontier()
        checkpoints: dict[int, Any] = {}
        for leaf in leaves:
            frontier.append(leaf_hash(leaf))
            checkpoints.get(frontier.size)  # _check_root: a dict miss per entry

    def one_round() -> None:
        leaves = stage("leaf base64 decode (_b64)",
                       lambda: [base64.b64decode(r["leaf"], validate=True) for r in records])
        values = stage("strict JSON parse of the leaf (canonical.parse)",
                       lambda: [parse(leaf) for leaf in leaves])
        stage("record entry == parsed leaf (dict compare)",
              lambda: [r["entry"] != v for r, v in zip(records, values, strict=True)])
        entries = stage("entries.decode (typed validation + envelope JCS re-encoding)",
                        lambda: [_envelope_entry(v) for v in values])
        envelopes = [e.envelope for e in entries]
        moments = stage("time parsing (entry.time, envelope.created_at x2)",
                        lambda: times(entries, envelopes))
        keys = stage("roster checks (member_for_key x2, check_send)",
                     lambda: roster_checks(entries, envelopes, moments))
        raw_keys = {k.raw: Ed25519PublicKey.from_public_bytes(k.raw) for k in keys}
        prepared = [(raw_keys[k.raw], base64.b64decode(e.sig["sig"]),
                     domain_bytes(Domain.ENVELOPE, env.canonical))
                    for k, e, env in zip(keys, entries, envelopes, strict=True)]
        stage("Envelope.verify (sig parse, key load, domain bytes, Ed25519)",
              lambda: [env.verify(k, e.sig)
                       for env, k, e in zip(envelopes, keys, entries, strict=True)])
        stage("  of which Ed25519 verify itself (raw, key object reused)",
              lambda: [pub.verify(sig, data) for pub, sig, data in prepared])
        stage("Merkle: leaf_hash + Frontier.append", lambda: hashing(leaves))

    for _ in range(rounds):
        one_round()
    result.breakdown = {name: statistics.median(values) for name, values in steps.items()}


def _envelope_entry(value: Any) -> EnvelopeEntry:
    entry = decode_entry(value)
    assert isinstance(entry, EnvelopeEntry)
    return entry


# -- report --------------------------------------------------------------------------------------



def median_breakdown(runs: list[RunResult]) -> dict[str, float]:
    keys = list(dict.fromkeys(k for r in runs for k in r.breakdown))
    return {k: statistics.median(r.breakdown[k] for r in runs if k in r.breakdown) for k in keys}




def openssl_version() -> str:
    with contextlib.suppress(Exception):
        from cryptography.hazmat.backends.openssl.backend import backend
        return str(backend.openssl_version_text())
    return "?"


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} ms"


def fmt_n(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.0f}{unit}"


def render(args: argparse.Namespace, info: BuildInfo, med: dict[str, float],
           breakdown: dict[str, float], runs: list[RunResult], machine: dict[str, Any],
           command: str, db: Path) -> str:
    g = med.get
    size = int(g("size", args.entries))

    def ms_ratio(key: str) -> str:
        value = g(key)
        return "n/a" if value is None else f"{value / AIM_PROOF_MS:.2f}×"

    build_text = ((f"{info.rate:,.0f} entries/s" if info.rate else "n/a (nothing left to build)")
                  + (" (cached build" + (f", {info.when}" if info.when else "") + ")"
                     if info.cached else ""))
    rows = [
        (f"inclusion proof at size {size:,}, p50", fmt_ms(g("inclusion_p50_ms")),
         f"aim ≤ {AIM_PROOF_MS:g} ms", ms_ratio("inclusion_p50_ms")),
        (f"inclusion proof at size {size:,}, p99", fmt_ms(g("inclusion_p99_ms")),
         f"aim ≤ {AIM_PROOF_MS:g} ms", ms_ratio("inclusion_p99_ms")),
        (f"consistency proof m→{size:,}, p50", fmt_ms(g("consistency_p50_ms")),
         f"aim ≤ {AIM_PROOF_MS:g} ms", ms_ratio("consistency_p50_ms")),
        (f"consistency proof m→{size:,}, p99", fmt_ms(g("consistency_p99_ms")),
         f"aim ≤ {AIM_PROOF_MS:g} ms", ms_ratio("consistency_p99_ms")),
        (f"`audit verify` entries/s ({fmt_n(g('audit_entries'))} entries, auditor only)",
         fmt_n(g("audit_per_s"), "/s"),
         f"raw Ed25519 verify {fmt_n(g('ed25519_verify_per_s'), '/s')} (1 core)",
         f"{g('audit_ratio', 0):.2f}× (aim ≥ {AIM_AUDIT_RATIO:.2f})"),
        ("`audit verify` entries/s incl. SQLite read + record decode",
         fmt_n(g("audit_with_read_per_s"), "/s"),
         f"raw Ed25519 verify {fmt_n(g('ed25519_verify_per_s'), '/s')}",
         f"{g('audit_with_read_per_s', 0) / g('ed25519_verify_per_s', 1):.2f}×"),
        (f"build: append {size:,} entries (group commit {args.commit_batch})", build_text,
         "—", "—"),
    ]
    if "startup_s" in med:
        rows.append((f"`hotline serve` restart at {size:,} entries (spawn to listening)",
                     f"{g('startup_s'):.2f} s", f"empty log {g('startup_empty_s'):.2f} s",
                     f"{g('startup_s') / g('startup_empty_s', 1):.2f}× (aim ≤ 2 s)"))
        rows.append((f"`hotline serve` first start at {size:,} entries, nothing saved",
                     f"{g('startup_cold_s'):.2f} s", f"empty log {g('startup_empty_s'):.2f} s",
                     f"{g('startup_cold_s') / g('startup_empty_s', 1):.2f}×"))
    out = [f"# hotline transparency-log benchmark — {len(runs)} run(s), medians", "",
           "| metric | value | baseline | ratio |", "|---|---|---|---|"]
    out += [f"| {m} | {v} | {b} | {r} |" for m, v, b, r in rows]
    out += ["", "Context (medians):", "", "| figure | value |", "|---|---|",
            f"| inclusion proof: max / mean hashes | {fmt_ms(g('inclusion_max_ms'))} / "
            f"{g('inclusion_proof_hashes', 0):.1f} |",
            f"| proofs timed (inclusion / consistency) | {fmt_n(g('inclusion_samples'))} / "
            f"{fmt_n(g('consistency_samples'))} |",
            f"| inclusion proof split: the store's SQL query alone p50 / computation alone p50 / "
            f"empty executor round trip p50 | {fmt_ms(g('inclusion_sql_p50_ms'))} / "
            f"{fmt_ms(g('inclusion_compute_p50_ms'))} / {fmt_ms(g('executor_hop_p50_ms'))} |",
            f"| reference: the same nodes by a row-value `IN (VALUES …)` (full scan; the old query) p50 | "
            f"{fmt_ms(g('inclusion_join_p50_ms'))} |",
            f"| consistency proof: computation alone p50 / max | "
            f"{fmt_ms(g('consistency_compute_p50_ms'))} / {fmt_ms(g('consistency_max_ms'))} |",
            f"| every proof checked against the root (`verify_inclusion` / `verify_consistency`): "
            f"failures | {fmt_n(g('proofs_failed'))} |",
            f"| `verify_inclusion`/s (client side) | {fmt_n(g('verify_inclusion_per_s'))} |",
            f"| audit: auditor time / with reading | {g('audit_seconds', 0):.1f} s / "
            f"{g('audit_with_read_seconds', 0):.1f} s |",
            f"| audit: making one record (SQLite page read, base64, json.loads) | "
            f"{g('record_us', 0):.1f} µs |",
            f"| audit: CPU cores used (process CPU ÷ wall) | {g('audit_cores', 0):.2f} |",
            f"| audit ÷ Ed25519 per core used | {g('audit_ratio_per_core', 0):.2f}× |",
            f"| hotline's own cost per entry beyond the Ed25519 verify (audit µs/entry − 1e6 ÷ "
            f"Ed25519/s); the aim allows ≤ {1 / AIM_AUDIT_RATIO - 1:.2f} × one verify | "
            f"{1e6 / g('audit_per_s', 1e9) - 1e6 / g('ed25519_verify_per_s', 1e9):.1f} µs vs "
            f"{(1 / AIM_AUDIT_RATIO - 1) * 1e6 / g('ed25519_verify_per_s', 1e9):.1f} µs allowed |",
            f"| Ed25519 verify/s just before / just after the audit (the baseline is their mean) | "
            f"{fmt_n(g('ed25519_before_per_s'))} / {fmt_n(g('ed25519_after_per_s'))} |",
            f"| hotline `Envelope.verify`/s (sig parse + key load + Ed25519) | "
            f"{fmt_n(g('envelope_verify_per_s'))} |",
            f"| database | {db_bytes(db) / 1e6:,.0f} MB ({db}) |"]
    if breakdown:
        audit_us = 1e6 / g("audit_per_s", 1e9)
        listed = {k: v for k, v in breakdown.items() if not k.startswith("  ")}
        total = sum(listed.values())
        out += ["", f"Auditor cost per envelope entry, stage by stage over "
                f"{args.breakdown_entries:,} records, median of {args.breakdown_rounds} rounds "
                f"(µs; measured audit: {audit_us:.1f} µs/entry):",
                "", "| step | µs/entry | share of the audit |", "|---|---|---|"]
        for step, us in breakdown.items():  # in the order the auditor takes them
            out.append(f"| {step.strip() if not step.startswith('  ') else '↳ ' + step.strip()} | "
                       f"{us:.1f} | {100 * us / audit_us:.0f} % |")
        out.append(f"| sum of the steps / rest (calls, records, checks) | {total:.1f} / "
                   f"{audit_us - total:.1f} | {100 * total / audit_us:.0f} % / "
                   f"{100 * (audit_us - total) / audit_us:.0f} % |")
    if len(runs) > 1:
        def each(key: str, spec: str) -> str:
            return " / ".join(format(r.figures[key], spec) if key in r.figures else "n/a" for r in runs)
        out += ["", f"Per run: inclusion p50 ms {each('inclusion_p50_ms', '.3f')}; audit/s "
                f"{each('audit_per_s', ',.0f')}; Ed25519/s {each('ed25519_verify_per_s', ',.0f')}; "
                f"ratio {each('audit_ratio', '.2f')}."]
    p99 = max(g("inclusion_p99_ms", 1e9), g("consistency_p99_ms", 1e9))
    out += ["", "Aim: proofs ≤ 1 ms each at 10^6 entries (p99 of both kinds "
            f"{p99:.3f} ms): {'met' if p99 <= AIM_PROOF_MS else 'NOT met'}"
            + ("" if size >= 1_000_000 else f" (measured at {size:,} entries only)")
            + f"; audit ≥ {AIM_AUDIT_RATIO:.0%} of raw Ed25519 per core used "
            f"({g('audit_ratio_per_core', 0):.0%}): "
            f"{'met' if g('audit_ratio_per_core', 0) >= AIM_AUDIT_RATIO else 'NOT met'}."]
    out += ["", f"Command: `{command}`",
            f"Parameters: entries={args.entries:,} (roster {runs[0].figures.get('roster', 0):.0f} + "
            f"envelopes, each distinct and signed, 1 in 10 an agent's heartbeat, messages of "
            f"{args.text_bytes} characters), commit batch {args.commit_batch}, "
            f"enqueue chunk {args.enqueue_chunk:,}, proof samples {args.proof_samples:,} "
            f"(+{args.proof_warmup} warm-up) per kind, audited entries "
            f"{fmt_n(g('audit_entries'))}, breakdown {args.breakdown_entries:,} records, "
            f"Ed25519 baseline measured for {args.crypto_seconds:g} s before and after the "
            f"audit, runs={len(runs)}.",
            "Method: proofs are `await Store.inclusion_proof / consistency_proof` on the real "
            "store (reader thread, page cache warm after the warm-up); the audit is "
            "`run_audit` (the loop of `hotline audit verify`) fed with records read straight from "
            "SQLite (no HTTP), one checkpoint signed by the log key; ratio = audit entries/s "
            "(auditor time only, signatures checked in threads on every core) ÷ raw Ed25519 "
            "verify/s of one core in the same process.",
            (f"Build: {info.entries - info.resumed_from:,} entries in {info.seconds:.1f} s "
             f"({info.rate:,.0f}/s, synchronous=FULL"
             + (f", resumed at {info.resumed_from:,}" if info.resumed_from else "")
             + (f"; signing took {info.sign_cpu_seconds:.0f} CPU s in worker processes, "
                "overlapped" if info.sign_cpu_seconds else "")
             + ")" + (" — cached, not rebuilt this time" if info.cached else "") + "."),
            *footer(machine, runs)]
    return "\n".join(out)


def print_profile(profiler: cProfile.Profile, path: Path) -> None:
    profiler.dump_stats(path)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(20)
    progress(f"audit profile (cProfile, slower than the timed runs) written to {path}; "
             f"top functions by own time:\n{text.getvalue()}")


# -- main ----------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark hotline's transparency log: proof generation at N entries and "
                    "`audit verify` entries/s next to raw Ed25519 verify/s.")
    parser.add_argument("--entries", type=int, default=1_000_000,
                        help="log size (default 1,000,000)")
    parser.add_argument("--sign-workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="processes signing envelopes during a build (default: CPUs - 1)")
    parser.add_argument("--text-bytes", type=int, default=200,
                        help="characters of message text (default 200)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="the built database, kept between runs (default "
                             ".bench/tlog-ENTRIES.db under the repository)")
    parser.add_argument("--no-cache", action="store_true",
                        help="build in a temporary folder and remove it at the end")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    parser.add_argument("--build-only", action="store_true",
                        help="build (or check) the cached database, measure nothing")
    parser.add_argument("--commit-batch", type=int, default=512,
                        help="Store group-commit batch (default 512, the server's default)")
    parser.add_argument("--enqueue-chunk", type=int, default=16_384,
                        help="entries enqueued before waiting for their commits (default 16,384)")
    parser.add_argument("--proof-samples", type=int, default=2000,
                        help="timed proofs of each kind (default 2000)")
    parser.add_argument("--proof-warmup", type=int, default=200,
                        help="untimed proofs first, per kind (default 200)")
    parser.add_argument("--proof-budget", type=float, default=30.0,
                        help="seconds at most per kind of proof, warm-up included; at least 10 "
                             "are timed (default 30)")
    parser.add_argument("--audit-entries", type=int, default=None,
                        help=f"audit the first N entries (default: all, at most "
                             f"{DEFAULT_AUDIT_CAP:,}: auditing 10^6 takes ~6 min on a 2-core VM)")
    parser.add_argument("--breakdown-entries", type=int, default=10_000,
                        help="envelope records timed stage by stage (default 10,000; 0: skip)")
    parser.add_argument("--breakdown-rounds", type=int, default=3,
                        help="stage-by-stage rounds, median reported (default 3)")
    parser.add_argument("--crypto-seconds", type=float, default=1.0,
                        help="seconds per raw Ed25519 baseline, before and after the audit "
                             "(default 1.0)")
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat the measurements K times, report medians (default 1)")
    parser.add_argument("--no-startup", dest="startup", action="store_false",
                        help="skip timing `hotline serve`'s start-up on a copy of the log")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="also run the audit once under cProfile and write pstats to FILE")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    for name in ("entries", "sign_workers", "text_bytes", "commit_batch", "enqueue_chunk",
                 "proof_samples", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.entries < 20:
        parser.error("--entries must be at least 20 (the roster takes the first few)")
    if (args.proof_warmup < 0 or args.breakdown_entries < 0 or args.crypto_seconds <= 0
            or args.proof_budget <= 0):
        parser.error("--proof-warmup and --breakdown-entries must be >= 0, --crypto-seconds and "
                     "--proof-budget > 0")
    if args.audit_entries is not None and not 1 <= args.audit_entries <= args.entries:
        parser.error("--audit-entries must be from 1 to --entries")
    return args


async def amain(args: argparse.Namespace, command: str) -> int:
    load_before = os.getloadavg()[0]
    tmp: Path | None = None
    runs: list[RunResult] = []
    try:
        if args.no_cache:
            tmp = Path(tempfile.mkdtemp(prefix="hotline-bench-tlog-"))
            db = tmp / "tlog.db"
        else:
            db = (args.cache or ROOT / ".bench" / f"tlog-{args.entries}.db").resolve()
            if args.rebuild:
                remove_db(db)
                remove_db(db.with_name(db.name + ".partial"))
        fixture = Fixture(text_bytes=args.text_bytes)
        progress(f"{'building' if not db.exists() else 'checking'} {db}")
        info = await build(db, args)
        if not info.cached:
            progress(f"built {info.entries - info.resumed_from:,} entries in {info.seconds:.1f} s "
                     f"({info.rate:,.0f}/s; signing took {info.sign_cpu_seconds:.0f} CPU s in "
                     f"{args.sign_workers} worker process(es))")
        if args.build_only:
            print(f"{db}: {args.entries:,} entries, built at {info.rate:,.0f} entries/s"
                  + (" (cached)" if info.cached else ""))
            return 0
        count = args.audit_entries or min(args.entries, DEFAULT_AUDIT_CAP)
        note = await checkpoint_note(db, fixture, count, args.commit_batch)
        verify_checkpoint(note, fixture.log_verifier)  # a bad cache fails here, clearly
        started = time.perf_counter()
        for k in range(1, args.runs + 1):
            result = RunResult()
            result.figures["roster"] = fixture.roster_count
            await measure_proofs(db, args, k, result)
            progress(f"run {k}/{args.runs}: inclusion p50 {result.figures['inclusion_p50_ms']:.3f} ms, "
                     f"p99 {result.figures['inclusion_p99_ms']:.3f} ms; consistency p50 "
                     f"{result.figures['consistency_p50_ms']:.3f} ms; auditing {count:,} entries…")
            measure_audit(db, fixture, note, count, args, result, None)
            progress(f"run {k}/{args.runs}: audit {result.figures['audit_per_s']:,.0f} entries/s, "
                     f"Ed25519 {result.figures['ed25519_verify_per_s']:,.0f}/s, ratio "
                     f"{result.figures['audit_ratio']:.2f} "
                     f"({time.perf_counter() - started:.0f} s elapsed)")
            if args.breakdown_entries:
                measure_breakdown(db, fixture, args.breakdown_entries, args.breakdown_rounds, result)
            if args.startup and k == 1:  # one copy of the log, one start-up: it is slow at 10^6
                await measure_startup(db, fixture, args, result)
                progress(f"run {k}/{args.runs}: restart {result.figures['startup_s']:.2f} s, first "
                         f"start {result.figures['startup_cold_s']:.2f} s (empty log "
                         f"{result.figures['startup_empty_s']:.2f} s)")
            runs.append(result)
        if args.profile is not None:
            profiler = cProfile.Profile()
            profiled = RunResult()
            measure_audit(db, fixture, note, min(count, 100_000), args, profiled, profiler)
            print_profile(profiler, args.profile)
        if args.audit_entries is None and count < args.entries:
            runs[0].notes.append(f"the audit covered the first {count:,} of {args.entries:,} entries "
                                 f"(the default cap; `--audit-entries {args.entries}` audits all, "
                                 "which takes several minutes)")
        med = median_figures(runs)
        breakdown = median_breakdown(runs)
        machine = machine_info(db.parent, ("cryptography", "sqlite-utils", "rfc8785"))
        machine["versions"]["openssl"] = openssl_version()
        machine.update(load_before=load_before, load_after=os.getloadavg()[0])
        if args.json:
            print(json.dumps({"params": {k: str(v) if isinstance(v, Path) else v
                                         for k, v in vars(args).items()},
                              "build": vars(info), "median": med, "breakdown_us": breakdown,
                              "runs": [{"figures": r.figures, "notes": r.notes,
                                        "breakdown_us": r.breakdown} for r in runs],
                              "machine": machine, "command": command, "database": str(db),
                              "database_bytes": db_bytes(db),
                              "aim": {"proof_ms": AIM_PROOF_MS, "audit_ratio": AIM_AUDIT_RATIO,
                                      "proof_met": max(med["inclusion_p99_ms"],
                                                       med["consistency_p99_ms"]) <= AIM_PROOF_MS,
                                      "audit_met": med["audit_ratio_per_core"] >= AIM_AUDIT_RATIO}},
                             indent=2))
        else:
            print(render(args, info, med, breakdown, runs, machine, command, db))
        return 0
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench("bench_tlog", amain, args, argv)


if __name__ == "__main__":
    sys.exit(main())
