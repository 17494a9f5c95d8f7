"""``hotline audit report`` as an auditor runs it, against the real server: liaisons send and
ack with the CLI and have two attempts refused, then audrey verifies the log and reports on the
channel (text and JSON, live and from an export); a tampered export gets no report.

Whether messages carry an acknowledgement requirement (``expects``) depends on the templates
deployed, and its status on the clock, so the compliance counts are only checked to add up
here; tests/unit/audit/test_report.py covers them case by case.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hotline.errors import ProtocolViolation
from tests.conftest import DEMO_ROSTER, Running, hotline_cli, running_server, witness_all

pytestmark = pytest.mark.slow  # real servers or child processes in every test

FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
FIRST = DEMO_ROSTER  # the first message, right after the demo roster
LAST = FIRST + 6  # the receipted message, after 3 messages, an ack and 2 refused attempts
SEALED = "sealed text to carol (mediator), alice (north), bob (south)"  # `hotline send`'s first line


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(hotline_cli, home, *args)


async def run_ok(home: Path, *args: str) -> str:
    result = await cli(home, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


async def sent(home: Path, *args: str) -> str:
    """What `hotline send` says after sealing the text to the parties' liaisons."""
    first, rest = (await run_ok(home, *args)).split("\n", 1)
    assert first == SEALED
    return rest


async def exchange(home: Path, server: Running, tmp_path: Path) -> None:
    """Entries FIRST..LAST: four messages (one per precedence), bob's ack of FIRST, two refused attempts
    (one on the channel, one naming no channel), and a receipt for the last, so that a signed
    checkpoint covers them all before anyone audits."""
    def send(name: str, precedence: str, text: str) -> list[str]:
        return ["send", "--as", name, "--server", server.url, "--channel", "north-south",
                "--field", f"text={text}", "--precedence", precedence]

    assert (await sent(home, *send("alice", "FLASH", "Unusual activity"))).startswith(
        f"accepted index={FIRST} ")
    await sent(home, *send("alice", "ROUTINE", "Daily summary"))
    await sent(home, *send("bob", "IMMEDIATE", "Request consultation"))
    assert f"understood ack of {FIRST}" in await run_ok(home, "ack", "--as", "bob", "--server",
                                                        server.url, "--index", str(FIRST))
    # `hotline send` checks a body before it leaves; another client may not: the server refuses
    # and logs the attempt (template.invalid on the channel; channel.unknown naming no channel).
    alice = await server.client("alice")
    with pytest.raises(ProtocolViolation) as refused:
        await alice.send(channel="north-south", template="message",
                         body={"text": "x", "colour": "red"})
    assert refused.value.code == "template.invalid"
    with pytest.raises(ProtocolViolation) as elsewhere:  # Client.send refuses it unsent
        await alice.send(channel="elsewhere", template="message", body={"text": "x"})
    assert elsewhere.value.code == "channel.unknown"
    with pytest.raises(ProtocolViolation) as elsewhere:  # a client that sends it anyway
        await alice.submit_envelope(alice.envelope(channel="elsewhere", template="message",
                                                   body={"lang": "en"}))
    assert elsewhere.value.code == "channel.unknown"
    receipt = tmp_path / "last.tlog-proof"
    last = await sent(home, *send("alice", "PRIORITY", "Closing"), "--receipt", str(receipt))
    assert last.startswith(f"accepted index={LAST} ") and "receipt saved" in last


def check_counts(doc: dict[str, Any]) -> None:
    assert doc["version"] == 1 and doc["channel"] == "north-south"
    assert doc["messages"] == {
        "total": 4, "by_precedence": {"FLASH": 1, "IMMEDIATE": 1, "PRIORITY": 1, "ROUTINE": 1},
        "by_template": {"message": {"FLASH": 1, "IMMEDIATE": 1, "PRIORITY": 1, "ROUTINE": 1,
                                    "total": 4}}}
    assert doc["traffic"] == {"acks": 1, "heartbeats": 0, "echoes": 0, "violations": 0}
    rejected = doc["rejected"]
    assert (rejected["total"], rejected["by_party"], rejected["no_channel"]) == (1, {"north": 1}, 1)
    assert list(rejected["by_code"]) == ["template.invalid"]
    assert rejected["by_code"]["template.invalid"]["count"] == 1
    assert "colour" in rejected["by_code"]["template.invalid"]["example"]
    period = doc["period"]
    assert (period["since"], period["until"]) == (None, None)
    assert (period["first_index"], period["last_index"], period["entries"]) == (FIRST, LAST, 6)
    assert doc["overdue"] == {"count": 0, "notices": []}
    compliance = doc["compliance"]
    total = compliance["total"]
    assert total["required"] == sum(total[s] for s in ("on_time", "late", "missing", "pending"))
    assert total["required"] == sum(t["required"] for t in compliance["by_party"].values())
    assert len(compliance["late"]) == total["late"] and len(compliance["missing"]) == total["missing"]
    owed = compliance["late"] + compliance["missing"] + compliance["pending"]
    assert (FIRST, "south") not in {(r["index"], r["party"]) for r in owed}  # bob acked at once


async def test_audit_report_live_and_from_an_export(home: Path, tmp_path: Path) -> None:
    async with running_server(home, **FAST) as server:
        await exchange(home, server, tmp_path)
        await witness_all(home, server.url)
        report = ["audit", "report", "--as", "audrey", "--server", server.url, "--channel",
                  "north-south"]

        text = await run_ok(home, *report)
        assert text.startswith("Log verified: hotline.test, all ")  # what it stands on first
        assert "\nCompliance report for channel north-south\n" in text
        assert "Period    start of the log to now (all times UTC)" in text
        assert f"Log       index {FIRST} to {LAST}: 6 entries of this channel" in text
        assert "Messages: 4\n" in text
        assert "\n  message       1          1         1        1      4\n" in text
        assert "Other traffic: acks 1; agent traffic: heartbeats 0, echoes 0" in text
        assert "Rejected attempts: 1\n" in text and "\n  north         1\n" in text
        assert "\n  template.invalid         1  message: " in text  # an example reason follows
        assert "not counted: 1 in the period naming no channel" in text
        assert max(len(line) for line in text.splitlines()) <= 100

        live = json.loads(await run_ok(home, *report, "--json"))
        check_counts(live)

        # The window: nothing was logged before 2000 or after 2999.
        before = json.loads(await run_ok(home, *report, "--json", "--until", "2000-01-01"))
        assert before["messages"]["total"] == 0 and before["rejected"]["total"] == 0
        assert before["period"]["until"] == "2000-01-01T00:00:00.000Z"
        after = json.loads(await run_ok(home, *report, "--json", "--since", "2999-01-01T00:00:00+02:00"))
        assert after["period"]["since"] == "2998-12-31T22:00:00.000Z"
        assert after["period"]["entries"] == 0

        export = tmp_path / "log.jsonl"
        await run_ok(home, "audit", "export", "--as", "audrey", "--server", server.url, "--out",
                     str(export))

    # The export is a source of its own: no server needed, the same report.
    offline = json.loads(await run_ok(home, "audit", "report", "--as", "audrey", "--channel",
                                      "north-south", "--export", str(export), "--json"))
    check_counts(offline)
    for doc in (live, offline):
        del doc["period"]["now"], doc["period"]["cutoff"]
    assert offline == live

    # A log that does not verify gets no report: entry FIRST altered after it was signed (its
    # sealed text's digest replaced by another).
    lines = export.read_text().splitlines()
    for n, line in enumerate(lines):
        record = json.loads(line)
        if record.get("type") == "entry" and record["index"] == FIRST:
            digests = record["entry"]["envelope"]["sealed"]["digests"]
            digests["text"] = ("B" if digests["text"][0] == "A" else "A") + digests["text"][1:]
            lines[n] = json.dumps(record)
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    failed = await cli(home, "audit", "report", "--as", "audrey", "--channel", "north-south",
                       "--export", str(tampered))
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith(
        f"FAILED: entry {FIRST}: the entry object differs from its leaf bytes"), failed.stderr


async def test_audit_report_refusals(home: Path, tmp_path: Path) -> None:
    async with running_server(home, **FAST) as server:
        await witness_all(home, server.url)
        report = ["audit", "report", "--as", "audrey", "--server", server.url]
        unknown = await cli(home, *report, "--channel", "north-east")
        assert unknown.returncode == 1 and unknown.stdout == ""
        assert "error: channel.unknown: no channel 'north-east'" in unknown.stderr
        assert "(channels: north-south)" in unknown.stderr

        bad_since = await cli(home, *report, "--channel", "north-south", "--since", "yesterday")
        assert bad_since.returncode == 2 and "'--since'" in bad_since.stderr
        assert "not an RFC 3339 time" in bad_since.stderr
        bad_date = await cli(home, *report, "--channel", "north-south", "--until", "2026-02-30")
        assert bad_date.returncode == 2 and "'--until'" in bad_date.stderr
        backwards = await cli(home, *report, "--channel", "north-south", "--since", "2026-11-28",
                              "--until", "2026-11-27")
        assert backwards.returncode == 2 and "'--until'" in backwards.stderr
        assert "must be later than --since" in backwards.stderr
        no_channel = await cli(home, *report)
        assert no_channel.returncode == 2 and "--channel" in no_channel.stderr
