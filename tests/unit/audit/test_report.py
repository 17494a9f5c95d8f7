"""hotline.audit.report: the compliance report of one channel, from hand-built log entries.

Table-driven cases pin each rule of the module's theory of operation (selection window,
requirements, status), then a golden text page, the JSON keys, the refusals, and a hypothesis
property: any log of well-formed entries yields a report whose counts add up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.audit.report import (
    PRECEDENCES,
    Claimed,
    ComplianceReport,
    ReportBuilder,
    ReportError,
    Status,
    Tally,
    build_report,
    render_text,
)
from hotline.audit.text import WIDTH
from hotline.entries import Entry, EntryError, decode
from hotline.envelope import new_envelope_id
from hotline.epochkeys import EpochPrivateKey, Reader
from hotline.errors import SealError
from hotline.sealing import SealContext, make_disclosures, seal
from hotline.times import format_time
from tests.unit.test_layers import FORBIDDEN_IN_PURE, imports, offending

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=200)
MODULE = Path(__file__).resolve().parents[3] / "hotline" / "audit" / "report.py"
CHANNEL = "north-south"
T0 = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)  # minute 0 of every hand-built log
NOW = T0 + timedelta(hours=2)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def stamp(minutes: float) -> str:
    return format_time(at(minutes))


def health_entry(minute: float) -> dict[str, Any]:
    return {"time": stamp(minute), "kind": "health", "channel": "elsewhere", "from": "UNKNOWN",
            "to": "UP", "since": stamp(minute), "reason": "r", "parties": {}, "evidence": []}


def envelope_id(n: int) -> str:
    return new_envelope_id(bytes([n % 256, n // 256]) * 8)


@dataclass
class Log:
    """Log entries as the server writes them, with consecutive indexes from 8 (after `init`)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    next_index: int = 8
    ids: int = 0

    def add(self, entry: dict[str, Any]) -> int:
        index = self.next_index
        self.entries.append({"index": index, **entry})
        decode(self.entries[-1])  # as the server writes them: a valid entry
        self.next_index += 1
        return index

    def envelope(self, minute: float, kind: str, *, party: str, sender: str, template: str,
                 precedence: str = "ROUTINE", body: dict[str, Any] | None = None,
                 reply_to: str | None = None, channel: str = CHANNEL, **extra: Any) -> str:
        self.ids += 1
        eid = envelope_id(self.ids)
        envelope: dict[str, Any] = {"v": 1, "id": eid, "kind": kind, "channel": channel,
                                    "sender": sender, "template": template,
                                    "precedence": precedence, "created": stamp(minute),
                                    "body": body or {}}
        if reply_to is not None:
            envelope["reply_to"] = reply_to
        self.add({"time": stamp(minute), "kind": "envelope", "channel": channel, "party": party,
                  "envelope": envelope, "sig": {"alg": "ed25519", "key": "k", "sig": "s"}, **extra})
        return eid

    def message(self, minute: float, *, template: str = "message", precedence: str = "ROUTINE",
                party: str = "north", expects: tuple[str, list[str], float] | None = None,
                reply_to: str | None = None, channel: str = CHANNEL) -> str:
        extra = {} if expects is None else {"expects": {"ack": expects[0], "from": expects[1],
                                                        "due": stamp(expects[2])}}
        sender = {"north": "alice", "south": "bob", "mediator": "carol"}.get(party, party)
        return self.envelope(minute, "message", party=party, sender=sender, template=template,
                             precedence=precedence, body={"text": "x"}, reply_to=reply_to,
                             channel=channel, **extra)

    def ack(self, minute: float, ref: str, *, party: str = "south", kind: str = "received",
            **extra: Any) -> str:
        return self.envelope(minute, "ack", party=party, sender=f"{party}-liaison",
                             template="message", body={"ack": kind}, reply_to=ref, **extra)

    def answer(self, minute: float, ref: str, *, party: str, kind: str) -> None:
        if kind == "reply":
            self.message(minute, party=party, reply_to=ref)
        else:
            self.ack(minute, ref, party=party, kind=kind)

    def agent(self, minute: float, kind: str = "heartbeat", *, channel: str = CHANNEL) -> None:
        self.envelope(minute, kind, party="north", sender="north-agent", template=kind,
                      reply_to=envelope_id(999) if kind == "echo" else None, channel=channel)

    def overdue(self, minute: float, *, ref: str, entry: int, due: float, missing: list[str],
                ack: str = "received", precedence: str = "FLASH", channel: str = CHANNEL) -> int:
        return self.add({"time": stamp(minute), "kind": "overdue", "channel": channel, "ref": ref,
                         "entry": entry, "template": "message", "precedence": precedence,
                         "due": stamp(due), "ack": ack, "missing": missing})

    def rejected(self, minute: float, *, party: str = "north", code: str = "template.invalid",
                 reason: str = "message: unknown field(s) colour",
                 channel: str | None = CHANNEL) -> int:
        entry: dict[str, Any] = {"time": stamp(minute), "kind": "rejected", "party": party,
                                 "member": "alice", "template": "message", "code": code,
                                 "reason": reason, "ref": envelope_id(998)}
        if channel is not None:
            entry["channel"] = channel
        return self.add(entry)

    def typed(self) -> list[Entry]:
        """The entries as an auditor reads them (``hotline.entries``)."""
        return [decode(entry) for entry in self.entries]

    def report(self, *, since: float | None = None, until: float | None = None,
               now: datetime = NOW, channel: str = CHANNEL) -> ComplianceReport:
        return build_report(self.typed(), channel=channel,
                            since=None if since is None else at(since),
                            until=None if until is None else at(until), now=now)


# -- Rules 2 and 3: one message's requirements, table-driven -----------------------------------

@dataclass(frozen=True)
class Case:
    """One message logged at minute 0 expecting ``need`` from ``parties`` by minute ``due``;
    ``answers`` are (minute, party, kind); ``expect`` maps party -> (status, answered minute,
    delay in minutes)."""

    need: str
    answers: tuple[tuple[float, str, str], ...]
    expect: dict[str, tuple[Status, float | None, float | None]]
    parties: tuple[str, ...] = ("south",)
    due: float = 5
    until: float | None = None
    now: datetime = NOW


ON_TIME, LATE, MISSING, PENDING = Status.ON_TIME, Status.LATE, Status.MISSING, Status.PENDING
CASES = {
    "received, on time": Case("received", ((3, "south", "received"),), {"south": (ON_TIME, 3, None)}),
    "received, late": Case("received", ((7, "south", "received"),), {"south": (LATE, 7, 2)}),
    "at the due time is on time": Case("received", ((5, "south", "received"),),
                                       {"south": (ON_TIME, 5, None)}),
    "understood meets received": Case("received", ((2, "south", "understood"),),
                                      {"south": (ON_TIME, 2, None)}),
    "received does not meet understood": Case("understood", ((1, "south", "received"),),
                                              {"south": (MISSING, None, 115)}),
    "understood after received, late": Case("understood", ((1, "south", "received"),
                                                           (9, "south", "understood")),
                                            {"south": (LATE, 9, 4)}),
    "the earliest answer counts": Case("received", ((2, "south", "received"),
                                                    (3, "south", "understood")),
                                       {"south": (ON_TIME, 2, None)}),
    "a reply meets reply": Case("reply", ((4, "south", "reply"),), {"south": (ON_TIME, 4, None)}),
    "an ack does not meet reply": Case("reply", ((4, "south", "understood"),),
                                       {"south": (MISSING, None, 115)}),
    "a reply does not meet received": Case("received", ((4, "south", "reply"),),
                                           {"south": (MISSING, None, 115)}),
    "another party's ack does not count": Case("received", ((2, "mediator", "understood"),),
                                               {"south": (MISSING, None, 115)}),
    "the sender's own party does not count unless asked": Case(
        "received", ((1, "north", "received"),), {"south": (MISSING, None, 115)}),
    "each party is judged alone": Case("received", ((2, "south", "received"),
                                                    (30, "mediator", "received")),
                                       {"south": (ON_TIME, 2, None), "mediator": (LATE, 30, 25)},
                                       parties=("south", "mediator")),
    "a party named twice owes one answer": Case("received", (), {"south": (MISSING, None, 115)},
                                                parties=("south", "south")),
    "unanswered, past due: missing": Case("received", (), {"south": (MISSING, None, 115)}),
    "unanswered, not yet due: pending": Case("received", (), {"south": (PENDING, None, None)},
                                             now=at(3)),
    "unanswered, due exactly now: pending": Case("received", (), {"south": (PENDING, None, None)},
                                                 now=at(5)),
    "until before now decides: pending": Case("received", (), {"south": (PENDING, None, None)},
                                              until=4),
    "an answer logged at until is not counted": Case("received", ((7, "south", "received"),),
                                                     {"south": (MISSING, None, 2)}, until=7),
    "an answer after the last message but before until counts": Case(
        "received", ((50, "south", "received"),), {"south": (LATE, 50, 45)}, until=60),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_requirement_status(case: Case) -> None:
    log = Log()
    message = log.message(0, expects=(case.need, list(case.parties), case.due), precedence="FLASH")
    answer_index = {}
    for minute, party, kind in case.answers:
        answer_index[minute] = log.next_index
        log.answer(minute, message, party=party, kind=kind)
    report = log.report(until=case.until, now=case.now)
    got = {r.party: (r.status, r.answered, r.delay) for r in report.requirements}
    want = {party: (status, None if answered is None else at(answered),
                    None if delay is None else timedelta(minutes=delay))
            for party, (status, answered, delay) in case.expect.items()}
    assert got == want
    for requirement in report.requirements:
        assert (requirement.index, requirement.id, requirement.ack) == (8, message, case.need)
        assert requirement.due == at(case.due) and requirement.precedence == "FLASH"
        if requirement.answered is not None:
            assert requirement.answer_index == answer_index[(requirement.answered - T0).seconds / 60]


def test_the_servers_late_flag_is_not_trusted() -> None:
    log = Log()
    first = log.message(0, expects=("received", ["south"], 5))
    second = log.message(1, expects=("received", ["south"], 5))
    log.ack(2, first, late=True)  # flagged, but logged before the due time
    log.ack(9, second)  # not flagged, but logged after it
    assert [r.status for r in log.report().requirements] == [ON_TIME, LATE]


def test_tallies_by_template_and_party() -> None:
    log = Log()
    a = log.message(0, template="sitrep", expects=("received", ["south", "mediator"], 5))
    b = log.message(1, expects=("understood", ["south"], 5))
    log.message(2, expects=("reply", ["mediator"], 500))
    log.ack(3, a, party="south")
    log.ack(8, a, party="mediator")
    log.ack(4, b, kind="understood")
    report = log.report()
    assert report.by_template == {"message": Tally(on_time=1, pending=1),
                                  "sitrep": Tally(on_time=1, late=1)}
    assert report.by_party == {"mediator": Tally(late=1, pending=1), "south": Tally(on_time=2)}
    assert report.total == Tally(on_time=2, late=1, pending=1) and report.total.required == 4
    assert list(report.by_template) == ["message", "sitrep"]  # sorted, whatever the log order


# -- Rule 1: the window; what is counted and what is skipped -------------------------------------

def test_messages_by_template_and_precedence_and_other_traffic() -> None:
    log = Log()
    for minute, (template, precedence) in enumerate([("message", "FLASH"), ("message", "ROUTINE"),
                                                     ("sitrep", "FLASH"), ("message", "FLASH")]):
        ref = log.message(minute, template=template, precedence=precedence)
    log.ack(5, ref)
    log.agent(6)
    log.agent(7, "echo")
    log.agent(8)
    report = log.report()
    assert report.messages == {"message": {"FLASH": 2, "IMMEDIATE": 0, "PRIORITY": 0, "ROUTINE": 1},
                               "sitrep": {"FLASH": 1, "IMMEDIATE": 0, "PRIORITY": 0, "ROUTINE": 0}}
    assert report.message_count == 4
    assert (report.traffic.acks, report.traffic.heartbeats, report.traffic.echoes) == (1, 2, 1)
    assert report.requirements == ()  # no message expected an answer


def test_window_selects_messages_by_their_own_time() -> None:
    log = Log()
    early = log.message(0, expects=("received", ["south"], 5))  # before since
    inside = log.message(10, precedence="FLASH", expects=("received", ["south"], 15))
    log.ack(12, early)  # in the window: counted as traffic, but answers a message not selected
    log.ack(14, inside)
    late_message = log.message(30, expects=("received", ["south"], 35))  # at until: not selected
    log.ack(31, late_message)
    report = log.report(since=10, until=30)
    assert report.message_count == 1 and report.messages["message"]["FLASH"] == 1
    assert [(r.index, r.status) for r in report.requirements] == [(9, ON_TIME)]
    assert report.traffic.acks == 2
    period = report.period
    assert (period.first_index, period.last_index, period.entries) == (9, 11, 3)
    assert (period.first_time, period.last_time) == (at(10), at(14))
    assert (period.since, period.until, period.cutoff) == (at(10), at(30), at(30))


def test_other_channels_and_kinds_are_skipped() -> None:
    log = Log()
    log.add({"time": stamp(0), "kind": "enrollment", "document": {}, "sigs": []})
    log.add(health_entry(0))
    log.add({"time": stamp(0), "kind": "rejections", "party": "north", "member": "alice",
             "since": stamp(0), "until": stamp(0), "count": 1, "codes": {"x": 1}})
    elsewhere = log.message(1, channel="north-mediator", expects=("received", ["mediator"], 2))
    log.agent(2, channel="north-mediator")
    log.overdue(3, ref=elsewhere, entry=11, due=2, missing=["mediator"], channel="north-mediator")
    log.rejected(4, channel="north-mediator")
    report = log.report()
    assert (report.message_count, report.requirements, report.overdue) == (0, (), ())
    assert report.rejected.total == 0 and report.period.entries == 0
    assert report.period.first_index is None
    assert log.report(channel="north-mediator").total == Tally(missing=1)


def test_overdue_notices_in_the_window() -> None:
    log = Log()
    ref = log.message(0, precedence="FLASH", expects=("received", ["south", "mediator"], 5))
    notice = log.overdue(5.001, ref=ref, entry=8, due=5, missing=["mediator", "south"])
    log.overdue(90, ref=ref, entry=8, due=5, missing=["south"])  # after until
    report = log.report(until=60)
    assert [(n.index, n.entry, n.ref, n.due, n.missing) for n in report.overdue] == [
        (notice, 8, ref, at(5), ("mediator", "south"))]
    assert report.total == Tally(missing=2)


def test_rejected_attempts_by_party_and_code() -> None:
    log = Log()
    log.rejected(1, party="north", code="template.invalid", reason="message: unknown field(s) a")
    log.rejected(2, party="south", code="template.invalid", reason="message: unknown field(s) b")
    log.rejected(3, party="north", code="template.unknown", reason="template 'x' is not agreed")
    log.rejected(4, party="north", code="channel.not_member", channel=None)
    log.rejected(5, party="south", code="template.invalid", channel="north-mediator")
    log.rejected(70, party="south", code="template.invalid")  # after until
    rejected = log.report(until=60).rejected
    assert rejected.total == 3 and rejected.no_channel == 1
    assert rejected.by_party == {"north": 2, "south": 1}
    assert {c.code: (c.count, c.example) for c in rejected.by_code.values()} == {
        "template.invalid": (2, "message: unknown field(s) a"),
        "template.unknown": (1, "template 'x' is not agreed")}


def test_builder_gives_the_same_report_and_can_finish_twice() -> None:
    log = Log()
    ref = log.message(0, expects=("received", ["south"], 5))
    builder = ReportBuilder(channel=CHANNEL, since=None, until=None)
    for entry in log.typed():
        builder.add(entry)
    assert builder.finish(now=at(3)).total == Tally(pending=1)
    log.ack(4, ref)
    builder.add(log.typed()[-1])
    assert builder.finish(now=NOW) == log.report()
    assert builder.finish(now=NOW).total == Tally(on_time=1)


def test_a_disclosure_is_shown_only_if_it_matches_the_logged_digest() -> None:
    """``--disclosure``: a sealed field disclosed to the reader is checked against the digest
    its sender signed, as the log the report reads gives it; a forged value, a field the entry
    does not seal, or an entry that is no message of the channel fails the report."""
    key = EpochPrivateKey.generate().document(party="south", member="bob", epoch=0,
                                              length=timedelta(hours=24))
    [genuine] = make_disclosures({"note": "we hold"}, {"note": bytes(16)})
    [forged] = make_disclosures({"note": "we withdraw"}, {"note": bytes(16)})
    log = Log()
    log.message(0)
    eid = envelope_id(99)
    sealed = seal([genuine], {"note": [Reader("south", "bob", key)]},
                  SealContext(channel=CHANNEL, envelope=eid))
    index = log.add({"time": stamp(1), "kind": "envelope", "channel": CHANNEL, "party": "north",
                     "envelope": {"v": 2, "id": eid, "kind": "message", "channel": CHANNEL,
                                  "sender": "alice", "template": "assessment",
                                  "precedence": "ROUTINE", "created": stamp(1), "body": {},
                                  "sealed": sealed.to_json()},
                     "sig": {"alg": "ed25519", "key": "k", "sig": "s"}})

    def report(*claimed: Claimed) -> ComplianceReport:
        builder = ReportBuilder(channel=CHANNEL, since=None, until=None, disclosures=claimed)
        for entry in log.typed():
            builder.add(entry)
        return builder.finish(now=NOW)

    shown = report(Claimed(index, "note", "auditor", genuine.encoded))
    assert [(d.index, d.field, d.value, d.sender, d.to) for d in shown.disclosed] == [
        (index, "note", "we hold", "alice", "auditor")]
    assert shown.to_json()["disclosed"][0]["value"] == "we hold"
    assert "Disclosed sealed fields: 1" in render_text(shown) and '"we hold"' in render_text(shown)
    for claimed, code in ((Claimed(index, "note", "public", forged.encoded), "seal.digest_mismatch"),
                          (Claimed(index, "other", "public", genuine.encoded), "seal.invalid"),
                          (Claimed(index - 1, "note", "public", genuine.encoded), "seal.invalid"),
                          (Claimed(index + 5, "note", "public", genuine.encoded), "seal.invalid")):
        with pytest.raises(SealError) as refused:
            report(claimed)
        assert refused.value.code == code, claimed


# -- output --------------------------------------------------------------------------------------

def sample() -> ComplianceReport:
    log = Log()
    first = log.message(0, precedence="FLASH", expects=("understood", ["south", "mediator"], 5))
    log.ack(1, first, kind="understood")
    log.ack(7.175, first, party="mediator", kind="understood", late=True)
    second = log.message(60, precedence="IMMEDIATE", expects=("reply", ["south"], 90))
    log.agent(61)
    log.agent(61.5, "echo")
    log.overdue(90.001, ref=second, entry=11, due=90, missing=["south"], ack="reply",
                precedence="IMMEDIATE")
    log.rejected(100)
    log.rejected(101, code="channel.unknown", reason="no channel 'x'", channel=None)
    log.message(119, expects=("received", ["south"], 180))
    return log.report(since=0, until=24 * 60, now=NOW)


GOLDEN = """\
Compliance report for channel north-south
Period    2026-11-27 21:00:00 to 2026-11-28 21:00:00 (all times UTC)
As of     2026-11-27 23:00:00 (acknowledgements not due by then are pending)
Log       index 8 to 17: 9 entries of this channel
          first logged 2026-11-27 21:00:00, last 2026-11-27 22:59:00

Messages: 3
  template  FLASH  IMMEDIATE  PRIORITY  ROUTINE  total
  message       1          1         0        1      3
  total         1          1         0        1      3
Other traffic: acks 2; agent traffic: heartbeats 1, echoes 1

Acknowledgements required: 4 (one per required party of each message)
  template  required  on time  late  missing  pending
  message          4        1     1        1        1
  total            4        1     1        1        1
  party     required  on time  late  missing  pending
  mediator         1        0     1        0        0
  south            3        1     0        1        1

Late acknowledgements: 1
  index  template  precedence  party     needs       due                  answered             delay
      8  message   FLASH       mediator  understood  2026-11-27 21:05:00  2026-11-27 21:07:10  2m10s

Missing acknowledgements as of 2026-11-27 23:00:00: 1
  index  template  precedence  party  needs  due                  answered   delay
     11  message   IMMEDIATE   south  reply  2026-11-27 22:30:00  none      30m00s

Pending acknowledgements (not yet due): 1
  index  template  precedence  party  needs     due                  answered  delay
     17  message   ROUTINE     south  received  2026-11-28 00:00:00  none          -

Overdue notices logged by the server: 1
  index  message  template  precedence  needs  due                  missing
     14       11  message   IMMEDIATE   reply  2026-11-27 22:30:00  south

Rejected attempts: 1
  party  attempts
  north         1
  code              attempts  example reason
  template.invalid         1  message: unknown field(s) colour
  not counted: 1 in the period naming no channel (on a channel the sender may not use)
"""


def test_render_text_golden() -> None:
    assert render_text(sample()) == GOLDEN


def test_render_text_keeps_within_100_columns() -> None:
    long = "t" + "-very-long-template-name" * 3
    log = Log()
    ref = log.message(0, template=long[:64], expects=("understood", ["a" * 64, "b" * 64], 5))
    log.overdue(6, ref=ref, entry=8, due=5, missing=["a" * 64, "b" * 64], ack="understood")
    log.rejected(7, party="p" * 64, code="c" * 60, reason="because " * 40)
    text = render_text(log.report(channel=CHANNEL))
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert text.isascii() and "\x1b" not in text
    assert "~" in text  # long names were cut, visibly


def test_render_text_of_an_empty_period() -> None:
    text = render_text(Log().report(since=0, until=60))
    assert "no entries of this channel in the period" in text
    assert "Messages: 0" in text and "Acknowledgements required: 0" in text
    assert "Rejected attempts: 0" in text


TALLY_KEYS = {"required", "on_time", "late", "missing", "pending"}
REQUIREMENT_KEYS = {"index", "id", "template", "precedence", "party", "ack", "due", "status",
                    "answered", "answer_index", "delay_ms"}


def test_to_json_keys_are_stable() -> None:
    doc = sample().to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert set(doc) == {"version", "channel", "period", "messages", "traffic", "compliance",
                        "overdue", "rejected", "keys", "disclosed", "files"}
    assert doc["keys"] == {"authorities": [], "members": []}  # until ``with_keys``
    assert doc["version"] == 1 and doc["channel"] == CHANNEL
    assert doc["period"] == {"since": "2026-11-27T21:00:00.000Z", "until": "2026-11-28T21:00:00.000Z",
                             "now": "2026-11-27T23:00:00.000Z", "cutoff": "2026-11-27T23:00:00.000Z",
                             "first_index": 8, "last_index": 17,
                             "first_time": "2026-11-27T21:00:00.000Z",
                             "last_time": "2026-11-27T22:59:00.000Z", "entries": 9}
    assert doc["messages"] == {
        "total": 3, "by_precedence": {"FLASH": 1, "IMMEDIATE": 1, "PRIORITY": 0, "ROUTINE": 1},
        "by_template": {"message": {"FLASH": 1, "IMMEDIATE": 1, "PRIORITY": 0, "ROUTINE": 1,
                                    "total": 3}}}
    assert doc["traffic"] == {"acks": 2, "heartbeats": 1, "echoes": 1, "violations": 0}
    compliance = doc["compliance"]
    assert set(compliance) == {"total", "by_template", "by_party", "late", "missing", "pending"}
    assert compliance["total"] == {"required": 4, "on_time": 1, "late": 1, "missing": 1, "pending": 1}
    assert all(set(t) == TALLY_KEYS for t in [*compliance["by_template"].values(),
                                               *compliance["by_party"].values()])
    assert compliance["late"] == [{
        "index": 8, "id": envelope_id(1), "template": "message", "precedence": "FLASH",
        "party": "mediator", "ack": "understood", "due": "2026-11-27T21:05:00.000Z",
        "status": "late", "answered": "2026-11-27T21:07:10.500Z", "answer_index": 10,
        "delay_ms": 130_500}]
    assert [(r["status"], r["answered"], r["delay_ms"]) for r in compliance["missing"]] == [
        ("missing", None, 30 * 60_000)]
    assert all(set(r) == REQUIREMENT_KEYS for r in compliance["missing"] + compliance["pending"])
    assert doc["overdue"]["count"] == 1
    assert set(doc["overdue"]["notices"][0]) == {"index", "time", "ref", "entry", "template",
                                                 "precedence", "due", "ack", "missing"}
    assert doc["rejected"] == {"total": 1, "by_party": {"north": 1}, "no_channel": 1,
                               "by_code": {"template.invalid": {
                                   "count": 1, "example": "message: unknown field(s) colour"}}}


# -- refusals ------------------------------------------------------------------------------------

def _message_entry(**changes: Any) -> dict[str, Any]:
    log = Log()
    log.message(0, expects=("received", ["south"], 5))
    entry = log.entries[0]
    for key, value in changes.items():
        target = entry
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return entry


def _overdue(**changes: Any) -> dict[str, Any]:
    log = Log()
    log.overdue(1, ref=envelope_id(1), entry=7, due=0, missing=["south"])
    return {**log.entries[0], **changes}


# What a type says is the decoder's (``hotline.entries``): those entries never reach a report.
UNDECODABLE: dict[str, tuple[Any, str]] = {
    "not an object": (["index", 8], "must be an object"),
    "no index": ({"kind": "envelope"}, "is missing"),
    "boolean index": (_message_entry(index=True), "index must be an integer"),
    "no envelope": (_message_entry(envelope=None), "envelope must be an object"),
    "unknown envelope kind": (_message_entry(envelope__kind="memo"), "not one of the allowed values"),
    "bad precedence": (_message_entry(envelope__precedence="URGENT"), "not one of the allowed"),
    "template not text": (_message_entry(envelope__template=7), "template must be text"),
    "expects not an object": (_message_entry(expects="soon"), "expects must be an object"),
    "from not a list": (_message_entry(expects__from="south"), "expects.from must be a list"),
    "ack body": (_message_entry(envelope__kind="ack", envelope__body={"ack": "yes"},
                                envelope__reply_to=envelope_id(5)), "ack body must be"),
    "overdue without missing": (_overdue(missing="south"), "missing must be a list"),
    "rejected without code": ({"index": 9, "time": stamp(1), "kind": "rejected", "party": "north",
                               "member": "alice", "template": "t", "reason": "r",
                               "channel": CHANNEL}, "is missing code"),
}


@pytest.mark.parametrize(("entry", "fragment"), UNDECODABLE.values(), ids=UNDECODABLE.keys())
def test_malformed_entries_are_refused_by_the_decoder(entry: Any, fragment: str) -> None:
    with pytest.raises(EntryError) as info:
        decode(entry)
    assert fragment in info.value.message, info.value.message


# What a type does not say (a time, a value among those the report knows) the report refuses.
BAD_ENTRIES: dict[str, tuple[Any, str]] = {
    "bad time": (_message_entry(time="2026-11-27 21:00"), "entry 8 (envelope): time must be"),
    "unknown ack kind": (_message_entry(expects__ack="read"), "ack must be one of"),
    "bad due": (_message_entry(expects__due="soon"), "due must be an RFC 3339"),
    "overdue: bad due": (_overdue(due="soon"), "entry 8 (overdue): due must be an RFC 3339"),
    "overdue: unknown precedence": (_overdue(precedence="URGENT"), "precedence must be one of"),
}


@pytest.mark.parametrize(("entry", "fragment"), BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_malformed_entries_are_refused_by_index(entry: Any, fragment: str) -> None:
    with pytest.raises(ReportError) as info:
        build_report([decode(entry)], channel=CHANNEL, since=None, until=None, now=NOW)
    assert info.value.code == "report.bad_entry"
    assert fragment in info.value.message


def test_entries_out_of_order_are_refused() -> None:
    log = Log()
    log.message(0)
    log.message(1)
    with pytest.raises(ReportError, match="entry 8 comes after entry 9"):
        build_report(reversed(log.typed()), channel=CHANNEL, since=None, until=None, now=NOW)
    with pytest.raises(ReportError, match="entry 8 comes after entry 8"):
        build_report([log.typed()[0]] * 2, channel=CHANNEL, since=None, until=None, now=NOW)


@pytest.mark.parametrize(("since", "until", "now"), [
    (at(5), at(5), NOW), (at(6), at(5), NOW), (datetime(2026, 11, 27), None, NOW),
    (None, None, datetime(2026, 11, 27))])
def test_a_bad_period_is_refused(since: datetime | None, until: datetime | None,
                                 now: datetime) -> None:
    with pytest.raises(ReportError) as info:
        build_report([], channel=CHANNEL, since=since, until=until, now=now)
    assert info.value.code == "report.bad_period"


def test_report_module_is_pure() -> None:
    names = imports(MODULE)
    assert not offending(names, FORBIDDEN_IN_PURE)
    assert {n for n in names if n.startswith("hotline")} <= {
        "hotline.audit.attachments", "hotline.audit.keys", "hotline.audit.text", "hotline.roster",
        "hotline.canonical", "hotline.entries", "hotline.envelope", "hotline.errorcodes", "hotline.errors",
        "hotline.sealing", "hotline.times", "hotline.typed"}
    text = MODULE.read_text()
    assert "datetime.now(" not in text and ".utcnow(" not in text and "open(" not in text


# -- property: the counts add up -------------------------------------------------------------------

PARTIES = ("north", "south", "mediator")
KINDS = ("received", "understood", "reply")
ANSWERS = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 7), st.sampled_from(KINDS),
                             st.booleans()), max_size=4)  # (minutes after, who, kind, late flag)
EXPECTS = st.tuples(st.sampled_from(KINDS), st.lists(st.sampled_from(PARTIES), min_size=1, max_size=4),
                    st.integers(0, 60))  # (ack, from, due in minutes after the message)
MESSAGE = st.tuples(st.just("message"), st.sampled_from(["message", "sitrep"]),
                    st.sampled_from(PRECEDENCES), st.one_of(st.none(), EXPECTS, EXPECTS, EXPECTS),
                    st.sampled_from([CHANNEL, CHANNEL, "north-mediator"]), ANSWERS)
OPS = st.one_of(
    MESSAGE,
    st.tuples(st.just("answer"), st.integers(0, 50), st.sampled_from(PARTIES), st.sampled_from(KINDS)),
    st.tuples(st.just("agent"), st.sampled_from(["heartbeat", "echo"])),
    st.tuples(st.just("overdue"), st.integers(0, 50), st.lists(st.sampled_from(PARTIES), max_size=3)),
    st.tuples(st.just("rejected"), st.sampled_from(PARTIES),
              st.sampled_from(["template.invalid", "template.unknown", "ack.unknown_ref"]),
              st.sampled_from([CHANNEL, "north-mediator", None])),
    st.tuples(st.just("other"), st.sampled_from(["enrollment", "revocation", "health"])),
)
MINUTE = st.one_of(st.none(), st.none(), st.integers(0, 300))


def build_log(steps: list[tuple[int, tuple[Any, ...]]]) -> Log:
    """A log from generated steps (minutes since the previous step, operation); log times never
    go back, as on the server. A message's answers follow it; ``answer`` steps answer any
    earlier message, later."""
    log, minute, messages = Log(), 0, []
    for gap, op in steps:
        minute += gap
        match op:
            case ("message", template, precedence, expects, channel, answers):
                index = log.next_index
                ref = log.message(minute, template=template, precedence=precedence, channel=channel,
                                  expects=None if expects is None
                                  else (expects[0], expects[1], minute + expects[2]))
                messages.append((index, ref, minute))
                pool = [*expects[1], *PARTIES] if expects else PARTIES  # mostly a party owing
                for after, who, kind, flag in sorted(answers):
                    party = pool[who % len(pool)]
                    if kind == "reply":
                        log.message(minute + after, party=party, reply_to=ref)
                    else:
                        log.ack(minute + after, ref, party=party, kind=kind,
                                **({"late": True} if flag else {}))
                minute += max((a[0] for a in answers), default=0)
            case ("answer", target, party, kind) if messages:
                log.answer(minute, messages[target % len(messages)][1], party=party, kind=kind)
            case ("agent", kind):
                log.agent(minute, kind)
            case ("overdue", target, missing) if messages:
                index, ref, sent = messages[target % len(messages)]
                log.overdue(minute, ref=ref, entry=index, due=sent, missing=missing)
            case ("rejected", party, code, channel):
                log.rejected(minute, party=party, code=code, channel=channel)
            case ("other", kind):
                log.add(health_entry(minute) if kind == "health" else
                        {"time": stamp(minute), "kind": kind, "document": {}, "sigs": []})
    return log


def window(since: int | None, until: int | None) -> tuple[int | None, int | None]:
    if since is not None and until is not None and since >= until:
        return until, since + 1
    return since, until


@FAST
@given(blocks=st.lists(st.tuples(st.integers(0, 30), MESSAGE,
                                 st.lists(st.tuples(st.integers(0, 30), OPS), max_size=3)),
                       max_size=15),
       since=MINUTE, until=MINUTE, now=st.integers(0, 900))
def test_counts_add_up(blocks: list[tuple[int, tuple[Any, ...], list[tuple[int, tuple[Any, ...]]]]],
                       since: int | None, until: int | None, now: int) -> None:
    log = build_log([step for gap, message, others in blocks for step in [(gap, message), *others]])
    since, until = window(since, until)
    report = log.report(since=since, until=until, now=at(now))
    doc = report.to_json()

    def inside(entry: dict[str, Any]) -> bool:
        minute = (datetime.fromisoformat(entry["time"]) - T0) / timedelta(minutes=1)
        return (since is None or since <= minute) and (until is None or minute < until)

    ours = [e for e in log.entries if e.get("channel") == CHANNEL and inside(e)]
    selected = [e for e in ours if e["kind"] == "envelope" and e["envelope"]["kind"] == "message"]
    # messages: every selected message once, whichever way it is summed
    assert report.message_count == len(selected) == doc["messages"]["total"]
    assert sum(doc["messages"]["by_precedence"].values()) == len(selected)
    assert sum(row["total"] for row in doc["messages"]["by_template"].values()) == len(selected)
    # requirements: one per distinct party of each selected message's expects
    owed = sum(len(set(e["expects"]["from"])) for e in selected if "expects" in e)
    requirements = report.requirements
    assert len(requirements) == owed == report.total.required
    assert sum(t.required for t in report.by_template.values()) == owed
    assert sum(t.required for t in report.by_party.values()) == owed
    for status in Status:
        chosen = report.with_status(status)
        assert getattr(report.total, status.value) == len(chosen)
        assert sum(getattr(t, status.value) for t in report.by_template.values()) == len(chosen)
        assert sum(getattr(t, status.value) for t in report.by_party.values()) == len(chosen)
        if status is not Status.ON_TIME:
            assert len(doc["compliance"][status.value]) == len(chosen)
    cutoff = report.period.cutoff
    for r in requirements:
        match r.status:
            case Status.ON_TIME:
                assert r.answered is not None and r.answered <= r.due and r.delay is None
            case Status.LATE:
                assert r.answered is not None and r.delay == r.answered - r.due > timedelta(0)
            case Status.MISSING:
                assert r.answered is None and r.due < cutoff and r.delay == cutoff - r.due
            case Status.PENDING:
                assert r.answered is None and r.due >= cutoff and r.delay is None
        if r.answered is not None:
            assert until is None or r.answered < at(until)
    # notices, refusals, traffic: every entry of the channel in the window counted once
    assert doc["overdue"]["count"] == len(report.overdue) == sum(e["kind"] == "overdue" for e in ours)
    rejected = report.rejected
    assert rejected.total == sum(c.count for c in rejected.by_code.values())
    assert rejected.total == sum(e["kind"] == "rejected" for e in ours)
    traffic = report.traffic
    assert report.period.entries == len(ours) == (len(selected) + traffic.acks + traffic.heartbeats
                                                  + traffic.echoes + len(report.overdue)
                                                  + rejected.total)
    if ours:
        assert (report.period.first_index, report.period.last_index) == (ours[0]["index"],
                                                                         ours[-1]["index"])
    assert json.loads(json.dumps(doc)) == doc
    assert max(len(line) for line in render_text(report).splitlines()) <= WIDTH
