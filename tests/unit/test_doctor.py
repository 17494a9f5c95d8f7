"""`hotline doctor`'s verdicts on plain observations (hotline.doctor is pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hotline.client.logapi import Healthz
from hotline.doctor import (
    EndpointFacts,
    Enrolled,
    KeyFacts,
    Pins,
    can_show,
    endpoint_lines,
    health_line,
    profile_lines,
    render,
    verdict,
)
from hotline.entries import HealthState
from hotline.wire.frames import Health, PartyHealthNow, Welcome

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
KEY = "hotline.test+1a2b3c4d+AQnJv9RAVcHxQYUwUctC8OsB5w11"
PINS = Pins(name="alice", member="alice", party="north", role="liaison", origin="hotline.test",
            log_key=KEY, tls_ca=None, servers=("ws://127.0.0.1:8470/v1/ws",), overridden=False)


def welcome(channels: list[str]) -> Welcome:
    return Welcome(member="alice", party="north", role="liaison", channels=channels, log_size=9)


def health(state: HealthState, **parties: PartyHealthNow) -> Health:
    return Health(channel="north-south", state=state, since="2026-12-06T08:00:00.000Z",
                  interval=60, parties=parties)


def reached(url: str = "ws://127.0.0.1:8470/v1/ws", **kw: object) -> EndpointFacts:
    facts = EndpointFacts(url=url, rtt=0.001, healthz=Healthz(status="ok", storage="ok",
                                                              log_size=9, connections=1),
                          served_log_key=KEY, checkpoint_size=9, server_origin="hotline.test",
                          skew=0.2, welcome=welcome(["north-south"]),
                          enrolled=Enrolled("north", "alice", "liaison", "k1", NOW + timedelta(days=300),
                                            ("north-south",)),
                          health={"north-south": health(HealthState.UP, north=PartyHealthNow(
                              state=HealthState.UP, reason="",
                              last_heartbeat="2026-12-06T08:59:58.000Z"))},
                          now=NOW)
    for name, value in kw.items():
        setattr(facts, name, value)
    return facts


def test_every_observation_fine_is_every_line_ticked() -> None:
    lines = endpoint_lines(PINS, reached())
    assert all(line.ok for line in lines)
    assert lines[-1].text == "north-south: UP, every party beats (last heartbeat: north 2 s ago)"
    assert verdict([(None, lines)]) == (0, "all checks passed")


def test_a_clock_past_a_minute_off_is_a_cross() -> None:
    clock = [line for line in endpoint_lines(PINS, reached(skew=-95.0)) if line.text.startswith("clock")]
    assert not clock[0].ok and "95.0 s ahead of the server" in clock[0].text
    assert "NTP" in clock[0].fix


def test_a_refused_key_names_the_code_and_who_can_mend_it() -> None:
    lines = endpoint_lines(PINS, reached(welcome=None, enrolled=None, health={},
                                         auth_code="auth.revoked", auth_message="key k1: revoked"))
    assert not lines[-1].ok and lines[-1].text.startswith("enrolled: the server refuses this key: "
                                                          "auth.revoked")
    assert lines[-1].fix == "this key was revoked: ask north's authority to enroll a new key"


def test_plain_ws_off_loopback_is_a_cross() -> None:
    lines = endpoint_lines(PINS, reached(url="ws://192.0.2.7:8470/v1/ws"))
    tls = next(line for line in lines if line.text.startswith("TLS"))
    assert not tls.ok and "not encrypted" in tls.text and "wss://" in tls.fix


def test_a_silent_party_is_told_to_start_its_agents() -> None:
    frame = health(HealthState.DOWN,
                   north=PartyHealthNow(state=HealthState.UP, condition="ok", reason="",
                                        last_heartbeat="2026-12-06T08:59:59.000Z"),
                   south=PartyHealthNow(state=HealthState.DOWN, condition="silent",
                                        reason="south silent: never heard"))
    line = health_line("north-south", frame, {"south": ["south-agent", "south-backup"]}, NOW)
    assert not line.ok and line.text == "north-south: DOWN: south silent: never heard"
    assert "`hotline agent --as south-agent`; `hotline agent --as south-backup`" in line.fix


def test_an_encrypted_key_without_its_passphrase() -> None:
    lines = profile_lines(PINS, None, KeyFacts(Path("keys/alice.pem"), "bad decrypt", True, False))
    assert not lines[1].ok and "HOTLINE_PASSPHRASE is not set" in lines[1].text


def test_ascii_rendering_for_a_terminal_without_the_marks() -> None:
    assert can_show("utf-8") and not can_show("ascii") and not can_show("latin-1")
    text = render("h", [("server x", endpoint_lines(PINS, reached(skew=120.0)))], fancy=False)
    assert text.isascii()
    assert "  [FAIL] clock: this machine is 120.0 s behind the server" in text
    assert "      -> set this machine's clock" in text


def test_a_liaison_without_this_epochs_encryption_key_is_told_to_renew() -> None:
    """Nothing can be sealed to a liaison who published no key for this epoch (a free-text
    message to its party needs one): a cross, and the command that publishes it."""
    day = 24 * 3600
    today = int(NOW.timestamp()) // day

    def keys_line(published: dict[int, frozenset[int]], role: str = "liaison") -> list[str]:
        enrolled = Enrolled("north", "alice", role, "k1", NOW + timedelta(days=300), ("north-south",))
        facts = reached(epoch_lengths=(day,), epoch_keys=published, enrolled=enrolled)
        return [f"{MARKS_OF[line.ok]} {line.text} | {line.fix}" for line in endpoint_lines(PINS, facts)
                if line.text.startswith("encryption keys")]

    assert keys_line({}) == [
        "✖ encryption keys: none published for this epoch (24 h epochs): nothing sealed for north "
        "can be sealed to alice | hotline keys renew --as alice (the console and `listen` renew "
        "them by themselves)"]
    assert keys_line({day: frozenset({today + 1})})[0].startswith("✖")  # only the next one
    assert keys_line({day: frozenset({today})}) == [
        "✔ encryption keys: published for this epoch (24 h epochs); not yet for the next (`hotline "
        "keys renew` publishes it) | "]
    assert keys_line({day: frozenset({today, today + 1})}) == [
        "✔ encryption keys: published for this epoch (24 h epochs) | "]
    assert keys_line({}, role="agent") == []  # nothing is sealed to an agent


MARKS_OF = {True: "✔", False: "✖"}
