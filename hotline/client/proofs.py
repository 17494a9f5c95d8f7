"""Is each message in the log, and have the witnesses seen it? The I/O half of a client's log
watch (the console's and ``hotline listen``'s): it fetches from the server's public log API
(``LogClient``, blocking, so each call runs in a thread) and hands every answer to the pure
``LogWatch`` (``hotline.logwatch``), which trusts none of them.

One round: the latest checkpoint (joined to the client's chain by a consistency proof), then the
latest checkpoint each witness cosigned (``/v1/log/witnessed``, each joined the same way, its
cosignatures checked against the keys of the witnesses the agreements name, as their named
authorities enrolled them: ``hotline.witnesses``), then
an inclusion proof for each message the head covers that has none yet (newest first, at most
``limit`` a round, so a long history is proven over several rounds without stalling the line).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hotline.client.connection import Client
from hotline.client.logapi import LogClient, http_base
from hotline.client.loghead import read_head, write_head
from hotline.entries import Entry
from hotline.errors import HotlineError, LogError
from hotline.logwatch import Head, LogWatch, Witness
from hotline.roster import Roster
from hotline.tlog import Checkpoint, NoteVerifier
from hotline.witnesses import named_witnesses, witness_keys

T = TypeVar("T")
ROUND_LIMIT = 100  # inclusion proofs fetched per round at most


def witnesses_of(roster: Roster, channels: Sequence[str]) -> list[Witness]:
    """The keys of the witnesses the agreements of ``channels`` name, each with its label
    (``party/member``: names are per party), unrevoked."""
    slots = witness_keys(roster, named_witnesses(roster, channels))
    return [(key.witness.label, key.verifier) for keys in slots.values() for key in keys
            if key.enrollment.revoked_at is None]


async def _fetch(call: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(call, *args)


async def _join(watch: LogWatch, client: LogClient, note: str, *, latest: bool = False) -> Checkpoint:
    checkpoint = watch.checkpoint(note)
    needed = watch.consistency_needed(checkpoint, latest=latest)
    proof = None
    if needed is not None:
        proof = await _fetch(client.consistency, *needed)
    watch.join(checkpoint, proof, latest=latest)
    return checkpoint


async def prove_round(watch: LogWatch, client: LogClient, *,
                      verifiers: Sequence[Witness],
                      entries: Sequence[tuple[int, Entry]],
                      limit: int = ROUND_LIMIT, cosigned: bool = True) -> None:
    """One round (see the module docstring). ``entries`` are ``(index, entry as delivered)``,
    most wanted first; ``cosigned``: also the witnesses' checkpoints. Never raises for the log's
    answers: a failure to fetch is kept in ``watch.problem``, an inconsistency in
    ``watch.alarm``."""
    try:
        await _join(watch, client, await _fetch(client.checkpoint), latest=True)
        for item in await _fetch(client.witnessed) if cosigned else []:
            note = item.note
            watch.witnessed(note, await _join(watch, client, note), verifiers)
        wanted = set(watch.wanted(i for i, _ in entries))
        head = watch.head
        assert head is not None or not wanted
        for index, entry in [(i, e) for i, e in entries if i in wanted][:limit]:
            assert head is not None
            proof = await _fetch(client.inclusion, index, head.size)
            with contextlib.suppress(LogError):  # kept in watch.failed, shown with the entry
                watch.include(index, entry, head.size, proof)
        watch.problem = None
    except HotlineError as exc:
        if watch.alarm is None:
            watch.problem = exc.message
    except (ValueError, KeyError, TypeError) as exc:  # an answer of the wrong shape
        watch.problem = f"the log API answered badly: {type(exc).__name__}: {exc}"


def load_head(path: Path) -> Head | None:
    """The chain head a client remembered in ``path`` (None if there is none to read: a new
    chain starts)."""
    try:
        return read_head(path)
    except LogError:
        return None


class Prover:
    """Proves each entry a client shows included in a checkpoint that extends its chain
    (``hotline listen``): a round after each new entry and each checkpoint the host pushes;
    ``report(index, size, failed)`` is called once per entry, with the checkpoint size it was
    proven in or why it was not. The chain's head is kept in ``state`` across runs, so a log
    that shows a shorter or other history on a later run is caught too."""

    def __init__(self, client: Client, log_key: NoteVerifier | None, state: Path,
                 report: Callable[[int, int | None, str | None], None]) -> None:
        self.client, self.state, self.report = client, state, report
        self.watch = LogWatch(log_key, load_head(state))
        self.log = LogClient(http_base(client.url), ssl_context=client.ssl_context)
        self.pending: dict[int, Entry] = {}
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()

    def add(self, index: int, entry: Entry) -> None:
        if self.watch.log_key is None:
            self.report(index, None, "the profile pins no log key: nothing can be proven")
            return
        self.pending[index] = entry
        self._settled.clear()
        self._wake.set()

    async def run(self) -> None:
        """Prove until cancelled."""
        while True:
            waited: set[asyncio.Future[Any]] = {
                asyncio.ensure_future(e.wait()) for e in (self._wake, self.client.checkpoint_arrived)}
            try:
                await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for future in waited:
                    future.cancel()
            self._wake.clear()
            self.client.checkpoint_arrived.clear()
            while self.pending and await self._round():
                pass

    async def _round(self) -> bool:
        """One round over the pending entries; whether it settled any."""
        entries = sorted(self.pending.items(), reverse=True)
        before = self.watch.head
        await prove_round(self.watch, self.log, verifiers=[], entries=entries, cosigned=False)
        if self.watch.head is not None and self.watch.head != before and self.watch.alarm is None:
            write_head(self.state, self.watch.head)
        settled = 0
        for index in list(self.pending):
            failed = self.watch.alarm or self.watch.failed.get(index)
            size = self.watch.included.get(index)
            if failed is not None or size is not None:
                del self.pending[index]
                self.report(index, size, failed)
                settled += 1
        if not self.pending:
            self._settled.set()
        return settled > 0

    async def settle(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every pending entry to be reported; what is still
        pending then is reported as not proven."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._settled.wait()
        reason = self.watch.problem or "no checkpoint covering it came"
        for index in sorted(self.pending):
            self.report(index, None, f"not proven within {timeout:g} s: {reason}")
        self.pending.clear()
