"""Violation reports (issue 16): a recipient that opened a sealed field and found it breaking
the template says so in a signed, logged ``violation`` envelope. Pure.

The host cannot check a sealed value; it checks that the report can be true: it answers a
message of the same channel and template that has the field sealed, and the reporter was sent
that field (a box for it names the reporter). A report's id is derived from its reporter, the
message and the field (``envelope.violation_id``), so there is one report per reader and field.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.entries import EnvelopeEntry
from hotline.envelope import Envelope
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation


@dataclass(frozen=True)
class Reported:
    """What a violation report is checked against: the message it answers, by its log index
    and template, and to whom each of its fields was sealed (``(field, party, member)``). The
    server builds it from the logged entry; the auditor keeps one per sealed message."""

    index: int
    template: str
    sealed_to: frozenset[tuple[str, str, str]]

    @classmethod
    def of(cls, entry: EnvelopeEntry) -> Reported:
        sealed = entry.envelope.sealed
        boxes = sealed.boxes if sealed is not None else ()
        return cls(entry.index, entry.envelope.template,
                   frozenset((name, box.party, box.member) for box in boxes for name in box.fields))


def check_violation(report: Envelope, target: Reported | None, *, party: str) -> None:
    """Refuse (``violation.invalid``) a report its reporter could not have made."""
    field = report.body["field"]
    if target is None:
        raise ProtocolViolation("a violation report answers a message (reply_to)",
                                code=Code.VIOLATION_INVALID)
    if target.template != report.template:
        raise ProtocolViolation(f"a violation report carries the template of the message it "
                                f"reports ({target.template})", code=Code.VIOLATION_INVALID)
    if not any(name == field for name, _, _ in target.sealed_to):
        raise ProtocolViolation(f"message {target.index} has no sealed field {field!r}",
                                code=Code.VIOLATION_INVALID)
    if (field, party, report.sender) not in target.sealed_to:
        raise ProtocolViolation(f"field {field!r} of message {target.index} was not sealed to "
                                f"{report.sender} ({party}): it cannot have read it",
                                code=Code.VIOLATION_INVALID)
