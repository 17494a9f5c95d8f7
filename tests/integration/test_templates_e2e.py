"""Issue 4, acceptance 1: every shipped template, end to end through the real server. Each valid
example (tests/template_examples.py) is accepted and reaches another party, whose client verifies
it; each invalid one is refused with its code and logged as a ``rejected`` entry, except one whose
fault lies in a sealed field: the host cannot read it, so it is accepted, and the recipient who
opens it finds the fault with the template's own check (what its ``violation`` report says)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotline.client.connection import Client, Delivered
from hotline.entries import EnvelopeEntry
from hotline.envelope import Envelope, Kind
from hotline.errors import ProtocolViolation
from hotline.norms.files import load_templates, shipped_dir
from hotline.norms.template import Template
from hotline.times import format_time
from hotline.wire.frames import Deliver
from tests.integration.test_norms import logged, serving
from tests.template_examples import EXAMPLES, FILES, SENDER_PARTY, TEMPLATE_IDS, Bad, Case

WAIT = 10


def test_examples_cover_every_shipped_template() -> None:
    assert {t.id for t in load_templates(shipped_dir())} == set(TEMPLATE_IDS) == set(EXAMPLES)


async def delivered_to(client: Client, envelope_id: str) -> Delivered:
    async def wait() -> Delivered:
        while True:
            frame = await client.deliveries.get()
            if (isinstance(frame, Deliver) and isinstance(frame.entry, EnvelopeEntry)
                    and frame.entry.envelope.id == envelope_id):
                return client.verify(frame)
    return await asyncio.wait_for(wait(), WAIT)


async def composed(client: Client, template: Template, body: dict[str, object], *,
                   precedence: str, reply_to: str | None = None) -> Envelope:
    """``client``'s envelope of ``template``, its sealed fields sealed as ``hotline send`` does,
    and the files it names that an example attaches uploaded first."""
    try:
        files = template.attachment_refs(body)
    except ProtocolViolation:  # a bad example's file name: the server refuses it, unsent
        files = []
    for named in files:
        if (content := FILES.get(named.ref.sha256)) is not None:
            await client.upload(lambda start, n, data=content: data[start:start + n],
                                sha256=named.ref.sha256, size=len(content))
    if template.readers:
        return await client.sealed_envelope(channel="north-south", template=template, body=body,
                                            log_key=client.log_key, precedence=precedence,
                                            reply_to=reply_to)
    return client.envelope(channel="north-south", template=template.id, body=body,
                           precedence=precedence, kind=template.kind, reply_to=reply_to)


class Parties:
    """North sends the examples; south answers them and supplies what they reply to."""

    def __init__(self, clients: dict[str, Client]) -> None:
        self.clients = clients

    async def target(self, template: str) -> str:
        """A message of ``template`` from south, for an example to reply to."""
        now = datetime.now(UTC)
        if template == "heartbeat":
            sender, kind, body = "south-agent", Kind.HEARTBEAT, {"seq": 0, "sent": format_time(now)}
            precedence = "ROUTINE"
        else:
            case = next(c for c in EXAMPLES[template](now) if isinstance(c, Case))
            sender, kind, body = "bob", Kind.MESSAGE, dict(case.body)
            precedence = case.precedence.value
            if "to" in body:
                body["to"] = [SENDER_PARTY]
        client = self.clients[sender]
        if kind is Kind.MESSAGE:
            held = client.templates.latest(template)
            assert held is not None
            envelope = await composed(client, held, body, precedence=precedence)
        else:
            envelope = client.envelope(channel="north-south", template=template, body=body,
                                       precedence=precedence, kind=kind)
        await client.submit_envelope(envelope)
        return envelope.id

    def sender(self, template_kind: Kind, role: str | None) -> Client:
        agent = role == "agent" if role else template_kind is not Kind.MESSAGE
        return self.clients["north-agent" if agent else "alice"]


def sealed_fault(template: Template, case: Bad) -> bool:
    """Whether ``case`` breaks its template only in what the host cannot read: its sealed fields."""
    unknown = set(case.body) - set(template.fields.get("properties", {}))
    return bool(set(case.body) & set(template.readers)) and not unknown and case.sender_role is None


@pytest.mark.parametrize("template_id", sorted(EXAMPLES))
async def test_shipped_template_end_to_end(home: Path, template_id: str) -> None:
    template = load_templates(home / "protocols").latest(template_id)
    assert template is not None
    async with serving(home) as server:
        names = ("alice", "bob", "north-agent", "south-agent")
        parties = Parties({n: await server.client(n) for n in names})
        refused: list[tuple[str, str]] = []
        for case in EXAMPLES[template_id](datetime.now(UTC)):
            reply_to = (await parties.target(case.reply_template)
                        if case.reply_template else None)
            role = case.sender_role if isinstance(case, Bad) else None
            sender = parties.sender(template.kind, role)
            envelope = await composed(sender, template, dict(case.body), precedence=case.precedence,
                                      reply_to=reply_to)
            receiver = parties.clients["south-agent" if template.kind is not Kind.MESSAGE else "bob"]
            if isinstance(case, Case):
                accepted = await sender.submit_envelope(envelope)
                seen = await delivered_to(receiver, envelope.id)
                assert seen.index == accepted.index, case.name
                assert server.body_seen(receiver, seen) == case.body, case.name
            elif sealed_fault(template, case):
                accepted = await sender.submit_envelope(envelope)  # the host cannot see the fault
                seen = await delivered_to(receiver, envelope.id)
                opened = server.body_seen(receiver, seen)
                with pytest.raises(ProtocolViolation) as caught:
                    for name in template.readers:
                        template.check_sealed_field(seen.envelope.body, name, opened[name])
                assert caught.value.code == case.code, case.name
            else:
                with pytest.raises(ProtocolViolation) as caught:
                    await sender.submit_envelope(envelope)
                assert caught.value.code == case.code, (case.name, caught.value.message)
                refused.append((envelope.id, case.code))
    rejected = [(e["ref"], e["code"]) for e in logged(home) if e["kind"] == "rejected"]
    assert rejected == refused
