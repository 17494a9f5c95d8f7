"""Issue 11, defect 12: no body value ever reaches a log line or a ``rejected`` entry.

A marker value is sent in refused bodies (every kind of refusal a body can earn: an enum, a
pattern, a length, a rule, an envelope field, a frame too large) and in an accepted one, in a
field the host reads (a humanitarian notice's details), while a receiver's connection is cut
under a delivery (the path that once logged a traceback with the frame's locals); another marker
goes in a message's text, which is sealed to the parties. Then the server's stderr, every file
beside the database, and every table of the database are searched: the refused marker is
nowhere, the accepted one only in the entries table (the log itself), the sealed one nowhere.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.display import unsafe
from hotline.envelope import Precedence
from hotline.errors import HotlineError
from hotline.httpauth import sign_request
from hotline.server.gate import is_loopback
from tests.conftest import ServerProcess, running_server
from tests.integration.test_attack_line import NOTICE, http_url, login

REFUSED = "QZXREFUSEDMARKERQZX"
ACCEPTED = "QZXACCEPTEDMARKERQZX"
SEALED = "QZXSEALEDMARKERQZX"
CHANNEL = "north-south"

# body -> the template it is refused by; the marker is the offending value each time
REFUSED_BODIES = [
    ("launch-notification", {"missile_class": REFUSED, "window": {"start": "2030-01-01T00:00:00Z",
                                                                  "end": "2030-01-01T01:00:00Z"},
                             "launch_area": "a", "impact_area": "b"}),
    ("humanitarian-notice", {"category": "humanitarian_movement", "nature": "notification",
                             "location": {"name": "x", "latitude": REFUSED}, "details": "y"}),
    ("humanitarian-notice", {**NOTICE, "details": REFUSED * 1000}),  # too long
    ("preagreed", {"number": 6, "code": REFUSED}),
    ("message", {"text": "ok", "lang": REFUSED}),
    ("no-such-template", {"text": REFUSED}),
]


def marker_free(text: str, *markers: str) -> bool:
    return not any(marker in text for marker in markers)


@pytest.mark.slow
async def test_no_body_value_reaches_a_log_line_or_a_rejected_entry(
        server_process: ServerProcess) -> None:
    url = server_process.start()
    home = server_process.home
    alice = Client.for_profile(Profile.load(home, "alice"))
    await alice.connect(url)
    bob = await login(url, Profile.load(home, "bob").signing_key())
    try:
        codes = []
        for template, body in REFUSED_BODIES:
            try:
                if template == "no-such-template":  # Client.send refuses it unsent; another may not
                    await alice.submit_envelope(alice.envelope(channel=CHANNEL, template=template,
                                                               body=body, precedence=Precedence.IMMEDIATE))
                else:
                    await alice.send(channel=CHANNEL, template=template, body=body,
                                     precedence=Precedence.IMMEDIATE)
            except HotlineError as exc:
                codes.append(exc.code)
                assert marker_free(exc.message, REFUSED), exc.message
        assert len(codes) == len(REFUSED_BODIES), codes
        envelope = alice.envelope(channel=CHANNEL, template="humanitarian-notice", body=NOTICE)
        raw = alice.ws
        assert raw is not None
        frame = {"type": "submit", "envelope": {**envelope.to_json(), "created": REFUSED},
                 "sig": envelope.sign(alice.key)}
        await raw.send(json.dumps(frame))
        await raw.send('{"type": "submit", "envelope": {"body": "' + REFUSED * 10_000 + '"}}')
        bob.ws.transport.abort()  # cut under the delivery of the accepted messages
        accepted = await alice.send(channel=CHANNEL, template="humanitarian-notice",
                                    body={**NOTICE, "details": f"coordinates {ACCEPTED}"})
        sealed = await alice.send(channel=CHANNEL, template="message",
                                  body={"text": f"coordinates {SEALED}"})
        assert 0 < accepted.index < sealed.index
    finally:
        await alice.close()
    server_process.stop()

    log = server_process.log.read_text()
    assert "submit.rejected" in log and "envelope.accepted" in log
    assert marker_free(log, REFUSED, ACCEPTED, SEALED)
    for path in home.rglob("*"):
        if path.is_file() and not path.name.startswith("hotline.db"):
            assert marker_free(path.read_bytes().decode("latin-1"), REFUSED, ACCEPTED, SEALED), path
    for path in home.glob("hotline.db*"):  # no page, free or in use, ever held a refused value
        content = path.read_bytes()  # nor the sealed text, which the host never reads
        assert REFUSED.encode() not in content and SEALED.encode() not in content, path

    db = sqlite3.connect(home / "hotline.db")
    try:
        found = []
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            for column in columns:
                (hits,) = db.execute(f"SELECT COUNT(*) FROM {table} WHERE CAST({column} AS TEXT) "
                                     "LIKE ?", (f"%{ACCEPTED}%",)).fetchone()
                if hits:
                    found.append((table, column, hits))
        assert found == [("entries", "leaf", 1)]
        rejected = [leaf for (leaf,) in db.execute("SELECT leaf FROM entries WHERE kind = 'rejected'")]
        assert len(rejected) == len(REFUSED_BODIES)
    finally:
        db.close()


def logged_by(script: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter (the log configuration is process-wide)."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, cwd=folder)
    assert result.returncode == 0, result.stderr
    return result


def test_tracebacks_are_logged_without_their_frames_locals(tmp_path: Path) -> None:
    """The log configuration every command uses renders an exception's frames, never their
    local variables (where bodies and signatures live), in both formats."""
    script = f"""
import logging, structlog
from hotline.operator_log import configure
def deliver(body):
    raise ConnectionResetError("peer gone")
for fmt in ("json", "console"):
    configure(fmt=fmt)
    try:
        deliver({{"text": "{ACCEPTED}"}})
    except ConnectionError:
        structlog.get_logger("hotline.server").exception("send.failed")
        logging.getLogger("aiohttp.server").exception("Error handling request")
"""
    result = logged_by(script, tmp_path)
    assert result.stderr.count("ConnectionResetError") >= 4, result.stderr
    assert marker_free(result.stderr, ACCEPTED), result.stderr


async def test_metrics_are_not_for_everyone(home: Path) -> None:
    """Defect 14: /metrics names channels and their states. By default only loopback peers read
    it; with `server.metrics = "signed"` only a member's signed request does."""
    assert [is_loopback(a) for a in ("127.0.0.1", "::1", "::ffff:127.0.0.1")] == [True] * 3
    assert [is_loopback(a) for a in ("10.0.0.7", "2001:db8::1", "::ffff:10.0.0.7", None, "x")] == \
        [False] * 5
    async with running_server(home) as server, aiohttp.ClientSession() as http:
        async with http.get(http_url(server.url, "/metrics")) as response:
            assert response.status == 200  # the test runs on the server's machine
    async with running_server(home, HOTLINE_SERVER_METRICS="signed") as server, \
            aiohttp.ClientSession() as http:
        async with http.get(http_url(server.url, "/metrics")) as response:
            assert (response.status, (await response.json())["code"]) == (401, "auth.missing")
        profile = Profile.load(home, "audrey")
        header = sign_request(profile.signing_key(), method="GET", path="/metrics", query="",
                              origin=profile.origin, now=datetime.now(UTC))
        async with http.get(http_url(server.url, "/metrics"),
                            headers={"Authorization": header}) as response:
            assert response.status == 200
            assert 'hotline_channel_state{channel="north-south"' in await response.text()


def test_a_log_line_never_carries_a_terminal_control(tmp_path: Path) -> None:
    """A logged value or exception may quote a peer or the host; in both formats what reaches
    the operator's terminal holds no control sequence (issue 20, defect 1, for the logs)."""
    script = """
import logging, structlog
from hotline.operator_log import configure
for fmt in ("json", "console"):
    configure(fmt=fmt)
    structlog.get_logger("hotline.agent").warning("host.refused", reason="\\x1b[2J\\x1b]0;x\\x07\\u202e")
    try:
        raise ValueError("host said \\x1b[31m\\x9b")
    except ValueError:
        structlog.get_logger("hotline.agent").exception("round.failed")
        logging.getLogger("websockets").exception("\\x1bc reset")
"""
    result = logged_by(script, tmp_path)
    assert result.stderr.count("host.refused") == 2 and result.stderr.count("ValueError") >= 4
    assert [c for c in result.stderr if unsafe(c) and c != "\n"] == [], result.stderr
