"""A party's witness (run by its agent): cosign each new checkpoint after proving it consistent
with the last one this witness cosigned, whose size and root it keeps in its own state file
(a ``hotline.logwatch.Head``, in ``hotline.client.loghead``'s file).

A smaller checkpoint (rollback), another root at a size already cosigned (split view) or a failed
consistency proof is refused: the witness raises ``WitnessAlarm``, never cosigns, and keeps its
state, so the alarm repeats until a person looks.
"""

from __future__ import annotations

from pathlib import Path

from hotline.client.logapi import LogClient
from hotline.client.loghead import read_head, write_head
from hotline.errorcodes import Code
from hotline.errors import ConfigError, LogError
from hotline.keys import Signer, SigningKey
from hotline.logwatch import Head
from hotline.tlog import NoteVerifier, cosign, verify_checkpoint, verify_consistency
from hotline.tlog.note import parse_note


class WitnessAlarm(LogError):
    """The log showed this witness something inconsistent with what it cosigned before."""

    code = Code.WITNESS_ALARM


def witness_key(key: Signer) -> SigningKey:
    """The member's key as a witness key: cosignatures are C2SP's Ed25519 form, so a hybrid
    key cannot cosign (ConfigError saying so)."""
    if not isinstance(key, SigningKey):
        raise ConfigError("a witness cosigns checkpoints with an Ed25519 key (C2SP "
                          "tlog-cosignature); this agent's key is hybrid (Ed25519 + ML-DSA-65): "
                          "enroll an Ed25519 agent key to witness")
    return key


def check_and_cosign(*, note: str, consistency: list[bytes] | None, state: Head | None,
                     log_key: NoteVerifier, name: str, key: SigningKey,
                     timestamp: int) -> tuple[str, Head] | None:
    """Decide on one checkpoint (pure: the caller fetched ``note`` and, when needed, the
    consistency proof from ``state.size``).

    Returns:
        ``(cosignature line, new state)``, or None when there is nothing new to cosign.

    Raises:
        WitnessAlarm: rollback, split view or inconsistency.
        LogError: a checkpoint not signed by the pinned log key.
    """
    checkpoint = verify_checkpoint(note, log_key)
    if state is not None:
        if checkpoint.size < state.size:
            raise WitnessAlarm(f"rollback: the log presents a checkpoint of size {checkpoint.size}, "
                               f"smaller than size {state.size} which {name} cosigned")
        if checkpoint.size == state.size:
            if checkpoint.root_hash != state.root:
                raise WitnessAlarm(f"split view: the log presents another root for size "
                                   f"{checkpoint.size}, which {name} cosigned with a different root")
            return None
        if state.size > 0:
            if consistency is None:
                raise WitnessAlarm("no consistency proof")
            try:
                verify_consistency(old_size=state.size, new_size=checkpoint.size,
                                   old_root=state.root, new_root=checkpoint.root_hash,
                                   proof=consistency)
            except LogError as exc:
                raise WitnessAlarm(f"inconsistent: checkpoint {checkpoint.size} does not extend "
                                   f"checkpoint {state.size} which {name} cosigned "
                                   f"({exc.message})") from exc
    line = cosign(parse_note(note).body, name=name, key=key, timestamp=timestamp)
    return line, Head(checkpoint.size, checkpoint.root_hash)




def witness_round(client: LogClient, *, state_path: Path, log_key: NoteVerifier, name: str,
                  key: SigningKey, timestamp: int) -> int | None:
    """Fetch the log's checkpoint (and the consistency proof from the last one cosigned), decide,
    and post the cosignature. Blocking I/O (run it in a thread from async code).

    Returns:
        The size cosigned, or None when there was nothing new.

    Raises:
        WitnessAlarm: rollback, split view or inconsistency.
        BadAnswer: the host answered what the log API never sends (misbehaviour).
        HotlineError: the log could not be reached (``RemoteError``), or another failure.
    """
    previous = read_head(state_path)
    note = client.checkpoint()
    size = verify_checkpoint(note, log_key).size
    proof = None
    if previous is not None and 0 < previous.size < size:
        proof = client.consistency(previous.size, size)
    decided = check_and_cosign(note=note, consistency=proof, state=previous, log_key=log_key,
                               name=name, key=key, timestamp=timestamp)
    if decided is None:
        return None
    line, new_state = decided
    client.post_cosignature(new_state.size, line)
    write_head(state_path, new_state)
    return new_state.size
