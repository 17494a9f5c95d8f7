"""Issue 20, acceptance 2 (the console's half): whatever a sender or the host writes into any field
the console shows, the rendered text holds no control character, and no body can draw a line of
its own: each of its lines is marked as the body's."""

from __future__ import annotations

import dataclasses
from datetime import UTC, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.console.render import (
    QUOTE,
    alert_text,
    channel_prompt,
    message_prompt,
    owed_bar,
    status_text,
    verification,
)
from hotline.console.screens import details_text
from hotline.console.state import Alert, Delivery
from hotline.display import unsafe
from hotline.entries import HealthState
from hotline.norms.agreement import CatalogueItem
from hotline.wire.frames import Health, PartyHealthNow
from tests.hostile_text import FORGED, hostile_text
from tests.unit.console.test_state import CHANNEL, NOW, bob, entry, env, expects


def clean(text: str) -> None:
    """No control character in any line (our own line breaks aside)."""
    for line in text.split("\n"):
        assert unsafe(line) == [], repr(line)


def check_structure(text: str, template: str) -> None:
    """Line 1 is the header, line 2 the body's first (after its label), then the body's
    continuation lines, each marked; then the console's own lines, which no body text reaches."""
    lines = text.split("\n")
    assert lines[0].startswith((" [", "▶["))
    assert lines[1].startswith(f"    {template}: ") or lines[1] == f"    {template}:"
    rest = lines[2:]
    body = 0
    while body < len(rest) and rest[body].startswith(QUOTE):
        body += 1
    assert body <= 2
    assert rest[body].startswith(("    sig✓", "    signed here", "    SIGNATURE", "    REFUSED",
                                  "    PENDING"))


@settings(max_examples=150, deadline=None)
@given(body=hostile_text, other=hostile_text, width=st.integers(min_value=20, max_value=200))
def test_no_field_reaches_the_terminal_as_a_control(body: str, other: str, width: int) -> None:
    state = bob()
    state.set_catalogue(CHANNEL, (CatalogueItem(number=2, code="XY", text={"en": other}),))
    text = state.add_entry(8, entry(8, env("alice", body={"text": body}), "north",
                                    expects=expects("received", "south")), verified=True, now=NOW)
    form = state.add_entry(9, entry(9, env("alice", template="risk", body={other: body, "n": {other: 1}}),
                                    "north"), verified=True, now=NOW)
    pre = state.add_entry(10, entry(10, env("alice", template="preagreed", body={"number": 2}), "north"),
                          verified=True, now=NOW)
    assert text is not None and form is not None and pre is not None
    # names are checked on the wire; the renderer must not rely on it
    forged = dataclasses.replace(text, sender=other, party=body, template="message",
                                 delivery=Delivery.REFUSED, refusal=other)
    state.alerts.append(Alert(CHANNEL, "down", other + body, NOW))
    state.apply_health(Health(channel=CHANNEL, state=HealthState.DOWN, since=other, interval=1,
                              parties={body: PartyHealthNow(state=HealthState.DOWN, reason=other,
                                                            last_heartbeat=body)}), now=NOW)

    for message, template in ((text, "message"), (form, "risk"), (pre, "preagreed"),
                              (forged, "message")):
        rendered = message_prompt(message, state, NOW + timedelta(minutes=1), UTC, width=width).plain
        clean(rendered)
        check_structure(rendered, template)
    clean(verification(forged, None).plain)
    clean(channel_prompt(state.channels[CHANNEL], state, NOW).plain)
    clean(alert_text(state.alerts).plain)
    clean(owed_bar(state.awaiting_me(NOW)).plain)
    clean(status_text(link="DOWN", url=other, detail=body, member=other, party=body, role=other,
                      safety="1" * 40, pending=0, retry_in=None).plain)
    clean(details_text([("signed by the sender", [(other, body)]), ("server", [("x", other)])],
                       {"body": {other: body}}).plain)


def test_the_issues_forged_flash_line_is_shown_as_the_body_it_is() -> None:
    state = bob()
    message = state.add_entry(8, entry(8, env("alice", body={"text": FORGED + " " * 200 + FORGED}),
                                       "north"), verified=True, now=NOW)
    assert message is not None
    rendered = message_prompt(message, state, NOW, UTC, width=76).plain
    clean(rendered)
    check_structure(rendered, "message")
    assert "␛[2J␛[H‼FLASH‼ carol@mediator: LAUNCH DETECTED" in rendered
    assert "⟨U+202E⟩txet" in rendered
    # the forged header is never where a header is: only on the body's own lines
    assert all(line.startswith(("    message: ", QUOTE)) for line in rendered.split("\n")
               if "LAUNCH" in line)
