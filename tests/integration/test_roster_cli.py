"""Issue 15: `hotline roster submit|show|check`, and closing a channel by ceremony, against a
real server (in this process, on a free loopback port) and the CLI as a user runs it."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hotline.display import unsafe
from hotline.errors import HotlineError
from hotline.keyfiles import load_private_key
from hotline.keys import SigningKey
from hotline.norms.files import load_templates
from hotline.publicfiles import AuthorityKeyFile, write_public
from hotline.roster import (
    EnrollmentDocument,
    Role,
    SignedDocument,
    enrollment,
    handover,
    revocation,
    sign_document,
)
from hotline.times import format_time
from tests.conftest import Running, hotline_cli, running_server, witness_all

pytestmark = pytest.mark.slow  # every test runs the CLI as child processes

WAIT = 10  # seconds: a safety net against hangs, never a synchronisation
V1 = "roster/90-agreement-north-south-v1.json"
HOSTILE = "lost laptop \x1b[2J\u202eevil\u200b"  # a reason that would rewrite a terminal


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(hotline_cli, home, *args)


def authority(home: Path, party: str) -> SigningKey:
    return load_private_key(home / "keys" / f"authority-{party}.pem")


def enroll(home: Path, name: str, *, party: str = "north", signer: SigningKey | None = None,
           key: SigningKey | None = None) -> Path:
    """A signed enrollment of a new liaison ``name`` of ``party`` (by ``signer``, default the
    party's authority) as a file."""
    now = datetime.now(UTC)
    doc: EnrollmentDocument = enrollment(
        party=party, member=name, role=Role.LIAISON,
        key=(key or SigningKey.generate()).public_key,
        not_before=now - timedelta(minutes=1), not_after=now + timedelta(days=30))
    path = home / f"enroll-{name}-{party}.json"
    write_public(path, sign_document(doc, signer or authority(home, party)))
    return path


def logged_members(server: Running) -> set[str]:
    return {getattr(d.document, "member", "") for d in server.hotline.documents}


async def test_submit_logs_good_documents_and_refuses_each_bad_one(server: Running) -> None:
    home = server.home
    good = enroll(home, "dave")
    forged = enroll(home, "eve", signer=authority(home, "south"))  # south signs for north
    not_a_document = home / "not-a-document.json"
    write_public(not_a_document, AuthorityKeyFile(party="north",
                                                  key=authority(home, "north").public_key.to_json()))
    garbage = home / "garbage.json"
    garbage.write_bytes(b'{"document": {"type": "enrollment"}, "sigs": [], "sigs": []}')

    alone = await cli(home, "roster", "submit", str(forged), "--server", server.url)
    assert alone.returncode == 1 and alone.stdout == ""
    assert alone.stderr.startswith("error: roster.bad_signature: "), alone.stderr
    assert "eve" not in logged_members(server)  # nothing logged

    several = await cli(home, "roster", "submit", str(not_a_document), str(good), str(forged),
                        str(garbage), "--server", server.url)
    assert several.returncode == 1
    assert "enrollment of dave (north) logged at index" in several.stdout
    errors = several.stderr.strip().split("\n")
    assert [line.split(":")[1].strip() for line in errors] == [
        "keys.bad_public_file", "roster.bad_signature", "keys.bad_public_file"], several.stderr
    assert str(not_a_document) in errors[0] and str(forged) in errors[1], several.stderr
    assert logged_members(server) >= {"dave"} and "eve" not in logged_members(server)

    again = await cli(home, "roster", "submit", str(good), "--as", "alice", "--server", server.url)
    assert again.returncode == 0 and "(already logged)" in again.stdout, again.stderr
    neither = await cli(home, "roster", "submit", str(good))
    assert neither.returncode == 2 and "--server" in neither.stderr


async def test_show_lists_the_roster_against_the_members_own_pins(server: Running) -> None:
    home = server.home
    dave = SigningKey.generate()
    revoked = home / "revoke-dave.json"
    write_public(revoked, sign_document(revocation(
        party="north", member="dave", key_id=dave.public_key.key_id, revoked_at=datetime.now(UTC),
        reason=HOSTILE), authority(home, "north")))
    submitted = await cli(home, "roster", "submit", str(enroll(home, "dave", key=dave)),
                          str(revoked), "--server", server.url)
    assert submitted.returncode == 0, submitted.stderr
    text = await cli(home, "roster", "show", "--as", "alice", "--server", server.url)
    assert text.returncode == 0, text.stderr
    assert unsafe(text.stdout.replace("\n", "")) == [] and "dave (north) liaison" in text.stdout
    assert "REVOKED at" in text.stdout and "lost laptop" in text.stdout
    shown = await cli(home, "roster", "show", "--as", "alice", "--server", server.url, "--json")
    assert shown.returncode == 0, shown.stderr
    assert unsafe(shown.stdout.replace("\n", "")) == []
    view = json.loads(shown.stdout)
    assert next(m for m in view["members"] if m["member"] == "dave")["reason"] == HOSTILE
    assert [p["party"] for p in view["parties"]] == ["mediator", "north", "south"]
    assert all(p["verified"] and p["pinned"] == p["current"] for p in view["parties"])
    north = authority(home, "north").public_key.key_id
    alice = next(m for m in view["members"] if m["member"] == "alice")
    assert (alice["party"], alice["role"], alice["enrolled_by"], alice["revoked_at"]) == (
        "north", "liaison", north, None)
    assert {m["member"] for m in view["members"]} >= {"alice", "bob", "carol", "audrey"}
    [channel] = view["channels"]
    assert (channel["channel"], channel["version"], channel["parties"]["north"], channel["ends"]) \
        == ("north-south", 1, north, None)
    assert "audrey" in channel["auditors"] and "north-agent" in channel["witnesses"]
    message = load_templates(home / "protocols").latest("message")  # the version the agreement pins
    assert message is not None
    assert any(t.startswith(f"message@{message.version} ") for t in channel["templates"])
    assert view["refused"] == []

    # a member who pinned only north and south: mediator's documents are unverified to her
    profile = (home / "profiles" / "alice.toml").read_text()
    narrow = "\n".join(line for line in profile.splitlines()
                       if not line.startswith(("mediator =", '"mediator" =')))
    (home / "profiles" / "narrow.toml").write_text(narrow + "\n")
    text = await cli(home, "roster", "show", "--as", "narrow", "--server", server.url)
    assert text.returncode == 0, text.stderr
    assert "mediator: UNVERIFIED" in text.stdout
    assert "carol (mediator)" not in text.stdout and "alice (north)" in text.stdout
    assert "north-south version" not in text.stdout  # its agreement names mediator
    assert "3 enrollment: roster.unknown_party" in text.stdout  # carol, mediator-agent, audrey
    assert "1 agreement: roster.unknown_party" in text.stdout


async def test_check_says_what_the_member_would_accept(server: Running) -> None:
    home = server.home
    good = enroll(home, "dave")
    forged = enroll(home, "eve", signer=authority(home, "south"))
    checked = await cli(home, "roster", "check", str(good), str(forged), "--as", "bob",
                        "--server", server.url)
    assert checked.returncode == 1
    assert "enrollment of dave (north) would be accepted" in checked.stdout
    assert "error: roster.bad_signature" in checked.stderr
    assert "dave" not in logged_members(server)  # checking submits nothing

    # north hands over to a new key: what the old one signs now is refused by the client
    old, new = authority(home, "north"), SigningKey.generate()
    moved = home / "handover-north.json"
    write_public(moved, sign_document(handover(party="north", old=old.public_key,
                                               new=new.public_key, at=datetime.now(UTC)), old, new))
    submitted = await cli(home, "roster", "submit", str(moved), "--server", server.url)
    assert submitted.returncode == 0, submitted.stderr
    stale, fresh = enroll(home, "frank", signer=old), enroll(home, "grace", signer=new)
    after = await cli(home, "roster", "check", str(stale), str(fresh), "--as", "bob",
                      "--server", server.url)
    assert after.returncode == 1
    assert "error: roster.retired_authority" in after.stderr
    assert "enrollment of grace (north) would be accepted" in after.stdout
    shown = json.loads((await cli(home, "roster", "show", "--as", "bob", "--server", server.url,
                                  "--json")).stdout)
    north = next(p for p in shown["parties"] if p["party"] == "north")
    assert (north["pinned"], north["current"]) == (old.public_key.key_id, new.public_key.key_id)
    assert north["handed_over_at"] is not None


async def test_a_channel_closed_by_ceremony_refuses_sends_and_keeps_its_history(
        home: Path, tmp_path: Path) -> None:
    offset = [timedelta(0)]
    async with running_server(home, clock=lambda: datetime.now(UTC) + offset[0],
                              HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        alice = await server.client("alice")
        before = await alice.send(channel="north-south", template="message",
                                  body={"text": "before the end"})
        ends = datetime.now(UTC) + timedelta(minutes=2)
        # an end already past is refused: it would void what was logged since
        past = tmp_path / "past.json"
        drafted = await cli(home, "agreement", "draft", "--based-on", str(home / V1), "--close",
                            "--at", format_time(datetime.now(UTC) - timedelta(hours=1)),
                            "--out", str(past))
        assert drafted.returncode == 1 and not past.exists()
        closing = tmp_path / "close.json"
        drafted = await cli(home, "agreement", "draft", "--based-on", str(home / V1), "--close",
                            "--at", format_time(ends), "--out", str(closing))
        assert drafted.returncode == 0, drafted.stderr
        assert f"closes at {format_time(ends)}" in drafted.stdout
        for party in ("north", "south", "mediator"):
            signed = await cli(home, "agreement", "sign", str(closing), "--key",
                               str(home / "keys" / f"authority-{party}.pem"))
            assert signed.returncode == 0, signed.stderr
        # an end that has passed by the time the server sees it (every party signed it, but
        # late): refused, nothing logged, since it would void what was logged since
        version1 = json.loads((home / V1).read_text())["document"]
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        stale = {**version1, "version": 2, "effective": format_time(an_hour_ago),
                 "ends": format_time(an_hour_ago + timedelta(minutes=59))}
        late_file = tmp_path / "late.json"
        late_file.write_text(json.dumps(sign_document(
            SignedDocument.from_json({"document": stale, "sigs": []}).document,
            *(authority(home, p) for p in ("north", "south", "mediator"))).to_json()))
        late = await cli(home, "roster", "submit", str(late_file), "--server", server.url)
        assert late.returncode == 1 and "error: roster.invalid: " in late.stderr, late.stderr
        assert "already past" in late.stderr
        assert server.hotline.roster.agreements["north-south"].version == 1
        submitted = await cli(home, "roster", "submit", str(closing), "--server", server.url)
        assert submitted.returncode == 0, submitted.stderr
        still = await alice.send(channel="north-south", template="message",
                                 body={"text": "until the end"})
        assert (await alice.fetch(still.index)).index == still.index

        offset[0] = timedelta(minutes=3)  # past the end (within the clocks' allowed skew)
        with pytest.raises(HotlineError) as refused:
            await alice.send(channel="north-south", template="message", body={"text": "after"})
        assert refused.value.code == "channel.closed", refused.value
        size = await server.hotline.store.size()
        await server.hotline.monitor.sweep()  # a closed channel's silence is not DOWN
        assert await server.hotline.store.size() == size
        # history stays readable, and verifies
        assert (await alice.fetch(before.index)).index == before.index
        bob = await server.client("bob")
        assert await bob.resume("north-south", -1) >= 0

        view = json.loads((await cli(home, "roster", "show", "--as", "bob", "--server", server.url,
                                     "--json")).stdout)
        assert view["channels"][0]["version"] == 2
        assert view["channels"][0]["ends"] == format_time(ends)
        await asyncio.wait_for(alice.receipt(still.index), WAIT)
        await witness_all(home, server.url)
        audit = await cli(home, "audit", "verify", "--as", "audrey", "--server", server.url,
                          "--state", str(tmp_path / "audit.json"))
        assert audit.returncode == 0, audit.stdout + audit.stderr
