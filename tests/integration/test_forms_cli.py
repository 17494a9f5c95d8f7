"""Issue 13, items 7 and 8, as a liaison at a terminal meets them: `hotline templates` shows the
forms a oneOf offers and the keys of a list's objects; `send` refuses a body that fails the
template's check with exit 2 and words (never a regex); `listen` shows a body as titled lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, hotline_cli
from tests.template_examples import incident_at_sea

LAUNCH = ("--template", "launch-notification", "--field", "missile_class=ICBM",
          "--field", "window.start=2030-01-01T06:00:00Z", "--field", "window.end=2030-01-01T08:00:00Z",
          "--field", "launch_area.name=North test range", "--field", "impact_area.name=K-7")


def send(home: Path, *args: str) -> tuple[int, str]:
    done = hotline_cli(home, "send", "--as", "alice", "--server", "ws://127.0.0.1:9/v1/ws",
                       "--channel", "north-south", *args)
    return done.returncode, done.stderr


@pytest.mark.slow
def test_templates_shows_each_form_of_impact_area_with_its_fields(home: Path) -> None:
    shown = hotline_cli(home, "templates", "launch-notification")
    assert shown.returncode == 0, shown.stderr
    assert "impact_area takes exactly one of these forms:" in shown.stdout
    assert "- its boundary points (impact_area.boundary)" in shown.stdout
    assert "- its centre and radius (impact_area.centre, impact_area.radius)" in shown.stdout
    assert "one of: ICBM, SLBM, IRBM, MRBM, SRBM" in shown.stdout and "any:" not in shown.stdout
    units = hotline_cli(home, "templates", "incident-at-sea").stdout
    assert "a JSON list of 1 to 50 objects with the fields below" in units
    assert "\n      * party " in units and "\n      * kind " in units


def test_send_with_a_wrong_impact_area_exits_2_naming_the_forms(home: Path) -> None:
    # a radius without a centre: neither form; refused here, before any connection is tried
    code, err = send(home, *LAUNCH, "--field", "impact_area.radius.value=40",
                     "--field", "impact_area.radius.unit=km")
    assert code == 2, err
    assert ("body.impact_area: must be exactly one of: its boundary points (boundary) or its "
            "centre and radius (centre, radius); it is none of them") in err
    assert "fields (* required)" in err and "connect.failed" not in err and "Traceback" not in err


def test_a_bad_language_tag_is_said_in_words_not_as_a_regex(home: Path) -> None:
    code, err = send(home, "--field", "text=hello", "--field", "lang=english!")
    assert code == 2, err
    assert "template.invalid: message: body.lang: must be a language tag such as en or ru" in err
    assert "^[A-Za-z]" not in err and "{2,8}" not in err


@pytest.mark.slow
def test_listen_shows_a_units_body_readably(server_process: ServerProcess) -> None:
    url = server_process.start()
    home = server_process.home
    body = incident_at_sea(datetime.now(UTC))[0].body
    sent = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel", "north-south",
                       "--template", "incident-at-sea", "--body", json.dumps(body))
    assert sent.returncode == 0, sent.stderr
    heard = hotline_cli(home, "listen", "--as", "bob", "--server", url, "--after", "-1",
                        "--count", "1", "--no-ack")
    assert heard.returncode == 0, heard.stderr
    lines = heard.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if " incident-at-sea id=" in line and ": (below)" in line)
    assert lines[head].endswith("[signature verified]")
    assert lines[head + 1:head + 5] == ["    ┆ Time: " + body["time"], "    ┆ Position:",
                                        "    ┆   Latitude: 43.1050", "    ┆   Longitude: 34.2100"]
    assert "    ┆ Units:" in lines and "    ┆   1. Party id: north" in lines
    assert "    ┆      Kind: surface_ship" in lines and "    ┆      Speed (knots): 14" in lines
    assert "    ┆   2. Party id: south" in lines
    assert "{'" not in heard.stdout and '{"' not in heard.stdout
    machine = hotline_cli(home, "listen", "--as", "bob", "--server", url, "--after", "-1",
                          "--count", "1", "--no-ack", "--json")
    record = json.loads(machine.stdout.splitlines()[0])
    assert record["body"] == body  # --json keeps the body as JSON
