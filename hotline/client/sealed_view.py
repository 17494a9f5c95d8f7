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
from hotline.envelope import Envelope
from hotline.epochfiles import load_epoch_keys
from hotline.epochkeys import EpochPrivateKey
from hotline.errors import HotlineError, ProtocolViolation, SealError
from hotline.norms.templateset import TemplateSet
from hotline.readstore import ReadStore
from hotline.roster import Roster
from hotline.sealing import Disclosure, SealContext, open_sealed, verify_disclosure


class SealedView:
    """Opens sealed fields for ``member`` of ``party``."""

    def __init__(self, home: Path, *, party: str, member: str, passphrase: bytes | None,
                 templates: TemplateSet) -> None:
        self.party, self.member, self.templates = party, member, templates
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

    def shown(self, item: Delivered, roster: Roster) -> Delivered:
        """``item`` with its sealed fields in its body: opened, or ``[sealed: readers ...]``."""
        env = item.envelope
        if env.sealed is None:
            return item
        opened = self.opened(env)
        template = self.templates.latest(env.template)
        if template is not None:
            broken = []
            for name, disclosure in sorted(opened.items()):
                try:
                    template.check_sealed_field(env.body, name, disclosure.value)
                except ProtocolViolation as exc:
                    broken.append((name, exc))
            if broken:
                self.violations[env.id] = broken
        body: dict[str, JSONValue] = dict(env.body)
        for name in env.sealed.digests:
            body[name] = opened[name].value if name in opened else self._sealed_mark(item, name, roster)
        return dataclasses.replace(item, envelope=msgspec.structs.replace(env, body=body))

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
            if opened:
                self.store.add(env.id, opened)
                self.store.save()
            else:  # read before, with a key since retired
                for name, kept in self.store.entries.get(env.id, {}).items():
                    if name in env.sealed.digests:
                        opened[name] = verify_disclosure(kept.encoded, name=name,
                                                         digest=env.sealed.digests[name])
        return opened

    def _sealed_mark(self, item: Delivered, name: str, roster: Roster) -> str:
        env = item.envelope
        agreement = roster.agreements.get(env.channel)
        template = self.templates.latest(env.template)
        if agreement is None or template is None or name not in template.readers:
            return "[sealed]"
        return f"[sealed: readable by {', '.join(sorted(template.readers_of(name, agreement.parties)))}]"
