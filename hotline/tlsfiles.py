"""``HOME/tls/``: the deployment CA and the server certificate on disk, and the server's TLS
context read from them.

- ``ca.pem``: the CA certificate every profile pins (``tls_ca``); hand it to each member.
- ``ca.key``: the CA's key (0600; encrypted with ``HOTLINE_PASSPHRASE`` when set). Only
  ``hotline tls server-cert`` needs it: a real deployment keeps it offline (``--ca-key``).
- ``server.pem``, ``server.key``: the server's certificate and key (0600, not encrypted: the
  server reads it at every start), named by ``server.tls_cert`` / ``server.tls_key``.
Each file is replaced atomically, so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import ssl
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hotline.privatefiles import private_folder, write_private_atomically
from hotline.tlsca import SERVER_DAYS, Name, Pair, TlsError, check_ca, issue_server, make_ca

CA_CERT: Final = "tls/ca.pem"
CA_KEY: Final = "tls/ca.key"
SERVER_CERT: Final = "tls/server.pem"
SERVER_KEY: Final = "tls/server.key"
RENEW_BEFORE: Final = timedelta(days=30)  # the server warns this long before its certificate ends
RENEW_ADVICE: Final = "issue a new one with `hotline tls server-cert` (see `hotline tls server-cert --help`)"


def _key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_server(home: Path, server: Pair) -> None:
    """Replace the server's certificate and key (the key first: it is what the cert names)."""
    write_private_atomically(home / SERVER_KEY, _key_pem(server.key, None))
    write_private_atomically(home / SERVER_CERT, _cert_pem(server.cert))


def create(home: Path, *, origin: str, names: list[Name], now: datetime,
           passphrase: bytes | None = None) -> Pair:
    """Make the deployment CA and a server certificate for ``names`` under ``HOME/tls``; the CA
    may vouch for ``names`` only (see ``hotline.tlsca``). Returns the CA."""
    private_folder(home / "tls")
    ca = make_ca(origin=origin, names=names, now=now)
    write_private_atomically(home / CA_KEY, _key_pem(ca.key, passphrase))
    write_private_atomically(home / CA_CERT, _cert_pem(ca.cert))
    write_server(home, issue_server(ca, names=names, now=now))
    return ca


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the {what} {path}: {exc.strerror or exc} (a deployment made "
                       "without --tls has none: `hotline init --tls` makes it)") from exc


def load_ca(cert_path: Path, key_path: Path, passphrase: bytes | None) -> Pair:
    """The deployment CA from its files.

    Raises:
        TlsError: a file is missing or unreadable, not PEM, wrongly encrypted, or not a P-256
            CA with its own key.
    """
    cert_data, key_data = _read(cert_path, "CA certificate"), _read(key_path, "CA key")
    try:
        cert = x509.load_pem_x509_certificate(cert_data)
    except ValueError as exc:
        raise TlsError(f"{cert_path} is not a PEM certificate") from exc
    try:
        key = serialization.load_pem_private_key(key_data, passphrase)
    except TypeError as exc:  # encrypted without a passphrase, or the other way round
        raise TlsError(f"{key_path}: {exc} (the passphrase is read from HOTLINE_PASSPHRASE)") from exc
    except ValueError as exc:
        raise TlsError(f"{key_path} is not a PEM private key, or the passphrase "
                       "(HOTLINE_PASSPHRASE) is wrong") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{key_path} is not an ECDSA key")
    ca = Pair(cert, key)
    check_ca(ca)
    return ca


def renew_server(home: Path, *, names: list[Name], now: datetime, days: int = SERVER_DAYS,
                 ca_key: Path | None = None, passphrase: bytes | None = None) -> Pair:
    """Issue a new server certificate and key from the deployment CA and put them in place of
    the old ones (the server takes them at its next start)."""
    ca = load_ca(home / CA_CERT, ca_key or home / CA_KEY, passphrase)
    server = issue_server(ca, names=names, now=now, days=days)
    write_server(home, server)
    return server


def server_context(cert: Path, key: Path, *, now: datetime) -> tuple[ssl.SSLContext, datetime]:
    """The server's TLS context (TLS 1.2 at least) and the end of its certificate's validity.

    Raises:
        TlsError: a file is unreadable, the key does not match the certificate, or the
            certificate has expired (every client would refuse it).
    """
    cert_data = _read(cert, "TLS certificate")
    try:
        leaf = x509.load_pem_x509_certificate(cert_data)
    except ValueError as exc:
        raise TlsError(f"{cert} is not a PEM certificate") from exc
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot use {cert} with {key}: {exc} (a key that does not match its "
                       f"certificate, or an unreadable file: {RENEW_ADVICE})") from exc
    end = leaf.not_valid_after_utc
    if end <= now:
        raise TlsError(f"the server's TLS certificate {cert} expired on {end:%Y-%m-%d %H:%M} UTC "
                       f"and every client would refuse it: {RENEW_ADVICE}")
    return context, end
