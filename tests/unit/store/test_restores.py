"""The record of restores beside the database: appended, read back in order, and a damaged
record is one typed error (the server logs it and starts)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hotline.errors import StoreError
from hotline.store.restores import (
    CoveringCheckpoint,
    Lost,
    RestoreRecord,
    append_restore,
    read_restores,
    restores_path,
)


def test_records_are_appended_and_read_back_in_order(tmp_path: Path) -> None:
    path = restores_path(tmp_path / "hotline.db")
    assert path.name == "hotline.db.restores" and read_restores(path) == []
    clean = RestoreRecord(restored="T1", archive="a.tar", backup_taken="T0", log_size=9,
                          checkpoint=9, lost=None, kept={})
    lossy = RestoreRecord(restored="T2", archive="a.tar", backup_taken="T0", log_size=9,
                          checkpoint=9, lost=Lost(9, 11, 3, "T0", CoveringCheckpoint(12, None, "x", "n")),
                          kept={"hotline.db": "hotline.db.T2"})
    append_restore(path, clean)
    append_restore(path, lossy)
    assert read_restores(path) == [clean, lossy]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("data", [b"not json\n", b"[1]\n", b'{"a":1}\n{"a":\n', b'{"restored": 1}\n',
                                  b"\xff\n"])
def test_a_damaged_record_is_a_typed_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "hotline.db.restores"
    path.write_bytes(data)
    with pytest.raises(StoreError) as caught:
        read_restores(path)
    assert caught.value.code == "store.restores_unreadable"
