"""hotline.logwatch: a client's own chain of checkpoints, inclusion proofs of the
entries it was delivered, and which witnesses have seen each. Real trees, real signatures."""

from __future__ import annotations

import pytest

from hotline.entries import Entry, RejectedEntry, leaf_bytes
from hotline.errors import LogError
from hotline.keys import SigningKey
from hotline.logwatch import Head, LogAlarm, LogWatch
from hotline.tlog import (
    Checkpoint,
    CosignatureVerifier,
    NoteVerifier,
    add_cosignatures,
    cosign,
    sign_checkpoint,
)
from hotline.tlog.merkle import Frontier, Node, consistency_proof, inclusion_proof, leaf_hash
from hotline.tlog.note import parse_note

ORIGIN = "hotline.test"
LOG = SigningKey.from_seed(bytes([21]) * 32)
LOG_KEY = NoteVerifier(ORIGIN, LOG.public_key.raw)
NORTH, SOUTH = SigningKey.from_seed(bytes([22]) * 32), SigningKey.from_seed(bytes([23]) * 32)
WITNESSES = [("north/north-agent", CosignatureVerifier("north-agent", NORTH.public_key.raw)),
             ("south/south-agent", CosignatureVerifier("south-agent", SOUTH.public_key.raw))]


class Log:
    """An in-memory log of entries, as the server keeps it (leaf = RFC 8785 bytes)."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries: list[Entry] = []
        self.frontier, self.nodes = Frontier(), {}
        self.roots: dict[int, bytes] = {}
        for entry in entries:
            self.append(entry)

    def append(self, entry: Entry) -> None:
        nodes: dict[Node, bytes] = {(lv, ix): h for lv, ix, h in
                                    self.frontier.append(leaf_hash(leaf_bytes(entry)))}
        self.nodes.update(nodes)
        self.entries.append(entry)
        self.roots[self.frontier.size] = self.frontier.root()

    def checkpoint(self, size: int) -> Checkpoint:
        return Checkpoint(ORIGIN, size, self.roots[size])

    def note(self, size: int, *cosigners: tuple[str, SigningKey]) -> str:
        note = sign_checkpoint(self.checkpoint(size), LOG)
        body = parse_note(note).body
        return add_cosignatures(note, [cosign(body, name=n, key=k, timestamp=1_800_000_000)
                                       for n, k in cosigners])

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof(index, size, self.nodes)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return consistency_proof(old, new, self.nodes)


def entry(index: int, text: str) -> Entry:
    return RejectedEntry(index=index, time="2026-12-01T08:00:00.000Z", party="north",
                         member="alice", template="message", code="norm.rate_limited", reason=text)


def entries(n: int, tag: str = "") -> list[Entry]:
    return [entry(i, f"message {i}{tag}") for i in range(n)]


def joined(watch: LogWatch, log: Log, note: str, *, latest: bool = False) -> Checkpoint:
    """What the I/O half does: verify, fetch the consistency proof asked for, join."""
    checkpoint = watch.checkpoint(note)
    needed = watch.consistency_needed(checkpoint, latest=latest)
    watch.join(checkpoint, None if needed is None else log.consistency(*needed), latest=latest)
    return checkpoint


def test_inclusion_and_witnesses_on_a_growing_chain() -> None:
    log = Log(entries(5))
    watch = LogWatch(LOG_KEY)
    joined(watch, log, log.note(5))
    assert watch.head == Head(5, log.roots[5])
    for index in watch.wanted(range(5)):
        watch.include(index, log.entries[index], 5, log.inclusion(index, 5))
    assert watch.wanted(range(5)) == []
    for entry in entries(9)[5:]:
        log.append(entry)
    # north cosigned the old head, south the new one; the new head joins by a consistency proof
    north = log.note(5, ("north-agent", NORTH))
    south = log.note(8, ("south-agent", SOUTH))
    assert watch.witnessed(north, joined(watch, log, north), WITNESSES) == ["north/north-agent"]
    assert watch.witnessed(south, joined(watch, log, south), WITNESSES) == ["south/south-agent"]
    assert watch.head == Head(8, log.roots[8])
    assert watch.wanted(range(9)) == [5, 6, 7]  # 8 is beyond the head
    watch.include(6, log.entries[6], 8, log.inclusion(6, 8))

    names = ["north/north-agent", "south/south-agent"]
    early, late, ahead = watch.report(3, names), watch.report(6, names), watch.report(8, names)
    assert early.included_in == 5 and early.all_witnessed and early.seen_by == names
    assert late.included_in == 8 and late.seen_by == ["south/south-agent"] and not late.all_witnessed
    assert any("not yet north/north-agent" in line for line in late.lines())
    assert not ahead.included and "does not cover this entry yet" in ahead.problems[0]
    # an older checkpoint, cosigned later by north, joins backwards (proof from it to the head)
    older = log.note(7, ("north-agent", NORTH))
    watch.witnessed(older, joined(watch, log, older), WITNESSES)
    assert watch.head == Head(8, log.roots[8]) and watch.report(6, names).all_witnessed


def test_a_second_tree_of_the_same_size_is_a_split_view_alarm() -> None:
    log, other = Log(entries(6)), Log(entries(6, tag=" (rewritten)"))
    watch = LogWatch(LOG_KEY)
    joined(watch, log, log.note(6))
    with pytest.raises(LogAlarm, match="split view"):
        joined(watch, other, other.note(6))
    assert watch.alarm is not None and "two histories" in watch.alarm
    assert watch.wanted(range(6)) == []  # nothing more is proven after an alarm
    with pytest.raises(LogAlarm):
        joined(watch, log, log.note(6))  # not even the honest tree
    assert watch.alarm in watch.report(2, []).problems


def test_a_history_rewritten_since_an_earlier_run_is_caught_from_the_remembered_head() -> None:
    log = Log(entries(8))
    remembered = Head.from_json(Head(8, log.roots[8]).to_json())
    assert remembered == Head(8, log.roots[8])
    honest = LogWatch(LOG_KEY, remembered)
    joined(honest, log, log.note(5))  # an older checkpoint of the same history is fine
    assert honest.head == remembered and honest.alarm is None

    rewritten = Log(entries(3) + entries(12, tag=" (rewritten)")[3:])
    watch = LogWatch(LOG_KEY, remembered)
    with pytest.raises(LogAlarm, match="does not extend tree 8"):
        joined(watch, rewritten, rewritten.note(12))
    assert watch.head == remembered  # the head never moves to a history that does not extend it

    shrunk = LogWatch(LOG_KEY, remembered)  # the same history, cut back to 6 entries
    with pytest.raises(LogAlarm, match="rollback: the log's latest checkpoint has 6 entries"):
        joined(shrunk, log, log.note(6), latest=True)


def test_an_entry_delivered_otherwise_than_logged_fails_its_inclusion_proof() -> None:
    log = Log(entries(4))
    watch = LogWatch(LOG_KEY)
    joined(watch, log, log.note(4))
    forged = entry(2, "message 2, as the host showed it")
    with pytest.raises(LogError):
        watch.include(2, forged, 4, log.inclusion(2, 4))
    report = watch.report(2, [])
    assert not report.included and report.failed is not None and "NOT the one logged" in report.failed
    assert watch.wanted(range(4)) == [0, 1, 3]  # not asked again
    with pytest.raises(LogError, match="not the verified head"):
        watch.include(1, log.entries[1], 3, log.inclusion(1, 3))


def test_checkpoints_must_carry_the_pinned_log_key_and_cosignatures_their_witness_key() -> None:
    log = Log(entries(3))
    with pytest.raises(LogError):
        LogWatch(NoteVerifier(ORIGIN, NORTH.public_key.raw)).checkpoint(log.note(3))
    with pytest.raises(LogError, match="no log key"):
        LogWatch(None).checkpoint(log.note(3))
    watch = LogWatch(LOG_KEY)
    # keys the channel's witnesses do not hold (another name, or north's name on south's key)
    for stranger in (log.note(3, ("mallory-agent", SOUTH)), log.note(3, ("north-agent", SOUTH))):
        assert watch.witnessed(stranger, joined(watch, log, stranger), WITNESSES) == []
    # north's key, but its cosignature is of another checkpoint
    other = parse_note(Log(entries(3, tag="!")).note(3)).body
    forged = add_cosignatures(log.note(3), [cosign(other, name="north-agent", key=NORTH,
                                                   timestamp=1_800_000_000)])
    with pytest.raises(LogError):
        watch.witnessed(forged, joined(watch, log, forged), WITNESSES)
    assert watch.seen_by == {}


def test_a_remembered_head_that_is_unreadable_is_none() -> None:
    assert Head.from_json(None) is None
    assert Head.from_json({"size": 3, "root": "zz"}) is None
    assert Head.from_json({"size": 3}) is None


def test_two_parties_witnesses_of_one_name_count_apart() -> None:
    """Names are per party: north's and south's "relay" are two witnesses; each line counts for
    the key its key hash names, never for the other."""
    log = Log(entries(4))
    relays = [("north/relay", CosignatureVerifier("relay", NORTH.public_key.raw)),
              ("south/relay", CosignatureVerifier("relay", SOUTH.public_key.raw))]
    watch = LogWatch(LOG_KEY)
    one = log.note(4, ("relay", SOUTH))
    assert watch.witnessed(one, joined(watch, log, one), relays) == ["south/relay"]
    watch.include(1, log.entries[1], 4, log.inclusion(1, 4))
    assert not watch.report(1, ["north/relay", "south/relay"]).all_witnessed
    both = log.note(4, ("relay", NORTH), ("relay", SOUTH))
    assert watch.witnessed(both, joined(watch, log, both), relays) == ["north/relay", "south/relay"]
    assert watch.report(1, ["north/relay", "south/relay"]).all_witnessed
