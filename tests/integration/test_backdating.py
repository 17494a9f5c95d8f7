"""Issue 11, defect 5: every time-based norm uses the server's log time, never the sender's own
``created``; and the auditor checks the same. Real server, real sockets, a real export.

The attack: the 1988 Launch Notification Agreement (template ``launch-notification``) requires 24
hours' notice. A notice sent 23 hours before the launch window, but dated two days earlier by its
sender, passed (the notice was measured from ``created``), and the audit did not flag it.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hotline.audit.records import decode_entry
from hotline.audit.verify import AuditFailure, Auditor
from hotline.canonical import canonical_bytes
from hotline.client.profile import Profile
from hotline.envelope import Envelope, Kind, new_envelope_id
from hotline.errors import ProtocolViolation
from hotline.keyfiles import load_private_key
from hotline.norms.files import load_templates
from hotline.times import format_time, parse_time
from hotline.tlog import Checkpoint, Frontier, leaf_hash, sign_checkpoint
from tests.conftest import hotline_cli, running_server
from tests.integration.test_norms import Clock, logged
from tests.integration.test_tamper import entry_record, load_export, save_export
from tests.template_examples import EXAMPLES, Case

WAIT = 10  # seconds: a safety net against hangs, never a synchronisation
CHANNEL = "north-south"
BACKDATED = timedelta(days=2)


def notice(*, starts: datetime) -> dict[str, Any]:
    """A valid launch notification body (the shipped example) whose window opens at ``starts``."""
    case = next(e for e in EXAMPLES["launch-notification"](starts) if isinstance(e, Case))
    return {**case.body, "window": {"start": format_time(starts),
                                    "end": format_time(starts + timedelta(hours=4))}}


def envelope(*, created: datetime, starts: datetime, seed: int) -> Envelope:
    return Envelope.build(id=new_envelope_id(bytes([seed]) * 16), kind=Kind.MESSAGE,
                          channel=CHANNEL, sender="alice", template="launch-notification",
                          precedence="IMMEDIATE", created=created, body=notice(starts=starts))


async def test_a_backdated_notice_is_measured_from_the_log_time(home: Path) -> None:
    clock = Clock()
    async with running_server(home, clock) as server:
        alice = await server.client("alice")  # authenticated on today's clock
        # Three days on (alice's key, enrolled today for a year, is valid at every moment here):
        clock.offset = timedelta(days=3)
        now = clock()
        late = envelope(created=now - BACKDATED, starts=now + timedelta(hours=23), seed=1)
        assert late.body["window"]["start"] > format_time(late.created_at + timedelta(hours=24))
        with pytest.raises(ProtocolViolation) as refused:
            await alice.submit_envelope(late)
        assert refused.value.code == "norm.late_notice", refused.value.message
        # backdating is not what is refused: 25 hours' notice from the log time passes
        timely = envelope(created=now - BACKDATED, starts=now + timedelta(hours=25), seed=2)
        accepted = await alice.submit_envelope(timely)
    entries = logged(home)
    rejected = [e for e in entries if e["kind"] == "rejected"]
    assert [(e["code"], e["ref"]) for e in rejected] == [("norm.late_notice", late.id)]
    assert late.body["window"]["start"] not in rejected[0]["reason"]  # the field, not the value
    assert entries[accepted.index]["envelope"]["id"] == timely.id


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(hotline_cli, home, *args)


def extended(export: Path, out: Path, entry: dict[str, Any], home: Path) -> None:
    """``export`` with ``entry`` appended as the host holding the log key would write it: a leaf
    no server check saw, under a checkpoint the host signs for the new size."""
    records = load_export(export)
    head = [r for r in records if r["type"] != "entry"]
    entries = [r for r in records if r["type"] == "entry"]
    entry = {**entry, "index": len(entries)}
    frontier = Frontier()
    for record in entries:
        frontier.append(leaf_hash(base64.b64decode(record["leaf"])) if "leaf" in record
                        else base64.b64decode(record["hash"]))
    frontier.append(leaf_hash(canonical_bytes(entry)))
    log_key = load_private_key(home / "keys" / "log.pem")
    note = sign_checkpoint(Checkpoint("hotline.test", frontier.size, frontier.root()), log_key)
    save_export(out, [*head, {"type": "checkpoint", "size": frontier.size, "note": note},
                      *entries, entry_record(entry)])


def entry_for(env: Envelope, *, time: datetime, home: Path) -> dict[str, Any]:
    key = Profile.load(home, "alice").signing_key()
    return {"time": format_time(time), "kind": "envelope", "channel": CHANNEL, "party": "north",
            "envelope": env.to_json(), "sig": env.sign(key)}


def audited(home: Path, export: Path) -> Auditor:
    """Every checkpoint and entry of ``export`` through the auditor (as ``audit verify`` feeds
    them), holding the deployment's templates."""
    profile = Profile.load(home, "audrey")
    assert profile.log_key is not None
    auditor = Auditor(log_key=profile.log_key, authorities=profile.authorities,
                      templates=load_templates(home / "protocols"))
    records = load_export(export)
    for record in records:
        if record["type"] == "checkpoint":
            auditor.add_checkpoint(record["note"], source="the log")
    for record in records:
        if record["type"] == "entry":
            auditor.add_entry(decode_entry({k: v for k, v in record.items() if k != "type"}))
    return auditor


@pytest.mark.slow
async def test_the_auditor_flags_a_backdated_notice_in_the_log(home: Path, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        alice = await server.client("alice")
        sent = await alice.send(channel=CHANNEL, template="message", body={"text": "before"})
        await asyncio.wait_for(alice.receipt(sent.index), WAIT)  # a checkpoint covers it
        exported = await cli(home, "audit", "export", "--as", "audrey", "--server", server.url,
                             "--out", str(export))
        assert exported.returncode == 0, exported.stderr
    # Logged three days from now (alice's key is valid then), dated two days before that.
    at = parse_time(logged(home)[-1]["time"]) + timedelta(days=3)
    backdated, honest = tmp_path / "backdated.jsonl", tmp_path / "honest.jsonl"
    extended(export, backdated, entry_for(envelope(created=at - BACKDATED, starts=at + timedelta(hours=23),
                                                   seed=3), time=at, home=home), home)
    extended(export, honest, entry_for(envelope(created=at - BACKDATED, starts=at + timedelta(hours=25),
                                                seed=4), time=at, home=home), home)

    audited(home, honest)  # the same entry with 25 hours' notice from its log time passes
    with pytest.raises(AuditFailure) as caught:
        audited(home, backdated)
    index = sent.index + 1
    assert caught.value.message.startswith(f"entry {index} (envelope): rule launch-notice-24h: "
                                           "body.window.start must be at least 1 d after the time the "
                                           "server logs the envelope"), \
        caught.value.message

    result = await cli(home, "audit", "verify", "--as", "audrey", "--export", str(backdated),
                       "--state", str(tmp_path / "state.json"))
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith(f"FAILED: entry {index} (envelope): rule launch-notice-24h: "), \
        result.stderr
