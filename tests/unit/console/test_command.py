"""``hotline client``: its options, and a refusal before any terminal UI starts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hotline.cli import main
from hotline.console.command import client


def test_help_names_every_option() -> None:
    result = CliRunner().invoke(client, ["--help"], obj={"home": "."})
    assert result.exit_code == 0
    for option in ("--as", "--server", "--outbox", "--lang"):
        assert option in result.output


def test_an_unknown_member_is_a_usage_error(tmp_path: Path) -> None:
    """Through the ``hotline`` command, as a user runs it: `error: CODE: message`, exit 2."""
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "client", "--as", "nobody"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: config.unknown_profile: ")
    assert "no profile 'nobody'" in result.stderr
