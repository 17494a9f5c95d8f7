"""What the host sent that this client refused. Pure.

Frames and the entries they carry are decoded strictly elsewhere (``hotline.wire.frames``,
``hotline.entries``); a frame or an entry that does not decode, a replayed or reordered delivery,
or an entry of a channel that is not this member's becomes a ``HostProblem``: reported as the
host's misbehaviour, never shown as content, and the next frame may be fine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostProblem:
    """Something the host sent that this client refused: a malformed frame, a replayed or
    reordered delivery, a failed proof. Shown as the host's misbehaviour, never as content."""

    problem: str
    index: int | None = None
    channel: str | None = None
