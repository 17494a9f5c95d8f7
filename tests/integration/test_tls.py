"""TLS from the config: the server serves wss://, a client trusting the deployment's CA connects,
one that does not is refused before any frame is exchanged."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hotline.client.connection import ConnectError
from tests.conftest import DEMO_ROSTER, running_server


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hotline test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir()
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_wss_with_the_deployment_ca(home: Path) -> None:
    cert, key = self_signed(home / "tls")
    profile = home / "profiles" / "alice.toml"
    async with running_server(home, HOTLINE_SERVER_TLS_CERT=str(cert),
                              HOTLINE_SERVER_TLS_KEY=str(key)) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await server.client("alice")  # system CAs only: the self-signed cert is refused
        # pinning a CA takes wss:// servers: a profile pinning one next to ws:// does not load
        profile.write_text(profile.read_text().replace('# tls_ca = "tls/ca.pem"', 'tls_ca = "tls/cert.pem"')
                           .replace("ws://", "wss://"))
        alice = await server.client("alice")
        accepted = await alice.send(channel="north-south", template="message", body={"text": "over TLS"})
        assert accepted.index == DEMO_ROSTER  # the first entry after the roster
