"""``hotline store migrate|copy``: the operator's commands for the log's database
(docs/ha.md). The server migrates the schema itself at each start; ``migrate`` does it ahead,
e.g. before several servers are started against a new database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from hotline.config import load_config
from hotline.display import shown
from hotline.errors import ConfigError
from hotline.keys import b64encode
from hotline.store import is_postgres
from hotline.store.copy import Copied


def _url(home: Path, given: str | None, option: str = "--url") -> str:
    """``option``'s URL, else the deployment's ``[store] url`` (or HOTLINE_STORE_URL)."""
    if given is not None:
        if not is_postgres(given):
            raise click.BadParameter("must be a postgresql:// URL", param_hint=option)
        return given
    config = load_config(home / "hotline.toml", home=home)
    if config.store.url is None:
        raise ConfigError(f"this deployment keeps its log in the SQLite file {config.db_path}, "
                          "whose schema the server makes at each start; set [store] url (or "
                          "HOTLINE_STORE_URL), or give the URL", path=("store", "url"))
    return config.store.url


@click.group()
def store() -> None:
    """The log's database: migrate a PostgreSQL schema, copy a log into PostgreSQL.

    \b
    hotline --home server store migrate
    hotline --home server store copy --from sqlite:server/hotline.db --to postgresql://...
    """


@store.command()
@click.option("--url", metavar="URL", help="postgresql://USER@HOST:PORT/DB (default: the "
              "deployment's [store] url, or HOTLINE_STORE_URL).")
@click.pass_context
def migrate(ctx: click.Context, url: str | None) -> None:
    """Create or upgrade the PostgreSQL schema (tables, append-only triggers, the version
    table), in one transaction. Safe to run while servers run, and more than once."""
    from hotline.store.postgres import migrate_url, public_url
    target = _url(Path(ctx.obj["home"]), url)
    before, after = asyncio.run(migrate_url(target))
    click.echo(shown(f"{public_url(target)}: schema version {after}"
                     + (" (already)" if before == after else f" (was {before or 'empty'})")))


def _source(home: Path, text: str | None) -> Path:
    if text is None:
        return load_config(home / "hotline.toml", home=home).db_path
    if not text.startswith("sqlite:"):
        raise click.BadParameter("write sqlite:PATH (the SQLite file of the log to copy)",
                                 param_hint="--from")
    return Path(text.removeprefix("sqlite:"))


@store.command()
@click.option("--from", "source_text", metavar="sqlite:PATH",
              help="The SQLite log to copy (default: the deployment's [store] path). Stop the "
                   "server that writes it first, or copy from a backup.")
@click.option("--to", "url", metavar="URL",
              help="An empty PostgreSQL database (default: the deployment's [store] url).")
@click.pass_context
def copy(ctx: click.Context, source_text: str | None, url: str | None) -> None:
    """Copy a log from its SQLite file into an empty PostgreSQL database, verifying every entry
    on the way: the source is checked as the server checks it at start, each entry is checked
    against the source's tree, and every checkpoint the source published must be a root of the
    copy. Then point the servers at the database ([store] url).

    \b
    Example:
      hotline --home server store copy --from sqlite:server/hotline.db \\
          --to postgresql://hotline@db.example.org/hotline
    """
    from hotline.keyfiles import load_log_key
    from hotline.store import open_store, row_mac_key
    from hotline.store.checkpointfile import checkpoint_path
    from hotline.store.copy import copy_log
    from hotline.tlog import NoteVerifier

    home = Path(ctx.obj["home"])
    config = load_config(home / "hotline.toml", home=home)
    source_path, target_url = _source(home, source_text), _url(home, url, "--to")
    if not source_path.is_file():
        raise click.BadParameter(f"{source_path}: no such file", param_hint="--from")
    key = load_log_key(config.log_key_path)
    verifier = NoteVerifier(name=config.server.origin, public_key=key.public_key.raw)

    def progress(done: int, total: int) -> None:
        click.echo(f"\rcopied {done} of {total} entries", err=True, nl=done == total)

    async def run() -> tuple[str, Copied]:
        source = await open_store(source_path, mac_key=row_mac_key(key))
        try:
            target = await open_store(target_url, mac_key=row_mac_key(key))
            try:
                return target.location, await copy_log(
                    source, target, checkpoint_file=checkpoint_path(source_path),
                    verifier=verifier, progress=progress)
            finally:
                await target.close()
        finally:
            await source.close()

    location, copied = asyncio.run(run())
    click.echo(shown(f"Copied {copied.entries} entries from {source_path} into {location}, each "
                     f"verified; {copied.checkpoints} checkpoints, each a root of the copy; "
                     f"{copied.cosignatures} cosignatures; and {copied.attachments} attachments, "
                     "each checked against its SHA-256."))
    click.echo(f"Root: {b64encode(copied.root)}")
    click.echo("next: set [store] url in hotline.toml (or HOTLINE_STORE_URL) and start the servers.")
