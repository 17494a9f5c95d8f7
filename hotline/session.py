"""Sans-IO session: the handshake and the frames of one WebSocket connection (docs/ARCHITECTURE.md "Wire
protocol").

Theory of operation: the server and the client each hold one session object per connection and
feed it every text frame they receive; it returns a typed event or raises a typed error. It never
touches a socket or a clock: ``now`` comes in as an argument. The state table:

    server:  CHALLENGED --auth ok--> AUTHENTICATED --welcome()--> READY
    client:  START --challenge--> AUTHENTICATING --welcome--> READY

Rule 1: before READY, the only frames accepted are the handshake's; anything else, and any
authentication failure, raises ``AuthError`` (the caller sends the error and closes).
Rule 2: in READY, a bad frame raises ``WireError`` (the caller answers ``error`` and carries on:
a malformed frame never ends an authenticated session).
Rule 3: each challenge nonce is good for one ``auth`` frame only, checked against this session's
nonce, so an ``auth`` captured from another connection fails with ``auth.bad_nonce``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from hotline.canonical import dumps, parse
from hotline.envelope import Envelope
from hotline.errorcodes import Code
from hotline.errors import AuthError, CryptoError, HotlineError, PeerCode, WireError
from hotline.keys import Domain, PublicKey, SigningKey
from hotline.times import format_time, parse_time

# Frame fields by type: name -> (type, required). Unknown fields are refused.
_INT = int
_SPEC: dict[str, dict[str, tuple[type, bool]]] = {
    # client -> server
    "auth": {"nonce": (str, True), "origin": (str, True), "key": (dict, True),
             "client_time": (str, True), "sig": (dict, True)},
    "submit": {"envelope": (dict, True), "sig": (dict, True)},
    "resume": {"channel": (str, True), "after": (_INT, True)},
    "fetch": {"index": (_INT, True)},
    "ping": {"data": (str, False)},
    # server -> client
    "challenge": {"nonce": (str, True), "origin": (str, True), "server_time": (str, True)},
    "welcome": {"member": (str, True), "party": (str, True), "role": (str, True),
                "channels": (list, True), "log_size": (_INT, True)},
    "roster": {"documents": (list, True)},
    "accepted": {"id": (str, True), "index": (_INT, True), "duplicate": (bool, False)},
    "deliver": {"index": (_INT, True), "entry": (dict, True)},
    "resumed": {"channel": (str, True), "index": (_INT, True)},
    "error": {"code": (str, True), "message": (str, True), "ref": (str, False)},
    "pong": {"data": (str, False)},
    "checkpoint": {"note": (str, True)},
    "receipt": {"index": (_INT, True), "size": (_INT, True), "proof": (list, True),
                "checkpoint": (str, True), "leaf": (str, True)},
    "health": {"channel": (str, True), "state": (str, True), "since": (str, True),
               "interval": (_INT, True), "parties": (dict, True)},
}
CLIENT_FRAMES = frozenset({"auth", "submit", "resume", "fetch", "ping"})
SERVER_FRAMES = frozenset(_SPEC) - CLIENT_FRAMES


def encode(frame: dict[str, Any]) -> str:
    return dumps(frame)


def decode(text: str | bytes, *, allowed: frozenset[str], max_bytes: int) -> dict[str, Any]:
    """Parse and shape-check one frame; WireError names the field at fault."""
    if isinstance(text, bytes):
        raise WireError("binary frames are not accepted; send JSON text", code=Code.FRAME_MALFORMED)
    frame = parse(text, max_bytes=max_bytes)
    if not isinstance(frame, dict):
        raise WireError("a frame is a JSON object", code=Code.FRAME_MALFORMED)
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise WireError('a frame needs a string "type"', code=Code.FRAME_MALFORMED)
    if kind not in allowed:
        raise WireError(f"unknown frame type {kind!r}", code=Code.FRAME_UNKNOWN_TYPE)
    spec = _SPEC[kind]
    extra = sorted(set(frame) - set(spec) - {"type"})
    if extra:
        raise WireError(f"{kind} frame has unknown field(s) {', '.join(extra)}", code=Code.FRAME_MALFORMED)
    for name, (typ, required) in spec.items():
        if name not in frame:
            if required:
                raise WireError(f"{kind} frame is missing {name!r}", code=Code.FRAME_MALFORMED)
            continue
        value = frame[name]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise WireError(f"{kind}.{name} must be {typ.__name__}", code=Code.FRAME_MALFORMED)
    if kind == "error" and not PeerCode.accepts(frame["code"]):
        # A peer's code becomes the code of the error raised here: only a code's form is taken.
        raise WireError("error.code must be a code like family.reason", code=Code.FRAME_MALFORMED)
    return frame


def auth_payload(*, nonce: str, origin: str, key: dict[str, Any], client_time: str) -> dict[str, Any]:
    """The object a client signs in the ``hotline/v1/auth`` domain."""
    return {"nonce": nonce, "origin": origin, "key": key, "client_time": client_time}


# -- events --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Authenticated:
    key: PublicKey


@dataclass(frozen=True)
class Submit:
    envelope: Envelope
    sig: dict[str, Any]


@dataclass(frozen=True)
class Resume:
    channel: str
    after: int


@dataclass(frozen=True)
class Fetch:
    index: int


@dataclass(frozen=True)
class Ping:
    data: str | None


ServerEvent = Authenticated | Submit | Resume | Fetch | Ping


class ServerState(Enum):
    CHALLENGED = "challenged"
    AUTHENTICATED = "authenticated"
    READY = "ready"


class ServerSession:
    """Server side of one connection."""

    def __init__(self, *, origin: str, nonce: str, now: datetime, clock_skew: timedelta,
                 max_frame_bytes: int) -> None:
        self.origin = origin
        self.nonce = nonce
        self.state = ServerState.CHALLENGED
        self._challenged_at = now
        self._skew = clock_skew
        self._max = max_frame_bytes

    def challenge(self) -> dict[str, Any]:
        return {"type": "challenge", "nonce": self.nonce, "origin": self.origin,
                "server_time": format_time(self._challenged_at)}

    def receive(self, text: str | bytes, *, now: datetime) -> ServerEvent:
        """Decode one client frame.

        Raises:
            AuthError: before READY, for any bad frame (the caller closes).
            WireError: in READY, for a bad frame (the caller answers and carries on).
        """
        if self.state is not ServerState.READY:
            return self._receive_auth(text, now)
        frame = decode(text, allowed=CLIENT_FRAMES, max_bytes=self._max)
        kind = frame["type"]
        if kind == "auth":
            raise WireError("already authenticated", code=Code.FRAME_OUT_OF_ORDER)
        if kind == "submit":
            try:
                envelope = Envelope.from_json(frame["envelope"])
            except WireError as exc:
                ref = frame["envelope"].get("id")
                exc.ref = ref if isinstance(ref, str) else None
                raise
            return Submit(envelope, frame["sig"])
        if kind == "resume":
            if frame["after"] < -1:
                raise WireError("resume.after must be -1 or a log index", code=Code.FRAME_MALFORMED)
            return Resume(frame["channel"], frame["after"])
        if kind == "fetch":
            if frame["index"] < 0:
                raise WireError("fetch.index must be a log index", code=Code.FRAME_MALFORMED)
            return Fetch(frame["index"])
        return Ping(frame.get("data"))

    def _receive_auth(self, text: str | bytes, now: datetime) -> Authenticated:
        if self.state is ServerState.AUTHENTICATED:
            raise AuthError("wait for welcome before sending", code=Code.FRAME_OUT_OF_ORDER)
        try:
            frame = decode(text, allowed=CLIENT_FRAMES, max_bytes=self._max)
        except WireError as exc:
            raise AuthError(exc.message, code=exc.code) from exc
        if frame["type"] != "auth":
            raise AuthError(f"{frame['type']} before authentication; send auth first",
                            code=Code.FRAME_OUT_OF_ORDER)
        if frame["nonce"] != self.nonce:
            raise AuthError("auth.nonce is not this connection's challenge (replayed or stale)",
                            code=Code.AUTH_BAD_NONCE)
        if frame["origin"] != self.origin:
            raise AuthError(f"auth.origin {frame['origin']!r} is not this server ({self.origin!r})",
                            code=Code.AUTH_WRONG_ORIGIN)
        try:
            client_time = parse_time(frame["client_time"], field="auth.client_time")
            key = PublicKey.from_json(frame["key"])
            payload = auth_payload(nonce=self.nonce, origin=self.origin, key=frame["key"],
                                   client_time=frame["client_time"])
            key.verify(domain=Domain.AUTH, obj=payload, signature=frame["sig"])
        except (WireError, CryptoError) as exc:
            # the key named another key, or anything else about the key, time or signature is wrong
            code = Code.AUTH_WRONG_KEY if exc.code is Code.AUTH_WRONG_KEY else Code.AUTH_BAD_SIGNATURE
            raise AuthError(exc.message, code=code) from exc
        if abs(client_time - now) > self._skew:
            raise AuthError(f"auth.client_time is {abs(client_time - now).total_seconds():.0f} s "
                            f"from server time; at most {self._skew.total_seconds():.0f} s allowed",
                            code=Code.AUTH_CLOCK_SKEW)
        self.state = ServerState.AUTHENTICATED
        return Authenticated(key)

    def welcome(self, *, member: str, party: str, role: str, channels: list[str],
                log_size: int) -> dict[str, Any]:
        if self.state is not ServerState.AUTHENTICATED:
            raise HotlineError("welcome before authentication", code=Code.INTERNAL_STATE)
        self.state = ServerState.READY
        return {"type": "welcome", "member": member, "party": party, "role": role,
                "channels": channels, "log_size": log_size}


# -- client side ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Challenge:
    nonce: str
    origin: str
    server_time: str


@dataclass(frozen=True)
class ServerFrame:
    """Any frame after the handshake, shape-checked; ``frame["type"]`` says which."""

    frame: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.frame["type"])


class ClientState(Enum):
    START = "start"
    AUTHENTICATING = "authenticating"
    READY = "ready"


class ClientSession:
    """Client side of one connection: answers the challenge, then decodes server frames."""

    def __init__(self, *, key: SigningKey, origin: str, max_frame_bytes: int = 8 * 1024 * 1024) -> None:
        self.key = key
        self.origin = origin
        self.state = ClientState.START
        self.welcome: dict[str, Any] | None = None
        self._max = max_frame_bytes

    def auth_frame(self, challenge: Challenge, *, now: datetime) -> dict[str, Any]:
        payload = auth_payload(nonce=challenge.nonce, origin=challenge.origin,
                               key=self.key.public_key.to_json(), client_time=format_time(now))
        return {"type": "auth", **payload, "sig": self.key.sign(domain=Domain.AUTH, obj=payload)}

    def receive(self, text: str | bytes) -> Challenge | ServerFrame:
        """Decode one server frame.

        Raises:
            AuthError: the handshake failed (a server ``error`` before welcome, a wrong origin,
                or an out-of-order frame).
            WireError: the server sent a malformed frame.
        """
        frame = decode(text, allowed=SERVER_FRAMES, max_bytes=self._max)
        kind = frame["type"]
        if self.state is ClientState.START:
            if kind == "error":
                raise AuthError(frame["message"], code=PeerCode(frame["code"]))
            if kind != "challenge":
                raise AuthError(f"server sent {kind} before challenge", code=Code.FRAME_OUT_OF_ORDER)
            if frame["origin"] != self.origin:
                raise AuthError(f"server origin {frame['origin']!r} is not the expected "
                                f"{self.origin!r}; refusing to authenticate", code=Code.AUTH_WRONG_ORIGIN)
            self.state = ClientState.AUTHENTICATING
            return Challenge(frame["nonce"], frame["origin"], frame["server_time"])
        if self.state is ClientState.AUTHENTICATING:
            if kind == "error":
                raise AuthError(frame["message"], code=PeerCode(frame["code"]))
            if kind != "welcome":
                raise AuthError(f"server sent {kind} before welcome", code=Code.FRAME_OUT_OF_ORDER)
            self.state = ClientState.READY
            self.welcome = frame
        elif kind in ("challenge", "welcome"):
            raise WireError(f"server sent {kind} after the handshake", code=Code.FRAME_OUT_OF_ORDER)
        return ServerFrame(frame)
