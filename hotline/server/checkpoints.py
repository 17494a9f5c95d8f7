"""The log's checkpointer: signs a C2SP checkpoint within ``checkpoint_delay`` of any commit,
stores it, pushes it to every connected member, sends senders their inclusion receipts, and
accepts the cosignatures of the witnesses the agreements name (and no one else's).

Only the server that leads the log signs (``run``); on a log shared by several servers
(PostgreSQL) the others ``follow``: they adopt each checkpoint the leader stores once its
signature verifies with the log key and its root is their own tree's at its size, and push it
and their own members' receipts exactly as the leader does. A follower that takes the lead
starts from the last checkpoint it adopted.

It never signs two inconsistent checkpoints: before signing size N it proves, from the stored
tree, that the new root is consistent with the last checkpoint it signed or adopted, and
refuses otherwise.
At start it first checks the database against every checkpoint the log published
(``hotline.store.integrity``); each new checkpoint is written to the checkpoint file, fsynced,
before it is stored, broadcast or served.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from hotline.audit.records import CheckpointNote
from hotline.crashpoints import crashpoint
from hotline.errorcodes import Code
from hotline.errors import HotlineError, LogError, ProtocolViolation, StoreError
from hotline.keys import SigningKey, b64encode
from hotline.roster import Roster
from hotline.server.hub import Connection, ConnectionGone, Hub
from hotline.store import Store
from hotline.store.checkpointfile import SavedCheckpoint, read_checkpoint_file, write_checkpoint_file
from hotline.store.integrity import verify_store
from hotline.times import format_time
from hotline.tlog import Checkpoint, NoteVerifier, sign_checkpoint, verify_checkpoint, verify_consistency
from hotline.tlog.mldsa_note import MLDSANoteSigner, add_signature
from hotline.tlog.note import NoteSignature, parse_note
from hotline.wire import frames
from hotline.witnesses import WitnessKey, named_witnesses, servable, verify_line, witness_keys

log = structlog.get_logger("hotline.server")


class Checkpointer:
    def __init__(self, *, store: Store, hub: Hub, roster: Roster, key: SigningKey, origin: str,
                 delay: float, clock: Callable[[], datetime], checkpoint_file: Path,
                 pq_key: MLDSA65PrivateKey | None = None) -> None:
        self.store, self.hub, self.roster = store, hub, roster
        # With an ML-DSA-65 key, each checkpoint carries a second signature line (type 0xff,
        # hotline/ml-dsa-65) that Ed25519-only note verifiers skip.
        self.pq_signer = MLDSANoteSigner(name=origin, key=pq_key) if pq_key is not None else None
        self.checkpoint_file = checkpoint_file
        self.key, self.origin, self.delay, self.clock = key, origin, delay, clock
        self.verifier = NoteVerifier(name=origin, public_key=key.public_key.raw)
        self.latest: Checkpoint | None = None
        self.latest_note = ""
        self._receipts: list[tuple[Connection, int]] = []
        self._sending: asyncio.Task[None] | None = None
        self._to_member: dict[Connection, asyncio.Task[None]] = {}  # receipts being queued
        self.witnessed: dict[str, int] = {}  # witness label -> largest checkpoint size it cosigned

    async def load(self) -> None:
        """Check the database against every checkpoint published (refusing to start on a loss,
        a change or rows the server did not write); the caller then signs the tree head
        (``sign``) once the roster folder is imported.

        Raises:
            StoreError: from ``hotline.store.integrity.verify_store``.
        """
        trusted = await verify_store(self.store, file=self.checkpoint_file, verifier=self.verifier)
        if trusted is not None:
            self.latest, self.latest_note = trusted.checkpoint, trusted.note
            saved = SavedCheckpoint(trusted.size, trusted.time, trusted.note)
            on_file = await asyncio.to_thread(read_checkpoint_file, self.checkpoint_file)
            if on_file is None or on_file.size < trusted.size:
                await asyncio.to_thread(write_checkpoint_file, self.checkpoint_file, saved)
            if await self.store.checkpoint(trusted.size) is None:  # signed, not yet stored
                await self.store.add_checkpoint(trusted.size, trusted.time, trusted.note)
        self.witnessed = await self.store.witnessed()

    async def follow(self, poll: float) -> None:
        """Until the store leads: adopt each checkpoint another server stores (heard by NOTIFY,
        or found by a poll every ``poll`` seconds in case a notification was lost)."""
        store = self.store
        while not store.leading.is_set():
            waits = [asyncio.ensure_future(store.checkpointed.wait()),
                     asyncio.ensure_future(store.leading.wait())]
            try:
                await asyncio.wait(waits, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            store.checkpointed.clear()
            try:
                await self.adopt()
            except HotlineError as exc:
                store.note_failure(exc)
                log.critical("checkpoint.not_adopted", code=exc.code, reason=exc.message)

    async def adopt(self) -> None:
        """Adopt the database's latest checkpoint if it is larger than the one held.

        Raises:
            StoreError: ``store.damaged``: its signature does not verify with the log key, or
                its root is not this server's tree's at its size (the database was changed).
        """
        found = await self.store.latest_checkpoint()
        if found is None or (self.latest is not None and found[0] <= self.latest.size):
            return
        size, time, note = found
        try:
            checkpoint = verify_checkpoint(note, self.verifier)
        except LogError as exc:
            raise StoreError(f"the checkpoint of size {size} in {self.store.location} does not "
                             f"verify with the log key: {exc.message}", code=Code.STORE_DAMAGED) from exc
        if checkpoint.size != size:
            raise StoreError(f"the checkpoint stored as size {size} signs size {checkpoint.size}",
                             code=Code.STORE_DAMAGED)
        if size > self.store.tree_head()[0]:
            await self.store.refresh()  # its entries committed before it was stored
        if await self.store.root_at(size) != checkpoint.root_hash:
            raise StoreError(f"the checkpoint of size {size} signs another tree than the one in "
                             f"{self.store.location}", code=Code.STORE_DAMAGED)
        try:
            await self._check_extends(size, checkpoint.root_hash)
        except LogError as exc:
            raise StoreError(f"the checkpoint of size {size} does not extend the one this server "
                             f"holds: {exc.message}", code=Code.STORE_DAMAGED) from exc
        await asyncio.to_thread(write_checkpoint_file, self.checkpoint_file,
                                SavedCheckpoint(size, time, note))
        log.info("checkpoint.adopted", size=size, root=b64encode(checkpoint.root_hash))
        self._published(checkpoint, note)

    async def run(self) -> None:
        """The leader's loop: one checkpoint per burst of commits, at most ``delay`` after it
        (first one of the tree head, if it moved while another server led)."""
        try:
            await self.adopt()  # the last checkpoint the previous leader stored
        except HotlineError as exc:  # its own signed ones still extend the last one it holds
            self.store.note_failure(exc)
            log.critical("checkpoint.not_adopted", code=exc.code, reason=exc.message)
        while True:
            try:
                await self.sign()
            except HotlineError as exc:
                log.critical("checkpoint.refused", code=exc.code, reason=exc.message)
            await self.store.committed.wait()
            await asyncio.sleep(self.delay)  # gather the burst: one signature covers it all
            self.store.committed.clear()

    async def stop(self) -> None:
        """Let the receipts already under way finish (shutdown, before the store closes)."""
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)
        queuing = list(self._to_member.values())
        for task in queuing:
            task.cancel()
        await asyncio.gather(*queuing, return_exceptions=True)

    def want_receipt(self, conn: Connection, index: int) -> None:
        self._receipts.append((conn, index))

    async def sign(self) -> None:
        """Sign the current tree head if it is new and consistent with the last one signed."""
        size, root = self.store.tree_head()
        if self.latest is not None and size == self.latest.size:
            return
        await self._check_extends(size, root)
        checkpoint = Checkpoint(self.origin, size, root)
        note = sign_checkpoint(checkpoint, self.key)
        if self.pq_signer is not None:
            note = add_signature(note, self.pq_signer)
        time = format_time(self.clock())
        crashpoint("checkpoint.signed")  # testing aid (hotline.crashpoints): no-op unless armed
        # On disk outside the database before anyone can see it: a database that later loses
        # entries under it is then caught at start (hotline.store.integrity).
        try:
            await asyncio.to_thread(write_checkpoint_file, self.checkpoint_file,
                                    SavedCheckpoint(size, time, note))
        except StoreError as exc:  # unpublished; the next commit tries again
            self.store.note_failure(exc)
            raise
        crashpoint("checkpoint.filed")
        await self.store.add_checkpoint(size, time, note)
        crashpoint("checkpoint.stored")
        log.info("checkpoint.signed", size=size, root=b64encode(root))
        self._published(checkpoint, note)

    async def _check_extends(self, size: int, root: bytes) -> None:
        """The tree of ``size`` with ``root`` extends the last checkpoint held (a consistency
        proof from the stored tree).

        Raises:
            LogError: ``log.inconsistent``: smaller, or not consistent.
        """
        if self.latest is None:
            return
        if size < self.latest.size:
            raise LogError(f"tree of {size} entries is smaller than the last checkpoint "
                           f"({self.latest.size})", code=Code.LOG_INCONSISTENT)
        if self.latest.size and size > self.latest.size:
            proof = await self.store.consistency_proof(self.latest.size, size)
            verify_consistency(old_size=self.latest.size, new_size=size,
                               old_root=self.latest.root_hash, new_root=root, proof=proof)

    def _published(self, checkpoint: Checkpoint, note: str) -> None:
        """A checkpoint signed here or adopted: held, pushed to every member connected here,
        and the receipts it covers sent."""
        size = checkpoint.size
        self.latest, self.latest_note = checkpoint, note
        self.hub.broadcast(frames.Checkpoint(note=note))
        due = [(c, i) for c, i in self._receipts if i < size]
        self._receipts = [(c, i) for c, i in self._receipts if i >= size]
        if due:
            # Receipts (a proof each) go out in the background, in checkpoint order: under load
            # they may lag, but the next checkpoint is still signed within its delay.
            previous = self._sending
            self._sending = asyncio.create_task(self._send_receipts(previous, size, note, due))

    async def _send_receipts(self, previous: asyncio.Task[None] | None, size: int, note: str,
                             due: list[tuple[Connection, int]]) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        due = [(conn, index) for conn, index in due if not conn.dead.is_set()]
        receipts = await self.store.receipts(sorted({index for _, index in due}), size)
        texts: dict[Connection, list[str]] = {}
        for conn, index in due:
            leaf, proof = receipts[index]
            texts.setdefault(conn, []).append(frames.encode(frames.Receipt(
                index=index, size=size, leaf=b64encode(leaf), proof=[b64encode(h) for h in proof],
                checkpoint=note)))
        for conn, batch in texts.items():
            task = asyncio.create_task(self._queue_receipts(conn, batch, self._to_member.get(conn)))
            self._to_member[conn] = task
            task.add_done_callback(functools.partial(self._forget, conn))

    @staticmethod
    async def _queue_receipts(conn: Connection, batch: list[str],
                              previous: asyncio.Task[None] | None) -> None:
        """A member's receipts, after its earlier ones, paced by its reading (a thousand at once
        must not overflow its queue); a member that stops reading is dropped by its send
        timeout, and delays only its own receipts."""
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        with contextlib.suppress(ConnectionGone):
            for text in batch:
                await conn.put(text)

    def _forget(self, conn: Connection, done: asyncio.Task[None]) -> None:
        if self._to_member.get(conn) is done:
            del self._to_member[conn]

    def policy(self) -> dict[tuple[str, bytes], list[WitnessKey]]:
        """The keys of the witnesses the current agreements name (witness policy, defect 11)."""
        return witness_keys(self.roster, named_witnesses(self.roster))

    def cosigner(self) -> Callable[[str, list[str]], str]:
        """A function giving a note with the stored cosignature lines of the witnesses the
        agreements name, one per witness, as many as a note may carry: serving never fails,
        whatever the cosignatures table holds. (The policy is read once: call it per request.)"""
        slots = self.policy()
        return lambda note, lines: servable(note, lines, slots) if lines else note

    async def note_with_cosignatures(self) -> str:
        """The latest signed checkpoint with the named witnesses' cosignature lines."""
        size = self.latest.size if self.latest else 0
        lines = (await self.store.cosignatures(size)).get(size, [])
        return self.cosigner()(self.latest_note, lines)

    async def add_cosignature(self, size: Any, line: Any) -> bool:
        """Verify a witness's cosignature line for the checkpoint of ``size`` and store it; False
        if that witness had already cosigned that checkpoint (at most one each).

        Only a witness that a current agreement names is heard: the line's key name (its member
        name) and key hash must match a key that the named authority's party enrolled for that
        agent and that is valid now.

        Raises:
            LogError: ``log.bad_cosignature``.
            ProtocolViolation: ``log.unknown_witness``, ``log.no_checkpoint``.
        """
        if not isinstance(size, int) or isinstance(size, bool) or not isinstance(line, str):
            raise LogError('a cosignature is {"size": int, "cosignature": line}',
                           code=Code.LOG_BAD_COSIGNATURE)
        try:
            signature = NoteSignature.from_line(line)
        except LogError as exc:
            raise LogError(exc.message, code=Code.LOG_BAD_COSIGNATURE) from exc
        slots = self.policy()
        if not slots.get((signature.name, signature.key_id)):
            raise ProtocolViolation(f"{signature.name!r} (key hash {signature.key_id.hex()}) is not "
                                    "a key of a witness that any agreement names",
                                    code=Code.LOG_UNKNOWN_WITNESS)
        note = await self.store.checkpoint(size)
        if note is None:
            raise ProtocolViolation(f"no checkpoint of size {size}", code=Code.LOG_NO_CHECKPOINT)
        try:
            found = verify_line(signature, parse_note(note).body, slots, valid_at=self.clock())
        except LogError as exc:
            raise LogError(f"cosignature of {signature.name}: {exc.message}",
                           code=Code.LOG_BAD_COSIGNATURE) from exc
        if found is None:
            raise ProtocolViolation(f"the key of witness {signature.name} that made this "
                                    "cosignature is not valid now", code=Code.LOG_UNKNOWN_WITNESS)
        label = found[0].witness.label
        added = await self.store.add_cosignature(size, label, signature.line())
        if added:
            log.info("checkpoint.cosigned", size=size, witness=label)
            self.witnessed[label] = max(size, self.witnessed.get(label, 0))
        return added

    async def witnessed_notes(self) -> list[CheckpointNote]:
        """The latest checkpoint each named witness cosigned, with its named witnesses'
        cosignatures, by size: what a member needs to know which entries every witness has seen
        (a witness cosigning size N vouches for every entry below N). One note per named witness
        at most, whatever the table holds."""
        slots = self.policy()
        labels = {key.witness.label for keys in slots.values() for key in keys}
        out = []
        for size in sorted({self.witnessed[w] for w in labels if w in self.witnessed}):
            note = await self.store.checkpoint(size)
            if note is not None:
                lines = (await self.store.cosignatures(size)).get(size, [])
                out.append(CheckpointNote(size, servable(note, lines, slots) if lines else note))
        return out
