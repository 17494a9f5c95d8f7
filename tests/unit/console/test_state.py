"""The console's view-model (pure): messages from the log and the outbox, acknowledgement state per
party, what the officer owes and its countdown, health and alerts, and the formatting helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hotline.console.state import (
    AckMark,
    ConsoleState,
    Delivery,
    age,
    body_text,
    both_times,
    countdown,
)
from hotline.entries import Entry, decode
from hotline.envelope import Envelope, new_envelope_id
from hotline.norms.agreement import CatalogueItem
from hotline.times import format_time
from hotline.wire.frames import SERVER_TYPES, Health, decode_value

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
CHANNEL = "north-south"
_ids = iter(range(1, 1 << 30))


def env(sender: str = "alice", *, kind: str = "message", template: str = "message",
        precedence: str = "ROUTINE", body: dict[str, Any] | None = None,
        reply_to: str | None = None) -> dict[str, Any]:
    out = {"v": 1, "id": new_envelope_id(next(_ids).to_bytes(16, "big")), "kind": kind,
           "channel": CHANNEL, "sender": sender, "template": template, "precedence": precedence,
           "created": format_time(NOW), "body": body if body is not None else {"text": "hi"}}
    if reply_to is not None:
        out["reply_to"] = reply_to
    return out


def entry(index: int, envelope: dict[str, Any], party: str, **extra: Any) -> Entry:
    return decode({"index": index, "time": format_time(NOW), "kind": "envelope",
                   "channel": CHANNEL, "party": party, "envelope": envelope,
                   "sig": {"alg": "ed25519", "key": "k", "sig": "s"}, **extra})


def expects(ack: str, *parties: str, due: datetime = NOW + timedelta(minutes=10)) -> dict[str, Any]:
    return {"ack": ack, "from": list(parties), "due": format_time(due)}


def ack(index: int, of: dict[str, Any], sender: str, party: str, kind: str = "received",
        late: bool = False) -> Entry:
    body = {"ack": kind}
    extra = {"late": True} if late else {}
    return entry(index, env(sender, kind="ack", body=body, reply_to=of["id"]), party, **extra)


def bob() -> ConsoleState:
    state = ConsoleState(member="bob", party="south", role="liaison")
    state.set_channels([CHANNEL])
    return state


def test_a_message_with_its_acks_per_party_and_what_is_owed() -> None:
    state = bob()
    message = env("alice", template="preagreed", precedence="FLASH", body={"number": 2})
    shown = state.add_entry(8, entry(8, message, "north",
                                     expects=expects("understood", "mediator", "south")),
                            verified=True, now=NOW)
    assert shown is not None and shown.index == 8 and shown.urgent
    marks = {a.party: a.mark for a in state.ack_states(shown, NOW)}
    assert marks == {"mediator": AckMark.WAITING, "south": AckMark.WAITING}

    owed = state.obligation(shown, NOW + timedelta(minutes=4))
    assert owed is not None and owed.ack == "understood" and not owed.overdue
    assert countdown(owed.remaining) == "06:00"

    # a 'received' ack does not satisfy 'understood'
    state.add_entry(9, ack(9, message, "bob", "south"), verified=True, now=NOW)
    south = next(a for a in state.ack_states(shown, NOW) if a.party == "south")
    assert south.mark is AckMark.WAITING and south.received
    assert state.obligation(shown, NOW) is not None

    state.add_entry(10, ack(10, message, "bob", "south", "understood"), verified=True, now=NOW)
    state.add_entry(11, ack(11, message, "carol", "mediator", "understood", late=True),
                    verified=True, now=NOW)
    acks = {a.party: a for a in state.ack_states(shown, NOW)}
    assert acks["south"].mark is AckMark.UNDERSTOOD and acks["mediator"].late
    assert state.obligation(shown, NOW) is None and state.awaiting_me(NOW) == []


def test_overdue_by_the_clock_and_by_the_servers_notice() -> None:
    state = bob()
    message = env("alice")
    shown = state.add_entry(3, entry(3, message, "north", expects=expects("received", "south",
                                                                          "mediator")),
                            verified=True, now=NOW)
    assert shown is not None
    later = NOW + timedelta(minutes=11)
    owed = state.obligation(shown, later)
    assert owed is not None and owed.overdue and countdown(owed.remaining) == "+01:00"
    assert {a.mark for a in state.ack_states(shown, later)} == {AckMark.OVERDUE}

    notice = {"index": 4, "time": format_time(later), "kind": "overdue", "channel": CHANNEL,
              "ref": message["id"], "entry": 3, "template": "message", "precedence": "ROUTINE",
              "due": format_time(NOW + timedelta(minutes=10)), "ack": "received",
              "missing": ["mediator", "south"]}
    state.add_entry(4, decode(notice), verified=True, now=later)
    # the server's word counts even if our clock were behind
    assert {a.mark for a in state.ack_states(shown, NOW)} == {AckMark.OVERDUE}
    assert [a.kind for a in state.alerts] == ["overdue"] and "OVERDUE" in state.alerts[0].text


def test_a_reply_satisfies_a_reply_obligation() -> None:
    state = bob()
    query = env("alice", template="unusual-activity-query", body={})
    shown = state.add_entry(5, entry(5, query, "north", expects=expects("reply", "south")),
                            verified=True, now=NOW)
    assert shown is not None and state.obligation(shown, NOW) is not None
    state.add_entry(6, entry(6, env("bob", template="unusual-activity-reply", body={},
                                    reply_to=query["id"]), "south"), verified=True, now=NOW)
    assert state.obligation(shown, NOW) is None
    assert state.ack_states(shown, NOW)[0].mark is AckMark.REPLIED


def test_an_ack_delivered_before_its_message_is_applied_when_the_message_arrives() -> None:
    state = bob()
    message = env("alice")
    state.add_entry(7, ack(7, message, "carol", "mediator", "understood"), verified=True, now=NOW)
    shown = state.add_entry(6, entry(6, message, "north", expects=expects("received", "mediator")),
                            verified=True, now=NOW)
    assert shown is not None and state.ack_states(shown, NOW)[0].mark is AckMark.UNDERSTOOD


def test_replays_change_nothing_and_unread_counts_only_new_messages_elsewhere() -> None:
    state = bob()
    state.set_channels(["other"])
    state.select("other")
    message = env("alice")
    assert state.add_entry(3, entry(3, message, "north"), verified=True, now=NOW) is not None
    assert state.add_entry(3, entry(3, message, "north"), verified=True, now=NOW) is None
    assert state.channels[CHANNEL].unread == 1
    state.add_entry(4, entry(4, env("alice"), "north"), verified=True, now=NOW, unread=False)
    assert state.channels[CHANNEL].unread == 1  # seen in an earlier run
    state.select(CHANNEL)
    assert state.channels[CHANNEL].unread == 0


def test_our_own_message_goes_from_pending_to_accepted_without_appearing_twice() -> None:
    state = ConsoleState(member="alice", party="north", role="liaison")
    state.set_channels([CHANNEL])
    envelope = Envelope.from_json(env("alice"))
    sig = {"alg": "ed25519", "key": "k", "sig": "s"}
    pending = state.add_outbox(envelope, sig, Delivery.PENDING)
    assert pending is not None and pending.index is None and pending.delivery is Delivery.PENDING
    other = state.add_entry(3, entry(3, env("bob"), "south"), verified=True, now=NOW)
    assert other is not None
    # not logged yet: after everything logged, whatever its creation time
    assert [m.index for m in state.channels[CHANNEL].ordered()] == [3, None]

    state.accepted(envelope.id, 4)
    accepted = state.find(envelope.id)
    assert accepted is pending and accepted.delivery is Delivery.ACCEPTED and accepted.index == 4
    state.add_entry(4, entry(4, envelope.to_json(), "north", expects=expects("received", "south")),
                    verified=True, now=NOW)
    assert len(state.channels[CHANNEL].messages) == 2 and pending.expects is not None
    assert state.channels[CHANNEL].unread == 0  # our own messages are never unread


def test_a_refusal_is_shown_and_alerts() -> None:
    state = ConsoleState(member="alice", party="north", role="liaison")
    envelope = Envelope.from_json(env("alice"))
    state.add_outbox(envelope, {}, Delivery.PENDING)
    state.refused(envelope.id, "norm.rate_limited", "too many", now=NOW)
    message = state.find(envelope.id)
    assert message is not None and message.delivery is Delivery.REFUSED
    assert message.refusal == "norm.rate_limited: too many"
    assert state.alerts[-1].kind == "refused"


def test_an_entry_that_does_not_verify_is_shown_marked_alerted_and_never_acked() -> None:
    state = bob()
    shown = state.add_entry(3, entry(3, env("alice"), "north"), verified=False,
                            error="bad signature", now=NOW)
    assert shown is not None and shown.verified is False
    assert state.alerts[-1].kind == "unverified" and "bad signature" in state.alerts[-1].text
    assert not state.needs_received_ack(shown)


def test_automatic_received_ack_only_once_and_never_for_our_own() -> None:
    state = bob()
    message = env("alice")
    shown = state.add_entry(3, entry(3, message, "north"), verified=True, now=NOW)
    assert shown is not None and state.needs_received_ack(shown)
    state.add_entry(4, ack(4, message, "bob", "south"), verified=True, now=NOW)
    assert not state.needs_received_ack(shown)
    own = state.add_entry(5, entry(5, env("bob"), "south"), verified=True, now=NOW)
    assert own is not None and not state.needs_received_ack(own)
    # nor for a colleague's: no party acks its own party's messages (the server refuses it)
    colleague = state.add_entry(6, entry(6, env("brenda"), "south"), verified=True, now=NOW)
    assert colleague is not None and not state.needs_received_ack(colleague)
    auditor = ConsoleState(member="audrey", party="mediator", role="auditor")
    seen = auditor.add_entry(3, entry(3, env("alice"), "north"), verified=True, now=NOW)
    assert seen is not None and not auditor.needs_received_ack(seen)


def health(frame: dict[str, Any]) -> Health:
    decoded = decode_value(frame, allowed=SERVER_TYPES)
    assert isinstance(decoded, Health)
    return decoded


def test_health_down_alerts_once_and_clears_when_the_channel_recovers() -> None:
    state = bob()
    beat = format_time(NOW - timedelta(seconds=40))
    frame = {"type": "health", "channel": CHANNEL, "state": "DOWN", "since": format_time(NOW),
             "interval": 10, "parties": {
                 "north": {"state": "UP", "reason": "up", "last_heartbeat": format_time(NOW)},
                 "south": {"state": "DOWN", "reason": "silent", "last_heartbeat": beat}}}
    alert = state.apply_health(health(frame), now=NOW)
    assert alert is not None and "CHANNEL north-south DOWN" in alert.text and "south silent" in alert.text
    assert state.apply_health(health(frame), now=NOW) is None  # still down: no second alert
    assert state.channels[CHANNEL].stalest() == ("south", NOW - timedelta(seconds=40))
    state.apply_health(health({**frame, "state": "UP"}), now=NOW)
    assert state.alerts == []


def test_heartbeat_entries_keep_the_last_heartbeat_of_each_party() -> None:
    state = bob()
    state.add_entry(3, entry(3, env("north-agent", kind="heartbeat", template="heartbeat",
                                    body={"seq": 1, "sent": format_time(NOW)}), "north"),
                    verified=True, now=NOW)
    assert state.channels[CHANNEL].party_heartbeats() == {"north": NOW}
    assert state.channels[CHANNEL].messages == {}


def test_catalogue_text_in_the_officers_language() -> None:
    state = ConsoleState(member="bob", party="south", role="liaison", lang="ru")
    catalogue = (CatalogueItem(number=2, code="X-Y", text={"en": "Objects", "ru": "Объекты"}),)
    state.set_catalogue(CHANNEL, catalogue)
    shown = state.add_entry(3, entry(3, env("alice", template="preagreed", body={"number": 2}), "north"),
                            verified=True, now=NOW)
    assert shown is not None and state.catalogue_text(shown) == "Объекты"
    assert body_text(shown, state.catalogue_text(shown)) == "#2: Объекты"
    state.lang = "fr"  # no French text: the first one held
    assert state.catalogue_text(shown) == "Objects"


def test_formatting() -> None:
    assert countdown(timedelta(minutes=4, seconds=59)) == "04:59"
    assert countdown(timedelta(seconds=-12)) == "+00:12"
    assert countdown(timedelta(hours=2, minutes=3, seconds=4)) == "2:03:04"
    assert [age(timedelta(seconds=s)) for s in (4, 190, 7300, 200000)] == ["4s", "3m", "2h", "2d"]
    moment = datetime(2026, 11, 27, 21, 4, 5, tzinfo=UTC)
    assert both_times(moment, UTC) == "21:04:05Z"
    assert both_times(moment, timezone(timedelta(hours=1))) == "21:04:05Z (22:04 local)"
    # another calendar day locally is said; a moment given in another zone is shown in UTC
    assert both_times(moment, timezone(timedelta(hours=5, minutes=30))) == "21:04:05Z (02:34+1d local)"
    early = datetime(2026, 11, 28, 3, 0, tzinfo=timezone(timedelta(hours=3)))  # 00:00Z
    assert both_times(early, timezone(timedelta(hours=-5))) == "00:00:00Z (19:00-1d local)"
    assert both_times(early, UTC) == "00:00:00Z"
