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
from datetime import timedelta
from pathlib import Path

import click

from hotline.canonical import dumps, parse
from hotline.cli_options import member_options
from hotline.clock import utc_now
from hotline.config import load_config, parse_authority_key
from hotline.display import article, shown
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation, WireError
from hotline.hybrid import MemberKey
from hotline.keyfiles import load_member_key
from hotline.norms.agreement import (
    MAX_EPOCH_HOURS,
    Agreement,
    AgreementDocument,
    Heartbeat,
    Named,
    TemplateRef,
)
from hotline.norms.duration import describe_duration
from hotline.norms.files import load_templates, shipped_dir
from hotline.norms.forms import describe_fields
from hotline.publicfiles import read_authority_key, read_signed
from hotline.roster import SignedDocument, sign_document, type_of
from hotline.roster_cli import submit_files
from hotline.times import format_time, parse_time


def _read_agreement(path: Path) -> AgreementDocument:
    document = read_signed(path).document
    if not isinstance(document, AgreementDocument):
        raise click.BadParameter(f"{path}: holds {article(type_of(document))}, not an agreement")
    return document


def _write(path: Path, signed: SignedDocument) -> None:
    path.write_text(dumps(signed.to_json()) + "\n")


@click.group()
def agreement() -> None:
    """Draft, sign and submit a channel agreement (the templates every party signed)."""


def authority_pins(files: tuple[Path, ...]) -> dict[str, MemberKey]:
    """Each party's authority key from its public key file (``hotline authority new``, or the
    current key after ``authority rotate``); one file per party. BadPublicFile or BadParameter."""
    pins: dict[str, MemberKey] = {}
    for path in files:
        record = read_authority_key(path)
        if record.party in pins:
            raise click.BadParameter(f"{path}: a second authority key for {record.party}: give "
                                     "each party's current key once", param_hint="--authority")
        pins[record.party] = record.public_key
    return pins


def protocols_folder(home: Path, given: Path | None, configured: Path | None) -> Path:
    """Where the templates come from: ``--protocols``, else the deployment's (hotline.toml),
    else HOME/protocols if it exists, else the templates this release ships."""
    if given is not None:
        return given
    if configured is not None:
        return configured
    return home / "protocols" if (home / "protocols").is_dir() else shipped_dir()


CLOSE_NOTICE = timedelta(days=1)  # default time, after the draft, for the parties to sign a closing


@agreement.command()
@click.option("--channel", help="Channel the agreement governs (default: that of --based-on).")
@click.option("--parties", help="Comma-separated party ids (default: those of --based-on).")
@click.option("--authority", "authority_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="PUBFILE",
              help="A party authority's public key file (repeatable): the parties' keys the "
                   "agreement names, after a handover the current one. Without it, the pins of "
                   "HOME/hotline.toml.")
@click.option("--protocols", "protocols", type=click.Path(exists=True, file_okay=False,
                                                         path_type=Path),
              help="Folder of template files (default: the deployment's, else HOME/protocols, "
                   "else the shipped templates).")
@click.option("--templates", "template_ids",
              help="Comma-separated template ids from the protocols folder, or 'all' (the "
                   "default; a closing keeps those of --based-on).")
@click.option("--based-on", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The agreement (file) this one replaces: its fields are the defaults and the "
                   "version is one more.")
@click.option("--close", is_flag=True,
              help="With --based-on: close the channel (the next version, with an end).")
@click.option("--at", "ends_at", metavar="TIME",
              help="With --close: when the channel closes, RFC 3339 (default: a day after the "
                   "draft; the server refuses an end already past when it is submitted).")
@click.option("--heartbeat-interval", type=click.IntRange(1, 86400), help="Seconds (default 10).")
@click.option("--grace", type=click.IntRange(1, 86400), help="Seconds late before DEGRADED.")
@click.option("--epoch-hours", type=click.IntRange(1, MAX_EPOCH_HOURS),
              help="Length of the epochs of the members' encryption keys for sealed fields: how "
                   "much a stolen laptop exposes (default 24, or that of --based-on).")
@click.option("--ed25519-only", "ed25519_only", metavar="T1,T2",
              help="Templates that members with hybrid post-quantum keys may sign with the "
                   "Ed25519 half alone, for cost (heartbeat,echo: a forgery after quantum "
                   "computers exist fakes liveness, not content). Default: none, or those of "
                   "--based-on.")
@click.option("--auditor", "auditors", multiple=True, metavar="PARTY:NAME",
              help="Auditor who may read the channel, and the party whose authority may "
                   "enroll it (repeatable; default: those of --based-on).")
@click.option("--witness", "witnesses", multiple=True, metavar="PARTY:AGENT",
              help="Agent whose cosignatures of the log the parties require, and the party whose "
                   "authority enrolls it (repeatable, at least one; default: those of "
                   "--based-on).")
@click.option("--catalogue", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON file: the pre-agreed message catalogue [{number, code, text: {lang: ...}}].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Draft file to write (unsigned).")
@click.pass_context
def draft(ctx: click.Context, channel: str | None, parties: str | None,
          authority_files: tuple[Path, ...], protocols: Path | None, template_ids: str | None,
          based_on: Path | None, close: bool, ends_at: str | None,
          heartbeat_interval: int | None, grace: int | None, epoch_hours: int | None,
          ed25519_only: str | None, auditors: tuple[str, ...], witnesses: tuple[str, ...],
          catalogue: Path | None, out: Path) -> None:
    """Write an unsigned agreement naming each party's authority key, each template's id,
    version and SHA-256, and each auditor and witness with the authority key that may enroll
    it. With --authority files it needs no hotline.toml: an authority's offline machine drafts
    a new channel from the public key files the parties exchanged.

    \b
    Example (a new channel, on an authority's machine):
      hotline agreement draft --channel north-mediator --parties north,mediator \\
          --authority north.pub.json --authority mediator.pub.json \\
          --templates message,heartbeat,echo --witness north:north-agent \\
          --witness mediator:mediator-agent --auditor mediator:audrey --out v1.json
    Closing it later:
      hotline agreement draft --based-on v1.json --close --at 2027-01-01T00:00:00Z --out v2.json
    """
    home: Path = ctx.obj["home"]
    config = None if authority_files or not (home / "hotline.toml").is_file() else \
        load_config(home / "hotline.toml", home=home)
    base = _read_agreement(based_on) if based_on else None
    # KEY_IDs by party: the --authority files, else the deployment's pins; a party of --based-on
    # known neither way keeps the key that version names (its signature is checked on submit)
    pinned = {p: k.key_id for p, k in authority_pins(authority_files).items()} if authority_files \
        else {p: parse_authority_key(text).key_id for p, text in config.roster.authorities.items()} \
        if config is not None else {}
    pinned = {**{n.id: n.authority for n in (base.parties if base else [])}, **pinned}
    pins_from = "the --authority files" if authority_files else str(home / "hotline.toml")
    if close and base is None:
        raise click.BadParameter("closing needs the agreement it ends", param_hint="--based-on")
    if ends_at is not None and not close:
        raise click.BadParameter("--at says when a closing takes effect: add --close",
                                 param_hint="--at")
    channel = channel or (base.channel if base else None)
    if channel is None:
        raise click.BadParameter("name the channel", param_hint="--channel")
    if base is not None and channel != base.channel:
        raise click.BadParameter(f"--based-on governs {base.channel}, not {channel}",
                                 param_hint="--channel")
    names = [p.strip() for p in parties.split(",") if p.strip()] if parties else \
        [p.id for p in (base.parties if base else [])]
    if len(names) < 2:
        raise click.BadParameter("at least two parties", param_hint="--parties")
    unknown = [p for p in names if p not in pinned]
    if unknown:
        raise click.BadParameter(f"no pinned authority key for {', '.join(unknown)} in {pins_from}",
                                 param_hint="--parties")
    if close and base is not None and template_ids is None:
        refs = list(base.templates)  # a closing changes nothing but the end
    else:
        refs = _template_refs(protocols_folder(home, protocols,
                                               config.protocols_dir if config else None),
                              template_ids)
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
    now = utc_now()
    ends = None
    if close:
        try:
            ends = parse_time(ends_at, field="--at") if ends_at is not None else now + CLOSE_NOTICE
        except WireError as exc:
            raise click.BadParameter(exc.message, param_hint="--at") from None
    doc = {  # as read from a file: checked like one, so no draft the server would refuse is written
        "type": "agreement", "channel": channel, "version": (base.version if base else 0) + 1,
        "parties": [Named(p, pinned[p]) for p in names],
        "templates": refs, "heartbeat": heartbeat, **named,
        "effective": format_time(now),
        **({"catalogue": parse(catalogue.read_bytes(), max_bytes=1024 * 1024)}
           if catalogue is not None
           else {"catalogue": base.catalogue} if base and base.catalogue else {}),
        **({"ends": format_time(ends)} if ends is not None else {}),
        **({"epoch_hours": epoch_hours} if epoch_hours is not None
           else {"epoch_hours": base.epoch_hours} if base and base.epoch_hours else {}),
        **_ed25519_only(ed25519_only, base, refs),
    }
    agreement = Agreement.from_json(doc)
    _write(out, SignedDocument(document=agreement.document, sigs=[]))
    click.echo(f"draft of {channel} version {agreement.version} written to {out}: "
               f"{len(refs)} templates, parties {', '.join(names)}"
               + (f"; the channel closes at {format_time(ends)}" if ends is not None else ""))
    click.echo("next: each party's authority runs `hotline agreement sign " f"{out} --key KEYFILE`")


def _ed25519_only(given: str | None, base: AgreementDocument | None,
                  refs: list[TemplateRef]) -> dict[str, list[str]]:
    """The ``ed25519_only`` field: the templates ``--ed25519-only`` names (each agreed here),
    else those of ``base``; none: no field (the bytes of an agreement without it)."""
    if given is None:
        kept = base.ed25519_only if base is not None and base.ed25519_only else []
        return {"ed25519_only": list(kept)} if kept else {}
    names = sorted({t.strip() for t in given.split(",") if t.strip()})
    agreed = {ref.id for ref in refs}
    if unknown := [t for t in names if t not in agreed]:
        raise click.BadParameter(f"{', '.join(unknown)} is not among the agreed templates "
                                 f"({', '.join(sorted(agreed))})", param_hint="--ed25519-only")
    return {"ed25519_only": names} if names else {}


def _template_refs(folder: Path, template_ids: str | None) -> list[TemplateRef]:
    """The templates ``template_ids`` names (comma-separated, or all) as held in ``folder``."""
    held = load_templates(folder)
    wanted = sorted({t.id for t in held}) if template_ids in (None, "all") else \
        [t.strip() for t in (template_ids or "").split(",") if t.strip()]
    refs = []
    for template_id in wanted:
        template = held.latest(template_id)
        if template is None:
            raise click.BadParameter(f"no template {template_id!r} in {folder}",
                                     param_hint="--templates")
        refs.append(template.ref())
    return refs


def _named(values: tuple[str, ...], pinned: Mapping[str, str], option: str) -> list[Named]:
    """``PARTY:NAME`` values -> ``[{"id": NAME, "authority": KEY_ID of PARTY's key}]``."""
    named = []
    for value in values:
        party, colon, name = value.partition(":")
        if not colon or not party or not name:
            raise click.BadParameter(f"{value!r}: give PARTY:NAME, the party whose authority may "
                                     "enroll NAME", param_hint=option)
        if party not in pinned:
            raise click.BadParameter(f"{value!r}: no pinned authority key for {party}",
                                     param_hint=option)
        named.append(Named(name, pinned[party]))
    return named


@agreement.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The signing party's authority key (PEM; Ed25519 or hybrid).")
def sign(file: Path, key_file: Path) -> None:
    """Add one party authority's signature to an agreement file (in place)."""
    import os
    signed = read_signed(file)
    passphrase = os.environ.get("HOTLINE_PASSPHRASE")
    key = load_member_key(key_file, passphrase.encode() if passphrase else None)
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
    """Submit a signed agreement (or any signed roster document) to the server: the same as
    `hotline roster submit FILE`. It takes effect only once every party's authority signed; the
    server says what is missing. The server is found as by every member command: --server, else
    HOTLINE_SERVER, else the --as profile's."""
    if not submit_files(ctx.obj["home"], [file], name=name, servers=servers):
        ctx.exit(1)


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
