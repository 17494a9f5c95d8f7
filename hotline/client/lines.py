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

from msgspec import UNSET

from hotline.canonical import JSONObject
from hotline.client.connection import Delivered, Refused
from hotline.client.problems import HostProblem
from hotline.display import shown
from hotline.entries import EnvelopeEntry, HealthEntry, OverdueEntry
from hotline.envelope import Kind
from hotline.norms.bodytext import body_line, body_lines, has_files, is_flat
from hotline.typed import to_json
from hotline.wire.frames import Health

VERIFIED = "[signature verified]"
BODY = "    ┆ "  # the mark of a signed body's lines under its verified line
HOST = "[host, unsigned]"
CHANNEL_LIMIT = 64


def _json(value: JSONObject) -> str:
    return json.dumps(value, ensure_ascii=True)  # every non-ASCII character escaped: inert


def _names(names: list[str]) -> str:
    return ", ".join(shown(n, limit=64) for n in names)


def _host_says(entry: EnvelopeEntry) -> str | None:
    """What the host added to a signed entry (the ack it says is owed, its lateness verdict)."""
    said = []
    if entry.expects is not UNSET:
        said.append(f"{shown(entry.expects.ack, limit=64)} ack owed by "
                    f"{_names(entry.expects.parties)}, due {shown(entry.expects.due, limit=64)}")
    if entry.is_late:
        said.append("this ack was logged late")
    return f"  {HOST} " + "; ".join(said) if said else None


def _ids(item: Delivered) -> str:
    """A message's envelope id (what ``send --reply-to`` and the acks name) and the id of the
    message it answers; an ack names the message it acknowledges in its own words."""
    env = item.envelope
    if env.kind is not Kind.MESSAGE:
        return ""
    answers = f" re={shown(env.reply_to, limit=64)}" if env.reply_to is not None else ""
    return f" id={shown(env.id, limit=64)}{answers}"


def delivered_lines(item: Delivered, catalogue: str | None,
                    schema: JSONObject | None = None) -> list[str]:
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
            f"{shown(env.sender, limit=64)}({shown(item.entry.party, limit=64)}) "
            f"{env.precedence.value} {shown(env.template, limit=64)}{_ids(item)}: {what}  {VERIFIED}")
    if has_files(env.body, schema):
        more.append(f"  files: `hotline fetch --index {item.index} --out DIR` saves them, each "
                    "checked against its signed SHA-256")
    host = _host_says(item.entry)
    return [head, *more] if host is None else [head, *more, host]


def delivered_json(item: Delivered, catalogue: str | None) -> str:
    env = item.envelope
    out: JSONObject = {"index": item.index, "channel": env.channel, "sender": env.sender,
                           "party": item.entry.party, "kind": env.kind.value,
                           "template": env.template, "precedence": env.precedence.value,
                           "id": env.id, "created": env.created, "body": env.body, "verified": True}
    if env.reply_to is not None:
        out["reply_to"] = env.reply_to
    if catalogue is not None:
        out["text"] = catalogue
    server: JSONObject = {"logged": item.entry.time}  # the host's word: not signed
    if item.entry.expects is not UNSET:
        server["expects"] = to_json(item.entry.expects)  # {"ack", "from", "due"}, as logged
    if item.entry.is_late:
        server["late"] = True
    out["server"] = server
    return _json(out)


def refused_line(item: Refused) -> str:
    # Nothing of a refused entry is the sender's word: only what the check found is printed.
    channel = shown(json.dumps(item.entry.channel, ensure_ascii=True), limit=CHANNEL_LIMIT)
    return (f"[{item.index}] REFUSED on {channel}: {shown(item.code, limit=64)}: {shown(item.reason)}  "
            "[did NOT verify: not shown]")


def refused_json(item: Refused) -> str:
    return _json({"index": item.index, "channel": item.entry.channel, "verified": False,
                  "refused": True, "code": item.code, "reason": item.reason})


def overdue_line(item: OverdueEntry) -> str:
    return (f"[{item.index}] {HOST} OVERDUE {shown(item.precedence, limit=64)} "
            f"{shown(item.template, limit=64)} message [{item.entry}] was due "
            f"{shown(item.due, limit=64)}: no {shown(item.ack, limit=64)} from {_names(item.missing)}")


def overdue_json(item: OverdueEntry) -> str:
    return _json({"index": item.index, "channel": item.channel, "kind": "overdue", "verified": False,
                  "server": {"logged": item.time, "ref": item.ref, "entry": item.entry,
                             "template": item.template, "precedence": item.precedence,
                             "due": item.due, "ack": item.ack, "missing": item.missing}})


def health_line(item: HealthEntry) -> str:
    """A change of the channel's health the host logged: the new state first, then why."""
    return (f"[{item.index}] {HOST} HEALTH {shown(item.channel, limit=CHANNEL_LIMIT)} "
            f"{shown(item.new, limit=16)} since {shown(item.since, limit=64)} "
            f"(was {shown(item.old, limit=16)}): {shown(item.reason)}")


def health_json(item: HealthEntry) -> str:
    return _json({"index": item.index, "channel": item.channel, "kind": "health", "verified": False,
                  "server": {"logged": item.time, "from": item.old.value, "to": item.new.value,
                             "since": item.since, "reason": item.reason}})


def health_now_line(item: Health) -> str:
    """The channel's health when ``listen`` connected (the host's live word; not a log entry)."""
    why = "; ".join(shown(reason) for reason in item.reasons())
    return (f"{HOST} HEALTH {shown(item.channel, limit=CHANNEL_LIMIT)} is "
            f"{shown(item.state, limit=16)} now, since {shown(item.since, limit=64)}"
            + (f": {why}" if why else ""))


def health_now_json(item: Health) -> str:
    return _json({"channel": item.channel, "kind": "health_now", "verified": False,
                  "server": {"state": item.state.value, "since": item.since,
                             "reasons": list(item.reasons())}})


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
