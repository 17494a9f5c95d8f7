"""Is each message in the log, and have the witnesses seen it? The I/O half of the console's
log watch: it fetches from the server's public log API (``LogClient``, blocking, so each call
runs in a thread) and hands every answer to the pure ``LogWatch``, which trusts none of them.

One round: the latest checkpoint (joined to the console's chain by a consistency proof), then the
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
from typing import Any, TypeVar

from hotline.audit.remote import LogClient
from hotline.console.logwatch import LogWatch, Witness
from hotline.errors import HotlineError, LogError
from hotline.roster import Roster
from hotline.tlog import Checkpoint
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
                      entries: Sequence[tuple[int, dict[str, Any]]],
                      limit: int = ROUND_LIMIT) -> None:
    """One round (see the module docstring). ``entries`` are ``(index, entry as delivered)``,
    most wanted first. Never raises for the log's answers: a failure to fetch is kept in
    ``watch.problem``, an inconsistency in ``watch.alarm``."""
    try:
        await _join(watch, client, await _fetch(client.checkpoint), latest=True)
        for item in await _fetch(client.witnessed):
            watch.witnessed(item.note, await _join(watch, client, item.note), verifiers)
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
