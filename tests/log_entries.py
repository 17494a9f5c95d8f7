"""Typed log entries for tests, as the server builds them (``hotline.entries``), not yet in the
log (index ``PENDING``) unless given one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hotline.entries import (
    PENDING,
    Entry,
    EnvelopeEntry,
    HealthEntry,
    HealthState,
    OverdueEntry,
    RejectedEntry,
    decode,
    with_index,
)
from hotline.envelope import Envelope, Kind, new_envelope_id

TIME = "2026-11-27T00:00:00.000Z"
SIG = {"alg": "ed25519", "key": "k", "sig": "s"}


def typed(obj: dict[str, Any], *, index: int = PENDING) -> Entry:
    """The entry a JSON object (without ``index``) is, strictly decoded, at ``index``."""
    return with_index(decode({"index": 0, **obj}), index)


def rejected(n: int = 0, *, time: str = TIME, channel: str = "c", index: int = PENDING) -> RejectedEntry:
    """A refusal, told apart by its member (``m<n>``)."""
    return RejectedEntry(index=index, time=time, party="p", member=f"m{n}", template="t",
                         code="template.invalid", reason="r", channel=channel)


def envelope(n: int, kind: str, *, channel: str = "c", time: str = TIME,
             index: int = PENDING) -> EnvelopeEntry:
    """An envelope entry of ``kind`` (an ack or an echo answers envelope 0), id from ``n``."""
    replies = kind in (Kind.ACK, Kind.ECHO)
    env = Envelope.build(id=new_envelope_id(bytes([n]) * 16), kind=kind, channel=channel,
                         sender="s", template=kind, precedence="ROUTINE",
                         created=datetime(2026, 11, 27, tzinfo=UTC),
                         body={"ack": "received"} if kind == Kind.ACK else {"n": n},
                         reply_to=new_envelope_id(bytes(16)) if replies else None)
    return EnvelopeEntry(index=index, time=time, channel=channel, party="p", envelope=env, sig=SIG)


def overdue(*, channel: str = "c", time: str = TIME) -> OverdueEntry:
    return OverdueEntry(index=PENDING, time=time, channel=channel, ref=new_envelope_id(bytes(16)),
                        entry=0, template="t", precedence="FLASH", due=time, ack="received",
                        missing=["south"])


def health(*, channel: str = "c", time: str = TIME) -> HealthEntry:
    return HealthEntry(index=PENDING, time=time, channel=channel, old=HealthState.UNKNOWN,
                       new=HealthState.UP, since=time, reason="r", parties={}, evidence=[])
