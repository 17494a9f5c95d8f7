"""hotline.tlog.note: C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys.

Fixed vectors come from golang.org/x/mod/sumdb/note's tests and the spec's own example.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.keys import SigningKey
from hotline.tlog.note import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    open_note,
    parse_note,
    sign_note,
)

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=200)
KEY = SigningKey.from_seed(bytes([7]) * 32)
OTHER = SigningKey.from_seed(bytes([8]) * 32)
BODY = "hotline.test/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"


def verifier(key: SigningKey = KEY, name: str = "hotline.test/log") -> NoteVerifier:
    return NoteVerifier(name, key.public_key.raw)


def code_of(fn: Any, *args: Any) -> str:
    with pytest.raises(LogError) as info:
        fn(*args)
    return info.value.code


# -- the Go sumdb/note vectors --------------------------------------------------------------------

def test_go_vector_sign_is_byte_exact(external: dict[str, Any]) -> None:
    go = external["go_note"]
    signer = NoteSigner.from_text(go["peter_skey"])
    assert signer.to_text() == go["peter_skey"]
    assert signer.verifier.to_text() == go["peter_vkey"]
    assert signer.key_id.hex() == "c74f20a3"
    note = Note(go["text"], (signer.sign(go["text"]),)).text()
    assert note == go["text"] + "\n" + go["peter_sig"]
    # The module-level helper, from the raw seed, gives the same bytes.
    raw = Ed25519PrivateKey.from_private_bytes(signer._key.private_bytes_raw())
    assert sign_note(go["text"], name="PeterNeumann", key=raw) == note


def test_go_vector_open(external: dict[str, Any]) -> None:
    go = external["go_note"]
    peter, enoch = NoteVerifier.from_text(go["peter_vkey"]), NoteVerifier.from_text(go["enoch_vkey"])
    both = go["text"] + "\n" + go["peter_sig"] + go["enoch_sig"]
    assert open_note(both, [peter]) == (go["text"], ["PeterNeumann"])
    assert open_note(both, [enoch]) == (go["text"], ["EnochRoot"])
    assert open_note(both.encode(), [enoch, peter]) == (go["text"], ["PeterNeumann", "EnochRoot"])
    assert code_of(open_note, both, []) == Code.LOG_UNKNOWN_KEY
    # Repeated signatures by one key: the first counts, repeats are dropped (as in Go).
    twice = go["text"] + "\n" + go["peter_sig"] * 2 + go["enoch_sig"]
    assert open_note(twice, [peter]) == (go["text"], ["PeterNeumann"])
    # Go's "invalid signature" case: four characters spliced into the signature.
    bad = go["text"] + "\n" + go["peter_sig"][:60] + "ABCD" + go["peter_sig"][60:]
    assert code_of(open_note, bad, [peter]) == Code.LOG_BAD_SIGNATURE


def test_go_malformed_messages_are_refused(external: dict[str, Any]) -> None:
    go = external["go_note"]
    text, sig = go["text"], go["peter_sig"]
    peter = NoteVerifier.from_text(go["peter_vkey"])
    bad = [
        text,
        text + "\n",
        text + "\n" + sig[:-1],
        "\x01" + text + "\n" + sig,
        text + "\n" + sig.replace("PeterNeumann", "Bad Name")[:-1],
        text + "\n" + sig + "Unexpected line.\n",
        text + "\n" + sig * (MAX_SIGNATURES + 1),
    ]
    for message in bad:
        assert code_of(open_note, message, [peter]) == Code.LOG_BAD_NOTE, message
    assert code_of(open_note, b"\xff" + (text + "\n" + sig).encode(), [peter]) == Code.LOG_BAD_NOTE


def test_go_verifier_key_manglings_are_refused(external: dict[str, Any]) -> None:
    vkey = external["go_note"]["peter_vkey"]
    assert NoteVerifier.from_text(vkey).to_text() == vkey
    for i in range(len(vkey) + 1):
        for j in range(i + 1, len(vkey) + 1):
            if (i, j) != (0, len(vkey)):
                assert code_of(NoteVerifier.from_text, vkey[i:j]) == Code.LOG_BAD_KEY
    for i in range(len(vkey)):
        mangled = vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1:]
        assert code_of(NoteVerifier.from_text, mangled) == Code.LOG_BAD_KEY, mangled
    for bad in external["go_note"]["bad_vkeys"]:  # wrong key length; unknown algorithm
        assert code_of(NoteVerifier.from_text, bad) == Code.LOG_BAD_KEY


def test_go_signer_key_manglings_are_refused(external: dict[str, Any]) -> None:
    skey = external["go_note"]["peter_skey"]
    for i in range(len(skey)):
        mangled = skey[:i] + chr(ord(skey[i]) + 1) + skey[i + 1:]
        assert code_of(NoteSigner.from_text, mangled) == Code.LOG_BAD_KEY, mangled
    for j in range(len(skey)):
        assert code_of(NoteSigner.from_text, skey[:j]) == Code.LOG_BAD_KEY


def test_c2sp_spec_example(external: dict[str, Any]) -> None:
    example = external["c2sp_signed_note"]
    key = NoteVerifier.from_text(example["vkey"])
    assert key.to_text() == example["vkey"]
    assert open_note(example["note"], [key]) == ("This is an example message.\n", ["example.com/foo"])


# -- round trips and rejections -------------------------------------------------------------------

def test_round_trip_and_unknown_signatures_are_ignored() -> None:
    note = sign_note(BODY, name="hotline.test/log", key=KEY)
    assert note == BODY + "\n" + NoteSigner(name="hotline.test/log", key=KEY).sign(BODY).line()
    assert open_note(note, [verifier()]) == (BODY, ["hotline.test/log"])
    parsed = parse_note(note)
    assert parsed.text() == note and parsed.body == BODY
    # Another key's line is ignored, whatever its content, when its (name, ID) is unknown.
    stranger = NoteSignature("witness.example", b"\x00\x01\x02\x03", b"\x99" * 64).line()
    assert open_note(note + stranger, [verifier()]) == (BODY, ["hotline.test/log"])
    # Same name, other key (a different key ID): unknown, so not enough alone.
    assert code_of(open_note, note, [verifier(OTHER)]) == Code.LOG_UNKNOWN_KEY
    # Same key, other name: unknown.
    assert code_of(open_note, note, [verifier(name="other")]) == Code.LOG_UNKNOWN_KEY


def test_bodies_may_hold_empty_lines() -> None:
    body = "first\n\nthird\n\n"
    note = sign_note(body, name="n", key=KEY)
    assert open_note(note, [verifier(name="n")]) == (body, ["n"])


def test_bad_signature_from_a_known_key_rejects_the_note() -> None:
    note = sign_note(BODY, name="hotline.test/log", key=KEY)
    forged = BODY.replace("3", "4") + note[len(BODY):]
    assert code_of(open_note, forged, [verifier()]) == Code.LOG_BAD_SIGNATURE
    # Even with another valid signature present (spec: SHOULD reject the whole note).
    good_other = NoteSigner(name="other", key=OTHER).sign(BODY.replace("3", "4")).line()
    assert code_of(open_note, forged + good_other,
                   [verifier(), verifier(OTHER, "other")]) == Code.LOG_BAD_SIGNATURE
    short = BODY + "\n" + NoteSignature("hotline.test/log", verifier().key_id, b"\x01" * 10).line()
    assert code_of(open_note, short, [verifier()]) == Code.LOG_BAD_SIGNATURE


def test_every_truncation_is_refused() -> None:
    note = sign_note(BODY, name="hotline.test/log", key=KEY)
    for end in range(len(note)):
        with pytest.raises(LogError):
            open_note(note[:end], [verifier()])


@pytest.mark.parametrize("text", [
    "",
    "\n",
    "\n\n",
    BODY,
    BODY + "\n",  # no signatures
    BODY + "\n\n",
    "no newline at all",
])
def test_notes_without_signatures_are_refused(text: str) -> None:
    assert code_of(open_note, text, [verifier()]) == Code.LOG_BAD_NOTE


def test_crlf_and_control_characters_are_refused() -> None:
    note = sign_note(BODY, name="hotline.test/log", key=KEY)
    for bad in (note.replace("\n", "\r\n"), note[:-1] + "\r\n", "\t" + note, note.replace("3", "\x00"),
                note + "\x1b"):
        assert code_of(open_note, bad, [verifier()]) == Code.LOG_BAD_NOTE
    assert code_of(open_note, note.encode()[:-3] + b"\xc3\n", [verifier()]) == Code.LOG_BAD_NOTE
    assert code_of(open_note, "\ud800" + note, [verifier()]) == Code.LOG_BAD_NOTE
    assert code_of(open_note, 42, [verifier()]) == Code.LOG_BAD_NOTE


def test_signature_line_grammar() -> None:
    line = NoteSigner(name="a", key=KEY).sign(BODY).line()
    encoded = line.split(" ")[2][:-1]
    for bad in (
        f"- a {encoded}",  # hyphen, not em dash
        f"—a {encoded}",
        f"— a  {encoded}",
        f"— a {encoded} ",
        f"— a+b {encoded}",
        f"— a\u00a0b {encoded}",  # no-break space is a Unicode space
        f"—  {encoded}",
        f"— a {encoded[:-1]}",  # not canonical base64
        f"— a {encoded.rstrip('=')}",
        "— a AAAA",  # too short for a key ID and a signature
        "— a",
    ):
        assert code_of(NoteSignature.from_line, bad) == Code.LOG_BAD_NOTE, bad
        assert code_of(open_note, BODY + "\n" + bad + "\n", [verifier(name="a")]) == Code.LOG_BAD_NOTE


def test_size_limit() -> None:
    body = "x" * (MAX_NOTE_BYTES - 200) + "\n"
    note = sign_note(body, name="n", key=KEY)
    assert open_note(note, [verifier(name="n")])[0] == body
    assert code_of(open_note, "y" * 300 + note, [verifier(name="n")]) == Code.LOG_BAD_NOTE


def test_signing_refuses_bad_bodies_names_and_keys() -> None:
    for body in ("", "no newline", "a\r\n", "tab\there\n", "\ud800\n"):
        with pytest.raises(LogError) as info:
            sign_note(body, name="n", key=KEY)
        assert info.value.code == Code.LOG_BAD_NOTE
    for name in ("", "a b", "a+b", "a\u2003b", "a\nb"):
        with pytest.raises(LogError) as info:
            sign_note(BODY, name=name, key=KEY)
        assert info.value.code == Code.LOG_BAD_KEY
    with pytest.raises(LogError) as info:
        sign_note(BODY, name="n", key="not a key")  # type: ignore[arg-type]
    assert info.value.code == Code.LOG_BAD_KEY


def test_verifier_keys() -> None:
    key = verifier()
    assert NoteVerifier.from_text(key.to_text()) == key
    assert repr(NoteSigner(name="n", key=KEY)).count("PRIVATE") == 0
    with pytest.raises(LogError):
        NoteVerifier("n", b"\x00" * 31)
    uppercase = key.to_text().replace(key.key_id.hex(), key.key_id.hex().upper())
    if uppercase != key.to_text():
        assert code_of(NoteVerifier.from_text, uppercase) == Code.LOG_BAD_KEY
    # Two different keys under one (name, key ID) cannot both be trusted.
    clash = NoteVerifier("hotline.test/log", OTHER.public_key.raw)
    object.__setattr__(clash, "key_id", key.key_id)
    note = sign_note(BODY, name="hotline.test/log", key=KEY)
    assert code_of(open_note, note, [key, clash]) == Code.LOG_BAD_KEY


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_log_error_only(data: bytes) -> None:
    try:
        open_note(data, [verifier()])
    except LogError:
        pass


@FAST
@given(st.text(max_size=200))
def test_arbitrary_text_raises_log_error_only(text: str) -> None:
    for call in (lambda: open_note(text, [verifier()]), lambda: NoteVerifier.from_text(text),
                 lambda: NoteSigner.from_text("PRIVATE+KEY+" + text), lambda: parse_note(text)):
        try:
            call()
        except LogError:
            pass


@FAST
@given(st.data())
def test_one_character_edits_of_a_note_are_refused(data: st.DataObject) -> None:
    note = sign_note(BODY, name="hotline.test/log", key=KEY)
    at = data.draw(st.integers(0, len(note) - 1), label="at")
    char = data.draw(st.characters(codec="utf-8").filter(lambda c: c != note[at]), label="char")
    with pytest.raises(LogError):
        open_note(note[:at] + char + note[at + 1:], [verifier()])
