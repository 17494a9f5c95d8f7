"""The keys a channel's history rests on, as the auditor's verified roster knows them: each
party's authority keys (the pinned one and each it handed over to) and every key enrolled for a
member of the channel, with its validity. Pure: a ``Roster`` in, typed records out.

A lost laptop shows here as two keys of one member: the old one revoked at a time (what it signed
before still verifies), the new one valid from its enrollment.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from hotline.audit.text import Column, table
from hotline.roster import KeyRecord, Roster, key_record
from hotline.times import format_time


class AuthorityKeyDoc(msgspec.Struct, frozen=True):
    party: str
    key: str  # KEY_ID
    pinned: bool  # the key the auditor pinned out of band (else reached by handovers)
    retired_at: str | None  # the handover's time, or null for the current key
    successor: str | None


@dataclass(frozen=True)
class ChannelKeys:
    authorities: tuple[AuthorityKeyDoc, ...]
    members: tuple[KeyRecord, ...]


def channel_keys(roster: Roster, channel: str) -> ChannelKeys:
    """The authority keys of the channel's parties and every member key they enrolled for it
    (its auditors included), sorted by party, member and validity; empty for an unknown channel."""
    agreement = roster.agreements.get(channel)
    if agreement is None:
        return ChannelKeys((), ())
    parties = set(agreement.parties)
    authorities = []
    for party in sorted(parties):
        pinned = roster.authorities.get(party)
        for key_id in sorted(roster.authority_keys(party)):
            retired = roster.retired.get(key_id)
            authorities.append(AuthorityKeyDoc(
                party, key_id, pinned is not None and pinned.key_id == key_id,
                format_time(retired.at) if retired else None,
                retired.successor if retired else None))
    auditors = set(agreement.auditors)
    members = [key_record(e) for e in roster.enrollments.values()
               if e.party in parties or e.member in auditors]
    members.sort(key=lambda m: (m.party, m.member, m.not_before, m.key))
    return ChannelKeys(tuple(authorities), tuple(members))


def render_keys(keys: ChannelKeys) -> list[str]:
    """The keys as text lines within the report's width: authorities, members, then the reasons
    given for revocations (KEY_IDs shortened; the JSON form has them whole)."""
    lines = ["", f"Authority keys: {len(keys.authorities)}"]
    lines += table([Column("party", shrink=True), Column("key"), Column("pinned"),
                    Column("status", shrink=True)],
                   [[a.party, a.key[:12], "yes" if a.pinned else "by handover",
                     "current" if a.retired_at is None else
                     f"retired {_short(a.retired_at)}, to {(a.successor or '')[:8]}"]
                    for a in keys.authorities])
    lines += ["", f"Member keys: {len(keys.members)}"]
    lines += table([Column("member", shrink=True), Column("role"), Column("key"),
                    Column("valid from"), Column("until"), Column("revoked")],
                   [[f"{m.member} ({m.party})", m.role, m.key[:8], _short(m.not_before),
                     _short(m.not_after), "no" if m.revoked_at is None else _short(m.revoked_at)]
                    for m in keys.members])
    lines += [f"  {m.member} ({m.party}) key {m.key[:8]} revoked: {m.reason}"
              for m in keys.members if m.reason]
    return lines


def _short(text: str) -> str:
    """An RFC 3339 time (``format_time``'s) to the minute, as a key table shows it."""
    return text[:16].replace("T", " ")
