"""The composition root: ``build_server`` builds the server's parts from its config, each from
the ones it needs and nothing assigned afterwards, then loads them from the log in the one order
that is safe. The HTTP application (``hotline.server.app.create_app``) serves what it built.

Parts, in dependency order: the store (opened with the row-MAC key derived from the log key,
unless the caller hands one in); the roster of the configured authorities; the hub of live
sessions; the metrics registry; the checkpointer and the health monitor (each on the store, hub
and roster); and the service (``Hotline``) that uses them all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from hotline.clock import utc_now
from hotline.config import Config, parse_authority_key
from hotline.errors import ConfigError, HotlineError
from hotline.keyfiles import load_log_key, load_mldsa_log_key
from hotline.keys import SigningKey
from hotline.norms.templateset import TemplateSet
from hotline.roster import Roster
from hotline.server.checkpoints import Checkpointer
from hotline.server.hub import Hub
from hotline.server.monitor import HealthMonitor, Metrics
from hotline.server.service import FOLLOW_POLL, Hotline
from hotline.store import Store, open_store, row_mac_key
from hotline.store.checkpointfile import checkpoint_path
from hotline.store.restores import read_restores, restores_path

log = structlog.get_logger("hotline.server")


@dataclass(frozen=True)
class Server:
    """The server's parts, built and loaded; ``running`` runs their background tasks."""

    config: Config
    store: Store
    roster: Roster
    hub: Hub
    metrics: Metrics
    checkpointer: Checkpointer
    monitor: HealthMonitor
    service: Hotline
    clock: Callable[[], datetime]
    owns_store: bool  # opened by build_server, so closed by ``close``

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The background tasks while the context lasts; on exit the submissions already
        queued are answered before the checkpointer's last checkpoint."""
        service = self.service
        sweep = self.config.protocols.deadline_sweep
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self._lead(), name="lead"),
                 asyncio.create_task(service.run_rejection_summaries(sweep), name="rejections")]
        intake = [asyncio.create_task(service.run_turns(), name="submission-turns"),
                  asyncio.create_task(self.hub.watch_stalled(), name="stalled-sessions")]
        service.unread_checked = asyncio.create_task(service.check_unread(), name="unread-window")
        tasks.append(service.unread_checked)
        try:
            yield
        finally:
            await _cancel(intake)
            await service.drain()
            await _cancel(tasks)
            await self.checkpointer.stop()
            with contextlib.suppress(HotlineError):  # a cache: the next start reads more of the log
                await service.save_obligations()

    async def _lead(self) -> None:
        """Follow the log's leader until this server leads (at once on SQLite), then do what
        one server at a time does: sign checkpoints, sweep deadlines, save them, judge health."""
        if not self.store.leading.is_set():
            await self.checkpointer.follow(FOLLOW_POLL)
            log.warning("store.leading", db=self.store.location, log_size=await self.store.size())
        protocols = self.config.protocols
        await asyncio.gather(
            self.checkpointer.run(),
            self.service.run_deadlines(protocols.deadline_sweep),
            self.service.run_saves(protocols.state_save),
            self.monitor.run(self.config.health.sweep))

    async def close(self) -> None:
        await self.service.feed.stop()
        self.service.verifiers.close()
        if self.owns_store:
            await self.store.close()


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def check_home(config: Config) -> None:
    """What the server needs from its home before it creates anything there (the database):
    the log key and the protocol templates folder."""
    if not config.log_key_path.is_file():
        raise ConfigError(f"no log key at {config.log_key_path}; `hotline init` makes one",
                          path=("tlog", "key"))
    if not config.protocols_dir.is_dir():
        raise ConfigError("the protocol templates folder does not exist; `hotline init` makes it",
                          file=str(config.protocols_dir))


def _standby(message: str) -> None:
    log.warning("store.following", why=message)


async def build_server(config: Config, *, store: Store | None = None,
                       clock: Callable[[], datetime] = utc_now) -> Server:
    """Build and load the server of ``config`` (``store``: an open store to serve instead of
    the configured database; the caller keeps it and closes it).

    Raises:
        ConfigError: no log key or no templates folder, or a key that does not open.
        StoreError: the database fails its check against the published checkpoints.
    """
    check_home(config)
    key = load_log_key(config.log_key_path)
    owns_store = store is None
    if store is None:
        # The store authenticates every row it writes with a key derived from the log key, and
        # start-up checks the rows beyond the last checkpoint with that key.
        store = await open_store(config.store_location, batch=config.limits.commit_batch,
                                 mac_key=row_mac_key(key), standby=_standby)
    try:
        server = _parts(config, store, key, clock, owns_store=owns_store)
    except BaseException:
        if owns_store:
            await store.close()
        raise
    try:
        await _load(server)
    except BaseException:
        await server.close()
        raise
    log.info("server.ready", db=store.location, log_size=await store.size(),
             members=len(server.roster.enrollments), channels=sorted(server.roster.agreements))
    return server


def _parts(config: Config, store: Store, key: SigningKey, clock: Callable[[], datetime], *,
           owns_store: bool) -> Server:
    limits = config.limits
    roster = Roster({party: parse_authority_key(text)
                     for party, text in config.roster.authorities.items()})
    hub = Hub(clock)
    metrics = Metrics()
    pq = config.log_mldsa_key_path
    checkpointer = Checkpointer(store=store, hub=hub, roster=roster, key=key,
                                pq_key=load_mldsa_log_key(pq) if pq is not None else None,
                                origin=config.server.origin, delay=config.tlog.checkpoint_delay,
                                clock=clock, checkpoint_file=checkpoint_path(config.db_path))
    monitor = HealthMonitor(store=store, hub=hub, roster=roster, metrics=metrics,
                            missed=config.health.missed, clock=clock)
    service = Hotline(store=store, roster=roster, templates=TemplateSet(),
                      templates_dir=config.protocols_dir, hub=hub, metrics=metrics,
                      monitor=monitor, checkpointer=checkpointer, clock=clock,
                      clock_skew=timedelta(seconds=limits.clock_skew), limits=limits)
    return Server(config=config, store=store, roster=roster, hub=hub, metrics=metrics,
                  checkpointer=checkpointer, monitor=monitor, service=service, clock=clock,
                  owns_store=owns_store)


async def _load(server: Server) -> None:
    """In this order: the checkpointer checks the database against every checkpoint the log
    published (refusing to start on a loss, a change, or rows the server did not write); only
    then is anything read from the log (the roster, the templates its agreements pin,
    obligations, health) up to its head, and the feed started for what follows; then the roster
    folder is appended (through the feed) and, by the leader, the tree head signed."""
    config = server.config
    await server.checkpointer.load()
    _log_restores(config)
    size = server.store.tree_head()[0]  # the feed applies every entry logged after
    await server.service.load(size)
    await server.monitor.load(size)
    server.service.feed.start(size)
    added = await server.service.import_dir(config.roster_dir)
    if added:
        log.info("roster.imported", documents=added, folder=str(config.roster_dir))
    if server.store.leading.is_set():
        await server.checkpointer.sign()


def _log_restores(config: Config) -> None:
    """A forced restore lost entries the log had published: said at every start, never silent
    (``hotline.store.restores``)."""
    try:
        records = read_restores(restores_path(config.db_path))
    except HotlineError as exc:
        log.warning("store.restores_unreadable", reason=exc.message)
        return
    for record in records:
        if (lost := record.lost) is not None:
            log.warning("store.restored_with_loss", restored=record.restored, first=lost.first,
                        last=lost.last, count=lost.count, checkpoint=lost.checkpoint.size)
