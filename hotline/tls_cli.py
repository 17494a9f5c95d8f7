"""``hotline tls``: the deployment CA's commands (``hotline init --tls`` makes the CA)."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from hotline import tlsfiles
from hotline.clock import utc_now
from hotline.display import shown
from hotline.passphrase import env_passphrase
from hotline.tlsca import SERVER_DAYS, TlsError, names_of, parse_names


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate, as ``AB:CD:...``: what a member compares, out of band, with
    the one the operator reads out before trusting a ``ca.pem`` handed over."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _current_names(home: Path) -> list[str]:
    try:
        return names_of(x509.load_pem_x509_certificate((home / tlsfiles.SERVER_CERT).read_bytes()))
    except (OSError, ValueError) as exc:
        raise TlsError(f"no readable server certificate in {home / tlsfiles.SERVER_CERT} to take "
                       "the names from: give them with --name") from exc


@click.group()
def tls() -> None:
    """The deployment CA (made by `hotline init --tls`) and the server certificates it issues.

    Files, in HOME/tls: ca.pem (the CA certificate every profile pins as tls_ca; hand it to
    each member), ca.key (the CA's key, encrypted with HOTLINE_PASSPHRASE when set; keep it
    offline in a real deployment), server.pem and server.key (what the server serves).
    """


@tls.command("server-cert")
@click.option("--name", "names", multiple=True,
              help="DNS name or IP address clients use to reach the server; repeat for each. "
                   "Default: the names of the current server certificate. Each must be within "
                   "the CA's name constraints (the names given to `hotline init --tls`, a DNS "
                   "name with its subdomains).")
@click.option("--days", type=click.IntRange(1, 3650), default=SERVER_DAYS, show_default=True,
              help="Validity in days (never past the CA's own end).")
@click.option("--ca-key", type=click.Path(dir_okay=False, path_type=Path),
              help="The CA's key file, if kept elsewhere than HOME/tls/ca.key (e.g. offline "
                   "media); its passphrase is read from HOTLINE_PASSPHRASE.")
@click.pass_context
def server_cert(ctx: click.Context, names: tuple[str, ...], days: int, ca_key: Path | None) -> None:
    """Issue a new server certificate and key from the deployment CA (to renew it, or to change
    the names it covers) into HOME/tls/server.pem and server.key. Profiles need no change: they
    pin the CA, not the certificate. Restart the server to serve it."""
    home = Path(ctx.obj["home"])
    chosen = parse_names(list(names) or _current_names(home))
    server = tlsfiles.renew_server(home, names=chosen, now=utc_now(), days=days,
                                   ca_key=ca_key, passphrase=env_passphrase("HOTLINE_PASSPHRASE"))
    click.echo(shown(f"server certificate {home / tlsfiles.SERVER_CERT} (key "
                     f"{home / tlsfiles.SERVER_KEY}) for {', '.join(map(str, chosen))}, valid "
                     f"until {server.cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"))
    click.echo("The server serves it from its next start (server.tls_cert and server.tls_key in "
               "hotline.toml name these files).")
