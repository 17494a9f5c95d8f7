"""``hotline console`` (and its old name ``hotline client``): its options, and a refusal before
any terminal UI starts."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hotline.cli import main
from hotline.console.command import client_alias, console


@pytest.mark.parametrize("command", [console, client_alias], ids=["console", "client"])
def test_help_names_every_option(command: click.Command) -> None:
    result = CliRunner().invoke(command, ["--help"], obj={"home": "."})
    assert result.exit_code == 0
    for option in ("--as", "--server", "--outbox", "--lang"):
        assert option in result.output


@pytest.mark.parametrize("name", ["console", "client"])
def test_an_unknown_member_is_a_usage_error(tmp_path: Path, name: str) -> None:
    """Through the ``hotline`` command, as a user runs it, by either name: `error: CODE:
    message`, exit 2."""
    result = CliRunner().invoke(main, ["--home", str(tmp_path), name, "--as", "nobody"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: config.unknown_profile: ")
    assert "no profile 'nobody'" in result.stderr


def test_the_help_lists_console_and_hides_the_old_name() -> None:
    """``hotline client`` was the console before ``hotline.client`` named the member library:
    the old name still runs the console but is no longer offered."""
    listed = CliRunner().invoke(main, ["--help"]).output
    assert "  console " in listed
    assert "  client " not in listed
    ctx = click.Context(main)
    client, console = main.get_command(ctx, "client"), main.get_command(ctx, "console")
    assert client is not None and console is not None
    assert client.callback is console.callback
    assert client.params is console.params
