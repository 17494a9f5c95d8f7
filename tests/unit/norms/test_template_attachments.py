"""Issue 19: a template declares attachment fields (allowed media types, largest size, how
many); the body names each attachment by reference, checked like any field, and a file name that
is not safe to save under is refused at the template's check."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hotline.attachments.refs import SealedAttachmentRef
from hotline.attachments.stream import sealed_size
from hotline.envelope import Envelope, Kind, new_envelope_id
from hotline.epochkeys import EpochPrivateKey
from hotline.epochkeys import Reader as EpochReader
from hotline.errors import ConfigError, ProtocolViolation, SealError
from hotline.keys import b64url
from hotline.norms.rules import Context
from hotline.norms.template import Template
from hotline.sealing import SealContext, StoredStream, make_disclosures, open_sealed, seal
from tests.unit.norms.test_shipped_templates import AGREEMENT

FORM = """\
format: 1
id: dossier
version: 1
title: A report with files (test fixture)
basis: >-
  Test fixture, not shipped: a written report with the documents it refers to attached.
senders:
  roles: [liaison]
precedence:
  default: ROUTINE
  allowed: [ROUTINE]
ack: none
audience: all
attachments:
  files: {media_types: [application/pdf, image/png], max_bytes: 2000000, max_count: 2}
fields:
  type: object
  additionalProperties: false
  required: [text]
  properties:
    text: {type: string, minLength: 1}
"""
REF = {"sha256": "A" * 43, "size": 1000, "media_type": "application/pdf", "name": "report.pdf"}


def template(text: str = FORM) -> Template:
    return Template.from_text(text, source="protocols/dossier.yaml")


def refusal(body: dict[str, Any]) -> ProtocolViolation:
    now = datetime.now(UTC)
    envelope = Envelope.build(id=new_envelope_id(bytes(16)), kind=Kind.MESSAGE, channel="north-south",
                              sender="alice", template="dossier", precedence="ROUTINE", created=now,
                              body=body)
    with pytest.raises(ProtocolViolation) as refused:
        template().check(envelope, Context(agreement=AGREEMENT, party="north", role="liaison",
                                           logged=now))
    return refused.value


def test_attachment_fields_are_declared_once_and_checked_like_any_field() -> None:
    form = template()
    assert list(form.attachments) == ["files"] and form.attachments["files"].max_count == 2
    assert form.fields["properties"]["files"]["maxItems"] == 2
    refs = form.attachment_refs({"text": "see attached", "files": [REF, {**REF, "name": "map.png",
                                                                         "media_type": "image/png"}]})
    assert [(n.where, n.ref.name) for n in refs] == [("body.files[0]", "report.pdf"),
                                                      ("body.files[1]", "map.png")]
    form.check_body({"text": "no files"})  # an attachment field is optional


@pytest.mark.parametrize(("files", "said"), [
    ([REF, REF, REF], "body.files"),  # three: at most two
    ([{**REF, "media_type": "application/zip"}], "body.files[0].media_type"),
    ([{**REF, "size": 2_000_001}], "body.files[0].size"),
    ([{**REF, "sha256": "short"}], "body.files[0].sha256"),
    ([{**REF, "path": "/etc"}], "body.files[0]"),
    ([], "body.files"),
    ([{**REF, "name": "../../etc/cron.d/x"}], "body.files[0].name is not a safe file name"),
    ([{**REF, "name": "invoice\u202efdp.exe"}], "body.files[0].name is not a safe file name"),
])
def test_a_reference_outside_the_declaration_is_refused_naming_its_place(files: list[Any],
                                                                         said: str) -> None:
    refused = refusal({"text": "see attached", "files": files})
    assert refused.code == "template.invalid" and said in refused.message, refused.message
    assert "cron" not in refused.message and "fdp" not in refused.message


@pytest.mark.parametrize(("change", "said"), [
    (("image/png]", "image/PNG]"), "attachments"),
    (("max_bytes: 2000000", "max_bytes: 2000000000"), "attachments"),
    (("max_count: 2", "max_count: 0"), "attachments"),
])
def test_a_bad_declaration_is_refused_at_load(change: tuple[str, str], said: str) -> None:
    with pytest.raises(ConfigError) as refused:
        template(FORM.replace(*change))
    assert said in f"{refused.value.message} {refused.value.path}", refused.value


def test_an_attachment_field_declared_in_fields_too_is_refused() -> None:
    text = FORM + textwrap.indent("files: {type: array}\n", "    ")
    with pytest.raises(ConfigError) as refused:
        template(text)
    assert "declared in fields too" in refused.value.message


# -- sealed attachment fields -----------------------------------------------------------------------

SEALED_FORM = FORM.replace("ack: none\n", "ack: none\nreaders:\n  files: [south]\n")
KEY = b64url(bytes(range(32)))


class Reader:
    """A member of ``party`` with a fresh epoch key (what a roster would have verified)."""

    def __init__(self, party: str, member: str) -> None:
        self.party, self.member = party, member
        self.private = EpochPrivateKey.generate()
        key = self.private.document(party=party, member=member, epoch=100, length=timedelta(days=1))
        self.reader = EpochReader(party, member, key)
        self.keys = {key.key_id: self.private}


def sealed_envelope(files: list[dict[str, Any]], streams: dict[str, list[StoredStream]],
                    to: Reader) -> Envelope:
    envelope_id = new_envelope_id(bytes(16))
    boxes = seal(make_disclosures({"files": files}, {"files": bytes(16)}), {"files": [to.reader]},
                 SealContext(channel="north-south", envelope=envelope_id), attachments=streams)
    return Envelope.build(id=envelope_id, kind=Kind.MESSAGE, channel="north-south", sender="alice",
                          template="dossier", precedence="ROUTINE", created=datetime.now(UTC),
                          body={"text": "see attached"}, sealed=boxes)


def stream_of(ref: dict[str, Any]) -> StoredStream:
    return StoredStream(sha256="B" * 43, size=sealed_size(ref["size"]))


SEALED_REF = {**REF, "key": KEY}


def host_check(envelope: Envelope) -> None:
    template(SEALED_FORM).check(envelope, Context(agreement=AGREEMENT, party="north",
                                                  role="liaison", logged=datetime.now(UTC)))


def test_a_sealed_attachment_field_holds_each_streams_key_and_the_envelope_names_the_streams() -> None:
    form, bob = template(SEALED_FORM), Reader("south", "bob")
    assert form.fields["properties"]["files"]["items"]["required"] == [
        "sha256", "size", "media_type", "name", "key"]
    with pytest.raises(ProtocolViolation):  # the sender's check: a sealed reference has its key
        form.check_body({"text": "x", "files": [REF]})
    form.check_body({"text": "x", "files": [SEALED_REF]})
    envelope = sealed_envelope([SEALED_REF], {"files": [stream_of(SEALED_REF)]}, bob)
    host_check(envelope)  # what the host sees: the streams, not the references
    assert [(h.where, h.held, h.sealed) for h in form.held_attachments(envelope)] == [
        ("body.files[0]", stream_of(SEALED_REF), True)]
    opened = open_sealed(envelope.sealed, party="south", member="bob", keys=bob.keys,  # type: ignore[arg-type]
                         context=SealContext(channel="north-south", envelope=envelope.id))
    [named] = form.opened_attachments(envelope, {k: d.value for k, d in opened.items()})
    assert isinstance(named.ref, SealedAttachmentRef) and named.ref.key_bytes == bytes(range(32))
    assert named.stored == stream_of(SEALED_REF) and named.held == named.stored
    assert form.opened_attachments(envelope, {}) == []  # nothing opened: nothing to fetch


@pytest.mark.parametrize(("streams", "said"), [
    ({}, "sealed.attachments.files names from 1 to 2"),
    ({"files": [stream_of(SEALED_REF)] * 3}, "sealed.attachments.files names from 1 to 2"),
    ({"files": [StoredStream(sha256="B" * 43, size=sealed_size(2_000_001))]},
     "body.files[0] is larger than the 2000000 bytes allowed"),
])
def test_the_host_checks_the_sealed_streams_against_the_declaration(
        streams: dict[str, list[StoredStream]], said: str) -> None:
    envelope = sealed_envelope([SEALED_REF], streams, Reader("south", "bob"))
    with pytest.raises(ProtocolViolation) as refused:
        host_check(envelope)
    assert refused.value.code == "template.invalid" and said in refused.value.message


def test_streams_named_for_a_field_that_is_not_sealed_or_no_stream_are_refused() -> None:
    bob = Reader("south", "bob")
    with pytest.raises(SealError) as stray:
        sealed_envelope([SEALED_REF], {"files": [stream_of(SEALED_REF)],
                                       "text": [stream_of(SEALED_REF)]}, bob)
    assert stray.value.code == "seal.invalid" and "not sealed: text" in stray.value.message
    with pytest.raises(SealError) as cut:  # no sealed stream has that length
        sealed_envelope([SEALED_REF], {"files": [StoredStream(sha256="B" * 43,
                                                              size=65_536 + 16 + 16)]}, bob)
    assert cut.value.code == "seal.invalid" and "no sealed stream" in cut.value.message


@pytest.mark.parametrize("streams", [
    [StoredStream(sha256="B" * 43, size=sealed_size(999))],  # another size than the reference's
    [stream_of(SEALED_REF), stream_of(SEALED_REF)],  # two streams for one reference
])
def test_a_reader_refuses_references_that_do_not_match_their_streams(
        streams: list[StoredStream]) -> None:
    bob = Reader("south", "bob")
    envelope = sealed_envelope([SEALED_REF], {"files": streams}, bob)
    opened = open_sealed(envelope.sealed, party="south", member="bob", keys=bob.keys,  # type: ignore[arg-type]
                         context=SealContext(channel="north-south", envelope=envelope.id))
    with pytest.raises(ProtocolViolation) as refused:
        template(SEALED_FORM).opened_attachments(envelope, {k: d.value for k, d in opened.items()})
    assert refused.value.code == "template.invalid" and "body.files[0] does not match" in \
        refused.value.message


def test_an_envelope_without_sealed_attachments_encodes_as_before() -> None:
    bob = Reader("south", "bob")
    envelope_id = new_envelope_id(bytes(16))
    boxes = seal(make_disclosures({"note": "x"}, {"note": bytes(16)}), {"note": [bob.reader]},
                 SealContext(channel="north-south", envelope=envelope_id))
    assert set(boxes.to_json()) == {"digests", "ciphertexts", "boxes"}
