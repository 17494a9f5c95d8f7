"""Issue 20, defects 5 and 6: the log API's answers come from a hostile host.

A relay (``tests.hostile_http``) stands between the real server and the agent, the witness and
the auditor, and answers what each case needs in place of the real answer: a body that is not
JSON, another content type, JSON of the wrong shape or with fields of the wrong type, an answer
that never ends, checkpoint pages that never go forward. Every one must be a typed error naming
the host; the agent and the witness log it and go on (heartbeats included), and recover once the
host answers honestly again; ``hotline audit verify`` stops with one line, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hotline.client.logapi import PAGE_ANSWER, SMALL_ANSWER, BadAnswer, LogClient
from hotline.client.profile import Profile
from hotline.deployment import init_deployment
from hotline.tlog import cosign
from hotline.tlog.note import parse_note
from tests.conftest import Running, hotline_cli, running_server, witness_once
from tests.hostile_http import Answer, HostileRelay, answer, hostile_relay

WAIT = 30.0  # seconds: a bound against hangs, never a synchronisation
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.1"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """North and south, heartbeats every second."""
    path = tmp_path / "home"
    init_deployment(path, parties=["north", "south"], heartbeat_interval=1, port=0,
                    origin="hotline.test", force=False)
    return path


@pytest.fixture
async def served(home: Path) -> AsyncIterator[tuple[Running, HostileRelay]]:
    async with running_server(home, **FAST) as server, hostile_relay(server.url) as relay:
        yield server, relay


async def grow(server: Running) -> int:
    """Alice sends a message; returns the log's size once a signed checkpoint covers it."""
    alice = await server.client("alice")
    index = (await alice.send(channel="north-south", template="message", body={"text": "hi"})).index
    await asyncio.wait_for(alice.receipt(index), WAIT)
    return int(index) + 1


# -- every LogClient method, every kind of lie -------------------------------------------------------

async def endless(chunk: bytes) -> AsyncIterator[bytes]:
    """An answer that never ends (sent chunked, no length): only a reader's bound stops it."""
    while True:
        yield chunk


WRONG_TYPES = {"/v1/log/checkpoints": '[{"size": "18", "note": 5}]',
               "/v1/log/witnessed": '[{"size": 18, "note": null}]',
               "/v1/log/entries": '[{"index": "0", "hash": 1}]',
               "/v1/log/proof/inclusion": '{"proof": [1, 2]}',
               "/v1/log/proof/consistency": '{"proof": ["AA=="]}',
               "/v1/log/cosignature": '{"added": "yes"}'}


def lies(path: str, *, limit: int) -> dict[str, Callable[[Answer], web.Response]]:
    """What a hostile host answers in place of the real answer to ``path``."""
    text = path not in WRONG_TYPES
    oversize = lambda real: web.Response(body=endless(b" " * 65536),  # noqa: E731
                                         headers={"Content-Type": real.content_type})
    if text:
        return {"wrong content type": lambda real: answer(real.body),
                "not UTF-8": lambda real: answer(b"\xff\xfe checkpoint", content_type="text/plain"),
                "endless": oversize,
                "one byte too many": lambda real: answer(b"x" * (limit + 1), content_type="text/plain")}
    return {"not JSON": lambda real: answer("<html>502 Bad Gateway</html>"),
            "wrong content type": lambda real: answer(real.body, content_type="text/html"),
            "not strict JSON": lambda real: answer(real.body[:-1] + b',"size":1.5}'
                                                   if real.body.endswith(b"}") else b"[1.5]"),
            "wrong shape": lambda real: answer("[]" if real.body.startswith(b"{") else '{"proof": []}'),
            "wrong field types": lambda real: answer(WRONG_TYPES[path]),
            "endless": oversize,
            "deep": lambda real: answer("[" * 100_000 + "]" * 100_000)}


def calls(client: LogClient, size: int, line: str) -> dict[str, tuple[str, Callable[[], Any], int]]:
    """Each LogClient method: the path it reads, the call, its answer bound."""
    small, page = SMALL_ANSWER, PAGE_ANSWER
    return {
        "checkpoint": ("/v1/log/checkpoint", client.checkpoint, small),
        "key_text": ("/v1/log/key", client.key_text, small),
        "checkpoints": ("/v1/log/checkpoints", client.checkpoints, page),
        "witnessed": ("/v1/log/witnessed", client.witnessed, page),
        "inclusion": ("/v1/log/proof/inclusion", lambda: client.inclusion(0, size), small),
        "consistency": ("/v1/log/proof/consistency", lambda: client.consistency(1, size), small),
        "entries": ("/v1/log/entries", lambda: list(client.entries(size)), page),
        "post_cosignature": ("/v1/log/cosignature", lambda: client.post_cosignature(size, line), small),
    }


@pytest.mark.slow
async def test_every_answer_of_a_lying_host_is_a_typed_error_naming_it(
        home: Path, served: tuple[Running, HostileRelay]) -> None:
    """Defect 5, for every LogClient method: each lie is a BadAnswer naming the host and the
    request, never a JSONDecodeError, KeyError or any other exception; the same calls through
    the relay succeed while it tells the truth."""
    server, relay = served
    size = await grow(server)
    await asyncio.to_thread(witness_once, home, server.url, "north-agent")  # a witnessed checkpoint
    audrey, agent = Profile.load(home, "audrey"), Profile.load(home, "north-agent")
    client = LogClient(relay.base, key=audrey.signing_key(), origin=audrey.origin, timeout=WAIT)
    note = await asyncio.to_thread(client.checkpoint)
    line = cosign(parse_note(note).body, name="north-agent", key=agent.signing_key(), timestamp=1)
    for name, (path, call, limit) in calls(client, size, line).items():
        await asyncio.to_thread(call)  # honest: the relay passes the real answers on
        for lie, rewrite in lies(path, limit=limit).items():
            relay.rules[path] = lambda request, real, rewrite=rewrite: rewrite(real)
            with pytest.raises(BadAnswer) as caught:
                await asyncio.to_thread(call)
            message = caught.value.message
            assert message.startswith(f"the host {relay.base} answered "), (name, lie, message)
            assert path in message, (name, lie, message)
            assert caught.value.code in ("log.bad_answer", "log.bad_page"), (name, lie)
        del relay.rules[path]


# -- defect 5: the agent and the witness go on ------------------------------------------------------

class Logged:
    """A ``hotline`` child process whose JSON log lines (stderr) go to a file the test reads."""

    def __init__(self, home: Path, name: str, *args: str) -> None:
        self.log = home / f"{name}.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "hotline.cli", "--home", str(home),
                                          *args], stdout=subprocess.DEVNULL, stderr=log)

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def events(self, event: str) -> list[dict[str, Any]]:
        lines = [line for line in self.text().splitlines() if line.startswith("{")]
        return [e for e in map(json.loads, lines) if e.get("event") == event]

    async def wait_for(self, event: str, count: int = 1,
                       where: Callable[[dict[str, Any]], bool] = lambda e: True) -> None:
        async def poll() -> None:
            while len([e for e in self.events(event) if where(e)]) < count:
                assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.text()}"
                await asyncio.sleep(0.05)
        await asyncio.wait_for(poll(), WAIT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)


@pytest.fixture
def processes() -> Iterator[list[Logged]]:
    started: list[Logged] = []
    yield started
    for process in started:
        process.stop()


def not_json(request: web.Request, real: Answer) -> web.Response:
    return answer("<html>502 Bad Gateway</html>")


@pytest.mark.slow
async def test_agent_keeps_beating_when_the_host_answers_its_witness_with_garbage(
        home: Path, served: tuple[Running, HostileRelay], processes: list[Logged]) -> None:
    """Defect 5 as found: the host answers the agent's witness a consistency proof that is not
    JSON. The agent logs the host misbehaving, keeps heartbeating and retrying, and cosigns
    again once the host answers honestly; it never exits or prints a traceback."""
    server, relay = served
    relay.rules["/v1/log/proof/consistency"] = not_json
    agent = Logged(home, "north-agent", "agent", "--as", "north-agent", "--server", relay.url,
                   "--witness-every", "0.2")
    processes.append(agent)
    await agent.wait_for("witness.cosigned")  # its first cosignature needs no proof
    await grow(server)  # a larger checkpoint: the next round asks for a consistency proof
    await agent.wait_for("witness.host_misbehaving")
    misbehaving = agent.events("witness.host_misbehaving")[0]
    assert misbehaving["level"] == "error" and misbehaving["code"] == "log.bad_answer"
    assert f"the host {relay.base} answered GET /v1/log/proof/consistency" in misbehaving["reason"]
    beats = len(agent.events("agent.heartbeat"))
    await agent.wait_for("agent.heartbeat", beats + 2)  # heartbeats go on
    await agent.wait_for("witness.host_misbehaving", 2)  # and the witness retries

    del relay.rules["/v1/log/proof/consistency"]  # the host tells the truth again
    first = agent.events("witness.cosigned")[0]["size"]
    await agent.wait_for("witness.cosigned", where=lambda e: e["size"] > first)
    assert agent.proc.poll() is None
    assert "Traceback" not in agent.text() and '"exception"' not in agent.text()


@pytest.mark.slow
async def test_witness_logs_a_lying_host_and_cosigns_once_it_answers_honestly(
        home: Path, served: tuple[Running, HostileRelay], processes: list[Logged]) -> None:
    """Defect 5, `hotline witness`: the same lie, then the truth."""
    server, relay = served
    assert await asyncio.to_thread(witness_once, home, server.url, "south-agent") is not None
    size = await grow(server)
    relay.rules["/v1/log/proof/consistency"] = not_json
    witness = Logged(home, "witness", "witness", "--as", "south-agent", "--server", relay.url,
                     "--interval", "0.1")
    processes.append(witness)
    await witness.wait_for("witness.host_misbehaving", 2)
    assert not witness.events("witness.cosigned")
    del relay.rules["/v1/log/proof/consistency"]
    await witness.wait_for("witness.cosigned", where=lambda e: e["size"] == size)
    assert witness.proc.poll() is None
    assert "Traceback" not in witness.text() and '"exception"' not in witness.text()


# -- defect 6: checkpoint pages that never go forward --------------------------------------------------

@pytest.mark.slow
async def test_audit_verify_stops_a_host_that_answers_the_same_checkpoint_page_forever(
        home: Path, served: tuple[Running, HostileRelay]) -> None:
    """Defect 6 as found: every request for checkpoints gets the first page again. `hotline
    audit verify` stops after the second page with one line naming the host and the request;
    honestly relayed, the same audit passes."""
    _, relay = served
    honest = await asyncio.to_thread(hotline_cli, home, "audit", "verify", "--as", "audrey",
                                     "--server", relay.url, "--require-witnesses", "0")
    assert honest.returncode == 0, honest.stderr

    first: list[bytes] = []

    def same_page(request: web.Request, real: Answer) -> web.Response:
        if not first:
            first.append(real.body)
        return answer(first[0])
    relay.rules["/v1/log/checkpoints"] = same_page
    relay.asked.clear()
    result = await asyncio.to_thread(hotline_cli, home, "audit", "verify", "--as", "audrey",
                                     "--server", relay.url, "--require-witnesses", "0",
                                     "--state", str(home / "fresh.json"))
    largest = max(c["size"] for c in json.loads(first[0]))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: log.bad_page: the host {relay.base} answered GET /v1/log/checkpoints?since="
        f"{largest} with a checkpoint of size {json.loads(first[0])[0]['size']} after size "
        f"{largest}: checkpoint pages must go forward"], result.stderr
    assert [a for a in relay.asked if a.startswith("/v1/log/checkpoints")] == [
        "/v1/log/checkpoints", f"/v1/log/checkpoints?since={largest}"]


def fake_page(since: int, count: int) -> str:
    return json.dumps([{"size": since + 1 + n, "note": "not signed\n"} for n in range(count)])


@pytest.mark.parametrize(("lie", "expected"), [
    (lambda since: fake_page(since, 1000), "more than 5000 checkpoints: a history this long is not read"),
    (lambda since: json.dumps([{"size": 5, "note": ""}, {"size": 3, "note": ""}]),
     "a checkpoint of size 3 after size 5: checkpoint pages must go forward"),
    (lambda since: json.dumps([{"size": 5, "note": ""}, {"size": 5, "note": ""}]),
     "a checkpoint of size 5 after size 5: checkpoint pages must go forward"),
], ids=["forward-forever", "backwards-within-a-page", "repeated-within-a-page"])
async def test_checkpoint_paging_advances_and_is_bounded(
        served: tuple[Running, HostileRelay], lie: Callable[[int], str], expected: str) -> None:
    """Defect 6, the other ways a host can page forever or backwards: sizes must strictly
    increase (within a page and across pages) and the history is bounded."""
    _, relay = served

    def rewrite(request: web.Request, real: Answer) -> web.Response:
        return answer(lie(int(request.query.get("since", "-1"))))
    relay.rules["/v1/log/checkpoints"] = rewrite
    client = LogClient(relay.base, timeout=WAIT, max_checkpoints=5000)
    with pytest.raises(BadAnswer) as caught:
        await asyncio.to_thread(client.checkpoints)
    assert caught.value.code == "log.bad_page"
    assert caught.value.message.startswith(f"the host {relay.base} answered GET /v1/log/checkpoints")
    assert caught.value.message.endswith(expected)
    assert len(relay.asked) <= 6  # stopped at the bound: 5000 checkpoints, 1000 a page
