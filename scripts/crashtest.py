#!/usr/bin/env python3
"""Crash harness: SIGKILL the real server under load, restart it, and check that nothing it
accepted was lost or logged twice and that the log it publishes stays one consistent history.

    python scripts/crashtest.py --rounds 20 [--seed 1] [--keep DIR]

A temporary demo deployment (``hotline init``: north, south, mediator), with a second channel
agreed by all three authorities. Each round:

1. ``hotline serve`` runs as a child process on an OS-chosen port, with one crash point armed
   (``hotline.crashpoints``: ``HOTLINE_CRASHPOINTS=point=N``, N drawn from the seed), or none;
   the rounds take every point in turn, then a round of no point (a purely random kill time).
2. alice, bob and carol (real ``hotline.client`` clients, real keys) send humanitarian notices
   on both channels, several submissions in flight each (pipelined), while the checkpoints the
   server pushes and those ``/v1/log/checkpoint`` serves are collected. Once it is dead, its
   checkpoint file must hold a checkpoint at least as large as any of them (a checkpoint is
   written there before it is published).
3. The server dies: SIGKILLed by its armed crash point, or by the harness at a random moment
   (also when the armed point was not reached within ``--armed-wait`` seconds).
4. It is started again (nothing armed) and checked:
   - the unanswered submissions (cut by the kill) are resent, about half of them, by the same
     sender, byte for byte; a few accepted ones too, which must be answered ``duplicate`` with
     their first index; and one logged id with other content, which must be refused
     (``envelope.id_conflict``);
   - every id answered ``accepted`` is in the log exactly once, at the index it was given; an
     unanswered one at most once; the indexes are 0..size-1 without a gap (read through the log
     API, as the auditor audrey);
   - the three witnesses cosign (their state is kept across rounds: each checks consistency with
     what it cosigned before), then ``hotline audit verify --as audrey`` must pass (its state too
     is kept across rounds);
   - every checkpoint seen so far (pushed, polled, and the log's whole ``/v1/log/checkpoints``
     history), each with a verified log signature, is proven consistent with the current one
     (``hotline.tlog.verify_consistency`` on the log API's consistency proofs).
   At the end every checkpoint ever seen is proven consistent with the final one.

Exit status 0 only if every check held in every round; 1 otherwise (the failures are listed).
A SIGKILL of a process loses nothing the kernel already has: this shows the server's own
ordering (commit before ``accepted``, checkpoint file before publication, start-up checks), not
what a power cut does to a disk that lies about fsync.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from websockets.exceptions import ConnectionClosed

import hotline
from hotline.agent.witness import witness_round
from hotline.canonical import parse
from hotline.client.connection import Client
from hotline.client.logapi import LogClient, http_base
from hotline.client.profile import Profile
from hotline.crashpoints import POINTS
from hotline.deployment import CHANNEL, init_deployment
from hotline.envelope import Envelope, new_envelope_id
from hotline.errorcodes import Code
from hotline.errors import HotlineError
from hotline.keyfiles import load_private_key
from hotline.keys import Domain
from hotline.store.checkpointfile import checkpoint_path, read_checkpoint_file
from hotline.tlog import EMPTY_ROOT, NoteVerifier, verify_checkpoint, verify_consistency
from hotline.wire.frames import Accepted

SENDERS = ("alice", "bob", "carol")
WITNESSES = ("north-agent", "south-agent", "mediator-agent")
AUDITOR = "audrey"
SECOND = f"{CHANNEL}-relief"
CHANNELS = (CHANNEL, SECOND)
TEMPLATE = "humanitarian-notice"  # never rate-limited by its template: load is not refused
RANDOM = "random"  # a round with no point armed: killed at a random moment
# How many passes an armed point waits for (drawn in this range): commits are many, checkpoints
# fewer (one per burst, every CHECKPOINT_DELAY seconds under load).
PASSES = {"commit.before": (1, 40), "commit.after": (1, 40), "checkpoint.signed": (1, 6),
          "checkpoint.filed": (1, 6), "checkpoint.stored": (1, 6)}
CHECKPOINT_DELAY = "0.1"


class Failure(Exception):
    """A check that did not hold (the harness goes on and reports every one)."""


@dataclass
class Sent:
    envelope: Envelope
    sender: str
    status: str = "unanswered"  # "accepted" | "unanswered" | "refused"
    index: int | None = None


@dataclass
class Summary:
    rounds: int = 0
    kills: Counter[str] = field(default_factory=Counter)  # crash point (or random) -> kills
    sent: int = 0
    accepted: int = 0
    unanswered: int = 0  # never answered, never resent: in the log at most once
    resent: int = 0
    resent_logged: int = 0  # resent unanswered ones the log already held (answered duplicate)
    lost: int = 0
    duplicated: int = 0
    audits: int = 0
    audits_clean: int = 0
    checkpoints: int = 0  # distinct checkpoints seen, each proven consistent with the final one
    checkpoint_sources: Counter[str] = field(default_factory=Counter)
    log_size: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and self.lost == 0 and self.duplicated == 0

    def to_json(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "kills": dict(self.kills), "sent": self.sent,
                "accepted": self.accepted, "unanswered": self.unanswered, "resent": self.resent,
                "resent_logged": self.resent_logged, "lost": self.lost,
                "duplicated": self.duplicated, "audits": self.audits,
                "audits_clean": self.audits_clean, "checkpoints": self.checkpoints,
                "checkpoint_sources": dict(self.checkpoint_sources), "log_size": self.log_size,
                "failures": self.failures, "ok": self.ok}


# -- the deployment and the server -------------------------------------------------------------

def make_deployment(home: Path) -> None:
    """``hotline init``'s demo deployment plus a second channel, agreed by every authority."""
    init_deployment(home, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin="crashtest.local", force=False)
    signed = parse((home / "roster" / f"90-agreement-{CHANNEL}-v1.json").read_bytes())
    document = {**signed["document"], "channel": SECOND}
    sigs = [load_private_key(home / "keys" / f"authority-{party['id']}.pem", None)
            .sign(domain=Domain.AGREEMENT, obj=document) for party in document["parties"]]
    (home / "roster" / f"91-agreement-{SECOND}-v1.json").write_text(
        json.dumps({"document": document, "sigs": sigs}))


class Server:
    """``hotline serve`` as a child process (its stderr appended to HOME/server.log)."""

    def __init__(self, home: Path) -> None:
        self.home, self.log = home, home / "server.log"
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.killed_by_us = False

    async def start(self, crashpoints: str = "") -> bool:
        """Start it; True once it listens, False if it died first (an armed point fired)."""
        env = {**os.environ, "HOTLINE_SERVER_PORT": "0", "HOTLINE_LOG_LEVEL": "warning",
               "HOTLINE_TLOG_CHECKPOINT_DELAY": CHECKPOINT_DELAY, "HOTLINE_CRASHPOINTS": crashpoints,
               # the child runs the very code this harness imports
               "PYTHONPATH": os.pathsep.join(filter(None, (str(Path(hotline.__file__).parents[1]),
                                                           os.environ.get("PYTHONPATH"))))}
        self.killed_by_us = False
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", "--home", str(self.home), "serve"],
                stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if "listening on " not in line:
            await self.wait(30)
            return False
        self.url = line.rsplit(" ", 1)[1].strip()
        return True

    @property
    def base(self) -> str:
        return http_base(self.url)

    async def wait(self, timeout: float) -> int | None:
        """Its exit status once it exits within ``timeout`` seconds, else None (still running)."""
        assert self.proc is not None
        try:
            return await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            return None

    async def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.killed_by_us = True
            self.proc.send_signal(signal.SIGKILL)
        await self.reap()

    async def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it does not end within 15 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            if await self.wait(15) is None:
                self.proc.kill()
        await self.reap()

    async def reap(self) -> None:
        if self.proc is not None:
            await asyncio.to_thread(self.proc.wait)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self.proc = None


def fired_points(log: Path, offset: int) -> list[str]:
    """The crash points the server's stderr says fired after byte ``offset``."""
    found = []
    with log.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            if b'"crashpoint.fired"' in line:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    found.append(str(json.loads(line)["point"]))
    return found


# -- checkpoints -------------------------------------------------------------------------------

class Checkpoints:
    """Every checkpoint seen (signature verified), and which are proven to be prefixes of the
    current one: each check proves the new ones and the previous head against the new head, so
    by induction every checkpoint seen is a prefix of it."""

    def __init__(self, verifier: NoteVerifier, summary: Summary) -> None:
        self.verifier, self.summary = verifier, summary
        self.seen: dict[tuple[int, bytes], str] = {}  # (size, root) -> where first seen
        self.by_source: dict[str, set[tuple[int, bytes]]] = {}  # "pushed", "polled", "history"
        self.proven: set[tuple[int, bytes]] = set()
        self.head: tuple[int, bytes] | None = None
        self.published = 0  # the largest size pushed to a member or served by the log API

    def add(self, note: str, source: str) -> None:
        try:
            checkpoint = verify_checkpoint(note, self.verifier)
        except HotlineError as exc:
            raise Failure(f"a checkpoint from {source} does not verify: {exc.code}") from exc
        key = (checkpoint.size, checkpoint.root_hash)
        if source != "history":
            self.published = max(self.published, checkpoint.size)
        self.seen.setdefault(key, source)
        if key not in self.by_source.setdefault(source, set()):
            self.by_source[source].add(key)
            self.summary.checkpoint_sources[source] += 1

    def prove(self, log: LogClient, head: tuple[int, bytes], *, everything: bool = False) -> int:
        """Prove checkpoints consistent with ``head`` (all of them with ``everything``); how many.

        Raises:
            Failure: naming a checkpoint that is not a prefix of ``head``.
        """
        todo = set(self.seen) if everything else set(self.seen) - self.proven
        if self.head is not None and not everything:
            todo.add(self.head)
        for size, root in sorted(todo):
            where = self.seen.get((size, root), "the previous head")
            if size > head[0] or (size == head[0] and root != head[1]):
                raise Failure(f"checkpoint of size {size} (from {where}) is not a prefix of the "
                              f"current checkpoint of size {head[0]}: the log went back or forked")
            if size == 0:
                if root != EMPTY_ROOT:
                    raise Failure(f"an empty checkpoint (from {where}) with a non-empty root")
            elif size < head[0]:
                try:
                    verify_consistency(old_size=size, new_size=head[0], old_root=root,
                                       new_root=head[1], proof=log.consistency(size, head[0]))
                except HotlineError as exc:
                    raise Failure(f"checkpoint of size {size} (from {where}) is not consistent "
                                  f"with the checkpoint of size {head[0]}: {exc.code}: "
                                  f"{exc.message}") from exc
        self.proven |= todo | {head}
        self.head = head
        return len(todo)


async def collect_checkpoints(server: Server, clients: list[Client], book: Checkpoints,
                              stop: asyncio.Event) -> None:
    """Until ``stop``: the checkpoints pushed to the clients and those the log API serves."""
    log = LogClient(server.base, timeout=2.0)
    while not stop.is_set():
        for client in clients:
            if client.checkpoint:
                book.add(client.checkpoint, "pushed")
        try:
            book.add(await asyncio.to_thread(log.checkpoint), "polled")
        except HotlineError:
            pass  # the server is down (killed): nothing to poll
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


# -- senders -----------------------------------------------------------------------------------

async def connect(server: Server, home: Path, name: str) -> Client | None:
    profile = Profile.load(home, name)
    client = Client.for_profile(profile)
    try:
        await client.connect(server.url, open_timeout=5.0)
    except (HotlineError, OSError, ConnectionClosed):
        return None
    return client


async def submit(client: Client, sent: Sent) -> Accepted | HotlineError | None:
    """Send one envelope; its acceptance, its refusal, or None if the connection was cut first."""
    try:
        return await client.submit_envelope(sent.envelope)
    except HotlineError as exc:
        return None if exc.code == Code.CONNECT_FAILED else exc
    except (ConnectionClosed, OSError):
        return None


async def send_until_cut(client: Client, name: str, ledger: dict[str, Sent], rng: random.Random,
                         round_no: int, window: int) -> None:
    """``window`` submissions in flight until the server goes away."""
    counter = iter(range(1 << 30))

    async def lane() -> None:
        while not client.closed.done():
            n = next(counter)
            envelope = client.envelope(
                channel=CHANNELS[n % len(CHANNELS)], template=TEMPLATE,
                body={"category": "humanitarian_movement", "nature": "notification",
                      "location": {"name": "Crossing 4"},
                      "details": f"crashtest round {round_no}, {name} #{n}"},
                id=new_envelope_id(rng.randbytes(16)))
            sent = ledger[envelope.id] = Sent(envelope, name)  # in the outbox before it is sent
            answer = await submit(client, sent)
            if answer is None:
                return
            record(sent, answer)

    await asyncio.gather(*(lane() for _ in range(window)))


def record(sent: Sent, answer: Accepted | HotlineError) -> None:
    if isinstance(answer, Accepted):
        sent.status, sent.index = "accepted", answer.index
    else:
        sent.status = "refused"
        raise Failure(f"{sent.sender}'s envelope {sent.envelope.id} was refused: "
                      f"{answer.code}: {answer.message}")


# -- the checks after a restart ----------------------------------------------------------------

async def resend(server: Server, home: Path, ledger: dict[str, Sent], rng: random.Random,
                 summary: Summary) -> list[str]:
    """Resend about half the unanswered envelopes and a few accepted ones, byte for byte, and one
    logged id with other content; the failures."""
    failures = []
    for name in SENDERS:
        client = await connect(server, home, name)
        if client is None:
            return [f"{name} cannot connect to the restarted server"]
        try:
            mine = [s for s in ledger.values() if s.sender == name]
            unanswered = [s for s in mine if s.status == "unanswered" and rng.random() < 0.5]
            accepted = [s for s in mine if s.status == "accepted"]
            again = rng.sample(accepted, min(3, len(accepted)))
            answers = await asyncio.gather(*(submit(client, s) for s in (*unanswered, *again)))
            for sent, answer in zip((*unanswered, *again), answers, strict=True):
                if answer is None:
                    failures.append(f"{name}'s resend of {sent.envelope.id} got no answer")
                elif sent.status == "accepted":
                    if not isinstance(answer, Accepted) or (
                            answer.id, answer.index, answer.is_duplicate) != (
                            sent.envelope.id, sent.index, True):
                        failures.append(f"{name}'s resend of accepted {sent.envelope.id} (index "
                                        f"{sent.index}) was answered {answer}")
                else:
                    summary.resent += 1
                    summary.resent_logged += isinstance(answer, Accepted) and answer.is_duplicate
                    try:
                        record(sent, answer)
                    except Failure as exc:
                        failures.append(str(exc))
            if again:
                failures += await id_conflict(client, again[0])
        finally:
            await client.close()
    return failures


async def id_conflict(client: Client, logged: Sent) -> list[str]:
    """An envelope under a logged id but with other content must be refused, not logged."""
    other = Envelope.from_json({**logged.envelope.to_json(),
                                "body": {**logged.envelope.body, "details": "other content"}})
    answer = await submit(client, Sent(other, logged.sender))
    if not isinstance(answer, HotlineError) or answer.code != Code.ENVELOPE_ID_CONFLICT:
        return [f"another content under the logged id {logged.envelope.id} was answered {answer}"]
    return []


def settled_head(server: Server, book: Checkpoints) -> tuple[int, bytes]:
    """The log's checkpoint once it covers every committed entry (``/healthz`` log_size)."""
    log = LogClient(server.base)
    deadline = time.monotonic() + 30
    while True:
        checkpoint = verify_checkpoint(log.checkpoint(), book.verifier)
        with urllib.request.urlopen(f"{server.base}/healthz", timeout=5) as answer:
            size = json.load(answer)["log_size"]
        if checkpoint.size == size:
            return checkpoint.size, checkpoint.root_hash
        if time.monotonic() > deadline:
            raise Failure(f"no checkpoint covers the log's {size} entries after 30 s "
                          f"(largest: {checkpoint.size})")
        time.sleep(0.05)  # the checkpointer signs within CHECKPOINT_DELAY of a commit


def account(home: Path, server: Server, size: int, ledger: dict[str, Sent], summary: Summary) -> list[str]:
    """Read the whole log as the auditor: indexes 0..size-1, each accepted id once at its index,
    each unanswered one at most once."""
    profile = Profile.load(home, AUDITOR)
    log = LogClient(server.base, key=profile.signing_key(), origin=profile.origin)
    where: dict[str, list[int]] = {}
    failures = []
    for expected, record in enumerate(log.entries(size)):
        if record.index != expected:
            return [f"the log's entries go from index {expected - 1} to {record.index}: not contiguous"]
        entry = record.entry
        if entry is not None and entry.get("kind") == "envelope":
            where.setdefault(entry["envelope"]["id"], []).append(record.index)
    summary.lost = summary.duplicated = 0
    for sent in ledger.values():
        found = where.get(sent.envelope.id, [])
        if len(found) > 1:
            summary.duplicated += 1
            failures.append(f"envelope {sent.envelope.id} is logged {len(found)} times: {found}")
        elif sent.status == "accepted" and found != [sent.index]:
            summary.lost += 1
            failures.append(f"accepted envelope {sent.envelope.id} (index {sent.index}) is "
                            f"{'at ' + str(found) if found else 'not in the log'}")
    return failures


def cosign_and_audit(home: Path, server: Server) -> tuple[bool, str]:
    """Every witness cosigns (keeping its state), then ``hotline audit verify`` as audrey."""
    log = LogClient(server.base)
    for name in WITNESSES:
        profile = Profile.load(home, name)
        assert profile.log_key is not None
        witness_round(log, state_path=home / "state" / f"{name}.witness.json",
                      log_key=profile.log_key, name=name, key=profile.signing_key(),
                      timestamp=int(time.time()))
    done = subprocess.run([sys.executable, "-m", "hotline.cli", "--home", str(home), "audit",
                           "verify", "--as", AUDITOR, "--server", server.url],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(hotline.__file__).parents[1])})
    said = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode == 0, said[0] if said else f"exit {done.returncode}"


async def check(server: Server, home: Path, ledger: dict[str, Sent], book: Checkpoints,
                rng: random.Random, summary: Summary, *, final: bool = False) -> str:
    """Every check on the restarted server; a one-line account (failures go to ``summary``)."""
    failures = await resend(server, home, ledger, rng, summary)
    log = LogClient(server.base)
    try:
        head = await asyncio.to_thread(settled_head, server, book)
        for checkpoint in await asyncio.to_thread(log.checkpoints):
            book.add(checkpoint.note, "history")
        proven = await asyncio.to_thread(book.prove, log, head, everything=final)
    except (Failure, HotlineError) as exc:
        summary.failures += [*failures, str(exc)]
        return f"FAILED: {exc}"
    failures += await asyncio.to_thread(account, home, server, head[0], ledger, summary)
    clean, said = await asyncio.to_thread(cosign_and_audit, home, server)
    summary.audits += 1
    summary.audits_clean += clean
    if not clean:
        failures.append(f"hotline audit verify failed: {said}")
    summary.log_size = head[0]
    if final:
        summary.checkpoints = proven
    summary.failures += failures
    return (f"log {head[0]} entries, lost {summary.lost}, duplicated {summary.duplicated}, "
            f"audit {'clean' if clean else 'FAILED'}, {proven} checkpoints consistent"
            + (f"; {len(failures)} FAILURES" if failures else ""))


# -- rounds ------------------------------------------------------------------------------------

def rotation(points: tuple[str, ...]) -> Iterator[str]:
    while True:
        yield from points


async def crash_round(server: Server, home: Path, point: str, round_no: int, ledger: dict[str, Sent],
                      book: Checkpoints, rng: random.Random, options: argparse.Namespace) -> str:
    """Start armed with ``point``, load it, let it die (or kill it); which crash it was."""
    spec = f"{point}={rng.randint(*PASSES[point])}" if point != RANDOM else ""
    kill_after = rng.uniform(0.2, options.max_kill_delay)
    offset = server.log.stat().st_size if server.log.exists() else 0
    if not await server.start(spec):
        fired = fired_points(server.log, offset)
        return f"{fired[0]} (at start-up)" if fired else "died at start-up"
    clients = [c for c in [await connect(server, home, n) for n in SENDERS] if c is not None]
    stop = asyncio.Event()
    collector = asyncio.create_task(collect_checkpoints(server, clients, book, stop))
    senders = [asyncio.create_task(send_until_cut(c, n, ledger, rng, round_no, options.window))
               for c, n in zip(clients, SENDERS, strict=False)]
    try:
        status = await server.wait(kill_after if point == RANDOM else options.armed_wait)
        if status is None:
            await server.kill()
        else:
            await server.reap()
        results = await asyncio.gather(*senders, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
    finally:
        stop.set()
        await collector
        for client in clients:
            await client.close()
    # The checkpoint file is written before a checkpoint is published: whatever the kill
    # interrupted, it holds the largest one anybody saw.
    saved = read_checkpoint_file(checkpoint_path(home / "hotline.db"))
    if saved is None or saved.size < book.published:
        book.summary.failures.append(
            f"round {round_no}: a checkpoint of size {book.published} was published, but the "
            f"checkpoint file holds {saved.size if saved else 'none'} after the kill")
    fired = fired_points(server.log, offset)
    if fired:
        return fired[0]
    return RANDOM if point == RANDOM else f"{RANDOM} ({point} not reached)"


async def crashtest(options: argparse.Namespace, out: TextIO = sys.stdout) -> Summary:
    """Run ``options.rounds`` rounds in a fresh deployment; the summary (printed as it goes)."""
    rng = random.Random(options.seed)
    summary = Summary()
    ledger: dict[str, Sent] = {}
    folder = Path(options.keep) if options.keep else Path(tempfile.mkdtemp(prefix="crashtest-"))
    home = folder / "home"
    make_deployment(home)
    verifier = Profile.load(home, AUDITOR).log_key
    assert verifier is not None
    book = Checkpoints(verifier, summary)
    server = Server(home)

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    say(f"crashtest: {options.rounds} rounds, seed {options.seed}, deployment in {home}")
    points = rotation(options.points)
    try:
        if not await server.start():
            raise Failure("the server does not start")
        await server.stop()
        for round_no in range(1, options.rounds + 1):
            point = next(points)
            started = time.monotonic()
            sent_before = len(ledger)
            killed = await crash_round(server, home, point, round_no, ledger, book, rng, options)
            summary.kills[killed] += 1
            new = list(ledger.values())[sent_before:]
            sent, cut = len(new), sum(1 for s in new if s.status == "unanswered")
            if not await server.start():
                summary.failures.append(f"round {round_no}: the server does not start again")
                say(f"round {round_no:>3}: killed at {killed}; the server does NOT start again "
                    f"(see {server.log})")
                break
            try:
                account_line = await check(server, home, ledger, book, rng, summary,
                                           final=round_no == options.rounds)
            finally:
                await server.stop()
            summary.rounds = round_no
            say(f"round {round_no:>3}/{options.rounds}: killed at {killed:<20} sent {sent:>4}, "
                f"unanswered {cut:>3} | restart: {account_line} ({time.monotonic() - started:.1f} s)")
    except Failure as exc:
        summary.failures.append(str(exc))
    finally:
        await server.kill()
    statuses = Counter(s.status for s in ledger.values())
    summary.sent, summary.accepted = len(ledger), statuses["accepted"]
    summary.unanswered = statuses["unanswered"]
    say(table(summary))
    for failure in summary.failures[:50]:
        say(f"FAILURE: {failure}")
    if summary.ok and not options.keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        say(f"the deployment is kept in {home} (the server's stderr: {server.log})")
    return summary


def table(summary: Summary) -> str:
    rows: list[tuple[str, object]] = [("rounds", summary.rounds)]
    rows += [(f"kills at {point}", summary.kills[point]) for point in (*POINTS, RANDOM)]
    rows += [(f"kills at {point}", n) for point, n in sorted(summary.kills.items())
             if point not in (*POINTS, RANDOM)]
    rows += [("messages sent", summary.sent), ("accepted", summary.accepted),
             ("unanswered (cut by a kill, never resent)", summary.unanswered),
             ("resent after a restart", summary.resent),
             ("  of which the log already held", summary.resent_logged),
             ("lost", summary.lost), ("duplicated", summary.duplicated),
             ("audits clean", f"{summary.audits_clean}/{summary.audits}"),
             ("checkpoints checked", summary.checkpoints),
             ("  seen as", ", ".join(f"{k} {v}" for k, v in sorted(summary.checkpoint_sources.items()))),
             ("consistent", "yes" if summary.ok else "NO"),
             ("final log size", summary.log_size),
             ("result", "OK" if summary.ok else f"FAILED ({len(summary.failures)} failures)")]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parse_args = argparse.ArgumentParser(
        prog="crashtest.py", description=doc.split("\n\n")[0],
        epilog="\n\n".join(doc.split("\n\n")[2:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    parse_args.add_argument("--rounds", type=int, default=20, help="kill/restart rounds (default 20)")
    parse_args.add_argument("--seed", type=int, default=1,
                            help="seed of every random choice: points' pass counts, kill times, ids, "
                                 "resends (default 1; timing still varies from run to run)")
    parse_args.add_argument("--window", type=int, default=4,
                            help="submissions in flight per sender (default 4)")
    parse_args.add_argument("--max-kill-delay", type=float, default=1.5,
                            help="a random kill comes 0.2 s to this many seconds into the round "
                                 "(default 1.5)")
    parse_args.add_argument("--armed-wait", type=float, default=5.0,
                            help="seconds to wait for an armed point before a random kill (default 5)")
    parse_args.add_argument("--points", type=points_option, default=(*POINTS, RANDOM),
                            metavar="LIST", help="the rounds take these in turn: crash points and "
                            f"'{RANDOM}' (default: {','.join((*POINTS, RANDOM))})")
    parse_args.add_argument("--keep", metavar="DIR",
                            help="make the deployment in DIR and keep it (default: a temporary folder)")
    parse_args.add_argument("--json", metavar="FILE", help="also write the summary as JSON to FILE")
    return parse_args


def points_option(text: str) -> tuple[str, ...]:
    points = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in points if p not in (*POINTS, RANDOM)]
    if unknown or not points:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown) or 'nothing'}: give some of "
                                         f"{', '.join((*POINTS, RANDOM))}")
    return points


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.rounds < 1 or options.window < 1:
        parser().error("--rounds and --window must be at least 1")
    summary = asyncio.run(crashtest(options))
    if options.json:
        Path(options.json).write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
