"""hotline.verification: the one check of a logged envelope entry that the client, the console and
the auditor share (issue 11, defect 8). Table-driven: each case changes one thing about a valid
entry and names the reason it must be refused for; anything else the function is given is
refused with the same typed error, never a stray exception.

The deployment is tests/unit/test_roster.py's (fixed keys): alice (north liaison), bob (south
liaison), north-relay (north agent), observer (the channel's auditor), wendy (west, no channel).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.entries import to_json
from hotline.envelope import AckKind, Envelope, Kind, ack_id, new_envelope_id
from hotline.roster import Roster, revocation, sign_document
from hotline.times import format_time
from hotline.verification import DEFAULT_SKEW, EntryRefused, verify_envelope_entry
from tests.unit.test_roster import (
    AUTH,
    AUTHORITIES,
    CHANNEL,
    FAST,
    KEYS,
    NOW,
    PEOPLE,
    agreed,
    enrolled,
)

INDEX = 42
MESSAGE_ID = new_envelope_id(b"\x07" * 16)


def roster(*, revoked: dict[str, datetime] | None = None) -> Roster:
    built = Roster(AUTHORITIES)
    for name in PEOPLE:
        built.add(enrolled(name))
    built.add(agreed())
    for name, at in (revoked or {}).items():
        party = PEOPLE[name][0]
        built.add(sign_document(revocation(party=party, member=name, key_id=KEYS[name].key_id,
                                           revoked_at=at), AUTH[party]))
    return built


def entry(sender: str = "alice", *, kind: Kind = Kind.MESSAGE, created: datetime = NOW,
          logged: datetime | None = None, signer: str | None = None, env_id: str | None = None,
          reply_to: str | None = None, body: dict[str, Any] | None = None,
          channel: str = CHANNEL) -> dict[str, Any]:
    """The entry the server would log for ``sender``'s envelope (signed by ``signer``'s key)."""
    if kind is Kind.ACK:
        reply_to = reply_to or MESSAGE_ID
        body = body or {"ack": "received"}
        env_id = env_id or ack_id(party=PEOPLE[sender][0], member=sender, reply_to=reply_to,
                                  ack=AckKind(body["ack"]))
    envelope = Envelope.build(id=env_id or new_envelope_id(b"\x01" * 16), kind=kind,
                              channel=channel, sender=sender, template="incident-report",
                              precedence="FLASH", created=created, reply_to=reply_to,
                              body={"text": "track"} if body is None else body)
    return {"index": INDEX, "time": format_time(logged or created + timedelta(seconds=1)),
            "kind": "envelope", "channel": channel, "party": PEOPLE[sender][0],
            "envelope": envelope.to_json(), "sig": envelope.sign(KEYS[signer or sender])}


def changed(base: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(base)
    change(copied)
    return copied


REVOKED_AT = NOW + timedelta(minutes=10)

# (name, entry, reason fragment): each refused with verify.failed naming that reason
REFUSED: list[tuple[str, Any, str]] = [
    ("not an entry", ["envelope"], "entry must be an object"),
    ("another kind of entry", {"index": INDEX, "time": format_time(NOW), "kind": "rejected",
                               "party": "north", "member": "alice", "template": "t", "code": "c",
                               "reason": "r"}, "not an envelope entry"),
    ("an entry of no known kind", {**entry(), "kind": "memo"}, "entry is of no known kind"),
    ("delivered under another index", {**entry(), "index": INDEX + 1}, "entry 43"),
    ("index is a boolean", {**entry(), "index": True}, "entry.index must be an integer, not bool"),
    ("no channel", changed(entry(), lambda e: e.pop("channel")), "entry is missing channel"),
    ("no log time", changed(entry(), lambda e: e.pop("time")), "entry is missing time"),
    ("a log time not a time", {**entry(), "time": "yesterday"}, "time must be an RFC 3339"),
    ("malformed envelope", changed(entry(), lambda e: e["envelope"].pop("precedence")),
     "envelope is missing precedence"),
    ("no signature", changed(entry(), lambda e: e.pop("sig")), "entry is missing sig"),
    ("a signature without its key", changed(entry(), lambda e: e["sig"].pop("key")), "sig is"),
    ("unknown key", changed(entry(), lambda e: e["sig"].update(key="ed25519:" + "A" * 16)),
     "is not enrolled"),
    # the key was revoked before the server logged it, though the envelope says it was earlier
    ("logged after its key's revocation, created before", entry(
        "bob", created=REVOKED_AT - timedelta(minutes=1), logged=REVOKED_AT + timedelta(seconds=1)),
     "revoked at"),
    ("created after its key's revocation", entry("bob", created=REVOKED_AT + timedelta(seconds=1)),
     "revoked at"),
    ("created after it was logged, beyond the skew", entry(
        created=NOW + DEFAULT_SKEW + timedelta(seconds=1), logged=NOW), "after it was logged"),
    ("signed by another member", entry("alice", signer="bob"), "signed by bob (south) but names alice"),
    ("entry names another party", {**entry(), "party": "south"}, "but names alice (south)"),
    ("logged on another channel", {**entry(), "channel": "east-west"}, "was logged on east-west"),
    ("a message signed by an agent", entry("north-relay"), "an agent may not send message"),
    ("an ack sent by an auditor", entry("observer", kind=Kind.ACK), "may not send ack"),
    ("a sender outside the channel", entry("wendy"), "not a member of channel"),
    ("a signature over other content", changed(entry(), lambda e: e["envelope"]["body"].update(
        text="altered")), "signature does not verify"),
    ("an ack under another id", entry("bob", kind=Kind.ACK, env_id=new_envelope_id(b"\x09" * 16)),
     "must have id"),
    ("an ack under another member's id", entry("bob", kind=Kind.ACK, env_id=ack_id(
        party="north", member="alice", reply_to=MESSAGE_ID, ack=AckKind.RECEIVED)), "must have id"),
    ("an ack under its other kind's id", entry("bob", kind=Kind.ACK, body={"ack": "understood"},
                                               env_id=ack_id(party="south", member="bob",
                                                             reply_to=MESSAGE_ID,
                                                             ack=AckKind.RECEIVED)), "must have id"),
]


@pytest.mark.parametrize(("name", "bad", "reason"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused(name: str, bad: Any, reason: str) -> None:
    with pytest.raises(EntryRefused) as info:
        verify_envelope_entry(roster(revoked={"bob": REVOKED_AT}), bad, index=INDEX)
    assert info.value.code == "verify.failed"
    assert info.value.message == f"entry {INDEX}: {info.value.reason}"
    assert reason in info.value.reason, info.value.reason


@pytest.mark.parametrize(("name", "good"), [
    ("a liaison's message", entry()),
    ("created within the skew after it was logged", entry(created=NOW + DEFAULT_SKEW, logged=NOW)),
    ("a liaison's ack with its derived id", entry("bob", kind=Kind.ACK)),
    ("an agent's ack", entry("north-relay", kind=Kind.ACK, body={"ack": "understood"})),
    ("an agent's heartbeat", entry("north-relay", kind=Kind.HEARTBEAT, body={})),
    ("logged just before its key's revocation", entry(
        "bob", created=REVOKED_AT - timedelta(seconds=2), logged=REVOKED_AT - timedelta(seconds=1))),
])
def test_verified(name: str, good: dict[str, Any]) -> None:
    verified = verify_envelope_entry(roster(revoked={"bob": REVOKED_AT}), good, index=INDEX)
    assert verified.index == INDEX and to_json(verified.entry) == good
    assert verify_envelope_entry(roster(revoked={"bob": REVOKED_AT}), verified.entry,
                                 index=INDEX) == verified  # the typed entry, as the auditor has it
    assert verified.envelope.to_json() == good["envelope"]
    assert (verified.member.member, verified.member.party) == (good["envelope"]["sender"], good["party"])
    assert format_time(verified.logged) == good["time"]


def test_a_larger_skew_accepts_what_the_default_refuses() -> None:
    late = entry(created=NOW + timedelta(minutes=8), logged=NOW)
    with pytest.raises(EntryRefused):
        verify_envelope_entry(roster(), late, index=INDEX)
    verify_envelope_entry(roster(), late, index=INDEX, skew=timedelta(minutes=10))


JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
FIELDS = ("index", "time", "kind", "channel", "party", "envelope", "sig")
ENVELOPE_FIELDS = ("v", "id", "kind", "channel", "sender", "template", "precedence", "created",
                   "body", "reply_to")


@FAST
@given(field=st.sampled_from(FIELDS), inner=st.sampled_from(ENVELOPE_FIELDS), value=JSON,
       deep=st.booleans())
def test_any_entry_is_verified_or_refused_never_a_stray_error(field: str, inner: str, value: Any,
                                                              deep: bool) -> None:
    """Whatever a hostile host delivers, the answer is a verified entry or one typed refusal."""
    base = entry("bob", kind=Kind.ACK)
    if deep:
        base["envelope"][inner] = value
    else:
        base[field] = value
    try:
        verify_envelope_entry(roster(), base, index=INDEX)
    except EntryRefused as exc:
        assert exc.code == "verify.failed"
