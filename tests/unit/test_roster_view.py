"""What `hotline roster show` says (hotline/roster_cli.py ``roster_view``, ``view_lines``) and what
a client records of a document its roster refused (``refused_document``): the type and the code,
never the content; parties it did not pin shown as unverified.

The deployment is tests/unit/test_roster.py's (fixed keys)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hotline.display import unsafe
from hotline.errors import HotlineError
from hotline.roster import RefusedDocument, Roster, handover, refused_document, sign_document
from hotline.roster_cli import roster_view, view_lines
from tests.unit.test_roster import AUTH, AUTHORITIES, NOW, PEOPLE, agreed, enrolled, fixed_key


def built(pinned: tuple[str, ...]) -> tuple[Roster, list[RefusedDocument]]:
    """The roster a client pinning ``pinned`` builds from the demo's documents, as Client does."""
    roster = Roster({p: AUTHORITIES[p] for p in pinned})
    refused = []
    documents: list[Any] = [enrolled(name) for name in PEOPLE] + [agreed()]
    documents += [{"document": {"type": "nonsense", "evil": "\x1b[2J"}, "sigs": []}]
    for value in documents:
        try:
            roster.add(value)
        except HotlineError as exc:
            refused.append(refused_document(value, exc, roster))
    return roster, refused


def test_everything_pinned_shows_every_member_and_channel() -> None:
    roster, refused = built(("north", "south", "mediator", "west"))
    view = roster_view("alice", roster, dict(roster.authorities), refused)
    assert [p.party for p in view.parties] == ["mediator", "north", "south", "west"]
    assert {m.member for m in view.members} == set(PEOPLE)
    assert [c.channel for c in view.channels] == ["north-south"]
    assert [(r.type, r.code, r.count) for r in view.refused] == [("unknown", "roster.invalid", 1)]


def test_an_unpinned_party_is_unverified_and_its_documents_are_counted_not_shown() -> None:
    roster, refused = built(("north", "south"))
    view = roster_view("alice", roster, dict(roster.authorities), refused)
    assert [(p.party, p.verified) for p in view.parties] == [
        ("north", True), ("south", True), ("mediator", False), ("west", False)]
    assert {m.member for m in view.members} == {"alice", "bob", "north-relay"}
    assert view.channels == []  # the agreement names mediator, whom this member cannot check
    assert {(r.type, r.code): r.count for r in view.refused} == {
        ("enrollment", "roster.unknown_party"): 2, ("agreement", "roster.unknown_party"): 1,
        ("unknown", "roster.invalid"): 1}
    lines = view_lines(view)
    assert "  mediator: UNVERIFIED (no authority pinned by this member)" in lines
    assert all(unsafe(line) == [] for line in lines) and not any("evil" in line for line in lines)


def test_a_handover_shows_the_pinned_and_the_current_key() -> None:
    roster, refused = built(("north", "south", "mediator"))
    new = fixed_key("authority/north-2")
    roster.add(sign_document(handover(party="north", old=AUTH["north"].public_key,
                                      new=new.public_key, at=NOW + timedelta(days=1)),
                             AUTH["north"], new))
    north = next(p for p in roster_view("bob", roster, dict(roster.authorities), refused).parties
                 if p.party == "north")
    assert (north.pinned, north.current) == (AUTH["north"].key_id, new.key_id)
    assert north.handed_over_at is not None and north.handed_over_at.startswith("2026-02-01")


@pytest.mark.parametrize("value", [None, [], {"document": 1, "sigs": []}, "x" * 10])
def test_anything_refused_is_at_most_its_type_and_code(value: Any) -> None:
    record = refused_document(value, HotlineError("no"), Roster({}))
    assert record == RefusedDocument(type="unknown", code="internal.error")
