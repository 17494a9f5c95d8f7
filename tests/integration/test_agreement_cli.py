"""Issue 4: `hotline agreement draft|sign|submit` and `hotline templates` against a server process.
A channel's template set changes only once every party's authority signed the new version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hotline.keyfiles import load_private_key
from hotline.norms.files import load_templates
from tests.conftest import ServerProcess, hotline_cli
from tests.integration.test_norms import DRILL

pytestmark = pytest.mark.slow  # real servers or child processes in every test

V1 = "roster/90-agreement-north-south-v1.json"


def send_text(home: Path, url: str, text: str) -> tuple[int, str]:
    done = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel", "north-south",
                       "--field", f"text={text}")
    return done.returncode, done.stdout + done.stderr


def test_new_agreement_takes_effect_only_when_every_party_signed(server_process: ServerProcess) -> None:
    url = server_process.start()
    home = server_process.home
    draft = home / "v2.json"
    # version 2: drop free text, add a drill template installed after the server started
    (home / "protocols" / "drill.yaml").write_text(DRILL)
    made = hotline_cli(home, "agreement", "draft", "--channel", "north-south", "--based-on",
                       str(home / V1), "--templates", "heartbeat,echo,preagreed,drill",
                       "--out", str(draft))
    assert made.returncode == 0, made.stderr
    assert "version 2" in made.stdout and "4 templates" in made.stdout
    doc = json.loads(draft.read_text())
    assert doc["sigs"] == [] and doc["document"]["catalogue"]  # the catalogue carried over

    for party in ("north", "south"):
        signed = hotline_cli(home, "agreement", "sign", str(draft), "--key",
                             str(home / "keys" / f"authority-{party}.pem"))
        assert signed.returncode == 0, signed.stderr
    assert "1 more signature(s) needed" in signed.stdout
    early = hotline_cli(home, "agreement", "submit", str(draft), "--server", url)
    assert early.returncode == 1 and "roster.unsigned" in early.stderr and "mediator" in early.stderr
    assert send_text(home, url, "version 1 still rules")[0] == 0

    stranger = hotline_cli(home, "agreement", "sign", str(draft), "--key",
                           str(home / "keys" / "alice.pem"))
    assert stranger.returncode == 1 and "not the authority of any party" in stranger.stderr
    last = hotline_cli(home, "agreement", "sign", str(draft), "--key",
                       str(home / "keys" / "authority-mediator.pem"))
    assert last.returncode == 0 and "all parties have signed" in last.stdout
    submitted = hotline_cli(home, "agreement", "submit", str(draft), "--server", url)
    assert submitted.returncode == 0, submitted.stderr
    assert "agreement north-south version 2 logged at index" in submitted.stdout

    code, out = send_text(home, url, "free text is no longer agreed")
    assert code == 1 and "template.unknown" in out
    drill = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel", "north-south",
                        "--template", "drill", "--field", "text=drill")
    assert drill.returncode == 0, drill.stderr
    again = hotline_cli(home, "agreement", "submit", str(draft), "--server", url)
    assert again.returncode == 0 and "already logged" in again.stdout


def test_draft_refuses_what_the_server_would(home: Path) -> None:
    out = str(home / "draft.json")
    unknown = hotline_cli(home, "agreement", "draft", "--channel", "north-south", "--parties",
                          "north,west", "--out", out)
    assert unknown.returncode == 2 and "no pinned authority key for west" in unknown.stderr
    missing = hotline_cli(home, "agreement", "draft", "--channel", "north-south", "--parties",
                          "north,south", "--templates", "message,telepathy", "--out", out)
    assert missing.returncode == 2 and "no template 'telepathy'" in missing.stderr
    draft = ["agreement", "draft", "--channel", "north-south", "--parties", "north,south", "--out", out]
    no_witness = hotline_cli(home, *draft)
    assert no_witness.returncode == 2 and "name at least one witness" in no_witness.stderr
    bare = hotline_cli(home, *draft, "--witness", "north:north-agent", "--auditor", "audrey")
    assert bare.returncode == 2 and "give PARTY:NAME" in bare.stderr
    foreign = hotline_cli(home, *draft, "--witness", "west:west-agent")
    assert foreign.returncode == 2 and "no pinned authority key for west" in foreign.stderr
    assert not Path(out).exists()


def test_draft_names_auditors_and_witnesses_with_their_authority(home: Path) -> None:
    """Defect 6: an auditor or witness is named with the authority that may enroll it."""
    out = home / "draft.json"
    made = hotline_cli(home, "agreement", "draft", "--channel", "north-south", "--parties",
                       "north,south", "--auditor", "mediator:audrey", "--witness",
                       "north:north-agent", "--witness", "south:south-agent", "--out", str(out))
    assert made.returncode == 0, made.stderr
    doc = json.loads(out.read_text())["document"]
    authority = {p: load_private_key(home / "keys" / f"authority-{p}.pem").key_id
                 for p in ("north", "south", "mediator")}
    assert doc["auditors"] == [{"id": "audrey", "authority": authority["mediator"]}]
    assert doc["witnesses"] == [{"id": "north-agent", "authority": authority["north"]},
                                {"id": "south-agent", "authority": authority["south"]}]


def test_templates_lists_and_describes(home: Path) -> None:
    listed = hotline_cli(home, "templates")
    assert listed.returncode == 0
    assert len(listed.stdout.splitlines()) == 12 and "launch-notification" in listed.stdout
    shown = hotline_cli(home, "templates", "launch-notification")
    assert shown.returncode == 0 and "1988" in shown.stdout and "* window.start" in shown.stdout


def test_send_types_fields_by_the_schema(server_process: ServerProcess) -> None:
    url = server_process.start()
    home = server_process.home
    sent = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel", "north-south",
                       "--template", "preagreed", "--field", "number=6", "--field", "code=LINK-TEST")
    assert sent.returncode == 0, sent.stderr
    heard = hotline_cli(home, "listen", "--as", "bob", "--server", url, "--after", "-1",
                        "--count", "1", "--json", "--lang", "ru")
    line, proof = (json.loads(text) for text in heard.stdout.splitlines())
    assert proof == {"index": line["index"], "proof": "included", "checkpoint": proof["checkpoint"]}
    assert line["body"] == {"number": 6, "code": "LINK-TEST"}  # an integer, typed by the schema
    assert line["text"].startswith("Проверочное сообщение")  # shown in the receiver's language
    preagreed = load_templates(home / "protocols").latest("preagreed")
    assert preagreed is not None and line["precedence"] == preagreed.default_precedence.value
    mistyped = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel",
                           "north-south", "--template", "preagreed", "--field", "number=six")
    assert mistyped.returncode == 2 and "number: 'six' is not an integer" in mistyped.stderr
    assert "fields (* required)" in mistyped.stderr


@pytest.mark.parametrize(("option", "given", "field", "stored", "bad", "refusal"), [
    ("--epoch-hours", "6", "epoch_hours", 6, ("0", "745", "six"), "--epoch-hours"),
    ("--ed25519-only", "heartbeat, echo", "ed25519_only", ["echo", "heartbeat"], ("telepathy",),
     "telepathy is not among the agreed templates"),
])
def test_draft_sets_the_sealing_and_signature_options_and_keeps_them(
        home: Path, option: str, given: str, field: str, stored: Any, bad: tuple[str, ...],
        refusal: str) -> None:
    """`--epoch-hours` (the epochs of the keys for sealed fields; absent: 24 h) and
    `--ed25519-only` (templates hybrid keys may sign with the Ed25519 half alone; only agreed
    ones): written as given, kept by the next version, absent unless given."""
    first, second = home / "v1.json", home / "v2.json"
    base = ["agreement", "draft", "--channel", "north-south", "--parties", "north,south",
            "--witness", "north:north-agent"]
    made = hotline_cli(home, *base, option, given, "--out", str(first))
    assert made.returncode == 0, made.stderr
    assert json.loads(first.read_text())["document"][field] == stored
    kept = hotline_cli(home, "agreement", "draft", "--based-on", str(first), "--out", str(second))
    assert kept.returncode == 0, kept.stderr
    assert json.loads(second.read_text())["document"][field] == stored
    plain = hotline_cli(home, *base, "--out", str(home / "plain.json"))
    assert plain.returncode == 0 and field not in json.loads((home / "plain.json").read_text())["document"]
    for value in bad:
        refused = hotline_cli(home, *base, option, value, "--out", str(home / "x.json"))
        assert refused.returncode == 2 and refusal in refused.stderr
