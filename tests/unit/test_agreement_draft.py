"""`hotline agreement draft` on an authority's offline machine (issue 15): no hotline.toml, the
parties' keys from the public key files they exchanged (--authority), the templates from
--protocols or the shipped ones; and closing a channel (--close --at). Every refusal writes
nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from hotline.cli import main
from hotline.keys import SigningKey
from hotline.norms.files import load_templates, shipped_dir
from hotline.publicfiles import AuthorityKeyFile, MemberKeyFile, write_public
from tests.unit.test_roster import fixed_key

NORTH, MEDIATOR = fixed_key("authority/north"), fixed_key("authority/mediator")


def pub(folder: Path, party: str, key: SigningKey) -> str:
    path = folder / f"{party}-{key.key_id[:6]}.pub.json"
    write_public(path, AuthorityKeyFile(party=party, key=key.public_key.to_json()))
    return str(path)


def draft(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), "agreement", "draft", *args])


def new_channel(tmp_path: Path, *extra: str, out: str = "v1.json") -> tuple[Result, Path]:
    home, target = tmp_path / "authority", tmp_path / out
    result = draft(home, "--channel", "north-mediator", "--parties", "north,mediator",
                   "--authority", pub(tmp_path, "north", NORTH),
                   "--authority", pub(tmp_path, "mediator", MEDIATOR),
                   "--witness", "north:north-agent", "--auditor", "mediator:audrey",
                   "--out", str(target), *extra)
    return result, target


def document(path: Path) -> Any:
    return json.loads(path.read_text())["document"]


def test_a_new_channel_from_authority_files_without_a_deployment(tmp_path: Path) -> None:
    result, out = new_channel(tmp_path, "--templates", "message,heartbeat")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "authority" / "hotline.toml").exists()
    doc = document(out)
    assert doc["channel"] == "north-mediator" and doc["version"] == 1 and "ends" not in doc
    assert doc["parties"] == [{"id": "north", "authority": NORTH.key_id},
                              {"id": "mediator", "authority": MEDIATOR.key_id}]
    assert doc["witnesses"] == [{"id": "north-agent", "authority": NORTH.key_id}]
    assert doc["auditors"] == [{"id": "audrey", "authority": MEDIATOR.key_id}]
    shipped = load_templates(shipped_dir())
    held = [shipped.latest(t) for t in ("message", "heartbeat")]
    assert doc["templates"] == [{"id": t.id, "version": t.version, "sha256": t.sha256}
                                for t in held if t is not None]


def test_the_templates_come_from_protocols(tmp_path: Path) -> None:
    protocols = tmp_path / "protocols"
    protocols.mkdir()
    source = (shipped_dir() / "message.yaml").read_text()
    (protocols / "message.yaml").write_text(source)
    result, out = new_channel(tmp_path, "--protocols", str(protocols))
    assert result.exit_code == 0, result.output
    assert [t["id"] for t in document(out)["templates"]] == ["message"]
    result, out = new_channel(tmp_path, "--protocols", str(protocols), "--templates", "echo",
                              out="v1b.json")
    assert result.exit_code == 2 and "no template 'echo'" in result.output and not out.exists()


def test_the_current_key_after_a_handover_is_the_one_named(tmp_path: Path) -> None:
    current = SigningKey.generate()
    home, out = tmp_path / "authority", tmp_path / "v1.json"
    result = draft(home, "--channel", "north-mediator", "--parties", "north,mediator",
                   "--authority", pub(tmp_path, "north", current),
                   "--authority", pub(tmp_path, "mediator", MEDIATOR),
                   "--witness", "north:north-agent", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert document(out)["parties"][0] == {"id": "north", "authority": current.key_id}


@pytest.mark.parametrize("case", ["unpinned party", "member key file", "not json",
                                  "two keys for one party", "unpinned witness"])
def test_bad_authority_input_writes_nothing(tmp_path: Path, case: str) -> None:
    home, out = tmp_path / "authority", tmp_path / "v1.json"
    north, mediator = pub(tmp_path, "north", NORTH), pub(tmp_path, "mediator", MEDIATOR)
    member = tmp_path / "alice.pub.json"
    write_public(member, MemberKeyFile(name="alice", key=NORTH.public_key.to_json()))
    junk = tmp_path / "junk.json"
    junk.write_bytes(b'{"type": "authority-key", "type": "authority-key"}')
    parties, witness, files = "north,mediator", "north:north-agent", [north, mediator]
    if case == "unpinned party":
        parties = "north,south"
    elif case == "member key file":
        files = [north, str(member)]
    elif case == "not json":
        files = [north, str(junk)]
    elif case == "two keys for one party":
        files = [north, pub(tmp_path, "north", SigningKey.generate()), mediator]
    else:
        witness = "south:south-agent"
    args = [arg for f in files for arg in ("--authority", f)]
    result = draft(home, "--channel", "c", "--parties", parties, *args, "--witness", witness,
                   "--out", str(out))
    assert result.exit_code in (1, 2), result.output
    if case in ("member key file", "not json"):
        assert result.exit_code == 1
        assert "error: keys.bad_public_file: " in result.output
    assert not out.exists()


def test_closing_is_the_next_version_with_an_end(tmp_path: Path) -> None:
    made, v1 = new_channel(tmp_path, "--templates", "message")
    assert made.exit_code == 0, made.output
    home, v2 = tmp_path / "authority", tmp_path / "v2.json"
    result = draft(home, "--based-on", str(v1), "--close", "--at", "2099-01-01T00:00:00Z",
                   "--out", str(v2))
    assert result.exit_code == 0, result.output
    assert "closes at 2099-01-01T00:00:00" in result.output
    before, after = document(v1), document(v2)
    assert after["version"] == 2 and after["ends"].startswith("2099-01-01T00:00:00")
    assert {k: v for k, v in after.items() if k not in ("version", "ends", "effective")} == \
        {k: v for k, v in before.items() if k not in ("version", "effective")}
    defaulted = draft(home, "--based-on", str(v1), "--close", "--out", str(tmp_path / "v2b.json"))
    assert defaulted.exit_code == 0 and "ends" in document(tmp_path / "v2b.json")


@pytest.mark.parametrize("args", [
    ["--close"],  # no --based-on: nothing to close
    ["--based-on", "V1", "--at", "2099-01-01T00:00:00Z"],  # --at without --close
    ["--based-on", "V1", "--close", "--at", "soon"],
    ["--based-on", "V1", "--close", "--at", "2000-01-01T00:00:00Z"],  # before it takes effect
    ["--based-on", "V1", "--channel", "other", "--close"],
])
def test_a_bad_closing_writes_nothing(tmp_path: Path, args: list[str]) -> None:
    made, v1 = new_channel(tmp_path, "--templates", "message")
    assert made.exit_code == 0, made.output
    out = tmp_path / "v2.json"
    result = draft(tmp_path / "authority", *[str(v1) if a == "V1" else a for a in args],
                   "--authority", pub(tmp_path, "north", NORTH),
                   "--authority", pub(tmp_path, "mediator", MEDIATOR), "--out", str(out))
    assert result.exit_code in (1, 2), result.output
    assert not out.exists()
