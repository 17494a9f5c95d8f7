#!/usr/bin/env python3
"""Make ``docs/availability.png``: the availability plot of a real run with injected outages.

Nothing is simulated. The script creates a demo deployment (``hotline init``, heartbeats every
5 s) in a temporary folder, serves it (``hotline serve``) and runs the three parties' agents
(``hotline agent``), each a child process, for ``--minutes`` (10 by default). Two outages are
injected, as an operator would cause them:

- at 20% of the run, south's agent is stopped (SIGTERM) for ``--agent-down`` seconds, then
  started again: the channel goes DEGRADED, then DOWN (south silent), then UP;
- at 55%, the server is stopped for ``--server-down`` seconds, then started again on the same
  port: every party falls silent at once, an outage of the host.

At the end audrey (the auditor) exports the log, and ``hotline audit availability --export ...
--plot OUT`` draws it from that export; the text report is printed. The export and the text are
kept in ``--work`` (default: a fresh folder under /tmp) for inspection.

    .venv/bin/python scripts/availability_demo.py                  # ~10 minutes; docs/availability.png
    .venv/bin/python scripts/availability_demo.py --minutes 3 --out /tmp/a.svg

Every child is stopped by the script, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "availability.png"
PARTIES = ("north", "south", "mediator")
CHANNEL = "north-south"
INTERVAL = 5  # seconds between heartbeats, written into the agreement


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Deployment:
    """The deployment in ``home`` and the children it runs (server, agents)."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.server: subprocess.Popen[str] | None = None
        self.agents: dict[str, subprocess.Popen[str]] = {}
        self.env = {**os.environ, "HOTLINE_TLOG_CHECKPOINT_DELAY": "0.5"}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "hotline.cli", "--home", str(self.home),
                                 *args], capture_output=True, text=True, env=self.env, timeout=300)
        if check and result.returncode != 0:
            raise SystemExit(f"hotline {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def serve(self) -> None:
        log = (self.home / "server.log").open("a")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "hotline.cli", "--home", str(self.home), "serve"],
            stdout=subprocess.PIPE, stderr=log, text=True, env=self.env)
        assert self.server.stdout is not None
        line = self.server.stdout.readline()  # blocks until the server listens (or exits)
        if "listening on " not in line:
            raise SystemExit(f"the server did not start: {line!r} (see {self.home}/server.log)")

    def start_agent(self, party: str) -> None:
        log = (self.home / f"{party}-agent.log").open("a")
        self.agents[party] = subprocess.Popen(
            [sys.executable, "-m", "hotline.cli", "--home", str(self.home), "agent", "--as",
             f"{party}-agent"], stdout=log, stderr=log, text=True, env=self.env)

    def stop_agent(self, party: str) -> None:
        stop(self.agents.pop(party))

    def stop_server(self) -> None:
        if self.server is not None:
            stop(self.server)
            self.server = None

    def stop_all(self) -> None:
        for party in list(self.agents):
            self.stop_agent(party)
        self.stop_server()


def stop(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=15)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    if child.stdout is not None:
        child.stdout.close()


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    work = Path(args.work or tempfile.mkdtemp(prefix="hotline-availability-"))
    home = work / "home"
    deployment = Deployment(home, free_port())
    length = args.minutes * 60
    agent_down = (0.20 * length, 0.20 * length + args.agent_down)
    server_down = (0.55 * length, 0.55 * length + args.server_down)
    deployment.cli("init", "--heartbeat-interval", str(INTERVAL), "--port", str(deployment.port))
    try:
        deployment.serve()
        for party in PARTIES:
            deployment.start_agent(party)
        say(f"serving {home} on port {deployment.port}; run of {length:.0f} s")
        start = time.monotonic()
        events = sorted([(agent_down[0], "stop south's agent"), (agent_down[1], "start south's agent"),
                         (server_down[0], "stop the server"), (server_down[1], "start the server"),
                         (length, "end")])
        for at, event in events:
            time.sleep(max(0.0, start + at - time.monotonic()))
            say(event)
            if event == "stop south's agent":
                deployment.stop_agent("south")
            elif event == "start south's agent":
                deployment.start_agent("south")
            elif event == "stop the server":
                deployment.stop_server()
            elif event == "start the server":
                deployment.serve()
        time.sleep(2 * INTERVAL)  # the agents witness the last checkpoint
        export = work / "log.jsonl"
        deployment.cli("audit", "export", "--as", "audrey", "--out", str(export))
    finally:
        deployment.stop_all()
    report = deployment.cli("audit", "availability", "--as", "audrey", "--channel", CHANNEL,
                            "--export", str(export), "--plot", str(args.out))
    (work / "availability.txt").write_text(report.stdout)
    print(report.stdout, end="")
    say(f"wrote {args.out}; the export and the report are in {work}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="image to write (.png, .svg)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run")
    parser.add_argument("--agent-down", type=float, default=90.0,
                        help="seconds south's agent is stopped")
    parser.add_argument("--server-down", type=float, default=45.0,
                        help="seconds the server is stopped")
    parser.add_argument("--work", help="folder for the deployment, the export and the report")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
