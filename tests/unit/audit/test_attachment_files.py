"""hotline.audit.attachments: the files an auditor is given, matched to the attachments the
verified entries name by SHA-256 and size; a file no entry names is the finding."""

from __future__ import annotations

from pathlib import Path

from hotline.audit.attachments import GivenFile, LoggedFile, match_files
from hotline.audit.folder import hash_folder
from hotline.keys import b64url


def logged(index: int, sha256: str, size: int, name: str | None = "a.pdf") -> LoggedFile:
    return LoggedFile(index, "2026-12-07T10:00:00.000Z", "north-south", "alice", "north",
                      "body.files[0]", sha256, size, name, "application/pdf" if name else None)


def test_each_given_file_is_matched_by_digest_and_size_and_the_rest_is_named(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.pdf").write_bytes(b"report")
    (tmp_path / "sub" / "stream.bin").write_bytes(b"sealed stream")
    (tmp_path / "stray.txt").write_bytes(b"not in the log")
    (tmp_path / "link").symlink_to(tmp_path / "a.pdf")  # a link is not followed
    read: list[int] = []
    given = hash_folder(tmp_path, read.append)
    assert [Path(g.path).name for g in given] == ["a.pdf", "stray.txt", "stream.bin"]
    assert sum(read) == len(b"report") + len(b"not in the log") + len(b"sealed stream")
    digest = {Path(g.path).name: g.sha256 for g in given}
    entries = [logged(4, digest["a.pdf"], 6), logged(9, digest["stream.bin"], 13, name=None),
               logged(11, digest["a.pdf"], 7),  # same digest, another size: not this file
               logged(12, b64url(bytes(32)), 10)]
    findings = match_files(given, entries)
    assert not findings.ok and findings.named == 4
    assert [(Path(g.path).name, f.index) for g, f in findings.matched] == [("a.pdf", 4), ("stream.bin", 9)]
    assert [Path(g.path).name for g in findings.unnamed] == ["stray.txt"]
    assert [f.index for f in findings.not_given] == [11, 12]
    lines = findings.lines()
    assert lines[0].startswith(f"FAILED: {tmp_path / 'stray.txt'} (14 bytes) is named by no")
    assert "2 of the 3 files given match one" in lines[1]
    assert any("entry 9 body.files[0]: a sealed file (its stream of 13 bytes)" in line for line in lines)
    assert match_files([GivenFile(str(tmp_path / "a.pdf"), digest["a.pdf"], 6)], entries[:1]).ok
