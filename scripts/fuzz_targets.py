"""Fuzz targets: every parser a peer or the host can reach, each behind one entry function
``target(data: bytes) -> None``, and a seed corpus of real documents for each.

The rule every target checks is the one the whole code base promises (hotline/errors.py): any
input gives a value or exactly one typed error (a ``HotlineError`` with a dotted code). A target
returns normally or raises ``HotlineError``; anything else escaping is a defect, and
``scripts/fuzz.py`` reports it as a crash. ``tests/unit/test_fuzz_targets.py`` runs every target
over its seeds without atheris, so this file cannot rot unnoticed.

The seeds are real documents, signed with real Ed25519 keys derived from fixed seeds (test keys,
never a deployment's): a mutated seed reaches past the shape checks into signature checks,
roster rules and proof verification. No private key is written anywhere.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import msgspec

from hotline.audit.records import decode_checkpoint, decode_entry, decode_header
from hotline.canonical import canonical_bytes, parse
from hotline.client.receipts import bundle_from_frame, verify_receipt
from hotline.envelope import Envelope, Kind
from hotline.errorcodes import Code
from hotline.errors import CODE_FORM, HotlineError
from hotline.httpauth import parse_header, sign_request, verify_request
from hotline.keys import PublicKey, Signature, SigningKey, b64encode
from hotline.norms.agreement import Agreement
from hotline.roster import (
    DOCUMENT_TYPES,
    Role,
    Roster,
    decode_document,
    enrollment,
    revocation,
    sign_document,
)
from hotline.server.logapi import query_int
from hotline.times import format_time
from hotline.tlog.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from hotline.tlog.cosignature import (
    CosignatureVerifier,
    add_cosignatures,
    cosign,
    split_cosignatures,
    verify_cosignatures,
)
from hotline.tlog.merkle import Frontier, inclusion_proof, leaf_hash
from hotline.tlog.note import NoteSignature, NoteVerifier, parse_note, parse_vkey
from hotline.tlog.proof_bundle import ProofBundle, verify_bundle
from hotline.verification import verify_envelope_entry
from hotline.wire import frames
from hotline.wire.frames import Challenge, Welcome, encode
from hotline.wire.session import ClientSession, ServerSession, ServerState

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NOW_TEXT = format_time(NOW)
ORIGIN = "hotline.test"
NONCE = "bm9uY2Utb2YtdGhlLWZ1enplcg"
CHANNEL = "north-south"
MAX_FRAME = 64 * 1024


def key(label: str) -> SigningKey:
    """A test key from a fixed seed (the same on every run, so the corpus is reproducible)."""
    return SigningKey.from_seed(hashlib.sha256(f"hotline-fuzz/{label}".encode()).digest())


PARTIES = ("north", "south", "mediator")
AUTH = {p: key(f"authority/{p}") for p in PARTIES}
MEMBERS = {"alice": ("north", Role.LIAISON), "bob": ("south", Role.LIAISON),
           "north-agent": ("north", Role.AGENT), "audrey": ("mediator", Role.AUDITOR)}
KEYS = {m: key(f"member/{m}") for m in MEMBERS}
LOG = key("log")
LOG_VERIFIER = NoteVerifier(ORIGIN, LOG.public_key.raw)
WITNESS = CosignatureVerifier("north-agent", KEYS["north-agent"].public_key.raw)


class World:
    """Valid documents of a small deployment: the roster, envelopes, entries, a cosigned
    checkpoint and a proof bundle. Built once per process."""

    def __init__(self) -> None:
        t0 = NOW - timedelta(days=30)
        self.enrollments = [
            sign_document(enrollment(party=party, member=m, role=role, key=KEYS[m].public_key,
                                     not_before=t0, not_after=t0 + timedelta(days=365)),
                          AUTH[party]).to_json()
            for m, (party, role) in MEMBERS.items()]
        self.agreement = {
            "type": "agreement", "channel": CHANNEL, "version": 1,
            "parties": [{"id": p, "authority": AUTH[p].key_id} for p in PARTIES],
            "templates": [{"id": "message", "version": 1, "sha256": hashlib.sha256(b"t").hexdigest()}],
            "heartbeat": {"interval": 30, "grace": 90},
            "auditors": [{"id": "audrey", "authority": AUTH["mediator"].key_id}],
            "witnesses": [{"id": "north-agent", "authority": AUTH["north"].key_id}],
            "effective": "2026-11-01T00:00:00.000Z",
            "catalogue": [{"number": 1, "code": "CALM", "text": {"en": "Stand down", "ru": "Отбой"}}],
        }
        self.agreed = sign_document(decode_document(self.agreement), *AUTH.values()).to_json()
        self.agreed_v2 = sign_document(decode_document({**self.agreement, "version": 2}),
                                       *AUTH.values()).to_json()
        self.revoked = sign_document(revocation(party="south", member="bob", key_id=KEYS["bob"].key_id,
                                                revoked_at=NOW), AUTH["south"]).to_json()
        self.roster = Roster(authorities={p: k.public_key for p, k in AUTH.items()})
        for signed in [*self.enrollments, self.agreed]:
            self.roster.add(signed)

        self.message = Envelope.build(
            id="AAAAAAAAAAAAAAAAAAAAAA", kind=Kind.MESSAGE, channel=CHANNEL, sender="alice",
            template="message", precedence="FLASH", created=NOW - timedelta(minutes=1),
            body={"text": "Request consultation at 0900Z", "n": 1, "tags": ["a", None, True]})
        self.ack = Envelope.build(
            id="BBBBBBBBBBBBBBBBBBBBBA", kind=Kind.ACK, channel=CHANNEL, sender="bob",
            template="message", precedence="FLASH", created=NOW, body={"ack": "received"},
            reply_to=self.message.id)
        self.entries = [self._entry(0, self.message, "north", KEYS["alice"]),
                        self._entry(1, self.ack, "south", KEYS["bob"])]
        self.overdue = {"index": 2, "time": "2026-12-01T09:30:00.000Z", "kind": "overdue",
                        "channel": CHANNEL, "ref": self.message.id, "entry": 0,
                        "template": "message", "precedence": "FLASH",
                        "due": "2026-12-01T09:29:00.000Z", "ack": "understood",
                        "missing": ["south", "mediator"]}

        leaves = [canonical_bytes(e) for e in [*self.entries, self.overdue]]
        frontier, nodes = Frontier(), {}
        for leaf in leaves:
            nodes.update({(lv, ix): h for lv, ix, h in frontier.append(leaf_hash(leaf))})
        self.leaf = leaves[1]
        self.checkpoint = Checkpoint(ORIGIN, frontier.size, frontier.root(), ("ext line",))
        self.note = sign_checkpoint(self.checkpoint, LOG)
        self.cosignature = cosign(self.checkpoint.body(), name="north-agent",
                                  key=KEYS["north-agent"], timestamp=int(NOW.timestamp()))
        self.cosigned = add_cosignatures(self.note, [self.cosignature])
        proof = tuple(inclusion_proof(1, frontier.size, nodes))
        self.bundle = ProofBundle(1, proof, self.cosigned, extra=b"envelope id").to_text()
        self.receipt = {"index": 1, "size": frontier.size, "proof": [b64encode(h) for h in proof],
                        "checkpoint": self.cosigned, "leaf": b64encode(self.leaf)}

    def roster_copy(self) -> Roster:
        """A roster holding the deployment that a document may change without changing this
        one's (a revocation sets ``revoked_at`` on the enrollment it names)."""
        return Roster(authorities=self.roster.authorities,
                      enrollments={k: dataclasses.replace(e) for k, e in self.roster.enrollments.items()},
                      agreements=dict(self.roster.agreements))

    @staticmethod
    def _entry(index: int, envelope: Envelope, party: str, signer: SigningKey) -> dict[str, Any]:
        return {"index": index, "time": NOW_TEXT, "kind": "envelope", "channel": CHANNEL,
                "party": party, "envelope": envelope.to_json(), "sig": envelope.sign(signer)}


@cache
def world() -> World:
    return World()


def _text(data: bytes) -> str:
    """What a peer's bytes become as text: invalid UTF-8 turns into lone surrogates, which a
    JSON text can also carry as ``\\udc80`` escapes."""
    return data.decode("utf-8", "surrogateescape")


# -- targets ------------------------------------------------------------------------------------

def target_canonical(data: bytes) -> None:
    """Strict JSON: whatever parses re-encodes canonically, and the canonical form parses back
    to the same bytes."""
    value = parse(data, max_bytes=MAX_FRAME)
    encoded = canonical_bytes(value)
    if canonical_bytes(parse(encoded)) != encoded:
        raise AssertionError("canonical bytes do not round-trip")
    parse(_text(data), max_bytes=MAX_FRAME)


def target_frames(data: bytes) -> None:
    """One WebSocket frame to every session state on both sides, then what a client does with a
    delivered entry (host notes, overdue notices, verification against the roster). Raises
    the authenticated server session's answer, the main path, last."""
    text = _text(data)
    w = world()
    server = ServerSession(origin=ORIGIN, nonce=NONCE, now=NOW, clock_skew=timedelta(seconds=60),
                           max_frame_bytes=MAX_FRAME)
    _typed(server.receive, text, now=NOW)
    _typed(server.receive, data, now=NOW)
    for state in ("start", "ready"):
        client = ClientSession(key=KEYS["alice"], origin=ORIGIN, max_frame_bytes=MAX_FRAME)
        if state == "ready":
            client.receive(encode(Challenge(nonce=NONCE, origin=ORIGIN, server_time=NOW_TEXT)))
            client.receive(encode(Welcome(member="alice", party="north", role="liaison",
                                          channels=[CHANNEL], log_size=3)))
        event = _typed(client.receive, text)
        if state == "ready" and not isinstance(event, HotlineError):
            _client_route(w, event)
    ready = ServerSession(origin=ORIGIN, nonce=NONCE, now=NOW, clock_skew=timedelta(seconds=60),
                          max_frame_bytes=MAX_FRAME)
    ready.state = ServerState.READY
    ready.receive(text, now=NOW)


def _client_route(w: World, frame: Any) -> None:
    """What the client does with a decoded frame's content (hotline.client.connection)."""
    if isinstance(frame, frames.Roster):
        roster = w.roster_copy()
        for signed in frame.documents:
            _typed(roster.add, signed)
    elif isinstance(frame, frames.Deliver):
        _typed(verify_envelope_entry, w.roster, frame.entry, index=frame.index)
    elif isinstance(frame, frames.Checkpoint):
        _typed(verify_checkpoint, frame.note, LOG_VERIFIER)
    elif isinstance(frame, frames.Receipt):
        bundle = _typed(bundle_from_frame, frame)
        if isinstance(bundle, ProofBundle):
            _typed(verify_receipt, bundle.to_text(), LOG_VERIFIER)


def target_roster(data: bytes) -> None:
    """A signed roster document, as ``POST /v1/roster`` takes it and a ``roster`` frame carries
    it: checked against a roster that already holds the deployment."""
    signed = _signed(parse(data, max_bytes=MAX_FRAME))
    w = world()
    w.roster.check(signed)  # does not change the roster
    w.roster_copy().add(signed)
    if isinstance(signed, dict) and isinstance(signed.get("document"), dict):
        _typed(Agreement.from_json, signed["document"])


def _signed(value: Any) -> Any:
    """A document with an empty ``sigs`` list signed here by the authority of the party it names
    (every authority for an agreement): how a mutated document gets past the signature check
    to the roster's rules. Anything else is checked as it came."""
    if not (isinstance(value, dict) and value.get("sigs") == [] and isinstance(value.get("document"), dict)):
        return value
    doc = value["document"]
    if doc.get("type") not in ("enrollment", "revocation", "agreement"):
        return value
    party = doc.get("party")
    signers = [AUTH[party]] if isinstance(party, str) and party in AUTH else list(AUTH.values())
    try:
        return {"document": doc, "sigs": [k.sign(domain=DOCUMENT_TYPES[doc["type"]], obj=doc)
                                          for k in signers]}
    except HotlineError:  # not signable JSON (a float, a lone surrogate): checked as it came
        return value


def target_envelope(data: bytes) -> None:
    """A submitted envelope and its signature (``submit``), checked as the server does."""
    obj = parse(data, max_bytes=MAX_FRAME)
    if not isinstance(obj, dict):
        obj = {"envelope": obj, "sig": None}
    envelope = Envelope.from_json(obj.get("envelope"))
    if Envelope.from_json(envelope.to_json()).canonical != envelope.canonical:
        raise AssertionError("envelope does not round-trip")
    _typed(Signature.from_json, obj.get("sig"))
    _typed(PublicKey.from_json, obj.get("key"))
    if envelope.sender in KEYS:
        sig = obj.get("sig") or envelope.sign(KEYS[envelope.sender])  # null: signed here
        envelope.verify(KEYS[envelope.sender].public_key, sig)


def target_note(data: bytes) -> None:
    """A signed checkpoint note with cosignatures, a signature line, a verifier key."""
    w = world()
    _typed(verify_checkpoint, data, LOG_VERIFIER)
    _typed(verify_cosignatures, data, [WITNESS])
    _typed(split_cosignatures, data)
    _typed(add_cosignatures, w.note, [_text(data)])
    _typed(Checkpoint.from_body, data)
    _typed(NoteSignature.from_line, _text(data))
    _typed(parse_vkey, _text(data))
    _typed(NoteVerifier.from_text, _text(data))
    parse_note(data)


def target_bundle(data: bytes) -> None:
    """An offline receipt (``.tlog-proof``), parsed and verified against the log key."""
    w = world()
    bundle = _typed(ProofBundle.from_text, data)
    if isinstance(bundle, ProofBundle) and ProofBundle.from_text(bundle.to_text()) != bundle:
        raise AssertionError("bundle does not round-trip")
    verify_bundle(data, leaf=w.leaf, log_verifier=LOG_VERIFIER)


def target_http(data: bytes) -> None:
    """What an HTTP caller controls: query parameters, the ``Authorization`` header, the log
    API's answers as a client decodes them (the audit records)."""
    text = _text(data)
    for name in ("start", "end", "index"):
        _typed(query_int, text, name)
    _typed(parse_header, text)
    _typed(verify_request, text, key=KEYS["audrey"].public_key, method="GET",
           path="/v1/log/entries", query="start=0&end=2", origin=ORIGIN, now=NOW,
           skew=timedelta(seconds=60))
    value = parse(data, max_bytes=MAX_FRAME)
    for decode in (decode_entry, decode_header, lambda v: decode_checkpoint(v, source="fuzz")):
        _typed(decode, value)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "frames": target_frames, "roster": target_roster, "canonical": target_canonical,
    "envelope": target_envelope, "note": target_note, "bundle": target_bundle, "http": target_http,
}


def _typed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; a typed error is an answer (returned), anything else propagates."""
    try:
        return fn(*args, **kwargs)
    except HotlineError as exc:
        check_typed(exc)
        return exc


def check_typed(exc: BaseException) -> None:
    """A typed error is a ``HotlineError`` with a dotted code and a text message."""
    code = getattr(exc, "code", None)
    if (not isinstance(exc, HotlineError) or not isinstance(code, str) or not CODE_FORM.fullmatch(code)
            or not isinstance(exc.message, str)):
        raise AssertionError(f"typed error without a dotted code: {type(exc).__name__} {code!r}")


# -- seeds --------------------------------------------------------------------------------------

def seeds(target: str) -> list[bytes]:
    """The seed corpus of ``target``: valid documents, and a few near misses."""
    w = world()
    auth = msgspec.to_builtins(ClientSession(key=KEYS["alice"], origin=ORIGIN).auth_frame(
        _challenge(), now=NOW))
    entry = {**w.entries[0], "expects": {"ack": "understood", "from": ["south"],
                                         "due": "2026-12-01T09:29:00.000Z"}}
    message_sig = w.message.sign(KEYS["alice"])
    corpus: dict[str, list[Any]] = {
        "frames": [
            auth, {"type": "submit", "envelope": w.message.to_json(), "sig": message_sig},
            {"type": "resume", "channel": CHANNEL, "after": -1, "req": 1},
            {"type": "fetch", "index": 0, "req": 2}, {"type": "ping", "data": "x"},
            {"type": "challenge", "nonce": NONCE, "origin": ORIGIN, "server_time": NOW_TEXT},
            {"type": "deliver", "index": 0, "entry": entry},
            {"type": "deliver", "index": 1, "entry": w.entries[1]},
            {"type": "deliver", "index": 2, "entry": w.overdue},
            {"type": "roster", "documents": [*w.enrollments, w.agreed, w.revoked]},
            {"type": "accepted", "id": w.message.id, "index": 0, "duplicate": False, "req": 3},
            {"type": "receipt", **w.receipt},
            {"type": "checkpoint", "note": w.cosigned},
            {"type": "error", "code": Code.FRAME_MALFORMED, "message": "m", "ref": w.message.id},
            {"type": "health", "channel": CHANNEL, "state": "ok", "since": NOW_TEXT,
             "interval": 30, "parties": {"north": "ok"}},
        ],
        "roster": [*w.enrollments, w.agreed, w.agreed_v2, w.revoked,
                   *({"document": signed["document"], "sigs": []}
                     for signed in (w.enrollments[0], w.agreed_v2, w.revoked))],
        "canonical": [w.agreement, w.entries, {"a": [1, -2**53 + 1, "\u00e9\U0001f600", None]}],
        "envelope": [{"envelope": w.message.to_json(), "sig": message_sig,
                      "key": KEYS["alice"].public_key.to_json()},
                     {"envelope": w.ack.to_json(), "sig": w.ack.sign(KEYS["bob"])},
                     {"envelope": w.ack.to_json(), "sig": None}],
        "note": [w.note, w.cosigned, w.cosignature, w.checkpoint.body(), LOG_VERIFIER.to_text(),
                 WITNESS.to_text()],
        "bundle": [w.bundle],
        "http": ["0", "9007199254740991", sign_request(
            KEYS["audrey"], method="GET", path="/v1/log/entries", query="start=0&end=2",
            origin=ORIGIN, now=NOW),
            {"index": 0, "leaf": "eA==", "entry": {}}, {"index": 1, "hash": "A" * 43 + "="},
            {"origin": ORIGIN, "key": LOG_VERIFIER.to_text(), "exported": NOW_TEXT, "size": 3},
            {"size": 3, "note": w.note, "time": NOW_TEXT}],
    }
    out = []
    for item in corpus[target]:
        out.append(item.encode("utf-8") if isinstance(item, str)
                   else json.dumps(item, ensure_ascii=False).encode("utf-8"))
    return out


def _challenge() -> Challenge:
    client = ClientSession(key=KEYS["alice"], origin=ORIGIN)
    challenge = client.receive(encode(Challenge(nonce=NONCE, origin=ORIGIN, server_time=NOW_TEXT)))
    assert isinstance(challenge, Challenge)
    return challenge


# -- a structure-aware mutator --------------------------------------------------------------------
# Byte flips in JSON mostly break the syntax, and the standard library's C scanner gives libFuzzer
# no coverage to learn it from; so half of the mutations edit the parsed document instead: a
# field dropped, added, duplicated or retyped, a value swapped for a hostile one, deep nesting.

JSON_TARGETS = frozenset({"frames", "roster", "canonical", "envelope", "http"})


class Pairs(list[tuple[str, Any]]):
    """A JSON object as its list of pairs, so that a mutation can repeat a key."""


def _hostile(rng: Any, pool: list[Any]) -> Any:
    choices: list[Any] = [
        None, True, False, 0, -1, 1, 2**53 - 1, 2**53, -(2**53), 2**64, 10**400, 1.5, -0.0,
        float("nan"), float("inf"), "", "x" * rng.choice((65, 1000, 70000)), "\ud800", "\x00\x1b[2J",
        "\u202e", "north", "alice", "message", "ack", "agreement", "enrollment", "revocation",
        "2026-12-01T09:00:00.000Z", "9999-99-99T99:99:99Z", "ed25519", "A" * 22, "AAAA", [], Pairs(),
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
        [0] * 100, Pairs([("k", 1)])]
    return rng.choice(pool) if pool and rng.random() < 0.3 else rng.choice(choices)


def _nodes(value: Any, out: list[Any]) -> list[Any]:
    out.append(value)
    if isinstance(value, Pairs):
        for _, child in value:
            _nodes(child, out)
    elif isinstance(value, list):
        for child in value:
            _nodes(child, out)
    return out


def _edit(value: Any, rng: Any) -> Any:
    pool = _nodes(value, [])
    containers = [n for n in pool if isinstance(n, list)]
    if not containers or rng.random() < 0.05:
        return _hostile(rng, pool)
    node = rng.choice(containers)
    op = rng.randrange(5)
    if not node or op == 0:  # add
        item = copy.deepcopy(_hostile(rng, pool))
        if isinstance(node, Pairs):
            keys = [k for k, _ in node] or ["type"]
            node.insert(rng.randint(0, len(node)), (rng.choice([*keys, "extra", "", "\u00e9"]), item))
        else:
            node.insert(rng.randint(0, len(node)), item)
        return value
    at = rng.randrange(len(node))
    if op == 1:  # drop
        del node[at]
    elif op == 2:  # replace
        item = copy.deepcopy(_hostile(rng, pool))
        node[at] = (node[at][0], item) if isinstance(node, Pairs) else item
    elif op == 3:  # repeat
        node.insert(at, copy.deepcopy(node[at]))
    elif isinstance(node, Pairs):  # rename a key
        node[at] = (rng.choice(["type", "document", "sigs", "key", "sig", "id", "v", "index",
                                node[at][0] + "x", node[at][0].upper()]), node[at][1])
    else:  # wrap
        node[at] = [node[at]] if rng.random() < 0.5 else Pairs([("k", node[at])])
    return value


def _dumps(value: Any) -> str:
    if isinstance(value, Pairs):
        return "{" + ",".join(json.dumps(k) + ":" + _dumps(v) for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "NaN"
    return json.dumps(value)


def mutate_json(data: bytes, rng: Any) -> bytes | None:
    """``data`` with one to three structural edits, or None if it is not JSON."""
    try:
        value = json.loads(data, object_pairs_hook=Pairs)
    except (ValueError, RecursionError):
        return None
    for _ in range(rng.randint(1, 3)):
        value = _edit(value, rng)
    try:
        return _dumps(value).encode("utf-8", "surrogatepass")
    except RecursionError:
        return None
