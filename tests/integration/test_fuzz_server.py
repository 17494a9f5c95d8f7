"""Issue 12, fuzzing, against the real server: hostile HTTP query parameters, request bodies and
WebSocket frames each get a typed answer (400/401 with ``{"code", "message"}``, or an ``error``
frame with a ``family.reason`` code), never a 500, a traceback or a closed session, and the
server goes on serving. The bodies and frames are the deployment's own documents and frames,
mutated by the fuzz harness's structural mutator with a fixed seed."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect
from yarl import URL

from hotline.client.profile import Profile
from hotline.errors import CODE_FORM
from tests.conftest import Running, running_server
from tests.fuzzing import load_targets
from tests.integration.test_bad_input import Raw, recv
from tests.integration.test_tlog import authorization, http_url

T = load_targets()
MUTATIONS = 40


def typed(status: int, content_type: str, text: str) -> str:
    """The code of a typed HTTP refusal (anything else fails the test)."""
    assert status in (400, 401, 413), (status, text[:200])
    assert content_type == "application/json", (content_type, text[:200])
    answer = json.loads(text)
    assert set(answer) == {"code", "message"} and CODE_FORM.fullmatch(answer["code"]), answer
    return str(answer["code"])


async def request(http: aiohttp.ClientSession, method: str, url: str, *,
                  headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, str, str]:
    body = None if data is None else io.BytesIO(data)  # aiohttp warns of large raw bytes
    async with http.request(method, url, headers=headers, data=body) as response:
        return response.status, response.content_type, await response.text(errors="replace")


def mutations(seeds: list[bytes], rng: random.Random) -> list[bytes]:
    out = []
    while len(out) < MUTATIONS:
        edited = T.mutate_json(rng.choice(seeds), rng)
        if edited is not None:
            out.append(edited)
    return out


HOSTILE_BODIES = [b"", b"\xff\xfe", b"[" * 100_000, b'{"a":1,"a":2}', b"NaN", b"1e400",
                  b"9007199254740993", b'"\\ud800"', b'{"document": {}, "sigs": {}}', b"x" * 2_000_000]

# Query strings as sent (no re-encoding): none is a decimal from 0 to 2^53-1 without leading zeros.
HOSTILE_NUMBERS = ["-1", "01", "1.0", "1e3", "0x1", "+1", "", "%20", "1%00", "%FF", "%ED%A0%80",
                   "%EF%BC%91", "%D9%A3", "1_0", "9007199254740992", "9" * 1000, "%", "%%", "a"]


async def test_hostile_query_parameters_get_typed_refusals(home: Path) -> None:
    async with running_server(home) as server, aiohttp.ClientSession() as http:
        for number in HOSTILE_NUMBERS:
            for path in (f"/v1/log/proof/inclusion?index={number}&size=8",
                         f"/v1/log/proof/consistency?old=1&size={number}",
                         f"/v1/log/checkpoints?since={number}"):
                url = URL(http_url(server, path), encoded=True)
                assert typed(*await request(http, "GET", url)) == "http.bad_parameter", path
            # The entries endpoint, with a valid signature over exactly the hostile query.
            query = f"start={number}&end=2"
            url = URL(http_url(server, f"/v1/log/entries?{query}"), encoded=True)
            signed = {"Authorization": authorization(home, "audrey", url.query_string)}
            assert typed(*await request(http, "GET", url, headers=signed)) == "http.bad_parameter", query
        for query in ("start=0&end=1001", "start=5&end=1", "end=2", "start=0"):
            url = http_url(server, f"/v1/log/entries?{query}")
            signed = {"Authorization": authorization(home, "audrey", query)}
            assert typed(*await request(http, "GET", url, headers=signed)) == "http.bad_parameter"
        for header in ("", "Hotline", 'Hotline key="\u202e", time="x", sig="="', "x" * 4000):
            url = http_url(server, "/v1/log/entries?start=0&end=2")
            code = typed(*await request(http, "GET", url, headers={"Authorization": header}))
            assert code.startswith("auth."), code
        # Past aiohttp's line limit (8190 bytes) the HTTP parser refuses before any handler runs.
        too_long = http_url(server, f"/v1/log/proof/inclusion?index={'9' * 9000}&size=8")
        assert (await request(http, "GET", too_long))[0] == 400
        assert (await request(http, "GET", http_url(server, "/healthz")))[0] == 200


async def test_hostile_roster_and_cosignature_bodies_get_typed_refusals(home: Path) -> None:
    async with running_server(home) as server, aiohttp.ClientSession() as http:
        documents = [json.dumps(d.to_json()).encode() for d in (await server.client("alice")).documents]
        assert documents
        rng = random.Random(12)
        for body in [*HOSTILE_BODIES, *mutations(documents, rng)]:
            status, content_type, text = await request(http, "POST", http_url(server, "/v1/roster"),
                                                       data=body)
            if status != 200:  # a mutation that kept the document as it was is a duplicate
                typed(status, content_type, text)
        # Past the server's body limit (1 MiB) too, the refusal is typed (it was a text/plain 413).
        for path in ("/v1/roster", "/v1/log/cosignature"):
            too_large = await request(http, "POST", http_url(server, path), data=b" " * 2_000_000)
            assert too_large[0] == 413 and typed(*too_large) == "frame.too_large"
        checkpoint = (await request(http, "GET", http_url(server, "/v1/log/checkpoint")))[2]
        cosignature = json.dumps({"size": 8, "cosignature": checkpoint.split("\n\n")[1]}).encode()
        for body in [*HOSTILE_BODIES, *mutations([cosignature], rng)]:
            url = http_url(server, "/v1/log/cosignature")
            assert typed(*await request(http, "POST", url, data=body)).startswith(("frame.", "log."))
        assert (await request(http, "GET", http_url(server, "/healthz")))[0] == 200


ANSWERS = {"error", "accepted", "resumed", "deliver", "health", "checkpoint", "receipt", "pong"}


@pytest.mark.parametrize("seed", [1, 2])
async def test_hostile_frames_get_typed_answers_and_the_session_survives(server: Running,
                                                                        seed: int) -> None:
    """Rule 2 of hotline.wire.session under fuzzing: after welcome, no frame ends the session, and
    every answer is a frame of the protocol, errors with a ``family.reason`` code."""
    async with connect(server.url, proxy=None, compression=None, max_size=None) as ws:
        profile = Profile.load(server.home, "alice")
        alice = Raw(ws, profile.signing_key(), profile.origin)
        await alice.login()
        envelope = alice.envelope()
        frames = [alice.submit(envelope), {"type": "resume", "channel": "north-south", "after": 5},
                  {"type": "fetch", "index": 3}, {"type": "ping", "data": "x"}]
        rng = random.Random(seed)
        for n, body in enumerate(mutations([json.dumps(f).encode() for f in frames], rng)):
            await alice.ws.send(body.decode("utf-8"))  # the mutator writes ASCII-escaped JSON
            await alice.send({"type": "ping", "data": f"after {n}"})
            while (frame := await recv(alice.ws)) != {"type": "pong", "data": f"after {n}"}:
                assert frame.get("type") in ANSWERS, frame
                if frame["type"] == "error":
                    assert CODE_FORM.fullmatch(frame["code"]), frame
        # A submit is answered when its check is done, which may come after a later ping's pong:
        # the session is open if the last ping is answered, whatever typed answers come first.
        await alice.send({"type": "ping", "data": "still there?"})
        while (frame := await recv(alice.ws)) != {"type": "pong", "data": "still there?"}:
            assert frame.get("type") in ANSWERS and CODE_FORM.fullmatch(frame.get("code", "x.y")), frame
