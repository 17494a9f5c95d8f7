"""Issue 6, acceptance 1–3: the liaison console, driven headless by Textual's pilot against a real
in-process server (real sockets, real SQLite file, real keys), with liaisons on the other side
that are plain clients or a second console.

What the officer sees is read from the screen itself (``screen_text``: the rendered screen as
plain text, i.e. what a monochrome terminal shows). Waits are bounded polls of a condition
(``until``), never sleeps standing in for synchronisation; every server and agent started is
stopped."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from msgspec import UNSET
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from hotline.agent.heartbeat import AgentState, HeartbeatAgent
from hotline.canonical import parse
from hotline.client.backoff import Backoff
from hotline.client.connection import Client, Delivered
from hotline.client.outbox import Outbox, OutboxState
from hotline.client.profile import Profile
from hotline.client.sealed_view import SealedView
from hotline.config import load_config
from hotline.console.app import ConsoleApp
from hotline.console.render import QUOTE
from hotline.console.screens import ComposeScreen, TemplatePicker
from hotline.deployment import init_deployment
from hotline.entries import EnvelopeEntry
from hotline.envelope import AckKind, Kind
from hotline.norms.files import load_templates
from hotline.server.app import start
from hotline.times import format_time
from hotline.wire.frames import Deliver
from tests.conftest import body_seen

WAIT = 20.0
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.2", "HOTLINE_PROTOCOLS_DEADLINE_SWEEP": "0.1"}


# -- harness ---------------------------------------------------------------------------------------

class Server:
    """The real aiohttp server of a home, in this test's event loop; restartable on its port."""

    def __init__(self, home: Path, **env: str) -> None:
        self.home, self.env = home, {**FAST, **env}
        self.runner: Any = None
        self.url = ""
        self.port = 0

    async def start(self) -> str:
        config = load_config(self.home / "hotline.toml", home=self.home,
                             env={**self.env, "HOTLINE_SERVER_PORT": str(self.port)})
        self.runner, self.url = await start(config)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@contextlib.asynccontextmanager
async def serving(home: Path, **env: str) -> AsyncIterator[Server]:
    server = Server(home, **env)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def member(home: Path, url: str, name: str) -> AsyncIterator[Client]:
    """A plain client (the other liaison), closed at the end."""
    client = Client.for_profile(Profile.load(home, name))
    await client.connect(url)
    try:
        yield client
    finally:
        await client.close()


def console(home: Path, url: str, name: str, **kwargs: Any) -> ConsoleApp:
    """The console of ``name`` as ``hotline console --as NAME`` builds it: its member's sealed
    view (the demo's epoch keys have no passphrase) unless the caller passes ``sealed_view``."""
    profile = Profile.load(home, name)
    templates = load_templates(home / "protocols")
    kwargs.setdefault("sealed_view", SealedView(home, party=profile.party, member=profile.member,
                                                passphrase=None, templates=templates))
    return ConsoleApp(profile=profile, key=profile.signing_key(),
                      outbox=Outbox.open(home / "state" / f"{name}.outbox.db"),
                      templates=templates, servers=(url,),
                      backoff=Backoff(base=0.05, cap=0.3), local_tz=UTC, **kwargs)


def screen_text(app: ConsoleApp) -> str:
    """The screen as a monochrome terminal shows it (no colour, no style): what the officer reads."""
    return app.plain_text()


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str,
                timeout: float = WAIT) -> None:
    """Let the app run until ``condition`` holds; fail naming ``what`` after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")  # type: ignore[arg-type]
        await pilot.pause(0.02)


def messages_text(app: ConsoleApp) -> list[str]:
    """The selected channel's messages as listed, oldest first (a wrapped body joined again)."""
    widget = app.query_one("#messages", OptionList)
    return [re.sub(r" *\n" + re.escape(QUOTE), " ", str(widget.get_option_at_index(i).prompt))
            for i in range(widget.option_count)]


def channels_text(app: ConsoleApp) -> str:
    widget = app.query_one("#channels", OptionList)
    return "\n".join(str(widget.get_option_at_index(i).prompt) for i in range(widget.option_count))


async def connected(pilot: Pilot[None], app: ConsoleApp) -> None:
    """Connected, replayed, and the keys its member may seal to proven (so that it may seal
    once the line is down)."""
    await until(pilot, lambda: "LINK UP" in screen_text(app) and "north-south" in channels_text(app)
                and not app.replaying and app.link.proved_ahead, "the console to connect and replay")


async def next_envelope(client: Client, kind: Kind, template: str | None = None) -> Delivered:
    """The next delivered, verified envelope of ``kind`` (heartbeats and notices skipped)."""
    async def wait() -> Delivered:
        while True:
            frame = await client.deliveries.get()
            if not isinstance(frame, Deliver) or not isinstance(frame.entry, EnvelopeEntry):
                continue
            item = client.verify(frame)
            if item.envelope.kind is kind and template in (None, item.envelope.template):
                return item
    return await asyncio.wait_for(wait(), WAIT)


def logged(home: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{home / 'hotline.db'}?mode=ro", uri=True) as db:
        return [parse(leaf) for (leaf,) in db.execute("SELECT leaf FROM entries ORDER BY idx")]


async def type_into(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)


# -- acceptance 1: compose, send, receive, acknowledge ---------------------------------------------

@pytest.mark.slow
async def test_free_text_sent_received_and_understood(home: Path) -> None:
    async with serving(home) as server, member(home, server.url, "bob") as bob:
        app = console(home, server.url, "alice")
        async with app.run_test() as pilot:
            await connected(pilot, app)
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the message form")
            assert "Free-text message" in screen_text(app) and "* text" in screen_text(app)
            await type_into(pilot, "Request consultation at 0900Z")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: any("Request consultation" in m and "acks:" in m
                                           for m in messages_text(app)), "the message as logged")

            got = await next_envelope(bob, Kind.MESSAGE)  # the second liaison receives it, verified
            assert "text" not in got.envelope.body and got.envelope.sealed is not None  # sealed
            assert body_seen(home, bob, got) == {"text": "Request consultation at 0900Z", "lang": "en"}
            assert got.envelope.sender == "alice" and got.entry.party == "north"
            [shown] = [m for m in messages_text(app) if "Request consultation" in m]
            assert f"[{got.index}] ROUTINE" in shown and "alice@north" in shown
            assert "message: Request consultation" in shown
            assert "south …waiting" in shown and "mediator …waiting" in shown

            await bob.ack(got, AckKind.UNDERSTOOD)  # bob's officer has read it
            await until(pilot, lambda: "south ✓understood" in "".join(messages_text(app)),
                        "south's ack shown on alice's console")
            assert "mediator …waiting" in "".join(messages_text(app))


async def test_flash_preagreed_marked_acked_received_then_understood(home: Path) -> None:
    async with serving(home) as server, member(home, server.url, "alice") as alice:
        app = console(home, server.url, "bob", lang="ru")
        async with app.run_test() as pilot:
            await connected(pilot, app)
            sent = await alice.send(channel="north-south", template="preagreed", precedence="FLASH",
                                    body={"number": 2, "code": "UNIDENTIFIED-OBJECTS"})
            await until(pilot, lambda: f"[{sent.index}]" in screen_text(app), "the FLASH message")
            screen = screen_text(app)  # monochrome: the marks carry the meaning, not colours
            assert f"[{sent.index}] ‼FLASH‼" in screen
            assert "Наши системы предупреждения" in "".join(messages_text(app))  # bob reads Russian
            assert "▶ YOU OWE 'understood'" in screen and "ACK OWED ×1" in screen

            # the console acknowledged 'received' by itself
            auto = await next_envelope(alice, Kind.ACK)
            assert (auto.envelope.reply_to, auto.envelope.body) == (sent.id, {"ack": "received"})
            assert auto.envelope.sender == "bob"

            await pilot.press("u")  # the newest message is selected: the officer acknowledges it
            understood = await next_envelope(alice, Kind.ACK)
            assert (understood.envelope.reply_to, understood.envelope.body) == (
                sent.id, {"ack": "understood"})
            await until(pilot, lambda: "YOU OWE" not in screen_text(app), "the obligation to clear")
            assert "south ✓understood" in "".join(messages_text(app))
            assert "ACK OWED" not in screen_text(app)


@pytest.mark.slow
async def test_templated_form_refuses_a_bad_field_before_sending_then_sends(home: Path) -> None:
    async with serving(home) as server, member(home, server.url, "bob") as bob:
        app = console(home, server.url, "alice")
        async with app.run_test() as pilot:
            await connected(pilot, app)
            before = len(logged(home))
            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, TemplatePicker), "the template list")
            picker = app.screen.query_one(OptionList)
            listed = [str(picker.get_option_at_index(i).prompt) for i in range(picker.option_count)]
            assert any(line.startswith("message: ") and line.endswith("· sealed: text: the parties")
                       for line in listed), listed  # who reads it, before the form opens
            assert not any("sealed" in line for line in listed if line.startswith("risk-assessment"))
            for _ in range(picker.option_count):  # walk down to the template, as an officer would
                option = picker.highlighted_option
                if option is not None and option.id == "risk-assessment":
                    break
                await pilot.press("down")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the risk assessment form")
            form = app.screen
            assert isinstance(form, ComposeScreen)
            text = screen_text(app)
            assert "Risk assessment" in text and "basis: 1971" in text
            assert "recipients owe 'understood' ack within 3 h (the PRIORITY deadline)" in text
            assert "* threat_level" in text

            now = datetime.now(UTC)
            paths = [f.path for f in form.form.fields]
            form.query_one(f"#field-{paths.index('threat_level')}", Input).value = "elevated"
            values = {"area": "Baltic Sea", "assessment": "Exercise traffic near the boundary",
                      "indicators": "AIS gaps, radar tracks",
                      "valid_from": format_time(now + timedelta(hours=1)),
                      "valid_until": "tomorrow"}  # not a date-time: the server would refuse it
            for path, value in values.items():
                form.query_one(f"#field-{paths.index(path)}", Input).value = value
            await pilot.press("ctrl+s")
            await until(pilot, lambda: "NOT SENT" in screen_text(app), "the refusal")
            refusal = str(form.query_one("#error").render())
            assert "valid_until: template.invalid" in refusal and "valid date-time" in refusal
            assert "tomorrow" not in refusal  # the field and the rule, never the value
            bad = form.query_one(f"#field-{paths.index('valid_until')}", Input)
            assert bad.has_class("-invalid") and bad.has_focus  # the field is named and focused
            assert len(logged(home)) == before and app.outbox.items() == []  # nothing left here

            bad.value = format_time(now + timedelta(hours=7))
            await pilot.press("ctrl+s")
            await until(pilot, lambda: not isinstance(app.screen, ComposeScreen), "the form to close")
            got = await next_envelope(bob, Kind.MESSAGE, "risk-assessment")
            assert got.envelope.body["threat_level"] == "elevated"
            assert got.envelope.body["indicators"] == ["AIS gaps", "radar tracks"]
            assert got.entry.expects is not UNSET and got.entry.expects.ack == "understood"
            await until(pilot, lambda: any("risk-assessment" in m and "logged" in m
                                           for m in messages_text(app)), "the assessment logged")
            [item] = app.outbox.items()
            assert item.state is OutboxState.ACCEPTED and item.index == got.index


# -- acceptance 2: the line is cut while a message is typed and sent --------------------------------

@pytest.mark.slow
async def test_message_typed_while_the_line_is_down_is_pending_then_delivered_once(home: Path) -> None:
    server = Server(home)
    await server.start()
    try:
        app = console(home, server.url, "alice")
        async with app.run_test() as pilot:
            await connected(pilot, app)
            await server.stop()  # the line is cut
            await until(pilot, lambda: "LINK DOWN" in screen_text(app) or "LINK CONNECTING" in
                        screen_text(app), "the console to see the line down")
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the message form")
            assert "LINK DOWN: the message is kept in the outbox" in screen_text(app)
            await type_into(pilot, "Typed during the outage")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: any("Typed during" in m for m in messages_text(app)),
                        "the message listed")
            [shown] = [m for m in messages_text(app) if "Typed during" in m]
            assert "[—]" in shown and "PENDING ⧗ not yet accepted" in shown
            assert "outbox: 1 PENDING" in screen_text(app)
            [stored] = app.outbox.pending()  # durably stored, sealed, before any attempt to send
            assert "text" not in stored.envelope.body and stored.envelope.sealed is not None
            assert app.link.body_of(stored.envelope)[0]["text"] == "Typed during the outage"

            assert await server.start() == server.url  # the server returns on the same port
            await until(pilot, lambda: any("Typed during" in m and "logged" in m
                                           for m in messages_text(app)), "the message accepted")
            [item] = app.outbox.items()
            assert item.state is OutboxState.ACCEPTED and item.index is not None
            [shown] = [m for m in messages_text(app) if "Typed during" in m]
            assert f"[{item.index}]" in shown and "PENDING" not in shown
            assert "outbox: 0 pending" in screen_text(app)

            # exactly once: in the log, and for the other liaison replaying the channel
            ids = [e["envelope"]["id"] for e in logged(home) if e["kind"] == "envelope"]
            assert ids.count(stored.id) == 1
            async with member(home, server.url, "bob") as bob:
                last = await bob.resume("north-south", -1)
                replayed = []
                while not bob.deliveries.empty():
                    frame = bob.deliveries.get_nowait()
                    if isinstance(frame, Deliver) and isinstance(frame.entry, EnvelopeEntry):
                        replayed.append(bob.verify(frame).envelope.id)
                assert replayed.count(stored.id) == 1 and last >= item.index
    finally:
        await server.stop()


# -- acceptance 3: a channel going DOWN -------------------------------------------------------------

@pytest.fixture
def fast_home(tmp_path: Path) -> Path:
    """The demo deployment with heartbeats every second (DOWN after three missed)."""
    path = tmp_path / "home"
    init_deployment(path, parties=["north", "south", "mediator"], heartbeat_interval=1, port=0,
                    origin="hotline.test", force=False)
    return path


@contextlib.asynccontextmanager
async def agents(home: Path, url: str, **kwargs: Any) -> AsyncIterator[dict[str, asyncio.Task[None]]]:
    """Each party's heartbeat agent, in this event loop; cancelled at the end."""
    tasks = {}
    for party in ("north", "south", "mediator"):
        name = f"{party}-agent"
        runner = HeartbeatAgent(Profile.load(home, name), servers=(url,),
                                state=AgentState(home / "state" / f"{name}.agent.json"),
                                backoff=Backoff(base=0.05, cap=0.3),
                                witness_state=home / "state" / f"{name}.witness.json", **kwargs)
        tasks[party] = asyncio.create_task(runner.run(), name=name)
    try:
        yield tasks
    finally:
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.mark.slow
async def test_channel_going_down_changes_the_list_and_alerts_within_one_sweep(fast_home: Path) -> None:
    sweep = 0.1
    async with serving(fast_home, HOTLINE_HEALTH_SWEEP=str(sweep)) as server, \
            agents(fast_home, server.url) as running:
        # no redraw of its own for an hour: what it shows, the pushed health frames drew
        app = console(fast_home, server.url, "alice", tick=3600.0)
        async with app.run_test() as pilot:
            await connected(pilot, app)
            await until(pilot, lambda: "● UP hb" in channels_text(app), "the channel UP")
            assert "ALERT" not in screen_text(app)

            running["south"].cancel()  # south's agent stops: south falls silent
            with contextlib.suppress(asyncio.CancelledError):
                await running["south"]
            await until(pilot, lambda: "✖ DOWN" in screen_text(app) and "‼ ALERT" in screen_text(app),
                        "the channel DOWN and its alert")  # drawn one after the other
            screen = screen_text(app)
            assert "✖ DOWN" in screen  # a word and a mark: a monochrome terminal shows it
            assert "‼ ALERT" in screen and "CHANNEL north-south DOWN" in screen
            assert "south silent" in screen and "✖ DOWN south hb" in screen

            down = [e for e in logged(fast_home) if e["kind"] == "health" and e["to"] == "DOWN"]
            assert down, "the server logged the transition"

            await pilot.press("x")
            await until(pilot, lambda: "ALERT" not in screen_text(app), "the alert dismissed")
            assert "✖ DOWN" in channels_text(app)  # the state stays visible


# -- the details view, the safety numbers, failover, a restart with messages pending ----------------

@pytest.mark.slow
async def test_every_message_is_proven_in_the_log_and_witnessed_and_details_say_how(
        fast_home: Path) -> None:
    """Acceptance (layout): each message's verification state in the list — signature checked,
    logged with receipt, included (the console's own inclusion proof against a checkpoint it
    chained by consistency proofs) and cosigned by all witnesses — without opening anything."""
    async with serving(fast_home) as server, agents(fast_home, server.url, witness_every=0.2), \
            member(fast_home, server.url, "bob") as bob:
        app = console(fast_home, server.url, "alice", prove_every=0.2)
        async with app.run_test(size=(80, 60)) as pilot:  # tall enough to see the whole envelope
            await connected(pilot, app)
            await pilot.press("p")  # a pre-agreed message, chosen with the keyboard
            await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the pre-agreed form")
            form = app.screen
            assert isinstance(form, ComposeScreen) and "FLASH" in screen_text(app)
            await pilot.press("down", "down")  # step through the catalogue to message 2
            assert form.query_one("#field-0", Input).value == "2"
            await pilot.press("ctrl+s")
            got = await next_envelope(bob, Kind.MESSAGE, "preagreed")
            assert got.envelope.body == {"number": 2, "code": "UNIDENTIFIED-OBJECTS"}
            answer = await bob.send(channel="north-south", template="message",
                                    body={"text": "Seen; checking"})

            def proven(needle: str) -> bool:
                return any(needle in m and "incl✓ wit 3/3" in m for m in messages_text(app))
            await until(pilot, lambda: proven(f"[{got.index}] ‼FLASH‼") and proven("rcpt✓"),
                        "our own message: receipt, inclusion proof and all three witnesses")
            await until(pilot, lambda: proven("Seen; checking") and proven("sig✓ logged"),
                        "bob's reply proven and witnessed in the list too")

            await pilot.press("up", "d")  # the details of our own message
            await until(pilot, lambda: "inclusion proof:" in screen_text(app)
                        and "ALL WITNESSES" in screen_text(app), "the details, redrawn as proven")
            shown = screen_text(app)
            assert "signature: VERIFIED: key" in shown and f"log index: {got.index}" in shown
            assert "signed by the log key" in shown
            assert "inclusion proof: VERIFIED" in shown and "ALL WITNESSES" in shown
            assert "receipt: inclusion receipt verified" in shown
            assert '"template": "preagreed"' in shown  # the envelope as signed
            await pilot.press("escape")
        # the verified head is remembered for the next run, which will hold the log to it
        head = app.outbox.recall("log_head")
        assert head["size"] > int(answer.index)


@pytest.mark.slow
async def test_a_log_rewritten_by_the_host_between_two_runs_raises_the_alarm(home: Path) -> None:
    """The host wipes its log and starts again: the console's remembered head is not part of
    the new history, and the console says so, on screen, without the auditors."""
    server = Server(home)
    await server.start()
    try:
        first = console(home, server.url, "alice", prove_every=0.1)
        async with first.run_test() as pilot:
            await connected(pilot, first)
            await pilot.press("n")
            await until(pilot, lambda: isinstance(first.screen, ComposeScreen), "the form")
            await type_into(pilot, "Before the rewrite")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: any("Before the rewrite" in m and "incl✓" in m
                                           for m in messages_text(first)), "the message proven")
        first.outbox.close()
        await server.stop()
        # the host rewrites history from scratch (with the checkpoint file its own server would
        # otherwise hold against it)
        for name in ("hotline.db", "hotline.db-wal", "hotline.db-shm", "hotline.db.checkpoint"):
            (home / name).unlink(missing_ok=True)

        await server.start()
        second = console(home, server.url, "alice", prove_every=0.1)
        async with second.run_test(size=(100, 30)) as pilot:
            await connected(pilot, second)
            # nothing new to prove: the console still follows the log, and sees it shrunk
            await until(pilot, lambda: "LOG INCONSISTENT" in screen_text(second), "the alarm")
            assert "rollback" in screen_text(second) and "two histories" in screen_text(second)
            await pilot.press("x", "n")
            await until(pilot, lambda: isinstance(second.screen, ComposeScreen), "the form")
            await type_into(pilot, "After the rewrite")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: any("After the rewrite" in m and "logged" in m
                                           for m in messages_text(second)), "the message logged")
            [after] = [m for m in messages_text(second) if "After the rewrite" in m]
            [message] = [m for m in second.state.channel("north-south").messages.values()
                         if m.body.get("text") == "After the rewrite"]
            assert message.index is not None and "incl✓" not in after
            # nothing is ever proven against a history that changed
            assert second.state.log.wanted([message.index]) == []
    finally:
        await server.stop()


@pytest.mark.slow
async def test_safety_numbers_and_help(home: Path) -> None:
    from hotline.keys import safety_number
    async with serving(home) as server:
        app = console(home, server.url, "alice")
        async with app.run_test(size=(80, 40)) as pilot:
            await connected(pilot, app)
            await pilot.press("s")
            await until(pilot, lambda: "Verify safety numbers" in screen_text(app), "the safety view")
            alice = Profile.load(home, "alice").signing_key().key_id
            bob = Profile.load(home, "bob").signing_key().key_id
            text = screen_text(app)
            assert safety_number(alice) in text
            assert "bob (liaison of south), you and them:" in text
            assert safety_number(bob, alice) in text  # what bob's console shows him for alice
            await pilot.press("escape", "question_mark")
            await until(pilot, lambda: "Keys (the bar at the bottom" in screen_text(app), "the help")
            assert "‼FLASH‼" in screen_text(app) and "✖ DOWN" in screen_text(app)


async def test_fails_over_to_the_next_endpoint(home: Path) -> None:
    async with serving(home) as server:
        dead = "ws://127.0.0.1:9/v1/ws"  # nothing listens on the discard port
        profile = Profile.load(home, "alice")
        app = ConsoleApp(profile=profile, key=profile.signing_key(),
                         outbox=Outbox.open(home / "state" / "alice.outbox.db"),
                         templates=load_templates(home / "protocols"), servers=(dead, server.url),
                         backoff=Backoff(base=0.05, cap=0.3), local_tz=UTC)
        async with app.run_test(size=(120, 24)) as pilot:
            await connected(pilot, app)
            assert server.url in screen_text(app) and app.link.url == server.url


async def test_a_message_left_pending_is_sent_by_the_next_run(home: Path) -> None:
    server = Server(home)
    await server.start()
    # what an earlier run composed: its text sealed to the channel's liaisons, whose keys it
    # proved in the log while the line was up
    async with member(home, server.url, "alice") as alice:
        message = alice.templates.latest("message")
        assert message is not None
        composed = await alice.sealed_envelope(channel="north-south", template=message,
                                               body={"text": "from the last shift"},
                                               log_key=alice.log_key, precedence="IMMEDIATE")
    await server.stop()  # the line is down from the start: the console cannot connect
    try:
        first = console(home, server.url, "alice")
        async with first.run_test() as pilot:
            await until(pilot, lambda: "LINK" in screen_text(first) and "retry" in screen_text(first),
                        "the console to retry")
            # no roster has been verified yet, so no agreed form: the console says so, sends nothing
            await pilot.press("n")
            await pilot.pause()
            assert not isinstance(first.screen, ComposeScreen)
            # an envelope stored by an earlier run: sealed, signed, in the outbox, never sent
            first.link.store(composed)
            await until(pilot, lambda: "outbox: 1 PENDING" in screen_text(first), "the pending count")
        first.outbox.close()

        await server.start()
        second = console(home, server.url, "alice")
        async with second.run_test() as pilot:
            await until(pilot, lambda: any("from the last shift" in m and "logged" in m
                                           for m in messages_text(second)), "the message accepted")
            assert "outbox: 0 pending" in screen_text(second)
        ids = [e["envelope"]["id"] for e in logged(home) if e["kind"] == "envelope"]
        assert ids.count(composed.id) == 1
    finally:
        await server.stop()


@pytest.mark.slow
async def test_after_one_connection_the_officer_can_compose_offline(home: Path) -> None:
    """The roster verified on the last connection is kept (and verified again at start): a
    console started while the line is down still lists its channels and opens every agreed
    form; what is composed waits, PENDING, and goes out once when the line returns."""
    server = Server(home)
    await server.start()
    try:
        first = console(home, server.url, "alice")
        async with first.run_test() as pilot:
            await connected(pilot, first)
        first.outbox.close()
        await server.stop()

        second = console(home, server.url, "alice")
        async with second.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: "retry" in screen_text(second), "the console to retry")
            assert "north-south" in channels_text(second) and "? NO LINK" in channels_text(second)
            await pilot.press("t")
            await until(pilot, lambda: isinstance(second.screen, TemplatePicker), "the templates")
            assert "launch-notification" in screen_text(second)
            await pilot.press("escape", "n")
            await until(pilot, lambda: isinstance(second.screen, ComposeScreen), "the message form")
            await type_into(pilot, "Composed offline")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: any("Composed offline" in m and "PENDING" in m
                                           for m in messages_text(second)), "the message pending")

            [composed] = second.outbox.pending()
            assert second.link.body_of(composed.envelope)[0]["text"] == "Composed offline"

            await server.start()
            await until(pilot, lambda: any("Composed offline" in m and "logged" in m
                                           for m in messages_text(second)), "the message accepted")
        ids = [e["envelope"]["id"] for e in logged(home) if e["kind"] == "envelope"]
        assert ids.count(composed.id) == 1
    finally:
        await server.stop()


@pytest.mark.slow
async def test_a_message_the_server_refuses_is_marked_and_alerts(home: Path) -> None:
    """A refusal the console could not foresee (here: the rate, which only the server counts):
    the message stays on screen, marked REFUSED with the code, and an alert says so."""
    async with serving(home) as server:
        app = console(home, server.url, "alice")
        async with app.run_test(size=(100, 30)) as pilot:
            await connected(pilot, app)
            limit = 120  # message.yaml: 120 per hour per party
            async with member(home, server.url, "alice") as other_desk:  # the party's other desk
                for n in range(limit):
                    await other_desk.send(channel="north-south", template="message",
                                          body={"text": f"traffic {n}"})
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the message form")
            await type_into(pilot, "One too many")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: "REFUSED" in screen_text(app), "the refusal")
            [shown] = [m for m in messages_text(app) if "One too many" in m]
            assert "REFUSED ✖ norm.rate_limited" in shown
            assert "‼ ALERT" in screen_text(app) and "norm.rate_limited" in screen_text(app)
            [item] = app.outbox.items()
            assert item.state is OutboxState.REFUSED and item.code == "norm.rate_limited"


# -- an acknowledgement owed: the countdown, then the escalation ------------------------------------

@pytest.mark.slow
async def test_owed_ack_counts_down_then_escalates_when_overdue(home: Path) -> None:
    from tests.integration.test_norms import add_drill_agreement  # 'understood' owed within 1 s

    add_drill_agreement(home)
    now = [datetime.now(UTC)]  # the console's clock, moved by the test
    async with serving(home) as server, member(home, server.url, "alice") as alice:
        app = console(home, server.url, "bob", clock=lambda: now[0], tick=0.05)
        async with app.run_test(size=(100, 30)) as pilot:
            await connected(pilot, app)
            sent = await alice.send(channel="north-south", template="drill", body={"text": "drill"})
            await until(pilot, lambda: "▶ YOU OWE 'understood'" in screen_text(app), "the countdown")
            assert "left — press u" in screen_text(app) and "ACK OWED ×1" in screen_text(app)

            now[0] += timedelta(seconds=5)  # the deadline passes on the officer's clock...
            await until(pilot, lambda: "▶▶ OVERDUE +00:0" in screen_text(app), "the escalation")
            assert "ACK OWED ×1 (1 OVERDUE)" in screen_text(app)
            # ...and on the server's: its overdue notice raises an alert naming our party
            await until(pilot, lambda: "‼ ALERT" in screen_text(app), "the overdue alert")
            assert f"OVERDUE: ROUTINE [{sent.index}] drill" in screen_text(app)
            assert "south has not sent understood" in app.state.alerts[-1].text

            await pilot.press("u")  # late, but still accepted, and marked late
            late = await next_envelope(alice, Kind.ACK)
            while late.envelope.body != {"ack": "understood"}:
                late = await next_envelope(alice, Kind.ACK)
            assert late.entry.is_late
            await until(pilot, lambda: any("south ✓understood LATE" in m for m in messages_text(app)),
                        "the late ack")
            assert "YOU OWE" not in screen_text(app)
