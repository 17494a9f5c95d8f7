"""``hotline audit availability`` as an auditor runs it, against the real server and its export.

Acceptance 5 of the issue end to end: a deployment made two hours ago holds half an hour of the
agents' signed heartbeats and echoes with an injected outage (south's agent stopped for three
minutes) and a final one (every agent stopped), and the ``health`` entries a real
:class:`hotline.health.ChannelHealth` swept every second gives for them, written to the
server's store exactly as the server logs entries (the server's own clock cannot be wound back
half an hour, and a test does not wait that long). The real server then starts on that store,
signs a checkpoint over it and serves it; audrey verifies the log and reports, live and from an
export, and the report lists both outages within one interval of the injected times. A
tampered export gets no report. Then, on a live server: the agents' heartbeats and echoes sent
through real connections are counted and timed, and the usage errors.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hotline.canonical import parse
from hotline.client.profile import Profile
from hotline.deployment import init_deployment
from hotline.entries import PENDING, EnvelopeEntry, roster_entry
from hotline.envelope import Envelope, Kind, new_envelope_id
from hotline.health import ChannelHealth, Policy
from hotline.keyfiles import load_private_key
from hotline.server.service import document_id
from hotline.store import open_store, row_mac_key
from hotline.times import format_time, parse_time
from tests.conftest import Running, hotline_cli, running_server, witness_all

pytestmark = pytest.mark.slow  # real servers or child processes in every test

FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
WAIT = 10  # seconds: a safety net against hangs, never a synchronisation
CHANNEL = "north-south"
PARTIES = ("north", "south", "mediator")
INTERVAL = 10  # the demo agreement's heartbeat interval (grace 10 s too)
SOUTH_SILENT = (300.0, 480.0)  # seconds after the synthetic log's start: south's agent stopped
ALL_SILENT = 1500.0  # every agent stopped: still DOWN when audited
LENGTH = 1800.0


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(hotline_cli, home, *args)


async def run_ok(home: Path, *args: str) -> str:
    result = await cli(home, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


# -- a log with injected outages, written as the server writes it ---------------------------------

async def write_history(home: Path, start: datetime) -> None:
    """The roster documents at ``start``, then half an hour of heartbeats (every INTERVAL, party
    n at +0.1 n s) echoed 50-70 ms later by the other agents, south silent in SOUTH_SILENT,
    every agent silent from ALL_SILENT, and the health sweep every second."""
    # as the server writes it: each row authenticated with the key derived from the log key
    store = await open_store(home / "hotline.db",
                             mac_key=row_mac_key(load_private_key(home / "keys" / "log.pem")))
    try:
        for n, path in enumerate(sorted((home / "roster").glob("*.json"))):
            signed = parse(path.read_bytes())
            entry = roster_entry(signed, time=format_time(start + timedelta(milliseconds=n)))
            await store.append(entry, envelope_id=document_id(signed))
        keys = {p: Profile.load(home, f"{p}-agent").signing_key() for p in PARTIES}
        health = ChannelHealth(CHANNEL, PARTIES, Policy.of(interval=INTERVAL, grace=INTERVAL),
                               started=start)
        made = 0

        async def envelope(at: datetime, party: str, kind: Kind, body: dict[str, Any],
                           reply_to: str | None = None) -> EnvelopeEntry:
            nonlocal made
            made += 1
            env = Envelope.build(id=new_envelope_id(made.to_bytes(16, "big")), kind=kind,
                                 channel=CHANNEL, sender=f"{party}-agent", template=kind.value,
                                 precedence="ROUTINE", created=at, body=body, reply_to=reply_to)
            entry = EnvelopeEntry(index=PENDING, time=format_time(at), channel=CHANNEL, party=party,
                                  envelope=env, sig=env.sign(keys[party]))
            logged = (await store.append(entry, envelope_id=env.id)).stored.entry
            assert isinstance(logged, EnvelopeEntry)
            health.observe(logged)
            return logged

        def beating(party: str, second: float) -> bool:
            south_out = party == "south" and SOUTH_SILENT[0] <= second < SOUTH_SILENT[1]
            return not south_out and second < ALL_SILENT

        seq = dict.fromkeys(PARTIES, 0)
        for tick in range(int(LENGTH)):
            second = float(tick)
            if tick % INTERVAL == 0:
                for n, party in enumerate(PARTIES):
                    if not beating(party, second):
                        continue
                    sent = start + timedelta(seconds=second + 0.1 * n)
                    seq[party] += 1
                    beat = await envelope(sent, party, Kind.HEARTBEAT,
                                          {"seq": seq[party], "sent": format_time(sent)})
                    for m, other in enumerate(PARTIES):
                        if other != party and beating(other, second):
                            at = sent + timedelta(milliseconds=50 + 10 * m)
                            await envelope(at, other, Kind.ECHO, {"received": format_time(at)},
                                           reply_to=beat.envelope.id)
            now = start + timedelta(seconds=second + 0.5)
            transition = health.evaluate(now)
            if transition is not None:
                await store.append(transition.entry(time=now))
    finally:
        await store.close()


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, datetime]:
    """A deployment made two hours ago, holding the synthetic history from an hour ago."""
    home = tmp_path / "home"
    made = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    init_deployment(home, parties=list(PARTIES), heartbeat_interval=INTERVAL, port=0,
                    origin="hotline.test", force=False, now=made)
    start = made + timedelta(hours=1)
    asyncio.run(write_history(home, start))
    return home, start


def near(text: str | None, start: datetime, second: float) -> bool:
    """``text`` is within one interval of ``second`` after ``start``."""
    assert text is not None
    return abs(parse_time(text) - (start + timedelta(seconds=second))) <= timedelta(seconds=INTERVAL)


async def test_availability_reports_the_injected_outages_live_and_from_an_export(
        history: tuple[Path, datetime], tmp_path: Path) -> None:
    home, start = history
    report = ["audit", "availability", "--as", "audrey", "--channel", CHANNEL]
    async with running_server(home, **FAST) as server:
        await witness_all(home, server.url)
        text = await run_ok(home, *report, "--server", server.url)
        live = json.loads(await run_ok(home, *report, "--server", server.url, "--json"))
        window = json.loads(await run_ok(
            home, *report, "--server", server.url, "--json",
            "--since", format_time(start + timedelta(seconds=500)),
            "--until", format_time(start + timedelta(seconds=900))))
        export = tmp_path / "log.jsonl"
        await run_ok(home, "audit", "export", "--as", "audrey", "--server", server.url,
                     "--out", str(export))

    outages = live["outages"]
    assert len(outages) == 2, outages
    south, final = outages
    assert near(south["began"], start, SOUTH_SILENT[0]) and near(south["end"], start, SOUTH_SILENT[1])
    assert "south silent" in south["cause"] and not south["ongoing"]
    assert south["attribution"] == "party" and south["silent"] == []
    assert near(final["began"], start, ALL_SILENT) and final["ongoing"] and final["end"] is None
    assert all(f"{p} silent" in final["cause"] for p in PARTIES)
    # every agent fell silent at once: not one party's fault but the server's, its host's or
    # the network's to it
    assert final["attribution"] == "host" and final["silent"] == sorted(PARTIES)
    states = live["states"]
    assert sum(s["ms"] for s in states.values()) == live["period"]["length_ms"]
    # each outage was DEGRADED (late) first, from its first missed heartbeat until DOWN was logged
    assert states["UNKNOWN"]["ms"] < 1000 and states["DEGRADED"]["ms"] > 0
    for outage in (south, final):
        degraded = next(s for s in live["timeline"] if s["end"] == outage["start"])
        assert degraded["state"] == "DEGRADED" and degraded["start"] == outage["began"]
    assert live["heartbeat"] == {"interval_s": INTERVAL, "grace_s": INTERVAL}
    by_party = live["traffic"]["by_party"]
    assert list(by_party) == ["mediator", "north", "south"]
    assert by_party["north"]["heartbeats"] == 150 and by_party["south"]["heartbeats"] == 132
    assert by_party["south"]["longest_gap"]["length_ms"] == 190_000  # 290.1 .. 480.1
    assert live["traffic"]["longest_gap"]["party"] == "south"
    trip = live["round_trip"]
    assert trip["count"] == live["traffic"]["echoes"] > 0
    assert 50 <= trip["p50_ms"] <= trip["p90_ms"] <= trip["p99_ms"] <= trip["max_ms"] <= 70
    agreement = start + timedelta(milliseconds=7)  # the eighth roster document
    assert live["period"]["since"] == format_time(agreement)  # the channel's first entry

    assert text.startswith("Log verified: hotline.test, all ")
    assert f"\nAvailability report for channel {CHANNEL}\n" in text
    assert "Outages (DOWN): 2\n" in text and "ongoing" in text
    assert "cause: south silent: no heartbeat since" in text
    assert "fault: the server or its host (or the network to it): every party fell silent" in text
    assert max(len(line) for line in text.splitlines()) <= 100

    # Windows: one between the outages; one that ends during south's (its real end is shown).
    assert window["outages"] == [] and window["transitions"] == 0
    assert window["states"]["UP"]["ms"] == window["period"]["length_ms"] == 400_000
    early = json.loads(await run_ok(home, *report, "--export", str(export), "--json",
                                    "--until", format_time(start + timedelta(seconds=400))))
    (cut,) = early["outages"]
    assert cut["end"] == south["end"] and not cut["ongoing"]
    assert early["states"]["DOWN"]["ms"] < south["length_ms"]

    # The export is a source of its own: no server needed, the same report.
    offline = json.loads(await run_ok(home, *report, "--export", str(export), "--json"))
    for doc in (live, offline):
        del doc["period"]["now"]
    assert offline == live

    # A log that does not verify gets no report: a health entry's date moved after it was signed.
    lines = export.read_text().splitlines()
    for n, line in enumerate(lines):
        record = json.loads(line)
        if record.get("type") == "entry" and record.get("entry", {}).get("kind") == "health":
            record["entry"]["since"] = record["entry"]["time"]
            lines[n] = json.dumps(record)
            break
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    failed = await cli(home, *report, "--export", str(tampered))
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("FAILED: entry ") and "differs from its leaf bytes" in failed.stderr


# -- a live server: heartbeats through real connections; usage errors ------------------------------

async def beat_and_echo(server: Running, rounds: int) -> int:
    """Each agent beats ``rounds`` times; every other agent echoes each heartbeat. Returns the
    index of the last entry, once a signed checkpoint covers it."""
    agents = {p: await server.client(f"{p}-agent") for p in PARTIES}
    last = -1
    for n in range(rounds):
        for party, agent in agents.items():
            beat = agent.envelope(channel=CHANNEL, template="heartbeat", kind=Kind.HEARTBEAT,
                                  body={"seq": n, "sent": format_time(datetime.now(UTC))})
            await agent.submit_envelope(beat)
            for other, answering in agents.items():
                if other != party:
                    echo = answering.envelope(
                        channel=CHANNEL, template="echo", kind=Kind.ECHO, reply_to=beat.id,
                        body={"received": format_time(datetime.now(UTC))})
                    last = (await answering.submit_envelope(echo)).index
    await asyncio.wait_for(covered(server, last), WAIT)
    return last


async def covered(server: Running, index: int) -> None:
    """Until the log's signed checkpoint covers entry ``index`` (agents get no receipts)."""
    url = server.url.replace("ws://", "http://").removesuffix("/v1/ws") + "/v1/log/checkpoint"

    def size() -> int:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.read().decode().splitlines()[1])

    while await asyncio.to_thread(size) <= index:
        await asyncio.sleep(0.05)


async def test_availability_counts_live_heartbeats_and_echoes(home: Path) -> None:
    async with running_server(home, **FAST) as server:
        await beat_and_echo(server, rounds=3)
        await witness_all(home, server.url)
        doc = json.loads(await run_ok(home, "audit", "availability", "--as", "audrey",
                                      "--server", server.url, "--channel", CHANNEL, "--json"))
    traffic = doc["traffic"]
    assert {p: (t["heartbeats"], t["echoes"]) for p, t in traffic["by_party"].items()} == {
        p: (3, 6) for p in PARTIES}
    assert doc["round_trip"]["count"] == 18 and doc["round_trip"]["max_ms"] is not None
    assert sum(s["ms"] for s in doc["states"].values()) == doc["period"]["length_ms"]
    assert doc["heartbeat"]["interval_s"] == 10


async def test_availability_refusals(home: Path) -> None:
    async with running_server(home, **FAST) as server:
        await witness_all(home, server.url)
        report = ["audit", "availability", "--as", "audrey", "--server", server.url]
        unknown = await cli(home, *report, "--channel", "north-east")
        assert unknown.returncode == 1 and unknown.stdout == ""
        assert "error: channel.unknown: no channel 'north-east'" in unknown.stderr
        bad_since = await cli(home, *report, "--channel", CHANNEL, "--since", "yesterday")
        assert bad_since.returncode == 2 and "'--since'" in bad_since.stderr
        backwards = await cli(home, *report, "--channel", CHANNEL, "--since", "2026-11-28",
                              "--until", "2026-11-27")
        assert backwards.returncode == 2 and "must be later than --since" in backwards.stderr
        no_channel = await cli(home, *report)
        assert no_channel.returncode == 2 and "--channel" in no_channel.stderr
