"""``hotline server new|pin|descriptor`` (the operator's home) and ``hotline join`` (a member's
profile from the operator's descriptor); docs/deployment.md. The logic is in
``hotline.operator_home`` and ``hotline.join``: here options, prompts and output only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hotline.canonical import dumps
from hotline.ceremony import load_private
from hotline.clock import utc_now
from hotline.descriptor import (
    Descriptor,
    ca_fingerprint,
    fingerprints,
    log_fingerprint,
    read_descriptor,
)
from hotline.display import shown
from hotline.join import LOG, JoinRefused, check_expected, join_profile
from hotline.keys import SigningKey, safety_number
from hotline.operator_home import (
    LOG_KEY,
    MLDSA_LOG_KEY,
    MLDSA_LOG_VKEY,
    PinRefused,
    home_descriptor,
    new_server_home,
    pin_authority,
    read_pin_file,
)
from hotline.passphrase import env_passphrase, existing_passphrase, new_passphrase
from hotline.roster import Role
from hotline.tlsca import DEFAULT_NAMES

LOG_VARIABLES = ("HOTLINE_LOG_KEY_PASSPHRASE", "HOTLINE_PASSPHRASE")
MAX_DESCRIPTOR_READ = 64 * 1024 + 1


def _open_log_key(home: Path) -> SigningKey:
    path = home / LOG_KEY
    return load_private(path, existing_passphrase(path, variables=LOG_VARIABLES))


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return click.confirm(question, default=False)


def _hint(home: Path) -> str:
    return f" --home {home}" if str(home) != "hotline-data" else ""


@click.group()
def server() -> None:
    """The operator's server home: the log key, TLS material, config and pins; never a party's
    private key. (`hotline serve` runs the server.)

    \b
    Example:
      hotline --home op server new --origin hotline.example --tls --tls-name hotline.example
      hotline --home op server pin --party north --authority authority-north.pub.json
      hotline --home op server descriptor --out descriptor.json
      hotline --home op serve
    """


@server.command("new")
@click.option("--origin", required=True,
              help="Name of the deployment (also the log key's name); clients refuse another.")
@click.option("--listen", default="127.0.0.1:8470", show_default=True, metavar="HOST:PORT",
              help="Listen address; off loopback only with --tls.")
@click.option("--tls", "use_tls", is_flag=True,
              help="Serve wss:// only: make a deployment CA and a server certificate (HOME/tls).")
@click.option("--tls-name", "tls_names", multiple=True, metavar="NAME",
              help="With --tls: a DNS name or IP address clients reach the server by; repeat "
                   "(the first is the one the descriptor names). Default: 127.0.0.1, "
                   "localhost, ::1.")
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="Public ws:// or wss:// URL members connect to (behind a proxy, say); "
                   "repeat for failover. Default: from --listen (or the first --tls-name).")
@click.option("--no-passphrase", is_flag=True,
              help="Leave the log key unencrypted when no passphrase is set or asked.")
@click.option("--post-quantum", is_flag=True,
              help="Also make an ML-DSA-65 log key (keys/log-mldsa.pem, same passphrase) that "
                   "signs every checkpoint in a second line, which Ed25519-only verifiers skip; "
                   "its verifier key is keys/log-mldsa.vkey.")
@click.pass_context
def new(ctx: click.Context, origin: str, listen: str, use_tls: bool, tls_names: tuple[str, ...],
        urls: tuple[str, ...], no_passphrase: bool, post_quantum: bool) -> None:
    """Create an operator's server home: the log key (keys/log.pem), with --tls the deployment
    CA and server certificate, hotline.toml pinning no authority yet, and protocols/.

    The log key's passphrase: HOTLINE_LOG_KEY_PASSPHRASE or HOTLINE_PASSPHRASE, else asked.

    \b
    Example:
      hotline --home op server new --origin hotline.example --listen 0.0.0.0:8470 \\
          --tls --tls-name hotline.example
    """
    home: Path = ctx.obj["home"]
    if tls_names and not use_tls:
        raise click.UsageError("--tls-name needs --tls")
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise click.BadParameter("HOST:PORT, e.g. 127.0.0.1:8470", param_hint="--listen")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    made = new_server_home(home, origin=origin, host=host, port=int(port_text),
                           tls_names=list(tls_names or DEFAULT_NAMES) if use_tls else None,
                           urls=list(urls), now=utc_now(),
                           log_passphrase=new_passphrase("the log key", no_passphrase=no_passphrase,
                                                         variables=LOG_VARIABLES),
                           tls_passphrase=env_passphrase("HOTLINE_PASSPHRASE"),
                           post_quantum=post_quantum)
    log = log_fingerprint(made.log_key)
    click.echo(f"Server home created in {home}/ (origin {origin}).")
    click.echo(shown(f"Log key: {home / LOG_KEY}, fingerprint {log}"))
    if post_quantum:
        click.echo(shown(f"ML-DSA-65 log key: {home / MLDSA_LOG_KEY}; its verifier key for "
                         f"auditors: {home / MLDSA_LOG_VKEY}"))
    if made.tls_ca is not None:
        click.echo(shown(f"TLS: CA {home}/tls/ca.pem, SHA-256 {ca_fingerprint(made.tls_ca)}; "
                         f"server certificate for {', '.join(made.tls_names)}"))
    click.echo(shown(f"Members will connect to: {', '.join(made.servers)}"))
    h = _hint(home)
    click.echo("\nNext: pin each party's authority (its public file, its safety number read out "
               "by the party):")
    click.echo(f"  hotline{h} server pin --party PARTY --authority authority-PARTY.pub.json")
    click.echo(f"  hotline{h} server descriptor     # then hand descriptor.json to the members")
    click.echo(f"  hotline{h} serve")


@server.command()
@click.option("--party", required=True, help="The party whose authority key this is.")
@click.option("--authority", "authority_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The authority's PUBLIC key file (`hotline authority new` writes it).")
@click.option("--expect", metavar="SAFETY",
              help="The safety number the party read out to you: pin only if it matches.")
@click.option("--yes", is_flag=True, help="Pin without asking (you compared the number already).")
@click.option("--replace", is_flag=True, help="Pin this key in place of the party's current one.")
@click.pass_context
def pin(ctx: click.Context, party: str, authority_file: Path, expect: str | None, yes: bool,
        replace: bool) -> None:
    """Pin a party's authority public key in hotline.toml, after showing its safety number to
    compare with the one the party reads out (over the phone, in person).

    A pin grants nothing by itself: only documents the parties' authorities sign enroll
    members or open channels. The server takes a new pin when restarted.

    \b
    Example:
      hotline --home op server pin --party north --authority authority-north.pub.json \\
          --expect "12345 67890 ..."
    """
    home: Path = ctx.obj["home"]
    if expect is not None and yes:
        raise click.UsageError("give --expect or --yes, not both")
    key = read_pin_file(authority_file, party=party)
    number = safety_number(key.key_id)
    click.echo(f"Authority of {party}: safety number {number}")
    if expect is None and not yes and not _confirm(
            "Is this the number the party read out to you?"):
        raise PinRefused("not confirmed: nothing pinned (compare the safety number with the "
                         "party's, then answer yes, or give --expect NUMBER)")
    changed = pin_authority(home, party=party, key=key, expect=expect, replace=replace)
    if not changed:
        click.echo(f"{party} is already pinned to this key: nothing changed.")
        return
    click.echo(f"Pinned {party} in {home / 'hotline.toml'}. Restart the server to take it; the "
               "pin grants nothing without the parties' signed documents.")


@server.command()
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="Server URL members connect to (repeat for failover). Default: those of "
                   "`server new --url`, else the listen address.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default HOME/descriptor.json).")
@click.pass_context
def descriptor(ctx: click.Context, urls: tuple[str, ...], out: Path | None) -> None:
    """Write the deployment descriptor members join with (`hotline join`): origin, server URLs,
    the log key, the TLS CA and each pinned authority, signed by the log key. It is public:
    send it to every member, who compares its fingerprints with you and the parties.

    \b
    Example:
      hotline --home op server descriptor --url wss://hotline.example:8470/v1/ws
    """
    home: Path = ctx.obj["home"]
    signed = home_descriptor(home, log_key=_open_log_key(home), urls=list(urls), now=utc_now())
    target = out or home / "descriptor.json"
    target.write_text(dumps(signed) + "\n", encoding="utf-8")
    click.echo(f"Descriptor written to {target}.")
    _show(read_descriptor(target.read_bytes()))


def _show(record: Descriptor) -> None:
    prints = fingerprints(record)
    click.echo(shown(f"Deployment {record.origin}, servers: {', '.join(record.servers)}"))
    click.echo("Fingerprints to compare out of band:")
    for party, number in prints.authorities.items():
        click.echo(shown(f"  authority of {party:<12} {number}"))
    click.echo(f"  {'log key':<25} {prints.log}")
    if record.mldsa_log_key is not None:  # bound to the log key by its signature on the descriptor
        click.echo("  the log also signs checkpoints with an ML-DSA-65 key, signed into this "
                   "descriptor by the log key: your profile will require its signature too")
    if prints.tls_ca is not None:
        click.echo(f"  {'TLS CA (SHA-256)':<25} {prints.tls_ca}")


def _expectations(values: tuple[str, ...]) -> dict[str, str]:
    expect: dict[str, str] = {}
    for value in values:
        who, sep, number = value.partition("=")
        if not sep or not who or not number:
            raise click.BadParameter(f"{value!r}: give PARTY=SAFETY or log=SAFETY",
                                     param_hint="--expect")
        expect[who.strip()] = number
    return expect


@click.command()
@click.argument("descriptor_file", metavar="DESCRIPTOR",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "name", required=True, help="Your member name (the profile's name).")
@click.option("--party", required=True, help="The party you belong to.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default="liaison",
              show_default=True, help="Your role, as your authority enrolled you.")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Your private key (default HOME/keys/NAME.pem; one elsewhere is copied there).")
@click.option("--expect", "expects", multiple=True, metavar="WHO=SAFETY",
              help="A fingerprint given to you out of band: PARTY=SAFETY for every party, "
                   "log=SAFETY optionally. Any mismatch refuses, and nothing is written.")
@click.option("--yes", is_flag=True, help="Join without asking (you compared the fingerprints).")
@click.option("--force", is_flag=True, help="Replace an existing profile of that name.")
@click.pass_context
def join(ctx: click.Context, descriptor_file: Path, name: str, party: str, role: str,
         key_file: Path | None, expects: tuple[str, ...], yes: bool, force: bool) -> None:
    """Join a deployment: check the operator's signed descriptor, show every fingerprint (each
    party's authority, the log key, the TLS CA) to compare out of band, then write your profile
    HOME/profiles/NAME.toml. Your key's passphrase is read from HOTLINE_PASSPHRASE.

    \b
    Example:
      hotline --home alice join descriptor.json --as alice --party north \\
          --expect north="1234 ..." --expect south="..." --expect mediator="..."
    """
    home: Path = ctx.obj["home"]
    try:
        data = descriptor_file.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"{descriptor_file}: {exc.strerror}") from None
    record = read_descriptor(data)
    _show(record)
    expect = _expectations(expects)
    if expect:
        check_expected(record, expect)
        click.echo("Every fingerprint matches the expected ones.")
    elif not yes and not _confirm("Do these match what the operator and each party told you?"):
        raise JoinRefused("not confirmed: nothing written (compare the fingerprints, then "
                          f"answer yes, or give --expect PARTY=SAFETY ... --expect {LOG}=...)")
    joined = join_profile(home, descriptor=record, name=name, party=party, role=Role(role),
                          key_file=key_file,
                              passphrase=existing_passphrase(key_file or home / "keys" / f"{name}.pem"),
                          expect=expect or None, force=force)
    click.echo(f"Profile written to {joined.profile} (key {joined.key}, safety number "
               f"{joined.safety_number}).")
    click.echo(f"next: `hotline{_hint(home)} doctor --as {name}`")
