"""The client's connection to a hotline server, used by ``send``/``listen``/``ack`` and, later, the
console and the agent.

One reader task drains the socket (websockets stops answering pings if nobody reads) and routes
frames: ``accepted``/``error`` to the submission waiting on that envelope id, ``resumed`` and
fetch answers to their waiters, ``roster`` into the local roster, ``deliver`` into a queue.
Every delivered envelope is checked against the roster built from the authorities this member
pinned, so the server is never trusted for authenticity.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from hotline.client.profile import Profile
from hotline.envelope import AckKind, Envelope, Kind, Precedence, ack_id, new_envelope_id
from hotline.errors import AuthError, HotlineError, ProtocolViolation, WireError
from hotline.keys import SigningKey
from hotline.roster import Roster
from hotline.session import Challenge, ClientSession, ServerFrame, encode
from hotline.verification import EntryRefused, verify_envelope_entry

MAX_RECEIPTS = 4096  # receipts kept for ``receipt()`` waiters; older ones are dropped


class ConnectError(HotlineError):
    code = "connect.failed"


@dataclass(frozen=True)
class Delivered:
    """A delivered envelope entry that verified here (``hotline.verification``)."""

    index: int
    entry: dict[str, Any]
    envelope: Envelope

    def summary(self) -> dict[str, Any]:
        env = self.envelope
        out: dict[str, Any] = {"index": self.index, "channel": env.channel, "sender": env.sender,
                               "party": self.entry.get("party"), "kind": env.kind.value,
                               "template": env.template, "precedence": env.precedence.value,
                               "id": env.id, "created": env.created, "logged": self.entry.get("time"),
                               "body": env.body, "verified": True}
        if env.reply_to is not None:
            out["reply_to"] = env.reply_to
        for added in ("expects", "late"):  # the server's own additions: the ack owed, lateness
            if added in self.entry:
                out[added] = self.entry[added]
        return out


@dataclass(frozen=True)
class Refused:
    """A delivered envelope entry that did NOT verify here: never shown as the sender's word."""

    index: int
    entry: dict[str, Any]
    reason: str
    code: str = EntryRefused.code

    def summary(self) -> dict[str, Any]:
        return {"index": self.index, "channel": self.entry.get("channel"), "verified": False,
                "refused": True, "code": self.code, "reason": self.reason}


def now_utc() -> datetime:
    return datetime.now(UTC)


class Client:
    def __init__(self, *, key: SigningKey, origin: str, roster: Roster) -> None:
        self.key = key
        self.session = ClientSession(key=key, origin=origin)
        self.roster = roster
        self.ws: ClientConnection | None = None
        self.welcome: dict[str, Any] = {}
        self.deliveries: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._submits: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, Any, asyncio.Future[dict[str, Any]]]] = []
        self._reader: asyncio.Task[None] | None = None
        self._roster_ready = asyncio.Event()
        self.documents: list[dict[str, Any]] = []  # the signed roster documents ``roster`` took
        self.checkpoint = ""  # the latest signed checkpoint the server pushed
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

    async def connect(self, url: str, *, ssl_context: ssl.SSLContext | None = None,
                      open_timeout: float = 10.0) -> None:
        """Open the socket and run the handshake; raises ConnectError or AuthError.

        ``ssl_context`` is used for ``wss://`` URLs (default: the system's CAs).
        """
        tls: dict[str, Any] = {"ssl": ssl_context} if url.startswith("wss:") and ssl_context else {}
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
                decoded = self.session.receive(text)
                assert isinstance(decoded, ServerFrame)  # the challenge came before welcome
                self._route(decoded.frame)
        except ConnectionClosed as exc:
            reason = f"connection closed ({exc})"
        except HotlineError as exc:
            reason = f"server sent a bad frame: {exc.message}"
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
                with contextlib.suppress(HotlineError):  # what our pinned authorities refuse
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
            self.deliveries.put_nowait(frame)
        elif kind == "checkpoint":
            self.checkpoint = frame["note"]
        elif kind == "receipt":
            self.receipts[frame["index"]] = frame
            while len(self.receipts) > MAX_RECEIPTS:  # a long-running member keeps the latest
                del self.receipts[next(iter(self.receipts))]
            self._receipt_arrived.set()
        elif kind == "health":
            self.health[frame["channel"]] = frame
            self.health_changed.set()

    def _resolve(self, kind: str, frame: dict[str, Any]) -> bool:
        for i, (wanted, key, future) in enumerate(self._waiters):
            match = (kind == "error" or (kind == wanted and (
                (kind == "resumed" and frame["channel"] == key)
                or (kind == "deliver" and frame["index"] == key) or kind == "pong")))
            if match:
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

    async def ack(self, delivered: Delivered, kind: AckKind) -> dict[str, Any]:
        """Acknowledge a message. The ack id is derived from (party, member, message, kind), so
        acking twice is the same acknowledgement: the server answers ``accepted`` with
        ``duplicate: true`` and the index of the ack it logged first."""
        env = delivered.envelope
        ack = self.envelope(channel=env.channel, template=env.template, kind=Kind.ACK,
                            body={"ack": kind.value}, precedence=env.precedence, reply_to=env.id,
                            id=ack_id(party=self.party, member=self.member, reply_to=env.id,
                                      ack=kind))
        return await self.submit_envelope(ack)

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
        answer = await self._request({"type": "resume", "channel": channel, "after": after},
                                     "resumed", channel)
        return int(answer["index"])

    async def fetch(self, index: int) -> Delivered:
        answer = await self._request({"type": "fetch", "index": index}, "deliver", index)
        return self.verify(answer)

    async def deliveries_verified(self) -> AsyncIterator[Delivered | Refused | dict[str, Any]]:
        """Delivered frames: envelope entries as verified ``Delivered``, or as ``Refused`` when
        they do not verify (shown as such; the replay goes on), other entries as is."""
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
            frame = getter.result()
            if frame["entry"].get("kind") == "envelope":
                try:
                    yield self.verify(frame)
                except EntryRefused as exc:
                    yield Refused(frame["index"], frame["entry"], exc.reason)
            else:
                yield frame

    def verify(self, frame: dict[str, Any]) -> Delivered:
        """Check a delivered envelope entry against the locally built roster, with the one check
        the console and the auditor run too (``hotline.verification``).

        Raises:
            EntryRefused: ``verify.failed``, naming the entry and what does not check out.
        """
        verified = verify_envelope_entry(self.roster, frame.get("entry"), index=frame.get("index", -1))
        return Delivered(verified.index, verified.entry, verified.envelope)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
