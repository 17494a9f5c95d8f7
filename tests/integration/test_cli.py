"""The scriptable commands of docs/ARCHITECTURE.md "Command line", run as a user runs them, against a server
process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotline.epochfiles import epoch_folder, load_epoch_keys
from hotline.errors import HotlineError
from hotline.keyfiles import load_private_key
from tests.conftest import DEMO_ROSTER, ServerProcess, hotline_cli

pytestmark = pytest.mark.slow  # real servers or child processes in every test

FIRST = DEMO_ROSTER  # the first message's index, right after the demo roster
SEALED = "sealed text to carol (mediator), alice (north), bob (south)"  # to each party's liaison


def test_send_listen_ack_round_trip(server_process: ServerProcess) -> None:
    url = server_process.start()
    home = server_process.home
    sent = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel", "north-south",
                       "--field", "text=Unusual activity near the border", "--precedence", "flash")
    assert sent.returncode == 0, sent.stderr
    sealed, accepted = sent.stdout.split("\n", 1)
    assert sealed == SEALED and accepted.startswith(f"accepted index={FIRST} ")
    assert ": proven, included in checkpoint " in sent.stdout  # the log proved it, not the host

    heard = hotline_cli(home, "listen", "--as", "bob", "--server", url, "--after", "-1",
                        "--count", "1", "--json")
    assert heard.returncode == 0, heard.stderr
    line, proof = (json.loads(text) for text in heard.stdout.splitlines())
    assert line["index"] == FIRST and line["verified"] is True
    assert (proof["index"], proof["proof"]) == (FIRST, "included") and proof["checkpoint"] > FIRST
    assert line["server"]["expects"]["ack"] == "received"  # the host's word, apart
    assert (line["sender"], line["party"], line["precedence"]) == ("alice", "north", "FLASH")
    assert line["body"] == {"text": "Unusual activity near the border"}

    acked = hotline_cli(home, "ack", "--as", "bob", "--server", url, "--index", str(FIRST))
    assert acked.returncode == 0, acked.stderr
    assert f"understood ack of {FIRST}" in acked.stdout
    assert ": proven, included in checkpoint " in acked.stdout

    # alice sees bob's automatic 'received' ack (sent by listen) and the 'understood' one.
    acks = hotline_cli(home, "listen", "--as", "alice", "--server", url, "--after", str(FIRST),
                       "--count", "2")
    assert acks.returncode == 0, acks.stderr
    assert "ack received of" in acks.stdout and "ack understood of" in acks.stdout
    assert acks.stdout.count("[signature verified]") == 2
    assert acks.stdout.count("proven in the log: included in checkpoint") == 2


def test_refusals_exit_1_with_the_typed_error(server_process: ServerProcess) -> None:
    url = server_process.start()
    home = server_process.home
    incomplete = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel",
                             "north-south", "--template", "launch-notification", "--body",
                             '{"missile_class": "icbm"}')
    assert incomplete.returncode == 2  # refused before sending, with the template's fields
    assert "missing required field(s)" in incomplete.stderr and "fields (* required)" in incomplete.stderr
    unknown = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel", "north-south",
                          "--template", "no-such-template", "--field", "text=x")
    assert unknown.returncode == 2 and "no template 'no-such-template'" in unknown.stderr
    not_member = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel", "elsewhere",
                             "--field", "text=hi")
    assert not_member.returncode == 1 and "channel.unknown" in not_member.stderr
    float_body = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel",
                             "north-south", "--body", '{"text": "x", "lat": 1.5}')
    assert float_body.returncode == 2 and "floating-point" in float_body.stderr


def test_usage_and_setup_errors(tmp_path: Path, home: Path) -> None:
    assert hotline_cli(home, "send", "--channel", "north-south").returncode == 2  # no --as
    unknown = hotline_cli(home, "send", "--as", "zed", "--channel", "north-south", "--field", "text=x")
    assert unknown.returncode == 2 and "no profile 'zed'" in unknown.stderr  # usage: exit 2
    again = hotline_cli(home, "init")
    assert again.returncode == 1 and "--force" in again.stderr
    down = hotline_cli(home, "send", "--as", "alice", "--server", "ws://127.0.0.1:9/v1/ws",
                       "--channel", "north-south", "--field", "text=x")
    assert down.returncode == 1 and "connect.failed" in down.stderr
    fresh = hotline_cli(tmp_path / "new", "init", "--port", "0")
    assert fresh.returncode == 0 and "hotline --home" in fresh.stdout
    assert (tmp_path / "new" / "keys" / "alice.pem").stat().st_mode & 0o777 == 0o600


def test_operator_log_is_json_lines_without_secrets(server_process: ServerProcess) -> None:
    url = server_process.start()
    sent = hotline_cli(server_process.home, "send", "--as", "alice", "--server", url,
                       "--channel", "north-south", "--field", "text=Secret coordinates 4512N")
    assert sent.returncode == 0, sent.stderr
    server_process.stop()
    lines = [json.loads(line) for line in server_process.log.read_text().splitlines()]
    assert all({"event", "level", "timestamp"} <= line.keys() for line in lines)
    events = [line["event"] for line in lines]
    assert events[-1] == "server.stopped" and "server.listening" in events
    accepted = next(line for line in lines if line["event"] == "envelope.accepted")
    assert (accepted["index"], accepted["sender"], accepted["member"]) == (DEMO_ROSTER, "alice", "alice")
    assert "Secret coordinates" not in server_process.log.read_text()


def test_init_encrypts_every_key_with_the_passphrase(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 14: `hotline init` honours HOTLINE_PASSPHRASE (the log key: its own
    HOTLINE_LOG_KEY_PASSPHRASE if set); the server and member commands then run with it."""
    monkeypatch.setenv("HOTLINE_PASSPHRASE", "correct horse battery staple")
    home = tmp_path / "home"
    made = hotline_cli(home, "init", "--port", "0", "--origin", "hotline.test")
    assert made.returncode == 0, made.stderr
    keys = sorted((home / "keys").glob("*.pem"))
    assert len(keys) == 11  # 3 authorities, 3 liaisons, 3 agents, the auditor, the log key
    for path in keys:
        assert path.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----"), path.name
        with pytest.raises(HotlineError):
            load_private_key(path)  # useless without the passphrase
    epoch_keys = sorted(epoch_folder(home).glob("*.pem"))
    assert len(epoch_keys) == 6  # this epoch's and the next one's, of each of the 3 liaisons
    for path in epoch_keys:
        assert path.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----"), path.name
    with pytest.raises(HotlineError):
        load_epoch_keys(home, member="alice", passphrase=None)
    assert len(load_epoch_keys(home, member="alice", passphrase=b"correct horse battery staple")) == 2
    server = ServerProcess(home)
    try:
        url = server.start()  # the log key: HOTLINE_PASSPHRASE, as no log key passphrase is set
        sent = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel",
                           "north-south", "--field", "text=encrypted keys")
        assert sent.returncode == 0, sent.stderr
        cosigned = hotline_cli(home, "witness", "--as", "north-agent", "--once", "--server", url)
        assert cosigned.returncode == 0, cosigned.stderr
    finally:
        server.stop()

    monkeypatch.setenv("HOTLINE_LOG_KEY_PASSPHRASE", "the operator's own")
    other = tmp_path / "other"
    assert hotline_cli(other, "init", "--port", "0").returncode == 0
    load_private_key(other / "keys" / "log.pem", b"the operator's own")
    load_private_key(other / "keys" / "alice.pem", b"correct horse battery staple")
    with pytest.raises(HotlineError):
        load_private_key(other / "keys" / "log.pem", b"correct horse battery staple")
