"""Issue 13, item 8 in the console: a templated body received from the other party is listed as
``Title: value`` in the template's order (one line, wrapped), never as ``units={'kind': ...}``.
Driven by Textual's pilot at 80x24 against a real in-process server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hotline.envelope import Precedence
from tests.integration.test_console import (
    connected,
    console,
    member,
    messages_text,
    serving,
    until,
)
from tests.template_examples import incident_at_sea


async def test_a_units_body_is_listed_by_the_templates_titles(home: Path) -> None:
    body = incident_at_sea(datetime.now(UTC))[0].body
    async with serving(home) as server, member(home, server.url, "bob") as bob:
        app = console(home, server.url, "alice")
        async with app.run_test(size=(80, 24)) as pilot:
            await connected(pilot, app)
            await bob.send(channel="north-south", template="incident-at-sea", body=body,
                           precedence=Precedence.IMMEDIATE)
            await until(pilot, lambda: any("incident-at-sea" in m for m in messages_text(app)),
                        "bob's incident report listed")
            [shown] = [m for m in messages_text(app) if "incident-at-sea" in m]
            # at 80 columns the list shows the start of it; the details view shows all of it
            assert f"incident-at-sea: Time: {body['time']}; Position: (Latitude: 43.10" in shown
            assert "={" not in shown and "{'" not in shown and '{"' not in shown
