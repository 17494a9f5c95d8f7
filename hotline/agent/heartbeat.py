"""``hotline agent``: a party's unattended heartbeat agent (docs/ARCHITECTURE.md "Heartbeats and health").

Per channel it is a member of, every ``interval`` of that channel's agreement it submits a signed
``heartbeat`` ``{seq, sent}``; it answers every other party's heartbeat with a signed ``echo``
``{received}`` naming it (``reply_to``). The server judges the channel's health from what it logs.

It runs unattended: a lost connection is retried with exponential backoff and full jitter, trying
the profile's server endpoints in turn (failover); the heartbeat counter of each channel is kept in
a state file (written atomically before each heartbeat), so ``seq`` never repeats across restarts.
An authentication failure (a revoked or expired key) ends it: retrying cannot help, and the
operator must see it. It is also its party's log witness (``hotline.agent.witness``), cosigning
each new checkpoint every ``witness_every`` seconds. ``run_once`` is one round for scripts and
monitoring: a heartbeat on every channel, then the echoes of every other party within one
interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import structlog

from hotline.agent.witness import WitnessAlarm, witness_key, witness_round
from hotline.client.backoff import Backoff
from hotline.client.connection import Client, ConnectError, Delivered
from hotline.client.failover import Failover
from hotline.client.logapi import BadAnswer, LogClient, http_base
from hotline.client.profile import Profile
from hotline.clock import utc_now
from hotline.envelope import Kind, Precedence
from hotline.errorcodes import Code
from hotline.errors import HotlineError, ProtocolViolation
from hotline.keys import SigningKey
from hotline.times import format_time

log = structlog.get_logger("hotline.agent")


SEQ_BLOCK = 64  # heartbeat numbers reserved per write of the state file


@dataclass(frozen=True)
class RoundOutcome:
    """One channel's round (``run_once``): our heartbeat's envelope id, the parties that echoed
    it, and those that did not within one interval."""

    heartbeat: str
    echoed_by: list[str]
    missing: list[str]


class _StateFile(msgspec.Struct, frozen=True):
    seq: dict[str, int]


@dataclass
class AgentState:
    """The next heartbeat number of each channel, kept across restarts.

    The file holds, per channel, a number no heartbeat has used yet: numbers are reserved in
    blocks of ``SEQ_BLOCK``, so the file is written once per block, not per heartbeat (with a
    thousand channels, rewriting it on every heartbeat cost the agent most of its time). After a
    restart counting resumes at the reserved mark: ``seq`` may skip, it never repeats.
    """

    path: Path
    seq: dict[str, int] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> AgentState:
        if not path.is_file():
            return cls(path)
        try:
            seq = msgspec.json.decode(path.read_bytes(), type=_StateFile, strict=True).seq
        except (OSError, msgspec.MsgspecError) as exc:
            raise ConnectError(f"agent state file {path} is unreadable ({exc}); move it aside "
                               "to start counting afresh") from exc
        return cls(path, seq, dict(seq))

    def next(self, channel: str) -> int:
        """Take the next number for ``channel``; the file covers it before it is used."""
        seq = self.seq.get(channel, 0)
        if seq >= self.reserved.get(channel, 0):
            self.reserved[channel] = seq + SEQ_BLOCK
            self._save()
        self.seq[channel] = seq + 1
        return seq

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as handle:
            handle.write(json.dumps({"seq": self.reserved}))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


class HeartbeatAgent:
    def __init__(self, profile: Profile, *, state: AgentState, servers: tuple[str, ...] = (),
                 backoff: Backoff | None = None, witness_every: float | None = None,
                 witness_state: Path | None = None) -> None:
        self.profile = profile
        self.state = state
        self.failover = Failover(profile, servers=servers, backoff=backoff)
        self.witness_every = witness_every if profile.log_key is not None else None
        if self.witness_every is not None and not isinstance(self.failover.key, SigningKey):
            # Said once, here, rather than failing every witness round.
            log.warning("witness.off", member=profile.member,
                        reason="a hybrid agent key cannot cosign: C2SP cosignatures are Ed25519")
            self.witness_every = None
        self.witness_state = witness_state

    @property
    def url(self) -> str:
        """The server of the current (or last) session."""
        return self.failover.url or ""

    async def _connect(self) -> Client:
        client = await self.failover.connect()
        log.info("agent.connected", server=self.url, channels=client.welcome.channels)
        return client

    async def run(self) -> None:
        """Beat and echo until cancelled; reconnect whenever the line drops."""
        def down(url: str | None, reason: str, delay: float) -> None:
            log.warning("agent.unreachable" if url is None else "agent.disconnected",
                        reason=reason, retry_in=round(delay, 2))

        async def serve(client: Client) -> None:
            log.info("agent.connected", server=self.url, channels=client.welcome.channels)
            await self._serve(client)

        await self.failover.stay_connected(serve, down)

    async def _serve(self, client: Client) -> None:
        tasks = [asyncio.create_task(self._beat(client, channel), name=f"beat-{channel}")
                 for channel in client.welcome.channels]
        tasks.append(asyncio.create_task(self._answer(client), name="echo"))
        if self.witness_every is not None and self.witness_state is not None:
            tasks.append(asyncio.create_task(self._witness(self.witness_every, self.witness_state),
                                             name="witness"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _interval(self, client: Client, channel: str) -> float:
        agreement = client.roster.agreements.get(channel)
        return float(agreement.heartbeat_interval) if agreement is not None else 60.0

    async def heartbeat(self, client: Client, channel: str) -> str:
        """Submit one heartbeat; returns its envelope id once the server accepted it."""
        seq = self.state.next(channel)
        envelope = client.envelope(channel=channel, template="heartbeat", kind=Kind.HEARTBEAT,
                                   precedence=Precedence.ROUTINE,
                                   body={"seq": seq, "sent": format_time(utc_now())})
        accepted = await client.submit_envelope(envelope)
        log.info("agent.heartbeat", channel=channel, seq=seq, index=accepted.index)
        return envelope.id

    async def _beat(self, client: Client, channel: str) -> None:
        loop = asyncio.get_running_loop()
        # Spread the channels over the interval: started together, N channels' heartbeats would
        # all arrive in one burst every interval.
        await asyncio.sleep(random.random() * self._interval(client, channel))
        while True:
            started = loop.time()
            try:
                await self.heartbeat(client, channel)
            except ConnectError:
                raise
            except HotlineError as exc:  # refused: say so, keep beating (the server logs it)
                log.error("agent.heartbeat_refused", channel=channel, code=exc.code,
                          reason=exc.message)
            await asyncio.sleep(max(0.0, self._interval(client, channel) - (loop.time() - started)))

    async def echo(self, client: Client, item: Delivered) -> None:
        env = item.envelope
        echo = client.envelope(channel=env.channel, template="echo", kind=Kind.ECHO,
                               precedence=Precedence.ROUTINE, reply_to=env.id,
                               body={"received": format_time(utc_now())})
        try:
            accepted = await client.submit_envelope(echo)
        except ConnectError:
            raise
        except HotlineError as exc:
            log.error("agent.echo_refused", channel=env.channel, code=exc.code, reason=exc.message)
            return
        log.debug("agent.echo", channel=env.channel, of=env.sender, index=accepted.index)

    def _foreign_heartbeat(self, client: Client, item: Any) -> Delivered | None:
        if (isinstance(item, Delivered) and item.envelope.kind is Kind.HEARTBEAT
                and item.entry.party != client.welcome.party):
            return item
        return None

    async def _answer(self, client: Client) -> None:
        pending: set[asyncio.Task[None]] = set()
        async for item in client.deliveries_verified():
            if (beat := self._foreign_heartbeat(client, item)) is not None:
                task = asyncio.create_task(self.echo(client, beat))
                pending.add(task)
                task.add_done_callback(self._echo_done(pending))

    async def _witness(self, every: float, state_path: Path) -> None:
        """The party's witness, in the same process: cosign each new checkpoint after a
        consistency proof from the last one cosigned. An alarm is logged as critical and repeats
        each round (the state is kept) until a person looks; an answer the log API never sends
        is logged as an error (the host misbehaving), a log out of reach as a warning; whatever
        the host answers, the witness tries again next round and heartbeats go on."""
        assert self.profile.log_key is not None
        log_client = LogClient(http_base(self.url), ssl_context=self.profile.tls_for(self.url))
        while True:
            try:
                size = await asyncio.to_thread(
                    witness_round, log_client, state_path=state_path, log_key=self.profile.log_key,
                    name=self.profile.member, key=witness_key(self.failover.key),
                    timestamp=int(time.time()))
                if size is not None:
                    log.info("witness.cosigned", size=size)
            except WitnessAlarm as exc:
                log.critical("witness.alarm", reason=exc.message)
            except BadAnswer as exc:  # the host broke the log API: misbehaviour, not an outage
                log.error("witness.host_misbehaving", code=exc.code, reason=exc.message)
            except HotlineError as exc:
                log.warning("witness.failed", code=exc.code, reason=exc.message)
            await asyncio.sleep(every)

    @staticmethod
    def _echo_done(pending: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            pending.discard(task)
            if not task.cancelled() and task.exception() is not None:  # the line dropped: the
                log.debug("agent.echo_lost", reason=str(task.exception()))  # session ends anyway
        return done

    async def run_once(self) -> dict[str, RoundOutcome]:
        """One round: a heartbeat per channel, echoing others meanwhile, and the echoes of our
        own heartbeats from every other party within one interval; the outcome per channel."""
        client = await self._connect()
        try:
            channels = list(client.welcome.channels)
            ours = {channel: await self.heartbeat(client, channel) for channel in channels}
            wanted = {c: set(client.roster.agreements[c].parties) - {client.welcome.party}
                      for c in channels if c in client.roster.agreements}
            echoed: dict[str, set[str]] = {c: set() for c in channels}
            by_id = {hb: c for c, hb in ours.items()}

            async def collect() -> None:
                async for item in client.deliveries_verified():
                    if (beat := self._foreign_heartbeat(client, item)) is not None:
                        await self.echo(client, beat)
                    elif (isinstance(item, Delivered) and item.envelope.kind is Kind.ECHO
                          and item.envelope.reply_to in by_id):
                        echoed[by_id[item.envelope.reply_to]].add(item.entry.party)
                        if all(wanted.get(c, set()) <= echoed[c] for c in channels):
                            return

            wait = max((self._interval(client, c) for c in channels), default=0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collect(), wait)
            return {c: RoundOutcome(heartbeat=ours[c], echoed_by=sorted(echoed[c]),
                                    missing=sorted(wanted.get(c, set()) - echoed[c]))
                    for c in channels}
        finally:
            await client.close()


def default_state_path(home: Path, name: str) -> Path:
    return home / "state" / f"{name}.agent.json"


@contextlib.contextmanager
def lock_state(path: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on the state file ``path`` (on ``PATH.lock`` beside it) while the
    agent runs: a second agent on the same file would interleave heartbeat numbers. The OS
    releases it when the process ends, however it ends, so a crash leaves no stale lock.

    Raises:
        ProtocolViolation: ``agent.already_running``, another process holds it.
    """
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise ProtocolViolation(
                f"another agent is already running as {name} (process {holder or 'unknown'}): it "
                f"holds {lock}. One agent per party: stop that one first",
                code=Code.AGENT_ALREADY_RUNNING) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)  # who holds it, for the next one's message
        yield
    finally:
        os.close(fd)  # closing releases the lock
