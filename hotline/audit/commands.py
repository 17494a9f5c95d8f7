"""``hotline audit``: export, verify, receipt, report and availability, for auditors (and anyone
holding the pinned keys). Reads only what the HTTP API and exports give: never the server's
database."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

import click
import msgspec

from hotline.ahead import Verifiers
from hotline.audit import availability as availability_report
from hotline.audit.attachments import match_files
from hotline.audit.availability import AvailabilityBuilder
from hotline.audit.export import read_export
from hotline.audit.folder import hash_folder
from hotline.audit.plot import PlotError, plotter
from hotline.audit.records import CheckpointNote, CheckpointRecord, EntryRecord, Header, Records
from hotline.audit.report import Claimed, ComplianceReport, ReportBuilder, render_text
from hotline.audit.text import WIDTH
from hotline.audit.verify import AuditFailure, Auditor, Report
from hotline.canonical import dumps, parse
from hotline.cli_options import member_options
from hotline.client.logapi import LogClient, http_base
from hotline.client.profile import Profile
from hotline.client.receipts import verify_receipt
from hotline.clock import utc_now
from hotline.disclosures import MAX_FILE, DisclosureFile, check_disclosure, decode_disclosure_file
from hotline.display import shown, shown_lines
from hotline.entries import Entry, EnvelopeEntry, kind_of
from hotline.entries import decode as decode_entry
from hotline.errorcodes import Code
from hotline.errors import ConfigError, HotlineError, LogError, ProtocolViolation, SealError
from hotline.norms.files import load_templates
from hotline.roster import Member, Roster
from hotline.times import format_time
from hotline.tlog import NoteVerifier
from hotline.typed import to_json

STATE_KEEP = 16  # checkpoints remembered per auditor: enough to catch a rollback or a fork


def _fail(exc: HotlineError) -> NoReturn:
    raise exc  # the ``hotline`` command prints it, with its exit code (``hotline.cli.Commands``)


def _profile(home: Path, name: str) -> tuple[Profile, NoteVerifier]:
    profile = Profile.load(home, name)
    if profile.log_key is None:
        raise ConfigError("the profile pins no log_key", file=str(profile.path))
    return profile, profile.log_key


def _client(profile: Profile, servers: tuple[str, ...]) -> LogClient:
    url = profile.endpoints(servers)[0]
    return LogClient(http_base(url), key=profile.signing_key(), origin=profile.origin,
                     ssl_context=profile.tls_for(url))


def _records(client: LogClient) -> Records:
    # The witnessed checkpoints first: each was signed before the history is read, so the
    # history covers it and a live log never looks rolled back.
    witnessed = client.witnessed()
    checkpoints = client.checkpoints()
    size = max((c.size for c in checkpoints), default=0)
    return Records(witnessed, checkpoints, size, client.entries(size))


def _witness_policy(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    """Option callback: ``all`` (None) or a number of witnesses, 0 or more."""
    text = value.strip().lower()
    if text == "all":
        return None
    if text.isdigit() and len(text) <= 4:
        return int(text)
    raise click.BadParameter(f"{value!r}: give a number of witnesses (0 or more) or 'all'")


def _policy_option(command: Any) -> Any:
    return click.option(
        "--require-witnesses", "require_witnesses", default="all", show_default=True,
        metavar="N|all", callback=_witness_policy,
        help="Witnesses (of those the log's agreements name) that must have cosigned a "
             "checkpoint for the verdict to cover it: the verdict ends at the largest checkpoint "
             "cosigned by that many; if none is, FAILED naming those that did not. 0 requires "
             "none (nothing then shows that others see the same log).")(command)


@click.group()
def audit() -> None:
    """Verify the transparency log with no trust in the host."""


_member_options = member_options(
    websocket=False, as_help="Auditor (or member) profile whose keys are used and trusted.")


def _report_options(command: Any) -> Any:
    """The channel a report is on, where its log comes from, and its form."""
    command = click.option("--json", "as_json", is_flag=True,
                           help="Print the report as one JSON object.")(command)
    command = _policy_option(command)
    command = click.option("--export", "export_file",
                           type=click.Path(exists=True, dir_okay=False, path_type=Path),
                           help="Report from this export (`hotline audit export`) instead of the "
                                "live server.")(command)
    return click.option("--channel", required=True, help="Channel to report on.")(command)


@audit.command()
@_member_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write (JSON lines).")
@click.pass_context
def export(ctx: click.Context, name: str, servers: tuple[str, ...], out: Path) -> None:
    """Export the log as JSON lines: a header, every signed checkpoint (with cosignatures), the
    witnesses' latest cosigned checkpoints, then every entry up to the largest checkpoint (leaf
    and entry where readable, else leaf hash)."""
    try:
        profile, _ = _profile(ctx.obj["home"], name)
        client = _client(profile, servers)
        records = _records(client)
        checkpoints, size = records.checkpoints, records.size
        with out.open("w") as handle:
            _line(handle, "log", Header(profile.origin, client.key_text(), format_time(utc_now()),
                                        size))
            for checkpoint in checkpoints:
                _line(handle, "checkpoint", checkpoint.checkpoint)
            for witnessed in records.witnessed:
                _line(handle, "witnessed", witnessed.checkpoint)
            with _progress(size, "exporting") as bar:
                for n, record in enumerate(records.entries, start=1):
                    _line(handle, "entry", record)
                    if n % 1000 == 0:  # a bar update per entry costs more than the entry
                        bar.update(1000)
    except HotlineError as exc:
        _fail(exc)
    click.echo(f"exported {size} entries and {len(checkpoints)} checkpoints to {out}")


def _line(handle: TextIO, kind: str, record: Header | CheckpointNote | EntryRecord) -> None:
    """One line of an export: the record as the log API gives it, typed by ``kind``."""
    handle.write(json.dumps({"type": kind, **to_json(record)}, ensure_ascii=False,
                            separators=(",", ":")) + "\n")


def _progress(size: int, label: str) -> Any:
    return click.progressbar(length=size, label=label, file=sys.stderr,
                             show_pos=True) if sys.stderr.isatty() and size > 1000 else _NoBar()


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _state_path(home: Path, name: str, given: Path | None) -> Path:
    return given or home / "state" / f"{name}.audit.json"


def run_audit(auditor: Auditor, *, checkpoints: Iterable[CheckpointRecord],
              entries: Iterable[EntryRecord], remembered: Iterable[str], size_hint: int,
              witnessed: Iterable[CheckpointRecord] = (),
              require_witnesses: int | None = None,
              accepted: Callable[[Entry], None] | None = None) -> Report:
    """Feed the auditor what it compares (its remembered checkpoints, the log's history, the
    witnesses' latest cosigned checkpoints), then every entry (each readable one, once checked,
    to ``accepted``); then its verdict under the witness policy (``require_witnesses``: None for
    all named witnesses)."""
    for note in remembered:
        auditor.add_checkpoint(note, source="this auditor's state (seen before)")
    for checkpoint in (*checkpoints, *witnessed):
        auditor.add_checkpoint(checkpoint.note, source=checkpoint.source)
    # the signatures are checked on every core, ahead of the entry being checked (hotline.ahead)
    verifiers = Verifiers(os.cpu_count() or 1)
    try:
        with _progress(size_hint, "verifying") as bar:
            for n, (record, decoded) in enumerate(auditor.ahead(entries, verifiers), start=1):
                entry = auditor.add_entry(record, decoded)
                if entry is not None and accepted is not None:
                    accepted(entry)
                if n % 1000 == 0:
                    bar.update(1000)
    finally:
        verifiers.close()
    return auditor.finish(require_witnesses=require_witnesses)


def _audited(home: Path, name: str, servers: tuple[str, ...], export_file: Path | None,
             state_path: Path, *, require_witnesses: int | None,
             accepted: Callable[[Entry], None] | None = None,
             ) -> tuple[Profile, Auditor, Report]:
    """Audit the live log (or ``export_file``) as ``name``, against the checkpoints remembered in
    ``state_path`` and the witnesses' latest cosigned checkpoints, under the witness policy.
    ``accepted`` gets each readable entry once the auditor has checked it. Raises AuditFailure
    (or another HotlineError) as ``run_audit`` does."""
    profile, log_key = _profile(home, name)
    remembered = json.loads(state_path.read_text())["checkpoints"] if state_path.is_file() else []
    if export_file is not None:
        records = read_export(export_file)
    else:
        records = _records(_client(profile, servers))
    templates = load_templates(profile.protocols)
    auditor = Auditor(log_key=log_key, authorities=profile.authorities, templates=templates)
    report = run_audit(auditor, checkpoints=records.checkpoints, entries=records.entries,
                       remembered=remembered, size_hint=records.size, witnessed=records.witnessed,
                       require_witnesses=require_witnesses, accepted=accepted)
    return profile, auditor, report


def _remember(state_path: Path, auditor: Auditor) -> None:
    """Keep the newest checkpoints the auditor accepted, for the next run's rollback checks."""
    newest = [note for _, (_, note, _) in sorted(auditor.checkpoints.items())][-STATE_KEEP:]
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps({"checkpoints": newest}))


@audit.command()
@_member_options
@click.option("--export", "export_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Verify this export instead of the live server.")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoints seen before (default HOME/state/NAME.audit.json); updated on success.")
@_policy_option
@click.option("--attachments", "attachments", metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also check every file under DIR against the attachments the verified entries "
                   "name (by SHA-256 and size): a file no entry names fails the audit.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def verify(ctx: click.Context, name: str, servers: tuple[str, ...], export_file: Path | None,
           state: Path | None, require_witnesses: int | None, attachments: Path | None,
           as_json: bool) -> None:
    """Check every leaf against signed checkpoints, every signature against pinned keys, the
    roster rules, cosignatures, and consistency with every checkpoint seen before and with the
    latest checkpoint each witness cosigned (a larger one is a rollback, another root a split
    view). Exits 1 naming the first bad entry or checkpoint.

    The verdict covers the log up to the largest checkpoint cosigned by the witnesses the
    agreements name (--require-witnesses: all of them by default); entries after it are verified
    and counted as not yet cosigned. If no checkpoint is cosigned by the required witnesses, it
    fails naming those that did not cosign.

    With --attachments DIR, every file under DIR must be one a verified entry names (a clear
    file by its own SHA-256, a sealed one by its sealed stream's); the attachments no given file
    matches are listed.
    """
    home: Path = ctx.obj["home"]
    state_path = _state_path(home, name, state)
    try:
        _, auditor, report = _audited(home, name, servers, export_file, state_path,
                                      require_witnesses=require_witnesses)
    except AuditFailure as exc:
        click.echo(f"FAILED: {shown(exc.message)}", err=True)
        sys.exit(1)
    except HotlineError as exc:
        _fail(exc)
    _remember(state_path, auditor)
    findings = None
    if attachments is not None:
        total = sum(p.stat().st_size for p in attachments.rglob("*")
                    if p.is_file() and not p.is_symlink())
        with _progress(total, "hashing files") as bar:
            findings = match_files(hash_folder(attachments, bar.update), auditor.files)
    if as_json:
        files = {"attachments": findings.to_json()} if findings is not None else {}
        click.echo(json.dumps({"ok": findings is None or findings.ok, **to_json(report), **files}))
        if findings is not None and not findings.ok:
            sys.exit(1)
        return
    click.echo(f"OK: log {shown(report.origin)}: {report.size} entries verified against "
               f"{report.checkpoints} signed checkpoints (largest {report.largest_checkpoint})")
    click.echo(f"  {kinds_line(report)}")
    for line in witness_lines(report, require_witnesses):
        click.echo(f"  {shown(line)}")
    if findings is not None:
        for line in findings.lines():
            failed = line.startswith("FAILED")
            click.echo(shown(line) if failed else f"  {shown(line)}", err=failed)
        if not findings.ok:
            sys.exit(1)


def kinds_line(report: Report) -> str:
    """The entries verified by kind, every kind named, so that the parts add up to the whole."""
    parts = ", ".join(f"{label} {count}" for label, count in report.kinds())
    if report.rejection_summaries:
        parts += f" (counting {report.rejections_summarized} more refused attempts)"
    return (f"readable {report.readable} ({parts}); hidden from this auditor {report.hidden} "
            f"(hash only); {report.size} in all")


class SummaryCheckpoint(msgspec.Struct, frozen=True):
    """A checkpoint a report stands on: its size and root (base64; None if not seen)."""

    size: int
    root: str | None

    @property
    def root_text(self) -> str:
        return "" if self.root is None else f" (root {self.root[:12]}...)"


class WitnessedCheckpoint(SummaryCheckpoint, frozen=True):
    """The checkpoint the witnessed range ends at, and the named witnesses that cosigned it."""

    cosigned_by: list[str]
    named_witnesses: int


class VerifiedSummary(msgspec.Struct, frozen=True):
    """What a report stands on (``"verified"`` in ``hotline audit report --json``)."""

    origin: str
    entries: int
    checkpoint: SummaryCheckpoint
    witnessed: WitnessedCheckpoint


def verified_summary(auditor: Auditor, report: Report) -> VerifiedSummary:
    """What a report stands on: the checkpoint every entry was checked against (size, root), and
    the one the verdict's witnessed range ends at with the named witnesses that cosigned it (a
    witness that cosigned a larger checkpoint vouches for it too)."""
    def root(size: int) -> str | None:
        found = auditor.checkpoints.get(size)
        return None if found is None else base64.b64encode(found[0].root_hash).decode()

    witnessed = report.witnessed_size
    cosigned = sorted(w for w, s in report.witnesses.items() if s is not None and s >= witnessed)
    return VerifiedSummary(report.origin, report.size, SummaryCheckpoint(report.size, root(report.size)),
                           WitnessedCheckpoint(witnessed, root(witnessed), cosigned,
                                               len(report.witnesses)))


def verified_line(summary: VerifiedSummary) -> str:
    """``Log verified: ORIGIN, all N entries, against its checkpoint N (root ...); witnessed up
    to checkpoint W (root ...), cosigned by K of M named witnesses (...)``"""
    top, witnessed = summary.checkpoint, summary.witnessed
    who = witnessed.cosigned_by
    line = (f"Log verified: {summary.origin}, all {summary.entries} entries, against its "
            f"checkpoint {top.size}{top.root_text}; ")
    line += ("witnessed: that checkpoint" if witnessed.size == top.size else
             f"witnessed up to checkpoint {witnessed.size}{witnessed.root_text}")
    return (line + f", cosigned by {len(who)} of {witnessed.named_witnesses} named witnesses"
            + (f" ({', '.join(who)})" if who else ""))


def witness_lines(report: Report, required: int | None) -> list[str]:
    """The verdict's witnessed range, each named witness's latest cosigned checkpoint, and the
    entries not yet cosigned by the required witnesses."""
    size, witnessed = report.size, report.witnessed_size
    named = len(report.witnesses)
    if required == 0:
        policy = "no witness required (--require-witnesses 0): nothing shows others see this log"
    else:
        policy = ("cosigned by all " if required is None else f"cosigned by {required} of the ") + \
            f"{named} named witnesses"
    lines = [f"witnessed: entries 0..{witnessed - 1} (checkpoint {witnessed}), {policy}"
             if witnessed else f"witnessed: no entries, {policy}"]
    counts = {w: report.cosignatures.get(w, 0) for w in report.witnesses}
    each = ", ".join(f"{w} " + (f"up to {s} ({counts[w]} checkpoint{'' if counts[w] == 1 else 's'})"
                                if s is not None else "none")
                     for w, s in report.witnesses.items())
    lines.append(f"witnesses (largest checkpoint cosigned): {each or 'none named'}")
    if report.unwitnessed:
        who = "every witness" if required is None else f"{required} witnesses"
        lines.append(f"not yet cosigned by {who}: entries {witnessed}..{size - 1} "
                     f"({report.unwitnessed}; verified, but outside the witnessed range)")
    return lines


def _log_key_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--as NAME`` or ``--log-key KEY``: whose pinned log key an offline check uses."""
    command = click.option("--log-key", help="The log's verifier key (origin+hash+base64), "
                                             "instead of --as.")(command)
    return click.option("--as", "name", envvar="HOTLINE_AS",
                        help="Take the log key from this profile.")(command)


def _log_verifier(ctx: click.Context, name: str | None, log_key: str | None) -> NoteVerifier:
    """The log's key for an offline check: given (``--log-key``), or pinned by a profile."""
    if log_key is not None:
        return NoteVerifier.from_text(log_key)
    if name is not None:
        return _profile(ctx.obj["home"], name)[1]
    raise click.UsageError("give --as NAME or --log-key KEY")


@audit.command()
@click.argument("receipt_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_log_key_options
@click.pass_context
def receipt(ctx: click.Context, receipt_file: Path, name: str | None, log_key: str | None) -> None:
    """Verify a saved receipt (C2SP tlog-proof bundle) offline, with only the log's key."""
    try:
        checkpoint, proven = verify_receipt(receipt_file.read_bytes(),
                                            _log_verifier(ctx, name, log_key))
        entry = decode_entry(proven, what="the proven entry")
    except LogError as exc:
        click.echo(f"FAILED: {shown(exc.message)}", err=True)
        sys.exit(1)
    except HotlineError as exc:
        _fail(exc)
    envelope = entry.envelope if isinstance(entry, EnvelopeEntry) else None
    click.echo(shown(f"OK: entry {entry.index} ({kind_of(entry)}, id {envelope and envelope.id}, "
                     f"sender {envelope and envelope.sender}, logged {entry.time}) is in log "
                     f"{checkpoint.origin} at its signed checkpoint of size {checkpoint.size}"))


@audit.command()
@click.argument("disclosure_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_log_key_options
@click.pass_context
def disclosure(ctx: click.Context, disclosure_file: Path, name: str | None, log_key: str | None) -> None:
    """Check a disclosed sealed field (`hotline disclose`) offline, with only the log's key: the
    receipt proves the message is in the log, and the value must be the one its signed digest
    commits to. Prints the field's value; exits 1 if anything does not hold."""
    try:
        verifier = _log_verifier(ctx, name, log_key)
        checkpoint, entry, disclosed = check_disclosure(_disclosure_file(disclosure_file), verifier)
    except (LogError, SealError) as exc:
        click.echo(f"FAILED: {shown(exc.message)}", err=True)
        sys.exit(1)
    except HotlineError as exc:
        _fail(exc)
    click.echo(shown(f"OK: field {disclosed.name} of entry {entry.index} (id {entry.envelope.id}, "
                     f"sender {entry.envelope.sender} of {entry.party}, logged {entry.time}; in log "
                     f"{checkpoint.origin} at its signed checkpoint of size {checkpoint.size}) is: "
                     f"{dumps(disclosed.value)}"))


def _disclosure_file(path: Path) -> DisclosureFile:
    """A disclosure file as handed over: read within its bound, decoded strictly."""
    with path.open("rb") as handle:  # bounded: a file anyone may hand over
        data = handle.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise SealError(f"larger than {MAX_FILE} bytes: not a disclosure", code=Code.SEAL_INVALID)
    return decode_disclosure_file(parse(data))


def _claimed(ctx: click.Context, name: str, paths: tuple[Path, ...]) -> list[Claimed]:
    """The disclosures ``audit report --disclosure`` was given, each proven in the log by its
    receipt (the report then checks it against the entry it reads); a failure is FAILED, exit 1."""
    if not paths:
        return []
    try:
        verifier = _log_verifier(ctx, name, None)
    except HotlineError as exc:
        _fail(exc)
    claimed = []
    for path in paths:
        try:
            file = _disclosure_file(path)
            _, entry, disclosed = check_disclosure(file, verifier)
        except (LogError, SealError) as exc:
            click.echo(f"FAILED: disclosure {shown(str(path))}: {shown(exc.message)}", err=True)
            sys.exit(1)
        except HotlineError as exc:
            _fail(exc)
        claimed.append(Claimed(entry.index, disclosed.name, file.to, disclosed.encoded))
    return claimed


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """Option callback: an RFC 3339 time (``2026-11-27T21:00:00Z``, ``...T23:00:00+02:00``) or
    a bare date (``2026-11-27``: midnight UTC), as an aware UTC datetime; else a usage error."""
    if value is None:
        return None
    text = value.strip().upper()
    if _DATE.fullmatch(text):
        text += "T00:00:00Z"
    if _RFC3339.fullmatch(text):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError as exc:
            raise click.BadParameter(f"{value!r} is not a valid time: {exc}") from exc
    raise click.BadParameter(f"{value!r} is not an RFC 3339 time like 2026-11-27T21:00:00Z or a "
                             "date like 2026-11-27")


def _check_readable(roster: Roster, profile: Profile, channel: str) -> None:
    """Refuse a report that would count nothing: the channel must exist in the log's roster and
    ``profile``'s member must be able to read it (else its entries came as hashes only)."""
    if channel not in roster.agreements:
        known = ", ".join(sorted(roster.agreements)) or "none"
        raise ProtocolViolation(f"no channel {channel!r} under an agreement in this log "
                                f"(channels: {known})", code=Code.CHANNEL_UNKNOWN)
    refusal: ProtocolViolation | None = None
    for key_id, enrolled in roster.enrollments.items():  # names are per party: match both
        if (enrolled.party, enrolled.member) == (profile.party, profile.member):
            try:
                roster.check_channel(Member(enrolled.party, enrolled.member, enrolled.role, key_id),
                                     channel)
                return
            except ProtocolViolation as exc:
                refusal = exc
    raise refusal or ProtocolViolation(f"{profile.member} ({profile.party}) is not enrolled in "
                                       "this log, so it reads no channel",
                                       code=Code.CHANNEL_NOT_MEMBER)


@audit.command()
@_member_options
@click.option("--since", callback=_moment, metavar="TIME",
              help="Report entries logged at or after this time (RFC 3339, or YYYY-MM-DD for "
                   "midnight UTC). Default: the start of the log.")
@click.option("--until", callback=_moment, metavar="TIME",
              help="Report entries logged before this time (same forms). Default: now.")
@click.option("--disclosure", "disclosure_files", multiple=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A sealed field disclosed to you (`hotline disclose`): shown in the report "
                   "once its receipt proves it in the log and it matches the digest its sender "
                   "signed (repeatable; a forged one fails the report).")
@_report_options
@click.pass_context
def report(ctx: click.Context, name: str, servers: tuple[str, ...], channel: str,
           since: datetime | None, until: datetime | None, disclosure_files: tuple[Path, ...],
           export_file: Path | None, require_witnesses: int | None, as_json: bool) -> None:
    """Compliance report of one channel, from a log that verified.

    First verifies the whole log exactly as `hotline audit verify` does (and updates the same
    state file, HOME/state/NAME.audit.json); a failure prints FAILED and the reason, exits 1,
    and no report is printed. Its first line says what the report stands on: the checkpoint
    every entry was checked against (size, root) and the one the witnesses cosigned (how many
    of the named witnesses, and which). Then reports, for the channel and the period:

    \b
    - messages by template and precedence; acks, heartbeats and echoes;
    - acknowledgements owed (one per party a message's template obliges to
      ack): on time, late, missing (past due) or pending (not yet due at
      --until or now, whichever is earlier), by template and by party, each
      late, missing and pending one listed;
    - the overdue notices the server logged;
    - refused attempts (rejected entries) by party and by code;
    - the keys the history rests on: each party's authority keys (pinned, or
      reached by a handover), every member key with its validity and revocation;
    - with --disclosure, the sealed fields disclosed to you, each checked.

    Messages are selected by their log time (--since <= time < --until); their acks count when
    logged before --until. Exits 0 with the report, 1 if the log fails verification or the
    channel is unknown or not readable by NAME, 2 on a usage error.

    \b
    Examples:
      hotline audit report --as audrey --channel north-south --since 2026-11-27
      hotline audit report --as audrey --channel north-south --export log.jsonl --json
    """
    _check_period(since, until)
    builder = ReportBuilder(channel=channel, since=since, until=until,
                            disclosures=_claimed(ctx, name, disclosure_files))
    _channel_report(ctx, name, servers, export_file, channel, builder,
                    render_text, as_json, require_witnesses)


@audit.command()
@_member_options
@click.option("--since", callback=_moment, metavar="TIME",
              help="Start of the period (RFC 3339, or YYYY-MM-DD for midnight UTC). Default: the "
                   "channel's first entry (its agreement).")
@click.option("--until", callback=_moment, metavar="TIME",
              help="End of the period, exclusive (same forms). Default: the log's last entry, "
                   "or now if earlier.")
@_report_options
@click.option("--plot", "plot_file", metavar="FILE.svg|FILE.png",
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also draw the report into FILE (SVG or PNG, by its suffix): the states over "
                   "time, each party's heartbeat gaps, the outages, the round trips. Needs "
                   "matplotlib: pip install 'hotline[plot]'.")
@click.pass_context
def availability(ctx: click.Context, name: str, servers: tuple[str, ...], channel: str,
                 since: datetime | None, until: datetime | None, export_file: Path | None,
                 require_witnesses: int | None, as_json: bool, plot_file: Path | None) -> None:
    """Availability of one channel, from a log that verified.

    First verifies the whole log exactly as `hotline audit verify` does (and updates the same
    state file, HOME/state/NAME.audit.json); a failure prints FAILED and the reason, exits 1,
    and no report is printed. Its first line says what the report stands on (the checkpoints
    and their cosignatures, as `hotline audit report` does). Then reports, for the channel and
    the period, from the health transitions the server logged (every one, in order: a state
    dated from when it began by the evidence, a fault lasting until the entry ending it was
    logged, as the live view showed it) and the agents' heartbeats and echoes:

    \b
    - the time UP, DEGRADED, DOWN and UNKNOWN, and their shares;
    - every outage (a DOWN period): start, end or ongoing, duration, when
      its cause began, the cause, and the host's fault when every party
      fell silent at once;
    - the timeline of states: a one-line bar, then each period;
    - heartbeats and echoes per party, and the longest gap between two
      heartbeats of one party (a server outage is a gap in every party's);
    - heartbeat -> echo round trips: p50, p90, p99 and max.

    With --plot FILE the same report is drawn into FILE (.svg or .png), from the same verified
    log.

    Exits 0 with the report, 1 if the log fails verification or the channel is unknown or not
    readable by NAME, or the plot cannot be drawn (matplotlib not installed: the message says
    how to install it) or written; 2 on a usage error (a --plot FILE not ending in .svg or .png).

    \b
    Examples:
      hotline audit availability --as audrey --channel north-south --since 2026-11-27
      hotline audit availability --as audrey --channel north-south --export log.jsonl --json
      hotline audit availability --as audrey --channel north-south --plot availability.svg
    """
    _check_period(since, until)
    draw = None
    if plot_file is not None:
        try:  # before the audit: a wrong suffix or a missing extra fails at once
            draw = plotter(plot_file)
        except PlotError as exc:
            if exc.code == Code.PLOT_BAD_FORMAT:
                raise click.BadParameter(exc.message, param_hint="'--plot'") from exc
            _fail(exc)
    builder = AvailabilityBuilder(channel=channel, since=since, until=until)
    _channel_report(ctx, name, servers, export_file, channel, builder,
                    availability_report.render_text, as_json, require_witnesses, draw)


def _check_period(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise click.BadParameter("must be later than --since", param_hint="'--until'")


def _channel_report(ctx: click.Context, name: str, servers: tuple[str, ...],
                    export_file: Path | None, channel: str, builder: Any,
                    render: Callable[[Any], str], as_json: bool,
                    require_witnesses: int | None,
                    plot: Callable[[Any], None] | None = None) -> None:
    """Verify the log as ``name`` while feeding each verified entry to ``builder``; then print
    the channel's report (text, or JSON), after a line saying what it stands on (the checkpoint
    the verdict ends at and its cosignatures; in JSON, ``verified``). A log that fails
    verification gets no report; entries not yet cosigned by the required witnesses are
    reported, with a note on stderr. ``plot``, if given, draws the report first."""
    home: Path = ctx.obj["home"]
    state_path = _state_path(home, name, None)
    try:
        profile, auditor, verdict = _audited(home, name, servers, export_file, state_path,
                                             require_witnesses=require_witnesses,
                                             accepted=builder.add)
        _check_readable(auditor.roster, profile, channel)
        report = builder.finish(now=utc_now())
        if isinstance(report, ComplianceReport):  # it lists the keys the history rests on
            report = report.with_keys(auditor.roster).with_files(auditor.files)
    except AuditFailure as exc:
        click.echo(f"FAILED: {shown(exc.message)}", err=True)
        sys.exit(1)
    except HotlineError as exc:
        _fail(exc)
    _remember(state_path, auditor)
    if verdict.unwitnessed:
        click.echo(f"note: {witness_lines(verdict, require_witnesses)[-1]}", err=True)
    summary = verified_summary(auditor, verdict)
    if plot is not None:
        try:
            plot(report)
        except HotlineError as exc:
            _fail(exc)
    if as_json:  # ASCII-escaped: inert, lossless
        click.echo(json.dumps({"verified": to_json(summary), **report.to_json()}, indent=2))
    else:  # first what the report stands on, then the report (names and texts from the log)
        click.echo(shown_lines(textwrap.fill(verified_line(summary), WIDTH,
                                             subsequent_indent="  ", break_on_hyphens=False)))
        click.echo(shown_lines(render(report)), nl=False)
