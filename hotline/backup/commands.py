"""``hotline backup FILE`` and ``hotline restore FILE``: the operator's side of
``hotline.backup.snapshot`` and ``hotline.backup.restore``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from hotline.backup.restore import Restored, restore
from hotline.backup.snapshot import Taken, take_backup
from hotline.clock import utc_now
from hotline.config import Config, load_config, parse_authority_key
from hotline.display import shown
from hotline.keyfiles import load_log_key
from hotline.keys import SigningKey


def _deployment(home: Path) -> tuple[Config, SigningKey]:
    """The config and the log key (with the server's passphrase variables)."""
    config = load_config(home / "hotline.toml", home=home)
    return config, load_log_key(config.log_key_path)


def _progress(copied: int, total: int) -> None:
    if sys.stderr.isatty() and total >= 2048:  # only for databases of more than a few MiB
        click.echo(f"\rcopying the database: {copied * 100 // total} % of {total} pages",
                   err=True, nl=copied == total)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.pass_context
def backup(ctx: click.Context, file: Path, force: bool) -> None:
    """Write a verified backup of the log to FILE, while the server serves or not.

    Reads the checkpoint file first, then copies the database with SQLite's online backup (one
    consistent snapshot; the server goes on committing), verifies the copy as the server would
    at start (it holds that checkpoint, signed by the log key; rows beyond it carry the server's
    row MAC; PRAGMA integrity_check), and writes FILE (0600, atomically): a tar of manifest.json,
    hotline.db.checkpoint and hotline.db. It holds no key. Exits 1 if FILE exists (without
    --force) or the copy does not verify.
    """
    config, key = _deployment(Path(ctx.obj["home"]))
    taken = asyncio.run(take_backup(file, database=config.db_path, origin=config.server.origin,
                                    key=key, force=force, clock=utc_now, progress=_progress))
    _print_backup(taken)


def _print_backup(taken: Taken) -> None:
    m = taken.manifest
    database = m.members["hotline.db"]
    click.echo(f"backup written to {taken.path} ({taken.bytes:,} bytes, 0600)")
    click.echo(f"  log {m.origin}: {m.log_size:,} entries (0..{m.log_size - 1}, the last logged "
               f"{m.last_entry}); snapshot taken {m.taken}")
    beyond = (f"; entries {m.checkpoint.size}..{m.log_size - 1} beyond it carry the server's row "
              "MAC" if m.log_size > m.checkpoint.size else "")
    click.echo(f"  checkpoint {m.checkpoint.size:,} signed {m.checkpoint.time}: the copy holds it "
               f"(same root, signed by the log key){beyond}; PRAGMA integrity_check ok")
    click.echo(f"  members: manifest.json, hotline.db.checkpoint, hotline.db ({database.size:,} "
               f"bytes, sha256 {database.sha256})")


@click.command(name="restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--published", "published", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A checkpoint published after the backup, as a witness or auditor kept it (a "
                   "signed note, a saved checkpoint file, or an auditor's state file); repeat "
                   "for several.")
@click.option("--force", is_flag=True,
              help="Restore even if that loses entries published after the backup (the lost "
                   "range is printed and recorded). Never restores an inconsistent backup.")
@click.pass_context
def restore_command(ctx: click.Context, archive: Path, published: tuple[Path, ...],
                    force: bool) -> None:
    """Restore the backup ARCHIVE as the deployment's database (the server must be stopped).

    Checks the archive (names, kinds, sizes, the manifest's SHA-256 of each member), that it is
    of this log (its checkpoint signed by the log key), verifies its log as the server would at
    start and audits every entry, then compares it with the checkpoints published after it: the
    deployment's current checkpoint file and every --published one. If any is larger than the
    backup's log, restoring would roll the log back: refused (restore.rolls_back) naming the
    lost entries, unless --force. One within it with another root is refused, even with --force
    (restore.inconsistent). The replaced database is renamed aside, never deleted.
    """
    home = Path(ctx.obj["home"])
    config, key = _deployment(home)
    authorities = {party: parse_authority_key(text)
                   for party, text in config.roster.authorities.items()}
    done = asyncio.run(restore(archive, database=config.db_path, origin=config.server.origin,
                               key=key, authorities=authorities, published_files=list(published),
                               force=force, clock=utc_now))
    _print_restore(done, archive, config.db_path, home)


def _print_restore(done: Restored, archive: Path, database: Path, home: Path) -> None:
    m = done.manifest
    click.echo(f"archive {archive}: backup of log {m.origin} taken {m.taken}: {m.log_size:,} "
               f"entries, checkpoint {m.checkpoint.size:,} signed {m.checkpoint.time}; every "
               "member matches the manifest's SHA-256")
    click.echo(f"verified: the database holds its checkpoint (signed by this log's key) and only "
               f"rows the server wrote; {done.audited:,} entries audited against "
               f"{done.checkpoints} signed checkpoints")
    for item in done.consistent:
        click.echo(f"published: checkpoint {item.size:,} {item.signed()} ({shown(item.source)}): "
                   "the backup holds it, same root")
    for old, new in done.kept:
        click.echo(f"kept aside: {old} -> {new}")
    click.echo(f"restored: {database} ({done.audited:,} entries)")
    if done.loss is not None:
        loss = done.loss
        click.echo(f"LOST: {shown(loss.describe())}")
        click.echo(f"  recorded in {database.name}.restores; the server logs it at every start "
                   "(store.restored_with_loss)")
        click.echo(f"WARNING: checkpoint {loss.covered_by.size} was published under this log's key. "
                   "Every witness, auditor and member that saw it will flag this log as rolled "
                   "back (a witness refuses to cosign a smaller checkpoint; `hotline audit verify` "
                   "fails), and once it grows again the same key will have signed two histories. "
                   "Recommended: start a new log with a new key and origin (`hotline init` in a "
                   "new home) and keep this one, with the files kept aside, for audit.")
    h = f" --home {home}" if str(home) != "hotline-data" else ""
    click.echo(f"Start the server: hotline{h} serve")
