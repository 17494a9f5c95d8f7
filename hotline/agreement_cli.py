"""``hotline agreement draft|sign|submit|show`` and ``hotline templates``: the ceremony by which
parties change what a channel allows (docs/ARCHITECTURE.md "Roster: enrollments and agreements", "Command
line").

A draft is a signed-document file ``{"document": {...}, "sigs": []}``. Each party's authority
adds its signature with ``sign`` (offline, on its own machine); ``submit`` hands the file to the
server, which logs it only when every party the agreement names (and every party of the version
it replaces) signed. Until then the channel keeps running under the old version.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click

from hotline.canonical import dumps, parse
from hotline.cli_options import member_options
from hotline.client.connection import unreachable
from hotline.client.logapi import BadAnswer, HostRefused, LogClient, RemoteError, http_base
from hotline.client.profile import Profile
from hotline.clock import utc_now
from hotline.config import load_config
from hotline.display import article, shown
from hotline.errorcodes import Code
from hotline.errors import HotlineError, ProtocolViolation
from hotline.keyfiles import load_private_key
from hotline.keys import PublicKey
from hotline.norms.agreement import Agreement, AgreementDocument, Heartbeat, Named
from hotline.norms.duration import describe_duration
from hotline.norms.files import load_templates
from hotline.norms.forms import describe_fields
from hotline.roster import SignedDocument, describe, sign_document, type_of
from hotline.times import format_time


def _read_signed(path: Path) -> SignedDocument:
    try:
        return SignedDocument.from_json(parse(path.read_bytes(), max_bytes=1024 * 1024))
    except HotlineError as exc:
        raise click.BadParameter(f"{path}: {exc.message}") from None


def _read_agreement(path: Path) -> AgreementDocument:
    document = _read_signed(path).document
    if not isinstance(document, AgreementDocument):
        raise click.BadParameter(f"{path}: holds {article(type_of(document))}, not an agreement")
    return document


def _write(path: Path, signed: SignedDocument) -> None:
    path.write_text(dumps(signed.to_json()) + "\n")


@click.group()
def agreement() -> None:
    """Draft, sign and submit a channel agreement (the templates every party signed)."""


@agreement.command()
@click.option("--channel", required=True, help="Channel the agreement governs.")
@click.option("--parties", help="Comma-separated party ids (default: those of --based-on).")
@click.option("--templates", "template_ids", default="all", show_default=True,
              help="Comma-separated template ids from the home's protocols/ folder, or 'all'.")
@click.option("--based-on", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The agreement (file) this one replaces: its fields are the defaults and the "
                   "version is one more.")
@click.option("--heartbeat-interval", type=click.IntRange(1, 86400), help="Seconds (default 10).")
@click.option("--grace", type=click.IntRange(1, 86400), help="Seconds late before DEGRADED.")
@click.option("--auditor", "auditors", multiple=True, metavar="PARTY:NAME",
              help="Auditor who may read the channel, and the party whose pinned authority may "
                   "enroll it (repeatable; default: those of --based-on).")
@click.option("--witness", "witnesses", multiple=True, metavar="PARTY:AGENT",
              help="Agent whose cosignatures of the log the parties require, and the party whose "
                   "pinned authority enrolls it (repeatable, at least one; default: those of "
                   "--based-on).")
@click.option("--catalogue", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON file: the pre-agreed message catalogue [{number, code, text: {lang: ...}}].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Draft file to write (unsigned).")
@click.pass_context
def draft(ctx: click.Context, channel: str, parties: str | None, template_ids: str,
          based_on: Path | None, heartbeat_interval: int | None, grace: int | None,
          auditors: tuple[str, ...], witnesses: tuple[str, ...], catalogue: Path | None,
          out: Path) -> None:
    """Write an unsigned agreement naming each party's pinned authority key, each template's id,
    version and SHA-256 (from HOME/protocols), and each auditor and witness with the authority
    key that may enroll it.

    \b
    Example:
      hotline agreement draft --channel north-south --parties north,south,mediator \\
          --auditor mediator:audrey --witness north:north-agent --witness south:south-agent \\
          --out v1.json
    """
    home: Path = ctx.obj["home"]
    config = load_config(home / "hotline.toml", home=home)
    base = _read_agreement(based_on) if based_on else None
    names = [p.strip() for p in parties.split(",") if p.strip()] if parties else \
        [p.id for p in (base.parties if base else [])]
    if len(names) < 2:
        raise click.BadParameter("at least two parties", param_hint="--parties")
    pinned = config.roster.authorities
    unknown = [p for p in names if p not in pinned]
    if unknown:
        raise click.BadParameter(f"no pinned authority key for {', '.join(unknown)} in "
                                 f"{home / 'hotline.toml'}", param_hint="--parties")
    held = load_templates(config.protocols_dir)
    wanted = sorted({t.id for t in held}) if template_ids == "all" else \
        [t.strip() for t in template_ids.split(",") if t.strip()]
    refs = []
    for template_id in wanted:
        template = held.latest(template_id)
        if template is None:
            raise click.BadParameter(f"no template {template_id!r} in {config.protocols_dir}",
                                     param_hint="--templates")
        refs.append(template.ref())
    heartbeat = base.heartbeat if base else Heartbeat(interval=10, grace=10)
    heartbeat = Heartbeat(interval=heartbeat.interval if heartbeat_interval is None else heartbeat_interval,
                          grace=heartbeat.grace if grace is None else grace)
    named = {"auditors": _named(auditors, pinned, "--auditor") if auditors
             else list(base.auditors if base else []),
             "witnesses": _named(witnesses, pinned, "--witness") if witnesses
             else list(base.witnesses if base else [])}
    if not named["witnesses"]:
        raise click.BadParameter("name at least one witness whose cosignatures the parties "
                                 "require", param_hint="--witness PARTY:AGENT")
    doc = {  # as read from a file: checked like one, so no draft the server would refuse is written
        "type": "agreement", "channel": channel, "version": (base.version if base else 0) + 1,
        "parties": [Named(p, PublicKey.from_text(pinned[p]).key_id) for p in names],
        "templates": refs, "heartbeat": heartbeat, **named,
        "effective": format_time(utc_now()),
        **({"catalogue": parse(catalogue.read_bytes())} if catalogue is not None
           else {"catalogue": base.catalogue} if base and base.catalogue else {}),
    }
    agreement = Agreement.from_json(doc)
    _write(out, SignedDocument(document=agreement.document, sigs=[]))
    click.echo(f"draft of {channel} version {agreement.version} written to {out}: "
               f"{len(refs)} templates, parties {', '.join(names)}")
    click.echo("next: each party's authority runs `hotline agreement sign " f"{out} --key KEYFILE`")


def _named(values: tuple[str, ...], pinned: Mapping[str, str], option: str) -> list[Named]:
    """``PARTY:NAME`` values -> ``[{"id": NAME, "authority": KEY_ID of PARTY's pinned key}]``."""
    named = []
    for value in values:
        party, colon, name = value.partition(":")
        if not colon or not party or not name:
            raise click.BadParameter(f"{value!r}: give PARTY:NAME, the party whose authority may "
                                     "enroll NAME", param_hint=option)
        if party not in pinned:
            raise click.BadParameter(f"{value!r}: no pinned authority key for {party}",
                                     param_hint=option)
        named.append(Named(name, PublicKey.from_text(pinned[party]).key_id))
    return named


@agreement.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The signing party's authority key (PEM).")
def sign(file: Path, key_file: Path) -> None:
    """Add one party authority's signature to an agreement file (in place)."""
    import os
    signed = _read_signed(file)
    passphrase = os.environ.get("HOTLINE_PASSPHRASE")
    key = load_private_key(key_file, passphrase.encode() if passphrase else None)
    doc = Agreement.of(_read_agreement(file))
    party = next((p for p, k in doc.parties.items() if k == key.key_id), None)
    if party is None:
        raise ProtocolViolation(f"key {key.key_id} is not the authority of any party the "
                                f"agreement names ({', '.join(doc.parties)})",
                                code=Code.ROSTER_BAD_SIGNATURE)
    mine = sign_document(doc.document, key).sigs
    sigs = [s for s in signed.sigs if s.get("key") != key.key_id] + mine
    _write(file, SignedDocument(document=doc.document, sigs=sigs))
    missing = sorted(set(doc.parties.values()) - {s.get("key") for s in sigs})
    click.echo(f"signed as {party}'s authority; "
               + ("all parties have signed: submit it with `hotline agreement submit`" if not missing
                  else f"{len(missing)} more signature(s) needed"))


@agreement.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@member_options(websocket=False, required=False,
                as_help="Profile whose server list, and pinned TLS CA (tls_ca), are used; "
                        "without it, https:// trusts the system's CAs.")
@click.pass_context
def submit(ctx: click.Context, file: Path, name: str | None, servers: tuple[str, ...]) -> None:
    """Submit a signed agreement (or any signed roster document) to the server. It takes effect
    only once every party's authority signed; the server says what is missing. The server is
    found as by every member command: --server, else HOTLINE_SERVER, else the --as profile's."""
    if not servers and name is None:
        raise click.UsageError("give --server URL (or HOTLINE_SERVER) or --as NAME")
    profile = Profile.load(ctx.obj["home"], name) if name is not None else None
    signed = _read_signed(file)
    urls = profile.endpoints(servers) if profile is not None else servers
    errors = []
    for server in urls:  # failover: the next one only if this one did not answer
        tls = profile.tls_for(server) if profile is not None else None
        try:
            logged = LogClient(http_base(server), ssl_context=tls).submit_roster(signed)
        except (HostRefused, BadAnswer):
            raise  # the server answered: its word, not a reason to try another
        except RemoteError as exc:
            errors.append(exc.message)
            continue
        click.echo(shown(f"{describe(signed)} logged at index {logged.index}"
                         + (" (already logged)" if logged.duplicate else "")))
        return
    raise unreachable(errors, profile=profile.path if profile is not None and not servers else None)


@click.command()
@click.argument("template_id", required=False)
@click.pass_context
def templates(ctx: click.Context, template_id: str | None) -> None:
    """List the protocol templates in HOME/protocols, or show one template's fields."""
    home: Path = ctx.obj["home"]
    config = load_config(home / "hotline.toml", home=home)
    held = load_templates(config.protocols_dir)
    if template_id is not None:
        template = held.latest(template_id)
        if template is None:
            raise click.BadParameter(f"no template {template_id!r}", param_hint="TEMPLATE_ID")
        click.echo(describe_fields(template))
        return
    for t in sorted(held, key=lambda t: (t.id, t.version)):
        ack = "no ack" if t.ack is None else f"{t.ack.kind}" + (
            f" within {describe_duration(t.ack.deadline)}" if t.ack.deadline else "")
        rate = f"max {t.rate.max}/{describe_duration(t.rate.per)}" if t.rate else "no rate limit"
        click.echo(f"{t.id:<24} v{t.version}  {t.sha256[:12]}  {shown(t.title, limit=80)}  [{ack}; {rate}]")
