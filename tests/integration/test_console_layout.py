"""Issue 13, item 6 (and the details' checkpoint of item 15): the console as a duty officer used it
at 80×24, against the real server: alerts never cover the keys and ``x`` clears them, a form shows
several fields at once with their labels, hints and errors, every action keeps the selection in
view, the key bar never wraps, and keys typed without a pause all reach the right place.

Fast typing is typed as a terminal delivers it: every key posted to the app at once, with no
pause between them (``burst``); then the app is let run until what was typed shows (``until``)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Input, OptionList, Static

from hotline.console.app import ConsoleApp
from hotline.console.screens import ComposeScreen, TextScreen
from hotline.deployment import init_deployment
from hotline.envelope import Kind
from tests.conftest import body_seen
from tests.integration.test_console import (
    agents,
    connected,
    console,
    logged,
    member,
    messages_text,
    next_envelope,
    screen_text,
    serving,
    until,
)


@pytest.fixture
def fast_home(tmp_path: Path) -> Path:
    """The demo deployment with heartbeats every second (DOWN after three missed)."""
    path = tmp_path / "home"
    init_deployment(path, parties=["north", "south", "mediator"], heartbeat_interval=1, port=0,
                    origin="hotline.test", force=False)
    return path


def burst(app: ConsoleApp, *keys: str) -> None:
    """Keys as a fast typist's terminal sends them: all queued before the app reads the first."""
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else None))


def last_lines(app: ConsoleApp, count: int) -> list[str]:
    return screen_text(app).rstrip("\n").split("\n")[-count:]


def key_bar_is_whole(app: ConsoleApp) -> bool:
    """The key bar is the screen's last line, one line, and nothing is drawn over it."""
    keys = app.query_one("#keys")
    width, height = app.size
    covered = {app.screen.get_widget_at(x, height - 1)[0] for x in range(width)}
    return keys.size.height == 1 and covered == {keys} and "? Help" in last_lines(app, 1)[0] \
        and "q Quit" in last_lines(app, 1)[0]


# -- alerts never hide the key bar or the messages; x clears them -----------------------------------

@pytest.mark.slow
async def test_an_alert_and_a_notice_cover_nothing_and_x_clears_them(fast_home: Path) -> None:
    async with serving(fast_home, HOTLINE_HEALTH_SWEEP="0.1") as server, \
            agents(fast_home, server.url) as running:
        app = console(fast_home, server.url, "alice")
        async with app.run_test(size=(80, 24)) as pilot:
            await connected(pilot, app)
            await until(pilot, lambda: "● UP hb" in screen_text(app), "the channel UP")
            running["south"].cancel()  # south falls silent: the channel goes DOWN
            with contextlib.suppress(asyncio.CancelledError):
                await running["south"]
            await until(pilot, lambda: "‼ ALERT" in screen_text(app), "the DOWN alert")
            await pilot.press("u")  # nothing to acknowledge: the console answers with a notice
            await until(pilot, lambda: "select a received message first" in screen_text(app),
                        "the notice")

            text = screen_text(app)
            assert "CHANNEL north-south DOWN" in text and "dismiss" in text
            assert not app.screen.query("Toast"), "nothing floats over the screen"
            assert key_bar_is_whole(app)
            messages = app.query_one("#messages", OptionList)
            region = messages.region  # every cell of the message list is the list's own
            assert {app.screen.get_widget_at(x, y)[0] for x in range(region.x, region.right)
                    for y in range(region.y, region.bottom)} <= {messages, *messages.query("*")}

            await pilot.press("x")
            await until(pilot, lambda: "ALERT" not in screen_text(app), "the alert dismissed")
            assert "select a received message first" not in screen_text(app)
            assert "✖ DOWN" in screen_text(app)  # the state itself stays in the channel list
            assert not app.screen.query("Toast") and key_bar_is_whole(app)


# -- a form shows several fields at once, with labels, hints and errors -----------------------------

async def open_form(pilot: object, app: ConsoleApp, template_id: str) -> ComposeScreen:
    ids = [t.id for t in app._composable("north-south")]
    burst(app, "t", *["down"] * ids.index(template_id), "enter")
    await until(pilot, lambda: isinstance(app.screen, ComposeScreen)  # type: ignore[arg-type]
                and app.screen.is_mounted and app.screen.form.template.id == template_id,
                f"the {template_id} form")
    assert isinstance(app.screen, ComposeScreen)
    return app.screen


async def test_a_form_shows_several_fields_with_labels_hints_and_errors(home: Path) -> None:
    async with serving(home) as server:
        app = console(home, server.url, "alice")
        async with app.run_test(size=(80, 24)) as pilot:
            await connected(pilot, app)
            form = await open_form(pilot, app, "risk-assessment")
            text = screen_text(app)
            labels = ["* threat_level", "* area", "* assessment", "* indicators"]
            assert all(label in text for label in labels), "\n" + text
            assert "one of: low | elevated | high | critical" in text  # the choices, as a hint
            assert "The region, sea area or system the assessment concerns." in text  # a hint
            fields = form.query_one("#fields")
            visible = [w for w in form.query(Input) if w.id and w.id.startswith("field-")
                       and fields.region.contains_region(w.region)]
            assert len(visible) >= 4, "several fields at once"

            burst(app, "down", "down", "tab", *"Baltic Sea", "ctrl+s")  # the rest left empty
            await until(pilot, lambda: "NOT SENT" in screen_text(app), "the refusal")
            text = screen_text(app)
            assert "assessment" in str(form.query_one("#error-2", Static).render())
            assert form.query_one("#error-2").display and form.query_one("#field-2").has_focus
            assert "* threat_level" in text and "* assessment" in text  # still several fields
            assert "✖ template.invalid" in text  # the error under its field, on screen
            assert form.values()["threat_level"] == "elevated" and form.values()["area"] == "Baltic Sea"


# -- every action keeps the selection in view --------------------------------------------------------

@pytest.mark.slow
async def test_next_owed_scrolls_the_owed_message_header_into_view(home: Path) -> None:
    async with serving(home) as server, member(home, server.url, "alice") as alice:
        app = console(home, server.url, "bob")
        async with app.run_test(size=(80, 24)) as pilot:
            await connected(pilot, app)
            flash = await alice.send(channel="north-south", template="preagreed", precedence="FLASH",
                                     body={"number": 2, "code": "UNIDENTIFIED-OBJECTS"})
            for n in range(6):
                await alice.send(channel="north-south", template="message", body={"text": f"traffic {n}"})
            await until(pilot, lambda: "traffic 5" in screen_text(app), "the newest message")
            header = f"[{flash.index}] ‼FLASH‼"
            assert header not in screen_text(app)  # scrolled off by the six after it

            await pilot.press("a")
            await until(pilot, lambda: f"▶{header}" in screen_text(app), "the owed message's header")
            await pilot.press("u")  # acknowledged: its owed line goes, it stays in view
            await until(pilot, lambda: "YOU OWE 'understood'" not in screen_text(app), "the ack")
            assert f"▶{header}" in screen_text(app)
            await pilot.press("down", "down", "down", "down")  # the arrows keep it in view too
            [selected] = [m for m in messages_text(app) if m.startswith("▶")]
            assert selected.split("\n")[0] in screen_text(app)


# -- the key bar fits the width, never wrapping ---------------------------------------------------

async def test_the_key_bar_is_one_line_at_80_and_100_columns(home: Path) -> None:
    async with serving(home) as server:
        app = console(home, server.url, "alice")
        async with app.run_test(size=(80, 24)) as pilot:
            await connected(pilot, app)
            assert key_bar_is_whole(app), screen_text(app)
            assert last_lines(app, 2)[0].startswith(" LINK UP") or "ws://" in last_lines(app, 2)[0]
            for key in ("n", "u", "a", "r", "x"):  # the keys an officer needs most stay on it
                assert f" {key} " in last_lines(app, 1)[0]
            await pilot.resize_terminal(100, 24)
            await until(pilot, lambda: app.size.width == 100 and key_bar_is_whole(app),
                        "the key bar redrawn at 100 columns")
            assert " s Safety" in last_lines(app, 1)[0]  # room for more at 100


# -- keys typed without pauses reach the right fields ----------------------------------------------

@pytest.mark.slow
async def test_keys_typed_without_a_pause_reach_the_right_fields(home: Path) -> None:
    async with serving(home) as server, member(home, server.url, "bob") as bob:
        app = console(home, server.url, "alice")
        async with app.run_test(size=(80, 24)) as pilot:
            await connected(pilot, app)
            # n opens the form; the text and a Tab to the language follow before it is drawn
            burst(app, "n", *"Fast hands", "tab", *"ru", "backspace", "n")
            await until(pilot, lambda: isinstance(app.screen, ComposeScreen) and app.screen.is_mounted
                        and app.screen.values() == {"text": "Fast hands", "lang": "rn"},
                        "every key in its field, in order")
            # out of the form, through the picker, into another form and its fields: no pause
            downs = [t.id for t in app._composable("north-south")].index("risk-assessment")
            burst(app, "escape", "t", *["down"] * downs, "enter", "up", "tab", *"Barents", "tab",
                  *"Calm", "tab", *"AIS, radar")
            await until(pilot, lambda: isinstance(app.screen, ComposeScreen) and app.screen.is_mounted
                        and app.screen.form.template.id == "risk-assessment"
                        and app.screen.values()["indicators"] == "AIS, radar", "the typing")
            assert isinstance(app.screen, ComposeScreen)
            values = app.screen.values()
            assert (values["threat_level"], values["area"], values["assessment"]) == (
                "critical", "Barents", "Calm")

            burst(app, "escape", "n", *"Sent at once", "ctrl+s")  # typed and sent in one go
            got = await next_envelope(bob, Kind.MESSAGE)
            assert body_seen(home, bob, got)["text"] == "Sent at once"
            await until(pilot, lambda: not isinstance(app.screen, ComposeScreen), "the form closed")
            assert [e["envelope"]["id"] for e in logged(home) if e["kind"] == "envelope"
                    and e["envelope"]["template"] == "message"] == [got.envelope.id]


# -- item 15: the details name the one checkpoint the inclusion proof is against ---------------------

@pytest.mark.slow
async def test_details_name_the_checkpoint_the_proof_is_against(fast_home: Path) -> None:
    async with serving(fast_home) as server, agents(fast_home, server.url, witness_every=0.2), \
            member(fast_home, server.url, "bob") as bob:
        app = console(fast_home, server.url, "alice", prove_every=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await connected(pilot, app)

            def proven(text: str) -> bool:
                return any(text in m and "incl✓ wit 3/3" in m for m in messages_text(app))
            first = await bob.send(channel="north-south", template="message", body={"text": "First"})
            await until(pilot, lambda: proven("First"), "the first message proven and witnessed")
            await bob.send(channel="north-south", template="message", body={"text": "Second"})
            await until(pilot, lambda: proven("Second"), "the second one, on a larger tree")
            proven_in = app.state.log.included[int(first.index)]
            assert app.state.log.head is not None and app.state.log.head.size > proven_in

            while (selected := app.selected_message()) is None or selected.index != first.index:
                await pilot.press("up")
            await pilot.press("d")
            await until(pilot, lambda: isinstance(app.screen, TextScreen), "the details")
            assert isinstance(app.screen, TextScreen)
            details = str(app.screen.text)
            proof = details[details.index("log proof"):details.index("stated by the server")]
            assert set(re.findall(r"tree (?:size|of) (\d+)", proof)) == {str(proven_in)}, proof
            assert f"entry {first.index} is in that tree" in proof
