"""Issue 19: an attachment's reference in a signed body is hostile input, above all to the
receiver who saves the file: a typed error for each malformed field, a file name that is safe in
any folder on Linux, macOS and Windows, and bytes checked against the signed size and digest."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from hotline.attachments.refs import MAX_ATTACHMENT_BYTES, AttachmentRef, Digester, file_name_problem
from hotline.errorcodes import Code
from hotline.errors import SealError, WireError
from hotline.keys import b64url

DATA = b"satellite image, 2026-12-05" * 100
GOOD: dict[str, Any] = {"sha256": b64url(hashlib.sha256(DATA).digest()), "size": len(DATA),
                        "media_type": "image/png", "name": "convoy 3 – été.png"}


def test_a_reference_round_trips() -> None:
    ref = AttachmentRef.from_json(GOOD)
    assert ref.to_json() == GOOD
    for name in ("地図.png", "report.final.pdf", "a", "x" * 255, "readme", "con-report.txt"):
        assert AttachmentRef.from_json({**GOOD, "name": name}).name == name


@pytest.mark.parametrize(("field", "value"), [
    ("sha256", "x" * 42), ("sha256", "+" * 43), ("sha256", 1), ("size", -1), ("size", True),
    ("size", MAX_ATTACHMENT_BYTES + 1), ("size", "10"), ("media_type", "Image/PNG"),
    ("media_type", "image/png; charset=x"), ("media_type", "png"), ("media_type", "image/"),
    ("name", ""), ("name", 7)])
def test_a_malformed_field_is_a_typed_error_naming_it(field: str, value: Any) -> None:
    with pytest.raises(WireError) as caught:
        AttachmentRef.from_json({**GOOD, field: value})
    assert caught.value.code == Code.ATTACHMENT_INVALID
    assert f"an attachment.{field}" in caught.value.message
    if isinstance(value, str) and len(value) > 3:
        assert value not in caught.value.message  # a peer's value is never quoted


def test_unknown_or_missing_fields_are_refused() -> None:
    for obj in ({**GOOD, "path": "/etc"}, {k: v for k, v in GOOD.items() if k != "sha256"}, [], "x"):
        with pytest.raises(WireError) as caught:
            AttachmentRef.from_json(obj)
        assert caught.value.code == Code.ATTACHMENT_INVALID


@pytest.mark.parametrize("name", [
    ".", "..", "../../etc/passwd", "/etc/passwd", "a/b", "a\\b", "C:evil", "x\x00.png",
    "line\nbreak", "tab\there", "evil\u202efdp.exe", "zero\u200bwidth", "bell\x07",
    "CON", "con.txt", "Lpt1", "nul.tar.gz", "com³", " leading", "trailing ", "trailing.",
    "-rf", 'q"uote', "a<b", "a>b", "a|b", "a?b", "a*b", "é" * 128, "\udc80"])
def test_a_name_that_is_not_safe_to_save_is_refused_without_quoting_it(name: str) -> None:
    assert file_name_problem(name) is not None
    with pytest.raises(WireError) as caught:
        AttachmentRef.from_json({**GOOD, "name": name})
    assert caught.value.code == Code.ATTACHMENT_INVALID
    assert caught.value.message.startswith("an attachment.name is")
    if len(name) > 2:
        assert name not in caught.value.message  # the sender's words are never quoted


def test_bytes_are_checked_against_the_signed_size_and_digest() -> None:
    ref = AttachmentRef.from_json(GOOD)
    whole = Digester(ref)
    for start in range(0, len(DATA), 1000):
        whole.update(DATA[start:start + 1000])
    whole.finish()
    for arrived in (DATA[:-1], DATA[:-1] + b"X", b""):
        digester = Digester(ref)
        digester.update(arrived)
        with pytest.raises(SealError) as caught:
            digester.finish()
        assert caught.value.code == Code.ATTACHMENT_DIGEST_MISMATCH
        assert "convoy" not in caught.value.message  # the sender's words are never quoted
    longer = Digester(ref)
    with pytest.raises(SealError) as caught:
        longer.update(DATA + b"!")
    assert caught.value.code == Code.ATTACHMENT_DIGEST_MISMATCH
