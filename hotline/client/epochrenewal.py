"""A liaison keeps its epoch keys current by itself (the console on every connection and every
hour, `hotline keys renew` from cron): for each epoch length its party's channels use, its key
for the current epoch and for the next one (published ahead, so that senders have it when the
epoch starts), each made on this machine and logged; and the private halves of past epochs
deleted once the longest ack deadline of its channels has passed (docs/ARCHITECTURE.md "Sealed
fields"). Agents and auditors publish none: nothing is sealed to a machine that reads no
message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from hotline.client.connection import Client
from hotline.client.logapi import LogClient, http_base
from hotline.clock import utc_now
from hotline.display import article
from hotline.epochfiles import document_paths, make_epoch_key, private_path, retire_epoch_keys
from hotline.epochkeys import epoch_of
from hotline.errors import HotlineError
from hotline.keys import Signer
from hotline.norms.templateset import TemplateSet
from hotline.publicfiles import read_signed
from hotline.roster import Role, Roster

RENEW_EVERY = 3600.0  # seconds between two checks that a liaison's epoch keys are current


@dataclass(frozen=True)
class Renewed:
    published: tuple[tuple[int, int], ...] = ()  # (epoch, length in hours) logged now
    retired: tuple[int, ...] = ()  # epochs whose private halves were deleted
    problems: tuple[str, ...] = ()  # what could not be done, in words
    none_needed: str = ""  # why this member publishes no key, if so

    def lines(self, member: str) -> list[str]:
        """What happened, for the member to read."""
        if self.none_needed:
            return [self.none_needed]
        out = [f"published {member}'s key for epoch {e} ({h} h epochs)" for e, h in self.published]
        if self.retired:
            out.append(f"retired {member}'s keys of epochs {', '.join(map(str, self.retired))}")
        return out + [f"NOT DONE: {p}" for p in self.problems]


def keep_after(roster: Roster, templates: TemplateSet, party: str) -> timedelta:
    """How long a past epoch's key is kept: the longest ack deadline of the templates agreed on
    ``party``'s channels (a message sealed late in an epoch is still read and answered)."""
    deadlines = [template.ack_deadline(precedence)
                 for agreement in roster.agreements.values() if party in agreement.parties
                 for template in templates.agreed(agreement) for precedence in template.allowed_precedence]
    return max((d for d in deadlines if d is not None), default=timedelta(0))


async def renew_epoch_keys(client: Client, home: Path, *, signer: Signer, passphrase: bytes | None,
                           now: datetime, keep: timedelta) -> Renewed:
    """Publish what is missing of this liaison's current and next epoch keys (as its own
    roster knows them: the server logs what it did not have), then retire past ones."""
    me = client.me
    if me is None:
        return Renewed(problems=("this key is not enrolled by the authorities the profile pins",))
    if me.role is not Role.LIAISON:
        return Renewed(none_needed=f"{me.member} is {article(me.role.value)}: only liaisons "
                                  "publish keys (nothing is sealed to a machine that reads no "
                                  "message)")
    lengths = client.roster.agreed_epoch_lengths(me.party)
    published_before = client.roster.published_epochs(me.party, me.member, me.key_id)
    log = LogClient(http_base(client.url), ssl_context=client.ssl_context)
    published: list[tuple[int, int]] = []
    problems: list[str] = []
    for length in sorted(lengths):
        seconds, current = int(length.total_seconds()), epoch_of(now, length)
        for epoch in (current, current + 1):
            if epoch in published_before.get(seconds, ()):
                continue  # published with this very key (one a lost laptop signed is replaced)
            try:
                made = document_paths(home, me.member, epoch, length)
                if private_path(home, me.member, epoch, length).exists():
                    if not made:
                        problems.append(f"epoch {epoch}: a private key is here but not its public "
                                        "document: make the next epoch's instead")
                        continue
                    signed = read_signed(made[0])  # made earlier, not yet logged
                else:
                    signed = make_epoch_key(home, party=me.party, member=me.member, signer=signer,
                                            epoch=epoch, length=length, passphrase=passphrase).signed
                await asyncio.to_thread(log.submit_roster, signed)
            except HotlineError as exc:
                problems.append(f"epoch {epoch}: {exc.code}: {exc.message}")
                continue
            published.append((epoch, seconds // 3600))
    retired = retire_epoch_keys(home, member=me.member, now=now, keep_after=keep)
    return Renewed(tuple(published), tuple(retired), tuple(problems))


async def keep_current(client: Client, home: Path, *, passphrase: bytes | None,
                       say: Callable[[str], None]) -> None:
    """``renew_epoch_keys`` now and every ``RENEW_EVERY`` seconds while ``client`` is connected
    (what ``listen`` runs beside reading, as the console does); ``say`` gets each line of what
    was done or could not be, and nothing for a member that publishes no key."""
    while True:
        try:
            renewed = await renew_epoch_keys(client, home, signer=client.key, passphrase=passphrase,
                                             now=utc_now(),
                                             keep=keep_after(client.roster, client.templates,
                                                             client.party))
            for line in [] if renewed.none_needed else renewed.lines(client.member):
                say(line)
        except HotlineError as exc:
            say(f"NOT DONE: epoch keys not renewed: {exc.code}: {exc.message}")
        await asyncio.sleep(RENEW_EVERY)
