"""hotline.tlsca: the deployment CA and the server certificates it issues — what each holds,
what is refused, and that OpenSSL's strict chain check accepts what is made."""

from __future__ import annotations

import contextlib
import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from hotline.tlsca import (
    CA_DAYS,
    DEFAULT_NAMES,
    SERVER_DAYS,
    Pair,
    TlsError,
    check_ca,
    issue_server,
    make_ca,
    names_of,
    parse_name,
    parse_names,
    url_host,
)

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> Pair:
    return make_ca(origin="hotline.test", names=parse_names(DEFAULT_NAMES), now=NOW)


def ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


def test_the_ca_is_a_name_constrained_p256_ca_for_five_years(ca: Pair) -> None:
    cert = ca.cert
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(ca.key.curve, ec.SECP256R1)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    constraints = ext(cert, x509.NameConstraints)
    assert constraints.critical
    assert constraints.value.permitted_subtrees == [
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")), x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("::1/128"))]
    assert cert.not_valid_after_utc - NOW == timedelta(days=CA_DAYS)
    assert NOW - cert.not_valid_before_utc == timedelta(minutes=5)
    check_ca(ca)


def test_the_server_certificate_names_the_server_for_serverauth_only(ca: Pair) -> None:
    server = issue_server(ca, names=parse_names(["hub.localhost", "127.0.0.1"]), now=NOW)
    cert = server.cert
    cert.verify_directly_issued_by(ca.cert)
    assert names_of(cert) == ["hub.localhost", "127.0.0.1"]
    assert ext(cert, x509.BasicConstraints).value.ca is False
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert (ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier
            == ext(ca.cert, x509.SubjectKeyIdentifier).value.digest)
    assert cert.not_valid_after_utc - NOW == timedelta(days=SERVER_DAYS)


def test_a_server_certificate_never_outlives_its_ca(ca: Pair) -> None:
    late = ca.cert.not_valid_after_utc - timedelta(days=10)
    server = issue_server(ca, names=parse_names(["localhost"]), now=late)
    assert server.cert.not_valid_after_utc == ca.cert.not_valid_after_utc
    with pytest.raises(TlsError, match="expired"):
        issue_server(ca, names=parse_names(["localhost"]), now=ca.cert.not_valid_after_utc)


@pytest.mark.parametrize("names", [["hotline.example.org"], ["127.0.0.2"], ["::2"], ["localhost.evil"],
                                   ["localhost", "10.0.0.1"]])
def test_names_outside_the_constraints_are_refused(ca: Pair, names: list[str]) -> None:
    with pytest.raises(TlsError, match=r"may vouch only for 127\.0\.0\.1, localhost, ::1 "):
        issue_server(ca, names=parse_names(names), now=NOW)


@pytest.mark.parametrize(("text", "parsed"), [
    ("127.0.0.1", ipaddress.ip_address("127.0.0.1")), ("::1", ipaddress.ip_address("::1")),
    ("Hotline.Example.ORG.", "hotline.example.org"), ("a-b.c1", "a-b.c1")])
def test_names_parse(text: str, parsed: object) -> None:
    assert parse_name(text) == parsed


@pytest.mark.parametrize("text", ["", "*.example.org", "exa mple.org", "-a.org", "a..b", "a_b.org",
                                  "1.2.3.999", "x" * 64 + ".org", "é.org", "a.org\n"])
def test_bad_names_are_refused(text: str) -> None:
    with pytest.raises(TlsError) as info:
        parse_name(text)
    assert info.value.code == "config.tls"


def test_names_need_one_and_drop_repeats() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    assert parse_names(["localhost", "LOCALHOST", "127.0.0.1"]) == ["localhost", loopback]
    with pytest.raises(TlsError, match="at least one name"):
        parse_names([])
    assert url_host(ipaddress.ip_address("::1")) == "[::1]" and url_host("localhost") == "localhost"


def test_only_a_real_ca_with_its_key_signs(ca: Pair) -> None:
    server = issue_server(ca, names=parse_names(["localhost"]), now=NOW)
    with pytest.raises(TlsError, match="not a CA"):
        issue_server(server, names=parse_names(["localhost"]), now=NOW)
    other = make_ca(origin="other", names=parse_names(["localhost"]), now=NOW)
    with pytest.raises(TlsError, match="does not belong"):
        issue_server(Pair(ca.cert, other.key), names=parse_names(["localhost"]), now=NOW)
    with pytest.raises(TlsError, match="at least one day"):
        issue_server(ca, names=parse_names(["localhost"]), now=NOW, days=0)


def test_a_non_p256_ca_key_is_refused() -> None:
    p384 = make_ca(origin="x", names=parse_names(["localhost"]), now=NOW,
                   key=ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(TlsError, match="P-256"):
        check_ca(p384)


def test_openssl_verifies_the_chain_strictly(ca: Pair, tmp_path: Path) -> None:
    """What a pinned client checks: the chain under VERIFY_X509_STRICT (Python 3.13's default),
    name constraints included: a certificate forged with the CA's key for a name the CA may not
    vouch for is refused by the client itself."""
    (tmp_path / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    good = issue_server(ca, names=parse_names(["127.0.0.1"]), now=datetime.now(UTC))
    assert accepted(tmp_path, good.cert, good.key)
    assert not accepted(tmp_path, forge(ca, good.key, "evil.example"), good.key)


def forge(ca: Pair, key: ec.EllipticCurvePrivateKey, extra: str) -> x509.Certificate:
    """A server certificate signed with the CA's key, naming also a DNS name outside its
    constraints (``issue_server`` refuses to make one)."""
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName(extra)]), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                           critical=False)
            .sign(ca.key, hashes.SHA256()))


def accepted(folder: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    """A TLS handshake in memory between a server holding ``cert`` and a client that pins only
    ``folder/ca.pem``, as ``Profile.tls_for`` makes it: whether the client accepted."""
    (folder / "s.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "s.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(folder / "s.pem", folder / "s.key")
    client_side = ssl.create_default_context(cafile=folder / "ca.pem")
    client_side.verify_flags |= ssl.VERIFY_X509_STRICT
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_side.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    server = server_side.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):  # a handshake takes two or three flights
        try:
            client.do_handshake()
            return True
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLCertVerificationError:
            return False
        s_in.write(c_out.read())
        with contextlib.suppress(ssl.SSLWantReadError):
            server.do_handshake()
        c_in.write(s_out.read())
    raise AssertionError("the handshake did not finish")
