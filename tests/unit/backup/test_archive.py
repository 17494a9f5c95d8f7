"""The backup archive reader takes hostile input: any bytes give the members exactly as written
or one typed error (``restore.*``), never an exception of another kind, never altered content,
never a file outside the folder it was given."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.backup.archive import (
    CHECKPOINT,
    DATABASE,
    Manifest,
    ManifestCheckpoint,
    Member,
    decode_manifest,
    read_archive,
    write_archive,
)
from hotline.canonical import canonical_bytes
from hotline.errors import BackupError, HotlineError

CHECKPOINT_BYTES = b'{"note":"hotline.test\\n3\\nroot\\n","size":3,"time":"2026-12-05T10:00:00.000Z"}\n'
DATABASE_BYTES = bytes(range(256)) * 20  # not a real database: the reader never opens it


def member(data: bytes) -> Member:
    return Member(len(data), hashlib.sha256(data).hexdigest())


MANIFEST = Manifest(origin="hotline.test", taken="2026-12-05T10:00:00.000Z",
                    created="2026-12-05T10:00:01.000Z", log_size=3,
                    last_entry="2026-12-05T09:59:59.000Z",
                    checkpoint=ManifestCheckpoint(3, "2026-12-05T10:00:00.000Z"),
                    members={CHECKPOINT: member(CHECKPOINT_BYTES), DATABASE: member(DATABASE_BYTES)})


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("archive")
    (folder / "c").write_bytes(CHECKPOINT_BYTES)
    (folder / "d").write_bytes(DATABASE_BYTES)
    target = folder / "backup.tar"
    write_archive(target, manifest=MANIFEST, checkpoint=folder / "c", database=folder / "d",
                  force=False)
    return target.read_bytes()


def read(data: bytes) -> tuple[Manifest, bytes, bytes] | BackupError:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "a.tar").write_bytes(data)
        (folder / "out").mkdir()
        try:
            extracted = read_archive(folder / "a.tar", folder / "out")
        except BackupError as exc:
            assert exc.code.startswith("restore."), exc.code
            return exc
        finally:  # nothing but the two members, and only inside the folder given
            assert {p.name for p in (folder / "out").iterdir()} <= {CHECKPOINT, DATABASE}
            assert {p.name for p in folder.iterdir()} == {"a.tar", "out"}
        return (extracted.manifest, extracted.checkpoint.read_bytes(),
                extracted.database.read_bytes())


def test_what_is_written_reads_back(archive: bytes) -> None:
    assert read(archive) == (MANIFEST, CHECKPOINT_BYTES, DATABASE_BYTES)


def test_an_existing_archive_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "c").write_bytes(CHECKPOINT_BYTES)
    (tmp_path / "d").write_bytes(DATABASE_BYTES)
    (tmp_path / "backup.tar").write_bytes(b"keep")
    with pytest.raises(BackupError) as caught:
        write_archive(tmp_path / "backup.tar", manifest=MANIFEST, checkpoint=tmp_path / "c",
                      database=tmp_path / "d", force=False)
    assert caught.value.code == "backup.exists"
    assert (tmp_path / "backup.tar").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.tar", "c", "d"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1,
                      max_size=4),
       cut=st.none() | st.integers(min_value=0))
def test_an_altered_archive_reads_as_written_or_is_refused(archive: bytes,
                                                           edits: list[tuple[int, int]],
                                                           cut: int | None) -> None:
    data = bytearray(archive)
    for at, value in edits:
        data[at % len(data)] = value
    if cut is not None:
        data = data[:cut % len(data)]
    found = read(bytes(data))
    if not isinstance(found, BackupError):  # e.g. an edited mtime: the members are intact
        assert found[1:] == (CHECKPOINT_BYTES, DATABASE_BYTES)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_are_refused_with_a_typed_error(data: bytes) -> None:
    assert isinstance(read(data), BackupError)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 2**40) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["format", "origin", "taken", "created", "log_size",
                                        "last_entry", "checkpoint", "members", "x"]),
                       JSON, max_size=9))
def test_a_manifest_decodes_strictly_or_is_refused(value: dict[str, object]) -> None:
    try:
        data = canonical_bytes(value)
    except HotlineError:  # not encodable canonically (e.g. a lone surrogate): not a manifest
        return
    with pytest.raises(BackupError) as caught:
        decode_manifest(data)
    assert caught.value.code == "restore.bad_archive"
