"""Hybrid authority keys (issue 16, acceptance 5 for roster documents and agreements): a
deployment made with ``hotline init --hybrid`` pins Ed25519 + ML-DSA-65 authorities in the
server's config, the descriptor and every profile, and runs end to end. A roster document or an
agreement whose signature has a good Ed25519 half and a bad ML-DSA-65 half, or the reverse, is
refused by the server, by a member's client (when a dishonest host logs it anyway) and by the
auditor."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.canonical import parse
from hotline.cli import main
from hotline.client.profile import Profile
from hotline.clock import utc_now
from hotline.config import load_config, parse_authority_key
from hotline.descriptor import verify_descriptor
from hotline.entries import roster_entry
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation
from hotline.hybrid import ALG_HYBRID, HybridPublicKey, MemberSigningKey
from hotline.keyfiles import load_member_key
from hotline.keys import SigningKey
from hotline.roster import Role, SignedDocument, decode_document, enrollment, sign_document
from hotline.server.service import document_id
from hotline.times import format_time
from hotline.wire.frames import Deliver
from tests.conftest import Running, running_server
from tests.integration.test_exchange import post_roster
from tests.integration.test_hybrid_keys import HALVES, checkpointed, flip
from tests.integration.test_rotation_audit import audit

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL

WAIT = 10.0  # seconds: a safety net against hangs, never a synchronisation
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
PARTIES = ("north", "south", "mediator")


@pytest.fixture
def hybrid_home(tmp_path: Path) -> Path:
    """``hotline init --hybrid``, as the README gives it."""
    path = tmp_path / "home"
    result = CliRunner().invoke(main, ["--home", str(path), "init", "--hybrid", "--port", "0",
                                       "--origin", "hotline.test"])
    assert result.exit_code == 0, result.output
    return path


def authority(home: Path, party: str) -> MemberSigningKey:
    return load_member_key(home / "keys" / f"authority-{party}.pem")


def with_bad_half(signed: SignedDocument, half: str) -> SignedDocument:
    """``signed`` with ``half`` of its first signature damaged: what a forger who breaks only the
    other algorithm could make."""
    first = {**signed.sigs[0], half: flip(signed.sigs[0][half])}
    return SignedDocument(document=signed.document, sigs=[first, *signed.sigs[1:]])


async def test_a_hybrid_deployment_pins_both_halves_and_runs_end_to_end(hybrid_home: Path) -> None:
    config = load_config(hybrid_home / "hotline.toml", home=hybrid_home)
    pinned = {p: parse_authority_key(t) for p, t in config.roster.authorities.items()}
    assert all(isinstance(k, HybridPublicKey) for k in pinned.values())
    descriptor = verify_descriptor(parse((hybrid_home / "descriptor.json").read_bytes()))
    assert descriptor.authority_keys() == pinned
    assert Profile.load(hybrid_home, "bob").authorities == pinned
    enrolled = parse((hybrid_home / "roster" / "01-enroll-alice.json").read_bytes())
    assert enrolled["sigs"][0]["alg"] == ALG_HYBRID  # signed by both halves of north's authority
    assert enrolled["document"]["keys"][0]["alg"] == ALG_HYBRID  # and alice's key is hybrid

    async with running_server(hybrid_home, **FAST) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        assert bob.roster.current == pinned and not bob.refused_documents
        await alice.send(channel="north-south", template="message", body={"text": "both halves"})
        frame = await asyncio.wait_for(bob.deliveries.get(), WAIT)
        assert isinstance(frame, Deliver)
        delivered = bob.verify(frame)
        assert server.body_seen(bob, delivered)["text"] == "both halves"
        await checkpointed(server)
        code, out = await audit(hybrid_home, server.url)
    assert code == 0, out


async def refused_by_server(server: Running, signed: SignedDocument, half: str) -> None:
    named = {"ed25519": "Ed25519", "ml-dsa-65": "ML-DSA-65"}[half]
    with pytest.raises(ProtocolViolation) as caught:
        await server.hotline.add_document(signed.to_json())
    assert caught.value.code == Code.ROSTER_BAD_SIGNATURE
    assert f"the {named} half does not verify" in caught.value.message
    status, answer = await post_roster(server, signed.to_json())
    assert (status, answer["code"]) == (400, "roster.bad_signature"), answer


@pytest.mark.parametrize("half", HALVES)
async def test_one_bad_half_on_a_roster_document_or_an_agreement_is_refused_everywhere(
        hybrid_home: Path, half: str) -> None:
    north = authority(hybrid_home, "north")
    mallory = SigningKey.generate()
    now = utc_now()
    forged_enrollment = with_bad_half(sign_document(enrollment(
        party="north", member="mallory", role=Role.LIAISON, key=mallory.public_key,
        not_before=now - timedelta(minutes=1), not_after=now + timedelta(days=1)), north), half)
    v1 = parse((hybrid_home / "roster" / "90-agreement-north-south-v1.json").read_bytes())
    v2 = decode_document(dict(v1["document"], version=2, epoch_hours=12))
    forged_agreement = with_bad_half(
        sign_document(v2, *(authority(hybrid_home, p) for p in PARTIES)), half)

    async with running_server(hybrid_home, **FAST) as server:
        service = server.hotline
        for forged in (forged_enrollment, forged_agreement):
            await refused_by_server(server, forged, half)
        code, out = await audit(hybrid_home, server.url)
        assert code == 0, out  # the log as the honest host wrote it verifies

        # A dishonest host logs both anyway and sends them in the roster to every client.
        for forged in (forged_enrollment, forged_agreement):
            await service.store.append(roster_entry(forged.to_json(), time=format_time(utc_now())),
                                       envelope_id=document_id(forged.to_json()))
            service.documents.append(forged)
        bob = await server.client("bob")
        assert mallory.key_id not in bob.roster.enrollments
        assert bob.roster.agreements["north-south"].version == 1
        assert {(r.type, r.code) for r in bob.refused_documents} == {
            ("enrollment", "roster.bad_signature"), ("agreement", "roster.bad_signature")}
        await checkpointed(server)
        code, out = await audit(hybrid_home, server.url)
    named = {"ed25519": "Ed25519", "ml-dsa-65": "ML-DSA-65"}[half]
    assert code == 1 and "FAILED" in out and f"the {named} half does not verify" in out, out
