"""``hotline doctor``, the pure part: what was observed about a member's setup, turned into
lines that each say ✔ or ✖ and, for ✖, what to do.

The probe (``hotline.doctor_probe``) gathers ``KeyFacts`` and one ``EndpointFacts`` per server
URL and never judges; this module judges and never does I/O, so every verdict and every hint is
tested here on plain values. Everything the host said (origins, reasons, error messages) is
shown through ``hotline.display.shown``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hotline.config import is_loopback_host
from hotline.display import shown
from hotline.entries import HealthState
from hotline.epochkeys import epoch_of
from hotline.errorcodes import Code
from hotline.errors import HotlineError
from hotline.times import format_time, parse_time
from hotline.wire.frames import Health, Welcome

if TYPE_CHECKING:
    from hotline.client.logapi import Healthz  # the record only: this module does no I/O

MAX_SKEW = 60.0  # seconds: beyond it deadlines and heartbeats are judged on a clock far from ours
RENEW_SOON = 7  # days: an enrollment ending sooner is mentioned (still ✔: it works today)
MARKS = {True: "✔", False: "✖"}
ASCII_MARKS = {True: "[ok]", False: "[FAIL]"}


@dataclass(frozen=True)
class Line:
    """One verdict: ``ok`` (✔) or not (✖, then ``fix`` says what to do)."""

    ok: bool
    text: str
    fix: str = ""


@dataclass(frozen=True)
class Pins:
    """What the member's profile pins (read from the profile file, trusted)."""

    name: str
    member: str
    party: str
    role: str
    origin: str
    log_key: str | None  # the pinned log key's text, None if the profile pins none
    tls_ca: Path | None
    servers: tuple[str, ...]  # the profile's own list
    overridden: bool  # the URLs come from --server / HOTLINE_SERVER, not the profile


@dataclass(frozen=True)
class KeyFacts:
    path: Path
    error: str | None  # why it could not be loaded, None if it was
    encrypted: bool
    passphrase_set: bool


@dataclass(frozen=True)
class Enrolled:
    """This member's key as the roster built from its pinned authorities knows it."""

    party: str
    member: str
    role: str
    key_id: str
    not_after: datetime
    channels: tuple[str, ...]  # channels the pinned authorities' agreements put it on


@dataclass
class EndpointFacts:
    """What one server URL answered (None: not reached that far)."""

    url: str
    refused_url: str | None = None  # the profile refuses this URL (plain URL with a pinned CA, ...)
    tcp_error: str | None = None
    rtt: float | None = None  # seconds for the TCP connection: the clock's precision
    tls_error: str | None = None
    ca_fingerprint: str | None = None
    healthz: Healthz | None = None
    healthz_error: str | None = None
    served_log_key: str | None = None
    log_key_error: str | None = None
    checkpoint_size: int | None = None
    checkpoint_error: str | None = None
    server_origin: str | None = None  # from the server's challenge
    skew: float | None = None  # server clock minus ours, seconds
    handshake_error: str | None = None  # the WebSocket did not open (not a hotline server?)
    auth_code: str | None = None  # the server refused to authenticate this key
    auth_message: str = ""
    welcome: Welcome | None = None
    enrolled: Enrolled | None = None
    agents: Mapping[str, list[str]] = field(default_factory=dict)  # party -> its agents' names
    health: Mapping[str, Health] = field(default_factory=dict)  # channel -> its latest frame
    epoch_lengths: tuple[int, ...] = ()  # seconds: the epoch lengths its channels' agreements set
    # epoch length in seconds -> the epochs this very key published an encryption key for
    epoch_keys: Mapping[int, frozenset[int]] = field(default_factory=dict)
    now: datetime | None = None


# -- verdicts --------------------------------------------------------------------------------

def profile_lines(pins: Pins | None, problem: str | None, key: KeyFacts | None) -> list[Line]:
    """The profile (found, readable) and the member's private key (loaded, passphrase)."""
    if pins is None:
        return [Line(False, f"profile: {shown(problem or 'not found')}",
                     "check --as and --home (or HOTLINE_HOME); `hotline init` writes the demo "
                     "profiles in HOME/profiles")]
    lines = [Line(True, f"profile {pins.name}: {pins.member}, {pins.role} of {pins.party}, "
                        f"deployment {shown(pins.origin)}")]
    if key is None:
        return lines
    if key.error is None:
        how = "encrypted, HOTLINE_PASSPHRASE opens it" if key.encrypted else "not encrypted"
        lines.append(Line(True, f"private key readable: {key.path} ({how})"))
    elif key.encrypted and not key.passphrase_set:
        lines.append(Line(False, f"private key {key.path} is encrypted and HOTLINE_PASSPHRASE is "
                                 "not set", "set HOTLINE_PASSPHRASE to the passphrase the key was "
                                 "written with (`hotline init` used HOTLINE_PASSPHRASE)"))
    elif key.encrypted:
        lines.append(Line(False, f"private key {key.path} does not open with HOTLINE_PASSPHRASE: "
                                 f"{shown(key.error)}", "set HOTLINE_PASSPHRASE to the passphrase "
                                 "the key was written with"))
    else:
        lines.append(Line(False, f"private key {key.path} cannot be read: {shown(key.error)}",
                          f"the profile's key setting must name this member's private key "
                          f"(PKCS#8 PEM, mode 0600); see {pins.name}.toml"))
    return lines


def _where(pins: Pins) -> str:
    if pins.overridden:
        return ("this URL comes from --server or HOTLINE_SERVER; the profile lists "
                + ", ".join(shown(s) for s in pins.servers))
    return "the profile lists it; give another with --server URL or HOTLINE_SERVER"


def endpoint_lines(pins: Pins, facts: EndpointFacts) -> list[Line]:
    """Every verdict on one server URL, in the order a connection meets them; a step that
    failed ends the list when what follows could not be observed."""
    url = shown(facts.url)
    if facts.refused_url is not None:
        return [Line(False, f"{url}: refused by the profile: {shown(facts.refused_url)}",
                     "use a URL the profile accepts (" + _where(pins) + ")")]
    host, port = host_port(facts.url)
    if facts.tcp_error is not None:
        return [Line(False, f"server reachable: nothing answers at {host}:{port} "
                            f"({shown(facts.tcp_error)})",
                     f"start the server (`hotline serve`, or ./scripts/run) or check the URL: "
                     f"{_where(pins)}")]
    lines = [Line(True, f"server reachable: {host}:{port} accepts connections"
                        + (f" ({facts.rtt * 1000:.0f} ms)" if facts.rtt is not None else ""))]
    lines += _tls_lines(pins, facts, host)
    if facts.tls_error is not None:
        return lines
    lines += _server_lines(pins, facts)
    lines += _member_lines(pins, facts)
    return lines


def _tls_lines(pins: Pins, facts: EndpointFacts, host: str) -> list[Line]:
    scheme = urllib.parse.urlsplit(facts.url).scheme.lower()
    if facts.tls_error is not None:
        trusted = f"the pinned CA {pins.tls_ca}" if pins.tls_ca else "the system's CAs"
        return [Line(False, f"TLS: the server's certificate does not verify against {trusted}: "
                            f"{shown(facts.tls_error)}",
                     "this URL serves another deployment's (or an expired) certificate: check the "
                     f"URL ({_where(pins)}); the operator renews the certificate with "
                     "`hotline tls server-cert`")]
    if scheme in ("wss", "https"):
        if pins.tls_ca is None:
            return [Line(True, "TLS: the certificate verifies against the system's CAs (the "
                               "profile pins no CA)")]
        fingerprint = f" (SHA-256 {facts.ca_fingerprint})" if facts.ca_fingerprint else ""
        return [Line(True, f"TLS: the certificate verifies against the pinned CA {pins.tls_ca}"
                           + fingerprint)]
    if is_loopback_host(host):
        return [Line(True, "TLS: none, plain ws:// on loopback (nothing leaves this machine)")]
    return [Line(False, f"TLS: none, plain {scheme}:// to {host}: the line is not encrypted",
                 "use the deployment's wss:// URL (`hotline init --tls`); plain only where the "
                 "network is protected otherwise")]


def _server_lines(pins: Pins, facts: EndpointFacts) -> list[Line]:
    lines: list[Line] = []
    if facts.healthz_error is not None:
        lines.append(Line(False, f"server health: {shown(facts.healthz_error)}",
                          "is this a hotline server? Its URL is ws://HOST:PORT/v1/ws (or wss://)"))
    elif facts.healthz is not None:
        h = facts.healthz
        if h.status == "ok":
            lines.append(Line(True, f"server health: storage ok, log of {h.log_size} "
                                    f"entries, {h.connections} members connected"))
        else:
            lines.append(Line(False, f"server health: storage {shown(h.storage)}",
                              "the server's database is damaged or its disk failing: read its "
                              "log, then restore a backup (`hotline restore`) and restart it"))
    if facts.server_origin is not None:
        if facts.server_origin == pins.origin:
            lines.append(Line(True, f"origin {shown(pins.origin)}, as the profile pins"))
        else:
            lines.append(Line(False, f"origin: the server is {shown(facts.server_origin)!r}, the "
                                     f"profile pins {shown(pins.origin)!r}",
                              f"this URL is another deployment's server ({_where(pins)}), or the "
                              "profile's origin is wrong: it must be the deployment's "
                              "server.origin"))
    lines += _log_lines(pins, facts)
    if facts.skew is not None:
        lines.append(_clock_line(facts))
    if facts.handshake_error is not None:
        lines.append(Line(False, f"WebSocket: {shown(facts.handshake_error)}",
                          "is this a hotline server? Its URL is ws://HOST:PORT/v1/ws (or wss://)"))
    return lines


def _log_lines(pins: Pins, facts: EndpointFacts) -> list[Line]:
    if pins.log_key is None:
        return [Line(False, "log key: the profile pins none, so nothing the log says can be "
                            "proven", "add log_key to the profile: the deployment's log key "
                            "(`curl URL/v1/log/key`), checked with the operator out of band")]
    if facts.log_key_error is not None:
        return [Line(False, f"log key: {shown(facts.log_key_error)}",
                     "the server's log API does not answer: read the server's log")]
    if facts.served_log_key is None:
        return []
    if facts.served_log_key != pins.log_key:
        return [Line(False, f"log key: the server signs with {shown(key_name(facts.served_log_key))}, "
                            f"the profile pins {shown(key_name(pins.log_key))}",
                     "the profile pins another deployment's log key, or the server's keys/log.pem "
                     "changed: compare with the operator out of band; never copy it from this "
                     "server unchecked")]
    lines = [Line(True, f"log key {shown(key_name(pins.log_key))}, as the profile pins")]
    if facts.checkpoint_error is not None:
        lines.append(Line(False, f"latest checkpoint: {shown(facts.checkpoint_error)}",
                          "the log's signed checkpoint does not verify: do not trust this server's "
                          "log; tell the operator and the auditor"))
    elif facts.checkpoint_size is not None:
        lines.append(Line(True, f"latest checkpoint (size {facts.checkpoint_size}) verifies with "
                                "the pinned log key"))
    return lines


def key_name(text: str) -> str:
    """A note verifier key's name and key hash (``origin+1a2b3c4d``), without the key bytes."""
    return "+".join(text.split("+")[:2])


def _clock_line(facts: EndpointFacts) -> Line:
    assert facts.skew is not None
    skew = facts.skew
    side = "behind" if skew > 0 else "ahead of"
    within = f" (to within {facts.rtt * 1000:.0f} ms)" if facts.rtt is not None else ""
    text = f"clock: this machine is {abs(skew):.1f} s {side} the server{within}"
    if facts.auth_code == Code.AUTH_CLOCK_SKEW or abs(skew) > MAX_SKEW:
        return Line(False, text, "set this machine's clock (NTP, e.g. `timedatectl set-ntp true`): "
                                 "deadlines and heartbeats are judged on the server's clock, and "
                                 "past limits.clock_skew (300 s) it refuses to authenticate")
    return Line(True, text)


_AUTH_FIX: dict[str, str] = {
    Code.AUTH_UNKNOWN_KEY: "ask {party}'s authority to enroll key {key} for {member} (a signed "
                        "enrollment in the server's roster/ folder, or POSTed to /v1/roster)",
    Code.AUTH_REVOKED: "this key was revoked: ask {party}'s authority to enroll a new key",
    Code.AUTH_EXPIRED: "the enrollment has expired: ask {party}'s authority for a new one",
    Code.AUTH_NOT_YET_VALID: "the enrollment is not valid yet: wait for it, or check this machine's "
                          "clock",
}


def _member_lines(pins: Pins, facts: EndpointFacts) -> list[Line]:
    if facts.auth_code is not None and facts.auth_code not in (Code.AUTH_CLOCK_SKEW, Code.AUTH_WRONG_ORIGIN):
        fix = _AUTH_FIX.get(facts.auth_code, "read the server's log for this refusal")
        key = facts.enrolled.key_id if facts.enrolled else "of this profile"
        return [Line(False, f"enrolled: the server refuses this key: {shown(facts.auth_code)}: "
                            f"{shown(facts.auth_message)}",
                     fix.format(party=pins.party, member=pins.member, key=key))]
    welcome = facts.welcome
    if welcome is None:
        return []
    lines: list[Line] = []
    enrolled = facts.enrolled
    if enrolled is None:
        lines.append(Line(False, "enrolled: the server knows this key, but no authority the profile "
                                 f"pins enrolled it for {pins.member}",
                          f"the profile's authorities must hold {pins.party}'s authority key "
                          "(compare its safety number with the authority out of band)"))
    else:
        left = (enrolled.not_after - facts.now).days if facts.now else RENEW_SOON
        soon = f" (ends in {left} days: ask for a renewal)" if left < RENEW_SOON else ""
        lines.append(Line(True, f"enrolled: {shown(enrolled.member)}, {shown(enrolled.role)} of "
                                f"{shown(enrolled.party)}, by its pinned authority; valid until "
                                f"{format_time(enrolled.not_after)}{soon}"))
    channels = welcome.channels
    if not channels:
        lines.append(Line(False, "channels: this member is on none",
                          f"an agreement naming {pins.party} must be signed by every party's "
                          "authority and submitted (`hotline agreement`)"))
        return lines
    pinned = set(enrolled.channels) if enrolled else set()
    if enrolled is not None and pinned != set(channels):
        lines.append(Line(False, f"channels: the server says {', '.join(shown(c) for c in channels)}, "
                                 "the agreements the pinned authorities signed say "
                                 f"{', '.join(sorted(pinned)) or 'none'}",
                          "a channel the pinned authorities did not agree is not this member's: "
                          "compare the profile's authorities with the operator's"))
    else:
        lines.append(Line(True, f"channels: {', '.join(shown(c) for c in channels)}"))
    if (enrolled is not None and enrolled.role == "liaison" and facts.now is not None
            and facts.epoch_lengths):
        lines.append(_epoch_keys_line(pins, facts, facts.now))
    for channel in channels:
        lines.append(health_line(channel, facts.health.get(channel), facts.agents, facts.now))
    return lines


def _epoch_keys_line(pins: Pins, facts: EndpointFacts, now: datetime) -> Line:
    """A liaison's encryption keys: without one for this epoch, what the others seal (free text
    to the parties) cannot be sealed to it."""
    lengths = ", ".join(f"{seconds // 3600} h" for seconds in facts.epoch_lengths)
    published = [(epoch_of(now, timedelta(seconds=s)) + ahead in facts.epoch_keys.get(s, ()))
                 for s in facts.epoch_lengths for ahead in (0, 1)]
    if not all(published[::2]):
        return Line(False, f"encryption keys: none published for this epoch ({lengths} epochs): "
                           f"nothing sealed for {pins.party} can be sealed to {pins.member}",
                    f"hotline keys renew --as {pins.name} (the console and `listen` renew them "
                    "by themselves)")
    ahead = "" if all(published) else "; not yet for the next (`hotline keys renew` publishes it)"
    return Line(True, f"encryption keys: published for this epoch ({lengths} epochs){ahead}")


def health_line(channel: str, frame: Health | None, agents: Mapping[str, list[str]],
                now: datetime | None) -> Line:
    """A channel's health from the server's ``health`` frame: ✔ only when UP."""
    name = shown(channel)
    if frame is None:
        return Line(False, f"{name}: the server sent no health for it",
                    "the server's health monitor is off or failing: read the server's log")
    parties = sorted(frame.parties.items())
    heard = ", ".join(f"{shown(p)} {_ago(h.last_heartbeat, now)}" for p, h in parties)
    if frame.state is HealthState.UP:
        return Line(True, f"{name}: UP, every party beats (last heartbeat: {heard})")
    troubled = [(p, h) for p, h in parties if h.state is not HealthState.UP]
    reasons = "; ".join(shown(h.reason) for _, h in troubled) or "no party judged yet"
    silent = [p for p, h in troubled if h.condition in ("silent", "waiting", "late")]
    one_way = [p for p, h in troubled if h.condition == "no_echo"]
    fixes = []
    if silent:
        names = [n for p in silent for n in agents.get(p, [f"{p}-agent"])]
        fixes.append("start the heartbeat agent of each party not beating, on its own machine: "
                     + "; ".join(f"`hotline agent --as {shown(n)}`" for n in names))
    if one_way:
        fixes.append(f"read the agent log of {', '.join(shown(p) for p in one_way)}: it beats but "
                     "answers no other party's heartbeat")
    return Line(False, f"{name}: {frame.state.value}: {reasons}",
                "; ".join(fixes) or "read the server's log")


def _ago(value: str | None, now: datetime | None) -> str:
    if value is None:
        return "never"
    if now is None:
        return shown(value)
    try:
        return f"{max(0.0, (now - parse_time(value)).total_seconds()):.0f} s ago"
    except HotlineError:
        return shown(value)


def host_port(url: str) -> tuple[str, int]:
    """The host and port a URL connects to (the scheme's default port if none)."""
    parts = urllib.parse.urlsplit(url)
    default = 443 if parts.scheme.lower() in ("wss", "https") else 80
    try:
        port = parts.port or default
    except ValueError:
        port = default
    return parts.hostname or "", port


# -- rendering -------------------------------------------------------------------------------

def render(header: str, sections: Iterable[tuple[str | None, list[Line]]], *, fancy: bool) -> str:
    """The report: each line with its mark, a ✖'s fix under it; ``fancy`` False for a terminal
    that cannot show ✔ (every other character beyond ASCII is escaped too)."""
    marks = MARKS if fancy else ASCII_MARKS
    arrow = "→" if fancy else "->"
    out = [header]
    for title, lines in sections:
        indent = ""
        if title is not None:
            out.append(title)
            indent = "  "
        for line in lines:
            out.append(f"{indent}{marks[line.ok]} {line.text}")
            if not line.ok and line.fix:
                out.append(f"{indent}    {arrow} {line.fix}")
    text = "\n".join(out)
    return text if fancy else text.encode("ascii", "backslashreplace").decode("ascii")


def verdict(sections: Iterable[tuple[str | None, list[Line]]]) -> tuple[int, str]:
    """The exit status (0: every line ✔) and the closing line."""
    failed = sum(not line.ok for _, lines in sections for line in lines)
    if failed:
        return 1, f"{failed} problem{'s' if failed > 1 else ''} found, each with what to do"
    return 0, "all checks passed"


def can_show(encoding: str | None) -> bool:
    """Whether a stream of ``encoding`` can show the marks."""
    try:
        "".join([*MARKS.values(), "→"]).encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
