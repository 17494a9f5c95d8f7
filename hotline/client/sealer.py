"""Sealing a message's fields before it is signed (the shell around ``hotline.sealing``: it
draws the salts). Who reads each field comes from the sender's own roster (``readers_for``), so
a key only the host vouches for is never among them; the caller proves the readers' keys in the
log (``Client.prove_logged``) before ``sealed`` seals to them."""

from __future__ import annotations

import os
from collections.abc import Mapping

from hotline.envelope import Envelope
from hotline.epochkeys import EpochKey, Reader
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation
from hotline.norms.template import Template
from hotline.roster import Roster, readers_of
from hotline.sealing import SALT_BYTES, Disclosure, SealContext, StoredStream, make_disclosures, seal
from hotline.times import parse_time

Readers = dict[str, list[Reader]]  # field -> the members it is sealed to


def readers_for(roster: Roster, envelope: Envelope, template: Template) -> Readers:
    """The readers of each field of ``envelope``'s body that ``template`` seals (none: nothing
    to seal): every liaison and agent of the field's parties with a key that ``roster``
    verified for the epoch of the envelope's creation, of the length the channel's agreement
    sets (``hotline.roster.readers_of``)."""
    agreement = roster.agreements.get(envelope.channel)
    if agreement is None:
        raise ProtocolViolation(f"no agreement sets up channel {envelope.channel}",
                                code=Code.CHANNEL_UNKNOWN)
    at = parse_time(envelope.created, field="envelope.created")
    return {name: readers_of(roster, template.readers_of(name, agreement.parties), at=at,
                             length=agreement.epoch_length)
            for name in sorted(envelope.body) if name in template.readers}


def keys_of(readers: Readers) -> list[EpochKey]:
    """Each reader's key once, in a stable order."""
    keys = {r.key.key_id: r.key for field in readers.values() for r in field}
    return [keys[k] for k in sorted(keys)]


def sealed(envelope: Envelope, readers: Readers,
           attachments: Mapping[str, list[StoredStream]] | None = None
           ) -> tuple[Envelope, dict[str, Disclosure]]:
    """``envelope`` with the fields ``readers`` names taken out of its body and sealed to them,
    each with a fresh salt (``seal.no_reader`` if a field has none), and their disclosures (what
    the sender may keep in its read store); the same envelope if none. ``attachments``: the
    sealed streams of its sealed attachment fields, named in clear. Sign the result, never the
    envelope before."""
    if not readers:
        return envelope, {}
    disclosures = make_disclosures({name: envelope.body[name] for name in readers},
                                   {name: os.urandom(SALT_BYTES) for name in readers})
    boxes = seal(disclosures, readers, SealContext(channel=envelope.channel, envelope=envelope.id),
                 attachments)
    return Envelope.build(id=envelope.id, kind=envelope.kind, channel=envelope.channel,
                          sender=envelope.sender, template=envelope.template,
                          precedence=envelope.precedence, created=parse_time(envelope.created),
                          body={k: v for k, v in envelope.body.items() if k not in readers},
                          reply_to=envelope.reply_to, sealed=boxes), {d.name: d for d in disclosures}


def unreadable(envelope: Envelope, template: Template, roster: Roster) -> dict[str, list[str]]:
    """For each sealed field of ``envelope``, the parties allowed to read it that got no box (none
    of their liaisons had a key for the epoch): they will never read it, which the sender is
    told before it is lost on them."""
    agreement = roster.agreements.get(envelope.channel)
    if envelope.sealed is None or agreement is None:
        return {}
    out = {}
    for name in sorted(envelope.sealed.digests):
        got = {box.party for box in envelope.sealed.boxes if name in box.fields}
        if missing := sorted(template.readers_of(name, agreement.parties) - got):
            out[name] = missing
    return out


def unreadable_lines(missing: dict[str, list[str]]) -> list[str]:
    """``unreadable`` in words, a line per field."""
    return [f"WARNING: {', '.join(parties)} cannot read {name}: none of its liaisons has published "
            "a key for this epoch (their console publishes one, or `hotline keys renew`)"
            for name, parties in missing.items()]
