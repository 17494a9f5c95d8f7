"""Every kind of transparency-log entry, typed once: what the server writes, the store keeps, the
clients, the console, the agents and the auditor read. Pure.

An entry is a frozen ``msgspec`` Struct tagged by its ``kind``; ``Entry`` is their union. The
server builds one with ``index=PENDING`` and the store sets the index it appends it at
(``with_index``). Its leaf — what the Merkle tree hashes and the log serves — is the RFC 8785
encoding of the entry (``leaf_bytes``), and ``decode_leaf`` is the one strict reader of those
bytes, by whoever holds them. A value of the wrong shape, an unknown field or an unknown kind is
one ``EntryError`` naming the field, never a ``KeyError`` in a reader.

Who said what: an ``envelope`` entry carries the sender's signed envelope and signature (checked
with the roster, ``hotline.verification``); everything else in it, and every other kind, is the
host's word (``time``, ``party``, ``expects``, ``late``, the notices).

Compatibility: an entry is what was signed into the log, so an old log must stay readable: a new
field is added as optional (absent in old entries), and a field is never removed or retyped.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import msgspec

from hotline.canonical import JSONObject, canonical_bytes, parse
from hotline.envelope import Envelope
from hotline.errorcodes import Code
from hotline.errors import HotlineError, WireError
from hotline.times import parse_time
from hotline.typed import convert

PENDING = -1
"""The index of an entry not yet in the log (the store sets the real one)."""


class EntryError(WireError):
    """A log entry of the wrong shape: the message names the entry's index and the field."""

    code = Code.ENTRY_MALFORMED


class HealthState(StrEnum):
    """A channel's or a party's health (``hotline.health`` decides it)."""

    UNKNOWN = "UNKNOWN"
    UP = "UP"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"


class _Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, tag_field="kind"):
    index: int = PENDING
    time: str  # when the server logged it (RFC 3339, UTC, ms)

    @property
    def time_at(self) -> datetime:
        return parse_time(self.time, field="entry.time")


# -- signed by a member ---------------------------------------------------------------------------

class Expects(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The acknowledgement the host says a message owes: of which kind, from which parties, by
    when (the template's deadline for its precedence, from the log time)."""

    ack: str
    parties: list[str] = msgspec.field(name="from")
    due: str


class EnvelopeEntry(_Entry, frozen=True, tag="envelope"):
    """A member's signed envelope as the server accepted it, with the sender's party and what the
    host adds: the ack it expects, or that an ack came late."""

    channel: str
    party: str
    envelope: Envelope
    sig: dict[str, str]
    expects: Expects | msgspec.UnsetType = msgspec.UNSET
    late: Literal[True] | msgspec.UnsetType = msgspec.UNSET

    @property
    def is_late(self) -> bool:
        return self.late is True


# -- roster documents, signed by their authorities ----------------------------------------------

class _RosterEntry(_Entry, frozen=True):
    document: dict[str, Any]  # checked against its signatures by ``hotline.roster``
    sigs: list[dict[str, str]]

    @property
    def signed(self) -> dict[str, Any]:
        """The signed document, as ``hotline.roster`` takes it."""
        return {"document": self.document, "sigs": self.sigs}


class EnrollmentEntry(_RosterEntry, frozen=True, tag="enrollment"):
    pass


class RevocationEntry(_RosterEntry, frozen=True, tag="revocation"):
    pass


class AgreementEntry(_RosterEntry, frozen=True, tag="agreement"):
    channel: str


class HandoverEntry(_RosterEntry, frozen=True, tag="handover"):
    pass


class EpochKeyEntry(_RosterEntry, frozen=True, tag="epoch-key"):
    """A member's encryption key for one epoch, signed by its enrolled key (``hotline.epochkeys``)."""


# -- the host's notices ----------------------------------------------------------------------------

class PartyHealthRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One party's health as a ``health`` entry records it."""

    state: HealthState
    condition: str
    reason: str
    last_heartbeat: str | None
    last_echo: str | None
    rtt_ms: int | None


class HealthEntry(_Entry, frozen=True, tag="health"):
    """A change of a channel's health, judged by the host from the logged heartbeats and echoes."""

    channel: str
    old: HealthState = msgspec.field(name="from")
    new: HealthState = msgspec.field(name="to")
    since: str
    reason: str
    parties: dict[str, PartyHealthRecord]
    evidence: list[int]  # log indexes of the heartbeats and echoes it rests on


class OverdueEntry(_Entry, frozen=True, tag="overdue"):
    """A deadline passed with parties' acks missing."""

    channel: str
    ref: str  # the message's envelope id
    entry: int  # the message's log index
    template: str
    precedence: str
    due: str
    ack: str
    missing: list[str]


class RejectedEntry(_Entry, frozen=True, tag="rejected"):
    """A member's refused submission (never its body): the code and the reason in words; the
    channel only when the member may use it."""

    party: str
    member: str
    template: str
    code: str
    reason: str
    ref: str | msgspec.UnsetType = msgspec.UNSET
    channel: str | msgspec.UnsetType = msgspec.UNSET


class RejectionsEntry(_Entry, frozen=True, tag="rejections"):
    """A member's refusals beyond its logged budget in one window, counted by code."""

    party: str
    member: str
    since: str
    until: str
    count: int
    codes: dict[str, int]


Entry = (EnvelopeEntry | EnrollmentEntry | RevocationEntry | AgreementEntry | HandoverEntry
         | EpochKeyEntry | HealthEntry | OverdueEntry | RejectedEntry | RejectionsEntry)
RosterEntry = EnrollmentEntry | RevocationEntry | AgreementEntry | HandoverEntry | EpochKeyEntry
ChannelEntry = EnvelopeEntry | AgreementEntry | HealthEntry | OverdueEntry
ROSTER_KINDS = ("enrollment", "revocation", "agreement", "handover", "epoch-key")
_BY_KIND: dict[str, type[Entry]] = {cls.__struct_config__.tag: cls for cls in Entry.__args__}
KINDS = tuple(sorted(_BY_KIND))


def roster_entry(signed: dict[str, Any], *, time: str) -> RosterEntry:
    """The entry (not yet in the log) logging a signed roster document that ``hotline.roster``
    has checked: ``{"document": {"type", ...}, "sigs": [...]}``."""
    document, sigs = signed["document"], signed["sigs"]
    kind = document["type"]
    if kind == "agreement":
        return AgreementEntry(index=PENDING, time=time, document=document, sigs=sigs,
                              channel=document["channel"])
    if kind == "enrollment":
        return EnrollmentEntry(index=PENDING, time=time, document=document, sigs=sigs)
    if kind == "revocation":
        return RevocationEntry(index=PENDING, time=time, document=document, sigs=sigs)
    if kind == "handover":
        return HandoverEntry(index=PENDING, time=time, document=document, sigs=sigs)
    if kind == "epoch-key":
        return EpochKeyEntry(index=PENDING, time=time, document=document, sigs=sigs)
    raise EntryError("a roster document of no known type", code=Code.ENTRY_UNKNOWN_KIND)


def kind_of(entry: Entry) -> str:
    """The entry's ``kind`` as the log spells it."""
    tag = entry.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def channel_of(entry: Entry) -> str | None:
    """The channel an entry is on, if any (a ``rejected`` entry names one only when the member
    may use it; roster changes other than agreements are on none)."""
    channel = getattr(entry, "channel", None)
    return channel if isinstance(channel, str) else None


def with_index(entry: Entry, index: int, *, time: str | None = None) -> Entry:
    """The same entry at log index ``index`` (and log ``time``, when given: the store keeps log
    times from going back)."""
    if time is None:
        return msgspec.structs.replace(entry, index=index)
    return msgspec.structs.replace(entry, index=index, time=time)


def to_json(entry: Entry) -> JSONObject:
    """The entry as a JSON object (the leaf's object; a ``deliver`` frame's ``entry``)."""
    obj: JSONObject = msgspec.to_builtins(entry)
    if isinstance(entry, EnvelopeEntry):
        obj["envelope"] = entry.envelope.to_json()  # the body exactly as signed
    return obj


def leaf_bytes(entry: Entry) -> bytes:
    """The leaf: RFC 8785 bytes of the entry, what the log's Merkle tree hashes."""
    if entry.index < 0:
        raise HotlineError("an entry is encoded once it has its index", code=Code.INTERNAL_STATE)
    return canonical_bytes(to_json(entry))


def decode(value: Any, *, what: str = "entry") -> Entry:
    """A parsed JSON value as an entry; ``EntryError`` names the field at fault (``what`` is
    how the message names the entry, e.g. ``"entry 7"``)."""
    # By its kind, to that kind's record: msgspec caches a Struct's type information but not a
    # union's, which it would rebuild at every call (four times the cost of the conversion).
    kind: type[Entry] | Any = Entry
    if isinstance(value, dict):
        tag = value.get("kind")
        kind = _BY_KIND.get(tag) if isinstance(tag, str) else None
        if kind is None:
            raise EntryError(f"{what} is of no known kind", code=Code.ENTRY_UNKNOWN_KIND)
    entry: Entry = convert(value, kind, what=what, error=EntryError)
    if isinstance(entry, EnvelopeEntry):
        # the envelope's own rules (its id's form, an ack's body, its time), not only its shape
        try:
            entry.envelope.checked()
        except WireError as exc:
            raise EntryError(f"{what}: {exc.message}") from None
    if entry.index < 0:
        raise EntryError(f"{what}.index must be a log index")
    return entry


def decode_leaf(leaf: bytes, *, index: int | None = None) -> Entry:
    """The entry whose leaf bytes are ``leaf`` (strict JSON, then ``decode``); with ``index``,
    it must say it is that entry."""
    what = "entry" if index is None else f"entry {index}"
    try:
        value = parse(leaf)
    except WireError as exc:
        raise EntryError(f"{what} is not valid JSON ({exc.message})") from None
    entry = decode(value, what=what)
    if index is not None and entry.index != index:
        raise EntryError(f"{what} says it is entry {entry.index}")
    return entry
