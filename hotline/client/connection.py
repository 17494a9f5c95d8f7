"""The client's connection to a hotline server, used by ``send``/``listen``/``ack`` and, later, the
console and the agent.

One reader task drains the socket (websockets stops answering pings if nobody reads) and routes
frames: an answer (``accepted``, ``error``, ``resumed``, a fetch's ``deliver``) to the request
whose id (``req``, ``hotline.wire.frames``) it echoes, ``roster`` into the local roster, live
``deliver`` into a queue. The host is trusted for nothing it cannot prove:

- every frame, and the entry it carries, is decoded strictly (``hotline.wire``,
  ``hotline.entries``); a malformed one is reported as a ``HostProblem`` and skipped;
- deliveries must come in order (``hotline.client.streams``): an index that goes backwards, or
  another entry under an index already delivered, is a ``HostProblem``, the same entry again is
  skipped;
- every delivered envelope is checked against the roster built from the authorities this member
  pinned (``hotline.verification``), on a channel whose agreement those authorities signed and
  that names this member's party, and each envelope id is shown once;
- ``accepted`` is a claim: ``prove`` turns it into a signed checkpoint and an inclusion proof of
  the very entry we signed, or a ``log.unproven`` error.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import ssl
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from hotline.attachments.refs import Digester, SealedAttachmentRef
from hotline.attachments.stream import CHUNK, ChunkOpener
from hotline.canonical import JSONObject
from hotline.client.logapi import LogClient, http_base
from hotline.client.problems import HostProblem
from hotline.client.profile import Profile
from hotline.client.receipts import bundle_from_frame, verify_receipt
from hotline.client.sealer import keys_of, readers_for, sealed
from hotline.client.streams import Arrival, Streams
from hotline.clock import utc_now
from hotline.display import article
from hotline.entries import Entry, EnvelopeEntry, EpochKeyEntry, channel_of, decode_leaf, kind_of, leaf_bytes
from hotline.envelope import AckKind, Envelope, Kind, Precedence, ack_id, new_envelope_id, violation_id
from hotline.epochkeys import EpochKey
from hotline.errorcodes import Code
from hotline.errors import (
    AuthError,
    ConfigError,
    HotlineError,
    LogError,
    PeerCode,
    ProtocolViolation,
    SealError,
    WireError,
)
from hotline.keys import Signer
from hotline.norms.files import load_pinned
from hotline.norms.template import NamedAttachment, Template
from hotline.norms.templateset import TemplateSet
from hotline.roster import Member, RefusedDocument, Roster, SignedDocument, envelope_signer, refused_document
from hotline.sealing import StoredStream
from hotline.tlog import NoteVerifier, ProofBundle, verify_checkpoint
from hotline.verification import EntryRefused, verify_envelope_entry
from hotline.wire import frames
from hotline.wire.frames import Accepted, Deliver, Health, Receipt, Request, Resumed, Welcome, encode
from hotline.wire.session import ClientSession

UPLOAD_WINDOW = 8  # chunks of an upload in flight at once (64 KiB each)
MAX_RECEIPTS = 4096  # receipts kept for ``receipt()`` waiters; older ones are dropped
MAX_SHOWN = 1 << 16  # envelope ids remembered as shown (a long-running member forgets the oldest)
A = TypeVar("A", bound=frames.Answer)


class ConnectError(HotlineError):
    code = Code.CONNECT_FAILED


def try_hint(profile: Path | None = None) -> str:
    """What to try when no server answered (``profile``: the file whose servers were tried)."""
    where = f" in {profile}" if profile is not None else ""
    return ("Is the server running (`hotline serve`, on the port these URLs name)? The URLs are "
            f"--server's, else HOTLINE_SERVER's, else the profile's `servers`{where}; give the "
            "server's with --server URL or HOTLINE_SERVER=URL")


def unreachable(errors: list[str], *, profile: Path | None = None) -> ConnectError:
    """No server answered: each URL tried and why (``errors``), then what to try."""
    return ConnectError(f"no server answered: {'; '.join(errors) or 'no URL to try'}. "
                        f"{try_hint(profile)}.")


class Unproven(LogError):
    """The host's claim that an entry is logged could not be proven (or was disproven)."""

    code = Code.LOG_UNPROVEN


@dataclass(frozen=True)
class Delivered:
    """A delivered envelope entry that verified here (``hotline.verification``). What the host
    added to it (``entry.time``, ``entry.expects``, ``entry.late``) is unsigned."""

    index: int
    entry: EnvelopeEntry
    envelope: Envelope


@dataclass(frozen=True)
class Refused:
    """A delivered envelope entry that did NOT verify here: never shown as the sender's word."""

    index: int
    entry: EnvelopeEntry
    reason: str
    code: str = EntryRefused.code


@dataclass(frozen=True)
class Proof:
    """Our entry ``index``, proven in the log: a receipt (C2SP tlog-proof) that verified against
    the pinned log key, whose leaf is the entry we signed."""

    index: int
    size: int  # the size of the signed checkpoint it is proven in
    receipt: str


Item = Delivered | Refused | Entry | HostProblem
"""What ``deliveries_verified`` yields: envelope entries checked, other entries (the host's
notices, roster changes) as they came."""


class Client:
    def __init__(self, *, key: Signer, origin: str, roster: Roster,
                 protocols: Path | None = None, log_key: NoteVerifier | None = None) -> None:
        self.key = key
        self.protocols, self.log_key = protocols, log_key  # to seal what ``send`` sends
        self._templates = TemplateSet()
        self._templates_for: frozenset[str] | None = None  # the digests they were read for
        self.session = ClientSession(key=key, origin=origin)
        self.roster = roster
        self.ws: ClientConnection | None = None
        self.url = ""
        self.ssl_context: ssl.SSLContext | None = None
        self._welcome: Welcome | None = None
        # deliver frames in order, and what the host sent that was refused, in arrival order
        self.deliveries: asyncio.Queue[Deliver | HostProblem] = asyncio.Queue()
        self.streams = Streams()
        self._shown: dict[str, int] = {}  # envelope id -> the index it verified at
        self._pending: dict[int, tuple[Request, asyncio.Future[frames.Answer]]] = {}  # by req
        self._session_error: frames.Error | None = None
        self._reader: asyncio.Task[None] | None = None
        self._roster_ready = asyncio.Event()
        self.documents: list[SignedDocument] = []  # the signed roster documents ``roster`` took
        self.refused_documents: list[RefusedDocument] = []  # those it refused (type and code)
        self.logged_at: dict[str, int] = {}  # epoch key id -> the index the host says logs it
        self.proven_keys: set[str] = set()  # epoch key ids proven logged (pinned log key)
        self._proving: dict[str, asyncio.Future[None]] = {}  # epoch key id -> its proof under way
        self.checkpoint = ""  # the latest checkpoint the server pushed (unverified)
        self.checkpoint_arrived = asyncio.Event()
        self.receipts: dict[int, Receipt] = {}  # index -> receipt frame
        self._receipt_arrived = asyncio.Event()
        self.health: dict[str, Health] = {}  # channel -> the server's latest health frame
        self.health_changed = asyncio.Event()
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @classmethod
    def for_profile(cls, profile: Profile, key: Signer | None = None) -> Client:
        """A client of ``profile``'s member that trusts only the authorities it pinned (``key``:
        the member's key if already loaded)."""
        return cls(key=key or profile.signing_key(), origin=profile.origin,
                   roster=Roster(profile.authorities),
                   protocols=profile.protocols,
                   log_key=profile.log_key)

    @property
    def templates(self) -> TemplateSet:
        """The templates this member holds that its roster's agreements pin, as last read
        (``read_templates``: on connecting, and when an agreement pins new ones)."""
        return self._templates

    async def read_templates(self) -> TemplateSet:
        """Read, in a thread, the templates of the profile's folder that the roster's agreements
        pin (``load_pinned``: a file no agreement pins is hashed, never parsed; one that cannot
        be read or parsed is left out, and what needs it is refused by ``resolve``); again only
        when the agreements pin other digests."""
        wanted = frozenset(ref.sha256 for agreement in self.roster.agreements.values()
                           for ref in agreement.templates)
        if self.protocols is not None and wanted != self._templates_for:
            found, _ = await asyncio.to_thread(load_pinned, self.protocols, wanted)
            held = TemplateSet()
            for template in found:
                with contextlib.suppress(ConfigError):  # two files of one id and version
                    held.add(template)
            self._templates, self._templates_for = held, wanted
        return self._templates

    @property
    def welcome(self) -> Welcome:
        """The server's ``welcome`` (once connected)."""
        if self._welcome is None:
            raise ConnectError("not connected")
        return self._welcome

    @property
    def member(self) -> str:
        return self.welcome.member

    @property
    def party(self) -> str:
        return self.welcome.party

    @property
    def me(self) -> Member | None:
        """This member as the roster built from its pinned authorities knows its key (not as the
        host's ``welcome`` says)."""
        enrolled = self.roster.enrollments.get(self.key.public_key.key_id)
        if enrolled is None:
            return None
        return Member(enrolled.party, enrolled.member, enrolled.role, self.key.public_key.key_id)

    async def connect(self, url: str, *, ssl_context: ssl.SSLContext | None = None,
                      open_timeout: float = 10.0) -> None:
        """Open the socket and run the handshake; raises ConnectError or AuthError.

        ``ssl_context`` is used for ``wss://`` URLs (default: the system's CAs).
        """
        # wss: our context, else the system's (True); ws: none
        tls = (ssl_context or True) if url.startswith("wss:") else None
        self.url, self.ssl_context = url, ssl_context
        try:
            # compression off: compressing secrets next to attacker-chosen text leaks (CRIME)
            self.ws = await connect(url, proxy=None, compression=None, open_timeout=open_timeout,
                                    max_size=16 * 1024 * 1024, max_queue=64, ssl=tls)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ConnectError(f"cannot connect to {url}: {exc}") from exc
        try:
            first = self.session.receive(await self.ws.recv())
            assert isinstance(first, frames.Challenge)
            await self.ws.send(encode(self.session.auth_frame(first, now=utc_now())))
            self.session.receive(await self.ws.recv())
        except ConnectionClosed as exc:
            raise ConnectError(f"server closed the connection during the handshake: {exc}") from exc
        except (AuthError, WireError):
            await self.ws.close()
            raise
        self._welcome = self.session.welcome
        self._reader = asyncio.create_task(self._read_loop(), name="client-reader")
        await self._roster_ready.wait()
        await self.read_templates()

    async def _read_loop(self) -> None:
        assert self.ws is not None
        reason = "closed"
        try:
            async for text in self.ws:
                try:
                    self._route(self.session.receive(text))
                except WireError as exc:  # reported and skipped: the next frame may be fine
                    self.deliveries.put_nowait(HostProblem(f"the host sent a bad frame: {exc.message}"))
        except ConnectionClosed as exc:
            reason = f"connection closed ({exc})"
        finally:
            rc = self.ws.close_code
            reason = f"{reason} code={rc}" if rc is not None else reason
            if self._session_error is not None:
                reason += f" after {self._session_error.code}: {self._session_error.message}"
            error = ConnectError(f"connection lost: {reason}")
            for _, future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            self._roster_ready.set()
            if not self.closed.done():
                self.closed.set_result(reason)

    def _route(self, frame: frames.ServerFrame) -> None:
        if isinstance(frame, frames.Accepted | frames.Error | frames.Resumed | frames.Pong
                      | frames.Uploaded | frames.Chunk) or (
                isinstance(frame, Deliver) and isinstance(frame.req, int)):
            self._answer(frame)
        elif isinstance(frame, Deliver):
            self._arrive(frame)
        elif isinstance(frame, frames.Roster):
            indexes = frame.indexes if isinstance(frame.indexes, list) else []
            for position, value in enumerate(frame.documents):
                try:
                    signed = SignedDocument.from_json(value)
                    self.roster.add(signed)
                except HotlineError as exc:  # what our pinned authorities refuse: its type, why
                    self.refused_documents.append(refused_document(value, exc, self.roster))
                    continue
                self.documents.append(signed)
                if isinstance(signed.document, EpochKey) and position < len(indexes):
                    self.logged_at[signed.document.key_id] = indexes[position]
            self._roster_ready.set()
        elif isinstance(frame, frames.Checkpoint):
            self.checkpoint = frame.note
            self.checkpoint_arrived.set()
        elif isinstance(frame, Receipt):
            self.receipts[frame.index] = frame
            while len(self.receipts) > MAX_RECEIPTS:  # a long-running member keeps the latest
                del self.receipts[next(iter(self.receipts))]
            self._receipt_arrived.set()
        elif isinstance(frame, Health):
            self.health[frame.channel] = frame
            self.health_changed.set()

    def _answer(self, frame: frames.Answer) -> None:
        """An answer to the request whose id it echoes; one that answers none of ours (no id,
        or an id not pending) is dropped: it cannot be ours. An ``error`` of no request is the
        session's (a key revoked mid-session): kept to say why the line then drops."""
        pending = self._pending.pop(frame.req, None) if isinstance(frame.req, int) else None
        if pending is None:
            if isinstance(frame, frames.Error):
                self._session_error = frame
            return
        request, future = pending
        if isinstance(frame, Resumed) and isinstance(request, frames.Resume):
            self.streams.replayed(request.channel, frame.index)
        if not future.done():
            future.set_result(frame)

    def _arrive(self, frame: Deliver) -> None:
        """Queue a delivered entry if it comes in order (``hotline.client.streams``)."""
        channel = channel_of(frame.entry)
        arrival = self.streams.arrive(frame.index, channel, frame.entry)
        if arrival is Arrival.NEW:
            self.deliveries.put_nowait(frame)
        elif arrival is not Arrival.AGAIN:
            self.deliveries.put_nowait(HostProblem(arrival, frame.index, channel))

    async def _request(self, request: Request, answer: type[A]) -> A:
        """Send ``request`` and wait for the frame that answers it (its ``req``); an ``error``
        is raised as ``ProtocolViolation`` with its code."""
        assert self.ws is not None and isinstance(request.req, int)
        if self.closed.done():
            raise ConnectError(f"connection lost: {self.closed.result()}")
        future: asyncio.Future[frames.Answer] = asyncio.get_running_loop().create_future()
        self._pending[request.req] = (request, future)
        try:
            await self.ws.send(encode(request))
            got = await future
        finally:
            self._pending.pop(request.req, None)
        if isinstance(got, frames.Error):
            raise ProtocolViolation(got.message, code=PeerCode(got.code), ref=got.ref_id)
        if not isinstance(got, answer):
            raise WireError(f"the host answered a {request.__struct_config__.tag} with "
                            f"{got.__struct_config__.tag}", code=Code.FRAME_OUT_OF_ORDER)
        return got

    # -- requests ----------------------------------------------------------------------------

    async def submit_envelope(self, envelope: Envelope) -> Accepted:
        """Sign, send and wait for ``accepted``; a typed error frame is raised as HotlineError."""
        request = frames.Submit(envelope=envelope,
                                sig=envelope.sign(envelope_signer(self.roster, self.key, envelope)),
                                req=self.session.next_req())
        try:
            return await self._request(request, Accepted)
        except ProtocolViolation as exc:
            raise ProtocolViolation(exc.message, code=exc.code, ref=envelope.id) from None

    def envelope(self, *, channel: str, template: str, body: JSONObject,
                 precedence: Precedence | str = Precedence.ROUTINE, kind: Kind = Kind.MESSAGE,
                 reply_to: str | None = None, id: str | None = None) -> Envelope:
        return Envelope.build(id=id or new_envelope_id(os.urandom(16)), kind=kind, channel=channel,
                              sender=self.member, template=template, precedence=precedence,
                              created=utc_now(), body=body, reply_to=reply_to)

    async def sealed_envelope(self, *, channel: str, template: Template, body: JSONObject,
                              log_key: NoteVerifier | None, timeout: float = 10.0,
                              precedence: Precedence | str = Precedence.ROUTINE,
                              reply_to: str | None = None, id: str | None = None,
                              attachments: Mapping[str, list[StoredStream]] | None = None
                              ) -> Envelope:
        """A message of ``template`` whose fields ``template.readers`` names are sealed: each to
        every liaison and agent of its readers' parties who published a key for the current
        epoch (of the agreement's length) that this client's own roster verified and that is
        proven in the log against ``log_key`` (``prove_logged``; never a key only the host
        vouches for). ``id``: the envelope's id, when chosen before (a sealed attachment's
        stream is bound to it); ``attachments``: the sealed streams of each sealed attachment
        field (``hotline.client.attaching``).

        Raises:
            SealError: ``seal.no_reader`` when a field would have no reader,
                ``seal.unlogged_key`` when a reader's key is not proven logged (within
                ``timeout`` seconds): nothing is sealed then.
        """
        envelope = self.envelope(channel=channel, template=template.id, body=body,
                                 precedence=precedence, reply_to=reply_to, id=id)
        readers = readers_for(self.roster, envelope, template)
        await self.prove_logged(keys_of(readers), log_key, timeout=timeout)
        return sealed(envelope, readers, attachments)[0]

    async def prove_logged(self, keys: list[EpochKey], log_key: NoteVerifier | None, *,
                           timeout: float) -> None:
        """Prove each of ``keys`` in the log: the entry at the index the host gave with it (the
        roster frame's ``indexes``) is that very epoch-key document, and a checkpoint signed by
        the pinned ``log_key`` includes it. So every party sees the key a sender seals to, and
        a key the host made up, or keeps out of the log, is refused before anything is sealed
        to it. Proven keys are remembered for this connection, and a key being proven is proven
        once for every sender waiting on it (many messages sent at once make one proof).

        Raises:
            SealError: ``seal.unlogged_key``, naming the key and what did not hold.
        """
        log = LogClient(http_base(self.url), key=self.key, origin=self.session.origin,
                        ssl_context=self.ssl_context)
        for key in keys:
            if key.key_id in self.proven_keys:
                continue
            proving = self._proving.get(key.key_id)
            if proving is None:
                proving = self._proving[key.key_id] = asyncio.ensure_future(
                    self._prove_key(key, log_key, log, timeout=timeout))
                proving.add_done_callback(partial(self._proved, key.key_id))
            await asyncio.shield(proving)  # one waiter cancelled leaves the proof to the others

    def _proved(self, key_id: str, _: asyncio.Future[None]) -> None:
        self._proving.pop(key_id, None)  # proven (``proven_keys``), or to be tried again

    async def _prove_key(self, key: EpochKey, log_key: NoteVerifier | None, log: LogClient, *,
                         timeout: float) -> None:
        """``prove_logged`` of one key."""
        who = f"{key.member}'s ({key.party}) epoch key {key.key_id} for epoch {key.epoch}"

        def unlogged(why: str) -> SealError:
            return SealError(f"{who} {why}: nothing is sealed to a key not proven in the log",
                             code=Code.SEAL_UNLOGGED_KEY)

        index = self.logged_at.get(key.key_id)
        if log_key is None:
            raise unlogged("cannot be proven logged: the profile pins no log key")
        if index is None:
            raise unlogged("came with no log index from the host")
        try:
            entry = decode_leaf(await asyncio.to_thread(log.leaf, index), index=index)
            logged = EpochKey.from_json(entry.document) if isinstance(entry, EpochKeyEntry) else None
        except HotlineError as exc:
            raise unlogged(f"is not readable as entry {index}: {exc.message}") from exc
        if logged is None or logged.key_id != key.key_id:
            raise unlogged(f"is not entry {index}, which logs {article(kind_of(entry))} "
                           "entry" + (f" (of {logged.member})" if logged else ""))
        claim = f"the host said entry {index} logs {who}"
        try:
            async with asyncio.timeout(timeout):
                await self._proven(index, entry, log_key, claim)
        except TimeoutError:
            raise unlogged(f"is not in a checkpoint signed within {timeout:g} s") from None
        except Unproven as exc:
            raise unlogged(f"is not proven at entry {index}: {exc.message}") from exc
        self.proven_keys.add(key.key_id)

    def violation_envelope(self, delivered: Delivered, field: str, problem: HotlineError) -> Envelope:
        """Our report that sealed field ``field`` of ``delivered``, as we opened it, breaks its
        template: the rule it breaks in the template's words, never the value. Its id is derived
        (``violation_id``): one report per reader, message and field."""
        env = delivered.envelope
        return self.envelope(channel=env.channel, template=env.template, kind=Kind.VIOLATION,
                             body={"field": field, "code": str(problem.code),
                                   "reason": problem.message[:500]},
                             reply_to=env.id, id=violation_id(party=self.party, member=self.member,
                                                              reply_to=env.id, field=field))

    async def send(self, *, channel: str, template: str, body: JSONObject,
                   precedence: Precedence | str = Precedence.ROUTINE) -> Accepted:
        """Sign and send a message; the fields its agreed template seals are sealed first
        (``sealed_envelope``, against the profile's pinned log key). Nothing is sent unless this
        client holds the very template the channel's agreement pins: without it, it cannot
        know which fields the host may not read.

        Raises:
            ProtocolViolation: ``channel.unknown`` (no such channel in this member's roster),
                ``template.unknown`` / ``template.mismatch`` (``TemplateSet.resolve``); the
                server's refusal, as ``submit_envelope`` raises it.
            SealError: as ``sealed_envelope`` raises it.
        """
        agreement = self.roster.agreements.get(channel)
        if agreement is None:
            raise ProtocolViolation(f"no channel {channel!r} in {self.member}'s roster (channels: "
                                    f"{', '.join(sorted(self.roster.agreements)) or 'none'})",
                                    code=Code.CHANNEL_UNKNOWN)
        held = (await self.read_templates()).resolve(agreement, template)
        if held.readers:
            envelope = await self.sealed_envelope(channel=channel, template=held, body=body,
                                                  log_key=self.log_key, precedence=precedence)
        else:
            envelope = self.envelope(channel=channel, template=template, body=body,
                                     precedence=precedence)
        return await self.submit_envelope(envelope)

    def ack_envelope(self, delivered: Delivered, kind: AckKind) -> Envelope:
        """Our ``kind`` ack of a message. Its id is derived from (party, member, message, kind),
        so acking twice is the same acknowledgement: the server answers ``accepted`` with
        ``duplicate: true`` and the index of the ack it logged first."""
        env = delivered.envelope
        return self.envelope(channel=env.channel, template=env.template, kind=Kind.ACK,
                             body={"ack": kind.value}, precedence=env.precedence, reply_to=env.id,
                             id=ack_id(party=self.party, member=self.member, reply_to=env.id,
                                       ack=kind))

    async def ack(self, delivered: Delivered, kind: AckKind) -> Accepted:
        """Acknowledge a message (``ack_envelope``) and wait for the host's answer."""
        return await self.submit_envelope(self.ack_envelope(delivered, kind))

    async def receipt(self, index: int) -> Receipt:
        """Wait for the inclusion receipt of our entry ``index`` (sent once a checkpoint covers
        it, within the server's checkpoint delay)."""
        while index not in self.receipts:
            self._receipt_arrived.clear()
            waited: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._receipt_arrived.wait()),
                                                self.closed}
            done, pending = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            for future in pending:
                if future is not self.closed:
                    future.cancel()
            if self.closed in done and index not in self.receipts:
                raise ConnectError(f"connection lost before the receipt: {self.closed.result()}")
        return self.receipts[index]

    async def resume(self, channel: str, after: int) -> int:
        """Ask for every entry of ``channel`` after ``after``; they arrive in ``deliveries``
        before this returns the last index replayed."""
        self.streams.replay(channel, after)
        request = frames.Resume(channel=channel, after=after, req=self.session.next_req())
        try:
            answer = await self._request(request, Resumed)
        except HotlineError:
            self.streams.replayed(channel, -1)
            raise
        return answer.index

    async def ping(self) -> None:
        """A round trip to the server (its answer is read by the same reader as everything)."""
        await self._request(frames.Ping(req=self.session.next_req()), frames.Pong)

    async def upload(self, read_at: Callable[[int, int], bytes], *, sha256: str, size: int,
                     window: int = UPLOAD_WINDOW) -> frames.Uploaded:
        """Upload the attachment of digest ``sha256`` (``size`` bytes; ``read_at(start, n)``
        gives its bytes from ``start``, at most ``n``): from where the server's copy of this
        party's upload stands, so a call after a cut line resumes; up to ``window`` chunks in
        flight. Returns the server's answer once it holds all of it (``stored``: its digest
        checked).

        Raises:
            ProtocolViolation: the server's refusal (``attachment.refused``,
                ``attachment.digest_mismatch``: the bytes are not that digest's, ...).
            ConnectError: the line was cut (call again once connected: it resumes).
        """
        def status() -> Awaitable[frames.Uploaded]:
            return self._request(frames.UploadStatus(sha256=sha256, size=size,
                                                     req=self.session.next_req()), frames.Uploaded)

        answer = await status()
        start, inflight = answer.received, deque[tuple[int, asyncio.Future[frames.Uploaded]]]()
        try:
            while not answer.stored:
                while start < size and len(inflight) < window:
                    data = read_at(start, frames.UPLOAD_CHUNK)
                    if not data:
                        raise WireError(f"the attachment ends at byte {start}, before its {size} "
                                        "bytes", code=Code.ATTACHMENT_INVALID)
                    inflight.append((start + len(data), asyncio.ensure_future(self._request(
                        frames.Upload(sha256=sha256, size=size, start=start,
                                      data=base64.b64encode(data).decode("ascii"),
                                      req=self.session.next_req()), frames.Uploaded))))
                    start += len(data)
                if not inflight:  # all sent, not all held (another session of the party raced)
                    answer = await status()
                    start = answer.received
                    continue
                end, pending = inflight.popleft()
                answer = await pending
                if not answer.stored and answer.received != end:  # not taken: resend from there
                    for _, rest in inflight:
                        answer = await rest
                    inflight.clear()
                    start = answer.received
        finally:
            for _, rest in inflight:
                rest.cancel()
        return answer

    async def download(self, index: int, named: NamedAttachment, out: BinaryIO, *,
                       window: int = UPLOAD_WINDOW) -> None:
        """Save the attachment ``named`` of entry ``index`` (its signed reference, and for a
        sealed one the key and stream it opened) to ``out`` (a file opened ``a+b``): after what
        ``out`` already holds, so a call after a cut line resumes; up to ``window`` chunks in
        flight. A sealed attachment is opened chunk by chunk as it arrives. Nothing is left in
        ``out`` unless all of it is the signed content.

        Raises:
            SealError: ``attachment.digest_mismatch`` (the host sent other bytes),
                ``attachment.cannot_open`` (a sealed chunk altered): ``out`` is emptied; both
                name the attachment by its place.
            ProtocolViolation: the server's refusal (``attachment.missing``, ``log.no_entry``,
                ``attachment.refused``).
            ConnectError: the line was cut (call again once connected: it resumes).
        """
        where, ref = f"{named.where} of entry {index}", named.ref
        digester, have = Digester(ref), out.seek(0, os.SEEK_END)
        opener = None
        if named.stored is not None:
            if not isinstance(ref, SealedAttachmentRef) or named.stream_place is None:
                raise SealError(f"{where}: a sealed attachment is opened with its key, where it "
                                "belongs", code=Code.SEAL_INVALID)
            opener = ChunkOpener(ref.key_bytes, named.stream_place, named.stored.size)
            if have < ref.size:  # whole chunks only: a torn last write is fetched again
                have -= have % CHUNK
                out.truncate(have)
        # the stored bytes from where ``out`` stands: for a sealed stream, the chunk after the
        # last whole one (a stored piece is one sealed chunk, ``UPLOAD_CHUNK``)
        held = named.held
        at = (min(have, held.size) if opener is None
              else held.size if have >= ref.size else have // CHUNK * frames.UPLOAD_CHUNK)
        try:
            out.seek(0)
            while part := out.read(CHUNK):
                digester.update(part)
            async with contextlib.aclosing(self._pieces(index, named, at, window)) as pieces:
                async for start, data in pieces:
                    if opener is not None:
                        data = opener.open(start // frames.UPLOAD_CHUNK, data)
                    digester.update(data)
                    out.seek(0, os.SEEK_END)
                    out.write(data)
            digester.finish()
        except SealError as exc:
            out.seek(0)
            out.truncate()
            raise SealError(f"{where}: {exc.message}", code=exc.code) from None
        finally:
            out.flush()

    async def _pieces(self, index: int, named: NamedAttachment, start: int,
                      window: int) -> AsyncGenerator[tuple[int, bytes]]:
        """The stored bytes of ``named`` from ``start`` on, a ``chunk`` answer at a time and in
        order, with up to ``window`` requests in flight.

        Raises:
            SealError: ``attachment.digest_mismatch``: the host answered other than asked.
        """
        held = named.held
        inflight = deque[tuple[int, asyncio.Future[frames.Chunk]]]()
        sent = start
        try:
            while start < held.size:
                while sent < held.size and len(inflight) < window:
                    inflight.append((sent, asyncio.ensure_future(self._request(frames.Download(
                        index=index, field=named.field, position=named.position, start=sent,
                        req=self.session.next_req()), frames.Chunk))))
                    sent += frames.UPLOAD_CHUNK
                at, pending = inflight.popleft()
                chunk = await pending
                try:
                    data = base64.b64decode(chunk.data, validate=True)
                except ValueError:  # binascii.Error: not base64
                    data = b""
                if ((chunk.start, chunk.size, chunk.sha256) != (at, held.size, held.sha256)
                        or len(data) != min(frames.UPLOAD_CHUNK, held.size - at)):
                    raise SealError("the host answered with other bytes than asked",
                                    code=Code.ATTACHMENT_DIGEST_MISMATCH)
                yield at, data
                start = at + len(data)
        finally:
            for _, rest in inflight:
                rest.cancel()

    async def fetch(self, index: int) -> Delivered:
        answer = await self._request(frames.Fetch(index=index, req=self.session.next_req()), Deliver)
        if answer.index != index:
            raise EntryRefused(f"the host answered a fetch with entry {answer.index}", index=index)
        return self.verify(answer)

    async def deliveries_verified(self) -> AsyncIterator[Item]:
        """Delivered entries: envelope entries as verified ``Delivered``, or as ``Refused`` when
        they do not verify (shown as such; the replay goes on); what the host sent that was
        refused as ``HostProblem``; other entries (``overdue`` notices, ``health`` changes, ...)
        as they came, decoded. Entries of a channel this member is not in are a ``HostProblem``."""
        while True:
            getter = asyncio.ensure_future(self.deliveries.get())
            waited: set[asyncio.Future[Any]] = {getter, self.closed}
            try:
                done, _ = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            finally:  # cancelled, or the line dropped: never leave the get pending
                if not getter.done():
                    getter.cancel()
            if getter not in done:
                raise ConnectError(f"connection lost: {self.closed.result()}")
            yield self.classify(getter.result())

    def classify(self, frame: Deliver | HostProblem) -> Item:
        """One queued delivery as ``deliveries_verified`` yields it."""
        if isinstance(frame, HostProblem):
            return frame
        index, entry = frame.index, frame.entry
        if isinstance(entry, EnvelopeEntry):
            try:
                return self.verify(frame)
            except EntryRefused as exc:
                return Refused(index, entry, exc.reason)
        channel = channel_of(entry)
        if channel is not None and (problem := self._not_ours(channel)) is not None:
            return HostProblem(f"{article(kind_of(entry))} entry {problem}", index, channel)
        return entry  # the host's notices, roster changes: as they came

    def _not_ours(self, channel: str) -> str | None:
        """Why ``channel`` is not one of this member's, by its own roster (None if it is)."""
        me = self.me
        if me is None:
            return (f"on channel {channel}: this member's own key is not enrolled by the "
                    "authorities it pinned")
        try:
            self.roster.check_channel(me, channel)
        except ProtocolViolation as exc:
            return (f"on channel {channel}, which is not this member's under the agreements its "
                    f"pinned authorities signed ({exc.code})")
        return None

    def verify(self, frame: Deliver) -> Delivered:
        """Check a delivered envelope entry against the locally built roster, with the one check
        the console and the auditor run too (``hotline.verification``); then that its channel is
        this member's (its pinned authorities signed the agreement and it names this member's
        party), and that its envelope id was not shown under another index.

        Raises:
            EntryRefused: ``verify.failed``, naming the entry and what does not check out.
        """
        index = frame.index
        verified = verify_envelope_entry(self.roster, frame.entry, index=index)
        envelope = verified.envelope
        problem = self._not_ours(envelope.channel)
        if problem is not None:
            raise EntryRefused(f"delivered {problem}", index=index, ref=envelope.id)
        first = self._shown.setdefault(envelope.id, index)
        if len(self._shown) > MAX_SHOWN:
            del self._shown[next(iter(self._shown))]
        if first != index:
            raise EntryRefused(f"envelope {envelope.id} was delivered before as entry {first}; "
                               "the host delivered it again under another index", index=index,
                               ref=envelope.id)
        return Delivered(verified.index, verified.entry, envelope)

    async def prove(self, index: int, envelope_id: str, log_key: NoteVerifier | None, *,
                    timeout: float) -> Proof:
        """Prove the host's ``accepted index=...`` for our envelope ``envelope_id``: entry
        ``index`` as the host delivers it must verify and be that envelope, signed with our key,
        and a checkpoint signed by the pinned ``log_key`` must include it. The proof is the
        receipt the server pushes once a checkpoint covers the entry, or (an ack logged before,
        which gets none) one built from the log API; waits up to ``timeout`` seconds for it.

        Raises:
            Unproven: ``log.unproven``, saying what the host claimed and what did not hold.
        """
        claim = f"the host answered accepted index={index} for envelope {envelope_id}"
        if log_key is None:
            raise Unproven(f"{claim}, but the profile pins no log key: nothing can be proven")
        try:
            logged = await self.fetch(index)
        except (EntryRefused, ProtocolViolation) as exc:
            raise Unproven(f"{claim}, but its entry {index} does not hold: {exc.message}") from exc
        if logged.envelope.id != envelope_id or logged.entry.sig.get("key") != self.key.public_key.key_id:
            raise Unproven(f"{claim}, but entry {index} is envelope {logged.envelope.id} of "
                           f"{logged.envelope.sender}: not ours")
        try:
            async with asyncio.timeout(timeout):
                return await self._proven(index, logged.entry, log_key, claim)
        except TimeoutError:
            raise Unproven(f"{claim}, but no signed checkpoint proved it within {timeout:g} s: "
                           "NOT proven") from None

    async def _proven(self, index: int, entry: Entry, log_key: NoteVerifier,
                      claim: str) -> Proof:
        log = LogClient(http_base(self.url), ssl_context=self.ssl_context)
        first = True
        while True:
            self.checkpoint_arrived.clear()
            try:
                text = await self._receipt_text(log, index, entry, log_key, latest=first)
                if text is None:
                    first = False
                    await self._next_proof_event()
                    continue
                checkpoint, proven = verify_receipt(text, log_key)
            except ConnectError:
                raise
            except HotlineError as exc:
                raise Unproven(f"{claim}, but its proof does not verify: {exc.message}") from exc
            if proven != entry:
                raise Unproven(f"{claim}, but the proven entry {index} is not the one delivered")
            return Proof(index, checkpoint.size, text)

    async def _receipt_text(self, log: LogClient, index: int, entry: Entry,
                            log_key: NoteVerifier, *, latest: bool) -> str | None:
        """The receipt of entry ``index``: the one pushed, or one built from the newest signed
        checkpoint (the log's ``latest``, else the one last pushed) if it covers the entry."""
        if index in self.receipts:
            return bundle_from_frame(self.receipts[index]).to_text()
        note = await asyncio.to_thread(log.checkpoint) if latest else self.checkpoint
        size = verify_checkpoint(note, log_key).size if note else 0
        if size <= index:
            return None
        hashes = await asyncio.to_thread(log.inclusion, index, size)
        return ProofBundle(index=index, proof=tuple(hashes),
                           checkpoint_note=note, extra=leaf_bytes(entry)).to_text()

    async def _next_proof_event(self) -> None:
        """Wait for a new checkpoint or receipt (or the line to drop)."""
        self._receipt_arrived.clear()
        waited: set[asyncio.Future[Any]] = {
            asyncio.ensure_future(e.wait()) for e in (self.checkpoint_arrived, self._receipt_arrived)}
        try:
            await asyncio.wait({*waited, self.closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in waited:
                future.cancel()
        if self.closed.done():
            raise ConnectError(f"connection lost before the proof: {self.closed.result()}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
