"""``hotline authority new|enroll|revoke|rotate``: a party's authority, on its own (ideally
offline) machine, makes its key and signs the documents that say who speaks for the party
(docs/deployment.md). Each writes a signed file to hand over or submit; none needs the server."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import click

from hotline.ceremony import (
    authority_name,
    check_safety,
    choose_party,
    enroll,
    key_paths,
    kid8,
    new_authority,
    parse_validity,
    revoke,
    rotate,
    write_public_new,
)
from hotline.clock import utc_now
from hotline.hybrid import MemberSigningKey
from hotline.keys_cli import public_key_lines
from hotline.passphrase import new_passphrase, open_key
from hotline.publicfiles import fingerprint, read_member_key
from hotline.roster import Role, SignedDocument, describe
from hotline.times import format_time, parse_time

SUBMIT = "submit it with `hotline roster submit FILE`"


def _home(ctx: click.Context) -> Path:
    return Path(ctx.obj["home"])


def _time(text: str | None, option: str, default: datetime) -> datetime:
    if text is None:
        return default
    return parse_time(text, field=option)


def _authority(home: Path, party: str | None) -> tuple[str, MemberSigningKey]:
    chosen = choose_party(home, party)
    return chosen, open_key(key_paths(home, authority_name(chosen)).private)[0]


def _written(path: Path, signed: SignedDocument, nxt: str) -> None:
    click.echo(f"Signed {describe(signed)}: {path}")
    click.echo(f"next: {nxt}")


party_option = click.option("--party", metavar="P",
                            help="Whose authority (default: the only one this home holds).")
out_option = click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                          help="Where to write the signed file (never replaced).")


@click.group()
def authority() -> None:
    """A party's authority: its key, and the enrollments, revocations and handovers it signs.

    Meant for a machine that stays offline: only public files and signed documents leave it.

    \b
    hotline --home A authority new --party north [--hybrid]
    hotline --home A authority enroll --member alice --role liaison --key alice.pub.json
    hotline --home A authority revoke --member alice --key KEY_ID --reason "laptop lost"
    hotline --home A authority rotate
    """


@authority.command("new")
@click.option("--party", required=True, metavar="P", help="The party this authority speaks for.")
@click.option("--no-passphrase", is_flag=True,
              help="Leave the private key unencrypted (not advised for an authority).")
@click.option("--hybrid", is_flag=True,
              help="A hybrid post-quantum key: Ed25519 and ML-DSA-65 sign every enrollment, "
                   "revocation, handover and agreement together, and both are checked.")
@click.pass_context
def new_command(ctx: click.Context, party: str, no_passphrase: bool, hybrid: bool) -> None:
    """Make party P's authority key: HOME/keys/authority-P.pem (mode 0600, never leaves this
    machine) and HOME/keys/authority-P.pub.json, which the other parties and the operator pin
    after comparing its safety number. An existing key is never replaced.

    \b
    Example:
      hotline --home ~/north-authority authority new --party north --hybrid
    """
    passphrase = new_passphrase(f"{party}'s authority key", no_passphrase=no_passphrase)
    key, private, public = new_authority(_home(ctx), party, passphrase, hybrid=hybrid)
    click.echo(f"Made {party}'s authority key: {private} (mode 0600"
               f"{', encrypted' if passphrase else ', NOT encrypted'}; keep it on this machine).")
    for line in public_key_lines(public, key.public_key, to="the other parties and the operator"):
        click.echo(line)
    click.echo("next: hand the public key file to the other parties and the operator, who pin it "
               "(`hotline server pin`, `hotline agreement draft --authority`).")


@authority.command("enroll")
@party_option
@click.option("--member", required=True, metavar="NAME", help="The member's name in the party.")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]),
              help="liaison (messages), agent (heartbeats, witness) or auditor (reads).")
@click.option("--key", "key_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The member's public key file (NAME.pub.json from `hotline keys new`).")
@click.option("--expect", metavar="SAFETY",
              help="The safety number the member read out: refused unless it matches.")
@click.option("--other-name", is_flag=True,
              help="Enroll even though the key file gives another name than --member.")
@click.option("--not-before", metavar="TIME", help="RFC 3339 UTC (default: 5 minutes ago).")
@click.option("--valid", metavar="DURATION",
              help="How long: 1y, 90d, 2w, 12h, 30m (default 1y).")
@click.option("--not-after", metavar="TIME", help="RFC 3339 UTC end, instead of --valid.")
@out_option
@click.pass_context
def enroll_command(ctx: click.Context, party: str | None, member: str, role: str, key_file: Path,
                   expect: str | None, other_name: bool, not_before: str | None,
                   valid: str | None, not_after: str | None, out: Path | None) -> None:
    """Enroll a member's key: a signed enrollment file for the member to keep and anyone to
    submit. Compare the safety number printed here with the one the member reads out.

    \b
    Example:
      hotline --home ~/north-authority authority enroll --member alice --role liaison \\
          --key alice.pub.json --expect '01234 56789 ...' --valid 1y
    """
    if valid is not None and not_after is not None:
        raise click.UsageError("give --valid or --not-after, not both")
    home, now = _home(ctx), utc_now()
    record = read_member_key(key_file)
    key = record.public_key
    if expect is not None:
        check_safety(key, expect, f"the key in {key_file}")
    start = _time(not_before, "--not-before", now - timedelta(minutes=5))
    end = (_time(not_after, "--not-after", now) if not_after is not None
           else start + parse_validity(valid or "1y"))
    if end <= now:
        raise click.BadParameter(f"the enrollment would have ended already ({format_time(end)})",
                                 param_hint="--not-after")
    chosen, authority_key = _authority(home, party)
    signed = enroll(authority_key, chosen, member, role, key, start, end,
                    key_name=record.name, other_name=other_name)
    path = out or home / "roster" / f"enroll-{member}-{kid8(key)}.json"
    write_public_new(path, signed)
    click.echo(f"Member key {key.key_id}, safety number {fingerprint(key)}"
               + (" (matches --expect)" if expect else
                  ": compare it with the one the member read out before you hand this over"))
    click.echo(f"Valid from {format_time(start)} until {format_time(end)}, as {role} of {chosen}.")
    _written(path, signed, f"hand this file to the member; {SUBMIT}.")


@authority.command("revoke")
@party_option
@click.option("--member", required=True, metavar="NAME", help="The member whose key is revoked.")
@click.option("--key", "key_id", required=True, metavar="KEY_ID", help="The key to revoke.")
@click.option("--at", metavar="TIME",
              help="RFC 3339 UTC: from when it is refused (default now); what it signed "
                   "before stays valid. Put it no later than when the key may have been lost.")
@click.option("--reason", help="In words, for the audit (at most 500 characters).")
@out_option
@click.pass_context
def revoke_command(ctx: click.Context, party: str | None, member: str, key_id: str,
                   at: str | None, reason: str | None, out: Path | None) -> None:
    """Revoke a member's key from a moment on: a signed revocation file to submit at once.

    \b
    Example:
      hotline --home ~/north-authority authority revoke --member bob --key KEY_ID \\
          --at 2026-12-06T08:00:00Z --reason "laptop lost"
    """
    home = _home(ctx)
    moment = _time(at, "--at", utc_now())
    chosen, authority_key = _authority(home, party)
    signed = revoke(authority_key, chosen, member, key_id, moment, reason)
    path = out or home / "roster" / f"revoke-{member}-{kid8(key_id)}.json"
    write_public_new(path, signed)
    click.echo(f"Key {key_id} of {member} ({chosen}) is refused from {format_time(moment)} on, "
               "once this is logged.")
    _written(path, signed, f"{SUBMIT} (now: until it is logged, the key still works).")


@authority.command("rotate")
@party_option
@out_option
@click.option("--no-passphrase", is_flag=True,
              help="The old key is unencrypted and so is the new one.")
@click.option("--hybrid", is_flag=True,
              help="Hand over to a hybrid post-quantum key (Ed25519 + ML-DSA-65); a hybrid "
                   "authority's successor is hybrid anyway.")
@click.pass_context
def rotate_command(ctx: click.Context, party: str | None, out: Path | None,
                   no_passphrase: bool, hybrid: bool) -> None:
    """Hand party P's authority over to a new key: a handover signed by the old key and the
    new, which the roster follows; what the old key signed before stays valid, anything it signs
    after is refused. The new key replaces HOME/keys/authority-P.pem (same passphrase); the old
    one is kept as authority-P.retired-KID.pem until you destroy it. With --hybrid, an Ed25519
    authority moves to post-quantum signatures.

    \b
    Example:
      hotline --home ~/north-authority authority rotate --party north --hybrid
    """
    home = _home(ctx)
    chosen = choose_party(home, party)
    private = key_paths(home, authority_name(chosen)).private
    _, passphrase = open_key(private)
    if passphrase is None and not no_passphrase:
        passphrase = new_passphrase(f"{chosen}'s new authority key", no_passphrase=False)
    done = rotate(home, chosen, passphrase, utc_now(), out=out, hybrid=hybrid or None)
    click.echo(f"{chosen}'s authority is now key {done.key.key_id}: {private}.")
    for line in public_key_lines(key_paths(home, authority_name(chosen)).public,
                                 done.key.public_key, to="the other parties and the operator"):
        click.echo(line)
    click.echo(f"The old private key is kept at {done.retired_path}: destroy it (shred, or wipe "
               "the medium) once the handover is logged; until then it is as dangerous as ever.")
    _written(done.handover_path, done.handover,
             f"{SUBMIT}; then re-sign the channel agreements with the new key and hand the new "
             "public key file to the other parties and the operator.")
