"""How ``hotline listen`` shows what it received: one line per item, text or JSON. Pure.

A body is shown readably (``hotline.norms.bodytext``: ``Title: value`` in the template's
order); one with nested objects or lists of objects continues on lines marked ``┆`` under its
verified line. JSON output keeps the body as JSON.

Two rules. What the sender signed and what the host says are never on one line: the line that
ends ``[signature verified]`` holds only signed content (and the party and catalogue text the
pinned roster vouches for); what the host added (the ack it says is owed, its lateness verdict,
its overdue notices, its verdicts on the channel's health, its misbehaviour) is on its own line
marked ``[host, unsigned]``. And every string from a peer or the host goes through
``hotline.display.shown`` (text) or is escaped to ASCII (JSON), so no byte of it reaches the
terminal as a control sequence or a line break.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hotline.client.connection import Delivered, Refused
from hotline.client.frames import HealthChange, HealthNow, HostNotes, HostProblem, Overdue
from hotline.display import shown
from hotline.envelope import Kind
from hotline.norms.bodytext import body_line, body_lines, is_flat

VERIFIED = "[signature verified]"
BODY = "    ┆ "  # the mark of a signed body's lines under its verified line
HOST = "[host, unsigned]"
CHANNEL_LIMIT = 64


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=True)  # every non-ASCII character escaped: inert


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(shown(n, limit=64) for n in names)


def _host_says(notes: HostNotes | None, problem: str | None) -> str | None:
    if problem is not None:
        return f"  {HOST} its additions to this entry are malformed: {shown(problem)}"
    if notes is None or (notes.expects is None and not notes.late):
        return None
    said = []
    if notes.expects is not None:
        said.append(f"{shown(notes.expects.ack, limit=64)} ack owed by "
                    f"{_names(notes.expects.parties)}, due {shown(notes.expects.due, limit=64)}")
    if notes.late:
        said.append("this ack was logged late")
    return f"  {HOST} " + "; ".join(said)


def _ids(item: Delivered) -> str:
    """A message's envelope id (what ``send --reply-to`` and the acks name) and the id of the
    message it answers; an ack names the message it acknowledges in its own words."""
    env = item.envelope
    if env.kind is not Kind.MESSAGE:
        return ""
    answers = f" re={shown(env.reply_to, limit=64)}" if env.reply_to is not None else ""
    return f" id={shown(env.id, limit=64)}{answers}"


def delivered_lines(item: Delivered, catalogue: str | None,
                    schema: Mapping[str, Any] | None = None) -> list[str]:
    """The verified line (a body with nested objects or lists of objects continues on lines
    marked ``BODY``, in ``schema``'s order and titles: ``hotline.norms.bodytext``), then the
    host's line if it added anything."""
    env = item.envelope
    more: list[str] = []
    if env.kind is Kind.ACK:
        what = f"ack {shown(env.body.get('ack'), limit=64)} of {shown(env.reply_to, limit=64)}"
    elif is_flat(env.body):
        what = body_line(env.body, schema)
    else:
        what = "(below)"
        more = [BODY + line for line in body_lines(env.body, schema)]
    if catalogue is not None and env.kind is not Kind.ACK:
        what += f" = {shown(catalogue)}"
    head = (f"[{item.index}] {shown(env.created, limit=64)} {shown(env.channel, limit=64)} "
            f"{shown(env.sender, limit=64)}({shown(item.entry.get('party'), limit=64)}) "
            f"{env.precedence.value} {shown(env.template, limit=64)}{_ids(item)}: {what}  {VERIFIED}")
    host = _host_says(item.notes, item.notes_problem)
    return [head, *more] if host is None else [head, *more, host]


def delivered_json(item: Delivered, catalogue: str | None) -> str:
    env = item.envelope
    out: dict[str, Any] = {"index": item.index, "channel": env.channel, "sender": env.sender,
                           "party": item.entry.get("party"), "kind": env.kind.value,
                           "template": env.template, "precedence": env.precedence.value,
                           "id": env.id, "created": env.created, "body": env.body, "verified": True}
    if env.reply_to is not None:
        out["reply_to"] = env.reply_to
    if catalogue is not None:
        out["text"] = catalogue
    server: dict[str, Any] = {}  # what the host says: not covered by the signature
    if item.notes is not None:
        server["logged"] = item.notes.logged
        if item.notes.expects is not None:
            owed = item.notes.expects
            server["expects"] = {"ack": owed.ack, "from": list(owed.parties), "due": owed.due}
        if item.notes.late:
            server["late"] = True
    if item.notes_problem is not None:
        server["malformed"] = item.notes_problem
    out["server"] = server
    return _json(out)


def refused_line(item: Refused) -> str:
    # Nothing of a refused entry is the sender's word: only what the check found is printed.
    channel = shown(json.dumps(item.entry.get("channel"), ensure_ascii=True), limit=CHANNEL_LIMIT)
    return (f"[{item.index}] REFUSED on {channel}: {shown(item.code, limit=64)}: {shown(item.reason)}  "
            "[did NOT verify: not shown]")


def refused_json(item: Refused) -> str:
    return _json({"index": item.index, "channel": item.entry.get("channel"), "verified": False,
                  "refused": True, "code": item.code, "reason": item.reason})


def overdue_line(item: Overdue) -> str:
    return (f"[{item.index}] {HOST} OVERDUE {shown(item.precedence, limit=64)} "
            f"{shown(item.template, limit=64)} message [{item.entry}] was due "
            f"{shown(item.due, limit=64)}: no {shown(item.ack, limit=64)} from {_names(item.missing)}")


def overdue_json(item: Overdue) -> str:
    return _json({"index": item.index, "channel": item.channel, "kind": "overdue", "verified": False,
                  "server": {"logged": item.logged, "ref": item.ref, "entry": item.entry,
                             "template": item.template, "precedence": item.precedence,
                             "due": item.due, "ack": item.ack, "missing": list(item.missing)}})


def health_line(item: HealthChange) -> str:
    """A change of the channel's health the host logged: the new state first, then why."""
    return (f"[{item.index}] {HOST} HEALTH {shown(item.channel, limit=CHANNEL_LIMIT)} "
            f"{shown(item.new, limit=16)} since {shown(item.since, limit=64)} "
            f"(was {shown(item.old, limit=16)}): {shown(item.reason)}")


def health_json(item: HealthChange) -> str:
    return _json({"index": item.index, "channel": item.channel, "kind": "health", "verified": False,
                  "server": {"logged": item.logged, "from": item.old, "to": item.new,
                             "since": item.since, "reason": item.reason}})


def health_now_line(item: HealthNow) -> str:
    """The channel's health when ``listen`` connected (the host's live word; not a log entry)."""
    why = "; ".join(shown(reason) for reason in item.reasons)
    return (f"{HOST} HEALTH {shown(item.channel, limit=CHANNEL_LIMIT)} is "
            f"{shown(item.state, limit=16)} now, since {shown(item.since, limit=64)}"
            + (f": {why}" if why else ""))


def health_now_json(item: HealthNow) -> str:
    return _json({"channel": item.channel, "kind": "health_now", "verified": False,
                  "server": {"state": item.state, "since": item.since,
                             "reasons": list(item.reasons)}})


def problem_line(item: HostProblem) -> str:
    where = f"[{item.index}] " if item.index is not None else ""
    return f"{where}{HOST} HOST PROBLEM: {shown(item.problem)}  [not shown]"


def problem_json(item: HostProblem) -> str:
    return _json({"index": item.index, "channel": item.channel, "verified": False,
                  "host_problem": item.problem})


def proof_line(index: int, *, size: int | None = None, failed: str | None = None) -> str:
    """Entry ``index`` proven included in the checkpoint of ``size``, or why it is not."""
    if size is not None:
        return (f"[{index}] proven in the log: included in checkpoint {size}, signed by the "
                "pinned log key and consistent with every checkpoint this client saw")
    return f"[{index}] NOT PROVEN in the log: {shown(failed)}"


def proof_json(index: int, *, size: int | None = None, failed: str | None = None) -> str:
    if size is not None:
        return _json({"index": index, "proof": "included", "checkpoint": size})
    return _json({"index": index, "proof": "failed", "reason": failed})
