"""``hotline keys new|show``: a member's own signing key, made on the member's own machine
(docs/deployment.md). Only the public file leaves it; the safety number is read out to the
party's authority, who compares it with the file it received. No command prints a private key."""

from __future__ import annotations

from pathlib import Path

import click

from hotline.ceremony import (
    CeremonyError,
    check_name,
    key_paths,
    new_member_key,
    write_public_new,
)
from hotline.errorcodes import Code
from hotline.hybrid import ALG_HYBRID
from hotline.keys import PublicKey, Verifier
from hotline.passphrase import new_passphrase, open_member_key
from hotline.publicfiles import (
    AuthorityKeyFile,
    MemberKeyFile,
    fingerprint,
    read_authority_key,
    read_member_key,
)


def public_key_lines(public_path: Path, key: Verifier, *, to: str) -> list[str]:
    """What a person needs to hand a key over: the file, its KEY_ID and the safety number."""
    text = (key.to_text() if isinstance(key, PublicKey)
            else f"{ALG_HYBRID} (Ed25519 and ML-DSA-65, both in the file)")
    return [f"Public key file: {public_path}",
            f"  hand it to {to} (email, USB, courier: it holds no secret)",
            f"Public key:      {text}",
            f"KEY_ID:          {key.key_id}",
            f"Safety number:   {fingerprint(key)}",
            f"  read it out to {to} by phone or in person; they compare it with the file they "
            "received before they use it."]


@click.group()
def keys() -> None:
    """Your own signing key: make it here, hand over only its public file.

    \b
    hotline --home ~/hotline keys new --as alice
    hotline --home ~/hotline keys show --as alice
    """


@keys.command("new")
@click.option("--as", "name", required=True, metavar="NAME",
              help="Your member name, as your party's authority will enroll you.")
@click.option("--no-passphrase", is_flag=True,
              help="Leave the private key unencrypted (only on a machine no one else uses). "
                   "Otherwise HOTLINE_PASSPHRASE, or you are asked.")
@click.option("--hybrid", is_flag=True,
              help="A hybrid post-quantum key: Ed25519 and ML-DSA-65 sign together and both are "
                   "checked (signatures of about 4.6 kB). Not for an agent that witnesses the "
                   "log: cosignatures are Ed25519.")
@click.pass_context
def new_command(ctx: click.Context, name: str, no_passphrase: bool, hybrid: bool) -> None:
    """Make your signing key: HOME/keys/NAME.pem (yours alone, mode 0600, never leaves this
    machine) and HOME/keys/NAME.pub.json (for your party's authority). An existing key is never
    replaced.

    \b
    Example:
      hotline --home ~/hotline keys new --as alice
    """
    home = Path(ctx.obj["home"])
    check_name(name, "member name")
    passphrase = new_passphrase(f"{name}'s new key", no_passphrase=no_passphrase)
    key, private, public = new_member_key(home, name, passphrase, hybrid=hybrid)
    click.echo(f"Made {name}'s signing key: {private} (mode 0600"
               f"{', encrypted' if passphrase else ', NOT encrypted'}; it never leaves this "
               "machine).")
    for line in public_key_lines(public, key.public_key, to="your party's authority"):
        click.echo(line)
    click.echo("next: hand the public key file to your party's authority, who enrolls you with "
               "`hotline authority enroll`.")


@keys.command("show")
@click.option("--as", "name", required=True, metavar="NAME", help="Whose key (HOME/keys/NAME).")
@click.pass_context
def show_command(ctx: click.Context, name: str) -> None:
    """Show the public key, KEY_ID and safety number of HOME/keys/NAME (from NAME.pub.json, or
    from NAME.pem when only that exists, as `hotline init` leaves it: the public file is then
    written beside it).

    \b
    Example:
      hotline --home ~/hotline keys show --as alice
    """
    home = Path(ctx.obj["home"])
    check_name(name, "name")
    paths = key_paths(home, name)
    authority = name.startswith("authority-")
    if paths.public.exists():
        record = read_authority_key(paths.public) if authority else read_member_key(paths.public)
        if isinstance(record, MemberKeyFile) and record.name != name:
            raise CeremonyError(f"{paths.public} is {record.name}'s key, not {name}'s",
                                code=Code.CEREMONY_NAME_MISMATCH)
        key = record.public_key
    elif paths.private.exists():
        key = open_member_key(paths.private).public_key
        record_new = (AuthorityKeyFile(party=name.removeprefix("authority-"), key=key.to_json())
                      if authority else MemberKeyFile(name=name, key=key.to_json()))
        write_public_new(paths.public, record_new)
        click.echo(f"Wrote the public file {paths.public} from {paths.private}.")
    else:
        raise CeremonyError(f"no key {paths.private} here: make one with `hotline keys new "
                            f"--as {name}`", code=Code.CEREMONY_NO_KEY)
    who = "the other parties and the operator" if authority else "your party's authority"
    for line in public_key_lines(paths.public, key, to=who):
        click.echo(line)
