"""Closing a channel by ceremony (issue 15): an agreement version with ``ends``. From then on
nothing more is sent on it (``Roster.check_send``: the server and every verifier, the auditor's
included), while what was logged before stays valid and readable.

The deployment is tests/unit/test_roster.py's (fixed keys)."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from hotline.canonical import canonical_bytes
from hotline.envelope import Kind
from hotline.errors import ProtocolViolation
from hotline.norms.agreement import Agreement
from hotline.roster import Roster, SignedDocument
from hotline.times import format_time
from hotline.verification import EntryRefused, verify_envelope_entry
from tests.unit.test_roster import CHANNEL, NOW, T0, agreed, agreement_doc, member
from tests.unit.test_verification import INDEX, entry
from tests.unit.test_verification import roster as demo_roster

ENDS = NOW + timedelta(hours=1)


def closed_roster() -> Roster:
    built = demo_roster()
    built.add(agreed(agreement_doc(version=2, ends=format_time(ENDS))))
    return built


def test_an_agreement_without_an_end_keeps_its_bytes_and_signatures() -> None:
    signed = agreed()
    decoded = SignedDocument.from_json(signed)
    assert canonical_bytes(msgspec.to_builtins(decoded.document)) == canonical_bytes(
        signed["document"])
    assert "ends" not in msgspec.to_builtins(decoded.document)
    assert Agreement.of(decoded.document).ends is None  # type: ignore[arg-type]


def test_an_end_is_a_time_not_before_the_agreement_takes_effect() -> None:
    assert Agreement.from_json(agreement_doc(ends=format_time(ENDS))).ends == ENDS
    for bad in ("tomorrow", format_time(T0 - timedelta(seconds=1)), 7):
        with pytest.raises(ProtocolViolation) as info:
            Agreement.from_json(agreement_doc(ends=bad))
        assert info.value.code == "roster.invalid"


def test_a_closed_channel_takes_nothing_from_its_end_on() -> None:
    roster = closed_roster()
    alice = member(roster, "alice")
    assert roster.check_send(alice, CHANNEL, Kind.MESSAGE, at=ENDS - timedelta(seconds=1)).version == 2
    for at in (ENDS, ENDS + timedelta(days=400)):
        with pytest.raises(ProtocolViolation) as info:
            roster.check_send(alice, CHANNEL, Kind.MESSAGE, at=at)
        assert info.value.code == "channel.closed"
    assert roster.check_channel(alice, CHANNEL).version == 2  # reading stays allowed


def test_the_verifier_refuses_an_envelope_logged_after_the_end_and_keeps_those_before() -> None:
    roster = closed_roster()
    before = entry(created=ENDS - timedelta(minutes=1), logged=ENDS - timedelta(seconds=1))
    assert verify_envelope_entry(roster, before, index=INDEX).index == INDEX
    # created before the end, logged after it: the log time decides, as for a revocation
    after = entry(created=ENDS - timedelta(minutes=1), logged=ENDS)
    with pytest.raises(EntryRefused) as info:
        verify_envelope_entry(roster, after, index=INDEX)
    assert "closed at" in info.value.reason
