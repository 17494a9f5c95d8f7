"""``hotline console --as NAME``: the liaison console (docs/ARCHITECTURE.md "Command line").

Registered in ``hotline/cli.py`` with ``main.add_command``; reads HOME from ``ctx.obj["home"]``
like every member command. ``hotline client`` is the same command under its old name, hidden from
the help, so that scripts written before the rename keep working (the console is not
``hotline.client``, the library every member command uses).
"""

from __future__ import annotations

import copy
from pathlib import Path

import click

from hotline.cli_options import member_options
from hotline.client.outbox import Outbox
from hotline.client.profile import Profile
from hotline.client.sealed_view import SealedView
from hotline.norms.files import load_templates


@click.command("console")
@member_options()
@click.option("--outbox", "outbox_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The outbox file: every composed message is kept here until the server "
                   "accepted it (default HOME/state/NAME.outbox.db).")
@click.option("--lang", help="Language of pre-agreed messages (default: the profile's, else en).")
@click.pass_context
def console(ctx: click.Context, name: str, servers: tuple[str, ...], outbox_path: Path | None,
           lang: str | None) -> None:
    """The liaison console: channels with their health, messages with their verification and
    acknowledgements, forms for every agreed template, an outbox that survives a lost line.
    Press ? in it for the keys."""
    from hotline.console.app import ConsoleApp  # Textual loads only for this command

    home = Path(ctx.obj["home"])
    profile = Profile.load(home, name)
    profile.endpoints(servers)  # a plain URL to a profile that pins a CA: refused here
    key = profile.signing_key()
    templates = load_templates(profile.protocols)
    outbox = Outbox.open(outbox_path or home / "state" / f"{name}.outbox.db")
    try:
        ConsoleApp(profile=profile, key=key, outbox=outbox, templates=templates, servers=servers,
                   lang=lang, sealed_view=SealedView.of_member(home, profile, templates),
                   received=home / "received" / name).run()
    finally:
        outbox.close()


# The old name: the same callback and options, not listed in ``hotline --help``.
client_alias = copy.copy(console)
client_alias.name, client_alias.hidden = "client", True
