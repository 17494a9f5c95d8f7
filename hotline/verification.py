"""One check of a logged envelope entry, shared by everyone who reads the log. Pure.

The client (``Client.verify``, so also ``hotline listen``, ``ack`` and the console) and the
auditor (``Auditor._check_envelope``) call the same ``verify_envelope_entry``, so a receiver can
never accept what the auditor refuses, or the reverse. It trusts only ``roster``, built from the
authority keys the caller pinned itself. An entry holds when, in this order:

1. it is an envelope entry of the form the server writes (``hotline.entries``: its ``index``, a
   log ``time``, its ``channel``, the sender's ``party``, the ``envelope`` and its ``sig``), at
   the index it was delivered or read at;
2. the envelope holds (every field, size and form) and its log time is a time;
3. the signing key is enrolled and valid both when the envelope was created and when it was
   logged: a key revoked (or expired) before the server logged the envelope does not count, even
   for an envelope dated before that;
4. it was not created later than it was logged (beyond ``skew``, the clocks' allowed disagreement);
5. the signer, as the roster knows it, is the envelope's ``sender`` of the entry's ``party``;
6. the envelope's channel is the entry's;
7. the signer's role may send that kind on that channel (``Roster.check_send``: a liaison sends
   messages and acks, an agent heartbeats, echoes and acks; a ``message`` signed by an agent is
   refused), and the channel was not closed when it was logged (its agreement's ``ends``);
8. the signature verifies;
9. an ack's id is the one ``ack_id`` derives for its sender (nobody else could have used it).

Any failure is one ``EntryRefused`` (code ``verify.failed``) naming the entry and the reason.
Callers decide what a refusal means: a receiver shows the entry as refused and goes on, the
auditor fails the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hotline import entries
from hotline.ahead import Early, check_signature
from hotline.entries import EntryError, EnvelopeEntry
from hotline.envelope import Envelope, check_ack_id
from hotline.errorcodes import Code
from hotline.errors import CryptoError, HotlineError
from hotline.roster import Member, Roster
from hotline.times import parse_time

DEFAULT_SKEW = timedelta(minutes=5)  # the server's default ``clock_skew``


class EntryRefused(CryptoError):
    """A logged envelope entry does not verify. ``reason`` is the message without the index."""

    code = Code.VERIFY_FAILED

    def __init__(self, reason: str, *, index: int, ref: str | None = None) -> None:
        super().__init__(f"entry {index}: {reason}", ref=ref)
        self.reason = reason
        self.index = index


@dataclass(frozen=True)
class Verified:
    """A logged envelope entry that verified: who signed it, and when it was logged."""

    index: int
    entry: EnvelopeEntry
    envelope: Envelope
    member: Member
    logged: datetime


def verify_envelope_entry(roster: Roster, entry: entries.Entry | object, *, index: int,
                          skew: timedelta = DEFAULT_SKEW, early: Early | None = None) -> Verified:
    """Check one logged envelope entry against ``roster`` (see the module doc).

    Args:
        roster: the roster built from the caller's pinned authorities (as of this entry, for an
            auditor replaying the log in order).
        entry: the entry, typed, or its JSON object as delivered (decoded here).
        index: the log index the entry was delivered or read at.
        skew: how much later than its log time an envelope may say it was created.
        early: its signature, being checked in a thread (``hotline.ahead``).

    Returns:
        The verified entry.

    Raises:
        EntryRefused: ``verify.failed``, naming the entry and the first check that failed.
    """
    if not isinstance(entry, entries.Entry):
        try:
            entry = entries.decode(entry)
        except EntryError as exc:
            raise EntryRefused(exc.message, index=index) from None
    if not isinstance(entry, EnvelopeEntry):
        raise EntryRefused("not an envelope entry", index=index)
    if entry.index != index:
        raise EntryRefused(f"the entry says it is entry {entry.index}", index=index)
    envelope = entry.envelope
    try:
        logged = parse_time(entry.time, field="time")
        key_id = entry.sig.get("key")
        if key_id is None:
            raise CryptoError('sig is {"alg", "key", "sig"}')
        member = roster.member_for_key(key_id, at=envelope.created_at)
        roster.member_for_key(key_id, at=logged)  # revoked or expired before it was logged?
        if envelope.created_at - logged > skew:
            raise CryptoError(f"envelope {envelope.id} says it was created at {envelope.created}, "
                              f"after it was logged ({entry.time})")
        if (member.member, member.party) != (envelope.sender, entry.party):
            raise CryptoError(f"envelope {envelope.id} is signed by {member.member} "
                              f"({member.party}) but names {envelope.sender} ({entry.party})")
        if envelope.channel != entry.channel:
            raise CryptoError(f"envelope {envelope.id} is for channel {envelope.channel}, but "
                              f"was logged on {entry.channel}")
        roster.check_send(member, envelope.channel, envelope.kind, at=logged)
        check_signature(envelope, roster.envelope_key(member.key_id, envelope.channel,
                                                      envelope.template), entry.sig, early)
        check_ack_id(envelope, party=member.party)
    except HotlineError as exc:
        raise EntryRefused(exc.message, index=index, ref=envelope.id) from exc
    return Verified(index, entry, envelope, member, logged)
