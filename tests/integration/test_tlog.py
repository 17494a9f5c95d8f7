"""The transparency log as others see it (docs/ARCHITECTURE.md "Transparency log"): the HTTP API's exact
formats, proofs
that an independent RFC 9162 verifier accepts, offline receipts, and the parties' witnesses.

Everything runs against the real server on a free loopback port with its real SQLite store and
keys; the CLI runs as a subprocess, as a user runs it. The small RFC 9162 and signed-note code
below is written from the specifications, not from ``hotline.tlog``: it is the interoperability
evidence.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hotline.agent.witness import WitnessAlarm
from hotline.canonical import canonical_bytes, dumps
from hotline.client.connection import Client, Delivered
from hotline.client.logapi import LogClient, http_base
from hotline.client.profile import Profile
from hotline.client.receipts import bundle_from_frame, verify_receipt
from hotline.entries import EnvelopeEntry
from hotline.errors import LogError
from hotline.httpauth import sign_request
from hotline.keyfiles import load_private_key
from hotline.keys import Domain, SigningKey
from hotline.norms.files import load_templates
from hotline.times import format_time
from hotline.tlog import (
    CosignatureVerifier,
    NoteVerifier,
    ProofBundle,
    cosign,
    leaf_hash,
    parse_note,
    root_of,
    verify_checkpoint,
    verify_consistency,
    verify_cosignatures,
    verify_inclusion,
)
from hotline.typed import to_json
from hotline.wire.frames import Accepted, Receipt
from tests.conftest import (
    DEMO_ROSTER,
    Running,
    body_seen,
    copy_database,
    hotline_cli,
    running_server,
    witness_all,
    witness_once,
)

WAIT = 10  # seconds: a safety net against hangs, never a synchronisation
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
ORIGIN = "hotline.test"


# -- an independent RFC 9162 §2.1 implementation, straight from the RFC's definitions -------------

def _sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def rfc_mth(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (§2.1.1)."""
    if not hashes:
        return _sha256(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = _k(len(hashes))
    return _sha256(b"\x01", rfc_mth(hashes[:k]), rfc_mth(hashes[k:]))


def rfc_path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (§2.1.3.1)."""
    if len(hashes) == 1:
        return []
    k = _k(len(hashes))
    if m < k:
        return [*rfc_path(m, hashes[:k]), rfc_mth(hashes[k:])]
    return [*rfc_path(m - k, hashes[k:]), rfc_mth(hashes[:k])]


def rfc_proof(m: int, hashes: Sequence[bytes], whole: bool = True) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (§2.1.4.1)."""
    if m == len(hashes):
        return [] if whole else [rfc_mth(hashes)]
    k = _k(len(hashes))
    if m <= k:
        return [*rfc_proof(m, hashes[:k], whole), rfc_mth(hashes[k:])]
    return [*rfc_proof(m - k, hashes[k:], False), rfc_mth(hashes[:k])]


def rfc_verify_inclusion(leaf_index: int, tree_size: int, leaf: bytes, path: Sequence[bytes],
                         root: bytes) -> bool:
    """§2.1.3.2, step by step."""
    if leaf_index >= tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01", p, r)
            while fn & 1 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _sha256(b"\x01", r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def rfc_verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes,
                           path: Sequence[bytes]) -> bool:
    """§2.1.4.2, step by step (equal sizes: an empty proof and equal roots, per §2.1.4.1)."""
    if first == second:
        return not path and first_hash == second_hash
    if not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _sha256(b"\x01", c, fr), _sha256(b"\x01", c, sr)
            while fn & 1 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _sha256(b"\x01", sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_hash and sr == second_hash and sn == 0


def independent_note_check(note: str, vkey: str) -> tuple[str, int, bytes]:
    """Check a C2SP signed checkpoint from the specs alone; returns (origin, size, root)."""
    name, key_hash, material_b64 = vkey.split("+", 2)
    material = base64.b64decode(material_b64, validate=True)
    assert material[0] == 0x01 and len(material) == 33  # Ed25519 note key
    key_id = _sha256(name.encode(), b"\n", material)[:4]
    assert key_id.hex() == key_hash
    text, blank, signatures = note.rpartition("\n\n")
    assert blank, "a signed note has an empty line before its signatures"
    body = text + "\n"
    checked = 0
    for line in signatures.removesuffix("\n").split("\n"):
        assert line.startswith("\u2014 "), line
        signer, raw_b64 = line[2:].split(" ")
        raw = base64.b64decode(raw_b64, validate=True)
        if signer == name and raw[:4] == key_id:
            Ed25519PublicKey.from_public_bytes(material[1:]).verify(raw[4:], body.encode())
            checked += 1
    assert checked == 1
    origin, size, root = body.removesuffix("\n").split("\n")
    return origin, int(size), base64.b64decode(root, validate=True)


# -- helpers --------------------------------------------------------------------------------------

def http_url(server: Running, path: str) -> str:
    return server.url.replace("ws://", "http://").removesuffix("/v1/ws") + path


async def get(http: aiohttp.ClientSession, server: Running, path: str,
              headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with http.get(http_url(server, path), headers=headers or {}) as response:
        return response.status, response.content_type, await response.text()


async def get_json(http: aiohttp.ClientSession, server: Running, path: str) -> Any:
    status, _, text = await get(http, server, path)
    assert status == 200, text
    return json.loads(text)


def authorization(home: Path, name: str, query: str, *, now: datetime | None = None,
                  path: str = "/v1/log/entries", origin: str = ORIGIN,
                  key: SigningKey | None = None) -> str:
    return sign_request(key or Profile.load(home, name).signing_key(), method="GET", path=path,
                        query=query, origin=origin, now=now or datetime.now(UTC))


async def entries_as(http: aiohttp.ClientSession, server: Running, name: str, start: int,
                     end: int) -> list[dict[str, Any]]:
    query = f"start={start}&end={end}"
    status, _, text = await get(http, server, f"/v1/log/entries?{query}",
                                {"Authorization": authorization(server.home, name, query)})
    assert status == 200, text
    records: list[dict[str, Any]] = json.loads(text)
    return records


def hashes_of(records: list[dict[str, Any]]) -> list[bytes]:
    return [leaf_hash(base64.b64decode(r["leaf"])) if "leaf" in r else base64.b64decode(r["hash"])
            for r in records]


def log_key(home: Path) -> NoteVerifier:
    key = Profile.load(home, "audrey").log_key
    assert key is not None
    return key


async def send_messages(client: Client, count: int, prefix: str = "message") -> list[int]:
    """Send ``count`` messages, the first alone (sealing it proves the readers' epoch keys in
    the log, which the client then remembers), the others pipelined; returns their indexes once
    all are accepted."""
    async def send(n: int) -> Accepted:
        return await client.send(channel="north-south", template="message",
                                 body={"text": f"{prefix} {n}"})

    first = await send(0)
    answers = await asyncio.gather(*(send(n) for n in range(1, count)))
    return sorted([first.index, *(a.index for a in answers)])


async def covered(client: Client, index: int) -> Receipt:
    """Wait until a signed checkpoint covers ``index`` (sent by ``client``): its receipt frame."""
    return await asyncio.wait_for(client.receipt(index), WAIT)


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(hotline_cli, home, *args)


def refused(result: subprocess.CompletedProcess[str]) -> bool:
    """Exit 1 with a message, not a crash (an uncaught exception also exits 1)."""
    return result.returncode == 1 and "Traceback" not in result.stderr and bool(result.stderr)


# -- 1. HTTP API formats ---------------------------------------------------------------------------

KEY_LINE = re.compile(r"hotline\.test\+([0-9a-f]{8})\+(A[A-Za-z0-9+/]{43})\n")  # base64(0x01 || key)
CHECKPOINT = re.compile(r"hotline\.test\n(0|[1-9][0-9]*)\n([A-Za-z0-9+/]{43}=)\n\n"
                        r"\u2014 hotline\.test ([A-Za-z0-9+/]{91}=)\n")


async def test_checkpoint_and_key_are_c2sp_signed_note_and_vkey(home: Path) -> None:
    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        alice = await server.client("alice")
        last = (await send_messages(alice, 3))[-1]
        await covered(alice, last)

        status, content_type, key_text = await get(http, server, "/v1/log/key")
        assert (status, content_type) == (200, "text/plain")
        key_line = KEY_LINE.fullmatch(key_text)
        assert key_line, key_text
        assert key_text.strip() == log_key(home).to_text()  # the key `hotline init` pinned

        status, content_type, note = await get(http, server, "/v1/log/checkpoint")
        assert (status, content_type) == (200, "text/plain")
        match = CHECKPOINT.fullmatch(note)
        assert match, note
        assert int(match.group(1)) == last + 1 == DEMO_ROSTER + 3
        signature = base64.b64decode(match.group(3))
        assert signature[:4].hex() == key_line.group(1)  # the key hash of the vkey
        assert len(signature) == 4 + 64

        checkpoint = verify_checkpoint(note, NoteVerifier.from_text(key_text.strip()))
        assert (checkpoint.origin, checkpoint.size) == (ORIGIN, last + 1)
        assert independent_note_check(note, key_text.strip()) == (ORIGIN, checkpoint.size,
                                                                   checkpoint.root_hash)

        records = await entries_as(http, server, "audrey", 0, checkpoint.size)
        assert [r["index"] for r in records] == list(range(checkpoint.size))
        for record in records:
            assert set(record) == {"index", "leaf", "entry"}
            leaf = base64.b64decode(record["leaf"], validate=True)
            assert leaf == canonical_bytes(record["entry"])  # leaf bytes = JCS(entry)
            assert record["entry"]["index"] == record["index"]
        kinds = [r["entry"]["kind"] for r in records]
        assert kinds == ["enrollment"] * 7 + ["agreement"] + ["epoch-key"] * 6 + ["envelope"] * 3
        hashes = hashes_of(records)
        assert root_of(hashes) == rfc_mth(hashes) == checkpoint.root_hash

        # The history: every signed checkpoint, oldest first, each with the root of its prefix.
        history = await get_json(http, server, "/v1/log/checkpoints")
        assert [set(h) for h in history] == [{"size", "time", "note"}] * len(history)
        sizes = [h["size"] for h in history]
        assert sizes == sorted(set(sizes)) and sizes[0] == DEMO_ROSTER and sizes[-1] == checkpoint.size
        assert history[-1]["note"] == note
        for item in history:
            signed = verify_checkpoint(item["note"], log_key(home))
            assert signed.size == item["size"]
            assert signed.root_hash == rfc_mth(hashes[:signed.size])


async def test_proofs_verify_with_an_independent_rfc9162_verifier(home: Path) -> None:
    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        alice = await server.client("alice")
        last = (await send_messages(alice, 13))[-1]
        await covered(alice, last)
        checkpoint = verify_checkpoint((await get(http, server, "/v1/log/checkpoint"))[2], log_key(home))
        size = checkpoint.size
        assert size == DEMO_ROSTER + 13 and size & (size - 1)  # not a power of two: every proof shape occurs
        hashes = hashes_of(await entries_as(http, server, "audrey", 0, size))
        roots = {n: rfc_mth(hashes[:n]) for n in range(1, size + 1)}
        assert roots[size] == checkpoint.root_hash  # the root only from the signed checkpoint

        for n in (1, 2, 3, 7, 8, 9, 16, 17, size):
            for index in range(n):
                answer = await get_json(http, server, f"/v1/log/proof/inclusion?index={index}&size={n}")
                assert set(answer) == {"index", "size", "proof"}
                assert (answer["index"], answer["size"]) == (index, n)
                proof = [base64.b64decode(h, validate=True) for h in answer["proof"]]
                assert proof == rfc_path(index, hashes[:n])  # byte for byte the RFC's PATH
                assert rfc_verify_inclusion(index, n, hashes[index], proof, roots[n])
                verify_inclusion(leaf_hash=hashes[index], index=index, size=n, proof=proof,
                                 root=roots[n])
                if proof:  # the independent verifier is not vacuous
                    bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
                    assert not rfc_verify_inclusion(index, n, hashes[index], bad, roots[n])
                    with pytest.raises(LogError):
                        verify_inclusion(leaf_hash=hashes[index], index=index, size=n, proof=bad,
                                         root=roots[n])

        for new in range(1, size + 1):
            for old in range(1, new + 1):
                answer = await get_json(http, server, f"/v1/log/proof/consistency?old={old}&size={new}")
                assert set(answer) == {"old", "size", "proof"}
                assert (answer["old"], answer["size"]) == (old, new)
                proof = [base64.b64decode(h, validate=True) for h in answer["proof"]]
                assert proof == rfc_proof(old, hashes[:new])  # byte for byte the RFC's PROOF
                assert rfc_verify_consistency(old, new, roots[old], roots[new], proof)
                verify_consistency(old_size=old, new_size=new, old_root=roots[old],
                                   new_root=roots[new], proof=proof)
                if old < new:
                    assert not rfc_verify_consistency(old, new, roots[old], roots[old], proof)
                    with pytest.raises(LogError):
                        verify_consistency(old_size=old, new_size=new, old_root=roots[new],
                                           new_root=roots[new], proof=proof)


async def test_proof_requests_outside_the_log_are_refused(home: Path) -> None:
    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        size = DEMO_ROSTER
        assert (await get(http, server, f"/v1/log/proof/inclusion?index={size - 1}&size={size}"))[0] == 200
        assert (await get(http, server, f"/v1/log/proof/consistency?old=1&size={size}"))[0] == 200
        cases = {
            f"/v1/log/proof/consistency?old=0&size={size}": "log.bad_range",  # never a proof from 0
            "/v1/log/proof/consistency?old=0&size=0": "log.bad_range",
            "/v1/log/proof/consistency?old=5&size=4": "log.bad_range",
            f"/v1/log/proof/consistency?old=1&size={size + 1}": "log.bad_range",  # beyond the log
            f"/v1/log/proof/inclusion?index={size}&size={size}": "log.bad_range",  # index >= size
            "/v1/log/proof/inclusion?index=0&size=0": "log.bad_range",
            f"/v1/log/proof/inclusion?index=0&size={size + 1}": "log.bad_range",  # beyond the log
            f"/v1/log/proof/inclusion?index=-1&size={size}": "http.bad_parameter",
            f"/v1/log/proof/inclusion?index=01&size={size}": "http.bad_parameter",
            f"/v1/log/proof/inclusion?index=1.0&size={size}": "http.bad_parameter",
            f"/v1/log/proof/inclusion?size={size}": "http.bad_parameter",
            "/v1/log/proof/consistency?old=1": "http.bad_parameter",
            "/v1/log/proof/consistency?old=1&size=99999999999999999999": "http.bad_parameter",
        }
        for path, code in cases.items():
            status, content_type, text = await get(http, server, path)
            assert (status, content_type) == (400, "application/json"), (path, text)
            answer = json.loads(text)
            assert set(answer) == {"code", "message"} and answer["code"] == code, (path, answer)


async def test_entries_need_a_valid_signed_authorization(home: Path) -> None:
    async with running_server(home) as server, aiohttp.ClientSession() as http:
        query = "start=0&end=2"
        path = f"/v1/log/entries?{query}"
        stranger = SigningKey.generate()
        earlier = datetime.now(UTC) - timedelta(hours=1)
        cases: dict[str, tuple[str | None, str]] = {
            "no header": (None, "auth.missing"),
            "not our scheme": ("Bearer abc", "auth.malformed"),
            "signed for another query": (authorization(home, "audrey", "start=0&end=1"),
                                         "auth.bad_signature"),
            "signed for another path": (authorization(home, "audrey", query, path="/v1/log/other"),
                                        "auth.bad_signature"),
            "signed for another origin": (authorization(home, "audrey", query, origin="other.example"),
                                          "auth.bad_signature"),
            "an hour old": (authorization(home, "audrey", query, now=earlier), "auth.clock_skew"),
            "key nobody enrolled": (authorization(home, "x", query, key=stranger), "auth.unknown_key"),
        }
        good = authorization(home, "audrey", query)
        alice_sig = re.search(r'sig="([^"]+)"', authorization(home, "alice", query))
        assert alice_sig is not None
        cases["audrey's key id, alice's signature"] = (
            re.sub(r'sig="[^"]+"', f'sig="{alice_sig.group(1)}"', good), "auth.bad_signature")
        for what, (header, code) in cases.items():
            status, _, text = await get(http, server, path, {"Authorization": header} if header else None)
            assert status == 401, (what, text)
            assert json.loads(text)["code"] == code, (what, text)
        status, _, text = await get(http, server, path, {"Authorization": good})
        assert status == 200 and [r["index"] for r in json.loads(text)] == [0, 1]


def north_mediator_agreement(home: Path) -> dict[str, Any]:
    """A second channel that north and mediator agree on, and south is not part of."""
    north = load_private_key(home / "keys" / "authority-north.pem")
    mediator = load_private_key(home / "keys" / "authority-mediator.pem")
    message = load_templates(home / "protocols").latest("message")
    assert message is not None
    doc = {"type": "agreement", "channel": "north-mediator", "version": 1,
           "parties": [{"id": "north", "authority": north.key_id},
                       {"id": "mediator", "authority": mediator.key_id}],
           "templates": [to_json(message.ref())], "heartbeat": {"interval": 10, "grace": 10},
           "auditors": [{"id": "audrey", "authority": mediator.key_id}],
           "witnesses": [{"id": "north-agent", "authority": north.key_id}],
           "effective": format_time(datetime.now(UTC))}
    return {"document": doc, "sigs": [k.sign(domain=Domain.AGREEMENT, obj=doc) for k in (north, mediator)]}


@pytest.mark.slow
async def test_members_read_their_channels_and_only_hashes_of_others(home: Path) -> None:
    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        async with http.post(http_url(server, "/v1/roster"),
                             data=dumps(north_mediator_agreement(home))) as response:
            assert response.status == 200 and (await response.json())["index"] == DEMO_ROSTER
        alice = await server.client("alice")
        private = await alice.send(channel="north-mediator", template="message",
                                   body={"text": "north to mediator only"})
        public = await alice.send(channel="north-south", template="message",
                                  body={"text": "to both sides"})
        assert (private.index, public.index) == (DEMO_ROSTER + 1, DEMO_ROSTER + 2)
        await covered(alice, public.index)
        size = public.index + 1

        full = {name: await entries_as(http, server, name, 0, size)
                for name in ("alice", "carol", "audrey", "bob")}
        for name in ("alice", "carol", "audrey"):  # north and mediator are in both channels
            assert all(set(r) == {"index", "leaf", "entry"} for r in full[name]), name
        seen_by_bob = full["bob"]
        hidden = {DEMO_ROSTER, private.index}  # the north-mediator agreement and message
        for record, reference in zip(seen_by_bob, full["audrey"], strict=True):
            if record["index"] in hidden:
                assert set(record) == {"index", "hash"}
                assert record["hash"] == base64.b64encode(
                    leaf_hash(base64.b64decode(reference["leaf"]))).decode()
            else:
                assert record == reference  # roster documents and north-south: leaf and entry
        assert private.id not in json.dumps(seen_by_bob)  # (its text is sealed to north and mediator)
        # With hashes only, bob still checks the signed root over the whole log.
        checkpoint = verify_checkpoint((await get(http, server, "/v1/log/checkpoint"))[2], log_key(home))
        assert checkpoint.size == size
        assert rfc_mth(hashes_of(seen_by_bob)) == checkpoint.root_hash

        await witness_all(home, server.url)
        result = await cli(home, "audit", "verify", "--as", "bob", "--server", server.url, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert (report["ok"], report["size"]) == (True, size)
        assert (report["hidden"], report["readable"]) == (2, size - 2)
        assert (report["witnessed_size"], report["unwitnessed"], report["required_witnesses"]) == (
            size, 0, 3)
        assert report["witnesses"] == {w: size for w in ("mediator/mediator-agent",
                                                         "north/north-agent", "south/south-agent")}


# -- 2. receipts -------------------------------------------------------------------------------------

def altered(raw: bytes, position: int) -> bytes:
    """``raw`` with the byte at ``position`` replaced by another printable character."""
    replacement = b"A" if raw[position] != ord("A") else b"B"
    return raw[:position] + replacement + raw[position + 1:]


@pytest.mark.slow
async def test_receipt_verifies_offline_and_every_altered_byte_is_refused(home: Path) -> None:
    async with running_server(home, **FAST) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        await send_messages(alice, 4, prefix="before")
        accepted = await alice.send(channel="north-south", template="message",
                                    body={"text": "Receipt wanted", "lang": "en"}, precedence="FLASH")
        received = await covered(alice, accepted.index)
    frame = msgspec.to_builtins(received)
    assert set(frame) == {"type", "index", "size", "leaf", "proof", "checkpoint"}
    text = bundle_from_frame(received).to_text()
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == f"extra {frame['leaf']}" and lines[2] == f"index {accepted.index}"
    assert lines[3:3 + len(frame["proof"])] == frame["proof"] and len(frame["proof"]) >= 2
    assert text.endswith("\n\n" + frame["checkpoint"])

    checkpoint, entry = verify_receipt(text, log_key(home))
    assert isinstance(entry, EnvelopeEntry)
    assert (checkpoint.size, entry.index) == (frame["size"], accepted.index)
    assert entry.envelope.id == accepted.id
    assert body_seen(home, bob, Delivered(entry.index, entry, entry.envelope)) == {
        "text": "Receipt wanted", "lang": "en"}
    # The independent verifier agrees, with the root from the independently checked note.
    _, size, root = independent_note_check(frame["checkpoint"], log_key(home).to_text())
    proof = [base64.b64decode(h) for h in frame["proof"]]
    leaf = base64.b64decode(frame["leaf"])
    assert rfc_verify_inclusion(accepted.index, size, leaf_hash(leaf), proof, root)

    raw = text.encode()
    for position in range(len(raw)):
        for candidate in (altered(raw, position), raw[:position] + bytes([raw[position] ^ 1])
                          + raw[position + 1:]):
            with pytest.raises(LogError):
                verify_receipt(candidate, log_key(home))
    with pytest.raises(LogError):  # another log's key
        verify_receipt(text, NoteVerifier(name=ORIGIN, public_key=SigningKey.generate().public_key.raw))


def alter_line(text: str, line_number: int, column: int) -> str:
    """``text`` with one character of one line changed (a digit to the next digit)."""
    lines = text.split("\n")
    line = lines[line_number]
    column %= len(line)
    new = "A" if line[column] != "A" else "B"
    if line[column].isdigit():
        new = str((int(line[column]) + 1) % 10)
    lines[line_number] = line[:column] + new + line[column + 1:]
    return "\n".join(lines)


@pytest.mark.slow
async def test_send_receipt_and_audit_receipt_cli(home: Path, tmp_path: Path) -> None:
    receipt = tmp_path / "sent.tlog-proof"
    async with running_server(home, **FAST) as server:
        sent = await cli(home, "send", "--as", "alice", "--server", server.url, "--channel",
                         "north-south", "--field", "text=Keep this receipt", "--receipt", str(receipt))
        assert sent.returncode == 0, sent.stderr
        assert f"receipt saved to {receipt}" in sent.stdout
    text = receipt.read_text()
    assert ProofBundle.from_text(text).index == DEMO_ROSTER

    # Offline: the server is gone; only the pinned log key is needed.
    ok, by_key = await asyncio.gather(
        cli(home, "audit", "receipt", str(receipt), "--as", "bob"),
        cli(home, "audit", "receipt", str(receipt), "--log-key", log_key(home).to_text()))
    for result in (ok, by_key):
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"OK: entry {DEMO_ROSTER} (envelope, id ")
        assert "sender alice" in result.stdout and f"log {ORIGIN}" in result.stdout

    lines = text.split("\n")
    index_line = lines.index(f"index {DEMO_ROSTER}")
    note = lines.index("") + 1  # origin, size, root, "", the log's signature
    assert lines[note:note + 5] == [ORIGIN, str(DEMO_ROSTER + 1), lines[note + 2], "", lines[note + 4]]
    variants = {
        "index line": alter_line(text, index_line, -1),
        "proof hash": alter_line(text, index_line + 1, 5),
        "extra (the leaf)": alter_line(text, 1, 40),
        "checkpoint size": alter_line(text, note + 1, 0),
        "checkpoint root": alter_line(text, note + 2, 3),
        "checkpoint signature": alter_line(text, note + 4, 30),
    }
    files = {}
    for n, (what, variant) in enumerate(variants.items()):
        assert variant != text, what
        files[what] = tmp_path / f"altered-{n}.tlog-proof"
        files[what].write_text(variant)
    files["not UTF-8"] = tmp_path / "altered-utf8.tlog-proof"
    files["not UTF-8"].write_bytes(text.encode().replace(b"index", b"ind\xffx"))
    results = await asyncio.gather(*(cli(home, "audit", "receipt", str(path), "--as", "bob")
                                     for path in files.values()))
    for what, result in zip(files, results, strict=True):
        assert refused(result), (what, result.returncode, result.stderr)
        assert result.stderr.startswith("FAILED: "), (what, result.stderr)
    wrong_key = NoteVerifier(name=ORIGIN, public_key=SigningKey.generate().public_key.raw).to_text()
    result = await cli(home, "audit", "receipt", str(receipt), "--log-key", wrong_key)
    assert refused(result) and result.stderr.startswith("FAILED: ")


# -- 3. witnesses ---------------------------------------------------------------------------------------

def witness_verifier(home: Path, name: str) -> CosignatureVerifier:
    return CosignatureVerifier(name=name, public_key=Profile.load(home, name).signing_key().public_key.raw)


async def witness(home: Path, server: Running, name: str = "north-agent") -> subprocess.CompletedProcess[str]:
    return await cli(home, "witness", "--as", name, "--once", "--server", server.url)


@pytest.mark.slow
async def test_witness_cosigns_each_new_checkpoint(home: Path) -> None:
    state = home / "state" / "north-agent.witness.json"
    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        before = int(datetime.now(UTC).timestamp())
        first = await witness(home, server)
        assert first.returncode == 0, first.stderr
        note = (await get(http, server, "/v1/log/checkpoint"))[2]
        assert verify_checkpoint(note, log_key(home)).size == DEMO_ROSTER
        assert [line for line in note.split("\n") if line.startswith("\u2014 ")][1].startswith(
            "\u2014 north-agent ")
        stamps = verify_cosignatures(note, [witness_verifier(home, "north-agent")])
        assert set(stamps) == {"north-agent"} and before - 1 <= stamps["north-agent"] <= before + 60
        assert json.loads(state.read_text())["size"] == DEMO_ROSTER

        saved = state.read_bytes()
        again = await witness(home, server)  # nothing new: a no-op
        assert again.returncode == 0, again.stderr
        assert state.read_bytes() == saved
        assert (await get(http, server, "/v1/log/checkpoint"))[2] == note

        alice = await server.client("alice")
        last = (await send_messages(alice, 3))[-1]
        await covered(alice, last)
        north, south = await asyncio.gather(witness(home, server), witness(home, server, "south-agent"))
        assert north.returncode == 0 and south.returncode == 0, north.stderr + south.stderr
        assert json.loads(state.read_text())["size"] == last + 1  # proven consistent with the roster's
        note = (await get(http, server, "/v1/log/checkpoint"))[2]
        assert verify_checkpoint(note, log_key(home)).size == last + 1
        verifiers = [witness_verifier(home, n) for n in ("north-agent", "south-agent", "mediator-agent")]
        assert set(verify_cosignatures(note, verifiers)) == {"north-agent", "south-agent"}
        history = {h["size"]: h["note"] for h in await get_json(http, server, "/v1/log/checkpoints")}
        assert set(verify_cosignatures(history[DEMO_ROSTER], verifiers)) == {"north-agent"}

        # The agreement names three witnesses; mediator's has not cosigned: by default (all) the
        # audit fails saying so, with two of three it passes.
        audit = await cli(home, "audit", "verify", "--as", "audrey", "--server", server.url)
        assert refused(audit) and audit.stderr == (
            "FAILED: no checkpoint is cosigned by all 3 named witnesses: mediator/mediator-agent "
            f"cosigned none (cosigned: north/north-agent up to {last + 1}, south/south-agent up to "
            f"{last + 1}); a log rolled back or forked behind the witnesses' backs shows no "
            "cosignature of theirs, or they have not run yet\n")
        audit = await cli(home, "audit", "verify", "--as", "audrey", "--server", server.url,
                          "--require-witnesses", "2")
        assert audit.returncode == 0, audit.stderr
        assert f"OK: log {ORIGIN}: {last + 1} entries verified" in audit.stdout
        assert (f"witnesses (largest checkpoint cosigned): mediator/mediator-agent none, "
                f"north/north-agent up to {last + 1} (2 checkpoints), south/south-agent up to "
                f"{last + 1} (1 checkpoint)") in audit.stdout


@pytest.mark.slow
async def test_witnessed_gives_the_latest_checkpoint_each_witness_cosigned(home: Path) -> None:
    """What a member's console needs to tell which entries every witness has seen, without
    paging through the checkpoint history; it survives a restart."""
    verifiers = [witness_verifier(home, n) for n in ("north-agent", "south-agent", "mediator-agent")]

    def seen(answer: list[dict[str, Any]]) -> dict[int, set[str]]:
        return {item["size"]: set(verify_cosignatures(item["note"], verifiers)) for item in answer
                if verify_checkpoint(item["note"], log_key(home)).size == item["size"]}

    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        assert await get_json(http, server, "/v1/log/witnessed") == []
        assert (await witness(home, server)).returncode == 0
        alice = await server.client("alice")
        last = (await send_messages(alice, 2))[-1]
        await covered(alice, last)
        assert (await witness(home, server, "south-agent")).returncode == 0
        expected = {DEMO_ROSTER: {"north-agent"}, last + 1: {"south-agent"}}
        assert seen(await get_json(http, server, "/v1/log/witnessed")) == expected
    async with running_server(home, **FAST) as server, aiohttp.ClientSession() as http:
        assert seen(await get_json(http, server, "/v1/log/witnessed")) == expected


@pytest.mark.slow
async def test_witness_alarms_on_rollback_split_view_and_fork(home: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    saved.mkdir()
    state = home / "state" / "north-agent.witness.json"
    async with running_server(home, **FAST):
        pass  # the roster is logged and its checkpoint (DEMO_ROSTER) signed
    copy_database(home, saved)

    async with running_server(home, **FAST) as server:
        alice = await server.client("alice")
        last = (await send_messages(alice, 3, prefix="history A"))[-1]
        await covered(alice, last)
        cosigned = await witness(home, server)
        assert cosigned.returncode == 0, cosigned.stderr
    assert json.loads(state.read_text())["size"] == last + 1
    witnessed = state.read_bytes()

    copy_database(saved, home)  # really roll the host back to the older database
    async with running_server(home, **FAST) as server:
        rolled_back = await witness(home, server)
        assert refused(rolled_back), rolled_back.stderr
        assert "ALARM: rollback" in rolled_back.stderr and f"size {DEMO_ROSTER}" in rolled_back.stderr

        alice = await server.client("alice")
        again = (await send_messages(alice, 3, prefix="history B"))[-1]
        assert again == last  # the same size, another history
        await covered(alice, again)
        split = await witness(home, server)
        assert refused(split), split.stderr
        assert "ALARM: split view" in split.stderr

        more = await alice.send(channel="north-south", template="message", body={"text": "fork"})
        await covered(alice, more.index)
        fork = await witness(home, server)
        assert refused(fork), fork.stderr
        assert "ALARM: inconsistent" in fork.stderr
        assert state.read_bytes() == witnessed  # the alarm repeats until a person looks

        async with aiohttp.ClientSession() as http:
            note = (await get(http, server, "/v1/log/checkpoint"))[2]
        assert "north-agent" not in note


def forged(line: str) -> str:
    """The same cosignature line with its last signature byte changed."""
    name, encoded = line.removesuffix("\n").removeprefix("\u2014 ").split(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    return f"\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"


async def test_cosignature_by_anyone_but_a_named_witness_is_refused(home: Path) -> None:
    async with running_server(home) as server, aiohttp.ClientSession() as http:
        note = (await get(http, server, "/v1/log/checkpoint"))[2]
        body = parse_note(note).body
        now = int(datetime.now(UTC).timestamp())

        async def post(size: Any, line: Any) -> tuple[int, dict[str, Any]]:
            async with http.post(http_url(server, "/v1/log/cosignature"),
                                 data=dumps({"size": size, "cosignature": line})) as response:
                return response.status, await response.json()

        def key(name: str) -> SigningKey:
            return Profile.load(home, name).signing_key()

        impostor = SigningKey.generate()
        cases = {
            "the auditor": (cosign(body, name="audrey", key=key("audrey"), timestamp=now),
                            "log.unknown_witness"),
            "a liaison": (cosign(body, name="alice", key=key("alice"), timestamp=now),
                          "log.unknown_witness"),
            "a stranger": (cosign(body, name="mallory", key=impostor, timestamp=now),
                           "log.unknown_witness"),
            # The key name and key hash pick the witness's key: another key is no witness's.
            "a stranger using an agent's name": (
                cosign(body, name="north-agent", key=impostor, timestamp=now), "log.unknown_witness"),
            "an agent's key under another agent's name": (
                cosign(body, name="south-agent", key=key("north-agent"), timestamp=now),
                "log.unknown_witness"),
            "a witness's key name and hash on a forged signature": (
                forged(cosign(body, name="north-agent", key=key("north-agent"), timestamp=now)),
                "log.bad_cosignature"),
            "not a signature line": ("north-agent says ok", "log.bad_cosignature"),
        }
        for what, (line, code) in cases.items():
            status, answer = await post(DEMO_ROSTER, line)
            assert (status, answer["code"]) == (400, code), (what, answer)
        genuine = cosign(body, name="north-agent", key=key("north-agent"), timestamp=now)
        status, answer = await post(DEMO_ROSTER - 1, genuine)  # no checkpoint of that size
        assert (status, answer["code"]) == (400, "log.no_checkpoint")
        status, answer = await post(str(DEMO_ROSTER), genuine)
        assert (status, answer["code"]) == (400, "log.bad_cosignature")
        assert await post(DEMO_ROSTER, genuine) == (200, {"added": True})
        assert await post(DEMO_ROSTER, genuine) == (200, {"added": False})

        note = (await get(http, server, "/v1/log/checkpoint"))[2]
        signers = [line.split(" ")[1] for line in note.split("\n") if line.startswith("\u2014 ")]
        assert signers == [ORIGIN, "north-agent"]


async def test_a_witness_state_left_by_the_earlier_release_is_honoured(home: Path) -> None:
    """The upgrade keeps a deployed witness's memory: a state file in the format the earlier
    release wrote is read, the next checkpoint is proven consistent with it and cosigned, and
    a state naming another root at that size is a split view, never forgotten."""
    state = home / "state" / "north-agent.witness.json"
    async with running_server(home, **FAST) as server:
        log = LogClient(http_base(server.url))
        first = verify_checkpoint(await asyncio.to_thread(log.checkpoint), log_key(home))
        earlier = {"size": first.size, "root": base64.b64encode(first.root_hash).decode()}
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps(earlier))  # as WitnessState.save wrote it
        alice = await server.client("alice")
        last = (await send_messages(alice, 2))[-1]
        await covered(alice, last)
        assert await asyncio.to_thread(witness_once, home, server.url, "north-agent") == last + 1

        forged = {"size": last + 1, "root": base64.b64encode(bytes(32)).decode()}
        state.write_text(json.dumps(forged))
        with pytest.raises(WitnessAlarm, match="split view"):
            await asyncio.to_thread(witness_once, home, server.url, "north-agent")
        assert json.loads(state.read_text()) == forged  # the alarm keeps the state
