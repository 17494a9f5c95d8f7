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
from hotline.store import is_postgres


def _url(home: Path, given: str | None) -> str:
    """``--url``, else the deployment's ``[store] url`` (or HOTLINE_STORE_URL)."""
    if given is not None:
        if not is_postgres(given):
            raise click.BadParameter("must be a postgresql:// URL", param_hint="--url")
        return given
    config = load_config(home / "hotline.toml", home=home)
    if config.store.url is None:
        raise ConfigError(f"this deployment keeps its log in the SQLite file {config.db_path}, "
                          "whose schema the server makes at each start; set [store] url (or "
                          "HOTLINE_STORE_URL), or give --url", path=("store", "url"))
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
