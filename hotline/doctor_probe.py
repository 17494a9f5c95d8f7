"""``hotline doctor``, the I/O part: look at a member's profile, key and each server URL the way
its commands connect, and record what was seen (``hotline.doctor`` judges it).

Per URL: a TCP connection (is anything listening?), then the TLS handshake with the profile's
own trust (the pinned CA), then ``/healthz`` and the log API (the log key served, the latest
checkpoint verified with the pinned key), then the member's WebSocket handshake, watched: the
challenge gives the server's origin and clock, ``welcome`` the member's channels, the roster
the enrollment as the member's pinned authorities signed it, and the ``health`` frames that
follow it each channel's state. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509

from hotline.client.connection import Client, ConnectError
from hotline.client.logapi import LogClient, http_base
from hotline.client.profile import Profile, UnknownProfile
from hotline.clock import utc_now
from hotline.display import shown
from hotline.doctor import (
    EndpointFacts,
    Enrolled,
    KeyFacts,
    Line,
    Pins,
    endpoint_lines,
    host_port,
    profile_lines,
    render,
    verdict,
)
from hotline.entries import HealthState
from hotline.errors import AuthError, HotlineError, WireError
from hotline.keys import Signer
from hotline.roster import Member, Role
from hotline.times import parse_time
from hotline.tlog import verify_checkpoint
from hotline.tls_cli import fingerprint
from hotline.wire.frames import SERVER_TYPES, Challenge, ServerFrame, decode
from hotline.wire.session import MAX_SERVER_FRAME, ClientSession, ClientState

TIMEOUT = 5.0  # seconds for each connection step and for the first health frames


def doctor(home: Path, name: str, servers: tuple[str, ...], *, wait: float, fancy: bool) -> tuple[int, str]:
    """Check everything ``name`` needs; the exit status (0: all ✔) and the report."""
    header = shown(f"hotline doctor: member profile {name!r} in {home}")
    try:
        profile = Profile.load(home, name)
    except UnknownProfile:
        raise  # a wrong --as is a usage mistake, as for every command (exit 2, known profiles named)
    except HotlineError as exc:
        sections: list[tuple[str | None, list[Line]]] = [(None, profile_lines(None, exc.message, None))]
    else:
        key, key_facts = _key(profile)
        pins = Pins(name=name, member=profile.member, party=profile.party, role=profile.role,
                    origin=profile.origin,
                    log_key=profile.log_key.to_text() if profile.log_key else None,
                    tls_ca=profile.tls_ca, servers=profile.servers, overridden=bool(servers))
        sections = [(None, profile_lines(pins, None, key_facts))]
        for facts in asyncio.run(_probe_all(profile, key, servers or profile.servers, wait)):
            sections.append((shown(f"server {facts.url}"), endpoint_lines(pins, facts)))
    status, closing = verdict(sections)
    return status, render(header, sections, fancy=fancy) + "\n" + closing


def _key(profile: Profile) -> tuple[Signer | None, KeyFacts]:
    try:
        encrypted = b"ENCRYPTED" in profile.key_file.read_bytes()[:64]
    except OSError:
        encrypted = False
    passphrase = bool(os.environ.get("HOTLINE_PASSPHRASE"))
    try:
        key = profile.signing_key()
    except HotlineError as exc:
        return None, KeyFacts(profile.key_file, exc.message, encrypted, passphrase)
    return key, KeyFacts(profile.key_file, None, encrypted, passphrase)


async def _probe_all(profile: Profile, key: Signer | None, urls: tuple[str, ...],
                     wait: float) -> list[EndpointFacts]:
    return [await probe(profile, key, url, wait=wait) for url in urls]


async def probe(profile: Profile, key: Signer | None, url: str, *, wait: float) -> EndpointFacts:
    """What ``url`` answers to ``profile`` (with ``key``, if it loaded, also as the member)."""
    facts = EndpointFacts(url=url)
    try:
        context = profile.tls_for(url)
    except HotlineError as exc:
        facts.refused_url = exc.message
        return facts
    host, port = host_port(url)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await _open_and_close(host, port, None)
    except (OSError, TimeoutError) as exc:
        facts.tcp_error = str(exc) or type(exc).__name__
        return facts
    facts.rtt = loop.time() - started
    if context is not None:
        try:
            await _open_and_close(host, port, context)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            facts.tls_error = str(exc) or type(exc).__name__
            return facts
        if profile.tls_ca is not None:
            with contextlib.suppress(OSError, ValueError):
                facts.ca_fingerprint = fingerprint(x509.load_pem_x509_certificate(
                    profile.tls_ca.read_bytes()))
    await asyncio.to_thread(_http_facts, facts, profile, context)
    if key is not None:
        await _session_facts(facts, profile, key, context, wait)
    return facts


async def _open_and_close(host: str, port: int, context: ssl.SSLContext | None) -> None:
    async with asyncio.timeout(TIMEOUT):
        _, writer = await asyncio.open_connection(host, port, ssl=context,
                                                  server_hostname=host if context else None)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _http_facts(facts: EndpointFacts, profile: Profile, context: ssl.SSLContext | None) -> None:
    """``/healthz``, the log key served and the latest checkpoint (in a thread: blocking HTTP)."""
    log = LogClient(http_base(facts.url), ssl_context=context, timeout=TIMEOUT)
    try:
        facts.healthz = log.healthz()
    except HotlineError as exc:
        facts.healthz_error = exc.message
    try:
        facts.served_log_key = log.key_text()
    except HotlineError as exc:
        facts.log_key_error = exc.message
        return
    if profile.log_key is None or facts.served_log_key != profile.log_key.to_text():
        return
    try:
        facts.checkpoint_size = verify_checkpoint(log.checkpoint(), profile.log_key).size
    except HotlineError as exc:
        facts.checkpoint_error = exc.message


class _Watched(ClientSession):
    """The client's session, noting the server's challenge (its origin and clock) before the
    handshake goes on: a wrong origin is refused right after, and an auth refusal may follow."""

    def __init__(self, *, key: Signer, origin: str, facts: EndpointFacts) -> None:
        super().__init__(key=key, origin=origin)
        self.facts = facts

    def receive(self, text: str | bytes) -> ServerFrame:
        if self.state is ClientState.START:
            with contextlib.suppress(HotlineError):
                frame = decode(text, allowed=SERVER_TYPES, max_bytes=MAX_SERVER_FRAME)
                if isinstance(frame, Challenge):
                    arrived = utc_now()
                    self.facts.server_origin = frame.origin
                    self.facts.skew = (parse_time(frame.server_time) - arrived).total_seconds()
        return super().receive(text)


async def _session_facts(facts: EndpointFacts, profile: Profile, key: Signer,
                         context: ssl.SSLContext | None, wait: float) -> None:
    client = Client.for_profile(profile, key)
    client.session = _Watched(key=key, origin=profile.origin, facts=facts)
    try:
        await client.connect(facts.url, ssl_context=context, open_timeout=TIMEOUT)
    except AuthError as exc:
        facts.auth_code, facts.auth_message = exc.code, exc.message
        return
    except (ConnectError, WireError) as exc:
        facts.handshake_error = exc.message
        return
    try:
        facts.welcome = client.welcome
        facts.enrolled = _enrolled(client, key)
        facts.epoch_lengths, facts.epoch_keys = _epoch_keys(client, key)
        facts.agents = _agents(client)
        await _health(client, client.welcome.channels, wait)
        facts.health = dict(client.health)
        facts.now = utc_now()
    finally:
        await client.close()


def _enrolled(client: Client, key: Signer) -> Enrolled | None:
    """This key's enrollment by the authorities the profile pinned (not as the host says)."""
    enrollment = client.roster.enrollments.get(key.public_key.key_id)
    if enrollment is None:
        return None
    member = Member(enrollment.party, enrollment.member, enrollment.role, key.public_key.key_id)
    return Enrolled(enrollment.party, enrollment.member, enrollment.role.value,
                    key.public_key.key_id, enrollment.not_after,
                    tuple(client.roster.channels_of(member)))


def _epoch_keys(client: Client, key: Signer) -> tuple[tuple[int, ...], dict[int, frozenset[int]]]:
    """The epoch lengths this member's channels use, and the epochs of each that this very key
    published an encryption key for (as the roster built from the pinned authorities knows)."""
    enrollment = client.roster.enrollments.get(key.public_key.key_id)
    if enrollment is None:
        return (), {}
    lengths = client.roster.agreed_epoch_lengths(enrollment.party)
    published = client.roster.published_epochs(enrollment.party, enrollment.member,
                                               key.public_key.key_id)
    return (tuple(sorted(int(length.total_seconds()) for length in lengths)),
            {length: frozenset(epochs) for length, epochs in published.items()})


def _agents(client: Client) -> dict[str, list[str]]:
    agents: dict[str, list[str]] = {}
    for enrollment in client.roster.enrollments.values():
        if enrollment.role is Role.AGENT:
            agents.setdefault(enrollment.party, []).append(enrollment.member)
    return {party: sorted(names) for party, names in agents.items()}


async def _health(client: Client, channels: list[str], wait: float) -> None:
    """Until the server's health frame of every channel is in (it sends them right after the
    roster), and with ``wait`` until every channel is UP, or the time is up."""
    def done() -> bool:
        frames = [client.health.get(c) for c in channels]
        return all(f is not None and (not wait or f.state is HealthState.UP) for f in frames)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(wait, TIMEOUT)):
            while not done() and not client.closed.done():
                client.health_changed.clear()
                changed = asyncio.ensure_future(client.health_changed.wait())
                waited: set[asyncio.Future[Any]] = {changed, client.closed}
                try:
                    await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
