"""Issue 15: a real deployment, set up by ceremony between separate machines.

Every party's authority, every member and the operator has a home folder of its own, and every
step is the ``hotline`` command in a subprocess, run in its owner's folder. Between folders only
public files travel (public keys, signed documents, the descriptor), each copied by ``carry``,
which refuses to carry a private key; at the end each folder holds exactly its owner's private
keys. Every private key is encrypted (``HOTLINE_PASSPHRASE``).

1. The deployment: three authorities, an operator, alice, bob, three agents and the auditor;
   alice and bob exchange verified messages, the agents bring north-south UP, audit verify passes.
2. Lost laptop: bob's key revoked at T; his next session refused; his messages before T verify;
   his new key works; the audit report lists both keys with their validity.
3. Authority rotation for north: a handover, the agreement re-signed, a member enrolled by the new
   key; the old key's later documents refused by the server and the clients (the auditor's side:
   ``tests/integration/test_rotation_audit.py``).
4. A new channel north-mediator opened by ceremony, with its own templates; south is refused.
5. Bad input refused with a typed error, nothing written.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from hotline.canonical import dumps, parse
from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.client.sealed_view import SealedView
from hotline.clock import utc_now
from hotline.entries import ROSTER_KINDS
from hotline.envelope import Envelope
from hotline.keyfiles import load_member_key
from hotline.keys import PublicKey
from hotline.norms.templateset import TemplateSet
from hotline.roster import Role, enrollment, sign_document
from hotline.times import format_time
from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow

WAIT = 60.0  # seconds: a bound against hangs, never a synchronisation
PASSPHRASE = "correct horse battery staple"
FAST = {"HOTLINE_HEALTH_SWEEP": "0.1", "HOTLINE_TLOG_CHECKPOINT_DELAY": "0.2",
        "HOTLINE_PASSPHRASE": PASSPHRASE}
SAFETY = re.compile(r"\d{5}(?: \d{5}){11}")
PARTIES = ("north", "south", "mediator")
MEMBERS = {"alice": ("north", "liaison"), "bob": ("south", "liaison"),
           "north-agent": ("north", "agent"), "south-agent": ("south", "agent"),
           "mediator-agent": ("mediator", "agent"), "audrey": ("mediator", "auditor")}


def hotline(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``hotline --home HOME ARGS`` as its owner runs it; ``ok``: it must exit 0."""
    result = subprocess.run([sys.executable, "-m", "hotline.cli", "--home", str(home), *args],
                            capture_output=True, text=True, timeout=WAIT, env=environment(),
                            stdin=subprocess.DEVNULL)
    if ok:
        assert result.returncode == 0, f"hotline {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def environment() -> dict[str, str]:
    """Every member's passphrase, and ``HOTLINE_SERVER`` when a test runs its own copy of the
    deployment (its server on another port than the one the profiles name)."""
    return {**os.environ, "HOTLINE_PASSPHRASE": PASSPHRASE}


def refused(home: Path, code: str, *args: str) -> str:
    """Run a command that must be refused with ``code`` (exit 1, ``error: CODE: ...``)."""
    result = hotline(home, *args, ok=False)
    assert result.returncode == 1, f"{args}: exit {result.returncode}\n{result.stdout}{result.stderr}"
    assert f"error: {code}:" in result.stderr, result.stderr
    return result.stderr


def safety_of(output: str) -> str:
    found = SAFETY.search(output)
    assert found is not None, output
    return found.group(0)


def carry(file: Path, to: Path) -> Path:
    """Copy a public file to another machine's folder (email, USB, courier): never a private key."""
    text = file.read_text()
    assert "PRIVATE KEY" not in text, f"{file} holds a private key: it never leaves its machine"
    if to.resolve() == file.parent.resolve():
        return file  # already there
    to.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(file, to / file.name))


def newest(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime_ns)
    assert found, f"no {pattern} in {folder}"
    return found[-1]


def key_id_of(public_file: Path) -> str:
    return PublicKey.from_json(parse(public_file.read_bytes())["key"]).key_id


@dataclass
class Deployment:
    root: Path
    server: ServerProcess
    url: str = ""
    authority_files: dict[str, Path] = field(default_factory=dict)  # party -> its public file
    safety: dict[str, str] = field(default_factory=dict)  # party -> its authority's safety number
    agreement: Path | None = None  # the signed north-south agreement, as submitted
    owned: dict[Path, set[str]] = field(default_factory=dict)  # folder -> its own private keys

    @property
    def operator(self) -> Path:
        return self.root / "operator"

    def authority(self, party: str) -> Path:
        return self.root / f"authority-{party}"

    def member(self, name: str) -> Path:
        return self.root / name

    def copied(self, root: Path) -> Deployment:
        """This deployment's folders copied to ``root`` (its server stopped), every path with it."""
        shutil.copytree(self.root, root, symlinks=True)

        def moved(path: Path) -> Path:
            return root / path.relative_to(self.root)
        assert self.agreement is not None
        return Deployment(root, ServerProcess(root / "operator"),
                          authority_files={p: moved(f) for p, f in self.authority_files.items()},
                          safety=dict(self.safety), agreement=moved(self.agreement),
                          owned={moved(f): set(keys) for f, keys in self.owned.items()})

    def submit(self, home: Path, file: Path) -> str:
        return hotline(home, "roster", "submit", str(file), "--server", self.url).stdout

    def enroll(self, name: str, party: str, role: str, home: Path | None = None) -> Path:
        """``name`` makes a key on its own machine; its party's authority enrolls the public
        key; the member submits the signed enrollment and joins with the descriptor."""
        home = home or self.member(name)
        made = hotline(home, "keys", "new", "--as", name)
        self.owned[home] = {f"keys/{name}.pem"}
        public = home / "keys" / f"{name}.pub.json"
        read_out = safety_of(made.stdout)  # what the member reads to the authority
        at_authority = carry(public, self.authority(party) / "incoming")
        signed = hotline(self.authority(party), "authority", "enroll", "--party", party,
                         "--member", name, "--role", role, "--key", str(at_authority),
                         "--expect", read_out)
        document = newest(self.authority(party) / "roster", f"enroll-{name}-*.json")
        assert str(document.name) in signed.stdout
        self.submit(home, carry(document, home))
        self.join(name, party, role, home)
        if role == "liaison":  # its encryption keys, for what others seal to it (the console
            hotline(home, "keys", "renew", "--as", name)  # and listen do it by themselves)
        return home

    def join(self, name: str, party: str, role: str, home: Path) -> None:
        descriptor = carry(self.operator / "descriptor.json", home)
        expects = [a for p in PARTIES for a in ("--expect", f"{p}={self.safety[p]}")]
        hotline(home, "join", str(descriptor), "--as", name, "--party", party, "--role", role,
                *expects)

    def sign_around(self, draft: Path, parties: tuple[str, ...]) -> Path:
        """The draft travels from authority to authority, each signing it offline."""
        current = draft
        for party in parties:
            current = carry(current, self.authority(party))
            hotline(self.authority(party), "agreement", "sign", str(current), "--key",
                    str(self.authority(party) / "keys" / f"authority-{party}.pem"))
        return current


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """Authorities, operator, the north-south agreement and every member, by ceremony, once for
    the module (its server stopped after): each test runs on its own copy."""
    root = tmp_path_factory.mktemp("ceremony")
    world = Deployment(root, ServerProcess(root / "operator"))
    try:
        build(world)
    finally:
        world.server.stop()
    return world


@pytest.fixture
def deployment(ceremony: Deployment, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """A copy of the deployment with its server running on a free port, which every member
    command reaches through ``HOTLINE_SERVER`` (the profiles name the first server's port).
    Stopped when the test ends."""
    world = ceremony.copied(tmp_path / "deployment")
    try:
        world.url = world.server.start(**cast(dict[str, Any], FAST))
        monkeypatch.setenv("HOTLINE_SERVER", world.url)
        hotline(world.operator, "server", "descriptor", "--url", world.url)  # for newcomers
        yield world
    finally:
        world.server.stop()


def build(world: Deployment) -> None:
    for party in PARTIES:  # each on its own (offline) machine
        hybrid = ["--hybrid"] if party == "south" else []  # south signs post-quantum too
        made = hotline(world.authority(party), "authority", "new", "--party", party, *hybrid)
        world.safety[party] = safety_of(made.stdout)
        world.authority_files[party] = world.authority(party) / "keys" / f"authority-{party}.pub.json"
    hotline(world.operator, "server", "new", "--origin", "hotline.test", "--listen", "127.0.0.1:0")
    for party in PARTIES:  # the operator pins each authority after comparing its safety number
        received = carry(world.authority_files[party], world.operator / "incoming")
        hotline(world.operator, "server", "pin", "--party", party, "--authority", str(received),
                "--expect", world.safety[party])
    world.url = world.server.start(**cast(dict[str, Any], FAST))
    hotline(world.operator, "server", "descriptor", "--url", world.url)
    # north drafts the channel from the public files the others sent; all three sign it
    north = world.authority("north")
    pins = [a for p in PARTIES for a in ("--authority", str(carry(world.authority_files[p],
                                                                  north / "incoming")))]
    hotline(north, "agreement", "draft", "--channel", "north-south", "--parties",
            ",".join(PARTIES), *pins, "--auditor", "mediator:audrey",
            *(a for p in PARTIES for a in ("--witness", f"{p}:{p}-agent")),
            "--heartbeat-interval", "1", "--out", str(north / "north-south-v1.json"))
    world.agreement = world.sign_around(north / "north-south-v1.json", PARTIES)
    world.submit(world.authority("mediator"), world.agreement)
    for name, (party, role) in MEMBERS.items():
        world.enroll(name, party, role)


def entries_logged(world: Deployment) -> int:
    """How many roster documents the server logged (its own health notices aside)."""
    with sqlite3.connect(f"file:{world.operator / 'hotline.db'}?mode=ro", uri=True) as db:
        marks = ", ".join("?" for _ in ROSTER_KINDS)
        (count,) = db.execute(f"SELECT count(*) FROM entries WHERE kind IN ({marks})",
                              ROSTER_KINDS).fetchone()
    return int(count)


def private_keys(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and b"PRIVATE KEY" in p.read_bytes()}


def assert_private_keys_stay_home(world: Deployment) -> None:
    """Each folder holds only its owner's private keys (an authority's retired ones included);
    no private key is a copy of another."""
    owned = {**world.owned, world.operator: {"keys/log.pem"}}
    for folder, keys in world.owned.items():  # and a liaison's epoch keys, made where it is
        names = "|".join(re.escape(Path(k).stem) for k in keys)
        owned[folder] = keys | {p for p in private_keys(folder)
                                if re.fullmatch(rf"keys/epoch/({names})-\d+h-\d+\.pem", p)}
    for party in PARTIES:
        held = private_keys(world.authority(party))
        assert f"keys/authority-{party}.pem" in held
        owned[world.authority(party)] = {p for p in held
                                         if re.fullmatch(rf"keys/authority-{party}(\.retired-.+)?\.pem", p)}
    for folder in world.root.iterdir():
        if folder.is_dir():
            assert private_keys(folder) == owned.get(folder, set()), folder
    contents: dict[bytes, Path] = {}
    for path in world.root.rglob("*.pem"):
        data = path.read_bytes()
        if b"PRIVATE KEY" in data:
            assert data not in contents, f"{path} is a copy of {contents[data]}"
            contents[data] = path


class Agent:
    """``hotline agent`` of one party, on its own machine."""

    def __init__(self, home: Path, name: str, url: str) -> None:
        self.log = home / "agent.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", "--home", str(home), "agent", "--as", name,
                 "--witness-every", "0.5"], stdout=subprocess.DEVNULL, stderr=log,
                env=environment())

    def cosigned(self) -> bool:
        text = self.log.read_text() if self.log.exists() else ""
        return any(json.loads(line).get("event") == "witness.cosigned"
                   for line in text.splitlines() if line.startswith("{"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def health_becomes(home: Path, name: str, url: str, state: str) -> None:
    client = Client.for_profile(Profile.load(home, name))
    await client.connect(url)
    try:
        async def wait() -> None:
            while (now := client.health.get("north-south")) is None or now.state != state:
                client.health_changed.clear()
                await client.health_changed.wait()
        await asyncio.wait_for(wait(), WAIT)
    finally:
        await client.close()


async def until(predicate: Any) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.1)
    await asyncio.wait_for(poll(), WAIT)


def send(world: Deployment, name: str, text: str, *, channel: str = "north-south",
         home: Path | None = None) -> int:
    out = hotline(home or world.member(name), "send", "--as", name, "--channel", channel,
                  "--field", f"text={text}").stdout
    found = re.search(r"accepted index=(\d+)", out)
    assert found is not None, out
    return int(found.group(1))


def heard(world: Deployment, name: str, after: int, count: int,
          home: Path | None = None) -> list[dict[str, Any]]:
    """The signed entries ``listen`` shows (not its proof or health lines)."""
    out = hotline(home or world.member(name), "listen", "--as", name, "--after", str(after), "--count",
                  str(count), "--json", "--no-ack").stdout
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "sender" in line]


# -- 1. the deployment ------------------------------------------------------------------------------

async def test_a_deployment_by_ceremony_exchanges_verified_messages(
        deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    world = deployment
    monkeypatch.setenv("HOTLINE_PASSPHRASE", PASSPHRASE)  # alice's key, opened in this process
    first = send(world, "alice", "Request consultation at 0900Z")
    answer = send(world, "bob", "Agreed, 0900Z")
    for name, index, sender in (("bob", first, "alice"), ("alice", answer, "bob")):
        [line] = heard(world, name, index - 1, 1)
        assert (line["index"], line["sender"], line["kind"], line["verified"]) == (
            index, sender, "message", True)
        assert line["body"]["text"] in ("Request consultation at 0900Z", "Agreed, 0900Z")  # opened
    agents = [Agent(world.member(f"{p}-agent"), f"{p}-agent", world.url) for p in PARTIES]
    try:
        await health_becomes(world.member("alice"), "alice", world.url, "UP")
        await until(lambda: all(agent.cosigned() for agent in agents))
    finally:
        for agent in agents:
            agent.stop()
    verdict = hotline(world.member("audrey"), "audit", "verify", "--as", "audrey")
    assert verdict.stdout.startswith("OK: log hotline.test:"), verdict.stdout
    shown = hotline(world.member("alice"), "roster", "show", "--as", "alice").stdout
    for party in PARTIES:
        assert party in shown
    assert "north-south" in shown
    assert_private_keys_stay_home(world)


# -- 2. lost laptop ---------------------------------------------------------------------------------

async def test_a_lost_laptop_is_revoked_and_replaced(deployment: Deployment) -> None:
    world = deployment
    before = send(world, "bob", "Sent before the laptop was lost")
    old_key = key_id_of(world.member("bob") / "keys" / "bob.pub.json")
    south = world.authority("south")
    hotline(south, "authority", "revoke", "--party", "south", "--member", "bob", "--key", old_key,
            "--reason", "laptop lost")
    revocation = newest(south / "roster", "revoke-bob-*.json")
    world.submit(south, revocation)
    refused(world.member("bob"), "auth.revoked", "send", "--as", "bob", "--channel",
            "north-south", "--field", "text=from the stolen laptop")
    # what bob signed before the revocation still verifies, for alice and for the auditor
    [message] = heard(world, "alice", before - 1, 1)
    assert (message["sender"], message["verified"]) == ("bob", True)
    # bob's new laptop: a new key, enrolled by south, joined with the descriptor
    new_home = world.root / "bob-new-laptop"
    world.enroll("bob", "south", "liaison", home=new_home)
    send(world, "bob", "From my new laptop", home=new_home)
    # the new laptop published its encryption key at once, in place of the lost one's: what
    # alice seals now reaches it (and not the thief)
    after = send(world, "alice", "Do you read me on the new laptop?")
    [line] = heard(world, "bob", after - 1, 1, home=new_home)
    assert line["body"]["text"] == "Do you read me on the new laptop?"
    with sqlite3.connect(f"file:{world.operator / 'hotline.db'}?mode=ro", uri=True) as db:
        (leaf,) = db.execute("SELECT leaf FROM entries WHERE idx = ?", (after,)).fetchone()
    sealed = Envelope.from_json(json.loads(leaf)["envelope"])
    thief = SealedView(world.member("bob"), party="south", member="bob",  # the lost laptop's keys
                       passphrase=PASSPHRASE.encode(), templates=TemplateSet())
    assert thief.keys and thief.opened(sealed) == {}
    new_key = key_id_of(new_home / "keys" / "bob.pub.json")
    hotline(world.member("audrey"), "audit", "verify", "--as", "audrey", "--require-witnesses", "0")
    report = hotline(world.member("audrey"), "audit", "report", "--as", "audrey", "--channel",
                     "north-south", "--require-witnesses", "0", "--json").stdout
    members = json.loads(report[report.index("{"):])["keys"]["members"]
    bobs = {m["key"]: m for m in members if m["member"] == "bob"}
    assert set(bobs) == {old_key, new_key}
    assert bobs[old_key]["revoked_at"] is not None and bobs[old_key]["reason"] == "laptop lost"
    assert bobs[new_key]["revoked_at"] is None
    assert_private_keys_stay_home(world)


# -- 3. authority rotation ----------------------------------------------------------------------------

async def test_north_rotates_its_authority(deployment: Deployment) -> None:
    world = deployment
    north = world.authority("north")
    hotline(north, "authority", "rotate", "--party", "north", "--hybrid")  # now post-quantum too
    world.submit(north, newest(north / "roster", "handover-north-*.json"))
    # the agreement re-signed, naming north's new authority key
    assert world.agreement is not None
    base = carry(world.agreement, north / "base")
    pins = [a for p in PARTIES for a in ("--authority", str(carry(
        world.authority(p) / "keys" / f"authority-{p}.pub.json", north / "incoming-2")))]
    hotline(north, "agreement", "draft", "--channel", "north-south", "--based-on", str(base),
            *pins, "--out", str(north / "north-south-v2.json"))
    world.submit(world.authority("mediator"),
                 world.sign_around(north / "north-south-v2.json", PARTIES))
    # a member enrolled by the new key works; alice (enrolled by the old one) still does
    world.enroll("nina", "north", "liaison")
    send(world, "nina", "Enrolled by north's new authority")
    send(world, "alice", "Enrolled by north's first authority")
    hotline(world.member("audrey"), "audit", "verify", "--as", "audrey", "--require-witnesses", "0")
    # the retired key signs an enrollment after the handover: refused by the server and by a client
    retired = newest(north / "keys", "authority-north.retired-*.pem")
    old = load_member_key(retired, PASSPHRASE.encode())
    intruder = load_member_key(north / "keys" / "authority-north.pem", PASSPHRASE.encode())
    document = sign_document(enrollment(
        party="north", member="mallory", role=Role.LIAISON, key=intruder.public_key,
        not_before=utc_now() - timedelta(days=400), not_after=utc_now() + timedelta(days=30)), old)
    forged = world.root / "mallory-enrollment.json"
    forged.write_text(dumps(document.to_json()))
    size = entries_logged(world)
    refused(world.member("bob"), "roster.retired_authority", "roster", "submit", str(forged),
            "--server", world.url)
    assert entries_logged(world) == size
    refused(world.member("alice"), "roster.retired_authority", "roster", "check", str(forged),
            "--as", "alice")
    assert_private_keys_stay_home(world)


# -- 4. a new channel ---------------------------------------------------------------------------------

async def test_a_new_channel_is_opened_by_ceremony(deployment: Deployment) -> None:
    world = deployment
    mediator = world.authority("mediator")
    pins = [a for p in ("north", "mediator") for a in ("--authority", str(carry(
        world.authority_files[p], mediator / "incoming")))]
    hotline(mediator, "agreement", "draft", "--channel", "north-mediator", "--parties",
            "north,mediator", *pins, "--templates", "consultation-request",
            "--auditor", "mediator:audrey", "--witness", "north:north-agent",
            "--witness", "mediator:mediator-agent",
            "--out", str(mediator / "north-mediator-v1.json"))
    world.submit(mediator, world.sign_around(mediator / "north-mediator-v1.json",
                                             ("north", "mediator")))
    tomorrow = format_time(utc_now() + timedelta(days=1))
    hotline(world.member("alice"), "send", "--as", "alice", "--channel", "north-mediator",
            "--template", "consultation-request", "--field", "subject=Border incident",
            "--field", "requested_level=minister", "--field", f"proposed_times={tomorrow}",
            "--field", "urgency=urgent")
    # its template set is its own: the free-text message north-south agreed is refused here
    refused(world.member("alice"), "template.unknown", "send", "--as", "alice", "--channel",
            "north-mediator", "--field", "text=not agreed here")
    send(world, "alice", "agreed there", channel="north-south")
    # south is no party of it
    result = hotline(world.member("bob"), "send", "--as", "bob", "--channel", "north-mediator",
                     "--field", "text=let me in", ok=False)
    assert result.returncode == 1 and re.search(r"channel\.(not_member|unknown)", result.stderr)


# -- 5. bad input -------------------------------------------------------------------------------------

async def test_bad_ceremony_input_is_refused_and_nothing_is_written(deployment: Deployment) -> None:
    world = deployment
    south, bob = world.authority("south"), world.member("bob")
    size = entries_logged(world)
    # a document signed by the wrong authority: south's signature on an enrollment for north
    hotline(world.member("mallory"), "keys", "new", "--as", "mallory")
    mallory = carry(world.member("mallory") / "keys" / "mallory.pub.json", south / "incoming")
    hotline(south, "authority", "enroll", "--party", "south", "--member", "mallory", "--role",
            "liaison", "--key", str(mallory))
    signed = parse(newest(south / "roster", "enroll-mallory-*.json").read_bytes())
    signed["document"]["party"] = "north"
    wrong = world.root / "wrong-authority.json"
    wrong.write_text(dumps(signed))
    refused(bob, "roster.bad_signature", "roster", "submit", str(wrong), "--server", world.url)
    # an enrollment for a party nobody pinned
    west = world.root / "authority-west"
    hotline(west, "authority", "new", "--party", "west")
    hotline(west, "authority", "enroll", "--party", "west", "--member", "mallory", "--role",
            "liaison", "--key", str(carry(mallory, west / "incoming")))
    refused(bob, "roster.unknown_party", "roster", "submit",
            str(newest(west / "roster", "enroll-mallory-*.json")), "--server", world.url)
    # an enrollment already expired
    authority = load_member_key(south / "keys" / "authority-south.pem", PASSPHRASE.encode())
    lapsed = sign_document(enrollment(
        party="south", member="mallory", role=Role.LIAISON,
        key=PublicKey.from_json(parse(mallory.read_bytes())["key"]),
        not_before=utc_now() - timedelta(days=60), not_after=utc_now() - timedelta(days=30)),
        authority)
    expired = world.root / "expired.json"
    expired.write_text(dumps(lapsed.to_json()))
    refused(bob, "roster.expired", "roster", "submit", str(expired), "--server", world.url)
    late = hotline(south, "authority", "enroll", "--party", "south", "--member", "mallory",
                   "--role", "liaison", "--key", str(mallory), "--not-before",
                   "2020-01-01T00:00:00Z", "--not-after", "2020-02-01T00:00:00Z",
                   "--out", str(world.root / "never.json"), ok=False)
    assert late.returncode == 2 and "ended already" in late.stderr, late.stderr
    assert not (world.root / "never.json").exists()
    # a handover not signed by both keys
    hotline(south, "authority", "rotate", "--party", "south")
    handover = parse(newest(south / "roster", "handover-south-*.json").read_bytes())
    handover["sigs"] = handover["sigs"][:1]
    half = world.root / "half-handover.json"
    half.write_text(dumps(handover))
    refused(bob, "roster.unsigned", "roster", "submit", str(half), "--server", world.url)
    assert entries_logged(world) == size  # nothing the server refused was logged
    # a tampered descriptor; a safety number that does not match: no profile written
    newcomer = world.member("mallory")
    tampered = parse((world.operator / "descriptor.json").read_bytes())
    tampered["descriptor"]["servers"] = ["ws://203.0.113.7:8470/v1/ws"]
    (newcomer / "descriptor.json").write_text(dumps(tampered))
    expects = [a for p in PARTIES for a in ("--expect", f"{p}={world.safety[p]}")]
    refused(newcomer, "descriptor.bad_signature", "join", str(newcomer / "descriptor.json"),
            "--as", "mallory", "--party", "south", *expects)
    genuine = carry(world.operator / "descriptor.json", newcomer / "genuine")
    wrong_number = [*expects[:-1], "mediator=" + " ".join(["00000"] * 12)]
    refused(newcomer, "join.fingerprint_mismatch", "join", str(genuine), "--as", "mallory",
            "--party", "south", *wrong_number)
    assert not (newcomer / "profiles").exists()
