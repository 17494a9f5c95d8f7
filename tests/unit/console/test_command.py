"""``hotline client``: its options, and a refusal before any terminal UI starts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hotline.console.command import client


def test_help_names_every_option() -> None:
    result = CliRunner().invoke(client, ["--help"], obj={"home": "."})
    assert result.exit_code == 0
    for option in ("--as", "--server", "--outbox", "--lang"):
        assert option in result.output


def test_an_unknown_member_is_refused_with_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(client, ["--as", "nobody"], obj={"home": str(tmp_path)})
    assert result.exit_code == 1
    assert "no profile 'nobody'" in result.output
