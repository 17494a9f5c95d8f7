"""The deployment's own TLS: a CA that only this deployment's profiles trust, and the server
certificates it issues (``hotline init --tls``, ``hotline tls server-cert``). Pure: keys, names
and times in, certificates out; the files are ``hotline.tlsfiles``'s.

Theory of operation:
- Profiles pin the deployment CA (``tls_ca``) instead of the system's hundred-odd CAs, so a
  network attacker holding a certificate from any public CA still cannot pass for the server.
- ECDSA P-256 with SHA-256: every TLS stack accepts it (Ed25519 certificates are refused by
  many), and OpenSSL's ``VERIFY_X509_STRICT`` checks (the default from Python 3.13) pass: key
  identifiers on both certificates, critical BasicConstraints and KeyUsage (RFC 5280 §4.2).
- The CA's NameConstraints (critical, RFC 5280 §4.2.1.10) permit only the names it was made for:
  a DNS name also covers its subdomains, an IP address only itself. A CA key that leaks, or a CA
  someone adds to a system store, then vouches for nothing else; a server certificate for a name
  outside them is refused here, before a client would refuse it.
- Lifetimes: the CA 5 years, a server certificate 1 year at most (and never past its CA).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hotline.errorcodes import Code
from hotline.errors import ConfigError

CA_DAYS: Final = 5 * 365 + 1
SERVER_DAYS: Final = 365
SKEW: Final = timedelta(minutes=5)  # not_before is set back this much: clocks differ
DEFAULT_NAMES: Final = ("127.0.0.1", "localhost", "::1")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

Name = ipaddress.IPv4Address | ipaddress.IPv6Address | str  # an IP address or a DNS name


class TlsError(ConfigError):
    """A TLS name, certificate or key that cannot serve; the message says what to do."""

    code = Code.CONFIG_TLS


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def parse_name(text: str) -> Name:
    """An IP address, or a DNS name (lower-cased; letters, digits and hyphens, no wildcard).

    Raises:
        TlsError: anything else.
    """
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    name = text.lower().removesuffix(".")
    if (not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split("."))
            or name.split(".")[-1].isdigit()):
        raise TlsError(f"{text!r} is neither an IP address nor a DNS name (letters, digits, "
                       "hyphens and dots; no wildcard): give --tls-name NAME for each name or "
                       "address clients use to reach the server")
    return name


def parse_names(texts: list[str] | tuple[str, ...]) -> list[Name]:
    """``parse_name`` of each, without repeats; at least one.

    Raises:
        TlsError: none given, or one is invalid.
    """
    names: list[Name] = []
    for text in texts:
        name = parse_name(text)
        if name not in names:
            names.append(name)
    if not names:
        raise TlsError("a server certificate needs at least one name (--tls-name)")
    return names


def url_host(name: Name) -> str:
    """The host part of a URL naming ``name`` (an IPv6 address in brackets)."""
    return f"[{name}]" if isinstance(name, ipaddress.IPv6Address) else str(name)


def _general(name: Name) -> x509.GeneralName:
    return x509.DNSName(name) if isinstance(name, str) else x509.IPAddress(name)


def _subtree(name: Name) -> x509.GeneralName:
    if isinstance(name, str):
        return x509.DNSName(name)
    return x509.IPAddress(ipaddress.ip_network(f"{name}/{name.max_prefixlen}"))


def make_ca(*, origin: str, names: list[Name], now: datetime,
            key: ec.EllipticCurvePrivateKey | None = None, days: int = CA_DAYS) -> Pair:
    """A self-signed deployment CA that may sign server certificates for ``names`` only.

    Args:
        origin: the deployment's name, put in the CA's common name (for people reading it).
        names: what its server certificates may name (see ``parse_names``).
        now: the time of issue (aware).
        key: the CA's key (default: a new P-256 key).
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"hotline deployment CA {origin}"[:64])])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - SKEW).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.NameConstraints(permitted_subtrees=[_subtree(n) for n in names],
                                                excluded_subtrees=None), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Pair(cert, key)


def permitted(ca: x509.Certificate) -> list[x509.GeneralName] | None:
    """The names the CA's NameConstraints permit (None: no constraint)."""
    try:
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None
    return list(constraints.permitted_subtrees or [])


def _covered(name: Name, subtrees: list[x509.GeneralName]) -> bool:
    for tree in subtrees:
        if isinstance(name, str) and isinstance(tree, x509.DNSName):
            if name == tree.value or name.endswith("." + tree.value):
                return True
        elif not isinstance(name, str) and isinstance(tree, x509.IPAddress):
            network = tree.value
            if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) and name in network:
                return True
    return False


def _shown_subtree(tree: x509.GeneralName) -> str:
    value = tree.value
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network) and value.num_addresses == 1:
        return str(value.network_address)
    return str(value)


def check_ca(ca: Pair) -> None:
    """That ``ca`` is a CA certificate with its own key, able to sign certificates.

    Raises:
        TlsError: it is not.
    """
    try:
        constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        constraints, usage = None, None
    if constraints is None or usage is None or not constraints.ca or not usage.key_cert_sign:
        raise TlsError("the CA certificate is not a CA (BasicConstraints CA, KeyUsage keyCertSign)")
    if ca.cert.public_key() != ca.key.public_key():
        raise TlsError("the CA key does not belong to the CA certificate")
    if not isinstance(ca.key.curve, ec.SECP256R1):
        raise TlsError("the CA key is not an ECDSA P-256 key")
    try:
        ca.cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise TlsError(f"the CA certificate is not self-signed: {exc}") from exc


def issue_server(ca: Pair, *, names: list[Name], now: datetime,
                 key: ec.EllipticCurvePrivateKey | None = None, days: int = SERVER_DAYS) -> Pair:
    """A server certificate signed by ``ca`` for ``names`` (the first is its common name),
    valid ``days`` days from ``now`` and never past the CA's own end.

    Raises:
        TlsError: ``ca`` cannot sign (``check_ca``), a name is outside its NameConstraints, the
            CA has expired, or ``days`` is not positive.
    """
    check_ca(ca)
    if days < 1:
        raise TlsError(f"a certificate must be valid at least one day, not {days}")
    subtrees = permitted(ca.cert)
    outside = [str(n) for n in names if subtrees is not None and not _covered(n, subtrees)]
    if outside:
        allowed = ", ".join(_shown_subtree(t) for t in subtrees or [])
        raise TlsError(f"the deployment CA may vouch only for {allowed} (its name constraints), "
                       f"not for {', '.join(outside)}: name the server by one of those, or make "
                       "the deployment with that name (`hotline init --tls --tls-name NAME`; a "
                       "DNS name also covers its subdomains)")
    end = min(now + timedelta(days=days), ca.cert.not_valid_after_utc)
    if end <= now:
        raise TlsError(f"the deployment CA expired on {ca.cert.not_valid_after_utc:%Y-%m-%d}: "
                       "it can issue nothing more (make a new deployment CA and pin it in every "
                       "profile)")
    key = key or ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hotline server")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - SKEW).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([_general(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                           critical=False)
            .sign(ca.key, hashes.SHA256()))
    return Pair(cert, key)


def names_of(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses a certificate names (its SubjectAlternativeName)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in san if isinstance(n, x509.DNSName | x509.IPAddress)]
