"""hotline.norms.obligations: acknowledgement deadlines and rate windows, derived from log entries
fed in log order, with time as an argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.entries import PENDING, EnvelopeEntry, Expects, OverdueEntry, RejectionsEntry, to_json
from hotline.envelope import Envelope, Kind, Precedence
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation, StoreError
from hotline.norms.obligations import (
    Deadlines,
    ObligationsState,
    RateLimits,
    check_ack_party,
    lateness,
    own_party_ack,
    satisfies,
)
from hotline.norms.template import AckRequirement, Rate
from hotline.times import format_time

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
PARTIES = ("south", "mediator", "east")


# Log entries as the server logs them, typed; built in this one place.
def envelope(kind: str, body: dict[str, Any], *, msg_id: str = "e1", template: str = "launch-notification",
             reply_to: str | None = None, at: datetime = T0) -> Envelope:
    return Envelope(v=1, id=msg_id, kind=Kind(kind), channel="north-south", sender="alice",
                    template=template, precedence=Precedence.FLASH, created=format_time(at), body=body,
                    reply_to=reply_to)


def message(index: int, msg_id: str, *, party: str = "north", due: datetime | None = None,
            ack: str = "understood", owed_by: tuple[str, ...] = ("south", "mediator"),
            template: str = "launch-notification", at: datetime = T0) -> EnvelopeEntry:
    expects = msgspec.UNSET if due is None else Expects(ack=ack, parties=list(owed_by), due=format_time(due))
    return EnvelopeEntry(index=index, time=format_time(at), channel="north-south", party=party, sig={},
                         envelope=envelope("message", {}, msg_id=msg_id, template=template, at=at),
                         expects=expects)


def ack(index: int, of: str, *, party: str, kind: str = "understood") -> EnvelopeEntry:
    return EnvelopeEntry(index=index, time=format_time(T0), channel="north-south", party=party, sig={},
                         envelope=envelope("ack", {"ack": kind}, msg_id=f"ack-{index}", reply_to=of))


@pytest.mark.parametrize(("required", "kind", "body", "meets"), [
    (AckRequirement.RECEIVED, "ack", {"ack": "received"}, True),
    (AckRequirement.RECEIVED, "ack", {"ack": "understood"}, True),
    (AckRequirement.UNDERSTOOD, "ack", {"ack": "understood"}, True),
    (AckRequirement.UNDERSTOOD, "ack", {"ack": "received"}, False),
    (AckRequirement.UNDERSTOOD, "message", {"text": "ok"}, False),
    (AckRequirement.REPLY, "message", {"text": "here is why"}, True),
    (AckRequirement.REPLY, "ack", {"ack": "understood"}, False),
    (AckRequirement.RECEIVED, "heartbeat", {}, False),
])
def test_what_satisfies_each_requirement(required: AckRequirement, kind: str, body: dict[str, Any],
                                         meets: bool) -> None:
    assert satisfies(required, envelope=envelope(kind, body)) is meets


def test_a_party_never_owes_an_ack_of_its_own_message() -> None:
    assert own_party_ack(party="north", message_party="north")
    assert not own_party_ack(party="south", message_party="north")
    check_ack_party(party="south", message_party="north", message="message 3")
    with pytest.raises(ProtocolViolation) as caught:
        check_ack_party(party="north", message_party="north", message="message 3")
    assert caught.value.code == "ack.own_party" and "message 3 is north's own" in caught.value.message


def test_lateness_of_an_ack_against_what_the_message_expects() -> None:
    expects = Expects(ack="understood", parties=["south"], due=format_time(T0))
    understood = envelope("ack", {"ack": "understood"})
    assert lateness(expects, party="south", envelope=understood, at=T0) is False  # due is in time
    assert lateness(expects, party="south", envelope=understood, at=T0 + timedelta(milliseconds=1))
    assert lateness(expects, party="mediator", envelope=understood, at=T0) is None  # owes nothing
    received = envelope("ack", {"ack": "received"})
    assert lateness(expects, party="south", envelope=received, at=T0) is None  # not what was asked


def test_a_missed_deadline_is_handed_out_once_naming_the_parties_still_missing() -> None:
    deadlines = Deadlines()
    due = T0 + timedelta(minutes=5)
    deadlines.observe(message(7, "m1", due=due))
    deadlines.observe(ack(8, "m1", party="south"))
    pending = deadlines.pending("m1")
    assert pending is not None and pending.missing == {"mediator"}
    assert deadlines.overdue(due - timedelta(milliseconds=1)) == []
    (item,) = deadlines.overdue(due)
    assert (item.envelope_id, item.index, item.missing) == ("m1", 7, {"mediator"})
    assert deadlines.overdue(due + timedelta(hours=1)) == []
    # pending until its notice is logged: what is pending is a function of the log alone
    assert len(deadlines) == 1
    deadlines.observe(msgspec.convert({**to_json(item.overdue_entry(time=format_time(due))),
                                       "index": 9}, OverdueEntry))
    assert len(deadlines) == 0
    assert to_json(item.overdue_entry(time=format_time(due))) == {
        "index": PENDING, "time": format_time(due), "kind": "overdue", "channel": "north-south", "ref": "m1",
        "entry": 7, "template": "launch-notification", "precedence": "FLASH",
        "due": format_time(due), "ack": "understood", "missing": ["mediator"]}


def test_a_fully_acknowledged_message_is_never_overdue() -> None:
    deadlines = Deadlines()
    deadlines.observe(message(1, "m1", due=T0))
    deadlines.observe(ack(2, "m1", party="south"))
    deadlines.observe(ack(3, "m1", party="mediator", kind="received"))  # not what was asked
    assert deadlines.pending("m1") is not None
    deadlines.observe(ack(4, "m1", party="mediator"))
    assert deadlines.pending("m1") is None and deadlines.overdue(T0 + timedelta(days=1)) == []


def test_a_logged_overdue_notice_replayed_at_start_is_not_announced_again() -> None:
    deadlines = Deadlines()
    deadlines.observe(message(1, "m1", due=T0))
    deadlines.observe(OverdueEntry(index=2, time=format_time(T0), channel="north-south", ref="m1",
                                   entry=1, template="launch-notification", precedence="FLASH",
                                   due=format_time(T0), ack="understood", missing=["south"]))
    assert deadlines.overdue(T0 + timedelta(days=1)) == []


def test_entries_that_oblige_nothing_are_ignored() -> None:
    deadlines = Deadlines()
    deadlines.observe(message(1, "m1"))  # no expects
    deadlines.observe(message(2, "m2", due=T0, owed_by=()))  # owed by no one
    deadlines.observe(RejectionsEntry(index=3, time=format_time(T0), party="north", member="alice",
                                      since=format_time(T0), until=format_time(T0), count=1, codes={}))
    deadlines.observe(msgspec.structs.replace(
        message(4, "m4", due=T0), expects=Expects(ack="understood", parties=["south"], due="not a time")))
    assert len(deadlines) == 0


@given(st.lists(st.tuples(st.integers(0, 600), st.sets(st.sampled_from(PARTIES))), max_size=20))
def test_overdue_hands_out_exactly_the_unanswered_messages_oldest_first(
        messages: list[tuple[int, set[str]]]) -> None:
    """Whatever the deadlines and whoever answers in time: after every due time, ``overdue``
    returns each message some owing party left unanswered, once, in due order."""
    deadlines = Deadlines()
    index = 0
    for n, (seconds, answered) in enumerate(messages):
        deadlines.observe(message(index, f"m{n}", due=T0 + timedelta(seconds=seconds), owed_by=PARTIES))
        index += 1
        for party in sorted(answered):
            deadlines.observe(ack(index, f"m{n}", party=party))
            index += 1
    found = deadlines.overdue(T0 + timedelta(seconds=600))
    expected = [(f"m{n}", set(PARTIES) - answered) for n, (_, answered) in enumerate(messages)
                if answered != set(PARTIES)]
    assert sorted((item.envelope_id, item.missing) for item in found) == sorted(expected, key=lambda e: e[0])
    assert [item.due for item in found] == sorted(item.due for item in found)
    assert deadlines.overdue(T0 + timedelta(days=1)) == [] and len(deadlines) == len(found)


def test_a_notice_that_could_not_be_logged_is_handed_out_again() -> None:
    deadlines = Deadlines()
    deadlines.observe(message(1, "m1", due=T0))
    (item,) = deadlines.overdue(T0)
    deadlines.rearm(item)
    assert deadlines.overdue(T0) == [item]
    deadlines.observe(ack(2, "m1", party="south"))
    deadlines.observe(ack(3, "m1", party="mediator"))
    deadlines.rearm(item)  # answered meanwhile: nothing to hand out
    assert deadlines.overdue(T0 + timedelta(days=1)) == []


def test_a_rate_window_slides_and_refused_attempts_do_not_count() -> None:
    limits = RateLimits()
    rate = Rate(max=2, per=timedelta(minutes=10))
    key = ("north-south", "north", "message")
    for n, minute in enumerate((0, 3)):
        assert limits.check(key, rate, T0 + timedelta(minutes=minute)) is None
        limits.hold(key, f"m{n}", T0 + timedelta(minutes=minute))
    # a third within the window: refused until the oldest leaves it (and a refusal is not recorded)
    assert limits.check(key, rate, T0 + timedelta(minutes=9)) == T0 + timedelta(minutes=10)
    assert limits.check(key, rate, T0 + timedelta(minutes=9, seconds=59)) == T0 + timedelta(minutes=10)
    assert limits.check(key, rate, T0 + timedelta(minutes=10)) is None
    assert limits.check(("north-south", "south", "message"), rate, T0) is None  # per party


def test_a_held_message_counts_until_logged_then_at_its_log_time() -> None:
    limits = RateLimits()
    rate = Rate(max=1, per=timedelta(hours=1))
    key = ("north-south", "north", "launch-notification")
    limits.hold(key, "m1", T0)
    assert limits.check(key, rate, T0) == T0 + timedelta(hours=1)
    limits.observe(message(5, "m1", at=T0 + timedelta(seconds=1)), rate)  # logged: no longer held
    assert limits.check(key, rate, T0 + timedelta(hours=1)) == T0 + timedelta(hours=1, seconds=1)
    assert limits.check(key, rate, T0 + timedelta(hours=1, seconds=1)) is None


def test_a_message_not_logged_after_all_is_taken_back() -> None:
    limits = RateLimits()
    rate = Rate(max=1, per=timedelta(hours=1))
    key = ("north-south", "north", "message")
    limits.hold(key, "m1", T0)
    assert limits.check(key, rate, T0) is not None
    limits.release(key, "m2")  # not held: nothing to take back
    assert limits.check(key, rate, T0) is not None
    limits.release(key, "m1")
    assert limits.check(key, rate, T0) is None
    limits.release(("other", "x", "y"), "m1")  # never held: no error


def test_a_hold_never_released_counts_no_longer_than_the_window() -> None:
    limits = RateLimits()
    rate = Rate(max=1, per=timedelta(hours=1))
    key = ("north-south", "north", "message")
    limits.hold(key, "lost", T0)
    assert limits.check(key, rate, T0 + timedelta(minutes=59)) is not None
    assert limits.check(key, rate, T0 + timedelta(hours=1)) is None


def test_start_up_replay_counts_only_accepted_messages_of_limited_templates() -> None:
    limits = RateLimits()
    rate = Rate(max=1, per=timedelta(hours=1))
    key = ("north-south", "north", "launch-notification")
    limits.observe(ack(1, "m0", party="north"), rate)  # an ack is not a message
    limits.observe(message(2, "m2"), None)  # its template is not limited
    assert limits.check(key, rate, T0) is None
    limits.observe(message(3, "m3"), rate)
    assert limits.check(key, rate, T0 + timedelta(minutes=1)) == T0 + timedelta(hours=1)


def test_saved_obligations_restore_the_same_deadlines_and_windows() -> None:
    """What a start restores from a save is what it would have rebuilt from the log."""
    rate = Rate(max=2, per=timedelta(hours=1))
    entries = [message(1, "m1", due=T0 + timedelta(minutes=5), at=T0),
               message(2, "m2", due=T0 + timedelta(minutes=9), at=T0 + timedelta(minutes=2)),
               ack(3, "m1", party="south"),
               message(4, "m4", due=T0 + timedelta(minutes=7), party="south", at=T0 + timedelta(minutes=3))]
    deadlines, limits = Deadlines(), RateLimits()
    for entry in entries:
        deadlines.observe(entry)
        if entry.envelope.kind is Kind.MESSAGE:
            limits.observe(entry, rate)
    saved = ObligationsState(size=5, root="root", pending=deadlines.state(),
                             rates=limits.state(T0 - timedelta(hours=1)))
    loaded = ObligationsState.decode(saved.encode())
    assert loaded == saved
    again, windows = Deadlines(), RateLimits()
    again.restore(loaded.pending)
    windows.restore(loaded.rates)
    later = T0 + timedelta(minutes=10)
    assert [(p.envelope_id, p.missing) for p in again.overdue(later)] == \
        [(p.envelope_id, p.missing) for p in deadlines.overdue(later)] == \
        [("m1", {"mediator"}), ("m4", {"south", "mediator"}), ("m2", {"south", "mediator"})]
    key = ("north-south", "north", "launch-notification")
    assert windows.check(key, rate, later) == limits.check(key, rate, later) == T0 + timedelta(hours=1)
    # times outside every window are not saved
    assert limits.state(T0 + timedelta(minutes=1))[0].sent == [format_time(T0 + timedelta(minutes=2))]


@pytest.mark.parametrize("data", [b"", b"[]", b"{", b'{"size": 1}',
                                  b'{"size": "1", "root": "", "pending": [], "rates": []}',
                                  b'{"size": 1, "root": "", "pending": [], "rates": [], "x": 1}'])
def test_a_damaged_save_is_a_typed_error(data: bytes) -> None:
    with pytest.raises(StoreError) as refused:
        ObligationsState.decode(data)
    assert refused.value.code == Code.STORE_DAMAGED
