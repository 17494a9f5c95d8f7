#!/usr/bin/env python3
"""Make ``docs/console.svg``, the screenshot of the liaison console that the README shows.

The screenshot is of a real session, not a mock-up. The script creates a demo deployment
(``init_deployment``, heartbeats every second) in a temporary folder and runs the real server and
the three parties' heartbeat agents in this process. Bob's console runs under Textual's headless
pilot. Alice, a plain client, sends an IMMEDIATE free text, a PRIORITY risk assessment and a FLASH
pre-agreed message. Bob's console acks each one ``received`` by itself, and bob acks the
assessment ``understood`` with ``u``. The FLASH stays owed, so its countdown shows. Every wait is
a bounded poll of what the console shows. Once the screen shows all of that, and the console has
checked the messages' inclusion in the log, Textual's SVG export is written to ``--out``. If the
session does not get there within the time limit, the script exits with status 1 and prints the
screen.

    .venv/bin/python scripts/console_screenshot.py                     # writes docs/console.svg
    .venv/bin/python scripts/console_screenshot.py --out /tmp/console.svg --width 100 --height 30

tests/integration/test_console_screenshot.py runs it, so that it keeps working.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import OptionList

from hotline import operator_log as logs
from hotline.agent.heartbeat import AgentState, HeartbeatAgent
from hotline.client.backoff import Backoff
from hotline.client.connection import Client
from hotline.client.outbox import Outbox
from hotline.client.profile import Profile
from hotline.config import load_config
from hotline.console.app import ConsoleApp
from hotline.deployment import CHANNEL, init_deployment
from hotline.norms.files import load_templates
from hotline.server.app import start
from hotline.times import format_time

TITLE = "hotline console"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "console.svg"
PARTIES = ["north", "south", "mediator"]
WAIT = 30.0  # seconds for each step of the session
LOCAL = timezone(timedelta(hours=3))  # bob's local time, shown beside UTC
SERVER_ENV = {"HOTLINE_SERVER_PORT": "0", "HOTLINE_TLOG_CHECKPOINT_DELAY": "0.2",
              "HOTLINE_PROTOCOLS_DEADLINE_SWEEP": "0.1", "HOTLINE_HEALTH_SWEEP": "0.2"}


class NotReached(Exception):
    """The session did not reach the expected screen in time."""


def shown(app: ConsoleApp, index: int) -> str:
    """The message at log index ``index`` as the selected channel lists it ('' if not listed)."""
    widget = app.query_one("#messages", OptionList)
    prompts = (str(widget.get_option_at_index(i).prompt) for i in range(widget.option_count))
    return next((p for p in prompts if f"[{index}] " in p), "")


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    """Let the app run until ``condition`` holds; raise NotReached naming ``what`` after WAIT."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            assert isinstance(pilot.app, ConsoleApp)
            raise NotReached(f"timed out after {WAIT:g}s waiting for {what}; the screen:\n"
                             f"{pilot.app.plain_text()}")
        await pilot.pause(0.05)


@contextlib.asynccontextmanager
async def agents(home: Path, url: str) -> AsyncIterator[None]:
    """Every party's heartbeat agent (its party's log witness too) on this loop, cancelled at the end."""
    tasks = []
    for party in PARTIES:
        name = f"{party}-agent"
        agent = HeartbeatAgent(Profile.load(home, name), servers=(url,),
                               state=AgentState(home / "state" / f"{name}.agent.json"),
                               backoff=Backoff(base=0.05, cap=0.3), witness_every=0.2,
                               witness_state=home / "state" / f"{name}.witness.json")
        tasks.append(asyncio.create_task(agent.run(), name=name))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def client(home: Path, url: str, name: str) -> AsyncIterator[Client]:
    member = Client.for_profile(Profile.load(home, name))
    await member.connect(url)
    try:
        yield member
    finally:
        await member.close()


async def session(home: Path, url: str, alice: Client, *, width: int, height: int) -> str:
    """Run bob's console through the session and return its SVG screenshot."""
    profile = Profile.load(home, "bob")
    outbox = Outbox.open(home / "state" / "bob.outbox.db")
    app = ConsoleApp(profile=profile, key=profile.signing_key(), outbox=outbox,
                            templates=load_templates(home / "protocols"), servers=(url,),
                            backoff=Backoff(base=0.05, cap=0.3), local_tz=LOCAL)

    async def send(template: str, precedence: str, body: dict[str, Any]) -> int:
        """Alice sends; the log index of her message once the server accepted it."""
        try:
            answer = await asyncio.wait_for(alice.send(channel=CHANNEL, template=template,
                                                       precedence=precedence, body=body), WAIT)
        except TimeoutError:
            raise NotReached(f"timed out after {WAIT:g}s waiting for alice's {template} to be "
                             "accepted") from None
        return answer.index

    try:
        async with app.run_test(size=(width, height)) as pilot:
            await until(pilot, lambda: "LINK UP" in app.plain_text() and not app.replaying
                        and "● UP hb" in app.plain_text(), "the console to connect and the channel UP")

            text = await send("message", "IMMEDIATE", {
                "text": "Request consultation at 0900Z", "lang": "en"})
            await until(pilot, lambda: "south ✓received" in shown(app, text), "the auto-ack 'received'")

            now = datetime.now(UTC)
            risk = await send("risk-assessment", "PRIORITY", {
                "threat_level": "elevated", "area": "Baltic", "assessment": "Naval exercise",
                "indicators": ["AIS gaps"], "valid_from": format_time(now),
                "valid_until": format_time(now + timedelta(hours=6))})
            await until(pilot, lambda: "YOU OWE 'understood'" in shown(app, risk), "the assessment owed")
            await pilot.press("u")  # the newest message is selected: bob has read it
            await until(pilot, lambda: "south ✓understood" in shown(app, risk), "the ack 'understood'")

            flash = await send("preagreed", "FLASH", {"number": 2, "code": "UNIDENTIFIED-OBJECTS"})
            await until(pilot, lambda: "south ✓received …understood" in shown(app, flash)
                        and "YOU OWE 'understood'" in shown(app, flash), "the FLASH received and owed")
            await until(pilot, lambda: "outbox: 0 pending" in app.plain_text() and "incl…" not in
                        app.plain_text() and "● UP hb" in app.plain_text(),
                        "the outbox empty, the log checked and the channel UP")
            return app.export_screenshot(title=TITLE)
    finally:
        outbox.close()


async def make_screenshot(out: Path, *, width: int, height: int) -> str:
    """Run the session, write the SVG screenshot to ``out`` and return it.

    Raises:
        NotReached: a step of the session did not happen within WAIT seconds.
    """
    with tempfile.TemporaryDirectory(prefix="hotline-screenshot-") as folder:
        home = Path(folder) / "home"
        init_deployment(home, parties=PARTIES, heartbeat_interval=1, port=0, origin="hotline.example",
                        force=False)
        runner, url = await start(load_config(home / "hotline.toml", home=home, env=SERVER_ENV))
        try:
            async with agents(home, url), client(home, url, "alice") as alice:
                svg = await session(home, url, alice, width=width, height=height)
        finally:
            await runner.cleanup()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(svg, encoding="utf-8")
    return svg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Make the README's screenshot of the liaison console: a demo deployment, a real "
                    "server and agents in this process, bob's console driven headless while alice "
                    "sends an IMMEDIATE text, a risk assessment and a FLASH pre-agreed message. "
                    "Writes Textual's SVG export of the screen. Exits 1, printing the screen, if the "
                    "session does not reach the expected screen in time.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where the SVG goes (default: this repository's docs/console.svg)")
    parser.add_argument("--width", type=int, default=80, help="terminal columns (default: 80)")
    parser.add_argument("--height", type=int, default=24, help="terminal rows (default: 24)")
    args = parser.parse_args(argv)
    logs.configure(level="error")  # the in-process server and agents: only what goes wrong
    try:
        asyncio.run(make_screenshot(args.out, width=args.width, height=args.height))
    except NotReached as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
