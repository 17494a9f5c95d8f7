"""Violation reports (issue 16): a recipient that opened a sealed field and found it breaking
the template says so in a signed, logged ``violation`` envelope. Pure.

The host cannot check a sealed value; it checks that the report can be true: it answers a
message of the same channel and template that has the field sealed, and the reporter was sent
that field (a box for it names the reporter). A report's id is derived from its reporter, the
message and the field (``envelope.violation_id``), so there is one report per reader and field.
"""

from __future__ import annotations

from hotline.entries import EnvelopeEntry
from hotline.envelope import Envelope
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation


def check_violation(report: Envelope, target: EnvelopeEntry | None, *, party: str) -> None:
    """Refuse (``violation.invalid``) a report its reporter could not have made."""
    field = report.body["field"]
    if target is None:
        raise ProtocolViolation("a violation report answers a message (reply_to)",
                                code=Code.VIOLATION_INVALID)
    message = target.envelope
    if message.template != report.template:
        raise ProtocolViolation(f"a violation report carries the template of the message it "
                                f"reports ({message.template})", code=Code.VIOLATION_INVALID)
    sealed = message.sealed
    if sealed is None or field not in sealed.digests:
        raise ProtocolViolation(f"message {target.index} has no sealed field {field!r}",
                                code=Code.VIOLATION_INVALID)
    if not any((box.party, box.member) == (party, report.sender) and field in box.fields
               for box in sealed.boxes):
        raise ProtocolViolation(f"field {field!r} of message {target.index} was not sealed to "
                                f"{report.sender} ({party}): it cannot have read it",
                                code=Code.VIOLATION_INVALID)
