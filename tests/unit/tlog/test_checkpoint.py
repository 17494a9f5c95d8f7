"""hotline.tlog.checkpoint: C2SP checkpoints (c2sp.org/tlog-checkpoint), signed by the log."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.keys import SigningKey
from hotline.tlog.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from hotline.tlog.merkle import EMPTY_ROOT
from hotline.tlog.note import NoteVerifier, sign_note

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=200)
LOG = SigningKey.from_seed(bytes([3]) * 32)
ORIGIN = "hotline.test/log"
LOG_KEY = NoteVerifier(ORIGIN, LOG.public_key.raw)
ROOT = bytes(range(32))
ROOT_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def test_body_format() -> None:
    assert Checkpoint(ORIGIN, 7, ROOT).body() == f"{ORIGIN}\n7\n{ROOT_B64}\n"
    cp = Checkpoint(ORIGIN, 0, EMPTY_ROOT, ("ext one", "ext two"))
    assert cp.body() == f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\next two\n"
    assert Checkpoint.from_body(cp.body()) == cp
    assert Checkpoint.from_body(cp.body().encode()) == cp


def test_spec_example_parses(external: dict[str, Any]) -> None:
    example = external["c2sp_checkpoint"]
    body = example["note"].split("\n\n")[0] + "\n"
    cp = Checkpoint.from_body(body)
    assert (cp.origin, cp.size, cp.extensions) == (example["origin"], example["size"], ())
    assert cp.body() == body


@pytest.mark.parametrize("body", [
    "",
    "\n",
    f"{ORIGIN}\n7\n",
    f"{ORIGIN}\n7\n{ROOT_B64}",  # no final newline
    f"\n7\n{ROOT_B64}\n",  # empty origin
    f"{ORIGIN}\n07\n{ROOT_B64}\n",  # leading zero
    f"{ORIGIN}\n00\n{ROOT_B64}\n",
    f"{ORIGIN}\n+7\n{ROOT_B64}\n",
    f"{ORIGIN}\n-1\n{ROOT_B64}\n",
    f"{ORIGIN}\n 7\n{ROOT_B64}\n",
    f"{ORIGIN}\n7 \n{ROOT_B64}\n",
    f"{ORIGIN}\n1_0\n{ROOT_B64}\n",
    f"{ORIGIN}\n\u0667\n{ROOT_B64}\n",  # ARABIC-INDIC DIGIT SEVEN: int() would take it
    f"{ORIGIN}\n0x7\n{ROOT_B64}\n",
    f"{ORIGIN}\n18446744073709551616\n{ROOT_B64}\n",  # 2^64
    f"{ORIGIN}\n{'9' * 5000}\n{ROOT_B64}\n",  # past Python's int-from-string digit limit
    f"{ORIGIN}\n7\n{ROOT_B64[:-4]}\n",  # 30-byte hash
    f"{ORIGIN}\n7\n{ROOT_B64.rstrip('=')}\n",
    f"{ORIGIN}\n7\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n",  # non-zero trailing bits
    f"{ORIGIN}\n7\n{ROOT_B64}\n\n",  # empty extension line
    f"{ORIGIN}\n7\n{ROOT_B64}\nx\n\n",
    f"{ORIGIN}\r\n7\n{ROOT_B64}\n",
    f"{ORIGIN}\n7\r\n{ROOT_B64}\n",
    f"{ORIGIN}\t\n7\n{ROOT_B64}\n",
])
def test_malformed_bodies_are_refused(body: str) -> None:
    with pytest.raises(LogError) as info:
        Checkpoint.from_body(body)
    assert info.value.code == Code.LOG_BAD_CHECKPOINT


def test_largest_size_parses() -> None:
    body = f"{ORIGIN}\n18446744073709551615\n{ROOT_B64}\n"
    assert Checkpoint.from_body(body).size == 2**64 - 1


@pytest.mark.parametrize("fields", [
    {"origin": ""}, {"origin": "a\nb"}, {"size": -1}, {"size": 2**64}, {"size": True},
    {"size": "7"}, {"root_hash": ROOT[:31]}, {"root_hash": ROOT_B64}, {"extensions": ("",)},
    {"extensions": ("a\nb",)}, {"extensions": ["x"]}, {"extensions": "x"},
])
def test_constructor_refuses_bad_fields(fields: dict[str, Any]) -> None:
    args: dict[str, Any] = {"origin": ORIGIN, "size": 7, "root_hash": ROOT, **fields}
    with pytest.raises(LogError) as info:
        Checkpoint(**args)
    assert info.value.code == Code.LOG_BAD_CHECKPOINT


def test_sign_and_verify() -> None:
    cp = Checkpoint(ORIGIN, 7, ROOT)
    note = sign_checkpoint(cp, LOG)
    assert note.startswith(cp.body() + "\n— hotline.test/log ")
    assert verify_checkpoint(note, LOG_KEY) == cp


def test_verify_requires_the_log_signature_and_origin() -> None:
    cp = Checkpoint(ORIGIN, 7, ROOT)
    other = SigningKey.from_seed(bytes([4]) * 32)
    with pytest.raises(LogError) as info:
        verify_checkpoint(sign_checkpoint(cp, other), LOG_KEY)
    assert info.value.code == Code.LOG_UNKNOWN_KEY
    # Signed by the log key, but under a name that is not the origin.
    misnamed_key = NoteVerifier("another.log", LOG.public_key.raw)
    note = sign_note(cp.body(), name="another.log", key=LOG)
    with pytest.raises(LogError) as info:
        verify_checkpoint(note, misnamed_key)
    assert info.value.code == Code.LOG_WRONG_ORIGIN
    # A signed note that is not a checkpoint.
    with pytest.raises(LogError) as info:
        verify_checkpoint(sign_note("hello\n", name=ORIGIN, key=LOG), LOG_KEY)
    assert info.value.code == Code.LOG_BAD_CHECKPOINT
    # An origin that cannot be a key name cannot be signed as one.
    with pytest.raises(LogError) as info:
        sign_checkpoint(Checkpoint("has space", 1, ROOT), LOG)
    assert info.value.code == Code.LOG_BAD_KEY


def test_tampered_checkpoint_is_refused() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), LOG)
    for edited in (note.replace("\n7\n", "\n8\n"), note.replace(ROOT_B64, "B" + ROOT_B64[1:])):
        with pytest.raises(LogError) as info:
            verify_checkpoint(edited, LOG_KEY)
        assert info.value.code == Code.LOG_BAD_SIGNATURE


@FAST
@given(origin=st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1,
                      max_size=30),
       size=st.integers(0, 2**64 - 1), root=st.binary(min_size=32, max_size=32),
       extensions=st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]),
                                   min_size=1, max_size=10), max_size=3))
def test_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert Checkpoint.from_body(cp.body()) == cp


@FAST
@given(st.text(max_size=120))
def test_arbitrary_text_raises_log_error_only(text: str) -> None:
    try:
        Checkpoint.from_body(text)
    except LogError:
        pass
    try:
        verify_checkpoint(text, LOG_KEY)
    except LogError:
        pass
