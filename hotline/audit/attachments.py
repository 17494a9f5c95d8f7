"""The files an auditor is given, checked against the attachments the verified log names (issue
19; ``hotline audit verify --attachments DIR``). Pure: ``hotline.audit.folder`` reads the files.

Theory of operation: a logged entry commits to each attachment by the SHA-256 and size of the
bytes the server stores: a clear file's own, a sealed file's stream (``hotline.sealing``). The
auditor hashes every regular file of the folder it is given (a chunk at a time) and matches each
to the entries that name those bytes. A file no verified entry names is a finding: it is not
part of the record, whatever its name says. An attachment no given file matches is only listed
(an auditor may hold some files and not others). A sealed file matches only as its sealed
stream: its content is for its readers, who can disclose it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from hotline.entries import EnvelopeEntry
from hotline.norms.template import Template


@dataclass(frozen=True)
class LoggedFile:
    """One attachment a verified entry names."""

    index: int
    time: str
    channel: str
    sender: str
    party: str
    where: str  # body.FIELD[i]
    sha256: str  # of the bytes stored: the file, or its sealed stream
    size: int
    name: str | None  # a clear file's signed name; None: sealed
    media_type: str | None

    @property
    def sealed(self) -> bool:
        return self.name is None

    def describe(self) -> str:
        what = (f"{self.name} ({self.size:,} bytes, {self.media_type})" if self.name is not None
                else f"a sealed file (its stream of {self.size:,} bytes)")
        return f"entry {self.index} {self.where}: {what}"


def logged_files(entry: EnvelopeEntry, template: Template) -> list[LoggedFile]:
    """The attachments ``entry`` names (its envelope has passed ``template``'s check)."""
    env = entry.envelope
    clear = {(n.field, n.position): n.ref for n in template.attachment_refs(env.body)}
    out = []
    for held in template.held_attachments(env):
        ref = clear.get((held.field, held.position))
        out.append(LoggedFile(entry.index, entry.time, entry.channel, env.sender, entry.party,
                              held.where,
                              held.held.sha256, held.held.size,
                              ref.name if ref is not None else None,
                              ref.media_type if ref is not None else None))
    return out


@dataclass(frozen=True)
class GivenFile:
    """A file the auditor was given (``hotline.audit.folder`` reads them)."""

    path: str
    sha256: str
    size: int


class MatchDoc(msgspec.Struct, frozen=True):
    path: str
    index: int
    where: str
    name: str | None
    sealed: bool


@dataclass
class FileFindings:
    """What the given files are, by the log."""

    named: int = 0  # attachments the verified entries name
    matched: list[tuple[GivenFile, LoggedFile]] = field(default_factory=list)
    unnamed: list[GivenFile] = field(default_factory=list)  # given, named by no verified entry
    not_given: list[LoggedFile] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unnamed

    def lines(self) -> list[str]:
        """The findings in words, a line each; the failures first."""
        out = [f"FAILED: {g.path} ({g.size:,} bytes) is named by no verified entry: it is not "
               "part of the record" for g in self.unnamed]
        out.append(f"attachments: {self.named} named by verified entries; {len(self.matched)} of "
                   f"the {len(self.matched) + len(self.unnamed)} files given match one")
        out += [f"  {g.path}: {f.describe()}, its SHA-256 the signed one" for g, f in self.matched]
        out += [f"  not given: {f.describe()}" for f in self.not_given]
        return out

    def to_json(self) -> dict[str, object]:
        return {"named": self.named,
                "matched": [msgspec.to_builtins(MatchDoc(g.path, f.index, f.where, f.name, f.sealed))
                            for g, f in self.matched],
                "unnamed": [g.path for g in self.unnamed],
                "not_given": [{"index": f.index, "where": f.where, "sha256": f.sha256,
                               "size": f.size} for f in self.not_given]}


def match_files(given: Iterable[GivenFile], logged: Iterable[LoggedFile]) -> FileFindings:
    """Each given file matched to the first entry naming its bytes (SHA-256 and size)."""
    logged = list(logged)
    by_digest: dict[tuple[str, int], LoggedFile] = {}
    for named in logged:
        by_digest.setdefault((named.sha256, named.size), named)
    findings = FileFindings(named=len(logged))
    seen: set[tuple[str, int]] = set()
    for file in given:
        match = by_digest.get((file.sha256, file.size))
        if match is None:
            findings.unnamed.append(file)
        else:
            findings.matched.append((file, match))
            seen.add((file.sha256, file.size))
    findings.not_given = [f for f in logged if (f.sha256, f.size) not in seen]
    return findings
