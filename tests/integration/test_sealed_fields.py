"""Sealed fields end to end (issue 16, acceptance 1): a template whose ``assessment`` every party
may read and whose ``private_note`` only the mediator may; alice (north) sends a message with a
marker in both. The server's database, its WAL, its log output and `/v1/log/entries` hold no
trace of the marker; bob (south) opens exactly the assessment, carol (mediator) both, the
auditor neither; the server refuses the fields in clear, and a box for a party outside a field's
readers; the audit verifies the log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from msgspec import UNSET

from hotline.canonical import canonical_bytes, dumps, parse
from hotline.clock import utc_now
from hotline.entries import PENDING, EnvelopeEntry
from hotline.envelope import Envelope, Kind
from hotline.epochkeys import DEFAULT_EPOCH, EpochPrivateKey, epoch_of
from hotline.errorcodes import Code
from hotline.errors import HotlineError, ProtocolViolation
from hotline.keyfiles import load_private_key
from hotline.norms.files import load_templates
from hotline.roster import SignedDocument, decode_document, readers_of, sign_document
from hotline.sealing import SealContext, make_disclosures, open_sealed, seal
from hotline.times import format_time
from hotline.wire.frames import Deliver
from hotline.wire.frames import Roster as RosterFrame
from tests.conftest import Running, hotline_cli, running_server, without_epoch_keys, witness_all
from tests.integration.test_exchange import signed_get
from tests.integration.test_hybrid_keys import checkpointed
from tests.integration.test_rotation_audit import audit

WAIT = 10.0  # seconds: a safety net against hangs, never a synchronisation
MARKER = "MARKER-5e1f-dawn-withdrawal"
PARTIES = ("north", "south", "mediator")
ASSESSMENT = """\
format: 1
id: assessment
version: 1
title: Sealed assessment
basis: >-
  A test template: an assessment every party reads, and a note for the mediator alone, neither
  of them readable by the host.
senders:
  roles: [liaison]
precedence:
  default: ROUTINE
  allowed: [ROUTINE]
ack: none
audience: all
readers:
  assessment: parties
  private_note: [mediator]
fields:
  type: object
  additionalProperties: false
  required: [subject, assessment]
  properties:
    subject: {type: string, maxLength: 100}
    assessment: {type: string, minLength: 1}
    private_note: {type: string}
"""


def add_sealed_template(home: Path) -> None:
    """Install the template and a version 2 of the channel's agreement naming it, signed by every
    party's authority (the server logs it at start)."""
    (home / "protocols" / "assessment.yaml").write_text(ASSESSMENT)
    templates = load_templates(home / "protocols")
    signed = parse((home / "roster" / "90-agreement-north-south-v1.json").read_bytes())
    doc = dict(signed["document"], version=2, templates=[t.ref() for t in templates])
    keys = [load_private_key(home / "keys" / f"authority-{p}.pem") for p in PARTIES]
    signed_v2 = sign_document(decode_document(doc), *keys)
    (home / "roster" / "91-agreement-north-south-v2.json").write_text(dumps(signed_v2.to_json()))


async def publish_epoch_keys(server: Running, names: tuple[str, ...]) -> dict[str, EpochPrivateKey]:
    """Each member makes its key for the current epoch and publishes it, signed by its own key."""
    epoch = epoch_of(utc_now(), DEFAULT_EPOCH)
    private = {}
    for name in names:
        client = await server.client(name)
        key = EpochPrivateKey.generate()
        doc = key.document(party=client.party, member=name, epoch=epoch, length=DEFAULT_EPOCH)
        await server.hotline.add_document(
            sign_document(doc, load_private_key(server.home / "keys" / f"{name}.pem")).to_json())
        private[name] = key
    return private


async def publish_by_cli(server: Running, names: tuple[str, ...]) -> None:
    """Each member makes its epoch key on its machine and submits it: `keys epoch`, `roster
    submit` (the private halves stay in HOME/keys/epoch, where `listen` finds them)."""
    for name in names:
        made = await asyncio.to_thread(hotline_cli, server.home, "keys", "epoch", "--as", name)
        assert made.returncode == 0, made.stderr
        [document] = (server.home / "roster").glob(f"epoch-{name}-*.json")
        submitted = await asyncio.to_thread(hotline_cli, server.home, "roster", "submit",
                                            str(document), "--server", server.url)
        assert submitted.returncode == 0, submitted.stderr


@pytest.fixture
def sealed_home(home: Path) -> Path:
    """The demo with the assessment template agreed, and no epoch key yet: each test publishes
    the keys it needs."""
    add_sealed_template(home)
    return without_epoch_keys(home)


async def test_sealed_fields_reach_their_readers_and_no_one_else(
        sealed_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = sealed_home
    template = load_templates(home / "protocols").latest("assessment")
    assert template is not None
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        keys = await publish_epoch_keys(server, ("alice", "bob", "carol"))
        alice, bob, carol, audrey = [await server.client(n) for n in ("alice", "bob", "carol", "audrey")]
        body = {"subject": "dawn", "assessment": f"north will withdraw ({MARKER})",
                "private_note": f"only if south holds: {MARKER}"}
        envelope = await alice.sealed_envelope(channel="north-south", template=template, body=body,
                                               log_key=server.log_key)
        assert envelope.v == 2 and set(envelope.body) == {"subject"}
        accepted = await alice.submit_envelope(envelope)

        opened: dict[str, dict[str, Any]] = {}
        for name, client in (("bob", bob), ("carol", carol), ("audrey", audrey)):
            while True:
                frame = await asyncio.wait_for(client.deliveries.get(), WAIT)
                if isinstance(frame, Deliver) and frame.index == accepted.index:
                    break
            got = client.verify(frame).envelope  # the signature covers the digests and boxes
            assert got.sealed is not None
            mine = {keys[name].document(party=client.party, member=name,
                                        epoch=epoch_of(utc_now(), DEFAULT_EPOCH),
                                        length=DEFAULT_EPOCH).key_id: keys[name]} if name in keys else {}
            fields = open_sealed(got.sealed, party=client.party, member=name, keys=mine,
                                 context=SealContext(channel="north-south", envelope=got.id))
            opened[name] = {field: d.value for field, d in fields.items()}
        assert opened == {"bob": {"assessment": body["assessment"]},
                          "carol": {"assessment": body["assessment"],
                                    "private_note": body["private_note"]},
                          "audrey": {}}

        # The host refuses the fields in clear, and a box for a party outside a field's readers.
        with pytest.raises(HotlineError) as refused:
            await alice.submit_envelope(alice.envelope(channel="north-south", template="assessment",
                                                       body=body))
        assert refused.value.code == "template.invalid" and "seal it" in refused.value.message
        north_readers = readers_of(alice.roster, ["north"], at=utc_now())
        leak_id = "L" * 22
        leak = seal(make_disclosures({"assessment": "x", "private_note": "to north"},
                                     {"assessment": bytes(16), "private_note": bytes(16)}),
                    {"assessment": north_readers, "private_note": north_readers},
                    SealContext(channel="north-south", envelope=leak_id))
        leaky = Envelope.build(id=leak_id, kind=Kind.MESSAGE, channel="north-south", sender="alice",
                               template="assessment", precedence="ROUTINE", created=utc_now(),
                               body={"subject": "s"}, sealed=leak)
        with pytest.raises(HotlineError) as refused:
            await alice.submit_envelope(leaky)
        assert refused.value.code == "norm.audience"

        # What a non-audience party (the auditor) and a reader get from the log API.
        size = await server.hotline.store.size()
        served = [await signed_get(server, name, "/v1/log/entries", f"start=0&end={size}")
                  for name in ("audrey", "bob")]
        await asyncio.wait_for(alice.receipt(accepted.index), WAIT)
        await witness_all(home, server.url)
        code, out = await audit(home, server.url)
    assert code == 0, out
    for status, answer in served:
        assert status == 200 and MARKER not in json.dumps(answer)
    for path in home.glob("hotline.db*"):  # the database, its WAL and shared memory
        assert MARKER.encode() not in path.read_bytes(), path
    logs = capsys.readouterr()
    assert "envelope.accepted" in logs.out + logs.err  # the server's log output was captured
    assert MARKER not in logs.out + logs.err


async def test_only_the_current_readers_keys_are_sealed_to(sealed_home: Path) -> None:
    """A field nobody in its audience published a key for is not sent (nothing would read it:
    ``seal.no_reader``); the others are sealed to exactly the members who published a key."""
    template = load_templates(sealed_home / "protocols").latest("assessment")
    assert template is not None
    async with running_server(sealed_home) as server:
        await publish_epoch_keys(server, ("alice", "bob"))  # carol (the mediator) has none
        alice = await server.client("alice")
        with pytest.raises(HotlineError) as refused:
            await alice.sealed_envelope(channel="north-south", template=template,
                                        body={"subject": "s", "assessment": "a", "private_note": "n"},
                                        log_key=server.log_key)
        assert refused.value.code == "seal.no_reader" and "private_note" in refused.value.message
        envelope = await alice.sealed_envelope(channel="north-south", template=template,
                                               body={"subject": "s", "assessment": "a"},
                                               log_key=server.log_key)
        assert envelope.sealed is not None
        assert [(box.member, box.fields) for box in envelope.sealed.boxes] == [
            ("alice", ["assessment"]), ("bob", ["assessment"])]
        sent = await asyncio.to_thread(  # the sender is told who will never read it
            hotline_cli, sealed_home, "send", "--as", "alice", "--server", server.url, "--channel",
            "north-south", "--template", "assessment", "--field", "subject=s", "--field",
            "assessment=a")
        assert sent.returncode == 0, sent.stderr
        assert "WARNING: mediator cannot read assessment" in sent.stderr
        # The library's send seals by itself what the agreed template seals.
        logged = await alice.fetch((await alice.send(channel="north-south", template="assessment",
                                                     body={"subject": "s", "assessment": "a"})).index)
        assert logged.envelope.sealed is not None and set(logged.envelope.body) == {"subject"}


async def test_send_seals_and_listen_opens_what_each_member_may_read(sealed_home: Path) -> None:
    """The product path: each member makes and publishes its epoch key (`keys epoch`, `roster
    submit`); `send` seals the template's fields by itself; `listen` shows bob the assessment and
    the mediator's note as sealed, with who may read it, and shows carol both."""
    home = sealed_home
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        await publish_by_cli(server, ("alice", "bob", "carol"))
        sent = await asyncio.to_thread(
            hotline_cli, home, "send", "--as", "alice", "--server", server.url, "--channel",
            "north-south", "--template", "assessment", "--field", "subject=dawn", "--field",
            f"assessment=hold the line {MARKER}", "--field", f"private_note=a word {MARKER}")
        assert sent.returncode == 0, sent.stderr
        assert ("sealed assessment to carol (mediator), alice (north), bob (south); private_note to "
                "carol (mediator)" in sent.stdout)
        match = re.search(r"accepted index=(\d+)", sent.stdout)
        assert match is not None, sent.stdout
        index = int(match.group(1))
        shown = {}
        for name in ("bob", "carol"):
            listened = await asyncio.to_thread(
                hotline_cli, home, "listen", "--as", name, "--server", server.url, "--channel",
                "north-south", "--after", str(index - 1), "--count", "1", "--no-ack")
            assert listened.returncode == 0, listened.stderr
            shown[name] = listened.stdout

        # Disclosure (acceptance 4): carol discloses the mediator's note to the auditor; anyone
        # with the log key checks it; a forged value fails; bob cannot disclose what he never read.
        disclosed = await asyncio.to_thread(hotline_cli, home, "disclose", "--as", "carol",
                                            "--server", server.url, "--index", str(index),
                                            "--field", "private_note")
        assert disclosed.returncode == 0, disclosed.stderr
        file = home / "disclosures" / f"{index}-private_note.json"
        checked = await asyncio.to_thread(hotline_cli, home, "audit", "disclosure", str(file),
                                          "--as", "audrey")
        assert checked.returncode == 0, checked.stderr
        assert f"OK: field private_note of entry {index}" in checked.stdout
        assert f'"a word {MARKER}"' in checked.stdout
        forged = json.loads(file.read_text())
        salt, field, _ = json.loads(base64.urlsafe_b64decode(forged["disclosure"] + "=="))
        forged["disclosure"] = base64.urlsafe_b64encode(canonical_bytes(
            [salt, field, "a different word"])).decode().rstrip("=")
        (home / "forged.json").write_text(json.dumps(forged))
        refused = await asyncio.to_thread(hotline_cli, home, "audit", "disclosure",
                                          str(home / "forged.json"), "--as", "audrey")
        assert refused.returncode == 1 and "does not match its logged digest" in refused.stderr
        by_bob = await asyncio.to_thread(hotline_cli, home, "disclose", "--as", "bob", "--server",
                                         server.url, "--index", str(index), "--field", "private_note")
        assert by_bob.returncode == 1 and "seal.no_key" in by_bob.stderr

        # The compliance report shows a disclosure once it matches the log it verified; a
        # forged one fails the report.
        await witness_all(home, server.url)
        report = ["audit", "report", "--as", "audrey", "--server", server.url, "--channel",
                  "north-south", "--disclosure"]
        reported = await asyncio.to_thread(hotline_cli, home, *report, str(file), "--json")
        assert reported.returncode == 0, reported.stderr
        [shown_field] = json.loads(reported.stdout)["disclosed"]
        assert shown_field["index"] == index and shown_field["field"] == "private_note"
        assert shown_field["value"] == f"a word {MARKER}" and shown_field["sender"] == "alice"
        as_text = await asyncio.to_thread(hotline_cli, home, *report, str(file))
        assert "Disclosed sealed fields: 1" in as_text.stdout and f'"a word {MARKER}"' in as_text.stdout
        failed = await asyncio.to_thread(hotline_cli, home, *report, str(home / "forged.json"))
        assert failed.returncode == 1 and "does not match its logged digest" in failed.stderr
        assert "Disclosed" not in failed.stdout
    assert f"hold the line {MARKER}" in shown["bob"] and f"a word {MARKER}" not in shown["bob"]
    assert "[sealed: readable by mediator]" in shown["bob"]
    assert f"hold the line {MARKER}" in shown["carol"] and f"a word {MARKER}" in shown["carol"]
    for path in home.glob("hotline.db*"):
        assert MARKER.encode() not in path.read_bytes(), path


async def test_a_recipient_reports_a_sealed_field_that_breaks_the_template(sealed_home: Path) -> None:
    """Acceptance 4 (violation): a sender seals what the host cannot check, an empty assessment
    (the template wants one character at least); the host logs it. Bob's `listen` opens it, finds
    it breaking the template and reports a signed `violation`, which the server logs and the
    compliance report counts. The server refuses a report of a field the reporter was never sent,
    one whose id is not the reporter's, and a second, different report of the same field."""
    home = sealed_home
    template = load_templates(home / "protocols").latest("assessment")
    assert template is not None
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        await publish_by_cli(server, ("alice", "bob", "carol"))
        alice, bob = await server.client("alice"), await server.client("bob")
        envelope = await alice.sealed_envelope(
            channel="north-south", template=template, log_key=server.log_key,
            body={"subject": "s", "assessment": "", "private_note": "n"})
        accepted = await alice.submit_envelope(envelope)  # the host cannot see it is empty
        listened = await asyncio.to_thread(
            hotline_cli, home, "listen", "--as", "bob", "--server", server.url, "--channel",
            "north-south", "--after", str(accepted.index - 1), "--count", "1")
        assert listened.returncode == 0, listened.stderr
        assert (f"[{accepted.index}] VIOLATION: sealed field assessment breaks template assessment"
                in listened.stdout and "(reported)" in listened.stdout), listened.stdout

        while True:
            frame = await asyncio.wait_for(bob.deliveries.get(), WAIT)
            if isinstance(frame, Deliver) and frame.index == accepted.index:
                break
        delivered = bob.verify(frame)
        problem = ProtocolViolation("made up", code=Code.TEMPLATE_INVALID)
        with pytest.raises(HotlineError) as refused:  # never sent to bob: mediator only
            await bob.submit_envelope(bob.violation_envelope(delivered, "private_note", problem))
        assert refused.value.code == "violation.invalid"
        report = bob.violation_envelope(delivered, "assessment", problem)
        moved = Envelope.build(id="M" * 22, kind=Kind.VIOLATION, channel=report.channel,
                               sender="bob", template=report.template, precedence="ROUTINE",
                               created=utc_now(), body=report.body, reply_to=report.reply_to)
        with pytest.raises(HotlineError) as refused:
            await bob.submit_envelope(moved)
        assert refused.value.code == "envelope.invalid"
        with pytest.raises(HotlineError) as refused:  # one report per reader and field: listen's
            await bob.submit_envelope(report)
        assert refused.value.code == "envelope.id_conflict"

        await asyncio.wait_for(alice.receipt(accepted.index), WAIT)
        await witness_all(home, server.url)
        code, out = await audit(home, server.url)
        assert code == 0, out
        compliance = await asyncio.to_thread(hotline_cli, home, "audit", "report", "--as", "audrey",
                                             "--server", server.url, "--channel", "north-south")
        assert compliance.returncode == 0, compliance.stderr
        assert "Violations reported by recipients of sealed fields: 1" in compliance.stdout

        # A host that logs the report the server refused (a field never sealed to bob, signed
        # by bob) fails the audit: the auditor runs the same check on what is logged.
        unreadable = bob.violation_envelope(delivered, "private_note", problem)
        await server.hotline.store.append(
            EnvelopeEntry(index=PENDING, time=format_time(utc_now()), channel="north-south",
                          party="south", envelope=unreadable, sig=unreadable.sign(bob.key)),
            envelope_id=unreadable.store_key)
        await checkpointed(server)
        code, out = await audit(home, server.url)
    assert code == 1 and f"violation report {unreadable.id}" in out, out
    assert "was not sealed to bob (south)" in out


async def test_a_key_the_host_keeps_out_of_the_log_is_never_sealed_to(sealed_home: Path) -> None:
    """Acceptance 2, "not in the log" (a key bob did not sign: ``test_hybrid_keys.py``): an epoch
    key bob signed but the host keeps out of the log, serving it with no index, or the index of
    another entry, or of none, is refused before anything is sealed (``seal.unlogged_key``); the
    same key once logged and proven against the pinned log key is sealed to."""
    home = sealed_home
    template = load_templates(home / "protocols").latest("assessment")
    assert template is not None
    body = {"subject": "s", "assessment": "a"}
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        await publish_epoch_keys(server, ("alice", "carol"))
        alice = await server.client("alice")
        epoch = epoch_of(utc_now(), DEFAULT_EPOCH)

        async def served(signed: SignedDocument, indexes: list[int] | None = None) -> None:
            """The host pushes ``signed`` to alice as a roster document (with ``indexes``)."""
            server.hotline.hub.broadcast(RosterFrame(documents=[signed], indexes=indexes or UNSET))
            await alice.ping()  # answered after the roster frame: alice has read it

        async def sealed() -> Envelope:
            return await alice.sealed_envelope(channel="north-south", template=template, body=body,
                                               log_key=server.log_key, timeout=WAIT)

        bobs = sign_document(EpochPrivateKey.generate().document(
            party="south", member="bob", epoch=epoch, length=DEFAULT_EPOCH),
            load_private_key(home / "keys" / "bob.pem"))
        for indexes, why in ((None, "came with no log index"), ([0], "which logs an enrollment"),
                             ([10**6], "is not readable as entry")):
            await served(bobs, indexes)
            with pytest.raises(HotlineError) as refused:
                await sealed()
            assert refused.value.code == "seal.unlogged_key" and why in refused.value.message
            assert "bob's (south) epoch key" in refused.value.message
        alices_index = alice.logged_at[readers_of(alice.roster, ["north"], at=utc_now())[0].key.key_id]
        await served(bobs, [alices_index])  # alice's own key's entry
        with pytest.raises(HotlineError) as refused:
            await sealed()
        assert "(of alice)" in refused.value.message

        await server.hotline.add_document(bobs.to_json())  # logged at last: the host says where
        await alice.ping()
        envelope = await sealed()
        assert envelope.sealed is not None
        assert sorted(box.member for box in envelope.sealed.boxes) == ["alice", "bob", "carol"]
        accepted = await alice.submit_envelope(envelope)
        assert accepted.index > alices_index


async def test_the_longest_free_text_is_sealed_to_every_liaison_and_read_whole(home: Path) -> None:
    """The shipped message's longest text (16,000 characters), in Cyrillic (two bytes each),
    sealed to the three liaisons, fits one envelope: each field is encrypted once, and each
    reader's box holds only its key. One character more breaks the template."""
    text = "Ж" * 16_000
    async with running_server(home) as server:
        alice, bob, carol = [await server.client(n) for n in ("alice", "bob", "carol")]
        accepted = await alice.send(channel="north-south", template="message",
                                    body={"text": text, "lang": "ru"})
        for reader in (bob, carol):
            while True:
                frame = await asyncio.wait_for(reader.deliveries.get(), WAIT)
                if isinstance(frame, Deliver) and frame.index == accepted.index:
                    break
            delivered = reader.verify(frame)
            assert delivered.envelope.sealed is not None
            assert len(delivered.envelope.sealed.boxes) == 3
            assert server.body_seen(reader, delivered) == {"text": text, "lang": "ru"}
        template = alice.templates.latest("message")
        assert template is not None
        with pytest.raises(ProtocolViolation) as too_long:
            template.check_sealed_field({"lang": "ru"}, "text", text + "Ж")
        assert too_long.value.code == "template.invalid"
