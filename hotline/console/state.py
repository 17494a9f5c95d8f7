"""The console's view-model: everything the officer sees, as plain data. Pure: no Textual, no I/O,
no clock (``now`` is an argument), so every rule here is unit-tested.

Theory of operation:

- A ``Channel`` holds its ``Message`` s (acks are folded into the message they acknowledge), its
  unread count, the server's latest health frame and the last heartbeat seen per party.
- A message enters either from the log (``add_entry``: a delivered, verified entry) or from the
  outbox (``add_outbox``: composed here, signed, maybe not yet accepted). Both are keyed by
  envelope id, so the delivered entry of one of our own messages completes the outbox one instead
  of appearing twice, and a replayed entry changes nothing.
- Acknowledgement state per recipient party, from the server's ``expects`` (which kind, from
  whom, by when) and the acks, replies and ``overdue`` notices seen:

  =============  =====================================================================
  ``understood``  an ``understood`` ack from the party
  ``received``    a ``received`` ack (satisfies ``expects.ack == received`` only)
  ``replied``     a message of the party answering it (satisfies ``reply``)
  ``waiting``     nothing yet, deadline ahead
  ``OVERDUE``     nothing sufficient and the deadline passed (or the server said so)
  =============  =====================================================================

- What this officer owes (``obligation``): a message whose ``expects.from`` names our party and
  that our party has not yet answered as required; it carries a countdown to ``due`` that turns
  into an overdue time.
- Alerts: a channel going DOWN (health frame), an overdue notice naming our party, a refused
  message of ours, a signature that does not verify, the log showing two histories
  (``hotline.logwatch``). They stay until the officer dismisses them.
- Verification per message: the signature (checked on delivery), the receipt (our own), and what
  the log watch proved: inclusion in a checkpoint, and which witnesses have seen it (``proof``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from msgspec import UNSET, UnsetType

from hotline.canonical import JSONObject
from hotline.entries import (
    Entry,
    EnvelopeEntry,
    Expects,
    OverdueEntry,
    RejectedEntry,
    channel_of,
)
from hotline.envelope import Envelope, Kind, Precedence
from hotline.errors import WireError
from hotline.keys import SignatureJSON
from hotline.logwatch import LogWatch, ProofReport
from hotline.norms.agreement import CatalogueItem
from hotline.norms.bodytext import body_line
from hotline.norms.obligations import own_party_ack
from hotline.norms.template import AckRequirement
from hotline.times import parse_time
from hotline.wire.frames import Health as HealthFrame

URGENT = (Precedence.FLASH, Precedence.IMMEDIATE)


class Delivery(StrEnum):
    """Where one of our own messages is (the outbox's state, as shown)."""

    PENDING = "PENDING"    # stored and signed here, not yet accepted by the server
    ACCEPTED = "ACCEPTED"  # durably logged at its index
    REFUSED = "REFUSED"    # the server refused it with a typed error


class AckMark(StrEnum):
    UNDERSTOOD = "understood"
    RECEIVED = "received"
    REPLIED = "replied"
    WAITING = "waiting"
    OVERDUE = "OVERDUE"


@dataclass(frozen=True)
class AckRecord:
    member: str
    index: int
    late: bool


@dataclass(frozen=True)
class Expectation:
    """The server's ``expects``: the ack owed, by which parties, by when."""

    ack: str  # received, understood or reply
    parties: tuple[str, ...]
    due: datetime

    @classmethod
    def from_entry(cls, value: Expects | UnsetType) -> Expectation | None:
        if value is UNSET or value.ack not in set(AckRequirement):
            return None  # the server's word: only a known requirement, never its text, is kept
        due = _time(value.due)
        return None if due is None else cls(value.ack, tuple(value.parties), due)


@dataclass(frozen=True)
class PartyAck:
    """One recipient party's acknowledgement of one message."""

    party: str
    mark: AckMark
    late: bool = False
    received: bool = False  # a received ack arrived (shown while understanding is awaited)

    @property
    def satisfied(self) -> bool:
        return self.mark in (AckMark.UNDERSTOOD, AckMark.RECEIVED, AckMark.REPLIED)


@dataclass(frozen=True)
class Obligation:
    """What this officer's party owes on a message, and the time left."""

    ack: str
    due: datetime
    remaining: timedelta  # negative once overdue

    @property
    def overdue(self) -> bool:
        return self.remaining < timedelta(0)


@dataclass(frozen=True)
class Violation:
    """A reader's report that a sealed field of a message breaks its template (its own words,
    shown as its claim)."""

    member: str
    party: str
    field: str
    code: str
    reason: str
    index: int


@dataclass
class Message:
    """A message (``kind: message``) of a channel, with everything shown about it."""

    id: str
    channel: str
    sender: str
    party: str
    template: str
    precedence: Precedence
    created: datetime
    body: JSONObject
    reply_to: str | None = None
    index: int | None = None
    logged: datetime | None = None
    verified: bool | None = None  # True: signature checked on delivery; None: our own, signed here
    verify_error: str | None = None
    expects: Expectation | None = None
    acks: dict[str, dict[str, AckRecord]] = field(default_factory=dict)  # party -> kind -> ack
    replies: dict[str, int] = field(default_factory=dict)  # party -> index of its reply
    overdue_notice: set[str] = field(default_factory=set)  # parties an overdue entry named
    delivery: Delivery | None = None  # our own messages only
    refusal: str | None = None  # "code: reason" when refused
    receipt: bool = False  # our own: a signed inclusion receipt arrived and verified
    entry: EnvelopeEntry | None = None  # the log entry as delivered (details view)
    envelope: Envelope | None = None
    sig: SignatureJSON | None = None
    my_ack_pending: str | None = None  # our ack of it, stored but not yet accepted
    violations: list[Violation] = field(default_factory=list)  # readers' reports on its fields
    closed: frozenset[str] = frozenset()  # its sealed fields this member cannot open

    @property
    def urgent(self) -> bool:
        return self.precedence in URGENT

    def key(self) -> tuple[int, int, datetime]:
        """Log order; messages not yet logged come last, in the order composed."""
        return (0, self.index, self.created) if self.index is not None else (1, 0, self.created)


@dataclass(frozen=True)
class PartyHealth:
    state: str
    condition: str
    last_heartbeat: datetime | None


@dataclass(frozen=True)
class Health:
    """The server's latest ``health`` frame for a channel."""

    state: str
    since: datetime | None
    interval: int | None
    parties: dict[str, PartyHealth]

    @classmethod
    def from_frame(cls, frame: HealthFrame) -> Health:
        parties = {party: PartyHealth(value.state.value, value.condition, _time(value.last_heartbeat))
                   for party, value in frame.parties.items()}
        return cls(state=frame.state.value, since=_time(frame.since), interval=frame.interval,
                   parties=parties)


@dataclass(frozen=True)
class Alert:
    channel: str
    kind: str  # down, overdue, refused, unverified, log, violation
    text: str
    at: datetime


@dataclass
class Channel:
    name: str
    messages: dict[str, Message] = field(default_factory=dict)  # by envelope id
    unread: int = 0
    health: Health | None = None
    heartbeats: dict[str, datetime] = field(default_factory=dict)  # party -> last heartbeat seen
    last_index: int = -1
    catalogue: tuple[CatalogueItem, ...] = ()
    schemas: dict[str, JSONObject] = field(default_factory=dict)  # agreed template id -> fields

    def ordered(self) -> list[Message]:
        """Oldest first, newest at the bottom; messages not yet logged last."""
        return sorted(self.messages.values(), key=Message.key)

    def party_heartbeats(self) -> dict[str, datetime | None]:
        """Each party's last heartbeat, from the entries seen and the health frame (None: never
        heard)."""
        out: dict[str, datetime | None] = dict(self.heartbeats)
        for party, health in (self.health.parties.items() if self.health is not None else ()):
            seen = out.get(party)
            beat = health.last_heartbeat
            out[party] = max(seen, beat) if seen and beat else (seen or beat)
        return out

    def stalest(self) -> tuple[str, datetime | None] | None:
        """The party whose last heartbeat is oldest (never heard first): the line is only as
        good as its weakest party."""
        beats = self.party_heartbeats()
        if not beats:
            return None
        oldest = datetime.min.replace(tzinfo=UTC)
        party = min(beats, key=lambda p: (beats[p] is not None, beats[p] or oldest, p))
        return party, beats[party]


class ConsoleState:
    """The whole console's view-model for one member."""

    def __init__(self, *, member: str, party: str, role: str, lang: str = "en") -> None:
        self.member, self.party, self.role, self.lang = member, party, role, lang
        self.channels: dict[str, Channel] = {}
        self.selected: str | None = None
        self.alerts: list[Alert] = []
        self.link_up = False
        self.log = LogWatch(None)  # what this console verified about the log (set by the app)
        self.witnesses: dict[str, list[str]] = {}  # channel -> its parties' witnesses
        self._log_alarmed = False
        self._orphans: dict[str, list[tuple[int, EnvelopeEntry]]] = {}  # reply_to -> acks

    # -- channels --------------------------------------------------------------------------------

    def set_channels(self, names: Iterable[str]) -> None:
        for name in names:
            self.channels.setdefault(name, Channel(name))
        if self.selected is None and self.channels:
            self.select(sorted(self.channels)[0])

    def set_catalogue(self, channel: str, catalogue: tuple[CatalogueItem, ...]) -> None:
        self.channels.setdefault(channel, Channel(channel)).catalogue = catalogue

    def set_schemas(self, channel: str, schemas: Mapping[str, JSONObject]) -> None:
        """The body schemas of the channel's agreed templates, for showing bodies by their titles."""
        self.channels.setdefault(channel, Channel(channel)).schemas = dict(schemas)

    def body_schema(self, message: Message) -> JSONObject | None:
        channel = self.channels.get(message.channel)
        return channel.schemas.get(message.template) if channel is not None else None

    def select(self, channel: str) -> None:
        self.selected = channel
        self.channels.setdefault(channel, Channel(channel)).unread = 0

    def channel(self, name: str) -> Channel:
        return self.channels.setdefault(name, Channel(name))

    def find(self, envelope_id: str) -> Message | None:
        for channel in self.channels.values():
            if envelope_id in channel.messages:
                return channel.messages[envelope_id]
        return None

    # -- entries from the log --------------------------------------------------------------------

    def add_entry(self, index: int, entry: Entry, *, verified: bool,
                  error: str | None = None, now: datetime, unread: bool = True,
                  body: JSONObject | None = None, closed: frozenset[str] = frozenset()) -> Message | None:
        """Fold one delivered entry in. Returns the message it created (None for acks, notices,
        heartbeats and replays of entries already shown). ``unread=False`` for history the
        officer saw in an earlier run."""
        name = channel_of(entry)
        if name is None:
            return None
        channel = self.channel(name)
        channel.last_index = max(channel.last_index, index)
        if isinstance(entry, OverdueEntry):
            self._overdue(channel, entry, now)
            return None
        if isinstance(entry, RejectedEntry):
            self._rejected(entry, now)
            return None
        if not isinstance(entry, EnvelopeEntry):
            return None  # a health entry: the live health frame carries the same change
        env = entry.envelope
        logged = _time(entry.time)
        if env.kind is Kind.HEARTBEAT and verified and logged is not None:
            previous = channel.heartbeats.get(entry.party)
            channel.heartbeats[entry.party] = max(logged, previous) if previous else logged
            return None
        if env.kind is Kind.ECHO:
            return None
        if env.kind is Kind.ACK:
            if verified and env.reply_to is not None:
                self._ack(env.reply_to, index, entry)
            return None
        if env.kind is Kind.VIOLATION:
            if verified:
                self._violation(channel, index, entry, now)
            return None
        return self._message(channel, index, entry, verified=verified, error=error, now=now,
                             unread=unread, body=body, closed=closed)

    def _message(self, channel: Channel, index: int, entry: EnvelopeEntry, *, verified: bool,
                 error: str | None, now: datetime, unread: bool,
                 body: JSONObject | None, closed: frozenset[str]) -> Message | None:
        env = entry.envelope
        known = channel.messages.get(env.id)
        if known is not None and known.entry is not None:
            return None  # a replay
        message = known or _message_from(env, entry.party)
        if body is not None:  # the sealed fields this member opened (or marked as sealed)
            message.body, message.closed = dict(body), closed
        message.index, message.logged = index, _time(entry.time)
        message.entry, message.envelope, message.sig = entry, env, dict(entry.sig)
        message.expects = Expectation.from_entry(entry.expects)
        message.verified, message.verify_error = verified, error
        if message.sender == self.member:
            message.delivery, message.refusal = Delivery.ACCEPTED, None
        channel.messages[env.id] = message
        if known is None and unread and message.sender != self.member and channel.name != self.selected:
            channel.unread += 1
        if not verified:
            self.alerts.append(Alert(channel.name, "unverified", f"entry {index} does NOT verify: "
                                     f"{error or 'signature check failed'}", now))
        if message.reply_to is not None and verified:
            target = channel.messages.get(message.reply_to)
            if target is not None and message.party != target.party:
                target.replies.setdefault(message.party, index)
        for ack_index, ack_entry in self._orphans.pop(env.id, []):
            self._ack(env.id, ack_index, ack_entry)
        return None if known is not None else message

    def _ack(self, reply_to: str, index: int, entry: EnvelopeEntry) -> None:
        target = self.find(reply_to)
        if target is None:
            self._orphans.setdefault(reply_to, []).append((index, entry))
            return
        env = entry.envelope
        kind = str(env.body.get("ack", "received"))  # an ack's body is checked on decoding
        target.acks.setdefault(entry.party, {})[kind] = AckRecord(env.sender, index, entry.is_late)

    def _overdue(self, channel: Channel, entry: OverdueEntry, now: datetime) -> None:
        target = self.find(entry.ref)
        if target is not None:
            target.overdue_notice.update(entry.missing)
        if self.party in entry.missing:
            what = f"[{entry.entry}]" if target is None else f"[{target.index}] {target.template}"
            due = _time(entry.due)
            self.alerts.append(Alert(channel.name, "overdue", f"OVERDUE: {entry.precedence} "
                                     f"{what} was due {clock(due)}; {self.party} has not sent "
                                     f"{entry.ack}", now))

    def _violation(self, channel: Channel, index: int, entry: EnvelopeEntry, now: datetime) -> None:
        """A reader's signed report that a sealed field it opened breaks its template: noted on
        the message and raised as an alert (the field's value is never in it)."""
        env = entry.envelope
        field_name = str(env.body.get("field", "?"))
        target = self.find(env.reply_to) if env.reply_to is not None else None
        if target is not None:
            if any(v.index == index for v in target.violations):
                return  # a replay
            target.violations.append(Violation(env.sender, entry.party, field_name,
                                               str(env.body.get("code", "")),
                                               str(env.body.get("reason", "")), index))
        what = f"[{target.index}] {target.template}" if target is not None else f"message {env.reply_to}"
        self.alerts.append(Alert(channel.name, "violation", f"VIOLATION reported by {env.sender} "
                                 f"({entry.party}): sealed field {field_name} of {what} breaks "
                                 "its template", now))

    def _rejected(self, entry: RejectedEntry, now: datetime) -> None:
        if entry.member != self.member or not isinstance(entry.ref, str):
            return
        self.refused(entry.ref, entry.code, entry.reason, now=now)

    # -- our own messages (the outbox) ----------------------------------------------------------

    def add_outbox(self, envelope: Envelope, sig: SignatureJSON, delivery: Delivery, *,
                   index: int | None = None) -> Message | None:
        """Show a message composed here (from the outbox); its log entry completes it later.
        A message never goes back: ACCEPTED and REFUSED are final (see ``refused``)."""
        if envelope.kind is not Kind.MESSAGE:
            return None
        channel = self.channel(envelope.channel)
        message = channel.messages.get(envelope.id)
        if message is None:
            message = _message_from(envelope, self.party)
            message.envelope, message.sig = envelope, dict(sig)
            channel.messages[envelope.id] = message
        if message.index is None:
            message.index = index
        if message.index is not None:
            message.delivery, message.refusal = Delivery.ACCEPTED, None
        elif message.delivery in (None, Delivery.PENDING):
            message.delivery = delivery
        return message

    def accepted(self, envelope_id: str, index: int) -> None:
        message = self.find(envelope_id)
        if message is not None:
            message.delivery, message.refusal = Delivery.ACCEPTED, None
            if message.index is None:
                message.index = index

    def refused(self, envelope_id: str, code: str, reason: str, *, now: datetime,
                alert: bool = True) -> None:
        """The server refused one of our messages; ``alert`` once (not for an earlier run's)."""
        message = self.find(envelope_id)
        if message is None or message.delivery is Delivery.REFUSED:
            return
        message.delivery, message.refusal = Delivery.REFUSED, f"{code}: {reason}"
        if alert:
            self.alerts.append(Alert(message.channel, "refused", f"REFUSED by the server: "
                                     f"{message.template} — {code}: {reason}", now))

    def ack_pending(self, envelope_id: str, kind: str | None) -> None:
        """Our own ack of a message is stored but not yet accepted (``kind``), or no longer."""
        message = self.find(envelope_id)
        if message is not None:
            message.my_ack_pending = kind

    def receipt(self, index: int) -> None:
        for channel in self.channels.values():
            for message in channel.messages.values():
                if message.index == index:
                    message.receipt = True

    # -- the log watch ---------------------------------------------------------------------------

    def proof(self, message: Message) -> ProofReport | None:
        """What the log watch established about a logged message (None: not logged yet)."""
        if message.index is None:
            return None
        return self.log.report(message.index, self.witnesses.get(message.channel, []))

    def log_alarm(self, now: datetime) -> None:
        """Raise the log watch's alarm, once."""
        if self.log.alarm is not None and not self._log_alarmed:
            self._log_alarmed = True
            self.alerts.append(Alert("*", "log", self.log.alarm, now))

    # -- health ----------------------------------------------------------------------------------

    def apply_health(self, frame: HealthFrame, *, now: datetime) -> Alert | None:
        """The server's live health frame; a change to DOWN raises an alert (returned)."""
        name = frame.channel
        channel = self.channel(name)
        before = channel.health.state if channel.health is not None else None
        channel.health = Health.from_frame(frame)
        if channel.health.state == "DOWN" and before != "DOWN":
            silent = sorted(p for p, h in channel.health.parties.items() if h.state == "DOWN")
            since = f" since {clock(channel.health.since)}" if channel.health.since else ""
            alert = Alert(name, "down", f"CHANNEL {name} DOWN{since}"
                          + (f": {', '.join(silent)} silent" if silent else ""), now)
            self.alerts.append(alert)
            return alert
        if before == "DOWN" and channel.health.state != "DOWN":
            self.alerts = [a for a in self.alerts if not (a.channel == name and a.kind == "down")]
        return None

    def dismiss_alerts(self) -> None:
        self.alerts.clear()

    # -- acknowledgement state -------------------------------------------------------------------

    def ack_states(self, message: Message, now: datetime) -> list[PartyAck]:
        """Each recipient party's acknowledgement of ``message`` (those ``expects`` names; else
        every party that acked)."""
        owed = message.expects
        parties = list(owed.parties) if owed else sorted(set(message.acks) | set(message.replies))
        states = []
        for party in parties:
            got = message.acks.get(party, {})
            late = any(a.late for a in got.values())
            received = bool(got)
            if "understood" in got:
                mark = AckMark.UNDERSTOOD
            elif party in message.replies:
                mark = AckMark.REPLIED
            elif "received" in got:
                mark = AckMark.RECEIVED
            else:
                mark = AckMark.WAITING
            if owed is not None and not _satisfies(owed.ack, mark):
                overdue = party in message.overdue_notice or now > owed.due
                mark = AckMark.OVERDUE if overdue else AckMark.WAITING
            states.append(PartyAck(party, mark, late=late, received=received))
        return states

    def obligation(self, message: Message, now: datetime) -> Obligation | None:
        """What our party still owes on ``message``, with the time left (None: nothing)."""
        owed = message.expects
        if owed is None or self.party not in owed.parties or message.party == self.party:
            return None
        state = next(s for s in self.ack_states(message, now) if s.party == self.party)
        if state.satisfied:
            return None
        return Obligation(owed.ack, owed.due, owed.due - now)

    def awaiting_me(self, now: datetime) -> list[tuple[Message, Obligation]]:
        """Every message our party still owes an acknowledgement on, soonest due first."""
        out = [(m, o) for c in self.channels.values() for m in c.messages.values()
               if (o := self.obligation(m, now)) is not None]
        return sorted(out, key=lambda pair: pair[1].due)

    def needs_received_ack(self, message: Message) -> bool:
        """Whether the console should send its automatic ``received`` ack for ``message``."""
        if (self.role == "auditor" or message.index is None
                or own_party_ack(party=self.party, message_party=message.party)):
            return False
        if not message.verified:
            return False  # never acknowledge what did not verify
        return not any(a.member == self.member for a in message.acks.get(self.party, {}).values())

    def catalogue_text(self, message: Message) -> str | None:
        """A pre-agreed message's text in the officer's language (else the first one held)."""
        if message.template != "preagreed":
            return None
        channel = self.channels.get(message.channel)
        number = message.body.get("number")
        item = next((c for c in (channel.catalogue if channel else ()) if c.number == number), None)
        return None if item is None else item.text_in(self.lang)


def _satisfies(required: str, mark: AckMark) -> bool:
    if required == "understood":
        return mark is AckMark.UNDERSTOOD
    if required == "reply":
        return mark is AckMark.REPLIED
    return mark in (AckMark.UNDERSTOOD, AckMark.RECEIVED, AckMark.REPLIED)


def _message_from(env: Envelope, party: str) -> Message:
    return Message(id=env.id, channel=env.channel, sender=env.sender, party=party,
                   template=env.template, precedence=env.precedence, created=env.created_at,
                   body=dict(env.body), reply_to=env.reply_to)


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if value is not None else None
    except WireError:
        return None


# -- formatting (pure: time zone and now are arguments) ---------------------------------------------

def clock(moment: datetime | None) -> str:
    """``21:04:05Z``."""
    return "—" if moment is None else moment.strftime("%H:%M:%SZ")


def both_times(moment: datetime, local: tzinfo | None) -> str:
    """``21:04:05Z (22:04 local)``, with ``+1d``/``-1d`` when the local date is another day;
    the local part is left out where local time is UTC. ``local=None`` is the system's zone at
    that moment (so a summer-time change during a long shift is followed)."""
    moment = moment.astimezone(UTC)
    utc = moment.strftime("%H:%M:%SZ")
    here = moment.astimezone(local)
    if here.utcoffset() == timedelta(0):
        return utc
    days = (here.date() - moment.date()).days
    shift = f"{days:+d}d" if days else ""
    return f"{utc} ({here.strftime('%H:%M')}{shift} local)"


def countdown(delta: timedelta) -> str:
    """``04:59`` left, or ``+00:12`` overdue; hours when needed (``2:59:59``)."""
    seconds = int(abs(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
    return ("+" + text) if delta < timedelta(0) else text


def age(delta: timedelta) -> str:
    """A heartbeat's age, short: ``4s``, ``3m``, ``2h``, ``5d``."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def body_text(message: Message, catalogue: str | None,
              schema: Mapping[str, Any] | None = None) -> str:
    """A message's content on one line: the text, the catalogue text, or the body as
    ``Title: value`` in the template's order (``hotline.norms.bodytext``)."""
    body = message.body
    if message.template == "message" and isinstance(body.get("text"), str):
        return str(body["text"])
    if message.template == "preagreed":
        head = f"#{body.get('number')}" + (f" {body['code']}" if body.get("code") else "")
        return f"{head}: {catalogue}" if catalogue else head
    return body_line(body, schema)


def flatten(value: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A body's leaves as ``(dotted path, value)``, the paths a form's fields have."""
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        if isinstance(item, dict):
            out += flatten(item, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", item))
    return out

