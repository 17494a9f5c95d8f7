"""Issue 12, acceptance 3: TLS by default off loopback. A deployment made by `hotline init --tls`
serves a full exchange over wss:// and https:// (liaisons, agents and witnesses, the auditor, the
console); its profiles pin its CA, so another deployment's certificate, an expired one and a
plain ws:// or http:// URL are refused on every client path; the server refuses a non-loopback
address without TLS unless told --insecure. Real server, sockets, keys and certificates."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hotline.agent.heartbeat import AgentState, HeartbeatAgent
from hotline.client.backoff import Backoff
from hotline.client.connection import Client, ConnectError
from hotline.client.logapi import LogClient, RemoteError, http_base
from hotline.client.profile import Profile, TlsRequired
from hotline.errors import ConfigError
from hotline.tlsca import TlsError, issue_server, names_of, parse_names
from hotline.tlsfiles import CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY, load_ca, write_server
from tests.conftest import ServerProcess, hotline_cli, running_server, witness_all
from tests.integration.test_console import connected, console, messages_text, until

pytestmark = pytest.mark.slow  # real servers or child processes in every test

ORIGIN = "hotline.test"
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.2"}
WAIT = 20.0


def init_tls(home: Path, *args: str) -> Path:
    """A deployment made as an operator makes one: `hotline init --tls`."""
    made = hotline_cli(home, "init", "--tls", "--port", "0", "--origin", ORIGIN, *args)
    assert made.returncode == 0, made.stderr
    return home


@pytest.fixture
def tls_home(tmp_path: Path) -> Path:
    return init_tls(tmp_path / "home")


async def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    if not env:
        return await asyncio.to_thread(hotline_cli, home, *args)
    command = [sys.executable, "-m", "hotline.cli", "--home", str(home), *args]
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True,
                                   timeout=60, env={**os.environ, **env})


def refused(result: subprocess.CompletedProcess[str], code: str) -> bool:
    """Exit 1 with the typed error ``code``, not a crash."""
    return (result.returncode == 1 and "Traceback" not in result.stderr
            and f"error: {code}: " in result.stderr)


@contextlib.asynccontextmanager
async def agents(home: Path, url: str, parties: tuple[str, ...]) -> AsyncIterator[None]:
    """Those parties' heartbeat agents (and their witnesses, every 0.2 s), in this loop."""
    tasks = []
    for party in parties:
        name = f"{party}-agent"
        runner = HeartbeatAgent(Profile.load(home, name), servers=(url,),
                                state=AgentState(home / "state" / f"{name}.agent.json"),
                                backoff=Backoff(base=0.05, cap=0.3), witness_every=0.2,
                                witness_state=home / "state" / f"{name}.witness.json")
        tasks.append(asyncio.create_task(runner.run(), name=name))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


# -- what `hotline init --tls` makes ----------------------------------------------------------------

def test_init_tls_makes_a_pinned_ca_and_a_server_certificate(tls_home: Path) -> None:
    for key in (CA_KEY, SERVER_KEY):
        assert (tls_home / key).stat().st_mode & 0o777 == 0o600, key
    assert (tls_home / "tls").stat().st_mode & 0o777 == 0o700
    ca = load_ca(tls_home / CA_CERT, tls_home / CA_KEY, None)
    server = x509.load_pem_x509_certificate((tls_home / SERVER_CERT).read_bytes())
    server.verify_directly_issued_by(ca.cert)
    assert names_of(server) == ["127.0.0.1", "localhost", "::1"]
    config = (tls_home / "hotline.toml").read_text()
    assert 'tls_cert = "tls/server.pem"' in config and 'tls_key = "tls/server.key"' in config
    for name in ("alice", "bob", "carol", "north-agent", "audrey"):
        profile = Profile.load(tls_home, name)
        assert profile.tls_ca == tls_home / CA_CERT
        assert all(url.startswith("wss://127.0.0.1:") for url in profile.servers)


# -- acceptance 3: a full exchange over TLS ---------------------------------------------------------

async def test_full_exchange_over_tls_liaisons_agents_witnesses_auditor(tls_home: Path) -> None:
    """Every command a deployment runs, as its users run it, against `hotline init --tls`'s
    server: send, listen, ack, agent, witness, agreement submit, audit verify."""
    home = tls_home
    async with running_server(home, **FAST) as server:
        url = server.url
        assert url.startswith("wss://127.0.0.1:")
        async with agents(home, url, ("south", "mediator")):
            beat = await cli(home, "agent", "--as", "north-agent", "--once", "--server", url)
            assert beat.returncode == 0, beat.stderr
            assert "north-south: heartbeat echoed by mediator, south" in beat.stdout

            sent = await cli(home, "send", "--as", "alice", "--server", url, "--channel",
                             "north-south", "--field", "text=Consultation at 0900Z, over TLS")
            assert sent.returncode == 0, sent.stderr
            assert "proven, included in checkpoint" in sent.stdout
            match = re.search(r"accepted index=(\d+)", sent.stdout)
            assert match is not None
            index = int(match[1])
            heard = await cli(home, "listen", "--as", "bob", "--server", url, "--after",
                              str(index - 1), "--count", "1", "--json")
            assert heard.returncode == 0, heard.stderr
            first = json.loads(heard.stdout.splitlines()[0])
            assert first["index"] == index and first["body"] == {"text": "Consultation at 0900Z, over TLS"}
            acked = await cli(home, "ack", "--as", "bob", "--server", url, "--index", str(index))
            assert acked.returncode == 0, acked.stderr
            assert f"(understood ack of {index})" in acked.stdout
            for name in ("south-agent", "mediator-agent"):  # the agents' witnesses, over https
                await until_file(home / "state" / f"{name}.witness.json")

        submitted = await cli(home, "agreement", "submit", "--as", "carol", "--server", url,
                              str(home / "roster" / "90-agreement-north-south-v1.json"))
        assert submitted.returncode == 0, submitted.stderr
        assert "logged at index" in submitted.stdout and "(already logged)" in submitted.stdout

        alice = await server.client("alice")  # the last write: then the log stands still
        last = await alice.send(channel="north-south", template="message", body={"text": "end"})
        await asyncio.wait_for(alice.receipt(last.index), WAIT)
        witnessed = await cli(home, "witness", "--as", "north-agent", "--once", "--server", url)
        assert witnessed.returncode == 0, witnessed.stderr
        await witness_all(home, url)
        audit = await cli(home, "audit", "verify", "--as", "audrey", "--server", url)
    assert audit.returncode == 0, audit.stderr
    assert audit.stdout.startswith(f"OK: log {ORIGIN}: {last.index + 1} entries verified")


async def until_file(path: Path) -> None:
    async with asyncio.timeout(WAIT):
        while not path.is_file():
            await asyncio.sleep(0.05)


async def test_console_over_wss_verifies_and_proves(tls_home: Path) -> None:
    """The liaison console connects over wss:// with the pinned CA, and its own inclusion proofs
    come from the log API over https:// with the same pin."""
    async with running_server(tls_home, **FAST) as server:
        bob = await server.client("bob")
        app = console(tls_home, server.url, "alice", prove_every=0.2)
        async with app.run_test() as pilot:
            await connected(pilot, app)
            await bob.send(channel="north-south", template="message", body={"text": "wss works"})
            await until(pilot, lambda: any("wss works" in m and "sig✓" in m and "incl✓" in m
                                           for m in messages_text(app)),
                        "bob's message verified and proven in the log")
            assert app.link.url == server.url
        app.outbox.close()


# -- acceptance 3: a client refuses another CA's certificate, and a plain URL ------------------------

async def test_a_client_refuses_another_deployments_certificate(tls_home: Path, tmp_path: Path) -> None:
    """A second `hotline init --tls` deployment's server holds a valid certificate for the very
    same names (127.0.0.1), from its own CA: what a network attacker holding a real certificate
    would present. Clients of the first deployment refuse it before a single frame, on the
    WebSocket and on the log API."""
    other = init_tls(tmp_path / "other")
    async with running_server(other) as impostor:
        profile = Profile.load(tls_home, "alice")
        client = Client.for_profile(profile)
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.connect(impostor.url, ssl_context=profile.tls_for(impostor.url))
        log = LogClient(http_base(impostor.url), ssl_context=profile.tls_for(impostor.url))
        with pytest.raises(RemoteError, match="CERTIFICATE_VERIFY_FAILED"):
            await asyncio.to_thread(log.checkpoint)
        # even when the system's trust store holds the impostor's CA: the pin is the only trust
        system = {"SSL_CERT_FILE": str(other / CA_CERT)}
        sent = await cli(tls_home, "send", "--as", "alice", "--server", impostor.url,
                         "--channel", "north-south", "--field", "text=x", **system)
        assert refused(sent, "connect.failed") and "CERTIFICATE_VERIFY_FAILED" in sent.stderr
        audit = await cli(tls_home, "audit", "verify", "--as", "audrey", "--server", impostor.url,
                          **system)
        assert refused(audit, "connect.failed") and "CERTIFICATE_VERIFY_FAILED" in audit.stderr
        # the other deployment's own members connect: the refusal is the pin, not a broken server
        await impostor.client("alice")


async def test_a_plain_url_to_a_tls_deployment_is_refused_on_every_path(tls_home: Path) -> None:
    """A downgrade to ws:// or http:// — from --server or HOTLINE_SERVER — is refused by each
    command before it connects, with the typed error saying what to do."""
    home = tls_home
    async with running_server(home) as server:
        plain = server.url.replace("wss://", "ws://")
        http = http_base(plain)
        assert http.startswith("http://")
        runs = await asyncio.gather(
            cli(home, "send", "--as", "alice", "--server", plain, "--channel", "north-south",
                "--field", "text=x"),
            cli(home, "listen", "--as", "bob", "--count", "1", HOTLINE_SERVER=plain),
            cli(home, "ack", "--as", "bob", "--index", "1", "--server", plain),
            cli(home, "agent", "--as", "north-agent", "--once", "--server", plain),
            cli(home, "witness", "--as", "north-agent", "--once", "--server", plain),
            cli(home, "audit", "verify", "--as", "audrey", "--server", http),
            cli(home, "agreement", "submit", "--as", "carol", "--server", http,
                str(home / "roster" / "90-agreement-north-south-v1.json")),
            cli(home, "console", "--as", "alice", "--server", plain))
        for run in runs:
            assert refused(run, "config.tls_required"), (run.args, run.stderr)
            assert "Use the wss:// URL (check --server and HOTLINE_SERVER)" in run.stderr

        profile = Profile.load(home, "alice")  # and in process: the connection is never opened
        with pytest.raises(TlsRequired):
            profile.tls_for(plain)
        with pytest.raises(TlsRequired):
            HeartbeatAgent(Profile.load(home, "north-agent"), servers=(plain,),
                           state=AgentState(home / "state" / "x.json"))
        # a profile file listing a plain server next to its pinned CA does not load
        path = home / "profiles" / "bob.toml"
        path.write_text(path.read_text().replace("wss://", "ws://"))
        with pytest.raises(TlsRequired, match="servers"):
            Profile.load(home, "bob")


# -- attacks on the new files and flags -------------------------------------------------------------

BAD_PEM = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("content", [b"", b"garbage\n", BAD_PEM, None],
                         ids=["empty", "garbage", "bad-pem", "private-key"])
async def test_a_garbage_pinned_ca_is_a_typed_error(tls_home: Path, content: bytes | None) -> None:
    ca = tls_home / CA_CERT
    ca.write_bytes(content if content is not None else (tls_home / SERVER_KEY).read_bytes())
    with pytest.raises(ConfigError, match="cannot load the pinned CA"):
        Profile.load(tls_home, "alice").tls_for("wss://127.0.0.1:1/v1/ws")
    sent = await cli(tls_home, "send", "--as", "alice", "--channel", "north-south", "--field", "text=x")
    assert refused(sent, "config.invalid") and "cannot load the pinned CA" in sent.stderr


async def test_a_missing_pinned_ca_is_a_typed_error(tls_home: Path) -> None:
    (tls_home / CA_CERT).unlink()
    audit = await cli(tls_home, "audit", "verify", "--as", "audrey")
    assert refused(audit, "config.invalid") and "cannot load the pinned CA" in audit.stderr


@contextlib.contextmanager
def hostile_tls(home: Path, cert_pem: bytes, key_pem: bytes) -> Iterator[str]:
    """A bare TLS endpoint on a free loopback port presenting ``cert``: what an attacker holding
    such a certificate and its key would run. It completes handshakes and nothing else."""
    folder = home / "hostile"
    folder.mkdir(exist_ok=True)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = False

    def serve() -> None:
        while not stop:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"wss://127.0.0.1:{port}/v1/ws"
    finally:
        stop = True
        thread.join()
        listener.close()


async def test_an_expired_server_certificate_is_refused(tls_home: Path) -> None:
    """A certificate the pinned CA issued, for the right name, but expired (an old key that
    leaked): the client refuses it; and the server will not start on an expired one."""
    ca = load_ca(tls_home / CA_CERT, tls_home / CA_KEY, None)
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    old = issue_server(ca, names=parse_names(["127.0.0.1"]), now=three_days_ago, days=1)
    cert_pem = old.cert.public_bytes(serialization.Encoding.PEM)
    key_pem = old.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    profile = Profile.load(tls_home, "alice")
    with hostile_tls(tls_home, cert_pem, key_pem) as url:
        with pytest.raises(ConnectError, match="certificate has expired"):
            await Client.for_profile(profile).connect(url, ssl_context=profile.tls_for(url))

    write_server(tls_home, old)
    with pytest.raises(TlsError, match=r"expired on .* `hotline tls server-cert`"):
        async with running_server(tls_home):
            pass
    started = await cli(tls_home, "serve", "--port", "0")
    assert refused(started, "config.tls") and "hotline tls server-cert" in started.stderr

    renewed = await cli(tls_home, "tls", "server-cert")  # the remedy the error names
    assert renewed.returncode == 0, renewed.stderr
    assert "for 127.0.0.1, valid until" in renewed.stdout
    async with running_server(tls_home) as server:  # the same profiles: they pin the CA
        await server.client("alice")


async def test_server_cert_renewal_keeps_to_the_ca_and_its_names(tls_home: Path) -> None:
    outside = await cli(tls_home, "tls", "server-cert", "--name", "hotline.example.org")
    assert refused(outside, "config.tls") and "may vouch only for 127.0.0.1, localhost, ::1" in outside.stderr
    wildcard = await cli(tls_home, "tls", "server-cert", "--name", "*.localhost")
    assert refused(wildcard, "config.tls") and "no wildcard" in wildcard.stderr
    renewed = await cli(tls_home, "tls", "server-cert", "--name", "localhost", "--name",
                        "hub.localhost", "--days", "30")
    assert renewed.returncode == 0, renewed.stderr
    cert = x509.load_pem_x509_certificate((tls_home / SERVER_CERT).read_bytes())
    assert names_of(cert) == ["localhost", "hub.localhost"]
    assert cert.not_valid_after_utc - datetime.now(UTC) < timedelta(days=30, minutes=1)
    async with running_server(tls_home) as server:  # reached by a name the new certificate holds
        url = server.url.replace("127.0.0.1", "localhost")
        profile = Profile.load(tls_home, "alice")
        await Client.for_profile(profile).connect(url, ssl_context=profile.tls_for(url))
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # 127.0.0.1 is gone
            await Client.for_profile(profile).connect(server.url, ssl_context=profile.tls_for(server.url))

    (tls_home / CA_KEY).unlink()
    lost = await cli(tls_home, "tls", "server-cert")
    assert refused(lost, "config.tls") and "cannot read the CA key" in lost.stderr


async def test_init_refuses_bad_tls_names_and_plain_listening_off_loopback(tmp_path: Path) -> None:
    bad = await cli(tmp_path / "a", "init", "--tls", "--tls-name", "exa mple.org")
    assert refused(bad, "config.tls") and not (tmp_path / "a").exists()
    plain = await cli(tmp_path / "b", "init", "--host", "0.0.0.0")
    assert refused(plain, "config.insecure_listen") and not (tmp_path / "b").exists()
    usage = await cli(tmp_path / "c", "init", "--tls-name", "localhost")
    assert usage.returncode == 2 and "--tls-name needs --tls" in usage.stderr
    wide = await cli(tmp_path / "d", "init", "--tls", "--host", "0.0.0.0", "--tls-name",
                     "hotline.example.org", "--tls-name", "192.0.2.7")
    assert wide.returncode == 0, wide.stderr
    assert 'host = "0.0.0.0"' in (tmp_path / "d" / "hotline.toml").read_text()
    assert Profile.load(tmp_path / "d", "alice").servers == ("wss://hotline.example.org:8470/v1/ws",)


# -- acceptance 3: the server refuses a non-loopback address without TLS ---------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "hotline.example.org"])
async def test_server_refuses_a_non_loopback_address_without_tls(home: Path, host: str) -> None:
    started = await cli(home, "serve", "--host", host, "--port", "0")
    assert refused(started, "config.insecure_listen"), started.stderr
    assert "hotline init --tls" in started.stderr and "--insecure" in started.stderr
    assert "listening" not in started.stdout


def loopback_only_name() -> str | None:
    """A host name that is not `localhost` (so, by the rule, off loopback) but that resolves to
    loopback addresses only here: binding it with --insecure exposes nothing."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        return None
    if name.lower() == "localhost" or not addresses or not all(
            ipaddress.ip_address(a).is_loopback for a in addresses):
        return None
    return name


async def test_insecure_serves_off_loopback_when_told_and_loopback_needs_nothing(
        home: Path, server_process: ServerProcess) -> None:
    for host in ("127.0.0.1", "127.8.9.10", "localhost", "::1"):  # loopback: no TLS needed
        async with running_server(home, HOTLINE_SERVER_HOST=host) as server:
            assert server.url.startswith("ws://")
    name = loopback_only_name()
    if name is None:
        pytest.skip("no host name here resolves to loopback only: binding off loopback is unsafe")
    refused_start = await cli(home, "serve", "--host", name, "--port", "0")
    assert refused(refused_start, "config.insecure_listen")
    for told in ({"args": ("--insecure",)}, {"HOTLINE_SERVER_INSECURE": "true"}):  # flag, setting
        url = server_process.start(*told.pop("args", ()), HOTLINE_SERVER_HOST=name, **told)
        client = Client.for_profile(Profile.load(home, "alice"))
        await client.connect(url)
        await client.close()
        server_process.stop()
    warnings = [json.loads(line) for line in server_process.log.read_text().splitlines()
                if "server.insecure_listen" in line]
    assert len(warnings) == 2 and all(w["level"] == "warning" and w["host"] == name for w in warnings)


async def test_the_ca_key_is_encrypted_with_the_passphrase_and_may_live_offline(tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = await cli(home, "init", "--tls", "--port", "0", HOTLINE_PASSPHRASE="correct horse")
    assert made.returncode == 0, made.stderr
    assert b"ENCRYPTED PRIVATE KEY" in (home / CA_KEY).read_bytes()
    assert b"ENCRYPTED" not in (home / SERVER_KEY).read_bytes()  # the server reads it at each start
    offline = tmp_path / "usb" / "ca.key"
    offline.parent.mkdir()
    (home / CA_KEY).rename(offline)
    missing = await cli(home, "tls", "server-cert", HOTLINE_PASSPHRASE="correct horse")
    assert refused(missing, "config.tls") and "hotline init --tls" in missing.stderr
    for passphrase in ("", "wrong"):
        wrong = await cli(home, "tls", "server-cert", "--ca-key", str(offline),
                          HOTLINE_PASSPHRASE=passphrase)
        assert refused(wrong, "config.tls") and "HOTLINE_PASSPHRASE" in wrong.stderr, wrong.stderr
    before = (home / SERVER_CERT).read_bytes()
    renewed = await cli(home, "tls", "server-cert", "--ca-key", str(offline),
                        HOTLINE_PASSPHRASE="correct horse")
    assert renewed.returncode == 0, renewed.stderr
    assert (home / SERVER_CERT).read_bytes() != before
    assert (home / SERVER_KEY).stat().st_mode & 0o777 == 0o600
