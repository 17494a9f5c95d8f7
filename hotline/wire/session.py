"""Sans-IO session: the handshake and the frames of one WebSocket connection.

Theory of operation: the server and the client each hold one session object per connection and
feed it every text frame they receive; it returns a typed frame (``hotline.wire.frames``) or
raises a typed error. It never touches a socket or a clock: ``now`` comes in as an argument. The
state table:

    server:  CHALLENGED --auth ok--> AUTHENTICATED --welcome()--> READY
    client:  START --challenge--> AUTHENTICATING --welcome--> READY

Rule 1: before READY, the only frames accepted are the handshake's; anything else, and any
authentication failure, raises ``AuthError`` (the caller sends the error and closes).
Rule 2: in READY, a bad frame raises ``WireError`` (the caller answers ``error`` and carries on:
a malformed frame never ends an authenticated session). The server answers it with the request
id the frame carried, if readable (``ServerSession.req``).
Rule 3: each challenge nonce is good for one ``auth`` frame only, checked against this session's
nonce, so an ``auth`` captured from another connection fails with ``auth.bad_nonce``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from msgspec import UNSET

from hotline.errorcodes import Code
from hotline.errors import AuthError, CryptoError, HotlineError, PeerCode, WireError
from hotline.hybrid import MemberKey, member_key_from_json
from hotline.keys import Domain, Signer
from hotline.times import format_time, parse_time
from hotline.wire import frames
from hotline.wire.frames import (
    CLIENT_TYPES,
    SERVER_TYPES,
    Auth,
    Challenge,
    Req,
    ServerFrame,
    Welcome,
)

MAX_SERVER_FRAME = 8 * 1024 * 1024  # what a client reads of one server frame


@dataclass(frozen=True)
class Authenticated:
    key: MemberKey


ServerEvent = Authenticated | frames.Request


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
        self.req: Req = UNSET  # the request id of the frame last received, if readable
        self._challenged_at = now
        self._skew = clock_skew
        self._max = max_frame_bytes

    def challenge(self) -> Challenge:
        return Challenge(nonce=self.nonce, origin=self.origin,
                         server_time=format_time(self._challenged_at))

    def receive(self, text: str | bytes, *, now: datetime) -> ServerEvent:
        """Decode one client frame.

        Raises:
            AuthError: before READY, for any bad frame (the caller closes).
            WireError: in READY, for a bad frame (the caller answers and carries on).
        """
        if self.state is not ServerState.READY:
            return self._receive_auth(text, now)
        self.req = UNSET
        value = frames.parse_text(text, max_bytes=self._max)
        self.req = frames.peek_req(value)
        frame = frames.decode_value(value, allowed=CLIENT_TYPES)
        if isinstance(frame, Auth):
            raise WireError("already authenticated", code=Code.FRAME_OUT_OF_ORDER)
        assert isinstance(frame, frames.Request)  # every client frame but auth
        return frame

    def _receive_auth(self, text: str | bytes, now: datetime) -> Authenticated:
        if self.state is ServerState.AUTHENTICATED:
            raise AuthError("wait for welcome before sending", code=Code.FRAME_OUT_OF_ORDER)
        try:
            frame = frames.decode(text, allowed=CLIENT_TYPES, max_bytes=self._max)
        except WireError as exc:
            raise AuthError(exc.message, code=exc.code) from exc
        if not isinstance(frame, Auth):
            raise AuthError(f"{frame.__struct_config__.tag} before authentication; send auth first",
                            code=Code.FRAME_OUT_OF_ORDER)
        if frame.nonce != self.nonce:
            raise AuthError("auth.nonce is not this connection's challenge (replayed or stale)",
                            code=Code.AUTH_BAD_NONCE)
        if frame.origin != self.origin:
            raise AuthError(f"auth.origin {frame.origin!r} is not this server ({self.origin!r})",
                            code=Code.AUTH_WRONG_ORIGIN)
        try:
            client_time = parse_time(frame.client_time, field="auth.client_time")
            key = member_key_from_json(frame.key)
            key.verify_canonical(domain=Domain.AUTH, canonical=frame.payload().signed_bytes(),
                                 signature=frame.sig)
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
                log_size: int) -> Welcome:
        if self.state is not ServerState.AUTHENTICATED:
            raise HotlineError("welcome before authentication", code=Code.INTERNAL_STATE)
        self.state = ServerState.READY
        return Welcome(member=member, party=party, role=role, channels=channels, log_size=log_size)


# -- client side ---------------------------------------------------------------------------------

class ClientState(Enum):
    START = "start"
    AUTHENTICATING = "authenticating"
    READY = "ready"


class ClientSession:
    """Client side of one connection: answers the challenge, then decodes server frames, and
    numbers its requests (``next_req``)."""

    def __init__(self, *, key: Signer, origin: str, max_frame_bytes: int = MAX_SERVER_FRAME) -> None:
        self.key = key
        self.origin = origin
        self.state = ClientState.START
        self.welcome: Welcome | None = None
        self._max = max_frame_bytes
        self._req = 0

    def next_req(self) -> int:
        """A request id not used before on this connection."""
        self._req += 1
        return self._req

    def auth_frame(self, challenge: Challenge, *, now: datetime) -> Auth:
        payload = frames.auth_payload(nonce=challenge.nonce, origin=challenge.origin,
                                      key=self.key.public_key.to_json(), client_time=format_time(now))
        return Auth(nonce=payload.nonce, origin=payload.origin, key=payload.key,
                    client_time=payload.client_time,
                    sig=self.key.sign_canonical(domain=Domain.AUTH, canonical=payload.signed_bytes()))

    def receive(self, text: str | bytes) -> ServerFrame:
        """Decode one server frame.

        Raises:
            AuthError: the handshake failed (a server ``error`` before welcome, a wrong origin,
                or an out-of-order frame).
            WireError: the server sent a malformed frame.
        """
        frame = frames.decode(text, allowed=SERVER_TYPES, max_bytes=self._max)
        assert not isinstance(frame, frames.ClientFrame)
        kind = frame.__struct_config__.tag
        if self.state is ClientState.START:
            if isinstance(frame, frames.Error):
                raise AuthError(frame.message, code=PeerCode(frame.code))
            if not isinstance(frame, Challenge):
                raise AuthError(f"server sent {kind} before challenge", code=Code.FRAME_OUT_OF_ORDER)
            if frame.origin != self.origin:
                raise AuthError(f"server origin {frame.origin!r} is not the expected "
                                f"{self.origin!r}; refusing to authenticate", code=Code.AUTH_WRONG_ORIGIN)
            self.state = ClientState.AUTHENTICATING
            return frame
        if self.state is ClientState.AUTHENTICATING:
            if isinstance(frame, frames.Error):
                raise AuthError(frame.message, code=PeerCode(frame.code))
            if not isinstance(frame, Welcome):
                raise AuthError(f"server sent {kind} before welcome", code=Code.FRAME_OUT_OF_ORDER)
            self.state = ClientState.READY
            self.welcome = frame
        elif isinstance(frame, Challenge | Welcome):
            raise WireError(f"server sent {kind} after the handshake", code=Code.FRAME_OUT_OF_ORDER)
        return frame
