"""Issue 12, fuzzing: every parser a peer or the host can reach gives, for any input, a value or
exactly one typed error (a ``HotlineError`` with a ``family.reason`` code), never a KeyError,
TypeError, ValueError, RecursionError or UnicodeError.

The inputs are real documents (``scripts/fuzz_targets.py``: signed with fixed test keys) edited at
any depth (``tests.fuzzing.mutated``: fields dropped, added, retyped, replaced by hostile values,
deep nesting, huge integers, floats, NaN, lone surrogates, over-long strings), their JSON text
with duplicate keys or broken bytes, line-edited notes and bundles, and raw bytes. Documents
that still verify after an edit are re-signed where the parser checks a signature, so the edits
reach the rules behind it. ``tests/unit/test_canonical.py``, ``test_keys.py``, ``test_envelope.py``,
``test_roster.py`` and ``tests/unit/tlog`` hold the older, narrower properties; these extend them.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.audit.records import decode_checkpoint, decode_entry, decode_header
from hotline.canonical import canonical_bytes, check_value, parse
from hotline.client.receipts import bundle_from_frame, verify_receipt
from hotline.envelope import Envelope
from hotline.errors import CODE_FORM, HotlineError, WireError
from hotline.httpauth import parse_header, verify_request
from hotline.keys import PublicKey, Signature
from hotline.norms.agreement import Agreement
from hotline.roster import sign_document
from hotline.server.logapi import query_int
from hotline.store.checkpointfile import read_checkpoint_file
from hotline.store.records import decode_leaf
from hotline.tlog.checkpoint import Checkpoint, verify_checkpoint
from hotline.tlog.cosignature import (
    CosignatureVerifier,
    add_cosignatures,
    split_cosignatures,
    verify_cosignature,
    verify_cosignatures,
)
from hotline.tlog.note import NoteSignature, NoteVerifier, open_note, parse_note, parse_vkey
from hotline.tlog.proof_bundle import ProofBundle, verify_bundle
from hotline.verification import verify_envelope_entry
from hotline.wire import frames
from hotline.wire.frames import CLIENT_TYPES, SERVER_TYPES, Challenge, Welcome, decode, encode
from hotline.wire.session import ClientSession, ServerSession, ServerState
from tests.fuzzing import (
    answer,
    hostile,
    json_text,
    load_targets,
    mutated,
    text_edits,
    with_duplicate_key,
)

# A guard in every run of the suite; the volume (millions of inputs) is scripts/fuzz.py's.
FAST = settings(derandomize=True, database=None, deadline=None, max_examples=60,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
T = load_targets()
W = T.world()


def seeds_of(target: str) -> list[Any]:
    return [parse(seed) for seed in T.seeds(target) if seed.startswith((b"{", b"["))]


def as_peer_text(value: Any, duplicate: bool, raw: bytes) -> list[str | bytes]:
    """What a peer may send for ``value``: its JSON text, with a key repeated, with bytes that are
    not UTF-8 spliced in."""
    text = json_text(value)
    out: list[str | bytes] = [text]
    if duplicate:
        out.append(with_duplicate_key(text))
    if raw:
        encoded = text.encode("utf-8", "surrogatepass")
        out.append(encoded[: len(encoded) // 2] + raw + encoded[len(encoded) // 2:])
    return out


# -- canonical JSON ---------------------------------------------------------------------------------

@FAST
@given(st.sampled_from(seeds_of("canonical") + seeds_of("roster")).flatmap(mutated),
       st.booleans(), st.binary(max_size=4))
def test_canonical_parse_of_edited_documents(value: Any, duplicate: bool, raw: bytes) -> None:
    for text in as_peer_text(value, duplicate, raw):
        parsed = answer(parse, text, max_bytes=256 * 1024)
        if not isinstance(parsed, HotlineError):
            assert parse(canonical_bytes(parsed)) == parsed


@FAST
@given(hostile | st.sampled_from([{1: "int key"}, {("t",): 1}, b"bytes", {"set"}, 1j, object()]))
def test_canonical_bytes_of_any_value(value: Any) -> None:
    """What a caller hands ``canonical_bytes`` (a parsed frame's part, a built document): its
    canonical bytes or ``WireError``, never a TypeError from the encoder."""
    encoded = answer(canonical_bytes, value)
    checked = answer(check_value, value)
    assert isinstance(encoded, WireError) == isinstance(checked, WireError)


@FAST
@given(st.sampled_from([31, 32, 33, 1000, 100_000]), st.sampled_from(["[", '{"a":']))
def test_canonical_parse_of_deep_nesting(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    parsed = answer(parse, opener * depth + "1" + closer * depth)
    assert isinstance(parsed, WireError) == (depth > 32)  # MAX_DEPTH levels are allowed


# -- frames (hotline.wire, both sides, every state) -------------------------------------------

FRAMES = seeds_of("frames")


def _server(ready: bool) -> ServerSession:
    session = ServerSession(origin=T.ORIGIN, nonce=T.NONCE, now=T.NOW,
                            clock_skew=timedelta(seconds=60), max_frame_bytes=64 * 1024)
    if ready:
        session.state = ServerState.READY
    return session


def _client(ready: bool) -> ClientSession:
    session = ClientSession(key=T.KEYS["alice"], origin=T.ORIGIN)
    if ready:
        session.receive(encode(Challenge(nonce=T.NONCE, origin=T.ORIGIN, server_time=T.NOW_TEXT)))
        session.receive(encode(Welcome(member="alice", party="north", role="liaison",
                                       channels=[T.CHANNEL], log_size=3)))
    return session


@FAST
@given(st.sampled_from(FRAMES).flatmap(mutated), st.booleans(), st.binary(max_size=4))
def test_frames_from_a_peer_yield_an_event_or_a_typed_error(frame: Any, duplicate: bool,
                                                           raw: bytes) -> None:
    for text in as_peer_text(frame, duplicate, raw):
        answer(decode, text, allowed=CLIENT_TYPES | SERVER_TYPES, max_bytes=64 * 1024)
        for ready in (False, True):
            answer(_server(ready).receive, text, now=T.NOW)
            event = answer(_client(ready).receive, text)
            if ready and not isinstance(event, HotlineError):
                T._client_route(W, event)  # roster, deliver and checkpoint contents


@FAST
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("utf-8", "surrogateescape")))
def test_arbitrary_text_frames_yield_an_event_or_a_typed_error(text: str) -> None:
    for ready in (False, True):
        answer(_server(ready).receive, text, now=T.NOW)
        answer(_client(ready).receive, text)


@FAST
@given(st.text(max_size=80) | st.sampled_from(["", "a.0", "auth.revoked", "frame", "Frame.Malformed",
                                               "frame.", ".x", "frame.malformed\n", "a" * 65 + ".b"]))
def test_a_hosts_error_code_is_taken_only_in_the_form_of_a_code(code: str) -> None:
    """Defect found by the fuzzer: the client raised the host's error frame with whatever code
    it carried (``AuthError(code="frame.malfo/med")``), so a host chose the code of an error
    raised inside the client. Only a ``family.reason`` code of at most 64 characters is taken;
    anything else is a malformed frame."""
    frame = json.dumps({"type": "error", "code": code, "message": "m"})
    well_formed = len(code) <= 64 and CODE_FORM.fullmatch(code) is not None
    for ready in (False, True):
        answered = answer(_client(ready).receive, frame)
        if ready and well_formed:  # a session's error goes to its waiter, code as sent
            assert isinstance(answered, frames.Error) and answered.code == code
        else:
            assert isinstance(answered, HotlineError)
            assert answered.code == (code if well_formed else "frame.malformed")


# -- what a client decodes from a delivered entry ---------------------------------------------------

ENTRIES = [W.entries[0], W.entries[1], W.overdue,
           {**W.entries[0], "expects": {"ack": "understood", "from": ["south"],
                                        "due": "2026-12-01T09:29:00.000Z"}, "late": True}]


@FAST
@given(st.sampled_from(ENTRIES).flatmap(mutated), st.integers(-1, 3))
def test_delivered_entries_yield_an_entry_or_a_typed_error(entry: Any, index: int) -> None:
    text = json.dumps({"type": "deliver", "index": index, "entry": entry}, ensure_ascii=False)
    event = answer(_client(True).receive, text)
    if isinstance(event, frames.Deliver):
        answer(verify_envelope_entry, W.roster, event.entry, index=index)
    answer(verify_envelope_entry, W.roster, entry, index=index)


# -- envelopes and signatures -----------------------------------------------------------------------

@FAST
@given(st.sampled_from([W.message.to_json(), W.ack.to_json()]).flatmap(mutated))
def test_envelopes_yield_an_envelope_or_a_typed_error(obj: Any) -> None:
    envelope = answer(Envelope.from_json, obj)
    if isinstance(envelope, Envelope):
        assert Envelope.from_json(envelope.to_json()).canonical == envelope.canonical
        key = T.KEYS.get(envelope.sender, T.KEYS["alice"])
        envelope.verify(key.public_key, envelope.sign(key))


@FAST
@given(st.sampled_from([W.message.sign(T.KEYS["alice"]), T.KEYS["alice"].public_key.to_json()])
       .flatmap(mutated))
def test_signatures_and_keys_yield_a_value_or_a_typed_error(obj: Any) -> None:
    answer(Signature.from_json, obj)
    answer(PublicKey.from_json, obj)
    answer(W.message.verify, T.KEYS["alice"].public_key, obj)


# -- roster documents -------------------------------------------------------------------------------

ROSTER = [*W.enrollments, W.agreed, W.agreed_v2, W.revoked]


@FAST
@given(st.sampled_from(ROSTER).flatmap(mutated), st.booleans())
def test_roster_documents_yield_a_result_or_a_typed_error(signed: Any, resign: bool) -> None:
    """Edited anywhere (``document``, its nested parties, keys, catalogue, or ``sigs``), and
    re-signed by the authorities when it can still be signed, so the edit meets the roster's
    rules and not only the signature check."""
    if resign:
        signed = T._signed({**signed, "sigs": []} if isinstance(signed, dict) else signed)
    answer(W.roster.check, signed)
    answer(W.roster_copy().add, signed)
    if isinstance(signed, dict) and isinstance(signed.get("document"), dict):
        answer(Agreement.from_json, signed["document"])


@FAST
@given(mutated(W.agreement, edits=4))
def test_agreements_yield_an_agreement_or_a_typed_error(doc: Any) -> None:
    agreement = answer(Agreement.from_json, doc)
    if isinstance(agreement, Agreement):
        signed = answer(sign_document, agreement.document, *T.AUTH.values())
        if not isinstance(signed, HotlineError):
            answer(W.roster.check, signed)


# -- C2SP notes, checkpoints, cosignatures, verifier keys --------------------------------------------

LOG_KEY, WITNESS = T.LOG_VERIFIER, T.WITNESS


@FAST
@given(st.sampled_from([W.note, W.cosigned]).flatmap(text_edits))
def test_notes_yield_a_note_or_a_typed_error(text: str) -> None:
    for data in (text, text.encode("utf-8", "surrogatepass")):
        answer(parse_note, data)
        answer(open_note, data, [LOG_KEY, WITNESS])
        answer(verify_checkpoint, data, LOG_KEY)
        answer(verify_cosignatures, data, [WITNESS])
        answer(split_cosignatures, data)
    answer(add_cosignatures, W.note, [text])
    answer(add_cosignatures, text, [W.cosignature])


@FAST
@given(st.sampled_from([W.checkpoint.body(), W.cosignature, LOG_KEY.to_text(), WITNESS.to_text()])
       .flatmap(text_edits))
def test_checkpoint_bodies_lines_and_keys_yield_a_value_or_a_typed_error(text: str) -> None:
    answer(Checkpoint.from_body, text)
    answer(NoteSignature.from_line, text)
    answer(verify_cosignature, text, W.checkpoint.body(), WITNESS)
    answer(verify_cosignature, W.cosignature, text, WITNESS)
    answer(parse_vkey, text)
    answer(NoteVerifier.from_text, text)
    answer(CosignatureVerifier.from_text, text)


@FAST
@given(st.binary(max_size=300))
def test_raw_bytes_as_notes_and_keys_yield_a_typed_error(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    for item in (data, text):
        answer(parse_note, item)
        answer(Checkpoint.from_body, item)
        answer(ProofBundle.from_text, item)
    answer(NoteSignature.from_line, text)
    answer(parse_vkey, text)


# -- proof bundles ----------------------------------------------------------------------------------

@FAST
@given(text_edits(W.bundle))
def test_proof_bundles_yield_a_checkpoint_or_a_typed_error(text: str) -> None:
    for data in (text, text.encode("utf-8", "surrogatepass")):
        bundle = answer(ProofBundle.from_text, data)
        if isinstance(bundle, ProofBundle):
            assert bundle.to_text() == text
        answer(verify_bundle, data, leaf=W.leaf, log_verifier=LOG_KEY)


# -- HTTP: query parameters, the Authorization header, the log API's answers ----------------------

@FAST
@given(st.text(max_size=30) | st.sampled_from(["0", "01", "-1", "+1", "1.0", "1e3", "0x1", " 1", "1 ",
                                               "１", "٣", "1_0", "9007199254740991",
                                               "9007199254740992", "9" * 5000, "\ud800", "1\n"]))
def test_query_parameters_yield_an_integer_or_a_typed_error(text: str) -> None:
    value = answer(query_int, text, "start")
    if isinstance(value, int):
        assert str(value) == text and 0 <= value <= 2**53 - 1
    else:
        assert value.code == "http.bad_parameter"


HEADER = T.seeds("http")[2].decode()


@FAST
@given(text_edits(HEADER) | st.text(max_size=200))
def test_authorization_headers_yield_a_member_or_a_typed_error(header: str) -> None:
    answer(parse_header, header)
    answer(verify_request, header, key=T.KEYS["audrey"].public_key, method="GET",
           path="/v1/log/entries", query="start=0&end=2", origin=T.ORIGIN, now=T.NOW,
           skew=timedelta(seconds=60))


RECORDS = [{"index": 0, "leaf": base64.b64encode(W.leaf).decode(), "entry": W.entries[1]},
           {"index": 1, "hash": "A" * 43 + "="},
           {"origin": T.ORIGIN, "key": LOG_KEY.to_text(), "exported": T.NOW_TEXT, "size": 3},
           {"size": 3, "note": W.note, "time": T.NOW_TEXT}]


@FAST
@given(st.sampled_from(RECORDS).flatmap(mutated))
def test_log_api_records_yield_a_record_or_a_typed_error(value: Any) -> None:
    answer(decode_entry, value)
    answer(decode_header, value)
    answer(decode_checkpoint, value, source="the host")


# -- what the host hands a client as a receipt, and what the disk hands the server ------------------

@FAST
@given(mutated({"type": "receipt", **W.receipt}))
def test_receipt_frames_yield_a_bundle_or_a_typed_error(frame: Any) -> None:
    event = answer(_client(True).receive, json_text(frame))
    if isinstance(event, frames.Receipt):
        bundle = answer(bundle_from_frame, event)
        if isinstance(bundle, ProofBundle):
            answer(verify_receipt, bundle.to_text(), LOG_KEY)


@FAST
@given(st.sampled_from([*W.entries, W.overdue, *(s["document"] for s in ROSTER)]).flatmap(mutated),
       st.integers(-1, 3), st.binary(max_size=3))
def test_stored_leaves_yield_an_entry_or_store_damaged(entry: Any, index: int, raw: bytes) -> None:
    """A leaf read back from the database (a damaged page, an edited file) is hostile too."""
    for leaf in (json_text(entry).encode("utf-8", "surrogatepass"), raw + json_text(entry).encode()):
        decoded = answer(decode_leaf, index, leaf)
        if isinstance(decoded, HotlineError):
            assert decoded.code == "store.damaged"


@FAST
@given(value=mutated({"size": 3, "time": T.NOW_TEXT, "note": W.note}) | hostile,
       raw=st.binary(max_size=3))
def test_checkpoint_files_yield_a_checkpoint_or_a_typed_error(tmp_path_factory: pytest.TempPathFactory,
                                                             value: Any, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("checkpoint") / "hotline.checkpoint"
    for data in (json_text(value).encode("utf-8", "surrogatepass"), raw + json_text(value).encode()):
        path.write_bytes(data)
        saved = answer(read_checkpoint_file, path)
        if isinstance(saved, HotlineError):
            assert saved.code == "store.checkpoint_file"
