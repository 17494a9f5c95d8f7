"""Issue 20, defects 1 and 2 at the officer's console: a hostile sender's escape sequences reach
the real console through the real server and are shown, never obeyed; what the server says is
apart from what the sender signed and what the console checked.

The screen is read back as a terminal would draw it (``screen_text``), at 80×24."""

from __future__ import annotations

from pathlib import Path

from hotline.console.render import QUOTE
from hotline.console.screens import TextScreen
from hotline.display import unsafe
from tests.hostile_text import FORGED
from tests.integration.test_console import connected, console, member, serving, until
from tests.integration.test_console import screen_text as screen


def lines_of(app_text: str, needle: str) -> list[str]:
    return [line for line in app_text.split("\n") if needle in line]


async def test_escape_sequences_in_a_body_are_shown_not_obeyed(home: Path) -> None:
    text = FORGED + " " * 120 + FORGED  # padding to bring the forged line to a line's start
    async with serving(home) as server, member(home, server.url, "alice") as alice:
        app = console(home, server.url, "bob")
        async with app.run_test(size=(80, 24)) as pilot:
            await connected(pilot, app)
            sent = await alice.send(channel="north-south", template="message", precedence="FLASH",
                                    body={"text": text, "lang": "en"})
            await until(pilot, lambda: f"[{sent.index}]" in screen(app), "the hostile message")
            shown = screen(app)
            assert all(unsafe(line) == [] for line in shown.split("\n")), shown
            assert "message: ␛[2J␛[H‼FLASH‼ carol@mediator:" in shown
            # the forged header is only ever on the body's own lines, never where a header is
            prompt = str(app.query_one("#messages").get_option_at_index(0).prompt)  # type: ignore[attr-defined]
            assert [line for line in lines_of(prompt, "LAUNCH")
                    if not line.startswith(("    message: ", QUOTE))] == []
            assert prompt.split("\n")[0].startswith(f"▶[{sent.index}] ‼FLASH‼") and \
                "alice@north" in prompt.split("\n")[0]
            assert "LINK UP" in shown and "hotline console" not in lines_of(shown, "LAUNCH")

            await pilot.press("d")
            await until(pilot, lambda: "signed by the sender" in screen(app), "the details")
            assert all(unsafe(line) == [] for line in screen(app).split("\n")), screen(app)
            assert isinstance(app.screen, TextScreen)
            details = app.screen.text.plain  # all of it, also what is scrolled out of view
            assert all(unsafe(line) == [] for line in details.split("\n")), details
            checked = details.split("checked by this console")[1].split("stated by the server")[0]
            server_says = details.split("stated by the server (not signed)")[1]
            assert "VERIFIED" in checked and "expects" not in checked
            assert "expects: received from" in server_says and "south" in server_says, details
            await pilot.press("escape")
