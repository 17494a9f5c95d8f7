"""The client's connection to a hotline server, used by ``send``/``listen``/``ack`` and, later, the
console and the agent.

One reader task drains the socket (websockets stops answering pings if nobody reads) and routes
frames: ``accepted``/``error`` to the submission waiting on that envelope id, ``resumed`` and
fetch answers to their waiters, ``roster`` into the local roster, ``deliver`` into a queue.
The host is trusted for nothing it cannot prove:

- every frame is decoded strictly (``hotline.session``, and ``hotline.client.frames`` for what the
  host writes into entries); a malformed one is reported as a ``HostProblem`` and skipped;
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
import contextlib
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from hotline.audit.remote import LogClient, http_base
from hotline.canonical import canonical_bytes
from hotline.client.frames import (
    HealthChange,
    HostNotes,
    HostProblem,
    Overdue,
    entry_channel,
    health_change,
    host_notes,
    overdue,
)
from hotline.client.profile import Profile
from hotline.client.receipts import bundle_from_frame, verify_receipt
from hotline.client.streams import Arrival, Streams
from hotline.display import article
from hotline.envelope import AckKind, Envelope, Kind, Precedence, ack_id, new_envelope_id
from hotline.errors import AuthError, HotlineError, LogError, ProtocolViolation, WireError
from hotline.keys import SigningKey
from hotline.roster import Member, Roster
from hotline.session import Challenge, ClientSession, ServerFrame, encode
from hotline.tlog import NoteVerifier, ProofBundle, verify_checkpoint
from hotline.verification import EntryRefused, verify_envelope_entry

MAX_RECEIPTS = 4096  # receipts kept for ``receipt()`` waiters; older ones are dropped
MAX_SHOWN = 1 << 16  # envelope ids remembered as shown (a long-running member forgets the oldest)
# What a hostile frame can make routing raise, beyond our typed errors: reported, never fatal.
_BAD_FRAME = (HotlineError, KeyError, TypeError, ValueError, AttributeError)


class ConnectError(HotlineError):
    code = "connect.failed"


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

    code = "log.unproven"


@dataclass(frozen=True)
class Delivered:
    """A delivered envelope entry that verified here (``hotline.verification``). ``notes`` is
    what the host added to it (unsigned); None if that part was malformed (``notes_problem``)."""

    index: int
    entry: dict[str, Any]
    envelope: Envelope
    notes: HostNotes | None = None
    notes_problem: str | None = None


@dataclass(frozen=True)
class Refused:
    """A delivered envelope entry that did NOT verify here: never shown as the sender's word."""

    index: int
    entry: dict[str, Any]
    reason: str
    code: str = EntryRefused.code


@dataclass(frozen=True)
class Proof:
    """Our entry ``index``, proven in the log: a receipt (C2SP tlog-proof) that verified against
    the pinned log key, whose leaf is the entry we signed."""

    index: int
    size: int  # the size of the signed checkpoint it is proven in
    receipt: str


Item = Delivered | Refused | Overdue | HealthChange | HostProblem | dict[str, Any]


def now_utc() -> datetime:
    return datetime.now(UTC)


class Client:
    def __init__(self, *, key: SigningKey, origin: str, roster: Roster) -> None:
        self.key = key
        self.session = ClientSession(key=key, origin=origin)
        self.roster = roster
        self.ws: ClientConnection | None = None
        self.url = ""
        self.ssl_context: ssl.SSLContext | None = None
        self.welcome: dict[str, Any] = {}
        # deliver frames in order, and what the host sent that was refused, in arrival order
        self.deliveries: asyncio.Queue[dict[str, Any] | HostProblem] = asyncio.Queue()
        self.streams = Streams()
        self._shown: dict[str, int] = {}  # envelope id -> the index it verified at
        self._submits: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, Any, asyncio.Future[dict[str, Any]]]] = []
        self._reader: asyncio.Task[None] | None = None
        self._roster_ready = asyncio.Event()
        self.documents: list[dict[str, Any]] = []  # the signed roster documents ``roster`` took
        self.checkpoint = ""  # the latest checkpoint the server pushed (unverified)
        self.checkpoint_arrived = asyncio.Event()
        self.receipts: dict[int, dict[str, Any]] = {}  # index -> receipt frame
        self._receipt_arrived = asyncio.Event()
        self.health: dict[str, dict[str, Any]] = {}  # channel -> the server's latest health frame
        self.health_changed = asyncio.Event()
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @classmethod
    def for_profile(cls, profile: Profile, key: SigningKey | None = None) -> Client:
        """A client of ``profile``'s member that trusts only the authorities it pinned (``key``:
        the member's key if already loaded)."""
        return cls(key=key or profile.signing_key(), origin=profile.origin,
                   roster=Roster(profile.authorities))

    @property
    def member(self) -> str:
        return str(self.welcome["member"])

    @property
    def party(self) -> str:
        return str(self.welcome["party"])

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
        tls: dict[str, Any] = {"ssl": ssl_context} if url.startswith("wss:") and ssl_context else {}
        self.url, self.ssl_context = url, ssl_context
        try:
            # compression off: compressing secrets next to attacker-chosen text leaks (CRIME)
            self.ws = await connect(url, proxy=None, compression=None, open_timeout=open_timeout,
                                    max_size=16 * 1024 * 1024, max_queue=64, **tls)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ConnectError(f"cannot connect to {url}: {exc}") from exc
        try:
            first = self.session.receive(await self.ws.recv())
            assert isinstance(first, Challenge)
            await self.ws.send(encode(self.session.auth_frame(first, now=now_utc())))
            self.session.receive(await self.ws.recv())
        except ConnectionClosed as exc:
            raise ConnectError(f"server closed the connection during the handshake: {exc}") from exc
        except (AuthError, WireError):
            await self.ws.close()
            raise
        assert self.session.welcome is not None
        self.welcome = self.session.welcome
        self._reader = asyncio.create_task(self._read_loop(), name="client-reader")
        await self._roster_ready.wait()

    async def _read_loop(self) -> None:
        assert self.ws is not None
        reason = "closed"
        try:
            async for text in self.ws:
                try:
                    decoded = self.session.receive(text)
                    assert isinstance(decoded, ServerFrame)  # the challenge came before welcome
                    self._route(decoded.frame)
                except _BAD_FRAME as exc:  # reported and skipped: the next frame may be fine
                    detail = exc.message if isinstance(exc, HotlineError) else type(exc).__name__
                    self.deliveries.put_nowait(HostProblem(f"the host sent a bad frame: {detail}"))
        except ConnectionClosed as exc:
            reason = f"connection closed ({exc})"
        finally:
            rc = self.ws.close_code
            reason = f"{reason} code={rc}" if rc is not None else reason
            error = ConnectError(f"connection lost: {reason}")
            for future in [*self._submits.values(), *(w[2] for w in self._waiters)]:
                if not future.done():
                    future.set_exception(error)
            self._roster_ready.set()
            if not self.closed.done():
                self.closed.set_result(reason)

    def _route(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "roster":
            for signed in frame["documents"]:
                with contextlib.suppress(*_BAD_FRAME):  # what our pinned authorities refuse
                    self.roster.add(signed)
                    self.documents.append(signed)
            self._roster_ready.set()
        elif kind in ("accepted", "error") and (ref := frame.get("ref", frame.get("id"))) in self._submits:
            future = self._submits.pop(ref)
            if not future.done():
                future.set_result(frame)
        elif kind in ("resumed", "deliver", "error", "pong") and self._resolve(kind, frame):
            return
        elif kind == "deliver":
            self._arrive(frame)
        elif kind == "checkpoint":
            self.checkpoint = frame["note"]
            self.checkpoint_arrived.set()
        elif kind == "receipt":
            self.receipts[frame["index"]] = frame
            while len(self.receipts) > MAX_RECEIPTS:  # a long-running member keeps the latest
                del self.receipts[next(iter(self.receipts))]
            self._receipt_arrived.set()
        elif kind == "health":
            self.health[frame["channel"]] = frame
            self.health_changed.set()

    def _arrive(self, frame: dict[str, Any]) -> None:
        """Queue a delivered entry if it comes in order (``hotline.client.streams``)."""
        index, entry = frame["index"], frame["entry"]
        try:
            channel = entry_channel(index, entry)
        except WireError as exc:
            self.deliveries.put_nowait(HostProblem(exc.message, index))
            return
        arrival = self.streams.arrive(index, channel, entry)
        if arrival is Arrival.NEW:
            self.deliveries.put_nowait(frame)
        elif arrival is not Arrival.AGAIN:
            self.deliveries.put_nowait(HostProblem(arrival, index, channel))

    def _resolve(self, kind: str, frame: dict[str, Any]) -> bool:
        for i, (wanted, key, future) in enumerate(self._waiters):
            match = (kind == "error" or (kind == wanted and (
                (kind == "resumed" and frame["channel"] == key)
                or (kind == "deliver" and frame["index"] == key) or kind == "pong")))
            if match:
                if kind == "resumed":
                    self.streams.replayed(key, frame["index"])
                del self._waiters[i]
                if not future.done():
                    future.set_result(frame)
                return True
        return False

    async def _request(self, frame: dict[str, Any], wanted: str, key: Any) -> dict[str, Any]:
        assert self.ws is not None
        if self.closed.done():
            raise ConnectError(f"connection lost: {self.closed.result()}")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((wanted, key, future))
        await self.ws.send(encode(frame))
        answer = await future
        if answer["type"] == "error":
            raise ProtocolViolation(answer["message"], code=answer["code"])
        return answer

    # -- requests ----------------------------------------------------------------------------

    async def submit_envelope(self, envelope: Envelope) -> dict[str, Any]:
        """Sign, send and wait for ``accepted``; a typed error frame is raised as HotlineError."""
        assert self.ws is not None
        if self.closed.done():
            raise ConnectError(f"connection lost: {self.closed.result()}")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._submits[envelope.id] = future
        await self.ws.send(encode({"type": "submit", "envelope": envelope.to_json(),
                                   "sig": envelope.sign(self.key)}))
        answer = await future
        if answer["type"] == "error":
            raise ProtocolViolation(answer["message"], code=answer["code"], ref=envelope.id)
        return answer

    def envelope(self, *, channel: str, template: str, body: dict[str, Any],
                 precedence: Precedence | str = Precedence.ROUTINE, kind: Kind = Kind.MESSAGE,
                 reply_to: str | None = None, id: str | None = None) -> Envelope:
        return Envelope.build(id=id or new_envelope_id(os.urandom(16)), kind=kind, channel=channel,
                              sender=self.member, template=template, precedence=precedence,
                              created=now_utc(), body=body, reply_to=reply_to)

    async def send(self, *, channel: str, template: str, body: dict[str, Any],
                   precedence: Precedence | str = Precedence.ROUTINE) -> dict[str, Any]:
        return await self.submit_envelope(self.envelope(channel=channel, template=template,
                                                        body=body, precedence=precedence))

    def ack_envelope(self, delivered: Delivered, kind: AckKind) -> Envelope:
        """Our ``kind`` ack of a message. Its id is derived from (party, member, message, kind),
        so acking twice is the same acknowledgement: the server answers ``accepted`` with
        ``duplicate: true`` and the index of the ack it logged first."""
        env = delivered.envelope
        return self.envelope(channel=env.channel, template=env.template, kind=Kind.ACK,
                             body={"ack": kind.value}, precedence=env.precedence, reply_to=env.id,
                             id=ack_id(party=self.party, member=self.member, reply_to=env.id,
                                       ack=kind))

    async def ack(self, delivered: Delivered, kind: AckKind) -> dict[str, Any]:
        """Acknowledge a message (``ack_envelope``) and wait for the host's answer."""
        return await self.submit_envelope(self.ack_envelope(delivered, kind))

    async def receipt(self, index: int) -> dict[str, Any]:
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
        try:
            answer = await self._request({"type": "resume", "channel": channel, "after": after},
                                         "resumed", channel)
        except HotlineError:
            self.streams.replayed(channel, -1)
            raise
        return int(answer["index"])

    async def fetch(self, index: int) -> Delivered:
        answer = await self._request({"type": "fetch", "index": index}, "deliver", index)
        return self.verify(answer)

    async def deliveries_verified(self) -> AsyncIterator[Item]:
        """Delivered entries: envelope entries as verified ``Delivered``, or as ``Refused`` when
        they do not verify (shown as such; the replay goes on); ``overdue`` notices and ``health``
        changes decoded (``Overdue``, ``HealthChange``); what the host sent that was refused as
        ``HostProblem``; other entries as is. Entries of a channel this member is not in are a
        ``HostProblem``."""
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

    def classify(self, frame: dict[str, Any] | HostProblem) -> Item:
        """One queued delivery as ``deliveries_verified`` yields it."""
        if isinstance(frame, HostProblem):
            return frame
        index, entry = frame["index"], frame["entry"]
        if entry.get("kind") == "envelope":
            try:
                return self.verify(frame)
            except EntryRefused as exc:
                return Refused(index, entry, exc.reason)
        channel = entry.get("channel")
        if isinstance(channel, str) and (problem := self._not_ours(channel)) is not None:
            return HostProblem(f"{article(str(entry.get('kind')))} entry {problem}", index, channel)
        if entry.get("kind") == "overdue":
            try:
                return overdue(index, entry)
            except WireError as exc:
                return HostProblem(f"a malformed overdue notice: {exc.message}", index)
        if entry.get("kind") == "health":
            try:
                return health_change(index, entry)
            except WireError as exc:
                return HostProblem(f"a malformed health entry: {exc.message}", index)
        return frame  # another entry (rejected, ...): as it came

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

    def verify(self, frame: dict[str, Any]) -> Delivered:
        """Check a delivered envelope entry against the locally built roster, with the one check
        the console and the auditor run too (``hotline.verification``); then that its channel is
        this member's (its pinned authorities signed the agreement and it names this member's
        party), and that its envelope id was not shown under another index.

        Raises:
            EntryRefused: ``verify.failed``, naming the entry and what does not check out.
        """
        index = frame.get("index", -1)
        verified = verify_envelope_entry(self.roster, frame.get("entry"), index=index)
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
        delivered = frame["entry"]  # bridge until the frames slice reads the typed verified.entry
        try:
            notes, problem = host_notes(delivered), None
        except WireError as exc:
            notes, problem = None, exc.message
        return Delivered(verified.index, delivered, envelope, notes, problem)

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
        if logged.envelope.id != envelope_id or logged.entry["sig"]["key"] != self.key.public_key.key_id:
            raise Unproven(f"{claim}, but entry {index} is envelope {logged.envelope.id} of "
                           f"{logged.envelope.sender}: not ours")
        try:
            async with asyncio.timeout(timeout):
                return await self._proven(index, logged.entry, log_key, claim)
        except TimeoutError:
            raise Unproven(f"{claim}, but no signed checkpoint proved it within {timeout:g} s: "
                           "NOT proven") from None

    async def _proven(self, index: int, entry: dict[str, Any], log_key: NoteVerifier,
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
            except (HotlineError, ValueError, KeyError, TypeError) as exc:
                if isinstance(exc, ConnectError):
                    raise
                detail = exc.message if isinstance(exc, HotlineError) else f"{type(exc).__name__}: {exc}"
                raise Unproven(f"{claim}, but its proof does not verify: {detail}") from exc
            if proven != entry:
                raise Unproven(f"{claim}, but the proven entry {index} is not the one delivered")
            return Proof(index, checkpoint.size, text)

    async def _receipt_text(self, log: LogClient, index: int, entry: dict[str, Any],
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
                           checkpoint_note=note, extra=canonical_bytes(entry)).to_text()

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
