"""How a member sees a message with sealed fields (the shell around ``hotline.sealing``): the
fields its epoch keys open, kept in its read store (``hotline.readstore``) when its key has a
passphrase, or found there once the key is retired; a field it may not read is shown as sealed,
with who may read it. Nothing here changes what was verified: the signature covers the digests,
and every opened value is checked against its digest."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec

from hotline.canonical import JSONValue
from hotline.client.connection import Delivered
from hotline.client.profile import Profile
from hotline.envelope import Envelope
from hotline.epochfiles import load_epoch_keys
from hotline.epochkeys import EpochPrivateKey
from hotline.errors import HotlineError, ProtocolViolation, SealError
from hotline.norms.templateset import TemplateSet
from hotline.passphrase import VARIABLE, env_passphrase
from hotline.readstore import ReadStore
from hotline.roster import Roster
from hotline.sealing import Disclosure, SealContext, open_sealed, verify_disclosure


class SealedView:
    """Opens sealed fields for ``member`` of ``party``."""

    def __init__(self, home: Path, *, party: str, member: str, passphrase: bytes | None,
                 templates: TemplateSet) -> None:
        self.party, self.member, self.templates = party, member, templates
        self.passphrase = passphrase  # the member's: its epoch keys and read store are under it
        self.problem: str | None = None  # why sealed fields cannot be opened here, if so
        # envelope id -> the opened fields that break their template, with why (to report)
        self.violations: dict[str, list[tuple[str, ProtocolViolation]]] = {}
        self.keys: dict[str, EpochPrivateKey] = {}
        self.store: ReadStore | None = None
        try:
            self.keys = load_epoch_keys(home, member=member, passphrase=passphrase)
            if passphrase:
                self.store = ReadStore.open(home / "state" / f"{member}.read", passphrase)
        except HotlineError as exc:
            self.problem = exc.message

    @classmethod
    def of_member(cls, home: Path, profile: Profile, templates: TemplateSet) -> SealedView:
        """The view of ``profile``'s member, its epoch keys opened with the passphrase its
        signing key is opened with (``HOTLINE_PASSPHRASE``)."""
        return cls(home, party=profile.party, member=profile.member,
                   passphrase=env_passphrase(VARIABLE), templates=templates)

    def shown(self, item: Delivered, roster: Roster) -> Delivered:
        """``item`` with its sealed fields in its body (``body``); an opened field that breaks
        its template is noted in ``violations`` (to report)."""
        return self.view(item, roster)[0]

    def view(self, item: Delivered, roster: Roster) -> tuple[Delivered, frozenset[str]]:
        """``shown``, and the sealed fields not opened here (known from the opening itself, never
        from the text shown in their place, which a sender could imitate)."""
        env = item.envelope
        if env.sealed is None:
            return item, frozenset()
        opened = self.opened(env)
        template = self.templates.latest(env.template)
        if template is not None:
            broken = []
            for name, disclosure in sorted(opened.items()):
                try:
                    template.check_sealed_field(env.body, name, disclosure.value)
                    if name in template.attachments:  # its files, against the streams named
                        template.opened_attachments(env, {name: disclosure.value})
                except ProtocolViolation as exc:
                    broken.append((name, exc))
            if broken:
                self.violations[env.id] = broken
        body = self.body(env, roster, opened)
        return (dataclasses.replace(item, envelope=msgspec.structs.replace(env, body=body)),
                frozenset(env.sealed.digests) - set(opened))

    def body(self, env: Envelope, roster: Roster,
             opened: dict[str, Disclosure] | None = None) -> dict[str, JSONValue]:
        """``env``'s body with each sealed field opened, or ``[sealed: readable by ...]``."""
        body: dict[str, JSONValue] = dict(env.body)
        if env.sealed is None:
            return body
        opened = self.opened(env) if opened is None else opened
        for name in env.sealed.digests:
            body[name] = opened[name].value if name in opened else self._sealed_mark(env, name, roster)
        return body

    def opened(self, env: Envelope) -> dict[str, Disclosure]:
        """The fields of ``env`` this member reads: opened with its epoch keys (and kept in its
        read store), or, for a key since retired, found in that store."""
        if env.sealed is None:
            return {}
        try:
            opened = open_sealed(env.sealed, party=self.party, member=self.member, keys=self.keys,
                                 context=SealContext(channel=env.channel, envelope=env.id))
        except SealError:
            opened = {}
        if self.store is not None:
            kept = self.store.entries.get(env.id, {})
            if set(opened) - set(kept):
                self.keep(env.id, opened)
            for name, disclosure in kept.items():  # read before with a key since retired, or sent
                if name in env.sealed.digests and name not in opened:
                    opened[name] = verify_disclosure(disclosure.encoded, name=name,
                                                     digest=env.sealed.digests[name])
        return opened

    def keep(self, envelope_id: str, disclosures: dict[str, Disclosure]) -> None:
        """Keep ``disclosures`` of envelope ``envelope_id`` in the read store, if there is one:
        what this member opened, or sealed and sent (a field it is not a reader of stays
        readable to its sender)."""
        if self.store is not None and disclosures:
            self.store.add(envelope_id, disclosures)
            self.store.save()

    def _sealed_mark(self, env: Envelope, name: str, roster: Roster) -> str:
        agreement = roster.agreements.get(env.channel)
        template = self.templates.latest(env.template)
        if agreement is None or template is None or name not in template.readers:
            return "[sealed]"
        return f"[sealed: readable by {', '.join(sorted(template.readers_of(name, agreement.parties)))}]"
