"""hotline.client.lines: whatever a peer or the host put in any field, the rendered ``listen``
line holds no character a terminal obeys (or that hides text) and no line break; what the host
wrote is never on the line marked verified (issue 20, acceptance 2 and defect 2)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET, UnsetType

from hotline.client.connection import Delivered, Refused
from hotline.client.lines import (
    BODY,
    HOST,
    VERIFIED,
    delivered_json,
    delivered_lines,
    overdue_json,
    overdue_line,
    problem_json,
    problem_line,
    proof_json,
    proof_line,
    refused_json,
    refused_line,
)
from hotline.client.problems import HostProblem
from hotline.display import unsafe
from hotline.entries import EnvelopeEntry, Expects, OverdueEntry
from hotline.envelope import Envelope, Kind, Precedence
from hotline.norms.bodytext import body_line
from hotline.norms.files import load_templates, shipped_dir
from tests.hostile_text import hostile_text as hostile

names = st.lists(hostile, max_size=3)


def safe(line: str) -> bool:
    return unsafe(line) == [] and "\n" not in line


@st.composite
def deliveries(draw: st.DrawFn) -> Delivered:
    kind = draw(st.sampled_from([Kind.MESSAGE, Kind.ACK]))
    envelope = Envelope(v=1, id=draw(hostile), kind=kind, channel=draw(hostile), sender=draw(hostile),
                        template=draw(hostile), precedence=draw(st.sampled_from(list(Precedence))),
                        created=draw(hostile), body={draw(hostile): draw(hostile), "ack": draw(hostile)},
                        reply_to=draw(hostile))
    expects = draw(st.just(UNSET) | st.builds(Expects, ack=hostile, parties=names, due=hostile))
    index = draw(st.integers(0, 2**53))
    entry = EnvelopeEntry(index=index, time=draw(hostile), channel=envelope.channel,
                          party=draw(hostile), envelope=envelope, sig={}, expects=expects,
                          late=draw(st.sampled_from([True, UNSET])))
    return Delivered(index, entry, envelope)


@given(deliveries(), st.none() | hostile)
def test_a_delivered_entry_renders_inert_and_the_host_apart(item: Delivered,
                                                            catalogue: str | None) -> None:
    head, *host = delivered_lines(item, catalogue)
    assert safe(head) and head.startswith(f"[{item.index}] ") and head.endswith(VERIFIED)
    assert all(safe(line) and line.startswith(f"  {HOST} ") for line in host)
    assert len(host) == (item.entry.expects is not UNSET or item.entry.is_late)
    record = delivered_json(item, catalogue)
    assert record.isascii() and safe(record)
    assert set(json.loads(record)["server"]) <= {"logged", "expects", "late"}


@given(deliveries(), hostile, hostile)
def test_refusals_problems_and_proofs_render_inert(item: Delivered, reason: str, text: str) -> None:
    index = item.index
    refused = Refused(index, item.entry, reason, code=text)
    problem = HostProblem(reason, index, text)
    lines = [refused_line(refused), problem_line(problem), proof_line(index, failed=reason),
             proof_line(index, size=index + 1), problem_line(HostProblem(reason))]
    assert all(safe(line) for line in lines)
    assert all(line.startswith(f"[{index}] ") for line in lines[:-1])
    assert lines[-1].startswith(f"{HOST} HOST PROBLEM: ") and lines[1].startswith(f"[{index}] {HOST} ")
    for record in (refused_json(refused), problem_json(problem), proof_json(index, failed=reason)):
        assert record.isascii() and safe(record)


@given(st.integers(0, 2**53), *(hostile for _ in range(7)), names)
def test_an_overdue_notice_is_the_hosts_and_renders_inert(
        index: int, channel: str, logged: str, ref: str, template: str, precedence: str, due: str,
        ack: str, missing: list[str]) -> None:
    notice = OverdueEntry(index=index, channel=channel, time=logged, ref=ref, entry=index,
                          template=template, precedence=precedence, due=due, ack=ack,
                          missing=missing)
    line = overdue_line(notice)
    assert safe(line) and line.startswith(f"[{index}] {HOST} OVERDUE ")
    record = overdue_json(notice)
    assert record.isascii() and safe(record) and json.loads(record)["verified"] is False


INCIDENT = load_templates(shipped_dir()).latest("incident-at-sea")


def incident(body: dict[str, object], expects: Expects | UnsetType = UNSET,
             late: bool = False) -> Delivered:
    envelope = Envelope(v=1, id="e1", kind=Kind.MESSAGE, channel="north-south", sender="alice",
                        template="incident-at-sea", precedence=Precedence.IMMEDIATE,
                        created="2026-12-01T08:00:00.000Z", body=body, reply_to=None)
    entry = EnvelopeEntry(index=12, time="2026-12-01T08:00:01.000Z", channel="north-south",
                          party="north", envelope=envelope, sig={}, expects=expects,
                          late=True if late else UNSET)
    return Delivered(12, entry, envelope)


def test_a_units_body_reads_as_titled_lines_under_its_verified_line() -> None:
    """Issue 13, item 8: no Python repr or JSON; the template's order and titles."""
    assert INCIDENT is not None
    body = {"units": [{"name": "Steadfast", "party": "north", "kind": "surface_ship"}],
            "narrative": "Low passes.", "time": "2026-12-01T06:00:00.000Z"}
    owed = Expects(ack="understood", parties=["south"], due="soon")
    assert delivered_lines(incident(body, owed), None, INCIDENT.fields) == [
        "[12] 2026-12-01T08:00:00.000Z north-south alice(north) IMMEDIATE incident-at-sea id=e1: (below)"
        f"  {VERIFIED}",
        f"{BODY}Time: 2026-12-01T06:00:00.000Z",
        f"{BODY}Units:",
        f"{BODY}  1. Party id: north",
        f"{BODY}     Kind: surface_ship",
        f"{BODY}     Name: Steadfast",
        f"{BODY}Narrative: Low passes.",
        f"  {HOST} understood ack owed by south, due soon",
    ]
    flat = delivered_lines(incident({"narrative": "Low passes.", "lang": "en"}), None, INCIDENT.fields)
    assert flat == ["[12] 2026-12-01T08:00:00.000Z north-south alice(north) IMMEDIATE "
                    f"incident-at-sea id=e1: Narrative: Low passes.; Language tag: en  {VERIFIED}"]


def test_attached_files_read_as_one_line_each_with_how_to_save_them() -> None:
    """Issue 19: a file's name, size, media type and SHA-256, never a sealed stream's key; then
    the client's own line (not the body's) saying how to save them."""
    assert INCIDENT is not None
    photo = {"sha256": "p3a-u4Kb0UuZzkUItAl3m5QQB1nlELAY0ufQ8Z9FDPM", "size": 7000,
             "media_type": "image/jpeg", "name": "low pass\u202e1.jpg", "key": "K" * 43}
    lines = delivered_lines(incident({"narrative": "Low passes.", "photos": [photo]}), None,
                            INCIDENT.fields)
    assert lines[1:] == [
        f"{BODY}Narrative: Low passes.",
        f"{BODY}Photos:",
        f"{BODY}  1. low pass⟨U+202E⟩1.jpg (7,000 bytes, image/jpeg), SHA-256 "
        "p3a-u4Kb0UuZzkUItAl3m5QQB1nlELAY0ufQ8Z9FDPM",
        "  files: `hotline fetch --index 12 --out DIR` saves them, each checked against its signed "
        "SHA-256"]
    assert "K" * 43 not in "".join(lines)
    assert body_line({"photos": [photo, photo]}, INCIDENT.fields) == (
        "Photos: [low pass⟨U+202E⟩1.jpg (7,000 bytes, image/jpeg), low pass⟨U+202E⟩1.jpg (7,000 "
        "bytes, image/jpeg)]")


@given(st.dictionaries(hostile, st.lists(st.dictionaries(hostile, hostile, max_size=2), max_size=2)
                       | st.dictionaries(hostile, hostile, max_size=2), max_size=3))
def test_a_nested_body_renders_inert_and_apart_from_the_host(body: dict[str, object]) -> None:
    item = incident(body, late=True)
    head, *rest = delivered_lines(item, None, INCIDENT.fields if INCIDENT else None)
    assert head.endswith(VERIFIED) and rest[-1].startswith(f"  {HOST} ")
    assert all(safe(line) and line.startswith(BODY) for line in rest[:-1])
