"""Is this entry in the log, and who witnessed it? Checked on demand for the details view.

The console asks the server's public log API for its latest checkpoint and for an inclusion
proof of the entry, and trusts neither answer: the checkpoint must carry the log key's signature
(the key the member pinned in its profile), the proof must lead from the entry's own leaf hash
(RFC 8785 bytes of the entry as delivered) to that checkpoint's root, and each witness
cosignature must verify against the key the witness's party enrolled. Plain blocking HTTP: run
``check_entry`` in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from hotline.canonical import canonical_bytes
from hotline.console.state import ProofReport
from hotline.errors import HotlineError
from hotline.roster import Role, Roster
from hotline.tlog import CosignatureVerifier, NoteVerifier, leaf_hash, verify_checkpoint, verify_cosignatures
from hotline.tlog import verify_inclusion as verify_proof


def witnesses_of(roster: Roster, parties: list[str]) -> list[CosignatureVerifier]:
    """The witness keys (the parties' agents, as their authorities enrolled them)."""
    return [CosignatureVerifier(name=e.member, public_key=e.key.raw)
            for e in roster.enrollments.values()
            if e.role is Role.AGENT and e.party in parties and e.revoked_at is None]


def check_entry(*, base: str, index: int, entry: dict[str, Any], log_key: NoteVerifier | None,
                witnesses: list[CosignatureVerifier], ssl_context: ssl.SSLContext | None = None,
                timeout: float = 10.0) -> ProofReport:
    """Fetch the latest checkpoint and the inclusion proof of entry ``index`` from ``base``
    (``http://host:port``) and verify both. Never raises: failures are in ``problems``."""
    report = ProofReport(index, witnesses=sorted({w.name for w in witnesses}))
    if log_key is None:
        report.problems.append("the profile pins no log key: nothing can be verified")
        return report
    try:
        note = _get(base, "/v1/log/checkpoint", {}, ssl_context, timeout).decode()
        checkpoint = verify_checkpoint(note, log_key)
        report.checkpoint_size = checkpoint.size
        if index >= checkpoint.size:
            report.problems.append(f"the latest checkpoint (size {checkpoint.size}) does not cover "
                                   "this entry yet; look again in a moment")
            return report
        answer = json.loads(_get(base, "/v1/log/proof/inclusion",
                                 {"index": index, "size": checkpoint.size}, ssl_context, timeout))
        proof = [base64.b64decode(h, validate=True) for h in answer["proof"]]
        verify_proof(leaf_hash=leaf_hash(canonical_bytes(entry)), index=index, size=checkpoint.size,
                     proof=proof, root=checkpoint.root_hash)
        report.included = True
        report.cosigned_by = verify_cosignatures(note, witnesses) if witnesses else {}
    except HotlineError as exc:
        report.problems.append(exc.message)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.problems.append(f"{type(exc).__name__}: {exc}")
    return report


def _get(base: str, path: str, query: dict[str, int], context: ssl.SSLContext | None,
         timeout: float) -> bytes:
    url = base.rstrip("/") + path + (("?" + urllib.parse.urlencode(query)) if query else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        raise OSError(f"GET {path}: HTTP {exc.code}") from exc
