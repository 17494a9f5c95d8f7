"""Request ids over a real server (``hotline.wire.frames``): each answer echoes the id of the
request it answers, a refusal too, and a request without one (an older client) is answered
without one; the client gives each answer to its own request, not to the oldest waiting."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from websockets.asyncio.client import connect

from hotline.client.profile import Profile
from hotline.errors import ProtocolViolation
from hotline.wire import frames
from hotline.wire.session import ClientSession
from tests.conftest import DEMO_ROSTER, Running

CHANNEL = "north-south"
WAIT = 10.0
AGREEMENT = 7  # the channel's agreement entry, after the demo roster's 7 enrollments


async def test_each_answer_echoes_its_request(server: Running) -> None:
    profile = Profile.load(server.home, "alice")
    session = ClientSession(key=profile.signing_key(), origin=profile.origin)
    requests = [
        '{"type": "fetch", "index": 999, "req": 5}',
        '{"type": "fetch", "index": 7, "req": 6}',
        '{"type": "ping", "data": "a", "req": 7}',
        '{"type": "ping", "data": "old client"}',
        '{"type": "resume", "channel": "north-south", "after": 6, "req": 8}',
        '{"type": "fetch", "index": -1, "req": 9}',
        '{"type": "fetch", "req": 10, "unknown": 1}',
        '{"type": "fetch"}',
    ]
    async with connect(server.url, proxy=None, compression=None) as ws:
        challenge = session.receive(await ws.recv())
        assert isinstance(challenge, frames.Challenge)
        await ws.send(frames.encode(session.auth_frame(challenge, now=datetime.now(UTC))))
        session.receive(await ws.recv())
        for text in requests:
            await ws.send(text)
        answers: dict[Any, list[dict[str, Any]]] = {}
        async with asyncio.timeout(WAIT):
            while sum(len(v) for v in answers.values()) < 9:  # 8 answers, and 1 replayed
                frame = json.loads(await ws.recv())
                if frame["type"] in ("roster", "health") or (
                        frame["type"] == "deliver" and "req" not in frame):
                    if frame["type"] == "deliver":
                        answers.setdefault("replayed", []).append(frame)
                    continue
                answers.setdefault(frame.get("req"), []).append(frame)
    assert [(a["type"], a["code"]) for a in answers[5]] == [("error", "log.no_entry")]
    assert [(a["type"], a["index"]) for a in answers[6]] == [("deliver", AGREEMENT)]
    assert answers[7] == [{"type": "pong", "data": "a", "req": 7}]
    assert {"type": "pong", "data": "old client"} in answers[None]
    assert [a["type"] for a in answers[8]] == ["resumed"] and answers[8][0]["index"] == AGREEMENT
    assert [a["index"] for a in answers["replayed"]] == [AGREEMENT]
    assert [(a["type"], a["code"]) for a in answers[9]] == [("error", "frame.malformed")]
    assert [(a["type"], a["code"]) for a in answers[10]] == [("error", "frame.malformed")]
    assert sorted(a["type"] for a in answers[None]) == ["error", "pong"]  # no id to echo


async def test_an_error_goes_to_the_request_it_answers(server: Running) -> None:
    """A replay is still running when a fetch of another request fails: the error is the
    fetch's, and the replay ends with its own answer (before request ids, the error went to
    the oldest waiter: the replay)."""
    alice = await server.client("alice")
    for n in range(30):
        await alice.send(channel=CHANNEL, template="message", body={"text": f"m{n}"})
    replay = asyncio.ensure_future(alice.resume(CHANNEL, -1))
    with pytest.raises(ProtocolViolation) as refused:
        await alice.fetch(999)
    assert refused.value.code == "log.no_entry"
    assert await asyncio.wait_for(replay, WAIT) == DEMO_ROSTER + 29  # the last of the 30
    accepted = await alice.send(channel=CHANNEL, template="message", body={"text": "after"})
    assert accepted.index == DEMO_ROSTER + 30 and not accepted.is_duplicate
