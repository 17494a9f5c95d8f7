"""``readers`` in a template (issue 16): which body fields are sealed and who may read them; and
the versioned envelope that carries them (v2 with ``sealed``, v1 without)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hotline.envelope import Envelope
from hotline.errors import ConfigError, WireError
from hotline.norms.template import Template
from hotline.sealing import Sealed
from tests.integration.test_sealed_fields import ASSESSMENT

DIGEST = "A" * 43
SEALED = {"digests": {"assessment": DIGEST}, "ciphertexts": {"assessment": "AAAA"},
          "boxes": [{"party": "south", "member": "bob", "key": DIGEST, "fields": ["assessment"],
                     "enc": "AAAA"}]}


def template(text: str = ASSESSMENT) -> Template:
    return Template.from_text(text, source="assessment.yaml")


def test_readers_are_parsed_and_resolved_against_the_channel() -> None:
    t = template()
    assert dict(t.readers) == {"assessment": "parties", "private_note": ("mediator",)}
    assert t.readers_of("assessment", ["north", "south", "mediator"]) == {"north", "south", "mediator"}
    assert t.readers_of("private_note", ["north", "south", "mediator"]) == {"mediator"}
    assert t.readers_of("private_note", ["north", "south"]) == set()  # no mediator on this channel


@pytest.mark.parametrize(("edit", "where"), [
    (lambda s: s.replace("  private_note: [mediator]", "  nowhere: parties"), "readers.nowhere"),
    (lambda s: s.replace("  private_note: [mediator]", "  private_note: []"), "readers.private_note"),
    (lambda s: s.replace("  private_note: [mediator]", "  private_note: everyone"),
     "readers.private_note"),
    (lambda s: s.replace("  private_note: [mediator]", "  private_note: [Mediator]"),
     "readers.private_note"),
    (lambda s: s.replace("audience: all\n", "audience: all\nrules:\n  - rule: sequence\n"), "readers"),
])
def test_bad_readers_are_refused_naming_the_key(edit: object, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        template(edit(ASSESSMENT))  # type: ignore[operator]
    assert where in err.value.message


def test_an_envelope_with_sealed_fields_is_version_2_and_only_then() -> None:
    when = datetime(2026, 12, 6, tzinfo=UTC)
    fields = dict(id="A" * 22, kind="message", channel="north-south", sender="alice",
                  template="assessment", precedence="ROUTINE", created=when, body={"subject": "s"})
    env = Envelope.build(**fields, sealed=Sealed.from_json(SEALED))  # type: ignore[arg-type]
    assert env.v == 2 and env.to_json()["sealed"] == SEALED
    assert Envelope.from_json(env.to_json()) == env
    plain = Envelope.build(**fields)  # type: ignore[arg-type]
    assert plain.v == 1 and "sealed" not in plain.to_json()
    for bad in ({**env.to_json(), "v": 1}, {**plain.to_json(), "v": 2},
                {**env.to_json(), "body": {"subject": "s", "assessment": "in clear too"}},
                {**env.to_json(), "kind": "heartbeat"},
                {**env.to_json(), "sealed": {**SEALED, "boxes": []}}):
        with pytest.raises(WireError) as err:
            Envelope.from_json(bad)
        assert err.value.code == "envelope.invalid"
