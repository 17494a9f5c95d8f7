"""The witness policy, pure: ``hotline.witnesses`` and ``Auditor.finish``.

A small log built here with fixed keys: north, south and mediator enroll an agent each (north's
is the witness ``relay``, and south's agent is *also* called ``relay``: names are per party), an
auditor, and a channel whose agreement names north's ``relay`` and mediator's ``mediator-agent``
as witnesses. Checkpoints are signed with a log key; cosignature lines are made with ``cosign``.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hotline.audit.records import EntryRecord
from hotline.audit.verify import AuditFailure, Auditor
from hotline.canonical import canonical_bytes
from hotline.keys import SigningKey
from hotline.roster import Role, Roster, decode_document, enrollment, sign_document
from hotline.times import format_time
from hotline.tlog import Checkpoint, Frontier, NoteVerifier, cosign, leaf_hash, sign_checkpoint
from hotline.tlog.note import MAX_SIGNATURES, parse_note
from hotline.witnesses import named_witnesses, servable, verify_line, witness_keys

ORIGIN = "log.test"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STAMP = int((T0 + timedelta(days=1)).timestamp())


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(f"witness-policy/{label}".encode()).digest())


AUTH = {p: key(f"authority/{p}") for p in ("north", "south", "mediator")}
LOG = key("log")
LOG_KEY = NoteVerifier(name=ORIGIN, public_key=LOG.public_key.raw)
MEMBERS = {  # (party, member) -> role
    ("north", "relay"): Role.AGENT, ("south", "relay"): Role.AGENT,
    ("mediator", "mediator-agent"): Role.AGENT, ("mediator", "audrey"): Role.AUDITOR,
}
KEYS = {m: key(f"member/{m[0]}/{m[1]}") for m in MEMBERS}


def roster_entries() -> list[dict[str, Any]]:
    entries = []
    for (party, member), role in MEMBERS.items():
        doc = enrollment(party=party, member=member, role=role, key=KEYS[party, member].public_key,
                         not_before=T0, not_after=T0 + timedelta(days=365))
        entries.append({"kind": "enrollment", **sign_document(doc, AUTH[party]).to_json()})
    agreement = {
        "type": "agreement", "channel": "north-south", "version": 1,
        "parties": [{"id": p, "authority": AUTH[p].key_id} for p in ("north", "south")],
        "templates": [{"id": "message", "version": 1, "sha256": "0" * 64}],
        "heartbeat": {"interval": 10, "grace": 10},
        "auditors": [{"id": "audrey", "authority": AUTH["mediator"].key_id}],
        "witnesses": [{"id": "relay", "authority": AUTH["north"].key_id},
                      {"id": "mediator-agent", "authority": AUTH["mediator"].key_id}],
        "effective": format_time(T0)}
    entries.append({"kind": "agreement", "channel": "north-south",
                    **sign_document(decode_document(agreement), AUTH["north"], AUTH["south"]).to_json()})
    return [{"index": n, "time": format_time(T0 + timedelta(seconds=n)), **e}
            for n, e in enumerate(entries)]


ENTRIES = roster_entries()
SIZE = len(ENTRIES)


def checkpoint(size: int, entries: list[dict[str, Any]] = ENTRIES) -> str:
    frontier = Frontier()
    for entry in entries[:size]:
        frontier.append(leaf_hash(canonical_bytes(entry)))
    return sign_checkpoint(Checkpoint(ORIGIN, size, frontier.root()), LOG)


def cosigned(note: str, *who: tuple[str, str], signer: SigningKey | None = None) -> str:
    body = parse_note(note).body
    return note + "".join(cosign(body, name=member, key=signer or KEYS[party, member],
                                 timestamp=STAMP) for party, member in who)


def records(entries: list[dict[str, Any]] = ENTRIES) -> list[EntryRecord]:
    return [EntryRecord(e["index"], leaf=base64.b64encode(canonical_bytes(e)).decode())
            for e in entries]


def audit(*notes: str, require: int | None = None, entries: list[dict[str, Any]] = ENTRIES) -> Any:
    auditor = Auditor(log_key=LOG_KEY, authorities={p: k.public_key for p, k in AUTH.items()})
    for note in notes:
        auditor.add_checkpoint(note, source="the test")
    for record in records(entries):
        auditor.add_entry(record)
    return auditor.finish(require_witnesses=require)


RELAY, MEDIATOR = ("north", "relay"), ("mediator", "mediator-agent")


def test_named_witnesses_and_their_keys() -> None:
    roster = Roster({p: k.public_key for p, k in AUTH.items()})
    for entry in ENTRIES:
        roster.add({"document": entry["document"], "sigs": entry["sigs"]})
    named = named_witnesses(roster)
    assert [w.label for w in named] == ["mediator/mediator-agent", "north/relay"]
    slots = witness_keys(roster, named)
    # south's agent "relay" is not north's witness "relay": another key, another key hash
    assert {(k.witness.label, k.enrollment.party) for keys in slots.values() for k in keys} == {
        ("north/relay", "north"), ("mediator/mediator-agent", "mediator")}


def test_verdict_covers_the_checkpoint_every_named_witness_cosigned() -> None:
    report = audit(cosigned(checkpoint(SIZE - 1), RELAY, MEDIATOR), checkpoint(SIZE))
    assert report.witnesses == {"mediator/mediator-agent": SIZE - 1, "north/relay": SIZE - 1}
    assert (report.witnessed_size, report.unwitnessed, report.required_witnesses) == (SIZE - 1, 1, 2)


def test_one_of_two_and_the_escape_hatch() -> None:
    note = cosigned(checkpoint(SIZE), RELAY)
    with pytest.raises(AuditFailure, match="by all 2 named witnesses: mediator/mediator-agent "
                                           rf"cosigned none \(cosigned: north/relay up to {SIZE}\)"):
        audit(note)
    assert audit(note, require=1).witnessed_size == SIZE
    assert audit(checkpoint(SIZE), require=0).witnessed_size == SIZE
    with pytest.raises(AuditFailure, match="requires 3 witnesses, but the agreements name only 2"):
        audit(note, require=3)


def test_a_same_named_agent_of_another_party_does_not_count() -> None:
    note = cosigned(checkpoint(SIZE), ("south", "relay"), MEDIATOR)
    with pytest.raises(AuditFailure, match="north/relay cosigned none"):
        audit(note)
    assert audit(note, require=1).cosignatures == {"mediator/mediator-agent": 1}


def test_a_witnessed_checkpoint_larger_than_the_log_is_a_rollback() -> None:
    witnessed = cosigned(checkpoint(SIZE), RELAY, MEDIATOR)
    with pytest.raises(AuditFailure, match=f"checkpoint of size {SIZE} .* now has {SIZE - 1} "
                                           "entries: it was truncated or rolled back"):
        audit(witnessed, entries=ENTRIES[:-1])


def test_a_cosignature_on_another_tree_of_the_same_size_is_a_split_view() -> None:
    other = [*ENTRIES[:-1], {**ENTRIES[-1], "time": format_time(T0 + timedelta(hours=1))}]
    lines = cosigned(checkpoint(SIZE), RELAY).removeprefix(checkpoint(SIZE))  # over the real tree
    with pytest.raises(AuditFailure, match="the cosignature of north/relay does not verify .* "
                                           r"\(a split view\)"):
        audit(checkpoint(SIZE, other) + lines, entries=other)


def test_a_forged_line_under_a_witness_name_is_ignored_unless_its_key_hash_matches() -> None:
    note = cosigned(checkpoint(SIZE), RELAY, MEDIATOR)
    stranger = cosigned(checkpoint(SIZE), RELAY, signer=key("stranger"))
    # a stranger's key yields another key hash: not the witness, simply not counted
    assert audit(stranger, note).witnessed_size == SIZE


def test_verify_line_checks_validity_at_the_given_moment() -> None:
    roster = Roster({p: k.public_key for p, k in AUTH.items()})
    for entry in ENTRIES:
        roster.add({"document": entry["document"], "sigs": entry["sigs"]})
    slots = witness_keys(roster, named_witnesses(roster))
    note = cosigned(checkpoint(SIZE), RELAY)
    parsed = parse_note(note)
    found = verify_line(parsed.signatures[1], parsed.body, slots)
    assert found is not None and found[0].witness.label == "north/relay" and found[1] == STAMP
    assert verify_line(parsed.signatures[1], parsed.body, slots,
                       valid_at=T0 + timedelta(days=400)) is None  # expired by then


def test_servable_keeps_one_line_per_named_witness_within_the_note_limit() -> None:
    roster = Roster({p: k.public_key for p, k in AUTH.items()})
    for entry in ENTRIES:
        roster.add({"document": entry["document"], "sigs": entry["sigs"]})
    slots = witness_keys(roster, named_witnesses(roster))
    note = checkpoint(SIZE)
    genuine = cosigned(note, RELAY, MEDIATOR).removeprefix(note).splitlines(keepends=True)
    strangers = [cosign(parse_note(note).body, name=f"agent-{n}", key=key(f"s{n}"), timestamp=STAMP)
                 for n in range(150)]
    junk = ["", "not a line", "\u2014 relay !!!", 7]
    served = servable(note, [*strangers, *junk, genuine[0], genuine[0], *genuine], slots)  # type: ignore[list-item]
    signatures = parse_note(served).signatures
    assert len(signatures) <= MAX_SIGNATURES
    assert [s.name for s in signatures] == [ORIGIN, "relay", "mediator-agent"]
    assert servable("not a note", genuine, slots) == "not a note"
