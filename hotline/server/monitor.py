"""Channel health on the server (docs/ARCHITECTURE.md "Heartbeats and health") and what an operator scrapes.

``HealthMonitor`` keeps one ``hotline.health.ChannelHealth`` per agreed channel, fed with every
committed heartbeat and echo, and sweeps them on a timer: each change of a channel's state is
logged as a ``health`` entry (so availability is provable from the log alone), delivered to the
channel's members like any entry, and pushed to them as a live ``health`` frame; DOWN is logged
as an alert. At start it restores each channel's last logged state and replays the recent window
of heartbeats, so an outage across a restart is dated from the agents' last heartbeats.

``Metrics`` is one prometheus-client registry per app (the global one would collide across the
apps of a test run), served at ``/metrics``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

import structlog
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

from hotline.entries import Entry, EnvelopeEntry, HealthEntry, channel_of
from hotline.envelope import Kind
from hotline.health import ChannelHealth, Policy, State
from hotline.roster import Roster
from hotline.server.hub import Hub
from hotline.store import Store
from hotline.times import format_time, parse_time
from hotline.wire.frames import Health

log = structlog.get_logger("hotline.server")

RTT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.channel_state = Enum("hotline_channel_state", "Health of each channel",
                                  ["channel"], states=[s.value for s in State], registry=r)
        self.heartbeat_age = Gauge("hotline_heartbeat_age_seconds",
                                   "Seconds since the last heartbeat of each party on each channel",
                                   ["channel", "party"], registry=r)
        self.echo_rtt = Histogram("hotline_echo_rtt_seconds",
                                  "Heartbeat to echo delay, as the server logged them",
                                  ["channel"], buckets=RTT_BUCKETS, registry=r)
        self.connected = Gauge("hotline_connected_members", "Authenticated WebSocket sessions",
                               registry=r)
        self.accepted = Counter("hotline_entries_accepted", "Envelopes accepted and logged",
                                ["kind"], registry=r)
        self.rejected = Counter("hotline_rejected", "Refused submissions, by error code",
                                ["code"], registry=r)
        self.commit_seconds = Histogram("hotline_commit_seconds",
                                        "From a submission's queueing to its durable commit",
                                        registry=r)
        self.log_size = Gauge("hotline_log_entries", "Entries in the transparency log", registry=r)
        self.leader = Gauge("hotline_store_leader", "1 while this server leads the log "
                            "(signs checkpoints, sweeps deadlines, judges health); 0 while it "
                            "follows another server on a shared PostgreSQL log",
                            ["engine"], registry=r)


class HealthMonitor:
    def __init__(self, *, store: Store, hub: Hub, roster: Roster, metrics: Metrics, missed: int,
                 clock: Callable[[], datetime]) -> None:
        self.store, self.hub, self.roster = store, hub, roster
        self.metrics = metrics
        self.missed = missed
        self.clock = clock
        self.channels: dict[str, ChannelHealth] = {}
        self._beats: OrderedDict[str, str] = OrderedDict()  # heartbeat id -> log time (RTT metric)

    def sync_agreements(self) -> None:
        """One ChannelHealth per agreed channel; a new agreement version reconfigures it."""
        for channel, agreement in self.roster.agreements.items():
            policy = Policy.of(interval=agreement.heartbeat_interval,
                               grace=agreement.heartbeat_grace, missed=self.missed)
            health = self.channels.get(channel)
            if health is None:
                # a channel opened while the server runs gets its own K intervals to come up
                self.channels[channel] = ChannelHealth(channel, agreement.parties, policy,
                                                       started=self.clock())
            else:
                health.reconfigure(agreement.parties, policy)

    async def load(self, size: int) -> None:
        """Restore each channel's last logged state, then replay the recent heartbeats, echoes and
        health states: those within ``missed + 1`` of the longest interval before the log's last
        entry, of the first ``size`` (the service's feed applies what is logged after)."""
        self.sync_agreements()
        store = self.store
        for stored in await store.last_of_kind("health"):
            if stored.index >= size:
                continue
            health = self.channels.get(channel_of(stored.entry) or "")
            if health is not None:
                health.observe(stored.entry)
        last = await store.entry(size - 1) if size else None
        if last is None or not self.channels:
            return
        window = max(h.policy.interval for h in self.channels.values()) * (self.missed + 1)
        after = await store.first_index_at(format_time(last.entry.time_at - window)) - 1
        # only what health is judged from: the messages around them are never read
        async for stored in store.selected(after=after, before=size, kinds=("health",),
                                           envelope_kinds=(Kind.HEARTBEAT.value, Kind.ECHO.value)):
            self.observe(stored.entry, replay=True)

    def observe(self, entry: Entry, *, replay: bool = False) -> None:
        """A committed entry: a heartbeat, an echo, or a health state (another server's judge)."""
        if isinstance(entry, HealthEntry):
            found = self.channels.get(entry.channel)
            if found is not None:
                found.observe(entry)
            return
        if not isinstance(entry, EnvelopeEntry):
            return
        health = self.channels.get(entry.channel)
        if health is None:
            return
        health.observe(entry)
        envelope = entry.envelope
        if envelope.kind is Kind.HEARTBEAT:
            self._beats[envelope.id] = entry.time
            while len(self._beats) > 4096:
                self._beats.popitem(last=False)
        elif envelope.kind is Kind.ECHO and not replay:
            sent = self._beats.get(envelope.reply_to or "")
            if sent is not None:
                rtt = entry.time_at - parse_time(sent)
                self.metrics.echo_rtt.labels(health.channel).observe(rtt.total_seconds())

    async def sweep(self) -> None:
        """Judge every channel now; log and announce each change of state."""
        now = self.clock()
        for channel, health in list(self.channels.items()):
            agreement = self.roster.agreements.get(channel)
            if agreement is not None and agreement.closed_at(now):
                continue  # closed by its agreement: its silence is no failure, nothing is logged
            transition = health.evaluate(now)
            for party, beat in health.last_heartbeats().items():
                if beat is not None:
                    self.metrics.heartbeat_age.labels(channel, party).set((now - beat).total_seconds())
            self.metrics.channel_state.labels(channel).state(health.state.value)
            if transition is None:
                continue
            # delivered, and the health frame sent, by ``Hotline.apply``
            index = (await self.store.append(transition.entry(time=now))).stored.index
            event = log.warning if transition.new in (State.DOWN, State.DEGRADED) else log.info
            event("channel.down" if transition.new is State.DOWN else "channel.health",
                  channel=channel, index=index, old=transition.old.value, new=transition.new.value,
                  since=format_time(transition.since), reason=transition.reason)

    def frame(self, channel: str) -> Health:
        """The live ``health`` frame of one channel."""
        return self.channels[channel].snapshot(self.clock())

    async def run(self, interval: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # one bad sweep (e.g. a full disk) must not end health watching
                log.exception("health.sweep_failed")
            await asyncio.sleep(interval)
