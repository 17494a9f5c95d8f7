"""``hotline audit``: export, verify and receipt, for auditors (and anyone holding the pinned
keys). Reads only what the HTTP API and exports give: never the server's database."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import click

from hotline.audit.remote import LogClient, http_base
from hotline.audit.verify import AuditFailure, Auditor, Report
from hotline.client.profile import Profile
from hotline.client.receipts import verify_receipt
from hotline.errors import ConfigError, HotlineError, LogError
from hotline.times import format_time
from hotline.tlog import NoteVerifier

STATE_KEEP = 16  # checkpoints remembered per auditor: enough to catch a rollback or a fork


def _fail(exc: HotlineError) -> None:
    click.echo(exc.diagnostics(), err=True)
    sys.exit(1)


def _profile(home: Path, name: str) -> tuple[Profile, NoteVerifier]:
    profile = Profile.load(home, name)
    if profile.log_key is None:
        raise ConfigError("the profile pins no log_key", file=str(profile.path))
    return profile, profile.log_key


def _client(profile: Profile, servers: tuple[str, ...]) -> LogClient:
    url = (servers or profile.servers)[0]
    return LogClient(http_base(url), key=profile.signing_key(), origin=profile.origin,
                     ssl_context=profile.ssl_context() if url.startswith("wss:") else None)


def _records(client: LogClient) -> tuple[list[dict[str, Any]], int, Iterator[dict[str, Any]]]:
    checkpoints = client.checkpoints()
    size = max((c["size"] for c in checkpoints), default=0)
    return checkpoints, size, client.entries(size)


@click.group()
def audit() -> None:
    """Verify the transparency log with no trust in the host."""


def _member_options(command: Any) -> Any:
    command = click.option("--server", "servers", multiple=True, envvar="HOTLINE_SERVER",
                           help="Server URL (ws:// or http://), overriding the profile's.")(command)
    return click.option("--as", "name", required=True, envvar="HOTLINE_AS",
                        help="Auditor (or member) profile whose keys are used and trusted.")(command)


@audit.command()
@_member_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write (JSON lines).")
@click.pass_context
def export(ctx: click.Context, name: str, servers: tuple[str, ...], out: Path) -> None:
    """Export the log as JSON lines: a header, every signed checkpoint (with cosignatures), then
    every entry up to the largest checkpoint (leaf and entry where readable, else leaf hash)."""
    try:
        profile, _ = _profile(ctx.obj["home"], name)
        client = _client(profile, servers)
        checkpoints, size, entries = _records(client)
        with out.open("w") as handle:
            _line(handle, {"type": "log", "origin": profile.origin, "key": client.key_text(),
                           "exported": format_time(datetime.now(UTC)), "size": size})
            for checkpoint in checkpoints:
                _line(handle, {"type": "checkpoint", **checkpoint})
            with _progress(size, "exporting") as bar:
                for n, record in enumerate(entries, start=1):
                    _line(handle, {"type": "entry", **record})
                    if n % 1000 == 0:  # a bar update per entry costs more than the entry
                        bar.update(1000)
    except HotlineError as exc:
        _fail(exc)
    click.echo(f"exported {size} entries and {len(checkpoints)} checkpoints to {out}")


def _line(handle: TextIO, value: dict[str, Any]) -> None:
    handle.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")


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


def _read_export(path: Path) -> tuple[list[dict[str, Any]], Iterator[dict[str, Any]]]:
    handle = path.open()
    header = json.loads(handle.readline() or "{}")
    if header.get("type") != "log":
        raise LogError(f"{path} is not a hotline log export (no header line)", code="audit.bad_export")
    checkpoints: list[dict[str, Any]] = []
    first_entry: dict[str, Any] | None = None
    for text in handle:
        record = json.loads(text)
        if record.get("type") == "checkpoint":
            checkpoints.append(record)
        else:
            first_entry = record
            break

    def entries() -> Iterator[dict[str, Any]]:
        with handle:
            if first_entry is not None:
                yield first_entry
            for text in handle:
                yield json.loads(text)
    return checkpoints, entries()


def _state_path(home: Path, name: str, given: Path | None) -> Path:
    return given or home / "state" / f"{name}.audit.json"


def run_audit(auditor: Auditor, *, checkpoints: Iterable[dict[str, Any]], entries: Iterable[dict[str, Any]],
              remembered: Iterable[str], size_hint: int) -> Report:
    for note in remembered:
        auditor.add_checkpoint(note, source="this auditor's state (seen before)")
    for checkpoint in checkpoints:
        auditor.add_checkpoint(checkpoint["note"], source="the log")
    with _progress(size_hint, "verifying") as bar:
        for n, record in enumerate(entries, start=1):
            auditor.add_entry(record)
            if n % 1000 == 0:
                bar.update(1000)
    return auditor.finish()


@audit.command()
@_member_options
@click.option("--export", "export_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Verify this export instead of the live server.")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoints seen before (default HOME/state/NAME.audit.json); updated on success.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def verify(ctx: click.Context, name: str, servers: tuple[str, ...], export_file: Path | None,
           state: Path | None, as_json: bool) -> None:
    """Check every leaf against signed checkpoints, every signature against pinned keys, the
    roster rules, cosignatures, and consistency with every checkpoint seen before. Exits 1
    naming the first bad entry or checkpoint."""
    home: Path = ctx.obj["home"]
    state_path = _state_path(home, name, state)
    try:
        profile, log_key = _profile(home, name)
        remembered = json.loads(state_path.read_text())["checkpoints"] if state_path.is_file() else []
        if export_file is not None:
            checkpoints, entries = _read_export(export_file)
        else:
            checkpoints, _, entries = _records(_client(profile, servers))
        auditor = Auditor(log_key=log_key, authorities=profile.authorities)
        size_hint = max((c["size"] for c in checkpoints), default=0)
        report = run_audit(auditor, checkpoints=checkpoints, entries=entries,
                           remembered=remembered, size_hint=size_hint)
    except AuditFailure as exc:
        click.echo(f"FAILED: {exc.message}", err=True)
        sys.exit(1)
    except HotlineError as exc:
        _fail(exc)
    newest = [note for _, (_, note, _) in sorted(auditor.checkpoints.items())][-STATE_KEEP:]
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps({"checkpoints": newest}))
    if as_json:
        click.echo(json.dumps({"ok": True, **report.to_json()}))
        return
    click.echo(f"OK: log {report.origin}: {report.size} entries verified against "
               f"{report.checkpoints} signed checkpoints (largest {report.largest_checkpoint})")
    click.echo(f"  readable {report.readable} (envelopes {report.envelopes}, roster documents "
               f"{report.roster_documents}, rejected attempts {report.rejected}); "
               f"hidden from this auditor {report.hidden} (hash only)")
    witnessed = ", ".join(f"{w} {n}" for w, n in sorted(report.cosignatures.items())) or "none"
    click.echo(f"  cosignatures by witnesses: {witnessed}")


@audit.command()
@click.argument("receipt_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "name", envvar="HOTLINE_AS", help="Take the log key from this profile.")
@click.option("--log-key", help="The log's verifier key (origin+hash+base64), instead of --as.")
@click.pass_context
def receipt(ctx: click.Context, receipt_file: Path, name: str | None, log_key: str | None) -> None:
    """Verify a saved receipt (C2SP tlog-proof bundle) offline, with only the log's key."""
    try:
        if log_key is not None:
            verifier = NoteVerifier.from_text(log_key)
        elif name is not None:
            _, verifier = _profile(ctx.obj["home"], name)
        else:
            raise click.UsageError("give --as NAME or --log-key KEY")
        checkpoint, entry = verify_receipt(receipt_file.read_bytes(), verifier)
    except LogError as exc:
        click.echo(f"FAILED: {exc.message}", err=True)
        sys.exit(1)
    except HotlineError as exc:
        _fail(exc)
    envelope = entry.get("envelope", {})
    click.echo(f"OK: entry {entry['index']} ({entry.get('kind')}, id {envelope.get('id')}, sender "
               f"{envelope.get('sender')}, logged {entry.get('time')}) is in log {checkpoint.origin} "
               f"at its signed checkpoint of size {checkpoint.size}")

