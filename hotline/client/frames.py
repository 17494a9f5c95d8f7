"""What the host writes, decoded strictly in one place (the client side of docs/ARCHITECTURE.md "Wire
protocol"). Pure.

``hotline.session`` checks each frame's own fields; the entries a ``deliver`` frame carries are
the host's word too, and what the sender did not sign is decoded here into small frozen values
(a later typed-model issue folds these into one model of every frame). Every decoder either
returns a value of exactly the documented shape or raises ``WireError`` (``frame.malformed``)
naming the field: a malformed notice is reported and skipped, never a ``KeyError`` in a reader.

Nothing decoded here is the sender's word: ``Expects``, ``late``, ``Overdue`` and the channel's
health (``HealthChange`` logged, ``HealthNow`` live) are statements of the host, shown apart from
what a signature covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hotline.errorcodes import Code
from hotline.errors import WireError
from hotline.health import State

_ENTRY = {"index": int, "time": str, "kind": str, "channel": str}  # every channel entry's own fields


def _fields(value: Any, table: dict[str, type], what: str) -> dict[str, Any]:
    """``value`` as an object with exactly the fields of ``table``, each of its type."""
    if not isinstance(value, dict):
        raise WireError(f"{what} is not an object", code=Code.FRAME_MALFORMED)
    extra = sorted(set(value) - set(table))
    if extra:
        raise WireError(f"{what} has unknown field(s) {', '.join(extra)}", code=Code.FRAME_MALFORMED)
    for name, typ in table.items():
        if name not in value:
            raise WireError(f"{what} is missing {name!r}", code=Code.FRAME_MALFORMED)
        item = value[name]
        if not isinstance(item, typ) or (typ is int and isinstance(item, bool)):
            raise WireError(f"{what}.{name} must be {typ.__name__}", code=Code.FRAME_MALFORMED)
    return value


def _names(value: list[Any], what: str) -> tuple[str, ...]:
    if not all(isinstance(item, str) for item in value):
        raise WireError(f"{what} must be a list of strings", code=Code.FRAME_MALFORMED)
    return tuple(value)


@dataclass(frozen=True)
class Expects:
    """The acknowledgement the host says is owed for a message (``expects``; unsigned)."""

    ack: str
    parties: tuple[str, ...]
    due: str


@dataclass(frozen=True)
class HostNotes:
    """What the host added to a signed envelope entry: when it logged it, the ack it says is owed,
    whether it judged an ack late. None of it is covered by the sender's signature."""

    logged: str
    expects: Expects | None = None
    late: bool = False


def host_notes(entry: dict[str, Any]) -> HostNotes:
    """The host's additions to an envelope entry (its signed part is checked elsewhere)."""
    logged = entry.get("time")
    if not isinstance(logged, str):
        raise WireError("entry.time must be str", code=Code.FRAME_MALFORMED)
    expects = None
    if "expects" in entry:
        raw = _fields(entry["expects"], {"ack": str, "from": list, "due": str}, "entry.expects")
        expects = Expects(raw["ack"], _names(raw["from"], "entry.expects.from"), raw["due"])
    late = entry.get("late", False)
    if late is not False and late is not True:
        raise WireError("entry.late must be true when present", code=Code.FRAME_MALFORMED)
    return HostNotes(logged, expects, late)


@dataclass(frozen=True)
class Overdue:
    """The host's notice that a deadline passed with parties' acks missing (an ``overdue``
    entry, written and logged by the host; nobody signed it)."""

    index: int
    channel: str
    logged: str
    ref: str
    entry: int
    template: str
    precedence: str
    due: str
    ack: str
    missing: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)  # as delivered


_OVERDUE = {**_ENTRY, "ref": str, "entry": int, "template": str, "precedence": str, "due": str,
            "ack": str, "missing": list}


def overdue(index: int, entry: Any) -> Overdue:
    """Decode a delivered ``overdue`` entry at ``index``; WireError names what is malformed."""
    raw = _fields(entry, _OVERDUE, f"overdue entry {index}")
    if raw["index"] != index:
        raise WireError(f"overdue entry delivered as {index} says it is entry {raw['index']}",
                        code=Code.FRAME_MALFORMED)
    return Overdue(index, raw["channel"], raw["time"], raw["ref"], raw["entry"], raw["template"],
                   raw["precedence"], raw["due"], raw["ack"],
                   _names(raw["missing"], f"overdue entry {index}.missing"), raw)


def entry_channel(index: int, entry: dict[str, Any]) -> str | None:
    """The channel a delivered entry is on (None for an entry of no channel), checked to be a
    string and the entry's ``index`` to be the one it was delivered at."""
    if entry.get("index") != index or isinstance(entry.get("index"), bool):
        raise WireError(f"entry delivered as {index} says it is entry {entry.get('index')!r}",
                        code=Code.FRAME_MALFORMED)
    channel = entry.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise WireError(f"entry {index}.channel must be str", code=Code.FRAME_MALFORMED)
    return channel


@dataclass(frozen=True)
class HostProblem:
    """Something the host sent that this client refused: a malformed frame, a replayed or
    reordered delivery, a failed proof. Shown as the host's misbehaviour, never as content."""

    problem: str
    index: int | None = None
    channel: str | None = None


STATES = frozenset(state.value for state in State)
_HEALTH = {**_ENTRY, "from": str, "to": str, "since": str, "reason": str, "parties": dict,
           "evidence": list}


def _state(value: str, what: str) -> str:
    if value not in STATES:
        raise WireError(f"{what} must be one of {', '.join(sorted(STATES))}", code=Code.FRAME_MALFORMED)
    return value


@dataclass(frozen=True)
class HealthChange:
    """A change of a channel's health, as the host judged it from the heartbeats and logged it
    (a ``health`` entry: written by the host, nobody signed it)."""

    index: int
    channel: str
    logged: str
    old: str
    new: str
    since: str
    reason: str
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)  # as delivered


def health_change(index: int, entry: Any) -> HealthChange:
    """Decode a delivered ``health`` entry at ``index``; WireError names what is malformed."""
    raw = _fields(entry, _HEALTH, f"health entry {index}")
    if raw["index"] != index:
        raise WireError(f"health entry delivered as {index} says it is entry {raw['index']}",
                        code=Code.FRAME_MALFORMED)
    return HealthChange(index, raw["channel"], raw["time"],
                        _state(raw["from"], f"health entry {index}.from"),
                        _state(raw["to"], f"health entry {index}.to"), raw["since"],
                        raw["reason"], raw)


@dataclass(frozen=True)
class HealthNow:
    """A channel's health as the host's live ``health`` frame says it is now (unsigned, not
    logged): its state, since when, and why, from the parties not UP."""

    channel: str
    state: str
    since: str
    reasons: tuple[str, ...]


def health_now(frame: dict[str, Any]) -> HealthNow:
    """Decode a ``health`` frame (its own fields are checked by ``hotline.session``); the reason
    of every party whose state is not UP, in party order."""
    channel, state = frame["channel"], _state(frame["state"], "health.state")
    reasons = []
    for party, value in sorted(frame["parties"].items()):
        if not isinstance(value, dict):
            raise WireError(f"health.parties.{party} is not an object", code=Code.FRAME_MALFORMED)
        party_state, reason = value.get("state"), value.get("reason")
        if not isinstance(party_state, str) or not isinstance(reason, str):
            raise WireError(f"health.parties.{party} needs a string state and reason",
                            code=Code.FRAME_MALFORMED)
        if _state(party_state, f"health.parties.{party}.state") != State.UP.value:
            reasons.append(reason)
    return HealthNow(channel, state, frame["since"], tuple(reasons))
