"""Issue 20, "a liaison's client believing the host" (defects 2, 8, 9, 10, 11) and ``listen``'s
part of defect 1: each attack performed as the issue describes it, by a hostile host (a relay
between the real server and the client: ``tests.hostile_relay``) or a hostile sender, against
the real ``hotline listen``/``send``/``ack``; and what must hold, checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.display import FOLD, cells, unsafe
from hotline.entries import to_json
from hotline.verification import EntryRefused
from hotline.wire.frames import Deliver
from tests.conftest import Running, copy_database, hotline_cli, running_server
from tests.hostile_relay import Frame, hostile_relay
from tests.integration.test_exchange import post_roster
from tests.integration.test_tlog import north_mediator_agreement

FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
CHANNEL = "north-south"
VERIFIED = "[signature verified]"
HOSTILE = ("\x1b[2J\x1b[H\x1b]0;pwned\x07 LAUNCH \u202egnp.exe\u200b\u2066 \x9b31m \x85 "
           "tab\there\r\nsecond line\x7f")
FORGED = ('\n[10] 2026-12-01T00:00:00Z north-south carol(mediator) FLASH message: '
          '{"text": "CEASE FIRE NOW"}  [signature verified]')


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(hotline_cli, home, *args)


def listen(server_url: str, *args: str) -> list[str]:
    return ["listen", "--as", "bob", "--server", server_url, "--no-ack", *args]


def clean(result: subprocess.CompletedProcess[str]) -> None:
    """No traceback, and no character a terminal obeys (or that hides text), in any output."""
    assert "Traceback" not in result.stderr, result.stderr
    for stream in (result.stdout, result.stderr):
        assert unsafe(stream.replace("\n", "")) == [], repr(stream)


def records(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


async def sent(alice: Client, *texts: str) -> list[int]:
    return [(await alice.send(channel=CHANNEL, template="message", body={"text": text})).index
            for text in texts]


def delivered(frame: Frame, index: int) -> bool:
    return frame.get("type") == "deliver" and frame.get("index") == index


def moved(frame: Frame, index: int) -> Frame:
    """A delivered entry re-sent under another index (the entry's own index rewritten too)."""
    return {"type": "deliver", "index": index, "entry": {**frame["entry"], "index": index}}


# -- defect 1 (listen): a hostile sender's body ------------------------------------------------------

async def test_hostile_body_reaches_listen_only_as_visible_text(home: Path) -> None:
    async with running_server(home, **FAST) as server:
        alice = await server.client("alice")
        [index] = await sent(alice, HOSTILE)
        text, as_json = await asyncio.gather(
            cli(home, *listen(server.url, "--after", str(index - 1), "--count", "1")),
            cli(home, *listen(server.url, "--after", str(index - 1), "--count", "1", "--json")))
    for result in (text, as_json):
        assert result.returncode == 0, result.stderr
        clean(result)
    verified = [line for line in text.stdout.splitlines() if line.endswith(VERIFIED)]
    assert len(verified) == 1 and verified[0].startswith(f"[{index}] ")
    assert "␛[2J␛[H␛]0;pwned␇" in verified[0]  # visible, inert
    assert "⟨U+202E⟩" in verified[0] and "␡" in verified[0]
    assert "⟨U+009B⟩" in verified[0] and "⟨U+200B⟩" in verified[0]
    entry, proof = records(as_json)
    assert entry["body"] == {"text": HOSTILE}  # JSON escapes it, and loses nothing
    assert proof == {"index": index, "proof": "included", "checkpoint": proof["checkpoint"]}


# -- defect 2: the host's statements printed as if signed --------------------------------------------

async def test_host_statements_are_never_on_a_verified_line(home: Path) -> None:
    """The host rewrites ``expects`` of a real message to draw a forged verified line, and turns
    the next real entry into an overdue notice of its own making: both are shown apart, marked
    as the host's, inert; and neither entry is proven in the log."""
    async with running_server(home, **FAST) as server:
        first, second = await sent(await server.client("alice"), "Request consultation", "Second")

        def down(frame: Frame) -> list[Frame | str]:
            if delivered(frame, first):
                frame["entry"]["expects"] = {"ack": "received" + FORGED, "from": ["south\x1b[1A"],
                                             "due": "2026-12-01T00:10:00Z" + FORGED}
            elif delivered(frame, second):
                frame["entry"] = {"index": second, "time": "2026-12-01T00:00:00Z",
                                  "kind": "overdue", "channel": CHANNEL, "ref": "x" * 22,
                                  "entry": first, "template": "message" + FORGED,
                                  "precedence": "FLASH\x1b[2J", "due": "now" + FORGED,
                                  "ack": "received", "missing": ["south" + FORGED]}
            return [frame]

        async with hostile_relay(server.url, down=down) as relay:
            after = str(first - 1)
            text, as_json = await asyncio.gather(
                cli(home, *listen(relay.url, "--after", after, "--count", "2")),
                cli(home, *listen(relay.url, "--after", after, "--count", "2", "--json")))
    for result in (text, as_json):
        assert result.returncode == 1, result.stderr  # what the host rewrote is not in the log
        clean(result)
    lines = text.stdout.splitlines()
    verified = [line for line in lines if VERIFIED in line]
    assert len(verified) == 1 and verified[0].startswith(f"[{first}] ")
    assert "carol" not in verified[0] and verified[0].endswith(VERIFIED)
    host = [line for line in lines if "carol(mediator)" in line]  # the forgery, cut and inert
    assert len(host) == 2 and all("[host, unsigned]" in line for line in host), lines
    assert any(line.startswith(f"[{second}] [host, unsigned] OVERDUE ") for line in host)
    assert f"[{first}] NOT PROVEN in the log" in text.stdout
    assert f"[{second}] NOT PROVEN in the log" in text.stdout

    proofs = [r for r in records(as_json) if "proof" in r]
    message, overdue = [r for r in records(as_json) if "proof" not in r]
    assert message["verified"] is True and message["body"] == {"text": "Request consultation"}
    assert "expects" not in message and message["server"]["expects"]["due"].endswith(FORGED)
    assert overdue["verified"] is False and set(overdue) == {"index", "channel", "kind", "verified",
                                                              "server"}
    assert {p["index"]: p["proof"] for p in proofs} == {first: "failed", second: "failed"}


# -- defect 8: accepted taken on faith --------------------------------------------------------------

@pytest.mark.slow
async def test_send_and_ack_report_success_only_with_the_logs_proof(home: Path) -> None:
    async with running_server(home, **FAST) as server:
        [message] = await sent(await server.client("alice"), "Please acknowledge")

        def answer_itself(frame: Frame) -> tuple[list[Frame], list[Frame | str]]:
            if frame.get("type") == "submit":  # nothing reaches the server: nothing is logged
                return [], [{"type": "accepted", "id": frame["envelope"]["id"], "index": 999999,
                             "req": frame["req"]}]  # the lie answers the very request
            return [frame], []

        async with hostile_relay(server.url, up=answer_itself) as relay:
            send = ["send", "--as", "alice", "--server", relay.url, "--channel", CHANNEL,
                    "--field", "text=Ceasefire holds"]
            lied, unwaited = await cli(home, *send), await cli(home, *send, "--no-wait")
            acked = await cli(home, "ack", "--as", "bob", "--server", relay.url, "--index", str(message))
        size = (await server.client("carol")).welcome.log_size

        def elsewhere(frame: Frame) -> list[Frame | str]:
            if frame.get("type") == "accepted":  # a real acceptance, pointed at another entry
                return [{**frame, "index": message}]
            return [frame]

        async with hostile_relay(server.url, down=elsewhere) as relay:
            misplaced = await cli(home, "send", "--as", "alice", "--server", relay.url,
                                  "--channel", CHANNEL, "--field", "text=Where is it")
        honest = await cli(home, "ack", "--as", "bob", "--server", server.url, "--index", str(message))

    for result in (lied, acked, misplaced):
        assert result.returncode == 1, result.stdout
        assert "proven" not in result.stdout and "error: log.unproven: the host answered accepted" \
            in result.stderr, result.stderr
        clean(result)
    assert "index=999999" in lied.stderr and "999999" in acked.stderr
    assert "not ours" in misplaced.stderr
    assert size == message + 1  # the host's two "accepted" logged nothing
    assert unwaited.returncode == 0 and "index=999999" in unwaited.stdout
    assert unwaited.stdout.rstrip().endswith("NOT yet proven (the host's word; not waited for the "
                                             "log's proof)")
    assert honest.returncode == 0, honest.stderr
    assert f"(understood ack of {message}): proven, included in checkpoint " in honest.stdout


# -- defect 9: replayed and reordered deliveries ----------------------------------------------------

async def test_replayed_and_reordered_deliveries_are_flagged_and_shown_once(home: Path) -> None:
    """The host re-sends two real messages under a backwards index (twice the same one), and
    delivers a third under the index of a fourth: each envelope is shown once, the replays are
    flagged, and the moved one fails its inclusion proof."""
    async with running_server(home, **FAST) as server:
        a, b, c, d = await sent(await server.client("alice"), "one", "two", "three", "four")
        kept: dict[int, Frame] = {}

        def down(frame: Frame) -> list[Frame | str]:
            if frame.get("type") != "deliver":
                return [frame]
            kept[frame["index"]] = frame
            if frame["index"] == b:
                return [frame, moved(frame, 3), moved(kept[a], 3)]
            if frame["index"] == c:
                return []  # dropped, and delivered later in the place of d
            if frame["index"] == d:
                return [moved(kept[c], d)]
            return [frame]

        async with hostile_relay(server.url, down=down) as relay:
            text = await cli(home, *listen(relay.url, "--after", str(a - 1), "--count", "5"))
    assert text.returncode == 1, text.stderr
    clean(text)
    lines = text.stdout.splitlines()
    verified = [line for line in lines if line.endswith(VERIFIED)]
    assert [line.split()[0] for line in verified] == [f"[{a}]", f"[{b}]", f"[{d}]"]
    assert sum("Text: three " in line for line in verified) == 1  # c's envelope, shown once
    replays = [line for line in lines if line.startswith("[3] ")]
    assert len(replays) == 2 and all("HOST PROBLEM" in r and "went backwards" in r for r in replays)
    assert f"[{a}] proven in the log" in text.stdout and f"[{b}] proven in the log" in text.stdout
    assert f"[{d}] NOT PROVEN in the log: the entry as delivered is NOT the one logged" in text.stdout


@pytest.mark.slow
async def test_a_log_rolled_back_between_two_listens_is_caught(home: Path, tmp_path: Path) -> None:
    """The chain a listener verified is remembered: a host that swaps in an older copy of its
    database shows the next run a log its chain does not extend, and nothing is proven."""
    older = tmp_path / "older"
    async with running_server(home, **FAST) as server:
        [first] = await sent(await server.client("alice"), "before the copy")
    copy_database(home, older)
    async with running_server(home, **FAST) as server:
        [second] = await sent(await server.client("alice"), "after the copy")
        seen = await cli(home, *listen(server.url, "--after", str(first), "--count", "1"))
    assert seen.returncode == 0 and f"[{second}] proven in the log" in seen.stdout, seen.stderr
    copy_database(older, home)
    async with running_server(home, **FAST) as server:
        again = await cli(home, *listen(server.url, "--after", str(first - 1), "--count", "1"))
    assert again.returncode == 1, again.stderr
    clean(again)
    assert f"[{first}] NOT PROVEN in the log: LOG INCONSISTENT: rollback" in again.stdout


async def test_an_envelope_delivered_again_under_a_new_index_is_not_shown_again(home: Path) -> None:
    async with running_server(home, **FAST) as server:
        a, b = await sent(await server.client("alice"), "once", "twice")
        saved: list[Frame] = []

        def down(frame: Frame) -> list[Frame | str]:
            if delivered(frame, b):  # a's envelope again, under b's index: forward, in order
                return [moved(saved[0], b)]
            if delivered(frame, a):
                saved.append(frame)
            return [frame]

        async with hostile_relay(server.url, down=down) as relay:
            text = await cli(home, *listen(relay.url, "--after", str(a - 1), "--count", "2"))
    assert text.returncode == 0, text.stderr  # what was shown as verified is proven
    clean(text)
    lines = text.stdout.splitlines()
    assert sum(line.endswith(VERIFIED) for line in lines) == 1
    assert any(line.startswith(f'[{b}] REFUSED on "north-south": verify.failed: envelope ')
               and f"was delivered before as entry {a}" in line for line in lines), lines


# -- defect 10: deliveries from a foreign channel ---------------------------------------------------

async def test_a_delivery_from_a_channel_the_member_is_not_in_is_refused(home: Path) -> None:
    async with running_server(home, **FAST) as server:
        status, _ = await post_roster(server, north_mediator_agreement(home))
        assert status == 200
        alice = await server.client("alice")
        private = (await alice.send(channel="north-mediator", template="message",
                                    body={"text": "north to mediator only"})).index
        fetched = await alice.fetch(private)  # properly signed, logged
        foreign = {"type": "deliver", "index": private, "entry": to_json(fetched.entry)}
        [public] = await sent(alice, "to both sides")

        def down(frame: Frame) -> list[Frame | str]:
            return [foreign, frame] if delivered(frame, public) else [frame]

        async with hostile_relay(server.url, down=down) as relay:
            text = await cli(home, *listen(relay.url, "--after", str(private - 1), "--count", "2"))
            bob = await client_through(relay.url, home, "bob")
            try:
                with pytest.raises(EntryRefused, match="not this member's"):
                    bob.verify(Deliver(index=private, entry=fetched.entry))  # the console's too
            finally:
                await bob.close()
    assert text.returncode == 0, text.stderr
    clean(text)
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f'[{private}] REFUSED on "north-mediator": verify.failed: delivered '
                               "on channel north-mediator, which is not this member's")
    assert "north to mediator only" not in text.stdout
    assert [line.split()[0] for line in lines if line.endswith(VERIFIED)] == [f"[{public}]"]


async def client_through(url: str, home: Path, name: str) -> Client:
    profile = Profile.load(home, name)
    client = Client.for_profile(profile)
    await client.connect(url)
    return client


# -- defect 11: malformed frames ---------------------------------------------------------------------

@pytest.mark.slow
async def test_malformed_frames_are_reported_and_skipped(home: Path, server: Running) -> None:
    a, b = await sent(await server.client("alice"), "before", "after")
    overdue = {"index": a, "time": "2026-12-01T00:00:00Z", "kind": "overdue", "channel": CHANNEL,
               "ref": "x" * 22, "entry": 0, "template": "message", "due": "2026-12-01T00:00:00Z",
               "ack": "received", "missing": ["south"]}  # no precedence

    def down(frame: Frame) -> list[Frame | str]:
        if delivered(frame, a):
            return [{"type": "deliver", "index": a, "entry": overdue}, "not json \x1b[2J",
                    {"type": "shutdown\x1b]0;x\x07"}, {"type": "deliver", "index": 5, "entry": []},
                    {"type": "receipt", "index": "1", "size": 2, "proof": [], "checkpoint": "",
                     "leaf": ""}, {"type": "health", "channel": 7}]
        return [frame]

    async with hostile_relay(server.url, down=down) as relay:
        text = await cli(home, *listen(relay.url, "--after", str(a - 1), "--count", "7"))
    assert text.returncode == 0, text.stderr  # the real message after them verified and proven
    clean(text)
    lines = text.stdout.splitlines()
    problems = [line for line in lines if "HOST PROBLEM" in line]
    assert len(problems) == 6, lines
    assert problems[0].startswith("[host, unsigned] HOST PROBLEM: the host sent a bad frame: "
                                  f"entry {a} is missing precedence")
    assert [line.split()[0] for line in lines if line.endswith(VERIFIED)] == [f"[{b}]"]
    assert f"[{b}] proven in the log" in text.stdout


async def test_on_a_terminal_listen_folds_long_lines_itself(home: Path) -> None:
    """A body sized to wrap at the terminal's edge would start a screen line of its own; on a
    terminal, listen folds every line at its width and marks each continuation."""
    fake = f"{' ' * 17}[10] FAKE carol(mediator) FLASH message  {VERIFIED}"
    async with running_server(home, **FAST) as server:
        alice = await server.client("alice")
        [index] = await sent(alice, fake * 12)
        screen = await asyncio.to_thread(on_a_terminal, home, *listen(
            server.url, "--after", str(index - 1), "--count", "1"), columns=80)
    rows = screen.replace("\r\n", "\n").rstrip("\n").split("\n")
    assert any(row.startswith(f"[{index}] ") for row in rows), screen
    assert sum(row.count("FAKE") for row in rows) == 12
    for row in rows:
        assert sum(cells(c) for c in row) <= 80
        assert row.startswith((f"[{index}] ", FOLD, "  [host")), row


def on_a_terminal(home: Path, *args: str, columns: int) -> str:
    """``hotline ARGS`` with its output on a pseudo-terminal ``columns`` wide: what it drew."""
    import pty
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "24"}
    process = subprocess.Popen([sys.executable, "-m", "hotline.cli", "--home", str(home), *args],
                               stdout=slave, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               env=env)
    os.close(slave)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal (EIO)
                break
            if not chunk:
                break
            out += chunk
    finally:
        process.wait(timeout=60)
        os.close(master)
    assert process.returncode == 0
    return out.decode("utf-8")
