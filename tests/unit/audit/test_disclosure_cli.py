"""`hotline audit disclosure FILE` on files nobody should trust: each is refused with one
`FAILED` line or a typed error and exit 1, never a traceback, and a huge file is not read whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.cli import main
from hotline.disclosures import MAX_FILE
from hotline.keys import SigningKey
from hotline.tlog import NoteVerifier

LOG_KEY = NoteVerifier(name="hotline.test", public_key=SigningKey.generate().public_key.raw).to_text()
GOOD_SHAPE = {"type": "hotline-disclosure", "v": 1, "to": "auditor", "field": "note",
              "disclosure": "WyJBQUFBQUFBQUFBQUFBQUFBQUFBQUFBIiwibm90ZSIsIngiXQ",
              "receipt": "not a receipt"}


@pytest.mark.parametrize("content", [
    b"", b"not json", b"[]", json.dumps({**GOOD_SHAPE, "extra": 1}).encode(),
    json.dumps({**GOOD_SHAPE, "to": "everyone"}).encode(), json.dumps(GOOD_SHAPE).encode(),
    b" " * (MAX_FILE + 10),
])
def test_hostile_disclosure_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(content)
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "audit", "disclosure", str(path),
                                       "--log-key", LOG_KEY])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "FAILED" in result.stderr or "error: " in result.stderr
