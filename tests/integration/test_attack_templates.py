"""Issue 20, defects 3 and 4: a hostile party's signed agreement cannot freeze everyone.

Every party's authority signs version 2 of the north-south agreement, and it pins templates a
hostile party wrote: a catastrophic regular expression, a backreference, a schema that would take
a minute to check, a billion-laughs alias bomb. The agreement is submitted to the real server.
What must hold: a template that cannot be checked in bounded time is refused when it is loaded,
with a typed error (and envelopes under it are refused, ``template.mismatch``); the one RE2 can run
answers the hostile submission at once and correctly; a schema past the check's budget is refused
(``template.too_costly``); files no agreement pins are never parsed; loading runs in a worker
thread, never on the event loop; and the server answers everyone throughout.

Timing is not asserted. The hostile inputs would take hours under the old code (2^30 backtracking
paths for ``^(a+)+$`` against 30 ``a`` and a ``!``; 10^9 values in the alias bomb), so each test
finishing at all within the suite's budget is that evidence; that the loop is free while a load
is in progress is shown by holding the load's file open in its thread and being answered then.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest

from hotline.canonical import dumps, parse
from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.errors import ProtocolViolation
from hotline.keyfiles import load_private_key
from hotline.norms.files import load_templates
from hotline.roster import decode_document, sign_document
from tests.conftest import Running, ServerProcess, hotline_cli, running_server
from tests.integration.test_exchange import post_roster
from tests.integration.test_norms import logged
from tests.integration.test_templates_e2e import delivered_to

WAIT = 30
V1 = "roster/90-agreement-north-south-v1.json"
EVIL = "a" * 30 + "!"


def hostile(template_id: str, fields: str, *, prelude: str = "") -> bytes:
    """A template file with ``fields`` (YAML under ``fields:``), ``prelude`` before it."""
    return (textwrap.dedent(f"""\
        format: 1
        id: {template_id}
        version: 1
        title: A form a hostile party proposed
        basis: Test fixture, not shipped; signed by every party all the same.
        senders: {{roles: [liaison]}}
        precedence: {{default: ROUTINE, allowed: [ROUTINE]}}
        ack: none
        audience: all
        """) + prelude + "fields:\n" + textwrap.indent(textwrap.dedent(fields), "  ")).encode()


def text_field(template_id: str, schema: str) -> bytes:
    return hostile(template_id, f"""\
        type: object
        additionalProperties: false
        required: [text]
        properties:
          text: {schema}
        """)


def laughs(template_id: str) -> bytes:
    """A billion laughs under 1 KB: ten levels, each listing the one before ten times."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]" for n in range(1, 10)]
    return hostile(template_id, """\
        type: object
        additionalProperties: false
        properties:
          text: {type: string, description: *l9}
        """, prelude="\n".join(lines) + "\n")


PATTERN_BOMB = text_field("pattern-bomb", "{type: string, pattern: '^(a+)+$'}")
BACKREFERENCE = text_field("backreference", "{type: string, pattern: '^(a+)\\1$'}")
COSTLY = text_field("costly", "{type: array, items: {anyOf: ["
                    + ", ".join(f"{{const: x{i}}}" for i in range(3000)) + "]}}")


def sign_hostile_agreement(home: Path, files: dict[str, bytes]) -> dict[str, Any]:
    """Install ``files`` in the protocols folder and have every party's authority sign version
    2 of north-south pinning the templates held before and each file's bytes (id: its name)."""
    refs = [t.ref() for t in load_templates(home / "protocols")]
    for name, data in files.items():
        (home / "protocols" / name).write_bytes(data)
        refs.append({"id": Path(name).stem, "version": 1, "sha256": hashlib.sha256(data).hexdigest()})
    doc = dict(parse((home / V1).read_bytes())["document"], version=2, templates=refs)
    keys = [load_private_key(home / "keys" / f"authority-{p}.pem") for p in ("north", "south", "mediator")]
    signed: dict[str, Any] = sign_document(decode_document(doc), *keys).to_json()
    return signed


async def healthz(url: str) -> dict[str, Any]:
    base = url.replace("ws://", "http://").removesuffix("/v1/ws")
    async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as response:
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
        return answer


async def refused(client: Client, template: str, body: dict[str, Any]) -> ProtocolViolation:
    envelope = client.envelope(channel="north-south", template=template, body=body)
    with pytest.raises(ProtocolViolation) as caught:
        await client.submit_envelope(envelope)
    return caught.value


# -- defect 3: a catastrophic regex -------------------------------------------------------------

@pytest.mark.slow
async def test_a_catastrophic_pattern_cannot_stall_the_server(home: Path) -> None:
    async with running_server(home) as server:
        signed = sign_hostile_agreement(home, {"pattern-bomb.yaml": PATTERN_BOMB,
                                               "backreference.yaml": BACKREFERENCE,
                                               "costly.yaml": COSTLY})
        status, answer = await post_roster(server, signed)
        assert status == 200, answer
        alice, bob = await server.client("alice"), await server.client("bob")

        # RE2 runs ^(a+)+$ in linear time: the hostile submission is answered at once, correctly
        violation = await refused(alice, "pattern-bomb", {"text": EVIL})
        assert (violation.code, violation.message) == (
            "template.invalid", "pattern-bomb: body.text: is not in the form the agreed template defines")
        accepted = await alice.send(channel="north-south", template="pattern-bomb",
                                    body={"text": "aaaa"})
        # a backreference RE2 cannot run in linear time: refused at load, so never enforced
        assert (await refused(alice, "backreference", {"text": "aa"})).code == "template.mismatch"
        # 3,000 alternatives for each of 20,000 items: refused once past the check's budget
        assert (await refused(alice, "costly", {"text": [0] * 20_000})).code == "template.too_costly"
        await alice.send(channel="north-south", template="costly", body={"text": ["x1", "x2999"]})

        # and everyone was answered throughout: bob got alice's message, the server is healthy
        await delivered_to(bob, accepted.id)
        assert (await healthz(server.url))["status"] == "ok"
        held = {t.id for t in server.hotline.templates}
        assert {"pattern-bomb", "costly"} <= held and "backreference" not in held
    rejected = [(e["template"], e["code"]) for e in logged(home) if e["kind"] == "rejected"]
    assert rejected == [("pattern-bomb", "template.invalid"), ("backreference", "template.mismatch"),
                        ("costly", "template.too_costly")]


# -- defect 4: a YAML alias bomb ----------------------------------------------------------------

@pytest.mark.slow
async def test_an_alias_bomb_is_refused_and_files_no_one_pinned_are_never_parsed(
        server_process: ServerProcess) -> None:
    home = server_process.home
    signed = sign_hostile_agreement(home, {"laughs.yaml": laughs("laughs")})
    (home / "v2.json").write_text(dumps(signed))
    (home / "protocols" / "unpinned-laughs.yaml").write_bytes(laughs("unpinned-laughs"))

    # the operator's own tools load the whole folder: a prompt, typed refusal naming the file
    draft = await asyncio.to_thread(hotline_cli, home, "agreement", "draft", "--channel",
                                    "north-south", "--based-on", str(home / V1), "--out",
                                    str(home / "draft.json"))
    assert draft.returncode == 1
    assert "laughs.yaml: line 10: anchors (&l0) are not allowed" in draft.stderr, draft.stderr

    # the server parses only what a logged agreement pins: the unpinned bomb costs a hash
    url = server_process.start()
    submitted = await asyncio.to_thread(hotline_cli, home, "agreement", "submit",
                                        str(home / "v2.json"), "--server", url)
    assert submitted.returncode == 0, submitted.stderr
    alice = Client.for_profile(Profile.load(home, "alice"))
    await alice.connect(url)
    try:
        assert (await refused(alice, "laughs", {"text": "x"})).code == "template.mismatch"
        await alice.send(channel="north-south", template="message", body={"text": "still here"})
        assert (await healthz(url))["status"] == "ok"
    finally:
        await alice.close()

    # a restart loads what the log's agreements pin: the bomb is refused again, not fatal
    server_process.stop()
    url = server_process.start()
    assert (await healthz(url))["status"] == "ok"
    server_process.stop()
    lines = [json.loads(line) for line in server_process.log.read_text().splitlines()]
    refusals = [line["reason"] for line in lines if line.get("event") == "templates.refused"]
    assert refusals == [f"{home / 'protocols' / 'laughs.yaml'}: line 10: anchors (&l0) are not "
                        "allowed: a template is plain data"] * 2
    assert "unpinned-laughs" not in server_process.log.read_text()


class OpenGate:
    """Holds the thread that opens ``path`` until released, and records which thread it was:
    a CPython audit hook on the real ``open`` of the real file, in whatever thread does it."""

    active: ClassVar[list[OpenGate]] = []
    hooked: ClassVar[bool] = False

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.opened, self.release = threading.Event(), threading.Event()
        self.thread: int | None = None

    @classmethod
    def _audit(cls, event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or not cls.active or not args or not isinstance(args[0], (str, Path)):
            return
        for gate in list(cls.active):
            if os.fspath(args[0]) == gate.path and gate.thread is None:
                gate.thread = threading.get_ident()
                gate.opened.set()
                gate.release.wait(WAIT)  # if this is the event loop, nothing can answer meanwhile

    @classmethod
    @contextmanager
    def on(cls, path: Path) -> Iterator[OpenGate]:
        if not cls.hooked:  # an audit hook cannot be removed: one for the whole test run
            sys.addaudithook(cls._audit)
            cls.hooked = True
        gate = cls(path)
        cls.active.append(gate)
        try:
            yield gate
        finally:
            cls.active.remove(gate)
            gate.release.set()


async def test_template_loading_never_runs_on_the_event_loop(home: Path) -> None:
    async with running_server(home) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        signed = sign_hostile_agreement(home, {"laughs.yaml": laughs("laughs")})
        with OpenGate.on(home / "protocols" / "laughs.yaml") as gate:
            posting = asyncio.create_task(post_roster(server, signed))
            assert await asyncio.to_thread(gate.opened.wait, WAIT), "the server never read the file"
            # the load is held in its thread: the loop still answers everyone
            assert gate.thread != threading.get_ident()
            assert (await healthz(server.url))["status"] == "ok"
            accepted = await alice.send(channel="north-south", template="message",
                                        body={"text": "while a template loads"})
            await delivered_to(bob, accepted.id)
            assert not posting.done()
            gate.release.set()
            status, answer = await asyncio.wait_for(posting, WAIT)
        assert status == 200, answer
        assert (await refused(alice, "laughs", {"text": "x"})).code == "template.mismatch"
        assert_agreement_version(server, 2)


def assert_agreement_version(server: Running, version: int) -> None:
    assert server.hotline.roster.agreements["north-south"].version == version
