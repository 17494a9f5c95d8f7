"""`hotline keys epoch` and `hotline keys retire` (issue 16, acceptance 3 at the level of files):
a member makes its key for an epoch, publishes it with `roster submit`, and senders seal to it;
once retired, the private half is gone, so a box sealed to it two epochs ago no longer opens with
what the laptop holds, while the member's local store (encrypted under its passphrase) still
shows what it read."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from pathlib import Path

import pytest

from hotline.clock import utc_now
from hotline.epochkeys import DEFAULT_EPOCH, EpochPrivateKey, Reader, epoch_of
from hotline.errors import SealError
from hotline.readstore import ReadStore
from hotline.roster import SignedDocument, readers_of
from hotline.sealing import SealContext, make_disclosures, open_sealed, seal, verify_disclosure
from tests.conftest import hotline_cli, running_server, without_epoch_keys

CONTEXT = SealContext(channel="north-south", envelope="B" * 22)


def epoch_files(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "keys" / "epoch").glob("*.pem"))


async def test_a_member_makes_publishes_and_retires_its_epoch_keys(home: Path) -> None:
    without_epoch_keys(home)  # bob's machine holds none yet
    before = epoch_of(utc_now(), DEFAULT_EPOCH)
    made = hotline_cli(home, "keys", "epoch", "--as", "bob")
    assert made.returncode == 0, made.stderr
    assert "hotline roster submit" in made.stdout and "PRIVATE" not in made.stdout
    [private] = (home / "keys" / "epoch").glob("bob-*.pem")
    now = int(private.stem.split("-")[2])  # the current epoch (midnight may pass meanwhile)
    assert now in (before, epoch_of(utc_now(), DEFAULT_EPOCH))
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    document = next((home / "roster").glob(f"epoch-bob-24h-{now}-*.json"))

    again = hotline_cli(home, "keys", "epoch", "--as", "bob", "--epoch", str(now))  # never replaced
    assert again.returncode == 1 and "ceremony.key_exists" in again.stderr
    both = hotline_cli(home, "keys", "epoch", "--as", "bob", "--epoch", "3", "--next")
    assert both.returncode == 2

    async with running_server(home) as server:
        submitted = await asyncio.to_thread(hotline_cli, home, "roster", "submit", str(document),
                                            "--server", server.url)
        assert submitted.returncode == 0, submitted.stderr
        # One member cannot fill the log with keys for all of time: only epochs not over and
        # at most two ahead are logged.
        for epoch, code in ((now + 1, None), (now + 5, "roster.epoch_out_of_range")):
            made = hotline_cli(home, "keys", "epoch", "--as", "bob", "--epoch", str(epoch))
            assert made.returncode == 0, made.stderr
            [doc] = (home / "roster").glob(f"epoch-bob-24h-{epoch}-*.json")
            answer = await asyncio.to_thread(hotline_cli, home, "roster", "submit", str(doc),
                                             "--server", server.url)
            assert (answer.returncode == 0) if code is None else (code in answer.stdout + answer.stderr), \
                (epoch, answer.stdout, answer.stderr)
            (home / "keys" / "epoch" / f"bob-24h-{epoch}.pem").unlink()  # not part of what follows
        alice = await server.client("alice")
        readers = readers_of(alice.roster, ["south"], at=utc_now())
        assert [r.member for r in readers] == ["bob"]
    signed = SignedDocument.from_json(json.loads(document.read_text()))
    assert readers[0].key == signed.document

    # Two epochs ago: a key bob made then, and a box sealed to it.
    old = hotline_cli(home, "keys", "epoch", "--as", "bob", "--epoch", str(now - 2))
    assert old.returncode == 0, old.stderr
    old_pem = (home / "keys" / "epoch" / f"bob-24h-{now - 2}.pem").read_bytes()
    old_key = EpochPrivateKey.from_pem(old_pem)
    old_doc = old_key.document(party="south", member="bob", epoch=now - 2, length=DEFAULT_EPOCH)
    sealed = seal(make_disclosures({"note": "MARKER-for-bob"}, {"note": bytes(16)}),
                  {"note": [Reader("south", "bob", old_doc)]}, CONTEXT)
    assert hotline_cli(home, "keys", "epoch", "--as", "bob", "--epoch", str(now - 1)).returncode == 0
    # Bob read it then, with the key he held, and kept what he read in his local store.
    store = ReadStore.open(home / "state" / "bob.read", b"bob's passphrase")
    store.add(CONTEXT.envelope, open_sealed(sealed, party="south", member="bob",
                                            keys={old_doc.key_id: old_key}, context=CONTEXT))
    store.save()

    retired = hotline_cli(home, "keys", "retire", "--as", "bob")
    assert retired.returncode == 0, retired.stderr
    assert f"epochs {now - 2}" in retired.stdout
    assert epoch_files(home) == sorted([f"bob-24h-{now - 1}.pem", f"bob-24h-{now}.pem"])

    # A stolen laptop: the keys still on it do not open the old box ...
    held = {}
    for path in (home / "keys" / "epoch").glob("bob-*.pem"):
        key = EpochPrivateKey.from_pem(path.read_bytes())
        epoch = int(path.stem.split("-")[2])
        held[key.document(party="south", member="bob", epoch=epoch, length=DEFAULT_EPOCH).key_id] = key
    with pytest.raises(SealError) as err:
        open_sealed(sealed, party="south", member="bob", keys=held, context=CONTEXT)
    assert err.value.code == "seal.no_key"
    # ... and his local store shows it again only with his passphrase, still matching the
    # digest the sender signed.
    kept = ReadStore.open(home / "state" / "bob.read", b"bob's passphrase").entries[CONTEXT.envelope]
    assert verify_disclosure(kept["note"].encoded, name="note",
                             digest=sealed.digests["note"]).value == "MARKER-for-bob"
    with pytest.raises(SealError) as err:
        ReadStore.open(home / "state" / "bob.read", b"a thief's guess")
    assert err.value.code == "seal.cannot_open"
    assert b"MARKER-for-bob" not in (home / "state" / "bob.read").read_bytes()

    nothing = hotline_cli(home, "keys", "retire", "--as", "bob")
    assert nothing.returncode == 0 and "No key" in nothing.stdout


async def test_keys_renew_publishes_the_current_and_next_keys_and_retires_past_ones(home: Path) -> None:
    """`hotline keys renew`: what a liaison on the command line runs daily. It makes and logs
    its keys for this epoch and the next, says so, changes nothing when run again, retires a key
    past its epoch and grace, and publishes none for an agent."""
    without_epoch_keys(home)  # bob's machine holds none yet
    async with running_server(home) as server:
        now = epoch_of(utc_now(), DEFAULT_EPOCH)
        # the longest ack deadline of bob's channels is 3 days (data-exchange): kept that long
        old = hotline_cli(home, "keys", "epoch", "--as", "bob", "--epoch", str(now - 5))
        kept = hotline_cli(home, "keys", "epoch", "--as", "bob", "--epoch", str(now - 2))
        assert old.returncode == 0 and kept.returncode == 0, old.stderr + kept.stderr
        renewed = await asyncio.to_thread(hotline_cli, home, "keys", "renew", "--as", "bob",
                                          "--server", server.url)
        assert renewed.returncode == 0, renewed.stderr
        published = [int(e) for e in
                     re.findall(r"published bob's key for epoch (\d+) \(24 h", renewed.stdout)]
        assert published in ([now, now + 1], [now + 1, now + 2])  # midnight may pass meanwhile
        assert f"retired bob's keys of epochs {now - 5}\n" in renewed.stdout
        logged = server.hotline.roster.epoch_keys
        assert all(("south", "bob") in logged[(86400, e)] for e in published)
        assert epoch_files(home) == sorted(f"bob-24h-{e}.pem" for e in [now - 2, *published])

        again = await asyncio.to_thread(hotline_cli, home, "keys", "renew", "--as", "bob",
                                        "--server", server.url)
        assert again.returncode == 0 and "bob's keys are current" in again.stdout, again.stdout
        agent = await asyncio.to_thread(hotline_cli, home, "keys", "renew", "--as", "south-agent",
                                        "--server", server.url)
        assert agent.returncode == 0 and "only liaisons publish keys" in agent.stdout
        assert not list((home / "keys" / "epoch").glob("south-agent-*"))
