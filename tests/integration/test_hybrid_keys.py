"""Hybrid post-quantum signatures (issue 16, acceptance 5). Member keys: alice, enrolled by
north's authority with an Ed25519 + ML-DSA-65 key, signs in and sends; the server, bob's client
and the auditor check both halves. An envelope with a good Ed25519 half and a bad ML-DSA-65 half,
or the reverse, is refused by the server, by a receiver (from a dishonest host) and by the
auditor (after a dishonest host logged it). Checkpoints: with an ML-DSA-65 log key, each carries a
second signature line that Ed25519-only note verifiers skip."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from hotline.agent.heartbeat import AgentState, HeartbeatAgent
from hotline.canonical import parse
from hotline.cli import main
from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.clock import utc_now
from hotline.config import load_config
from hotline.deployment import init_deployment
from hotline.descriptor import verify_descriptor
from hotline.entries import PENDING, EnvelopeEntry, roster_entry
from hotline.envelope import Envelope, Kind
from hotline.epochkeys import DEFAULT_EPOCH, EpochPrivateKey, epoch_of
from hotline.errors import HotlineError
from hotline.httpauth import sign_request
from hotline.hybrid import ALG_HYBRID, Ed25519SuiteSigner, HybridSigningKey
from hotline.join import join_profile
from hotline.keyfiles import load_private_key, save_private_key
from hotline.keys import Domain, Verifier
from hotline.operator_home import home_descriptor
from hotline.roster import Role, decode_document, enrollment, readers_of, sign_document
from hotline.sealing import SealContext, make_disclosures, seal
from hotline.server.service import document_id
from hotline.times import format_time
from hotline.tlog.mldsa_note import MLDSANoteVerifier
from hotline.tlog.note import NoteVerifier, PinnedNoteVerifier, open_note, parse_note
from hotline.wire.frames import Accepted, Deliver, Submit, encode
from tests.conftest import Running, hotline_cli, running_server, without_epoch_keys, witness_all
from tests.integration.test_agreement_cli import send_text
from tests.integration.test_exchange import deliver_frame, post_roster, signed_get
from tests.integration.test_rotation_audit import audit
from tests.integration.test_tlog import independent_note_check

WAIT = 10.0  # seconds: a safety net against hangs, never a synchronisation
HALVES = ("ed25519", "ml-dsa-65")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[7] ^= 1
    return base64.b64encode(bytes(raw)).decode()


class OneBadHalf:
    """alice's hybrid key, except that its envelope signatures have ``half`` damaged (what a
    forger who can make only the other algorithm's signatures would send)."""

    def __init__(self, key: HybridSigningKey, half: str) -> None:
        self.inner, self.half = key, half

    @property
    def key_id(self) -> str:
        return self.inner.key_id

    @property
    def public_key(self) -> Verifier:
        return self.inner.public_key

    def sign(self, *, domain: Domain, obj: Any) -> dict[str, str]:
        return self.inner.sign(domain=domain, obj=obj)

    def sign_canonical(self, *, domain: Domain, canonical: bytes) -> dict[str, str]:
        sig = self.inner.sign_canonical(domain=domain, canonical=canonical)
        return {**sig, self.half: flip(sig[self.half])} if domain is Domain.ENVELOPE else sig

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        return self.inner.to_pem(passphrase)


async def enroll_hybrid_alice(server: Running, member: str = "alice",
                              role: Role = Role.LIAISON) -> HybridSigningKey:
    """North's authority enrolls a hybrid key for ``member`` (alice); its profile's key file
    becomes it."""
    key = HybridSigningKey.generate()
    authority = load_private_key(server.home / "keys" / "authority-north.pem")
    now = utc_now()
    doc = enrollment(party="north", member=member, role=role, key=key.public_key,
                     not_before=now - timedelta(minutes=1), not_after=now + timedelta(days=1))
    await server.hotline.add_document(sign_document(doc, authority).to_json())
    save_private_key(server.home / "keys" / f"{member}.pem", key)
    return key


async def checkpointed(server: Running) -> None:
    """Wait (bounded) until a signed checkpoint covers the whole log."""
    size = await server.hotline.store.size()
    async with asyncio.timeout(WAIT):
        while (latest := server.hotline.checkpointer.latest) is None or latest.size < size:
            await asyncio.sleep(0.05)


async def test_a_hybrid_member_signs_in_sends_and_is_verified_everywhere(home: Path) -> None:
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        key = await enroll_hybrid_alice(server)
        alice, bob = await server.client("alice"), await server.client("bob")
        assert alice.key.key_id == key.key_id  # the profile loaded the hybrid key file
        await alice.send(channel="north-south", template="message", body={"text": "post-quantum"})
        frame = await asyncio.wait_for(bob.deliveries.get(), WAIT)
        assert isinstance(frame, Deliver)
        delivered = bob.verify(frame)
        sig = json.loads(encode(frame))["entry"]["sig"]
        assert sig["alg"] == ALG_HYBRID and set(sig) == {"alg", "key", *HALVES}
        assert server.body_seen(bob, delivered)["text"] == "post-quantum"
        await checkpointed(server)
        code, out = await audit(home, server.url)
        assert code == 0, out

        # The log API takes her hybrid Authorization header (both halves), and refuses it with
        # either half damaged.
        status, answer = await signed_get(server, "alice", "/v1/log/entries", "start=9&end=10")
        assert status == 200, answer
        header = sign_request(key, method="GET", path="/v1/log/entries", query="start=9&end=10",
                              origin="hotline.test", now=utc_now())
        assert ', pq="' in header
        for part in ('sig="', 'pq="'):
            start = header.index(part) + len(part)
            bad = header[:start] + ("B" if header[start] == "A" else "A") + header[start + 1:]
            url = server.url.replace("ws://", "http://").replace("/v1/ws", "/v1/log/entries?start=9&end=10")
            async with aiohttp.ClientSession() as http, \
                    http.get(url, headers={"Authorization": bad}) as response:
                assert response.status == 401
                assert (await response.json())["code"] == "auth.bad_signature"


@pytest.mark.parametrize("half", HALVES)
async def test_one_bad_half_is_refused_by_server_receiver_and_auditor(home: Path, half: str) -> None:
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        key = await enroll_hybrid_alice(server)
        alice, bob = await server.client("alice"), await server.client("bob")
        named = {"ed25519": "Ed25519", "ml-dsa-65": "ML-DSA-65"}[half]

        alice.key = OneBadHalf(key, half)  # the server refuses it, naming the half
        with pytest.raises(HotlineError) as refused:
            await alice.send(channel="north-south", template="message", body={"text": "forged"})
        assert refused.value.code == "auth.bad_signature"
        assert f"the {named} half does not verify" in refused.value.message

        alice.key = key  # a good one, which a dishonest host alters on its way to bob
        await alice.send(channel="north-south", template="message", body={"text": "genuine"})
        frame = await asyncio.wait_for(bob.deliveries.get(), WAIT)
        assert isinstance(frame, Deliver)
        entry = json.loads(encode(frame))["entry"]
        entry["sig"][half] = flip(entry["sig"][half])
        with pytest.raises(HotlineError) as info:
            bob.verify(deliver_frame(frame.index, entry))
        assert info.value.code == "verify.failed" and f"the {named} half" in info.value.message

        # A dishonest host logs an envelope with one bad half: the auditor refuses the log.
        envelope = alice.envelope(channel="north-south", template="message", body={"text": "x"})
        bad = OneBadHalf(key, half).sign_canonical(domain=Domain.ENVELOPE, canonical=envelope.canonical)
        logged = EnvelopeEntry(index=PENDING, time=format_time(utc_now()), channel="north-south",
                               party="north", envelope=envelope, sig=bad)
        await server.hotline.store.append(logged, envelope_id=envelope.id)
        await checkpointed(server)
        code, out = await audit(home, server.url)
    assert code == 1 and "FAILED" in out and f"the {named} half does not verify" in out, out


async def test_checkpoints_carry_an_ml_dsa_line_that_ed25519_verifiers_skip(tmp_path: Path) -> None:
    """`server new --post-quantum`: the server signs every checkpoint with its ML-DSA-65 log key
    too. A Go-style note verifier written from the spec (Ed25519 only) accepts the checkpoint,
    members' clients (who pin the Ed25519 key) get their receipts, witnesses cosign, the auditor
    passes, and the ML-DSA line verifies with the published verifier key."""
    op = tmp_path / "op"
    made = CliRunner().invoke(main, ["--home", str(op), "server", "new", "--origin", "hotline.test",
                                     "--post-quantum", "--no-passphrase"],
                              env={"HOTLINE_PASSPHRASE": "", "HOTLINE_LOG_KEY_PASSPHRASE": ""})
    assert made.exit_code == 0, made.output
    assert "keys/log-mldsa.vkey" in made.output
    assert mode_of(op / "keys" / "log-mldsa.pem") == 0o600
    config = load_config(op / "hotline.toml", home=op, env={})
    assert config.log_mldsa_key_path == op / "keys" / "log-mldsa.pem"
    pq = MLDSANoteVerifier.from_text((op / "keys" / "log-mldsa.vkey").read_text().strip())

    home = tmp_path / "home"  # the demo deployment, its server given that key
    init_deployment(home, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin="hotline.test", force=False)
    shutil.copy2(op / "keys" / "log-mldsa.pem", home / "keys" / "log-mldsa.pem")
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05",
                              HOTLINE_TLOG_MLDSA_KEY="keys/log-mldsa.pem") as server:
        alice = await server.client("alice")
        index = (await alice.send(channel="north-south", template="message", body={"text": "pq"})).index
        await asyncio.wait_for(alice.receipt(index), WAIT)  # verified with the Ed25519 key alone
        await witness_all(home, server.url)
        url = server.url.replace("ws://", "http://").replace("/v1/ws", "/v1/log/checkpoint")
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            note = await response.text()
        code, out = await audit(home, server.url)
    assert code == 0, out
    log_vkey = NoteVerifier(name="hotline.test",
                            public_key=load_private_key(home / "keys" / "log.pem").public_key.raw)
    origin, size, _ = independent_note_check(note, log_vkey.to_text())
    assert (origin, size) == ("hotline.test", index + 1)
    body, names = open_note(note, [log_vkey, pq])
    assert body.startswith("hotline.test\n")
    assert names == ["hotline.test", "hotline.test"]
    assert len(parse_note(note).signatures) == 2 + 3  # Ed25519, ML-DSA-65, three witnesses

    # The descriptor carries the ML-DSA-65 key (signed by the Ed25519 log key); members who
    # join with it pin both, and then require both lines on every checkpoint.
    config_text = (home / "hotline.toml").read_text()
    (home / "hotline.toml").write_text(
        config_text + '\n[tlog]\nkey = "keys/log.pem"\nmldsa_key = "keys/log-mldsa.pem"\n')
    signed = home_descriptor(home, log_key=load_private_key(home / "keys" / "log.pem"),
                             urls=["ws://127.0.0.1:1/v1/ws"], now=utc_now())
    descriptor = verify_descriptor(signed)
    assert descriptor.mldsa_log_key == pq.to_text()
    for name, party, role in (("alice", "north", Role.LIAISON), ("audrey", "mediator", Role.AUDITOR)):
        join_profile(home, descriptor=descriptor, name=name, party=party, role=role, force=True)
        pinned = Profile.load(home, name).log_key
        assert isinstance(pinned, PinnedNoteVerifier) and pinned.also == (pq,)
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        sent = await asyncio.to_thread(send_text, home, server.url, "both lines")
        assert sent[0] == 0, sent[1]
        await witness_all(home, server.url)
        code, out = await audit(home, server.url)
        assert code == 0, out
    (home / "hotline.toml").write_text(config_text)
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:  # Ed25519 only
        refused = await asyncio.to_thread(send_text, home, server.url, "one line")
        await witness_all(home, server.url)
        code, out = await audit(home, server.url)
    assert refused[0] == 1 and "no signature by the pinned log key" in refused[1], refused[1]
    assert code == 1 and "no signature by the pinned log key" in out, out


async def test_a_forged_epoch_key_is_refused_by_the_client_before_anything_is_sealed(
        home: Path) -> None:
    """Acceptance 2 (keys signed by the enrolled key): bob publishes his epoch key through the
    roster API, alice's client seals to it, and the auditor accepts the logged key. A dishonest
    host then logs and serves a key for carol that carol never signed (made and signed by the
    host): alice's client refuses the document, finds no reader for mediator and refuses to seal
    (``seal.no_reader``), so nothing is sealed to the host's key; the auditor fails the log."""
    without_epoch_keys(home)  # each member's key is published below
    epoch = epoch_of(utc_now(), DEFAULT_EPOCH)
    bob_key = EpochPrivateKey.generate().document(party="south", member="bob", epoch=epoch,
                                                  length=DEFAULT_EPOCH)
    bob_signer = load_private_key(home / "keys" / "bob.pem")
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        status, answer = await post_roster(server, sign_document(bob_key, bob_signer).to_json())
        assert status == 200, answer
        alice = await server.client("alice")
        readers = readers_of(alice.roster, ["south"], at=utc_now())
        assert [(r.member, r.key.key_id) for r in readers] == [("bob", bob_key.key_id)]
        context = SealContext(channel="north-south", envelope="A" * 22)
        sealed = seal(make_disclosures({"note": "for south"}, {"note": bytes(16)}),
                      {"note": readers}, context)
        assert [box.member for box in sealed.boxes] == ["bob"]
        await checkpointed(server)
        code, out = await audit(home, server.url)  # the auditor replays the logged key
        assert code == 0, out

        forged = EpochPrivateKey.generate().document(party="mediator", member="carol",
                                                     epoch=epoch, length=DEFAULT_EPOCH)
        host_key = load_private_key(home / "keys" / "log.pem")
        signed = sign_document(forged, host_key)
        await server.hotline.store.append(roster_entry(signed.to_json(), time=format_time(utc_now())),
                                          envelope_id=document_id(signed.to_json()))
        server.hotline.documents.append(signed)
        alice = await server.client("alice")  # a new session: the host sends it the forged key
        assert [r.code for r in alice.refused_documents] == ["roster.signer_not_valid"]
        assert ("mediator", "carol") not in alice.roster.epoch_keys.get((86400, epoch), {})
        with pytest.raises(HotlineError) as refused:
            seal(make_disclosures({"note": "for the mediator"}, {"note": bytes(16)}),
                 {"note": readers_of(alice.roster, ["mediator"], at=utc_now())},
                 context)
        assert refused.value.code == "seal.no_reader"
        await checkpointed(server)
        code, out = await audit(home, server.url)
    assert code == 1 and "FAILED" in out and "not signed by a key mediator enrolled for carol" in out, out


def test_an_agent_with_a_hybrid_key_does_not_witness(home: Path) -> None:
    """Cosignatures are C2SP's Ed25519 form: an agent holding a hybrid key still beats and
    echoes, but its witness is off (said once), and `hotline witness` refuses it plainly."""
    save_private_key(home / "keys" / "north-agent.pem", HybridSigningKey.generate())
    state = AgentState(home / "state" / "north-agent.agent.json")
    hybrid = HeartbeatAgent(Profile.load(home, "north-agent"), state=state, witness_every=5.0)
    plain = HeartbeatAgent(Profile.load(home, "south-agent"), state=state, witness_every=5.0)
    assert (hybrid.witness_every, plain.witness_every) == (None, 5.0)
    refused = hotline_cli(home, "witness", "--as", "north-agent", "--once")
    assert refused.returncode == 1 and "a witness cosigns checkpoints with an Ed25519 key" in refused.stderr


async def test_the_agreement_lets_heartbeats_be_signed_with_the_ed25519_half_alone(home: Path) -> None:
    """The signature suite per template: an agreement's ``ed25519_only`` lets a hybrid agent sign
    its heartbeats with the Ed25519 half alone (166 B instead of 4.6 kB; a forgery after quantum
    computers exist would fake liveness, not content). Before that agreement such a heartbeat is
    refused; after it, the agent's client signs it so by itself and the server, the other
    members and the auditor accept it; a message (not named) still needs both halves."""
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        key = await enroll_hybrid_alice(server, "north-agent", Role.AGENT)
        agent, bob = await server.client("north-agent"), await server.client("bob")

        def heartbeat(seq: int) -> Envelope:
            return agent.envelope(channel="north-south", template="heartbeat", kind=Kind.HEARTBEAT,
                                  body={"seq": seq, "sent": format_time(utc_now())})

        async def submitted(envelope: Envelope, sig: dict[str, str]) -> Accepted:
            return await agent._request(Submit(envelope=envelope, sig=sig,
                                               req=agent.session.next_req()), Accepted)

        early = heartbeat(1)
        with pytest.raises(HotlineError) as refused:
            await submitted(early, early.sign(Ed25519SuiteSigner(key)))
        assert refused.value.code in ("crypto.invalid", "crypto.unsupported_alg")

        signed = parse((home / "roster" / "90-agreement-north-south-v1.json").read_bytes())
        v2 = dict(signed["document"], version=2, ed25519_only=["echo", "heartbeat"])
        keys = [load_private_key(home / "keys" / f"authority-{p}.pem")
                for p in ("north", "south", "mediator")]
        await server.hotline.add_document(sign_document(decode_document(v2), *keys).to_json())
        await agent.ping()
        await bob.ping()

        light = heartbeat(2)
        accepted = await agent.submit_envelope(light)  # the client picks the suite by itself
        frame = await fetched(bob, accepted.index)
        assert set(frame.entry.sig) == {"alg", "key", "sig"} and frame.entry.sig["alg"] == "ed25519"
        assert bob.verify(frame).envelope.id == light.id
        full = heartbeat(3)  # both halves are still accepted
        await submitted(full, full.sign(key))
        forged = heartbeat(4)
        sig = forged.sign(Ed25519SuiteSigner(key))
        with pytest.raises(HotlineError) as refused:
            await submitted(forged, {**sig, "sig": flip(sig["sig"])})
        assert refused.value.code == "auth.bad_signature"

        alice_key = await enroll_hybrid_alice(server)
        alice = await server.client("alice")
        message = alice.envelope(channel="north-south", template="message", body={"text": "x"})
        with pytest.raises(HotlineError) as refused:  # a message is not named: both halves needed
            await alice._request(Submit(envelope=message, sig=message.sign(Ed25519SuiteSigner(alice_key)),
                                        req=alice.session.next_req()), Accepted)
        assert refused.value.code in ("crypto.invalid", "crypto.unsupported_alg")
        await checkpointed(server)
        code, out = await audit(home, server.url)
    assert code == 0, out


async def fetched(client: Client, index: int) -> Deliver:
    """The delivery of entry ``index`` to ``client`` (others skipped)."""
    async with asyncio.timeout(WAIT):
        while True:
            frame = await client.deliveries.get()
            if isinstance(frame, Deliver) and frame.index == index:
                return frame
