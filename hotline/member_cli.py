"""The member commands of ``hotline``: ``send``, ``listen`` and ``ack`` for a liaison, ``witness``
and ``agent`` for a party's agent, ``doctor`` for anyone (docs/ARCHITECTURE.md "Command line").
``hotline.cli`` imports this module when one of them runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog

from hotline.canonical import JSONObject, parse
from hotline.cli import home_of, run_coroutine
from hotline.cli_options import member_options
from hotline.client import lines
from hotline.client.attaching import (
    Attached,
    SaveClash,
    save_attachments,
    stage,
    upload_file,
    with_references,
)
from hotline.client.connection import (
    Client,
    ConnectError,
    Delivered,
    Proof,
    Refused,
)
from hotline.client.epochrenewal import keep_current
from hotline.client.failover import Failover
from hotline.client.outbox import StagedFile
from hotline.client.problems import HostProblem
from hotline.client.profile import Profile
from hotline.client.proofs import Prover
from hotline.client.receipts import cosigners
from hotline.client.sealed_view import SealedView
from hotline.client.sealer import unreadable, unreadable_lines
from hotline.clock import utc_now
from hotline.display import article, folded, shown
from hotline.entries import EnvelopeEntry, HealthEntry, HealthState, OverdueEntry
from hotline.envelope import AckKind, Envelope, Kind, Precedence, new_envelope_id
from hotline.errorcodes import Code
from hotline.errors import ConfigError, HotlineError, ProtocolViolation, SealError
from hotline.names import ENVELOPE_ID
from hotline.norms.files import load_templates
from hotline.norms.forms import body_from_fields, describe_fields, missing_fields
from hotline.norms.obligations import check_ack_party, own_party_ack
from hotline.norms.template import Template
from hotline.norms.templateset import TemplateSet
from hotline.verification import EntryRefused

T = TypeVar("T")

as_option = member_options()  # ``--as NAME`` and ``--server URL`` (WebSocket), every member command


async def _connected(home: Path, name: str, servers: tuple[str, ...],
                     body: Callable[[Client], Awaitable[T]]) -> T:
    """Connect as ``name`` to the first reachable server, run ``body``, close."""
    client = await Failover(Profile.load(home, name), servers=servers).connect()
    try:
        return await body(client)
    finally:
        await client.close()


def _parse_fields(body: str | None, fields: tuple[str, ...]) -> JSONObject | dict[str, str]:
    """``--body`` as a JSON object, or the ``--field`` pairs as text (typed later by the template)."""
    if body is not None and fields:
        raise click.UsageError("give --body or --field, not both")
    if body is not None:
        try:
            value = parse(body)
        except HotlineError as exc:
            raise click.BadParameter(exc.message, param_hint="--body") from exc
        if not isinstance(value, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--body")
        return value
    out: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--field")
        if key in out:  # keeping either one would send what the officer did not mean
            raise click.BadParameter(f"{key!r} is given twice ({key}={out[key]!r} and "
                                     f"{key}={value!r}): give each field once",
                                     param_hint="--field")
        out[key] = value
    return out


def _templates(profile: Profile) -> TemplateSet:
    return load_templates(profile.protocols)


def _compose(template: Template, body: str | None, fields: tuple[str, ...]) -> JSONObject:
    """The body, typed by the template's schema and checked as the server will check it; a
    missing field shows the template's fields (usage error)."""
    given = _parse_fields(body, fields)
    try:
        content = given if body is not None else body_from_fields(template, given)
    except HotlineError as exc:
        raise click.UsageError(f"{exc.message}\n\n{describe_fields(template)}") from None
    missing = missing_fields(template, content)
    if missing:
        names = ", ".join(spec.path for spec in missing)
        raise click.UsageError(f"{template.id}: missing required field(s) {names}\n\n"
                               f"{describe_fields(template)}")
    _checked(template, content)
    return content


def _checked(template: Template, content: JSONObject) -> None:
    """The server's own check of the body, run here first: a body that fails it is the sender's
    usage error (exit 2), said in the template's words with its fields."""
    try:
        template.check_body(content)
        template.attachment_refs(content)  # each file name safe to save under
    except ProtocolViolation as exc:
        raise click.UsageError(f"{exc.code}: {exc.message}\n\n{describe_fields(template)}") from None


def _attachments(template: Template, given: tuple[str, ...]) -> list[Attached]:
    """``--attach FIELD=PATH`` as the files to attach, each read once for its SHA-256 (a chunk at
    a time), its media type guessed from its name."""
    found = []
    for item in given:
        field, sep, name = item.partition("=")
        if not sep or not field or not name:
            raise click.BadParameter(f"{item!r} is not FIELD=PATH", param_hint="--attach")
        if field not in template.attachments:
            fields = ", ".join(template.attachments) or "none"
            raise click.BadParameter(f"template {template.id} has no attachment field {field!r} "
                                     f"(its attachment fields: {fields})", param_hint="--attach")
        path = Path(name)
        if not path.is_file():
            raise click.BadParameter(f"{name} is not a file", param_hint="--attach")
        found.append(Attached.of(field, path))
    return found


async def _upload_all(client: Client, files: list[Attached], staged: list[StagedFile],
                      sealed: set[str]) -> None:
    """Upload each staged file (resumed where the server's copy stands), then say so."""
    for file, copy in zip(files, staged, strict=True):
        await upload_file(client, Path(copy.path), sha256=copy.sha256, size=copy.size)
        how = f", sealed to the readers of {file.field}" if file.field in sealed else ""
        click.echo(f"uploaded {shown(file.ref.name)} ({file.ref.size:,} bytes, "
                   f"{file.ref.media_type}{how})")


def proof_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--no-wait`` and ``--wait S``, shared by ``send`` and ``ack``."""
    command = click.option("--wait", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
                           help="Seconds to wait for the log's proof of the entry.")(command)
    return click.option("--no-wait", is_flag=True,
                        help="Do not wait for the log's proof: print the host's unproven "
                             "answer ('NOT yet proven').")(command)


async def _proven(client: Client, profile: Profile, claim: str, index: int, envelope_id: str, *,
                  channel: str, no_wait: bool, wait: float) -> Proof | None:
    """Print the host's ``accepted`` as proven (or, with ``no_wait``, as NOT yet proven), and
    which of ``channel``'s witnesses cosigned the checkpoint proving it (a fresh one: usually
    none yet); raise ``log.unproven`` (exit 1) if its claim does not hold."""
    if no_wait:
        click.echo(f"{claim}: NOT yet proven (the host's word; not waited for the log's proof)")
        return None
    proof = await client.prove(index, envelope_id, profile.log_key, timeout=wait)
    witnessed = cosigners(proof.receipt, client.roster, channel).describe()
    click.echo(shown(f"{claim}: proven, included in checkpoint {proof.size} signed by the pinned "
                     f"log key; {witnessed}"))
    return proof


_INDEX = re.compile(r"[0-9]{1,15}")  # a log index (below 2^53); an envelope id has 22 characters


async def _reply_target(client: Client, channel: str, reply_to: str | None) -> str | None:
    """The envelope id ``--reply-to`` names: an id as given; a log index, the id of the message
    logged there, fetched and verified like every entry ``listen`` shows, and refused
    (``message.unknown_ref``, as the server refuses an unknown id) unless it is a message on
    ``channel``."""
    if reply_to is None or not _INDEX.fullmatch(reply_to):
        return reply_to
    index = int(reply_to)
    try:
        target = await client.fetch(index)
    except (EntryRefused, ProtocolViolation) as exc:
        raise ProtocolViolation(f"--reply-to {index}: entry {index} is no message you can answer: "
                                f"{exc.message}", code=Code.MESSAGE_UNKNOWN_REF) from None
    env = target.envelope
    if env.kind is not Kind.MESSAGE or env.channel != channel:
        raise ProtocolViolation(f"--reply-to {index}: entry {index} ({env.kind.value} on channel "
                                f"{env.channel}) is not a message on {channel}",
                                code=Code.MESSAGE_UNKNOWN_REF)
    return env.id


@click.command()
@as_option
@click.option("--channel", required=True, help="Channel to send on.")
@click.option("--template", default="message", show_default=True,
              help="Template id (see `hotline templates`); the body must fit its fields.")
@click.option("--body", help="Body as a JSON object.")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE",
              help="Body field, typed by the template (window.start=..., count=3, tags=a,b); "
                   "repeat for several.")
@click.option("--precedence", type=click.Choice([p.value for p in Precedence], case_sensitive=False),
              help="FLASH, IMMEDIATE, PRIORITY or ROUTINE (default: the template's).")
@click.option("--reply-to", metavar="INDEX|ID",
              help="The message this one answers: its log index (the [N] `listen` shows) or its "
                   "envelope id (id=... in `listen`).")
@click.option("--attach", "attached", multiple=True, metavar="FIELD=PATH",
              help="Attach a file to the template's attachment field FIELD (repeat for several): "
                   "uploaded first, resumed after a cut line; the server accepts the message only "
                   "once it holds every one, each checked against its SHA-256.")
@click.option("--receipt", "receipt_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the signed inclusion receipt here (C2SP tlog-proof); check it later "
                   "with `hotline audit receipt`. Its checkpoint is the first that covers the "
                   "message: the witnesses cosign later ones (the output says which did).")
@proof_options
@click.pass_context
def send(ctx: click.Context, name: str, servers: tuple[str, ...], channel: str, template: str,
         body: str | None, fields: tuple[str, ...], precedence: str | None, reply_to: str | None,
         attached: tuple[str, ...], receipt_file: Path | None, no_wait: bool, wait: float) -> None:
    """Sign and send a message; prints the log index once the server has accepted it and the
    log has proven it (a signed checkpoint and an inclusion proof of this very message).

    The body is checked against the template before it leaves (the same check the server runs),
    so a missing or mistyped field is named here, with the template's fields (exit 2). Exits 1 if the
    host's answer cannot be proven within --wait seconds.
    """
    profile = Profile.load(home_of(ctx), name)
    templates = _templates(profile)
    local = templates.latest(template)
    if local is None:
        raise click.BadParameter(f"no template {template!r} here (known: "
                                 f"{', '.join(sorted({t.id for t in templates}))})",
                                 param_hint="--template")
    content = _compose(local, body, fields)
    files = _attachments(local, attached)
    _checked(local, with_references(content, files, set(local.readers))[0])
    if reply_to is not None and not (_INDEX.fullmatch(reply_to) or ENVELOPE_ID.fullmatch(reply_to)):
        raise click.BadParameter("give the log index of the message ([N] in `hotline listen`) "
                                 "or its envelope id (22 characters, id=... in `hotline listen`)",
                                 param_hint="--reply-to")

    async def go(client: Client) -> None:
        now = utc_now()  # may we send here at all, before what we may send here
        me = client.roster.member_for_key(client.key.key_id, at=now)
        agreement = client.roster.check_send(me, channel, Kind.MESSAGE, at=now)
        agreed = templates.resolve(agreement, template)
        full, positions = with_references(content, files, set(agreed.readers))
        _checked(agreed, full)
        envelope_id = new_envelope_id(os.urandom(16))  # a sealed attachment is bound to it
        staging = home_of(ctx) / "state"
        staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="sending-", dir=staging) as folder:
            staged, streams = await asyncio.to_thread(
                stage, files, channel=channel, envelope=envelope_id, sealed=set(agreed.readers),
                folder=Path(folder), positions=positions)
            await _upload_all(client, files, staged, set(agreed.readers))
        chosen = Precedence(precedence.upper()) if precedence else agreed.default_precedence
        envelope = await client.sealed_envelope(channel=channel, template=agreed, body=full,
                                                log_key=profile.log_key, timeout=wait,
                                                precedence=chosen, id=envelope_id,
                                                attachments=streams,
                                          reply_to=await _reply_target(client, channel, reply_to))
        if envelope.sealed is not None:  # who can read what, before it leaves
            boxes = envelope.sealed.boxes
            click.echo("sealed " + "; ".join(
                f"{field} to " + ", ".join(f"{b.member} ({b.party})" for b in boxes if field in b.fields)
                for field in sorted(envelope.sealed.digests)))
            for line in unreadable_lines(unreadable(envelope, agreed, client.roster)):
                click.echo(line, err=True)
        accepted = await client.submit_envelope(envelope)
        claim = (f"accepted index={accepted.index} id={envelope.id}"
                 + (" (already accepted earlier)" if accepted.is_duplicate else ""))
        proof = await _proven(client, profile, claim, accepted.index, envelope.id,
                              channel=channel, no_wait=no_wait, wait=wait)
        if receipt_file is not None and proof is not None:
            receipt_file.write_text(proof.receipt)  # it verified: ``prove`` checked it
            click.echo(f"receipt saved to {receipt_file} (checkpoint {proof.size}, cosigned as "
                       "said above)")

    run_coroutine(_connected(home_of(ctx), name, servers, go))


@click.command()
@as_option
@click.option("--channel", help="Only this channel (default: all of the member's channels).")
@click.option("--after", type=click.IntRange(min=-1),
              help="First replay every entry after this log index (-1: from the start).")
@click.option("--count", type=click.IntRange(min=1),
              help="Exit after printing this many entries (messages, acks, OVERDUE notices; with "
                   "--all heartbeats and echoes too: HEALTH changes are shown, not counted), once "
                   "the inclusion proofs of all shown are in.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--no-ack", is_flag=True,
              help="Do not send automatic 'received' acks, nor reports of sealed fields that "
                   "break their template (violations).")
@click.option("--all", "show_all", is_flag=True, help="Also show heartbeats and echoes.")
@click.option("--lang", default="en", show_default=True,
              help="Language in which pre-agreed catalogue messages are shown.")
@click.option("--wait", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="With --count: seconds to wait for the last entries' inclusion proofs.")
@click.pass_context
def listen(ctx: click.Context, name: str, servers: tuple[str, ...], channel: str | None, after: int | None,
           count: int | None, as_json: bool, no_ack: bool, show_all: bool, lang: str,
           wait: float) -> None:
    """Print delivered entries, each signature-verified, then each proven in the log; acks
    'received' automatically.

    A line ending [signature verified] holds only what the sender signed (a message's id=...
    and [N] are what `send --reply-to` and `ack --index` take); what the host adds (the ack it
    says is owed, lateness, OVERDUE notices, the channel's HEALTH changes, a refused frame) is on
    its own line marked [host, unsigned]; a channel DEGRADED or DOWN when listening starts is
    said at once. Each shown entry is then proven included in a checkpoint signed by
    the pinned log key that extends every checkpoint seen before ('proven in the log'), or
    flagged ('NOT PROVEN'). Exits 1 if any shown entry was not proven. A pre-agreed message is
    shown with its catalogue text in --lang. Sealed fields you may read are opened; a liaison's
    epoch keys are kept current meanwhile, as `hotline keys renew` does (said on stderr).
    """

    async def go(client: Client) -> int:
        def catalogue_text(item: Delivered) -> str | None:
            agreement = client.roster.agreements.get(item.envelope.channel)
            if item.envelope.template != "preagreed" or agreement is None:
                return None
            entry = next((e for e in agreement.catalogue
                          if e.number == item.envelope.body.get("number")), None)
            return None if entry is None else entry.text_in(lang)

        def body_schema(item: Delivered) -> JSONObject | None:
            """The fields schema of the agreed template, for the body's order and titles."""
            agreement = client.roster.agreements.get(item.envelope.channel)
            try:
                return held.resolve(agreement, item.envelope.template).fields if agreement else None
            except HotlineError:
                return None  # not held here: the body is shown by its own keys

        failures = 0

        def proven(index: int, size: int | None, failed: str | None) -> None:
            nonlocal failures
            failures += size is None
            _say(lines.proof_json(index, size=size, failed=failed) if as_json
                 else lines.proof_line(index, size=size, failed=failed), as_json=as_json)

        prover = Prover(client, profile.log_key, home_of(ctx) / "state" / f"{name}.listen.json", proven)
        proving = asyncio.create_task(prover.run(), name="listen-prover")
        failing = asyncio.create_task(_failing_now(client, channel, as_json=as_json),
                                      name="listen-health")
        renewing = asyncio.create_task(keep_current(
            client, home_of(ctx), passphrase=sealed.passphrase,
            say=lambda line: click.echo(shown(f"note: {line}"), err=True)), name="listen-keys")
        try:
            mine = list(client.welcome.channels)
            if channel is not None and channel not in mine:  # else it would wait forever
                raise ProtocolViolation(f"{name} is a member of no channel {channel!r} (channels: "
                                        f"{', '.join(mine) or 'none'})", code=Code.CHANNEL_UNKNOWN)
            channels = [channel] if channel else mine
            if after is not None:
                for ch in channels:
                    await client.resume(ch, after)
            printed = 0
            async for item in client.deliveries_verified():
                if not await _show(client, item, channel=channel, as_json=as_json,
                                   show_all=show_all, no_ack=no_ack, catalogue=catalogue_text,
                                   prover=prover, schema=body_schema,
                                   view=lambda item: sealed.shown(item, client.roster),
                                   broken=lambda item: list(sealed.violations.pop(item.envelope.id, []))):
                    continue
                printed += 1
                if count is not None and printed >= count:
                    await prover.settle(wait)
                    return failures
            return failures
        finally:
            for task in (proving, failing, renewing):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    profile = Profile.load(home_of(ctx), name)
    try:  # only for showing bodies by their titles: listening goes on without them
        held = load_templates(profile.protocols)
    except HotlineError:
        held = TemplateSet()
    sealed = SealedView.of_member(home_of(ctx), profile, held)
    if sealed.problem is not None:
        click.echo(shown(f"note: sealed fields are shown as sealed: {sealed.problem}"), err=True)
    if run_coroutine(_connected(home_of(ctx), name, servers, go)):
        sys.exit(1)


def _channel_of(item: Any) -> str | None:
    if isinstance(item, Delivered):
        return item.envelope.channel
    if isinstance(item, Refused):
        return item.entry.channel
    if isinstance(item, OverdueEntry | HealthEntry | HostProblem):
        return item.channel
    return None


def _say(text: str, *, as_json: bool) -> None:
    """Print what ``listen`` shows. On a terminal a text line is folded at its width here, each
    continuation marked (``hotline.display.folded``): a body sized to wrap there would otherwise
    start a screen line that looks like one of ours. JSON lines are for programs: never folded."""
    if not as_json and sys.stdout.isatty():
        width = shutil.get_terminal_size().columns
        text = "\n".join(piece for line in text.split("\n") for piece in folded(line, width))
    click.echo(text)


async def _show(client: Client, item: Any, *, channel: str | None, as_json: bool, show_all: bool,
                no_ack: bool, catalogue: Callable[[Delivered], str | None], prover: Prover,
                schema: Callable[[Delivered], JSONObject | None] = lambda item: None,
                view: Callable[[Delivered], Delivered] = lambda item: item,
                broken: Callable[[Delivered], list[tuple[str, HotlineError]]] = lambda item: []
                ) -> bool:
    """Print one delivered item as ``listen`` shows it; a shown entry is handed to ``prover``;
    a message of another party is acked 'received'. Whether it counts for ``--count``: a HEALTH
    change is shown but not counted (it says how the line is, whatever traffic a script awaits)."""
    if channel and _channel_of(item) not in (channel, None):
        return False
    if isinstance(item, Refused):  # shown as refused, never as the sender's word
        _say(lines.refused_json(item) if as_json else lines.refused_line(item), as_json=as_json)
    elif isinstance(item, HostProblem):
        _say(lines.problem_json(item) if as_json else lines.problem_line(item), as_json=as_json)
    elif isinstance(item, OverdueEntry):
        _say(lines.overdue_json(item) if as_json else lines.overdue_line(item), as_json=as_json)
        prover.add(item.index, item)
    elif isinstance(item, HealthEntry):  # every change the host logged, live or replayed
        _say(lines.health_json(item) if as_json else lines.health_line(item), as_json=as_json)
        prover.add(item.index, item)
        return False
    elif isinstance(item, Delivered):
        env = item.envelope
        if env.kind in (Kind.HEARTBEAT, Kind.ECHO) and not show_all:
            return False
        text, seen = catalogue(item), view(item)  # ``seen``: its sealed fields opened or marked
        _say(lines.delivered_json(seen, text) if as_json
             else "\n".join(lines.delivered_lines(seen, text, schema(item))), as_json=as_json)
        prover.add(item.index, item.entry)
        for field, problem in broken(item):  # a sealed field we opened breaks the template
            _say(f"[{item.index}] VIOLATION: sealed field {field} breaks template "
                 f"{shown(env.template, limit=64)}: {shown(problem.message)}"
                 + ("" if no_ack else " (reported)"), as_json=False)
            if not no_ack and client.welcome.role != "auditor":
                await _report(client, client.violation_envelope(item, field, problem), item.index)
        if (env.kind is Kind.MESSAGE and not no_ack and client.welcome.role != "auditor"
                and not own_party_ack(party=client.party, message_party=item.entry.party)):
            await _auto_ack(client, item)
    else:
        return False  # other entries (rejected attempts): not shown
    return True


async def _failing_now(client: Client, channel: str | None, *, as_json: bool) -> None:
    """Say once, for each channel DEGRADED or DOWN when ``listen`` connected, that it is failing
    now (the host's live ``health`` frame). Every later change is a logged ``health`` entry,
    shown as it is delivered; the frames that repeat it are not shown again."""
    seen: set[str] = set()
    while True:
        client.health_changed.clear()
        for name, now in list(client.health.items()):
            if name in seen or (channel and name != channel):
                continue
            seen.add(name)
            if now.state in (HealthState.DEGRADED, HealthState.DOWN):
                _say(lines.health_now_json(now) if as_json else lines.health_now_line(now),
                     as_json=as_json)
        await client.health_changed.wait()


async def _report(client: Client, report: Envelope, index: int) -> None:
    """Submit a violation report while listening; a refusal is said on stderr, and listening
    goes on (resending it is the same report: its id is derived)."""
    try:
        await client.submit_envelope(report)
    except ConnectError:
        raise
    except HotlineError as exc:
        click.echo(f"[{index}] VIOLATION NOT REPORTED: {shown(exc.code, limit=64)}: "
                   f"{shown(exc.message)}", err=True)


async def _auto_ack(client: Client, item: Delivered) -> None:
    """Ack 'received' while listening; a refusal is said on stderr (never taken for an ack) and
    listening goes on. Acking again after a replay is the same ack: the server says duplicate."""
    try:
        await client.ack(item, AckKind.RECEIVED)
    except ConnectError:  # the line dropped: listening ends with that error
        raise
    except HotlineError as exc:
        click.echo(f"[{item.index}] NOT ACKNOWLEDGED: the server refused the received ack: "
                   f"{shown(exc.code, limit=64)}: {shown(exc.message)}", err=True)


@click.command()
@as_option
@click.option("--index", type=click.IntRange(min=0), required=True, help="Log index of the message.")
@click.option("--kind", type=click.Choice([k.value for k in AckKind]), default="understood",
              show_default=True,
              help="received: the message arrived (`listen` sends this one by itself); "
                   "understood: a person read and understood it. A template may oblige a party "
                   "to one of them within a deadline (`hotline templates` shows which).")
@proof_options
@click.pass_context
def ack(ctx: click.Context, name: str, servers: tuple[str, ...], index: int, kind: str,
        no_wait: bool, wait: float) -> None:
    """Acknowledge a delivered message by its log index. Exits 0 only once the ack is logged
    (now, or already before: the same ack) and the log has proven it; a refusal, or a host
    answer that cannot be proven within --wait seconds, is printed and exits 1."""

    async def go(client: Client) -> None:
        message = await client.fetch(index)
        check_ack_party(party=client.party, message_party=message.entry.party,
                        message=f"message {index}")  # the rule the server enforces too
        envelope = client.ack_envelope(message, AckKind(kind))
        accepted = await client.submit_envelope(envelope)
        claim = (f"message {index} was already acknowledged {kind}: ack index={accepted.index} "
                 f"id={envelope.id}" if accepted.is_duplicate else
                 f"accepted index={accepted.index} id={envelope.id} ({kind} ack of {index})")
        await _proven(client, Profile.load(home_of(ctx), name), claim, accepted.index, envelope.id,
                      channel=message.envelope.channel, no_wait=no_wait, wait=wait)

    run_coroutine(_connected(home_of(ctx), name, servers, go))


@click.command()
@as_option
@click.option("--index", type=click.IntRange(min=0), required=True,
              help="Log index of the message whose attachments to save.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder to save them in (made if missing).")
@click.pass_context
def fetch(ctx: click.Context, name: str, servers: tuple[str, ...], index: int, out: Path) -> None:
    """Save the attachments of a delivered message, each under the name its signed reference
    gives (a name safe in any folder). Each is checked against its signed size and SHA-256
    before it takes that name: until then it is NAME.part, and a fetch cut off resumes from
    it. A file already there with the signed content is left as it is; one with other content is
    never overwritten (exit 1)."""

    async def go(client: Client) -> None:
        message = await client.fetch(index)  # its signature verified
        env = message.envelope
        agreement = client.roster.agreements.get(env.channel)
        template = client.templates.resolve(agreement, env.template) if agreement else None
        if template is None:
            click.echo(f"message {index} has no attachments")
            return
        opened, problem = {}, None
        if env.sealed is not None and env.sealed.attachments:  # the sealed ones this member reads
            view = SealedView.of_member(home_of(ctx), Profile.load(home_of(ctx), name),
                                        client.templates)
            opened = {field: d.value for field, d in view.opened(env).items()}
            problem = view.problem
        refs = template.opened_attachments(env, opened)
        closed = sorted(set(env.sealed.attachments if env.sealed is not None else ()) - set(opened))
        for field in closed:
            if agreement is not None and client.party in template.readers_of(field, agreement.parties):
                why = problem or "no epoch key of yours opens it (retired, or never published)"
                click.echo(f"body.{field}: sealed to {client.party}, but not opened here: {why}; "
                           "not fetched", err=True)
            else:
                click.echo(f"body.{field}: sealed to others than {client.party}; not fetched",
                           err=True)
        if not refs:
            if not closed:
                click.echo(f"message {index} has no attachments")
            return
        if out.exists() and not out.is_dir():
            raise click.BadParameter(f"{out} is a file, not a folder", param_hint="--out")
        try:
            await save_attachments(client, index, refs, out, click.echo)
        except SaveClash as exc:
            raise click.ClickException(f"{exc} (choose another --out)") from None

    run_coroutine(_connected(home_of(ctx), name, servers, go))


def _agent_profile(home: Path, name: str, doing: str) -> Profile:
    """``name``'s profile, which must be a party's agent (usage error otherwise)."""
    profile = Profile.load(home, name)
    if profile.role != "agent":
        raise click.BadParameter(f"{name} is {article(profile.role)}, not an agent: only a "
                                 f"party's agent {doing} (e.g. {profile.party}-agent)",
                                 param_hint="--as")
    return profile


@click.command()
@member_options(websocket=False)
@click.option("--once", is_flag=True, help="Check and cosign the current checkpoint, then exit.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between checks when running continuously.")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Last cosigned checkpoint (default HOME/state/NAME.witness.json).")
@click.pass_context
def witness(ctx: click.Context, name: str, servers: tuple[str, ...], once: bool, interval: float,
            state: Path | None) -> None:
    """Witness the log as a party's agent: cosign each new checkpoint after proving it extends
    the last one cosigned. A rollback, split view or inconsistency is refused (ALARM; with
    --once, exit 1). A log out of reach, or a host answering what the log API never sends (logged
    as witness.host_misbehaving), is logged and tried again next round. NAME must be an agent
    that the log's agreements name as a witness (exit 1 if the server says it is not)."""
    import time

    from hotline.agent.witness import WitnessAlarm, witness_key, witness_round
    from hotline.client.logapi import BadAnswer, LogClient, http_base
    from hotline.operator_log import configure

    configure(fmt="console" if sys.stderr.isatty() else "json")
    log = structlog.get_logger("hotline.witness")
    home = home_of(ctx)
    profile = _agent_profile(home, name, "witnesses the log")
    if profile.log_key is None:
        raise ConfigError("the profile pins no log_key", file=str(profile.path))
    key = witness_key(profile.signing_key())
    url = profile.endpoints(servers)[0]
    client = LogClient(http_base(url), ssl_context=profile.tls_for(url))
    state_path = state or home / "state" / f"{name}.witness.json"
    while True:
        try:
            size = witness_round(client, state_path=state_path, log_key=profile.log_key,
                                 name=profile.member, key=key, timestamp=int(time.time()))
            if size is not None:
                log.info("witness.cosigned", size=size)
            else:
                log.debug("witness.unchanged")
        except WitnessAlarm as exc:
            log.critical("witness.alarm", reason=exc.message)
            click.echo(f"ALARM: {exc.message}", err=True)
            if once:
                sys.exit(1)
        except HotlineError as exc:  # tried again next round, whatever the host answered
            if exc.code == Code.LOG_UNKNOWN_WITNESS:  # retrying cannot help: a person must act
                raise ProtocolViolation(
                    f"{profile.member} ({profile.party}) is not a witness the log's agreements "
                    f"name, so the server refuses its cosignatures: {exc.message}. Run the "
                    "witness as an agent the agreement names (its witnesses)",
                    code=Code.LOG_UNKNOWN_WITNESS) from None
            event = "witness.host_misbehaving" if isinstance(exc, BadAnswer) else "witness.failed"
            log.error(event, code=exc.code, reason=exc.message)
            if once:
                click.echo(exc.diagnostics(), err=True)
                sys.exit(1)
        if once:
            return
        time.sleep(interval)


@click.command()
@as_option
@click.option("--once", is_flag=True,
              help="One round: a heartbeat on every channel, then wait one interval for every "
                   "other party's echo; exit 0 if all echoed, 1 if not (for scripts and monitoring).")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Heartbeat counters kept across restarts (default HOME/state/NAME.agent.json).")
@click.option("--witness-every", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds between two witness rounds (cosign the log's new checkpoint after a "
                   "consistency proof); 0 turns the witness off.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@click.pass_context
def agent(ctx: click.Context, name: str, servers: tuple[str, ...], once: bool, state: Path | None,
          witness_every: float, log_level: str) -> None:
    """Run a party's heartbeat agent: on every channel, a signed heartbeat each interval of the
    channel's agreement, and a signed echo of every other party's heartbeat; and the party's log
    witness. Reconnects by itself (backoff with jitter, across the profile's servers); logs JSON
    lines on stderr. Exits 1 if its key is refused (revoked or expired)."""
    from hotline.agent.heartbeat import AgentState, HeartbeatAgent, default_state_path, lock_state
    from hotline.operator_log import configure
    home = home_of(ctx)
    configure(level=log_level)
    profile = _agent_profile(home, name, "sends heartbeats")
    state_path = state or default_state_path(home, name)
    with lock_state(state_path, name):  # one agent per state file, for its whole life
        runner = HeartbeatAgent(profile, state=AgentState.load(state_path), servers=servers,
                                witness_every=witness_every or None,
                                witness_state=home / "state" / f"{name}.witness.json")
        if not once:
            run_coroutine(runner.run())
            return
        result = run_coroutine(runner.run_once())
    for channel, outcome in result.items():
        line = f"{channel}: heartbeat echoed by {', '.join(outcome.echoed_by) or 'nobody'}"
        if outcome.missing:
            line += f"; NO ECHO from {', '.join(outcome.missing)}"
        click.echo(line)
    sys.exit(1 if any(o.missing for o in result.values()) else 0)


@click.command()
@as_option
@click.option("--wait", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to wait for every channel to be UP before judging (0: judge now).")
@click.pass_context
def doctor(ctx: click.Context, name: str, servers: tuple[str, ...], wait: float) -> None:
    """Check a member's setup for the first minutes of a deployment: each line passes or fails,
    and a failed one says what to do. The profile and key; for each server URL, that it is
    reachable (TLS with the pinned CA), that its origin and log key are the pinned ones and its
    latest checkpoint verifies, the clock skew, the member's enrollment, its channels and their
    health. Exits 0 if every line passes, 1 if not."""
    from hotline.doctor import can_show
    from hotline.doctor_probe import doctor as check
    status, report = check(home_of(ctx), name, servers, wait=wait, fancy=can_show(sys.stdout.encoding))
    click.echo(report)
    sys.exit(status)


@click.command()
@as_option
@click.option("--index", type=click.IntRange(min=0), required=True,
              help="Log index of the message ([N] in `hotline listen`).")
@click.option("--field", "field_name", required=True, help="The sealed field to disclose.")
@click.option("--to", "audience", type=click.Choice(["auditor", "public"]), default="auditor",
              show_default=True, help="Whom it is meant for (written into the file).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The disclosure file (default: HOME/disclosures/INDEX-FIELD.json).")
@click.pass_context
def disclose(ctx: click.Context, name: str, servers: tuple[str, ...], index: int, field_name: str,
             audience: str, out: Path | None) -> None:
    """Disclose one sealed field you read: a file with the field's value and salt and a receipt
    of the logged message, which anyone holding only the log's key checks with `hotline audit
    disclosure FILE` (a forged or altered value fails). Nothing else of the message is in it.

    \b
    Example:
      hotline disclose --as carol --index 12 --field private_note --to auditor
    """
    from hotline.client.logapi import LogClient, http_base
    from hotline.disclosures import check_disclosure, decode_disclosure_file
    from hotline.entries import decode_leaf
    from hotline.tlog import ProofBundle, verify_checkpoint
    home = home_of(ctx)
    profile = Profile.load(home, name)
    if profile.log_key is None:
        raise ConfigError("the profile pins no log_key: nobody could check a disclosure",
                          file=str(profile.path))
    url = profile.endpoints(servers)[0]
    log = LogClient(http_base(url), key=profile.signing_key(), origin=profile.origin,
                    ssl_context=profile.tls_for(url))
    note = log.checkpoint()
    size = verify_checkpoint(note, profile.log_key).size
    if index >= size:
        raise ProtocolViolation(f"entry {index} is not under the latest checkpoint ({size} "
                                "entries) yet: try again in a moment", code=Code.LOG_NO_ENTRY)
    leaf = log.leaf(index)
    entry = decode_leaf(leaf, index=index)
    if not isinstance(entry, EnvelopeEntry):
        raise ProtocolViolation(f"entry {index} is no message", code=Code.LOG_NO_ENTRY)
    view = SealedView.of_member(home, profile, TemplateSet())
    disclosure = view.opened(entry.envelope).get(field_name)
    if disclosure is None:
        raise SealError(f"{name} cannot read field {field_name!r} of entry {index} (not sealed "
                        f"to you, no such field, or your keys and read store lack it)"
                        + (f": {view.problem}" if view.problem else ""), code=Code.SEAL_NO_KEY)
    receipt = ProofBundle(index=index, proof=tuple(log.inclusion(index, size)), checkpoint_note=note,
                          extra=leaf).to_text()
    file = decode_disclosure_file({"type": "hotline-disclosure", "v": 1, "to": audience,
                                   "field": field_name, "disclosure": disclosure.encoded,
                                   "receipt": receipt})
    check_disclosure(file, profile.log_key)  # never hand over what would not verify
    target = out or home / "disclosures" / f"{index}-{field_name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(file.text(), encoding="utf-8")
    click.echo(f"Disclosure of {field_name} of entry {index} written to {target} (for "
               f"{audience}); anyone checks it with: hotline audit disclosure {target} --log-key KEY")
