"""Crash points (hotline.crashpoints) in the real server: an armed point SIGKILLs ``hotline serve``
where it stands, and the restart recovers what that moment left; a malformed setting is refused.
(``scripts/crashtest.py`` uses them under load: tests/integration/test_crashtest.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from hotline.client.logapi import LogClient, http_base
from hotline.client.profile import Profile
from hotline.store.checkpointfile import read_checkpoint_file
from hotline.tlog import verify_checkpoint
from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow


def serve_armed(home: Path, points: str) -> subprocess.CompletedProcess[str]:
    """``hotline serve`` with ``HOTLINE_CRASHPOINTS=points``, until it exits (a point that is
    never reached leaves it serving: the timeout then fails the test and kills it)."""
    env = {**os.environ, "HOTLINE_SERVER_PORT": "0", "HOTLINE_CRASHPOINTS": points}
    return subprocess.run([sys.executable, "-m", "hotline.cli", "--home", str(home), "serve"],
                          capture_output=True, text=True, env=env, timeout=60)


def fired(done: subprocess.CompletedProcess[str], point: str) -> bool:
    return (done.returncode == -signal.SIGKILL
            and json.dumps({"event": "crashpoint.fired", "point": point}) in done.stderr)


def test_a_malformed_setting_is_refused_at_start(home: Path) -> None:
    done = serve_armed(home, "commit.later=2")
    assert done.returncode == 1 and "listening" not in done.stdout
    assert "config.invalid" in done.stderr and "unknown crash point 'commit.later'" in done.stderr


def test_killed_before_its_first_commit_the_server_imports_the_roster_again(
        home: Path, server_process: ServerProcess) -> None:
    done = serve_armed(home, "commit.before")
    assert fired(done, "commit.before") and "listening" not in done.stdout
    assert read_checkpoint_file(home / "hotline.db.checkpoint") is None  # nothing was published

    url = server_process.start()
    with urllib.request.urlopen(f"{http_base(url)}/healthz") as answer:
        size = json.load(answer)["log_size"]
    assert size == len(list((home / "roster").glob("*.json")))  # each document once
    log_key = Profile.load(home, "audrey").log_key
    assert log_key is not None
    assert verify_checkpoint(LogClient(http_base(url)).checkpoint(), log_key).size == size


def test_killed_with_a_checkpoint_on_file_but_not_stored_the_restart_stores_and_serves_it(
        home: Path, server_process: ServerProcess) -> None:
    done = serve_armed(home, "checkpoint.filed")
    assert fired(done, "checkpoint.filed")
    saved = read_checkpoint_file(home / "hotline.db.checkpoint")
    assert saved is not None and saved.size > 0

    url = server_process.start()
    history = LogClient(http_base(url)).checkpoints()
    assert [c.note for c in history if c.size == saved.size] == [saved.note]
