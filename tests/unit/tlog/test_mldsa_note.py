"""hotline.tlog.mldsa_note: an ML-DSA-65 signature line on a C2SP checkpoint, beside the
Ed25519 one, that Ed25519-only verifiers (ours and a Go-style one from the spec alone) skip."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from hotline.client.profile import pinned_log_key
from hotline.errorcodes import Code
from hotline.errors import ConfigError, LogError
from hotline.keyfiles import load_mldsa_log_key, save_private_key
from hotline.keys import SigningKey
from hotline.tlog.checkpoint import verify_checkpoint
from hotline.tlog.mldsa_note import IDENTIFIER, MLDSANoteSigner, MLDSANoteVerifier
from hotline.tlog.note import Note, NoteSigner, NoteVerifier, PinnedNoteVerifier, open_note
from tests.integration.test_tlog import independent_note_check

NAME = "hotline.test"
BODY = "hotline.test\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
ED = NoteSigner(name=NAME, key=SigningKey.from_seed(bytes([7]) * 32))
ML = MLDSANoteSigner(name=NAME, key=MLDSA65PrivateKey.from_seed_bytes(bytes([9]) * 32))


def both(body: str = BODY) -> str:
    return Note(body, (ED.sign(body), ML.sign(body))).text()


def test_ed25519_only_verifiers_accept_a_checkpoint_with_both_lines() -> None:
    note = both()
    assert open_note(note, [ED.verifier]) == (BODY, [NAME])
    assert independent_note_check(note, ED.verifier.to_text()) == (
        NAME, 3, base64.b64decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))


def test_a_verifier_that_pins_both_checks_both() -> None:
    assert open_note(both(), [ED.verifier, ML.verifier]) == (BODY, [NAME, NAME])
    assert open_note(Note(BODY, (ML.sign(BODY),)).text(), [ML.verifier]) == (BODY, [NAME])


def test_a_bad_ml_dsa_line_fails_the_note_for_whoever_pins_the_key() -> None:
    ed, ml = ED.sign(BODY), ML.sign(BODY)
    forged = Note(BODY, (ed, type(ml)(ml.name, ml.key_id, bytes(len(ml.signature))))).text()
    assert open_note(forged, [ED.verifier]) == (BODY, [NAME])  # Ed25519-only: the line is unknown
    with pytest.raises(LogError) as err:
        open_note(forged, [ED.verifier, ML.verifier])
    assert err.value.code == Code.LOG_BAD_SIGNATURE
    other_body = BODY.replace("\n3\n", "\n4\n")
    moved = Note(BODY, (ed, ML.sign(other_body))).text()  # a line from another checkpoint
    with pytest.raises(LogError):
        open_note(moved, [ML.verifier])


def test_an_ml_dsa_line_alone_is_not_enough_for_an_ed25519_verifier() -> None:
    with pytest.raises(LogError) as err:
        open_note(Note(BODY, (ML.sign(BODY),)).text(), [ED.verifier])
    assert err.value.code == Code.LOG_UNKNOWN_KEY


def test_the_key_id_is_the_spec_rule_with_the_reserved_type_and_identifier() -> None:
    pub = ML.verifier.public_key
    assert ML.verifier.key_id == hashlib.sha256(
        NAME.encode() + b"\n" + b"\xff" + IDENTIFIER + pub).digest()[:4]
    assert ML.verifier.key_id != ED.verifier.key_id
    text = ML.verifier.to_text()
    assert MLDSANoteVerifier.from_text(text) == ML.verifier
    assert "PRIVATE" not in repr(ML)


@pytest.mark.parametrize("text", [
    ED.verifier.to_text(),  # an Ed25519 note key
    ML.verifier.to_text().replace(f"+{ML.verifier.key_id.hex()}+", "+00000000+"),
    ML.verifier.to_text()[:-8] + "AAAAAAA=",  # another key under the same id
    "no-plus-signs",
    ML.verifier.to_text() + "A" * 4096,
])
def test_malformed_ml_dsa_verifier_keys_are_refused(text: str) -> None:
    with pytest.raises(LogError) as err:
        MLDSANoteVerifier.from_text(text)
    assert err.value.code == Code.LOG_BAD_KEY


def test_ed25519_note_keys_refuse_an_ml_dsa_key_text() -> None:
    with pytest.raises(LogError):
        NoteVerifier.from_text(ML.verifier.to_text())


def test_the_servers_ml_dsa_key_file_must_be_one(tmp_path: Path) -> None:
    """``[tlog] mldsa_key`` naming a missing file, an Ed25519 key, or junk: the server does not
    start (config.invalid naming the file), rather than sign checkpoints with the wrong key."""
    pem = tmp_path / "log-mldsa.pem"
    save_private_key(pem, MLDSA65PrivateKey.from_seed_bytes(bytes([9]) * 32))
    assert load_mldsa_log_key(pem).public_key().public_bytes_raw() == ML.verifier.public_key
    ed = tmp_path / "ed.pem"
    save_private_key(ed, SigningKey.generate())
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    for path in (tmp_path / "missing.pem", ed, junk):
        with pytest.raises(ConfigError) as err:
            load_mldsa_log_key(path)
        assert err.value.code == Code.CONFIG_INVALID and str(path) in err.value.message


def test_a_profile_that_pins_the_ml_dsa_key_requires_its_line_on_every_checkpoint() -> None:
    """``PinnedNoteVerifier`` (a profile's ``log_key`` with ``log_key_mldsa``): a checkpoint
    verifies only with a valid signature by both keys; the Ed25519 key alone still accepts a
    checkpoint with one line (those who pin one key are unchanged)."""
    pinned = pinned_log_key(ED.verifier.to_text(), ML.verifier.to_text())
    assert isinstance(pinned, PinnedNoteVerifier) and pinned.to_text() == ED.verifier.to_text()
    assert verify_checkpoint(both(), pinned).size == 3
    ed_only = Note(BODY, (ED.sign(BODY),)).text()
    assert verify_checkpoint(ed_only, ED.verifier).size == 3
    with pytest.raises(LogError) as err:
        verify_checkpoint(ed_only, pinned)
    assert err.value.code == Code.LOG_UNKNOWN_KEY and "post-quantum" in err.value.message
    ml = ML.sign(BODY)
    forged = Note(BODY, (ED.sign(BODY), type(ml)(ml.name, ml.key_id, bytes(len(ml.signature))))).text()
    with pytest.raises(LogError) as err:
        verify_checkpoint(forged, pinned)
    assert err.value.code == Code.LOG_BAD_SIGNATURE
    other = MLDSANoteSigner(name="elsewhere", key=MLDSA65PrivateKey.from_seed_bytes(bytes([3]) * 32))
    with pytest.raises(LogError):  # the log's keys share its name
        pinned_log_key(ED.verifier.to_text(), other.verifier.to_text())
    assert pinned_log_key(ED.verifier.to_text()) == ED.verifier
