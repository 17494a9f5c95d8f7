"""The hotline service: what the server does with an authenticated member's requests.

Between the WebSocket handler (bytes in, frames out) and the store: it checks each submission
against the roster and the channel's agreement and templates, commits it, and fans it out; it
watches acknowledgement deadlines and logs what is overdue. One instance per server process; it
owns the in-memory roster, deadlines and rate windows, rebuilt from the log at start.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import structlog

from hotline.ahead import AHEAD, Early, Verifiers, check_signature
from hotline.attachments.quota import DailyShares
from hotline.canonical import canonical_bytes, parse
from hotline.config import LimitsSection
from hotline.display import article
from hotline.entries import (
    PENDING,
    Entry,
    EnvelopeEntry,
    Expects,
    HealthEntry,
    OverdueEntry,
    RejectedEntry,
    RosterEntry,
    channel_of,
    roster_entry,
)
from hotline.envelope import Envelope, Kind, check_ack_id
from hotline.epochkeys import PUBLISH_AHEAD, EpochKey, publishable
from hotline.errorcodes import Code
from hotline.errors import (
    AuthError,
    ConfigError,
    CryptoError,
    HotlineError,
    ProtocolViolation,
    StoreError,
    WireError,
)
from hotline.keys import Verifier, b64encode
from hotline.norms.agreement import Agreement, AgreementDocument
from hotline.norms.duration import describe_duration
from hotline.norms.files import load_pinned
from hotline.norms.obligations import (
    Deadlines,
    ObligationsState,
    RateLimits,
    check_ack_party,
    counts_toward_rate,
    lateness,
)
from hotline.norms.rules import Context, Replied
from hotline.norms.template import NamedAttachment, Template
from hotline.norms.templateset import TemplateSet
from hotline.norms.violations import Reported, check_violation
from hotline.roster import EnrollmentDocument, Member, Role, Roster, SignedDocument, describe
from hotline.sealing import StoredStream
from hotline.server.checkpoints import Checkpointer
from hotline.server.fairness import TURN_BUDGET, FairQueue, RejectionBudget, TokenBucket
from hotline.server.feed import Feed
from hotline.server.hub import CLOSE_AUTH_FAILED, Connection, ConnectionGone, Hub
from hotline.server.monitor import HealthMonitor, Metrics
from hotline.store import Appended, Store, StoredEntry
from hotline.store.records import damaged
from hotline.times import format_time, parse_time
from hotline.wire import frames
from hotline.wire.frames import Submit

log = structlog.get_logger("hotline.server")

OBLIGATIONS = "obligations"  # the saved state's name in the store

UNKNOWN_REF = {Kind.MESSAGE: Code.MESSAGE_UNKNOWN_REF, Kind.ACK: Code.ACK_UNKNOWN_REF,
               Kind.ECHO: Code.ECHO_UNKNOWN_REF, Kind.VIOLATION: Code.MESSAGE_UNKNOWN_REF}
"""The code refusing an envelope whose ``reply_to`` names nothing it may answer, by its kind."""


def document_id(signed: Any) -> str:
    """Dedup key for a roster document: the same signed document is logged once."""
    return "doc:" + hashlib.sha256(canonical_bytes(signed)).hexdigest()


def _not_ended_before(agreement: Agreement, now: datetime) -> None:
    """An agreement may close its channel from now on, never before: an ``ends`` already past
    would make the envelopes logged since refused by every verifier after the fact."""
    if agreement.ends is not None and agreement.ends < now:
        raise ProtocolViolation(
            f"agreement {agreement.channel} version {agreement.version} ends at "
            f"{format_time(agreement.ends)}, which is already past ({format_time(now)}): draft it "
            "again with `--close --at` a time after it will be submitted", code=Code.ROSTER_INVALID)


class Hotline:
    """Built by ``hotline.server.compose.build_server`` from the parts it shares with the rest
    of the server (the store, roster, hub, metrics, health monitor and checkpointer)."""

    def __init__(self, *, store: Store, roster: Roster, templates: TemplateSet,
                 templates_dir: Path | None, hub: Hub, metrics: Metrics, monitor: HealthMonitor,
                 checkpointer: Checkpointer, clock: Callable[[], datetime],
                 clock_skew: timedelta, limits: LimitsSection) -> None:
        self.store = store
        self.roster = roster
        self.templates = templates
        self.templates_dir = templates_dir
        self.deadlines = Deadlines()
        self.rates = RateLimits()
        self.metrics = metrics
        self.monitor = monitor
        self.checkpointer = checkpointer
        self.hub = hub
        self.limits = limits  # how members share the server
        self.turns: FairQueue[tuple[Connection, Submit]] = FairQueue(per_member=limits.member_queue)
        self.verifiers = Verifiers(limits.verify_threads)
        self.upload_shares = DailyShares(limits.upload_bytes_per_day)  # each party's, this process
        self._downloads: OrderedDict[tuple[int, str, int], Downloadable] = OrderedDict()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self.rejections = RejectionBudget(limit=limits.rejections_logged,
                                          window=timedelta(seconds=limits.rejection_summary))
        self.clock = clock
        self.clock_skew = clock_skew
        self.documents: list[SignedDocument] = []  # the roster's signed documents, in log order
        self.document_indexes: list[int] = []  # and the index each is logged at
        # every committed entry, in log order, to ``apply`` (other servers' too, on PostgreSQL)
        self.feed = Feed(store, self.apply, poll=FOLLOW_POLL if store.shared else None)
        self._saved_size = -1  # the log size whose obligations were saved last
        self.restored_from: int | None = None  # the saved size the start restored (None: none)
        self._unread: tuple[int, int] | None = None  # (after, end): the window the start skipped
        self.unread_checked: asyncio.Task[HotlineError | None] | None = None  # ``check_unread``
        self._tasks: set[asyncio.Task[None]] = set()

    async def load(self, size: int) -> None:
        """Rebuild the roster from the log's first ``size`` entries (a document the current
        authorities refuse is skipped), then load the templates its agreements pin, and the
        obligations still open. The feed applies what is logged after (``hotline.server.feed``)."""
        for stored in await self.store.roster_entries():
            if stored.index >= size:
                break
            entry = stored.entry
            if not isinstance(entry, RosterEntry):  # the store selected them by kind
                raise damaged(stored.index, "its kind is not the one its row names")
            try:
                signed = SignedDocument.from_json(entry.signed)
                self.roster.add(signed)
                self._took(signed, stored.index)
            except HotlineError as exc:
                log.warning("roster.skipped", index=stored.index, code=exc.code, reason=exc.message)
        await self.load_pinned_templates(self.roster.agreements.values())
        await self._replay_obligations(size)

    async def _replay_obligations(self, size: int) -> None:
        """Rebuild deadlines and rate windows of the log's first ``size`` entries: from the state
        saved at a size ``S`` (``save_obligations``) and the entries from ``S`` on, or else from
        every entry logged within the longest ack deadline or rate period before the last entry
        (log times never go back, so that window holds every message whose obligation may still
        be open). A saved state older than that window, or not this log's, is not used."""
        last = await self.store.entry(size - 1) if size else None
        spans = self._obligation_spans()
        if last is None or not spans:
            return
        since = last.entry.time_at - max(spans)
        after = await self.store.first_index_at(format_time(since)) - 1
        saved = await self._saved_obligations(size)
        if saved is not None and saved.size - 1 < after:
            saved = None  # older than the window: reading the window is less work
        if saved is not None:
            self.deadlines.restore(saved.pending)
            self.rates.restore(saved.rates)
            self._unread = (after, saved.size)  # read after the start: ``check_unread``
            after = saved.size - 1
            self.restored_from = self._saved_size = saved.size
        replayed = 0
        async for stored in self._obliging(after, size):
            self._observe(stored.entry)
            replayed += 1
        log.info("obligations.replayed", since=format_time(since), entries=replayed,
                 saved_at=saved.size if saved else None, pending_acks=len(self.deadlines))

    def _obliging(self, after: int, end: int) -> AsyncIterator[StoredEntry]:
        """The entries after ``after`` and before ``end`` that owe, answer or are counted
        (heartbeats and echoes, most of a busy log, are none of these in the shipped
        templates), and the overdue notices."""
        kinds = {Kind.MESSAGE, Kind.ACK} | {t.kind for t in self.templates if t.rate or t.ack}
        return self.store.selected(after=after, envelope_kinds=sorted(kinds), kinds=("overdue",),
                                   before=end)

    async def check_unread(self) -> HotlineError | None:
        """After a start that restored saved obligations: decode the entries it did not read
        (those a start without them decodes: ``_obliging`` in the recent window, up to the
        saved size), so that damage there is still found, after the server listens rather than
        before: ``store.damaged`` naming the entry, in the log and at ``/healthz`` (returned)."""
        if self._unread is None:
            return None
        after, end = self._unread
        try:
            async for stored in self._obliging(after, end):
                stored.entry  # noqa: B018 (decoded strictly, or ``store.damaged``)
                if stored.index % 64 == 0:
                    await asyncio.sleep(0)  # a background check: live requests go first
        except HotlineError as exc:
            self.store.note_failure(exc)
            log.critical("store.damaged", code=exc.code, reason=exc.message,
                         fix=f"restore the database {self.store.restore_advice}")
            return exc
        finally:
            self._unread = None
        log.info("obligations.window_checked", after=after, before=end)
        return None

    def _obligation_spans(self) -> list[timedelta]:
        spans = [t.rate.per for t in self.templates if t.rate is not None]
        return spans + [t.ack_deadline(p) or timedelta(0) for t in self.templates
                        for p in t.allowed_precedence]

    async def _saved_obligations(self, size: int) -> ObligationsState | None:
        """The saved state, if it is this log's at a size up to ``size`` (else None, said)."""
        try:
            found = await self.store.load_state(OBLIGATIONS)
            if found is None:
                return None
            saved = ObligationsState.decode(found)
            if saved.size > size or b64encode(await self.store.root_at(saved.size)) != saved.root:
                raise StoreError(f"it is of a log of {saved.size} entries that is not this one",
                                 code=Code.STORE_DAMAGED)
            return saved
        except HotlineError as exc:
            log.warning("obligations.saved_not_used", code=exc.code, reason=exc.message,
                        fix="none needed: they are rebuilt from the log")
            return None

    async def save_obligations(self) -> None:
        """Save the deadlines and rate windows of the entries applied so far, so that the next
        start reads only the log after them (the leader, every ``protocols.state_save``
        seconds, and at shutdown)."""
        size = self.feed.next  # every entry below it has been observed (``apply``)
        if size == self._saved_size or not self.store.leading.is_set():
            return
        # taken together, before any await: the feed may apply more meanwhile
        span = max((t.rate.per for t in self.templates if t.rate is not None), default=timedelta(0))
        pending, rates = self.deadlines.state(), self.rates.state(self.clock() - span)
        state = ObligationsState(size=size, root=b64encode(await self.store.root_at(size)),
                                 pending=pending, rates=rates)
        await self.store.save_state(OBLIGATIONS, state.encode())
        self._saved_size = size
        log.debug("obligations.saved", size=size, pending_acks=len(pending))

    async def run_saves(self, interval: float) -> None:
        """The leader, every ``interval`` seconds: ``save_obligations``, and the uploads and
        unnamed content past ``limits.upload_expiry`` dropped (``expire_uploads``)."""
        while True:
            try:
                await self.save_obligations()
            except HotlineError as exc:  # a cache: the next start reads more of the log
                log.error("obligations.not_saved", code=exc.code, reason=exc.message)
            try:
                await self.expire_uploads(self.clock())
            except HotlineError as exc:  # the next sweep, or the next upload, tries again
                log.error("attachment.not_expired", code=exc.code, reason=exc.message)
            await asyncio.sleep(interval)

    async def expire_uploads(self, now: datetime) -> None:
        """Drop the uploads with no chunk for ``limits.upload_expiry``, and the content no
        message named that was stored that long ago: what a party begins or sends and never
        names stops taking room."""
        cutoff = format_time(now - timedelta(seconds=self.limits.upload_expiry))
        expired = await self.store.expire_uploads(cutoff)
        forgotten = await self.store.forget_unnamed(cutoff)
        if expired or forgotten:
            log.info("attachment.expired", uploads=expired, unnamed=forgotten)

    def _observe(self, entry: Entry) -> None:
        self.deadlines.observe(entry)
        if isinstance(entry, EnvelopeEntry):
            template = self._agreed_template(entry.channel, entry.envelope.template)
            self.rates.observe(entry, template.rate if template is not None else None)

    def _agreed_template(self, channel: str, template_id: str) -> Template | None:
        agreement = self.roster.agreements.get(channel)
        try:
            return self.templates.resolve(agreement, template_id) if agreement else None
        except HotlineError:
            return None

    async def load_pinned_templates(self, agreements: Iterable[Agreement]) -> None:
        """Load the template files ``agreements`` pin that this server does not hold yet (the
        operator may install them after the server started), in a worker thread: files are
        hashed first and only pinned ones parsed (``hotline.norms.files.load_pinned``). A pinned
        file that is not a valid template is logged and skipped; envelopes under it are then
        refused (``template.mismatch``) and the held set stays."""
        wanted = {ref.sha256 for agreement in agreements for ref in agreement.templates}
        wanted -= {template.sha256 for template in self.templates}
        if not wanted or self.templates_dir is None:
            return
        found, refused = await asyncio.to_thread(load_pinned, self.templates_dir, wanted)
        for exc in refused:
            log.error("templates.refused", code=exc.code, reason=exc.message)
        for template in found:
            try:
                self.templates.add(template)
            except ConfigError as exc:
                log.error("templates.refused", code=exc.code, reason=exc.message)
        log.info("templates.loaded", folder=str(self.templates_dir), held=len(self.templates),
                 templates=sorted(f"{t.id}@{t.version}" for t in found))

    async def import_dir(self, folder: Path) -> int:
        """Log every signed roster document in ``folder`` (``*.json``) not logged yet."""
        added = 0
        if not folder.is_dir():
            return 0
        for path in sorted(folder.glob("*.json")):
            try:
                signed = parse(path.read_bytes(), max_bytes=1024 * 1024)
                appended = await self.add_document(signed)
            except HotlineError as exc:
                log.error("roster.file_refused", file=str(path), code=exc.code, reason=exc.message)
                continue
            added += not appended.duplicate
        return added

    async def add_document(self, signed: Any) -> Appended:
        """Verify a signed enrollment, revocation or agreement and log it (idempotent)."""
        doc_id = document_id(signed) if isinstance(signed, dict) else ""
        existing = await self.store.by_envelope_id(doc_id) if doc_id else None
        if existing is not None:
            return Appended(existing, duplicate=True)
        kind = self.roster.check(signed)
        typed = SignedDocument.from_json(signed)
        if isinstance(typed.document, EnrollmentDocument) and \
                parse_time(typed.document.not_after) <= self.clock():
            # valid in a replay of the past, but logging it now would enroll nobody
            raise ProtocolViolation(f"{describe(typed)} expired at {typed.document.not_after}: "
                                    "have the authority enroll the key again",
                                    code=Code.ROSTER_EXPIRED)
        if isinstance(typed.document, EpochKey) and not publishable(typed.document, self.clock()):
            raise ProtocolViolation(f"{describe(typed)} is for epoch {typed.document.epoch}, which is "
                                    f"over or more than {PUBLISH_AHEAD} epochs ahead",
                                    code=Code.ROSTER_EPOCH_OUT_OF_RANGE)
        doc = signed["document"]
        now = self.clock()
        if kind == "agreement":
            _not_ended_before(Agreement.from_json(doc), now)
            # before it is logged, so that the feed, which delivers everyone's entries in log
            # order, finds them held and never waits on a file
            await self.load_pinned_templates([Agreement.from_json(doc)])
        appended = await self.store.append(roster_entry(signed, time=format_time(now)),
                                           envelope_id=doc_id)
        await self.feed.applied(appended.stored.index)  # the roster has taken it (``apply``)
        return appended

    async def apply(self, stored: StoredEntry, own: bool, origin: object) -> None:
        """One committed entry, in log order, whichever server logged it (``hotline.server.feed``;
        ``own``: this one): what it changes in this server's state, and its delivery to the
        members connected here (never back to the session that submitted it, ``origin``)."""
        entry, index = stored.entry, stored.index
        if isinstance(entry, RosterEntry):
            await self._take_document(entry, index, own=own)
            return
        self._observe(entry)  # this server's own submissions were held in the windows till now
        self.monitor.observe(entry)
        if isinstance(entry, EnvelopeEntry | OverdueEntry | HealthEntry):  # live on the channel
            self.hub.publish(entry.channel, index, stored.leaf,
                             skip=origin if isinstance(origin, Connection) else None)
            if isinstance(entry, HealthEntry):
                self.hub.notify(entry.channel, self.monitor.frame(entry.channel))

    async def _take_document(self, entry: RosterEntry, index: int, *, own: bool) -> None:
        """A logged roster document, as ``load`` takes it (one the authorities refuse now is
        skipped); then every session hears of it and has its channels fixed. An agreement's
        templates are loaded here only when another server logged it (``add_document`` loads
        them before it logs one)."""
        try:
            signed = SignedDocument.from_json(entry.signed)
            if isinstance(signed.document, AgreementDocument) and not own:
                await self.load_pinned_templates([Agreement.from_json(entry.signed["document"])])
            self.roster.add(signed)
        except HotlineError as exc:
            log.warning("roster.skipped", index=index, code=exc.code, reason=exc.message)
            return
        self._took(signed, index)
        if isinstance(signed.document, AgreementDocument):
            self.monitor.sync_agreements()
        log.info("roster.added", index=index, document=describe(signed))
        self.hub.broadcast(frames.Roster(documents=[signed], indexes=[index]))
        self._refresh_channels()

    def _took(self, signed: SignedDocument, index: int) -> None:
        self.documents.append(signed)
        self.document_indexes.append(index)

    def roster_frame(self) -> frames.Roster:
        """Every document the roster took, with the index each is logged at."""
        return frames.Roster(documents=self.documents, indexes=self.document_indexes)

    def _refresh_channels(self) -> None:
        """After an agreement or revocation: fix each live connection's channels and key
        validity (a revocation may take effect now or later), ending the sessions of keys no
        longer valid (an authentication failure always closes)."""
        for conn in list(self.hub.all):
            self.hub.leave(conn)
            conn.channels.clear()
            if self.watch_validity(conn):
                self.hub.join(conn, self.roster.channels_of(conn.member))

    def watch_validity(self, conn: Connection) -> bool:
        """Arm ``conn``'s expiry at the moment its key stops being valid; False (and the session
        closed with 4001) if it is not valid now."""
        try:
            self.check_key(conn)
        except AuthError:
            return False
        enrolled = self.roster.enrollments[conn.member.key_id]
        ends = [t for t in (enrolled.not_after, enrolled.revoked_at) if t is not None]
        conn.valid_until = min(ends) if ends else None
        delay = (conn.valid_until - self.clock()).total_seconds() if conn.valid_until else None
        conn.expire_at(delay, lambda: self.watch_validity(conn))
        return True

    def check_key(self, conn: Connection) -> None:
        """Rule 3 of ``hotline.server.hub``: the session's key must be valid now, at every use.

        Raises:
            AuthError: it is not (the session has been sent the error and is closing, 4001).
        """
        try:
            self.roster.member_for_key(conn.member.key_id, at=self.clock())
        except AuthError as exc:
            if conn.closing is None:
                log.warning("session.ended", member=conn.member.member, code=exc.code)
                conn.send(frames.error(exc))
                conn.close(CLOSE_AUTH_FAILED, exc.code)
            raise

    def authenticate(self, key: Verifier) -> Member:
        return self.authenticate_key_id(key.key_id)

    def authenticate_key_id(self, key_id: str) -> Member:
        return self.roster.member_for_key(key_id, at=self.clock())

    async def queue_submit(self, conn: Connection, submit: Submit) -> None:
        """Take a submission from a member's connection: refused at once beyond the member's
        ceiling, else queued for its fair turn (waits while the member's queue is full, which
        stops reading its connection)."""
        who = (conn.member.party, conn.member.member)
        bucket = self._buckets.get(who)
        if bucket is None:
            bucket = self._buckets[who] = TokenBucket(self.limits.member_rate,
                                                      self.limits.member_burst)
        if not bucket.take():
            envelope = submit.envelope
            self.refuse(conn, envelope.channel, envelope.template, ProtocolViolation(
                f"{conn.member.member} submits faster than this server allows one member "
                f"({self.limits.member_rate:g}/s, bursts of {self.limits.member_burst}); slow "
                "down and resend", code=Code.SUBMIT_RATE_LIMITED, ref=envelope.id), req=submit.req)
            return
        await self.turns.put(who, (conn, submit), dead=conn.dead)

    async def run_turns(self) -> None:
        """The submissions worker: every member's queued submissions, in fair turns. With
        verification threads, a submission's signature starts in one as its turn is taken, up
        to ``AHEAD`` turns before it is checked (``hotline.ahead``); the checks themselves, and
        the order of the log, follow the turns."""
        if not self.verifiers.threads:
            await self.turns.run(lambda job: self._take_turn(job[0], job[1], None))
            return
        ahead: asyncio.Queue[tuple[Connection, Submit, Early | None]] = asyncio.Queue(AHEAD)

        async def take(job: tuple[Connection, Submit]) -> None:
            conn, submit = job
            if not conn.dead.is_set():
                await ahead.put((conn, submit, self._verify_ahead(conn, submit)))

        async def in_turn() -> None:
            since = time.perf_counter()
            while True:
                if time.perf_counter() - since >= TURN_BUDGET:  # reads, pings and deliveries go on
                    await asyncio.sleep(0)
                    since = time.perf_counter()
                conn, submit, early = await ahead.get()
                if early is not None:
                    await early.settled()
                await self._take_turn(conn, submit, early)

        checking = asyncio.create_task(in_turn(), name="submission-checks")
        try:
            await self.turns.run(take)
        finally:
            checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checking

    async def _take_turn(self, conn: Connection, submit: Submit, early: Early | None) -> None:
        """One submission's turn; never raises (one submission's bug must not stop the turns)."""
        if conn.dead.is_set():
            return
        try:
            with structlog.contextvars.bound_contextvars(member=conn.member.member,
                                                         party=conn.member.party):
                await self.submit(conn, submit, early)
        except AuthError:
            pass  # check_key has closed the session
        except HotlineError as exc:
            conn.send(frames.error(exc, req=submit.req))
        except Exception:
            log.exception("submit.failed", id=submit.envelope.id)

    def _verify_ahead(self, conn: Connection, submit: Submit) -> Early | None:
        """Start checking the signature of a submission whose cheap checks pass (so that a
        member's mislabelled submissions cost no verification, as inline)."""
        envelope, member = submit.envelope, conn.member
        if envelope.sender != member.member or submit.sig.get("key") != member.key_id:
            return None
        try:
            key = self.roster.envelope_key(member.key_id, envelope.channel, envelope.template)
        except HotlineError:
            return None  # refused in its turn, with the inline check's error
        return self.verifiers.start(envelope, key, submit.sig)

    async def submit(self, conn: Connection, submit: Submit, early: Early | None = None) -> None:
        """Check one envelope and queue it for commit, in the order this connection sent it.

        The member gets ``accepted`` (or a typed ``error``) once the commit is durable; the wait
        runs in a task of its own so that one connection's pipelined submissions share group
        commits. An authenticated sender's refused attempt is logged as a ``rejected`` entry.
        """
        envelope = submit.envelope
        self.check_key(conn)
        try:
            now = self.clock()
            agreement = self._check(conn.member, submit, early)
            expects, late = await self._check_norms(conn.member, envelope, agreement, now)
        except HotlineError as refused:
            exc = refused.with_ref(envelope.id)
            existing = await self.store.by_envelope_id(envelope.store_key)
            if existing is not None and self._same(existing, envelope, submit.sig):
                conn.send(self._duplicate(existing, submit))  # a resend is not a new attempt
                return
            self.refuse(conn, envelope.channel, envelope.template, exc, req=submit.req)
            return
        entry = EnvelopeEntry(index=PENDING, time=format_time(now), channel=envelope.channel,
                              party=conn.member.party, envelope=envelope, sig=submit.sig,
                              expects=msgspec.UNSET if expects is None else expects,
                              late=True if late else msgspec.UNSET)
        try:
            future = self.store.enqueue(entry, envelope_id=envelope.store_key, origin=conn)
        except HotlineError:
            self._release_rate(conn.member.party, envelope)
            raise
        task = asyncio.create_task(self._commit(conn, submit, future, now, time.perf_counter()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check(self, member: Member, submit: Submit, early: Early | None = None) -> Agreement:
        """Identity, signature and channel membership; the agreement the envelope falls under.
        ``early``: the signature's check started ahead, settled (``hotline.ahead``)."""
        envelope = submit.envelope
        if envelope.sender != member.member:
            raise ProtocolViolation(f"envelope.sender is {envelope.sender!r} but this session is "
                                    f"{member.member!r}", code=Code.AUTH_SENDER_MISMATCH)
        if submit.sig.get("key") != member.key_id:
            raise CryptoError("sig.key is not the key this session authenticated with",
                              code=Code.AUTH_WRONG_KEY)
        now = self.clock()
        self.roster.member_for_key(member.key_id, at=now)
        agreement = self.roster.check_send(member, envelope.channel, envelope.kind, at=now)
        created = envelope.created_at
        if created - now > self.clock_skew:
            raise ProtocolViolation("envelope.created is in the future beyond the allowed clock "
                                    "skew", code=Code.ENVELOPE_CLOCK_SKEW)
        self.roster.member_for_key(member.key_id, at=created)
        check_signature(envelope, self.roster.envelope_key(member.key_id, envelope.channel,
                                                           envelope.template), submit.sig, early)
        check_ack_id(envelope, party=member.party)  # an ack's id is its sender's, no one else's
        return agreement

    async def _check_norms(self, member: Member, envelope: Envelope, agreement: Agreement,
                           now: datetime) -> tuple[Expects | None, bool]:
        """The agreed template, its rules and rate (docs/ARCHITECTURE.md "Protocol templates").
        Returns what the server adds
        to the entry: ``expects`` (the acknowledgement owed, and by when) and ``late``."""
        template = self.templates.resolve(agreement, envelope.template)
        target = await self._reply_target(envelope)
        expects: Expects | None = None
        if envelope.kind is Kind.VIOLATION:
            check_violation(envelope, None if target is None else Reported.of(target),
                            party=member.party)
        elif envelope.kind is Kind.ACK:
            if target is not None:  # no party owes an ack of its own message: none is logged
                check_ack_party(party=member.party, message_party=target.party,
                                message=f"message {target.index}")
            if target is not None and target.envelope.template != envelope.template:
                raise ProtocolViolation("an ack carries the template of the message it acknowledges "
                                        f"({target.envelope.template})", code=Code.TEMPLATE_INVALID)
        else:
            replied = (Replied(template=target.envelope.template, party=target.party,
                               kind=target.envelope.kind.value) if target is not None else None)
            template.check(envelope, Context(agreement=agreement, party=member.party,
                                             role=member.role.value, logged=now, replied=replied))
            deadline = template.ack_deadline(envelope.precedence)
            parties = template.recipients(agreement, member.party, envelope.body)
            if deadline is not None and parties and template.ack is not None:
                expects = Expects(ack=template.ack.kind.value, parties=parties,
                                  due=format_time(now + deadline))
        late = (target is not None and isinstance(target.expects, Expects)
                and lateness(target.expects, party=member.party, envelope=envelope, at=now) is True)
        if counts_toward_rate(envelope.kind) and template.rate is not None:
            self._check_rate(template, member, envelope, now)  # it holds a place in the window
        if envelope.kind is Kind.MESSAGE and template.attachments:
            try:  # last: what a message that passed every check names is kept from now on
                await self._check_attachments(template, member, envelope)
            except HotlineError:
                self._release_rate(member.party, envelope)
                raise
        return expects, late

    def _check_rate(self, template: Template, member: Member, envelope: Envelope,
                    now: datetime) -> None:
        assert template.rate is not None
        key = (envelope.channel, member.party, template.id)
        until = self.rates.check(key, template.rate, now)
        if until is not None:
            raise ProtocolViolation(
                f"{template.id}: the agreement allows {member.party} at most {template.rate.max} "
                f"per {describe_duration(template.rate.per)} on channel {envelope.channel}; the "
                f"next one is allowed at {format_time(until)}", code=Code.NORM_RATE_LIMITED)
        self.rates.hold(key, envelope.id, now)  # until logged: pipelined submissions count too

    async def _check_attachments(self, template: Template, member: Member, envelope: Envelope) -> None:
        """Every attachment the body names is stored, uploaded in full by the sender's party:
        ``accepted`` then means the whole document is durable (``attachment.missing``). Named
        first, then looked for, so content is never forgotten (``Store.forget_unnamed``) between
        the two."""
        held = template.held_attachments(envelope)
        await self.store.name_attachments([n.held.sha256 for n in held])  # kept from now on
        for named in held:
            if await self.store.uploaded_by(member.party, named.held.sha256) != named.held.size:
                raise ProtocolViolation(f"{named.where} names an attachment {member.party} has not "
                                        "uploaded in full: upload it first",
                                        code=Code.ATTACHMENT_MISSING)

    def _release_rate(self, party: str, envelope: Envelope) -> None:
        """Its place in the rate window: it was not logged after all (a failure, a resend, a
        refusal after the rate check)."""
        self.rates.release((envelope.channel, party, envelope.template), envelope.id)

    async def _commit(self, conn: Connection, submit: Submit, future: asyncio.Future[Appended],
                      now: datetime, queued: float) -> None:
        envelope = submit.envelope
        try:
            appended = await future
            self.metrics.commit_seconds.observe(time.perf_counter() - queued)
        except HotlineError as exc:
            self._release_rate(conn.member.party, envelope)
            exc = exc.with_ref(envelope.id)
            log.error("envelope.commit_failed", id=envelope.id, code=exc.code, reason=exc.message)
            conn.send(frames.error(exc, req=submit.req))
            return
        if appended.duplicate:  # a resend: it was counted when first accepted
            self._release_rate(conn.member.party, envelope)
            if self._same(appended.stored, envelope, submit.sig, checked=True):
                conn.send(self._duplicate(appended.stored, submit))
            else:
                conn.send(frames.error(ProtocolViolation(
                    "an envelope with this id but other content is already logged; a new message "
                    "needs a new id", code=Code.ENVELOPE_ID_CONFLICT, ref=envelope.id), req=submit.req))
            return
        index = appended.stored.index
        self.metrics.accepted.labels(envelope.kind.value).inc()
        conn.send(frames.Accepted(id=envelope.id, index=index, req=submit.req))
        # Liaisons get a receipt for every message and ack; agents' heartbeats and echoes get
        # none (their agent is the party's witness, and a proof per heartbeat would double the
        # server's work at a thousand channels).
        if envelope.kind in (Kind.MESSAGE, Kind.ACK, Kind.VIOLATION):
            self.checkpointer.want_receipt(conn, index)
        log.info("envelope.accepted", index=index, id=envelope.id, channel=envelope.channel,
                 sender=conn.member.member, party=conn.member.party, kind=envelope.kind.value,
                 template=envelope.template, precedence=envelope.precedence.value)

    async def drain(self) -> None:
        """Wait for every queued commit to be answered (shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @staticmethod
    def _same(stored: StoredEntry, envelope: Envelope, sig: Mapping[str, object], *,
              checked: bool = False) -> bool:
        """Whether an envelope whose dedup key is already logged is the logged one again: the
        same signed envelope; or, once it passed every check for this session (``checked``: its
        derived id is this sender's), the same acknowledgement, whatever its ``created``.
        Unchecked, only the exact signed bytes count, so that a refused attempt is answered with
        its own refusal and nobody learns of another member's ack by guessing its id."""
        entry = stored.entry
        if not isinstance(entry, EnvelopeEntry):
            return False
        logged = entry.envelope
        if logged == envelope and entry.sig == sig:
            return True
        return (checked and envelope.kind in (Kind.ACK, Kind.VIOLATION) and logged.kind is envelope.kind
                and logged.id == envelope.id and logged.sender == envelope.sender
                and logged.reply_to == envelope.reply_to and logged.body == envelope.body)

    @staticmethod
    def _duplicate(stored: StoredEntry, submit: Submit) -> frames.Accepted:
        """The original ``accepted`` of a logged envelope (``duplicate: true``), answering
        ``submit`` (a resend of it)."""
        return frames.Accepted(id=submit.envelope.id, index=stored.index, duplicate=True,
                               req=submit.req)

    async def _reply_target(self, envelope: Envelope) -> EnvelopeEntry | None:
        """The logged envelope entry ``reply_to`` names: an ack or a reply answers a message on
        the same channel, an echo a heartbeat."""
        if envelope.reply_to is None:
            return None
        wanted = Kind.HEARTBEAT if envelope.kind is Kind.ECHO else Kind.MESSAGE
        if envelope.kind is Kind.HEARTBEAT:
            raise WireError("a heartbeat answers nothing: no reply_to", code=Code.ENVELOPE_INVALID)
        target = await self.store.by_envelope_id(envelope.reply_to)
        entry = target.entry if target is not None else None
        if (not isinstance(entry, EnvelopeEntry) or entry.channel != envelope.channel
                or entry.envelope.kind is not wanted):
            raise ProtocolViolation(f"reply_to {envelope.reply_to} is not {article(wanted)} on channel "
                                    f"{envelope.channel}", code=UNKNOWN_REF[envelope.kind])
        return entry

    async def run_deadlines(self, interval: float) -> None:
        """The leader, every ``interval`` seconds: log an ``overdue`` entry for each message
        whose deadline passed without every recipient's acknowledgement (``apply`` delivers it)."""
        while True:
            now = self.clock()
            for item in self.deadlines.overdue(now):
                try:
                    # its own dedup key: a notice whose commit was in doubt is never logged twice
                    appended = await self.store.append(item.overdue_entry(time=format_time(now)),
                                                       envelope_id=f"overdue:{item.envelope_id}")
                except HotlineError as exc:  # a failing disk must not end the deadline watch
                    log.error("ack.overdue_not_logged", message=item.index, code=exc.code,
                              reason=exc.message)
                    self.deadlines.rearm(item)  # tried again at the next sweep
                    continue
                log.warning("ack.overdue", index=appended.stored.index, message=item.index,
                            channel=item.channel, template=item.template,
                            precedence=item.precedence, missing=sorted(item.missing),
                            due=format_time(item.due))
            await asyncio.sleep(interval)

    async def run_rejection_summaries(self, interval: float) -> None:
        """Every server, every ``interval`` seconds: its members' refusal windows that ended."""
        while True:
            await self.log_rejection_summaries()
            await asyncio.sleep(interval)

    def refuse(self, conn: Connection, channel: str, template: str, exc: HotlineError, *,
               req: frames.Req) -> None:
        """Answer an authenticated member's refused submission, and record it: one ``rejected``
        entry each while the member's budget lasts (answered once it is durable), then counted
        for the window's ``rejections`` summary (``hotline.server.fairness``). Never the body."""
        code = str(exc.code)  # entries hold plain JSON strings
        self.metrics.rejected.labels(code).inc()
        member = conn.member
        if not self.rejections.allow((member.party, member.member), code, self.clock()):
            conn.send(frames.error(exc, req=req))
            return
        visible = channel if channel in self.roster.channels_of(member) else None
        entry = RejectedEntry(index=PENDING, time=format_time(self.clock()), party=member.party,
                              member=member.member, template=template, code=code,
                              reason=exc.message,
                              ref=exc.ref if exc.ref is not None else msgspec.UNSET,
                              channel=visible if visible is not None else msgspec.UNSET)
        log.warning("submit.rejected", member=member.member, party=member.party, code=exc.code,
                    reason=exc.message, ref=exc.ref)
        frame = frames.error(exc, req=req)

        def answer(future: asyncio.Future[Appended]) -> None:
            # the submissions worker goes on meanwhile: it never waits for a refusal's commit
            if not future.cancelled() and future.exception() is not None:
                log.error("store.append_failed", kind="rejected", error=str(future.exception()))
            conn.send(frame)
        self.store.enqueue(entry).add_done_callback(answer)

    async def log_rejection_summaries(self) -> None:
        """Log the summary of each member's refusal window that has ended."""
        for entry in self.rejections.due(self.clock()):
            appended = await self.store.append(entry)
            log.warning("submit.rejections_summarized", index=appended.stored.index,
                        member=entry.member, party=entry.party, count=entry.count)

    async def resume(self, conn: Connection, channel: str, after: int, *, req: frames.Req) -> None:
        """Replay every entry of ``channel`` after ``after``, then the live ones, in index order,
        in a task of the session paced by the member's reading; ``resumed`` follows the replay.
        Rule 2 of ``hotline.server.hub``."""
        self.check_key(conn)
        self.roster.check_channel(conn.member, channel)
        if channel not in conn.channels:
            raise ProtocolViolation(f"channel {channel} is not open on this session",
                                    code=Code.CHANNEL_NOT_MEMBER)
        if channel in conn.replaying:
            raise WireError(f"a replay of channel {channel} is already running on this session; "
                            "wait for its resumed", code=Code.FRAME_OUT_OF_ORDER)
        conn.replaying[channel] = -1
        conn.spawn(self._replay(conn, channel, after, req), name=f"replay-{conn.member.member}-{channel}")

    async def _replay(self, conn: Connection, channel: str, after: int, req: frames.Req) -> None:
        last = after
        try:
            while True:
                page = await self.store.entries(channel=channel, after=last, limit=REPLAY_PAGE)
                for stored in page:
                    if not self._still_valid(conn):
                        return
                    _ = stored.entry  # decoded first: a damaged leaf is store.damaged, never sent
                    await conn.put(frames.deliver_text(stored.index, stored.leaf))
                    last = stored.index
                # read on while the page was full or live entries were noted past it; else no
                # await separates the last read from going live
                if len(page) < REPLAY_PAGE and conn.replaying[channel] <= last:
                    break
            del conn.replaying[channel]
            conn.live_after[channel] = last
            await conn.put(frames.encode(frames.Resumed(channel=channel, index=last, req=req)))
        except ConnectionGone:
            return
        except HotlineError as exc:
            conn.replaying.pop(channel, None)
            conn.send(frames.error(exc, req=req))

    def _still_valid(self, conn: Connection) -> bool:
        try:
            self.check_key(conn)
        except AuthError:
            return False
        return True

    async def upload(self, conn: Connection, frame: frames.Upload | frames.UploadStatus) -> frames.Uploaded:
        """A chunk of an attachment this member's party uploads, or where its upload stands
        (``hotline.store.base``: appended only at exactly the end of what is held, stored once
        complete and its digest checked). Bounded per party: ``limits.attachment_bytes`` an
        attachment, ``limits.uploads_bytes`` under way at once (an upload idle for
        ``limits.upload_expiry`` is dropped), ``limits.upload_bytes_per_day`` in any 24 hours.

        Raises:
            ProtocolViolation: ``attachment.refused`` (not a liaison, too large, past the share).
            WireError: ``attachment.invalid`` (not base64, too long for a frame, another size
                than the upload under way).
            SealError: ``attachment.digest_mismatch`` (complete, but not that digest's bytes:
                dropped, to be sent again).
        """
        self.check_key(conn)
        member, limits = conn.member, self.limits
        if member.role is not Role.LIAISON:
            raise ProtocolViolation(f"only liaisons upload attachments; {member.member} is "
                                    f"{article(member.role.value)} {member.role.value}",
                                    code=Code.ATTACHMENT_REFUSED)
        if frame.size > limits.attachment_bytes:
            raise ProtocolViolation(f"an attachment of {frame.size} bytes is larger than this server "
                                    f"accepts ({limits.attachment_bytes})", code=Code.ATTACHMENT_REFUSED)
        moment = self.clock()
        party, sha256, now = member.party, frame.sha256, format_time(moment)
        held = await self.store.upload_state(party, sha256)
        if held is None and (size := await self.store.uploaded_by(party, sha256)) is not None:
            # this party's upload of it finished before (its answer lost with the line); a
            # party never learns here whether another holds some content
            return frames.Uploaded(sha256=sha256, received=size, stored=True, req=frame.req)
        if isinstance(frame, frames.Upload):
            data = _chunk_bytes(frame.data)
            if held is None and frame.start == 0:
                await self.expire_uploads(moment)
                if await self.store.uploading(party) + frame.size > limits.uploads_bytes:
                    raise ProtocolViolation(
                        f"{party}'s uploads under way would hold more than {limits.uploads_bytes} "
                        "bytes: finish or abandon one first", code=Code.ATTACHMENT_REFUSED)
                held = await self.store.begin_upload(party, sha256, frame.size, now)
            if held is not None:
                held.check_size(frame.size)
                until = self.upload_shares.allowed_at(party, len(data), moment)
                if until is not None:
                    raise ProtocolViolation(
                        f"{party} has uploaded its share of {limits.upload_bytes_per_day} bytes "
                        f"in 24 hours; the upload can go on from {format_time(until)}",
                        code=Code.ATTACHMENT_REFUSED)
                if await self.store.add_upload_chunk(party, sha256, frame.start, data, now):
                    self.upload_shares.add(party, len(data), moment)
                    # appended only where the upload ended: it now ends after this chunk
                    held = dataclasses.replace(held, received=frame.start + len(data))
        if held is not None and held.received == held.size:
            await self.store.finish_upload(party, sha256, now)
            log.info("attachment.stored", party=party, size=held.size)
            return frames.Uploaded(sha256=sha256, received=held.size, stored=True, req=frame.req)
        return frames.Uploaded(sha256=sha256, received=held.received if held else 0, stored=False,
                               req=frame.req)

    async def download(self, conn: Connection, frame: frames.Download) -> frames.Chunk:
        """A chunk of an attachment a logged entry on this session's channels names: who may
        read the entry may read what it names, and the entry says which content that is; a
        sealed attachment's stream only to the parties its field is sealed to.

        Raises:
            ProtocolViolation: ``log.no_entry`` (no such entry on this session's channels),
                ``attachment.missing`` (the entry names no such attachment, or it is not held),
                ``attachment.refused`` (sealed to other parties than this member's).
        """
        self.check_key(conn)
        found = await self._downloadable(frame.index, frame.field, frame.position)
        if found is None or found.channel not in conn.channels:
            raise ProtocolViolation(f"no entry {frame.index} on this session's channels",
                                    code=Code.LOG_NO_ENTRY)
        where = f"{NamedAttachment.place(frame.field, frame.position)} of entry {frame.index}"
        if found.readers is not None and conn.member.party not in found.readers:
            raise ProtocolViolation(f"{where} is sealed to {', '.join(sorted(found.readers))}; "
                                    f"{conn.member.party} may not download it",
                                    code=Code.ATTACHMENT_REFUSED)
        held = found.held
        if held is None or not found.stored:
            raise ProtocolViolation(f"{where} is no attachment this server holds",
                                    code=Code.ATTACHMENT_MISSING)
        data = await self.store.attachment_bytes(held.sha256, min(frame.start, held.size),
                                                 frames.UPLOAD_CHUNK)
        return frames.Chunk(sha256=held.sha256, size=held.size, start=frame.start,
                            data=base64.b64encode(data).decode("ascii"), req=frame.req)

    async def _downloadable(self, index: int, field: str, position: int) -> Downloadable | None:
        """What entry ``index`` says of its attachment ``position`` of ``field`` (None: no
        envelope entry there), under the channel's current agreement. An entry never changes
        and the content a logged entry names is never removed (``Store.forget_unnamed`` drops
        only content no message named), so a download's chunks after the first reuse it
        (the last ``DOWNLOADS_KEPT`` asked for, until the agreement changes); who asks is checked
        by the caller every time."""
        key = (index, field, position)
        found = self._downloads.get(key)
        if found is not None and self.roster.agreements.get(found.channel) is found.agreement:
            self._downloads.move_to_end(key)
            return found
        stored = await self.store.entry(index)
        entry = stored.entry if stored is not None else None
        if not isinstance(entry, EnvelopeEntry):
            return None
        agreement = self.roster.agreements.get(entry.channel)
        template = self._agreed_template(entry.channel, entry.envelope.template)
        named = template.held_attachments(entry.envelope) if template is not None else []
        hit = next((n for n in named if (n.field, n.position) == (field, position)), None)
        readers = (template.readers_of(field, agreement.parties)
                   if hit is not None and hit.sealed and template and agreement else None)
        held = hit.held if hit is not None else None
        stored_now = held is not None and await self.store.attachment_size(held.sha256) == held.size
        found = Downloadable(entry.channel, agreement, held,
                             None if readers is None else frozenset(readers), stored_now)
        if found.stored:  # what is not held yet is looked up again next time
            self._downloads[key] = found
            while len(self._downloads) > DOWNLOADS_KEPT:
                self._downloads.popitem(last=False)
        return found

    async def fetch(self, conn: Connection, index: int, *, req: frames.Req) -> str:
        """The ``deliver`` frame (as sent) answering a fetch of entry ``index``."""
        self.check_key(conn)
        stored = await self.store.entry(index)
        channel = channel_of(stored.entry) if stored is not None else None
        if stored is None or channel not in conn.channels:
            raise ProtocolViolation(f"no entry {index} on this session's channels",
                                    code=Code.LOG_NO_ENTRY)
        return frames.deliver_text(index, stored.leaf, req=req)


DOWNLOADS_KEPT = 256  # attachments whose entry a download's next chunk need not read again


@dataclasses.dataclass(frozen=True)
class Downloadable:
    """An attachment a logged entry names, as a download request finds it: the entry's channel,
    the agreement it was resolved under, the stored bytes it names (None: no such attachment),
    the parties it is sealed to (None: clear), and whether the server holds those bytes."""

    channel: str
    agreement: Agreement | None
    held: StoredStream | None
    readers: frozenset[str] | None
    stored: bool


def _chunk_bytes(text: str) -> bytes:
    """An ``upload`` frame's data: strict base64 of at most ``UPLOAD_CHUNK`` bytes."""
    if len(text) > 4 * (-(-frames.UPLOAD_CHUNK // 3)):
        raise WireError(f"an upload frame carries at most {frames.UPLOAD_CHUNK} bytes",
                        code=Code.ATTACHMENT_INVALID)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WireError("an upload frame's data is not base64", code=Code.ATTACHMENT_INVALID) from None


REPLAY_PAGE = 500
FOLLOW_POLL = 1.0  # seconds: a shared log is checked for other servers' commits at least this often
