"""``hotline keys new|show``: a member's own signing key, made on the member's own machine
(docs/deployment.md). Only the public file leaves it; the safety number is read out to the
party's authority, who compares it with the file it received. No command prints a private key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from hotline.ceremony import (
    CeremonyError,
    check_name,
    key_paths,
    load_member_private,
    new_member_key,
    write_public_new,
)
from hotline.cli_options import member_options
from hotline.clock import utc_now
from hotline.epochkeys import EpochKey
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
from hotline.times import format_time


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


@keys.command("epoch")
@click.option("--as", "name", required=True, metavar="NAME",
              help="Your member name (your profile, HOME/profiles/NAME.toml, names your party).")
@click.option("--epoch", type=click.IntRange(min=0),
              help="The epoch's number (default: the current one).")
@click.option("--next", "next_epoch", is_flag=True,
              help="The epoch after the current one: publish it ahead, so that senders have it "
                   "when it starts.")
@click.option("--hours", type=click.IntRange(1, 744), default=24, show_default=True,
              help="Epoch length, as the channel's agreement sets it.")
@click.pass_context
def epoch_command(ctx: click.Context, name: str, epoch: int | None, next_epoch: bool,
                  hours: int) -> None:
    """Make your encryption key for one epoch: its private half in HOME/keys/epoch/ (encrypted
    with your key's passphrase, mode 0600) and its public document, signed by your key, in
    HOME/roster/ for `hotline roster submit`. Senders seal fields for you to the keys you
    published; `hotline keys retire` deletes the private halves of past epochs.

    \b
    Example:
      hotline --home ~/hotline keys epoch --as bob --next
      hotline --home ~/hotline roster submit ~/hotline/roster/epoch-bob-*.json
    """
    from hotline.client.profile import Profile
    from hotline.epochfiles import make_epoch_key
    from hotline.epochkeys import epoch_of
    from hotline.passphrase import existing_passphrase
    home = Path(ctx.obj["home"])
    if epoch is not None and next_epoch:
        raise click.UsageError("give --epoch or --next, not both")
    profile = Profile.load(home, name)
    length = timedelta(hours=hours)
    chosen = epoch if epoch is not None else epoch_of(utc_now(), length) + (1 if next_epoch else 0)
    passphrase = existing_passphrase(profile.key_file)
    signer = load_member_private(profile.key_file, passphrase)
    made = make_epoch_key(home, party=profile.party, member=name, signer=signer, epoch=chosen,
                          length=length, passphrase=passphrase)
    doc = made.signed.document
    assert isinstance(doc, EpochKey)
    click.echo(f"Made {name}'s key for epoch {chosen} ({format_time(doc.not_before)} to "
               f"{format_time(doc.not_after)}): {made.private} (mode 0600"
               f"{', encrypted' if passphrase else ', NOT encrypted'}; it never leaves this machine).")
    click.echo(f"Its public document, signed by your key: {made.document}")
    click.echo(f"next: hotline roster submit {made.document}")


@keys.command("renew")
@member_options()
@click.pass_context
def renew_command(ctx: click.Context, name: str, servers: tuple[str, ...]) -> None:
    """Publish your encryption keys for the current and the next epoch of each epoch length your
    channels' agreements set (made here, signed by your key, logged by the server), then delete
    your past epochs' keys once the longest ack deadline of your channels has passed. The
    console does this by itself; a liaison who only uses the command line runs it daily (cron).
    Exits 1 if something could not be done (said on stderr).

    
    Example:
      hotline --home ~/hotline keys renew --as bob
    """
    from hotline.cli import run_coroutine
    from hotline.client.epochrenewal import Renewed, keep_after, renew_epoch_keys
    from hotline.client.failover import Failover
    from hotline.client.profile import Profile
    from hotline.passphrase import existing_passphrase
    home = Path(ctx.obj["home"])
    profile = Profile.load(home, name)
    passphrase = existing_passphrase(profile.key_file)
    signer = load_member_private(profile.key_file, passphrase)

    async def go() -> Renewed:
        client = await Failover(profile, servers=servers, key=signer).connect()
        try:
            return await renew_epoch_keys(client, home, signer=signer, passphrase=passphrase,
                                          now=utc_now(),
                                          keep=keep_after(client.roster, client.templates,
                                                          client.party))
        finally:
            await client.close()

    renewed = run_coroutine(go())
    lines = renewed.lines(name)
    for line in lines:
        click.echo(line, err=line.startswith("NOT DONE"))
    if not lines:
        click.echo(f"{name}'s keys are current: nothing to publish or retire.")
    if renewed.problems:
        raise SystemExit(1)


@keys.command("retire")
@click.option("--as", "name", required=True, metavar="NAME", help="Your member name.")
@click.option("--keep-hours", type=click.IntRange(min=0), default=24, show_default=True,
              help="Keep an epoch's key this long after the epoch ends (the longest ack deadline "
                   "of your channels), for messages sealed late in it.")
@click.pass_context
def retire_command(ctx: click.Context, name: str, keep_hours: int) -> None:
    """Delete the private halves of your past epochs' keys (HOME/keys/epoch/NAME-*.pem, each
    named with its epoch's length), so a stolen laptop exposes only the current epochs. The
    console does it by itself; run it daily (cron) if you only use the command line."""
    from hotline.epochfiles import retire_epoch_keys
    home = Path(ctx.obj["home"])
    check_name(name, "member name")
    retired = retire_epoch_keys(home, member=name, now=utc_now(),
                                keep_after=timedelta(hours=keep_hours))
    click.echo(f"Retired {name}'s keys of epochs {', '.join(map(str, retired))}." if retired
               else f"No key of {name}'s is past its epoch and grace.")
