"""Issue 19: a template declares attachment fields (allowed media types, largest size, how
many); the body names each attachment by reference, checked like any field, and a file name that
is not safe to save under is refused at the template's check."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

import pytest

from hotline.envelope import Envelope, Kind, new_envelope_id
from hotline.errors import ConfigError, ProtocolViolation
from hotline.norms.rules import Context
from hotline.norms.template import Template
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
    assert form.attachments == ("files",)
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
    (("ack: none\n", "ack: none\nreaders:\n  files: parties\n"), "sealed attachment"),
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
