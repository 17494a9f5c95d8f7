"""The console's line to the server: one ``Client`` at a time, kept up across failures.

Theory of operation:

- ``run`` connects to the first endpoint that answers (``--server`` or the profile's list, in
  order: failover), and after a failed round waits with exponential backoff and full jitter
  before the next. An authentication failure (revoked or expired key) ends it: retrying cannot
  help and the officer must see it.
- On each connection, before anything else, one reader task drains ``client.deliveries`` (a
  client that stops reading is disconnected), verifying each envelope entry against the roster
  built from the authorities the member pinned; an entry that does not verify is still shown,
  marked as such, never dropped. Then each channel resumes after the last index seen (kept in the
  outbox file) and every pending outbox envelope is resent by id, in the order composed.
- Composing stores the signed envelope in the outbox *before* sending (``store``); sending while
  the line is down leaves it pending until the next connection. The server answers a resent,
  already logged id with its original ``accepted``, so a message is logged exactly once however
  often the line breaks. An envelope is never submitted twice on one connection at once (the
  client keys its waiters by id).
- The roster verified on the last connection (its signed documents) and the channel list are
  kept in the outbox file, and read back at start (each document verified again against the
  pinned authorities): before the first connection the console already knows its channels and
  their agreements, so forms open and messages can be composed, signed and queued offline.
- Everything observed goes to ``emit`` as an ``Event`` (plain dataclasses), on the event loop's
  thread: the Textual app folds them into its view-model. Nothing here knows about Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from hotline.canonical import JSONObject
from hotline.client.attaching import upload_file
from hotline.client.backoff import Backoff
from hotline.client.connection import Client, ConnectError, Delivered
from hotline.client.epochrenewal import Renewed, keep_after, renew_epoch_keys
from hotline.client.failover import Failover
from hotline.client.outbox import Outbox, OutboxItem, OutboxState, StagedFile
from hotline.client.problems import HostProblem
from hotline.client.profile import Profile
from hotline.client.receipts import bundle_from_frame, verify_receipt
from hotline.client.sealed_view import SealedView
from hotline.client.sealer import keys_of, readers_for, sealed
from hotline.clock import utc_now
from hotline.entries import Entry, EnvelopeEntry, channel_of
from hotline.envelope import AckKind, Envelope, Kind, Precedence, ack_id, new_envelope_id
from hotline.epochkeys import EpochKey
from hotline.errorcodes import Code
from hotline.errors import AuthError, ConfigError, CryptoError, HotlineError, SealError
from hotline.keys import Signer
from hotline.norms.template import Template
from hotline.norms.templateset import TemplateSet
from hotline.roster import Roster, envelope_signer, readers_of
from hotline.sealing import StoredStream
from hotline.wire.frames import Deliver, Health, Welcome

HISTORY = 5000  # on a first start, resume this many log indexes back (not the whole log)
_CURSOR_EVERY = 200  # persist the resume cursor at least every so many entries
ROSTER_MEMO = "roster"  # outbox memo: the last roster verified and the member's channels
PROVEN_MEMO = "proven-keys"  # outbox memo: the epoch key ids proven in the log
PROOF_TIMEOUT = 10.0  # seconds to prove a reader's key logged before refusing to seal
MAX_PROVEN = 4096  # proven key ids remembered (a few per member and epoch; the oldest go first)


class LinkState(StrEnum):
    CONNECTING = "CONNECTING"
    UP = "UP"
    DOWN = "DOWN"        # lost or unreachable; retrying
    REFUSED = "REFUSED"  # the server refused our key: no retry


@dataclass(frozen=True)
class LinkStatus:
    state: LinkState
    url: str | None
    detail: str = ""
    retry_in: float | None = None


@dataclass(frozen=True)
class Welcomed:
    """A session opened: who we are to the server, our channels, the roster we verified."""

    welcome: Welcome
    roster: Roster
    url: str


@dataclass(frozen=True)
class EntryEvent:
    """A delivered log entry; ``delivered`` is set for an envelope entry that verified,
    ``error`` for one that did not."""

    index: int
    entry: Entry
    delivered: Delivered | None = None
    error: str | None = None
    closed: frozenset[str] = frozenset()  # sealed fields this member could not open


@dataclass(frozen=True)
class HealthEvent:
    frame: Health


@dataclass(frozen=True)
class OutboxEvent:
    """An outbox envelope was stored, accepted or refused (``item`` is its new state)."""

    item: OutboxItem


@dataclass(frozen=True)
class ReceiptEvent:
    index: int
    ok: bool
    detail: str


@dataclass(frozen=True)
class ResumedEvent:
    channel: str
    index: int


Event = LinkStatus | Welcomed | EntryEvent | HealthEvent | OutboxEvent | ReceiptEvent | ResumedEvent


class Link:
    """Keeps one member's connection up and its outbox flowing."""

    def __init__(self, *, profile: Profile, key: Signer, outbox: Outbox,
                 emit: Callable[[Event], None], servers: tuple[str, ...] = (),
                 backoff: Backoff | None = None, history: int = HISTORY,
                 clock: Callable[[], datetime] = utc_now, open_timeout: float = 10.0,
                 sealed_view: SealedView | None = None) -> None:
        self.profile, self.key, self.outbox, self.emit = profile, key, outbox, emit
        self.sealed_view = sealed_view  # opens the sealed fields this member may read
        self.failover = Failover(profile, servers=servers, key=key, backoff=backoff,
                                 open_timeout=open_timeout, trying=self._trying)
        self.history, self.clock = history, clock
        self.state = LinkState.CONNECTING
        self.client: Client | None = None
        # the last roster verified (kept while the line is down; from an earlier run at start)
        self.roster, self.channels = self._remembered()
        # epoch key ids proven logged (a log only grows), oldest first
        memo = self.outbox.recall(PROVEN_MEMO)
        self.proven = dict.fromkeys(k for k in memo if isinstance(k, str)) if isinstance(memo, list) else {}
        self.proved_ahead = False  # this connection proved the keys its member may seal to
        self.welcome: Welcome | None = None
        self._inflight: set[str] = set()
        self._seen: dict[str, int] = {}  # shown, not yet written to the outbox file
        self._last: dict[str, int] = {}  # the last index shown per channel, this process
        self._progress = asyncio.Event()
        self.previously_seen: dict[str, int] = {}  # the last index shown by an earlier run
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def member(self) -> str:
        return self.profile.member

    @property
    def url(self) -> str | None:
        """The server of the current (or last) session."""
        return self.failover.url

    def _remembered(self) -> tuple[Roster | None, list[str]]:
        """The roster and channels an earlier run verified, verified again (None if none)."""
        memo = self.outbox.recall(ROSTER_MEMO)
        if not isinstance(memo, dict) or not isinstance(memo.get("documents"), list):
            return None, []
        roster = Roster(self.profile.authorities)
        for signed in memo["documents"]:
            with contextlib.suppress(HotlineError):  # what our pinned authorities refuse
                roster.add(signed)
        channels = [c for c in memo.get("channels", []) if isinstance(c, str) and c in roster.agreements]
        return roster, channels

    # -- the connection loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, reconnect, until cancelled or the server refuses our key."""
        try:
            await self.failover.stay_connected(self._serve_line, self._down)
        except AuthError as exc:
            self._status(LinkState.REFUSED, None, f"the server refused this key: {exc.message}")
        except ConfigError as exc:  # the profile's own fault (its pinned CA): no retry mends it
            self._status(LinkState.REFUSED, None, exc.message)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self.client is not None:
                await self.client.close()

    def _trying(self, url: str) -> None:
        self._status(LinkState.CONNECTING, url, f"connecting to {url}")

    def _down(self, url: str | None, reason: str, retry_in: float) -> None:
        self._status(LinkState.DOWN, url, reason if url is None else f"line lost: {reason}",
                     retry_in=retry_in)

    async def _serve_line(self, client: Client) -> None:
        try:
            await self._serve(client)
        finally:
            self.client = None

    async def _serve(self, client: Client) -> None:
        self.client, self.roster, self.welcome = client, client.roster, client.welcome
        client.proven_keys |= self.proven.keys()
        self.channels = list(client.welcome.channels)
        self.outbox.remember(ROSTER_MEMO, {"channels": self.channels,
                                           "documents": [d.to_json() for d in client.documents]})
        self._inflight.clear()
        drain = asyncio.create_task(self._drain(client), name="console-drain")
        proving: asyncio.Task[None] | None = None
        self.proved_ahead = False
        health = asyncio.create_task(self._watch_health(client), name="console-health")
        self._status(LinkState.UP, self.url, f"connected to {self.url}")
        assert self.url is not None
        self.emit(Welcomed(client.welcome, client.roster, self.url))
        try:
            log_size = client.welcome.log_size
            for channel in client.welcome.channels:
                after = self._resume_after(channel, log_size)
                try:
                    index = await client.resume(channel, after)
                except (ConnectError, ConnectionClosed):
                    raise
                except HotlineError as exc:  # one channel refused: the others go on
                    self._status(LinkState.UP, self.url, f"{channel}: {exc.code}: {exc.message}")
                    index = after
                if index > after:
                    await self._caught_up(client, channel, index)
                self.emit(ResumedEvent(channel, index))
            for item in self.outbox.pending():
                await self._submit(client, item)
            proving = asyncio.create_task(self._prove_ahead(client), name="console-prove-keys")
            await client.closed
        except (ConnectError, ConnectionClosed):
            pass  # the line dropped: run() reconnects
        finally:
            tasks = [task for task in (health, drain, proving) if task is not None]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            while not client.deliveries.empty():  # nothing delivered is lost
                self._entry(client, client.deliveries.get_nowait())
            self._save_cursor()

    def _resume_after(self, channel: str, log_size: int) -> int:
        """Where history resumes: after the last entry this process showed; on the first
        connection, ``history`` indexes before the last one shown in an earlier run (so the
        screen has context; replays change nothing), or before the log's end."""
        if channel in self._last:
            return self._last[channel]
        stored = self.outbox.last_seen(channel)
        self.previously_seen[channel] = -1 if stored is None else stored
        start = stored if stored is not None else log_size - 1
        return max(-1, start - self.history)

    async def _caught_up(self, client: Client, channel: str, index: int) -> None:
        """Wait until the reader has shown every replayed entry of ``channel`` (up to ``index``):
        they were queued before the ``resumed`` answer."""
        while self._last.get(channel, -1) < index:
            self._progress.clear()
            progress = asyncio.ensure_future(self._progress.wait())
            waited: set[asyncio.Future[Any]] = {progress, client.closed}
            await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            if not progress.done():
                progress.cancel()
                raise ConnectError("connection lost during the replay")

    async def _drain(self, client: Client) -> None:
        count = 0
        while True:
            frame = await client.deliveries.get()
            self._entry(client, frame)
            count += 1
            if client.deliveries.empty() or count % _CURSOR_EVERY == 0:
                self._save_cursor()

    def _entry(self, client: Client, frame: Deliver | HostProblem) -> None:
        if isinstance(frame, HostProblem):  # refused by the client (malformed, out of order)
            where = f"[{frame.index}] " if frame.index is not None else ""
            self._status(self.state, self.url, f"host problem: {where}{frame.problem}")
            return
        index, entry = frame.index, frame.entry
        if isinstance(entry, EnvelopeEntry):
            try:
                delivered = client.verify(frame)
            except CryptoError as exc:
                self.emit(EntryEvent(index, entry, error=exc.message))
            else:
                self.emit(self._opened(client, delivered))
        else:
            self.emit(EntryEvent(index, entry))
        channel = channel_of(entry)
        if channel is not None:
            self._seen[channel] = max(index, self._seen.get(channel, -1))
            self._last[channel] = max(index, self._last.get(channel, -1))
        self._progress.set()

    def _opened(self, client: Client, delivered: Delivered) -> EntryEvent:
        """The event of ``delivered``, with the sealed fields this member may read opened (the
        others marked sealed, with who may read them); a field that opened but breaks its
        template is reported once as a signed ``violation`` through the outbox (its id is
        derived, so a replay reports nothing new)."""
        index, entry = delivered.index, delivered.entry
        if self.sealed_view is None or delivered.envelope.sealed is None:
            return EntryEvent(index, entry, delivered=delivered,
                              closed=frozenset(delivered.envelope.sealed.digests
                                               if delivered.envelope.sealed else ()))
        shown, closed = self.sealed_view.view(delivered, client.roster)
        for field, problem in self.sealed_view.violations.pop(delivered.envelope.id, []):
            report = client.violation_envelope(delivered, field, problem)
            if self.outbox.get(report.id) is None and delivered.envelope.sender != self.member:
                self.send(self.store(report))
        return EntryEvent(index, entry, delivered=shown, closed=closed)

    async def renew_keys(self, templates: TemplateSet) -> Renewed | None:
        """Keep this member's epoch keys current (``hotline.client.epochrenewal``) when the line
        is up and the console opens sealed fields; None when it did nothing."""
        client, view = self.client, self.sealed_view
        if client is None or self.state is not LinkState.UP or view is None:
            return None
        return await renew_epoch_keys(client, self.profile.home, signer=self.key,
                                      passphrase=view.passphrase,
                                      now=self.clock(),
                                      keep=keep_after(client.roster, templates, client.party))

    def body_of(self, envelope: Envelope) -> tuple[JSONObject, frozenset[str]]:
        """``envelope``'s body as this member sees it: sealed fields it may read (or sealed and
        sent) opened, the others marked sealed; and the names of those others."""
        sealed_names = frozenset(envelope.sealed.digests if envelope.sealed else ())
        if self.sealed_view is None or self.roster is None or envelope.sealed is None:
            return dict(envelope.body), sealed_names
        opened = self.sealed_view.opened(envelope)
        return self.sealed_view.body(envelope, self.roster, opened), sealed_names - set(opened)

    async def seal(self, envelope: Envelope, template: Template,
                   streams: Mapping[str, list[StoredStream]] | None = None) -> Envelope:
        """``envelope`` as composed, with the fields ``template`` seals sealed to their readers
        (``hotline.client.sealer``): from the roster last verified, each reader's key proven in
        the log (now if the line is up, else on an earlier connection: a log only grows).

        Raises:
            SealError: ``seal.unlogged_key`` (a key not yet proven and the line down, or one that
                fails its proof), ``seal.no_reader``; nothing is stored then.
        """
        if self.roster is None:
            raise SealError("no roster verified yet: connect once before sending sealed fields",
                            code=Code.SEAL_UNLOGGED_KEY)
        readers = readers_for(self.roster, envelope, template)
        unproven = [k for k in keys_of(readers) if k.key_id not in self.proven]
        if unproven:
            client = self.client
            if client is None or self.state is not LinkState.UP:
                raise SealError(f"the line is down and the epoch key of {unproven[0].member} is not "
                                "yet proven in the log: send it when the line is up",
                                code=Code.SEAL_UNLOGGED_KEY)
            await self._prove(client, unproven)
        result, disclosures = sealed(envelope, readers, streams)
        if self.sealed_view is not None:
            self.sealed_view.keep(result.id, disclosures)
        return result

    async def _prove(self, client: Client, keys: list[EpochKey]) -> None:
        """Prove ``keys`` in the log (``Client.prove_logged``) and remember them, in the outbox
        too: a log only grows, so a key proven once may be sealed to offline later."""
        await client.prove_logged(keys, self.profile.log_key, timeout=PROOF_TIMEOUT)
        self.proven.update(dict.fromkeys(k.key_id for k in keys))
        self.proven = dict.fromkeys(list(self.proven)[-MAX_PROVEN:])
        self.outbox.remember(PROVEN_MEMO, list(self.proven))

    async def _prove_ahead(self, client: Client) -> None:
        """Prove on connecting the keys this member may seal to, this epoch's and the next's,
        so that what the officer composes once the line is down can still be sealed; a key
        that fails its proof is left out (refused, with why, if a message is sealed to it)."""
        now, keys = self.clock(), []
        for channel in client.welcome.channels:
            agreement = client.roster.agreements.get(channel)
            if agreement is not None:
                keys += [reader.key for at in (now, now + agreement.epoch_length)
                         for reader in readers_of(client.roster, agreement.parties, at=at,
                                                  length=agreement.epoch_length)]
        for key in keys:
            if key.key_id not in self.proven:
                with contextlib.suppress(HotlineError):
                    await self._prove(client, [key])
        self.proved_ahead = True

    def _save_cursor(self) -> None:
        for channel, index in self._seen.items():
            self.outbox.see(channel, index)
        self._seen.clear()

    async def _watch_health(self, client: Client) -> None:
        while True:
            client.health_changed.clear()
            for frame in list(client.health.values()):
                self.emit(HealthEvent(frame))
            await client.health_changed.wait()

    def _status(self, state: LinkState, url: str | None, detail: str, *,
                retry_in: float | None = None) -> None:
        self.state = state
        self.emit(LinkStatus(state, url, detail, retry_in))

    # -- composing and sending -------------------------------------------------------------------

    def build(self, *, channel: str, template: str, body: JSONObject,
              precedence: Precedence | str, kind: Kind = Kind.MESSAGE, reply_to: str | None = None,
              id: str | None = None) -> Envelope:
        """An envelope from this member, created now (not yet signed or stored)."""
        return Envelope.build(id=id or new_envelope_id(os.urandom(16)), kind=kind, channel=channel,
                              sender=self.member, template=template, precedence=precedence,
                              created=self.clock(), body=body, reply_to=reply_to)

    def store(self, envelope: Envelope, files: Sequence[StagedFile] = ()) -> OutboxItem:
        """Sign ``envelope`` and store it in the outbox (durably) as pending, with the staged
        ``files`` it names (uploaded before it is sent); nothing is sent."""
        signer = envelope_signer(self.roster, self.key, envelope) if self.roster else self.key
        item = self.outbox.put(envelope, envelope.sign(signer), now=self.clock(), files=files)
        self.emit(OutboxEvent(item))
        return item

    def send(self, item: OutboxItem) -> None:
        """Send a stored envelope now if the line is up (else it waits for the next connection)."""
        client = self.client
        if client is not None and self.state is LinkState.UP:
            self._spawn(self._submit(client, item))

    def acknowledge(self, message: Envelope, kind: AckKind) -> OutboxItem:
        """Store (once) and send our ack of ``message``; an ack's id is derived from (party,
        member, message, kind), so acknowledging again changes nothing."""
        ident = ack_id(party=self.profile.party, member=self.member, reply_to=message.id, ack=kind)
        item = self.outbox.get(ident)
        if item is None:
            item = self.store(self.build(channel=message.channel, template=message.template,
                                         body={"ack": kind.value}, precedence=message.precedence,
                                         kind=Kind.ACK, reply_to=message.id, id=ident))
        if item.state is OutboxState.PENDING:
            self.send(item)
        return item

    async def _submit(self, client: Client, item: OutboxItem) -> None:
        if item.id in self._inflight or client is not self.client:
            return
        self._inflight.add(item.id)
        try:
            for file in self.outbox.files(item.id):  # the files it names, first (resumed)
                await upload_file(client, Path(file.path), sha256=file.sha256, size=file.size)
            answer = await client.submit_envelope(item.envelope)
        except (ConnectError, ConnectionClosed):
            return  # stays pending: resent on the next connection
        except HotlineError as exc:
            self.outbox.mark_refused(item.id, exc.code, exc.message, now=self.clock())
            self._changed(item.id)
            return
        except OSError as exc:  # a staged file gone from the disk: it can never be sent
            self.outbox.mark_refused(item.id, Code.ATTACHMENT_MISSING, f"a file it names is no "
                                     f"longer on this disk ({exc.strerror})", now=self.clock())
            self._changed(item.id)
            return
        finally:
            self._inflight.discard(item.id)
        index = answer.index
        self.outbox.mark_accepted(item.id, index, now=self.clock())
        self._changed(item.id)
        receipt = item.envelope.kind is Kind.MESSAGE and not answer.is_duplicate
        self._spawn(self._follow(client, index, receipt=receipt))

    def _changed(self, envelope_id: str) -> None:
        item = self.outbox.get(envelope_id)
        if item is not None:
            self.emit(OutboxEvent(item))

    async def _follow(self, client: Client, index: int, *, receipt: bool) -> None:
        """Our accepted envelope as logged (the server's ``expects`` or ``late``: the server does
        not deliver our own entries back to us), then a message's signed receipt (sent once a
        checkpoint covers it; not again for a resend the server had logged)."""
        try:
            delivered = await client.fetch(index)
            self.emit(self._opened(client, delivered))
            if not receipt:
                return
            frame = await client.receipt(index)
        except (ConnectError, ConnectionClosed):
            return
        except HotlineError as exc:
            self.emit(ReceiptEvent(index, False, exc.message))
            return
        if self.profile.log_key is None:
            self.emit(ReceiptEvent(index, False, "receipt not checked: the profile pins no log key"))
            return
        try:
            verify_receipt(bundle_from_frame(frame).to_text(), self.profile.log_key)
        except HotlineError as exc:
            self.emit(ReceiptEvent(index, False, f"receipt does NOT verify: {exc.message}"))
            return
        self.emit(ReceiptEvent(index, True, "inclusion receipt verified against the pinned log key"))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
