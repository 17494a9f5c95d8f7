"""Signatures checked on every core, ahead of their turn.

Ed25519 and ML-DSA-65 verification in ``cryptography`` release the GIL, so a few threads check
several signatures at once while the one thread that holds the state goes on: the server's event
loop (reading, checking, delivering), or the auditor replaying the log. Only the signature's
arithmetic moves: each envelope is still checked in its turn, every check in the same order, and
a signature's outcome is taken only when the key it was checked with is the key that turn finds
(the roster changed in between: it is checked again, inline). So a refusal carries the same code
and message either way (tests/integration/test_verify_ahead.py, tests/unit/test_ahead.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hotline.envelope import Envelope
from hotline.keys import CanonicalVerifier

AHEAD = 32
"""Submissions whose signatures may be in the server's threads ahead of the one in its turn:
enough to keep the threads busy, few enough that a member's turn waits at most this many more."""


@dataclass(frozen=True)
class Early:
    """One envelope's signature, being checked in a thread."""

    key: CanonicalVerifier
    outcome: Future[None]

    async def settled(self) -> None:
        """Wait, on the event loop, until the thread has checked it (its refusal is raised by
        ``verify``, in turn)."""
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(self.outcome)

    def verify(self, envelope: Envelope, key: CanonicalVerifier, sig: Any) -> None:
        """Raise what ``envelope.verify(key, sig)`` raises: the thread's outcome if it checked
        this very key (waiting for it), else checked here."""
        if key == self.key:
            self.outcome.result()
        else:
            envelope.verify(key, sig)


def check_signature(envelope: Envelope, key: CanonicalVerifier, sig: Any, early: Early | None) -> None:
    """The signature check in an envelope's turn: ``envelope.verify(key, sig)``, or its outcome
    from a thread (``early``) when that checked this very key."""
    if early is not None:
        early.verify(envelope, key, sig)
    else:
        envelope.verify(key, sig)


class Verifiers:
    """The verification threads (none: every signature is checked inline, in its turn)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.started = 0  # signatures handed to the threads
        self._pool = (ThreadPoolExecutor(threads, thread_name_prefix="hotline-verify")
                      if threads else None)

    def start(self, envelope: Envelope, key: CanonicalVerifier, sig: Any) -> Early | None:
        if self._pool is None:
            return None
        self.started += 1
        return Early(key, self._pool.submit(envelope.verify, key, sig))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
