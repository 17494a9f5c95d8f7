"""One persisted log head (``hotline.logwatch.Head`` in ``hotline.client.loghead``'s file) for
the witness and the clients' chains. Files the earlier releases left on disk read as the same
head: the witness's state (``{"size", "root": base64}``) and ``hotline listen``'s chain head
(``{"size", "root": hex}``); a file that holds no head is an error, never "no head"."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from hotline.client.loghead import MAX_HEAD_BYTES, read_head, write_head
from hotline.client.proofs import load_head
from hotline.errors import LogError
from hotline.logwatch import Head

ROOT = hashlib.sha256(b"a tree of eight").digest()


def test_an_earlier_witness_state_file_reads_as_its_head(tmp_path: Path) -> None:
    path = tmp_path / "north-agent.witness.json"
    # byte for byte what WitnessState.save wrote
    path.write_text(json.dumps({"size": 8, "root": base64.b64encode(ROOT).decode()}))
    assert read_head(path) == Head(8, ROOT)


def test_an_earlier_listen_chain_head_reads_as_its_head(tmp_path: Path) -> None:
    path = tmp_path / "bob.loghead.json"
    path.write_text(json.dumps({"size": 8, "root": ROOT.hex()}))  # what Prover wrote
    assert read_head(path) == load_head(path) == Head(8, ROOT)


def test_a_head_is_written_in_the_witness_format_privately(tmp_path: Path) -> None:
    path = tmp_path / "state" / "head.json"
    write_head(path, Head(9, ROOT))
    assert json.loads(path.read_text()) == {"size": 9, "root": base64.b64encode(ROOT).decode()}
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_head(path) == Head(9, ROOT)


@pytest.mark.parametrize("value", [[], {"size": 8}, {"size": True, "root": ROOT.hex()},
                                   {"size": -1, "root": ROOT.hex()},
                                   {"size": 8, "root": ROOT.hex()[:-2]},
                                   {"size": 8, "root": "not base64!"}])
def test_a_file_holding_no_head_is_an_error_not_a_fresh_start(tmp_path: Path, value: object) -> None:
    path = tmp_path / "head.json"
    path.write_text(json.dumps(value))
    with pytest.raises(LogError) as caught:
        read_head(path)
    assert caught.value.code == "log.bad_head"
    assert load_head(path) is None  # listen starts a new chain; the witness refuses (above)


def test_no_file_is_no_head_and_a_file_not_json_is_no_head_either(tmp_path: Path) -> None:
    assert read_head(tmp_path / "absent.json") is None
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(LogError):
        read_head(tmp_path / "empty.json")


@pytest.mark.parametrize("data", [
    b'{"size": 8, "size": 9, "root": "%s"}' % ROOT.hex().encode(),  # which size? neither
    b'{"size": 8.0, "root": "%s"}' % ROOT.hex().encode(),
    b'{"size": 8, "root": "%s", "pad": "%s"}' % (ROOT.hex().encode(), b"x" * MAX_HEAD_BYTES),
])
def test_a_damaged_or_oversized_head_file_is_refused_unread_past_its_bound(tmp_path: Path,
                                                                          data: bytes) -> None:
    path = tmp_path / "head.json"
    path.write_bytes(data)
    with pytest.raises(LogError) as caught:
        read_head(path)
    assert caught.value.code == "log.bad_head"
