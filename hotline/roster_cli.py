"""``hotline roster submit|show|check``: signed documents travel as files, and each member sees
the roster as *it* verifies it (docs/ARCHITECTURE.md "Roster: enrollments and agreements").

Anyone may submit a document: the server logs it only if the signatures of the authorities it
pinned hold, and every member's client checks it again against its own pins. ``show`` and
``check`` connect as the member and use the roster its client built from what the server sent,
so what they print is what this member trusts, never the host's word.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import click
import msgspec

from hotline.cli_options import member_options
from hotline.client.connection import Client, unreachable
from hotline.client.failover import Failover
from hotline.client.logapi import BadAnswer, HostRefused, LogClient, Logged, RemoteError, http_base
from hotline.client.profile import Profile
from hotline.display import shown
from hotline.errors import HotlineError
from hotline.hybrid import MemberKey
from hotline.publicfiles import BadPublicFile, fingerprint, read_signed
from hotline.roster import KeyRecord, RefusedDocument, Roster, SignedDocument, describe, key_record
from hotline.times import format_time

# -- submitting --------------------------------------------------------------------------------


def submit_signed(signed: SignedDocument, *, profile: Profile | None,
                  servers: tuple[str, ...]) -> Logged:
    """Hand ``signed`` to the first server that answers (``servers``, else the profile's).

    Raises:
        HostRefused: the server refused it (its code: ``roster.bad_signature``...).
        BadAnswer: the server answered with what the log API never sends.
        ConnectError: no server answered.
    """
    urls = profile.endpoints(servers) if profile is not None else servers
    errors = []
    for server in urls:  # failover: the next one only if this one did not answer
        tls = profile.tls_for(server) if profile is not None else None
        try:
            return LogClient(http_base(server), ssl_context=tls).submit_roster(signed)
        except (HostRefused, BadAnswer):
            raise  # the server answered: its word, not a reason to try another
        except RemoteError as exc:
            errors.append(exc.message)
    raise unreachable(errors, profile=profile.path if profile is not None and not servers else None)


def submit_files(home: Path, files: Sequence[Path], *, name: str | None,
                 servers: tuple[str, ...]) -> bool:
    """Submit each file in turn, printing its log index or its typed refusal (stderr) and going
    on with the next; whether every one was logged. No server answering ends it (ConnectError)."""
    if not servers and name is None:
        raise click.UsageError("give --server URL (or HOTLINE_SERVER) or --as NAME")
    profile = Profile.load(home, name) if name is not None else None
    every = True
    for path in files:
        try:
            signed = read_signed(path)  # bounded, strict; its signatures are the server's to check
            logged = submit_signed(signed, profile=profile, servers=servers)
        except BadPublicFile as exc:  # names the file already
            click.echo(exc.diagnostics(), err=True)
            every = False
            continue
        except (HostRefused, BadAnswer) as exc:  # this file's refusal; no answer at all ends it
            click.echo(refusal_line(path, exc), err=True)
            every = False
            continue
        click.echo(shown(f"{describe(signed)} logged at index {logged.index}"
                         + (" (already logged)" if logged.duplicate else "")))
    return every


def refusal_line(path: Path, error: HotlineError) -> str:
    """``error: CODE: FILE: message``, one line safe for a terminal (the message may be the
    host's)."""
    return shown(f"error: {error.code}: {path}: {error.message}")


# -- the roster as a member verifies it ----------------------------------------------------------


class PartyView(msgspec.Struct, frozen=True, kw_only=True):
    party: str
    pinned: str | None  # KEY_ID of the authority this member pinned (None: not pinned)
    pinned_safety: str | None
    current: str | None  # KEY_ID of its authority now (after any handover)
    current_safety: str | None
    handed_over_at: str | None  # when the latest handover was signed
    verified: bool  # False: named by documents this member could not check (no pin)


class ChannelView(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    version: int
    parties: dict[str, str]  # party -> authority KEY_ID
    auditors: dict[str, str]
    witnesses: dict[str, str]
    templates: list[str]  # "id@version sha256-prefix"
    heartbeat_interval: int
    heartbeat_grace: int
    effective: str
    ends: str | None


class RefusedView(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    code: str
    count: int


class RosterView(msgspec.Struct, frozen=True, kw_only=True):
    """The roster as one member verified it (``hotline roster show --json``)."""

    member: str
    parties: list[PartyView]
    members: list[KeyRecord]
    channels: list[ChannelView]
    refused: list[RefusedView]


def roster_view(member: str, roster: Roster, pinned: dict[str, MemberKey],
                refused: Sequence[RefusedDocument]) -> RosterView:
    """What ``roster`` (built from ``pinned``) holds, and what it refused (by type and code)."""
    parties = []
    for party in sorted(set(roster.current) | set(pinned)):
        first, now = pinned.get(party), roster.current.get(party)
        handovers = [r.at for r in roster.retired.values() if r.party == party]
        parties.append(PartyView(
            party=party, pinned=first.key_id if first else None,
            pinned_safety=fingerprint(first) if first else None,
            current=now.key_id if now else None, current_safety=fingerprint(now) if now else None,
            handed_over_at=format_time(max(handovers)) if handovers else None, verified=True))
    unpinned = sorted({p for r in refused for p in r.unpinned} - set(roster.current))
    parties += [PartyView(party=p, pinned=None, pinned_safety=None, current=None,
                          current_safety=None, handed_over_at=None, verified=False)
                for p in unpinned]
    members = sorted((key_record(e) for e in roster.enrollments.values()),
                     key=lambda m: (m.party, m.member, m.key))
    channels = [ChannelView(
        channel=a.channel, version=a.version, parties=dict(a.parties), auditors=dict(a.auditors),
        witnesses=dict(a.witnesses),
        templates=[f"{t.id}@{t.version} {t.sha256[:12]}" for t in a.templates],
        heartbeat_interval=a.heartbeat_interval, heartbeat_grace=a.heartbeat_grace,
        effective=a.effective, ends=format_time(a.ends) if a.ends else None)
        for _, a in sorted(roster.agreements.items())]
    counts: dict[tuple[str, str], int] = {}
    for r in refused:
        counts[(r.type, r.code)] = counts.get((r.type, r.code), 0) + 1
    return RosterView(member=member, parties=parties, members=members, channels=channels,
                      refused=[RefusedView(type=t, code=c, count=n)
                               for (t, c), n in sorted(counts.items())])


def view_lines(view: RosterView) -> list[str]:
    """The view as a person reads it (every string from elsewhere through ``shown``)."""
    lines = [f"roster as {view.member} verifies it against its own pinned authorities", "",
             "parties:"]
    for p in view.parties:
        if not p.verified:
            lines.append(f"  {p.party}: UNVERIFIED (no authority pinned by this member)")
            continue
        line = f"  {p.party}: pinned {p.pinned} (safety number {p.pinned_safety})"
        if p.current != p.pinned:
            line += f"; now {p.current} (safety number {p.current_safety}) since {p.handed_over_at}"
        lines.append(line)
    lines += ["", "members:"]
    for m in view.members:
        line = (f"  {m.member} ({m.party}) {m.role} key {m.key} valid {m.not_before}..{m.not_after}"
                f", enrolled by {m.enrolled_by}")
        if m.revoked_at:
            line += f"; REVOKED at {m.revoked_at}" + (f" ({m.reason})" if m.reason else "")
        lines.append(line)
    lines += ["", "channels:"]
    for c in view.channels:
        lines.append(f"  {c.channel} version {c.version} (effective {c.effective}"
                     + (f", CLOSED from {c.ends}" if c.ends else "") + ")")
        lines.append("    parties: " + ", ".join(f"{p} ({k})" for p, k in c.parties.items()))
        lines.append("    auditors: " + (", ".join(f"{a} ({k})" for a, k in c.auditors.items())
                                         or "none"))
        lines.append("    witnesses: " + ", ".join(f"{w} ({k})" for w, k in c.witnesses.items()))
        lines.append("    templates: " + ", ".join(c.templates))
        lines.append(f"    heartbeat: every {c.heartbeat_interval}s, grace {c.heartbeat_grace}s")
    total = sum(r.count for r in view.refused)
    lines += ["", f"refused documents: {total}"]
    lines += [f"  {r.count} {r.type}: {r.code}" for r in view.refused]
    return [shown(line, limit=None) for line in lines]  # each bounded: names, keys, times


async def _with_client(home: Path, name: str, servers: tuple[str, ...]) -> Client:
    return await Failover(Profile.load(home, name), servers=servers).connect()


async def _show(home: Path, name: str, servers: tuple[str, ...]) -> RosterView:
    profile = Profile.load(home, name)
    client = await _with_client(home, name, servers)
    try:
        return roster_view(name, client.roster, dict(profile.authorities),
                           client.refused_documents)
    finally:
        await client.close()


async def _check(home: Path, name: str, servers: tuple[str, ...],
                 files: Sequence[Path]) -> list[tuple[Path, SignedDocument | None, HotlineError | None]]:
    client = await _with_client(home, name, servers)
    results: list[tuple[Path, SignedDocument | None, HotlineError | None]] = []
    try:
        for path in files:
            try:
                signed = read_signed(path)
                client.roster.check(signed)
            except HotlineError as exc:
                results.append((path, None, exc))
                continue
            results.append((path, signed, None))
    finally:
        await client.close()
    return results


# -- commands ---------------------------------------------------------------------------------


@click.group()
def roster() -> None:
    """Submit signed documents, and see or check the roster as you verify it."""


@roster.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@member_options(websocket=False, required=False,
                as_help="Profile whose server list, and pinned TLS CA (tls_ca), are used; "
                        "without it, https:// trusts the system's CAs.")
@click.pass_context
def submit(ctx: click.Context, files: tuple[Path, ...], name: str | None,
           servers: tuple[str, ...]) -> None:
    """Submit signed roster documents (enrollments, revocations, handovers, agreements), each
    file in turn: anyone may, the signatures decide. Prints each one's log index, or its typed
    refusal, and goes on; exits 1 if any was refused.

    \b
    Example:
      hotline roster submit enroll-alice.json revoke-bob.json --server https://hotline.example
    """
    if not submit_files(ctx.obj["home"], files, name=name, servers=servers):
        ctx.exit(1)


@roster.command()
@member_options()
@click.option("--json", "as_json", is_flag=True, help="A typed JSON object instead of text.")
@click.pass_context
def show(ctx: click.Context, name: str, servers: tuple[str, ...], as_json: bool) -> None:
    """The roster as NAME verifies it against its own pinned authorities: parties and their
    authority keys, members, channels; documents it refused, by type and reason.

    \b
    Example:
      hotline roster show --as alice
    """
    view = asyncio.run(_show(ctx.obj["home"], name, servers))
    if as_json:
        # every non-ASCII and control character escaped: nothing from elsewhere reaches the terminal
        click.echo(json.dumps(msgspec.to_builtins(view), ensure_ascii=True, indent=2))
        return
    click.echo("\n".join(view_lines(view)))


@roster.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@member_options()
@click.pass_context
def check(ctx: click.Context, files: tuple[Path, ...], name: str, servers: tuple[str, ...]) -> None:
    """Check signed documents against NAME's pinned authorities and the roster as the server
    sends it, without submitting: "would be accepted", or the typed refusal (exit 1).

    \b
    Example:
      hotline roster check enroll-bob.json --as alice
    """
    results = asyncio.run(_check(ctx.obj["home"], name, servers, files))
    for path, signed, error in results:
        if error is not None:
            click.echo(error.diagnostics() if isinstance(error, BadPublicFile)
                       else refusal_line(path, error), err=True)
        else:
            assert signed is not None
            click.echo(shown(f"{path}: {describe(signed)} would be accepted"))
    if any(error is not None for _, _, error in results):
        ctx.exit(1)
