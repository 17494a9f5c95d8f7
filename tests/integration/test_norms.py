"""Issue 4, acceptance 2 and 3: the server enforces the agreed norms. Each violation is refused
with its own code and logged as a ``rejected`` entry; a missed acknowledgement deadline becomes an
``overdue`` entry that connected members receive, a late ack is still accepted and marked late,
and the compliance report lists it. Real server, real sockets, real SQLite file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hotline.audit.report import build_report
from hotline.canonical import dumps, parse
from hotline.client.connection import Client
from hotline.entries import decode, kind_of, to_json
from hotline.envelope import AckKind, Kind
from hotline.errors import ProtocolViolation
from hotline.keyfiles import load_private_key
from hotline.norms.files import load_templates
from hotline.roster import decode_document, sign_document
from hotline.times import format_time
from hotline.wire.frames import Deliver
from tests.conftest import Running, running_server
from tests.integration.test_exchange import deliver_frame
from tests.template_examples import EXAMPLES, Bad, Case

WAIT = 10
PARTIES = ("north", "south", "mediator")

# A template only these tests use: north's liaisons only, two precedences, three per hour, and an
# 'understood' ack due one second after sending (the shortened deadline of acceptance 3).
DRILL = """\
format: 1
id: drill
version: 1
title: Communication drill (test fixture)
basis: >-
  Test fixture, not shipped: an exercise message in the manner of the 1963 hotline's test
  traffic, with a deadline short enough for a test.
senders:
  roles: [liaison]
  parties: [north]
precedence:
  default: ROUTINE
  allowed: [ROUTINE, PRIORITY]
ack:
  kind: understood
  deadline: PT1S
rate:
  max: 3
  per: PT1H
audience: all
fields:
  type: object
  additionalProperties: false
  required: [text]
  properties:
    text: {type: string, minLength: 1, description: What to drill.}
"""


class Clock:
    """The server's clock: real time plus an offset the test moves forward (never back)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def add_drill_agreement(home: Path) -> None:
    """Install the drill template and a version 2 of the channel's agreement that adds it,
    signed by every party's authority (the server logs it at start)."""
    (home / "protocols" / "drill.yaml").write_text(DRILL)
    templates = load_templates(home / "protocols")
    # held by the server, but in no agreement
    (home / "protocols" / "orphan.yaml").write_text(DRILL.replace("id: drill", "id: orphan"))
    signed = parse((home / "roster" / "90-agreement-north-south-v1.json").read_bytes())
    doc = dict(signed["document"], version=2, templates=[t.ref() for t in templates])
    keys = [load_private_key(home / "keys" / f"authority-{p}.pem") for p in PARTIES]
    signed_v2 = sign_document(decode_document(doc), *keys)
    (home / "roster" / "91-agreement-north-south-v2.json").write_text(dumps(signed_v2.to_json()))


def logged(home: Path) -> list[dict[str, Any]]:
    """Every entry of the log, read from the SQLite file the server wrote."""
    with sqlite3.connect(f"file:{home / 'hotline.db'}?mode=ro", uri=True) as db:
        return [parse(leaf) for (leaf,) in db.execute("SELECT leaf FROM entries ORDER BY idx")]


@asynccontextmanager
async def serving(home: Path, clock: Clock | None = None, **env: str) -> AsyncIterator[Running]:
    """The server with a fast deadline sweep, on ``clock`` (real time by default)."""
    async with running_server(home, clock or Clock(),
                              **{"HOTLINE_PROTOCOLS_DEADLINE_SWEEP": "0.05", **env}) as running:
        yield running


async def refused(client: Client, code: str, *, template: str, body: dict[str, Any],
                  precedence: str = "ROUTINE", reply_to: str | None = None) -> str:
    envelope = client.envelope(channel="north-south", template=template, body=body,
                               precedence=precedence, reply_to=reply_to)
    with pytest.raises(ProtocolViolation) as caught:
        await client.submit_envelope(envelope)
    assert caught.value.code == code, caught.value.message
    return envelope.id


def example(template: str, code: str | None = None) -> Case | Bad:
    """A shipped template's example from tests/template_examples.py: valid, or refused with ``code``."""
    for case in EXAMPLES[template](datetime.now(UTC)):
        if (code is None and isinstance(case, Case)) or (isinstance(case, Bad) and case.code == code):
            return case
    raise LookupError((template, code))


async def test_each_violation_is_refused_with_its_own_code_and_logged(home: Path) -> None:
    add_drill_agreement(home)
    async with serving(home) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        agent = await server.client("north-agent")
        refusals = [
            # a notice later than the agreed minimum ahead of the launch window
            await refused(alice, "norm.late_notice", template="launch-notification", precedence="IMMEDIATE",
                          body=example("launch-notification", "norm.late_notice").body),
            # a sender of the wrong party (drill is north's), and of the wrong role
            await refused(bob, "norm.sender_not_allowed", template="drill", body={"text": "x"}),
            await refused(agent, "norm.sender_not_allowed", template="message", body={"text": "x"}),
            # a precedence the template does not allow
            await refused(alice, "norm.precedence_not_allowed", template="drill", precedence="FLASH",
                          body={"text": "x"}),
        ]
        query = await alice.send(channel="north-south", template="unusual-activity-query",
                                 precedence="PRIORITY", body=example("unusual-activity-query").body)
        # a reply with a required field missing
        refusals.append(await refused(bob, "template.invalid", template="unusual-activity-reply",
                                      precedence="PRIORITY", reply_to=query.id,
                                      body={"objectives": "exercise"}))
        # a rate flood: three drills an hour are agreed; the fourth is refused
        for n in range(3):
            await alice.send(channel="north-south", template="drill", body={"text": f"drill {n}"})
        refusals.append(await refused(alice, "norm.rate_limited", template="drill",
                                      body={"text": "drill 3"}))
        # a template the agreement does not name
        refusals.append(await refused(alice, "template.unknown", template="orphan", body={"text": "x"}))
    # a template file edited after the parties signed it
    message = home / "protocols" / "message.yaml"
    message.write_text(message.read_text().replace("maxLength: 16000", "maxLength: 160000"))
    async with serving(home) as server:
        alice = await server.client("alice")
        refusals.append(await refused(alice, "template.mismatch", template="message",
                                      body={"text": "x"}))

    rejected = [e for e in logged(home) if e["kind"] == "rejected"]
    assert [e["code"] for e in rejected] == [
        "norm.late_notice", "norm.sender_not_allowed", "norm.sender_not_allowed",
        "norm.precedence_not_allowed", "template.invalid", "norm.rate_limited",
        "template.unknown", "template.mismatch"]
    assert [e["ref"] for e in rejected] == refusals
    for entry in rejected:  # the refusal names what was wrong, never the refused body
        assert entry["reason"] and "body" not in entry and entry["party"] in PARTIES


async def next_entry(client: Client, kind: str) -> dict[str, Any]:
    """The next delivered entry of ``kind`` (the alert a member's screen would show)."""
    async def wait() -> dict[str, Any]:
        while True:
            frame = await client.deliveries.get()
            if isinstance(frame, Deliver) and kind_of(frame.entry) == kind:
                return to_json(frame.entry)
    return await asyncio.wait_for(wait(), WAIT)


async def test_missed_deadline_is_logged_alerted_and_reported(home: Path) -> None:
    add_drill_agreement(home)
    clock = Clock()
    async with serving(home, clock) as server:
        alice, bob, carol = [await server.client(n) for n in ("alice", "bob", "carol")]
        sent = await alice.send(channel="north-south", template="drill", body={"text": "drill"})
        delivered = await next_entry(bob, "envelope")
        assert delivered["expects"]["ack"] == "understood"
        assert delivered["expects"]["from"] == ["mediator", "south"]
        # the mediator answers in time; south does not
        await carol.ack(carol.verify(deliver_frame(sent.index, delivered)), AckKind.UNDERSTOOD)
        clock.offset += timedelta(seconds=2)  # past the one-second deadline
        alerts = [await next_entry(c, "overdue") for c in (alice, bob, carol)]
        assert all(a == alerts[0] for a in alerts)  # every connected member gets the alert
        overdue = alerts[0]
        assert overdue["entry"] == sent.index and overdue["ref"] == sent.id
        assert overdue["missing"] == ["south"] and overdue["template"] == "drill"
        assert overdue["due"] == delivered["expects"]["due"]
        # a late ack is still accepted, and marked late
        late = await bob.ack(bob.verify(deliver_frame(sent.index, delivered)),
                             AckKind.UNDERSTOOD)
    entries = logged(home)
    assert entries[late.index].get("late") is True
    in_time = [e for e in entries if e["kind"] == "envelope" and e["party"] == "mediator"]
    assert len(in_time) == 1 and "late" not in in_time[0]
    assert sum(e["kind"] == "overdue" for e in entries) == 1  # once, not at every sweep
    report = build_report([decode(e) for e in entries], channel="north-south", since=None, until=None,
                          now=clock()).to_json()
    assert report["overdue"]["count"] == 1


async def change_saved(home: Path, save: str) -> None:
    """Between two runs: lose the saved obligations, or damage them, in whichever database."""
    url = os.environ.get("HOTLINE_STORE_URL")
    if url is None:
        with sqlite3.connect(home / "hotline.db") as db:
            (data,) = db.execute("SELECT data FROM saved_state").fetchone()
            if save == "lost":
                db.execute("DELETE FROM saved_state")
            elif save == "damaged":  # one byte changed
                db.execute("UPDATE saved_state SET data = ?", (data[:-1] + bytes([data[-1] ^ 1]),))
            else:  # edited in as text
                db.execute("UPDATE saved_state SET data = ?", (data.decode(),))
        return
    conn = await asyncpg.connect(url)
    try:
        data = await conn.fetchval("SELECT data FROM saved_state")
        if save == "lost":
            await conn.execute("DELETE FROM saved_state")
        else:
            await conn.execute("UPDATE saved_state SET data = $1", data[:-1] + bytes([data[-1] ^ 1]))
    finally:
        await conn.close()


@pytest.mark.both_stores
@pytest.mark.parametrize("save", ["kept", "lost", "damaged", "text"])
async def test_deadlines_survive_a_restart(home: Path, save: str, store_engine: str) -> None:
    """A deadline that passes while the server is down is still noticed after the restart, and
    the rate window holds: from the state saved at the stop, or, with that save lost or damaged
    (its MAC fails), from the log's recent window, with the same outcome."""
    if save == "text" and store_engine == "postgres":
        pytest.skip("a bytea column holds no text")
    add_drill_agreement(home)
    clock = Clock()
    async with serving(home, clock) as server:
        alice, agent = await server.client("alice"), await server.client("north-agent")
        answered = await alice.send(channel="north-south", template="drill", body={"text": "drill 1"})
        for name in ("bob", "carol"):  # answered in full before the restart: never overdue
            member = await server.client(name)
            await member.ack(await member.fetch(answered.index), AckKind.UNDERSTOOD)
        for seq in range(20):  # heartbeats between: the replay passes them by
            await agent.submit_envelope(agent.envelope(
                channel="north-south", template="heartbeat", kind=Kind.HEARTBEAT,
                body={"seq": seq, "sent": format_time(clock())}))
        sent = await alice.send(channel="north-south", template="drill", body={"text": "drill 2"})
        assert server.hotline.restored_from is None  # a first start: nothing saved yet
        size = await server.hotline.store.size()
    if save != "kept":
        await change_saved(home, save)
    clock.offset += timedelta(seconds=5)
    async with serving(home, clock) as server:
        assert server.hotline.restored_from == (size if save == "kept" else None)
        bob = await server.client("bob")
        await bob.resume("north-south", sent.index)
        overdue = await next_entry(bob, "overdue")
        assert overdue["entry"] == sent.index and overdue["missing"] == ["mediator", "south"]
        # the rate window came back too: 3 drills an hour, two sent before the restart
        alice = await server.client("alice")
        await alice.send(channel="north-south", template="drill", body={"text": "drill 3"})
        await refused(alice, "norm.rate_limited", template="drill", body={"text": "drill 4"})
    if store_engine == "sqlite":
        assert [e["entry"] for e in logged(home) if e["kind"] == "overdue"] == [sent.index]


async def test_humanitarian_notices_are_never_refused_for_rate(home: Path) -> None:
    """Every other liaison template has a rate; humanitarian notices have none, whatever the flood."""
    templates = load_templates(home / "protocols")
    assert templates.latest("humanitarian-notice").rate is None  # type: ignore[union-attr]
    limited = [t for t in templates if t.rate is not None]
    busiest = max(t.rate.max for t in limited if t.rate is not None)
    body = example("humanitarian-notice").body
    async with serving(home) as server:
        alice = await server.client("alice")
        for _ in range(busiest + 5):
            await alice.send(channel="north-south", template="humanitarian-notice", body=body,
                             precedence="IMMEDIATE")
    assert not [e for e in logged(home) if e["kind"] == "rejected"]


async def test_a_resend_does_not_count_against_the_rate(home: Path) -> None:
    """Three drills an hour are agreed: resending one (after a lost `accepted`) is not a fourth."""
    add_drill_agreement(home)
    async with serving(home) as server:
        alice = await server.client("alice")
        first = alice.envelope(channel="north-south", template="drill", body={"text": "drill 0"})
        original = await alice.submit_envelope(first)
        again = await alice.submit_envelope(first)
        assert again.index == original.index and again.is_duplicate is True
        for n in (1, 2):
            await alice.send(channel="north-south", template="drill", body={"text": f"drill {n}"})
        await refused(alice, "norm.rate_limited", template="drill", body={"text": "drill 3"})
