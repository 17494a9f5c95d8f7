"""Issue 20, defects 1 and 5 for `hotline agreement submit`: a hostile host's answer (not JSON, JSON
of the wrong shape, an error whose text holds escape sequences) is a one-line typed error with
nothing of it obeyed by the terminal, never a traceback and never a success."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.display import unsafe
from tests.conftest import hotline_cli
from tests.integration.test_agreement_cli import V1

pytestmark = pytest.mark.slow  # real servers or child processes in every test

ANSWERS = {  # what the host says, as (status, body)
    "not json": (500, b"<html>\x1b[2J oops</html>"),
    "a list": (200, b"[1, 2, 3]"),
    "no index": (200, b'{"index": "999\\u001b[2J"}'),
    "escapes in the error": (400, b'{"code": "roster.bad\\u001b]0;x\\u0007", '
                                  b'"message": "\\u001b[2J\\u001b[Hagreement LOGGED at index 7"}'),
    "deep": (400, b"[" * 100_000 + b"]" * 100_000),
}


@pytest.fixture
def host() -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
    """A hostile host on a free loopback port answering each POST with the next queued answer."""
    queue: list[tuple[int, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, body = queue.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", queue
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("case", list(ANSWERS))
def test_a_hostile_answer_to_submit_is_a_clear_failure(
        home: Path, host: tuple[str, list[tuple[int, bytes]]], case: str) -> None:
    url, queue = host
    queue.append(ANSWERS[case])
    done = hotline_cli(home, "agreement", "submit", str(home / V1), "--server", url)
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr and "logged at index" not in done.stdout
    lines = done.stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert unsafe(done.stdout + lines[0]) == [], done.stderr
