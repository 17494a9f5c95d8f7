"""Signatures checked in the verification threads (``hotline.ahead``) are refused exactly
as when checked inline: by the server, the same code, message and reference for every kind of
bad submission, sent to the same deployment served once with ``verify_threads = 0`` and once
with threads. (The auditor's side: tests/integration/test_tamper.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from hotline.client.profile import Profile
from hotline.keys import SigningKey
from tests.conftest import running_server
from tests.integration.test_attack_line import NOTICE
from tests.integration.test_bad_input import Raw


def tampered(raw: Raw) -> dict[str, Any]:
    frame = raw.submit(raw.envelope())
    frame["envelope"]["body"]["text"] = "tampered after signing"
    return frame


def resigned_with_another_key(raw: Raw) -> dict[str, Any]:
    frame = raw.submit(raw.envelope(), key=SigningKey.generate())
    frame["sig"]["key"] = raw.submit(raw.envelope())["sig"]["key"]  # names alice's key
    return frame


def short_signature(raw: Raw) -> dict[str, Any]:
    frame = raw.submit(raw.envelope())
    frame["sig"]["sig"] = frame["sig"]["sig"][:20]
    return frame


def other_algorithm(raw: Raw) -> dict[str, Any]:
    frame = raw.submit(raw.envelope())
    frame["sig"]["alg"] = "rsa"
    return frame


def future_and_tampered(raw: Raw) -> dict[str, Any]:  # the clock check comes first
    frame = raw.submit(raw.envelope(created=datetime.now(UTC) + timedelta(hours=2)))
    frame["envelope"]["body"]["text"] = "tampered"
    return frame


def unknown_channel_and_tampered(raw: Raw) -> dict[str, Any]:
    frame = raw.submit(raw.envelope(channel="east-west"))
    frame["envelope"]["body"]["text"] = "tampered"
    return frame


def signed_but_not_sealed(raw: Raw) -> dict[str, Any]:  # refused after its signature verifies
    return raw.submit(raw.envelope())


def sender_mismatch(raw: Raw) -> dict[str, Any]:
    return raw.submit(raw.envelope(sender="bob"))


BAD = [tampered, resigned_with_another_key, short_signature, other_algorithm,
       future_and_tampered, unknown_channel_and_tampered, signed_but_not_sealed, sender_mismatch]


async def refusals(home: Path, frames: list[dict[str, Any]], threads: int) -> list[tuple[str, ...]]:
    """Each frame's answer (type, code, message, ref), then a good one's, served with
    ``threads`` verification threads."""
    async with running_server(home, HOTLINE_LIMITS_VERIFY_THREADS=str(threads)) as server:
        async with connect(server.url, proxy=None, compression=None, max_size=None) as ws:
            raw = alice(home, ws)
            await raw.login()
            for frame in frames:  # pipelined: several are in the threads at once
                await raw.send(frame)
            answers = [await raw.answer() for _ in frames]
            await raw.send(raw.submit(raw.envelope(template="humanitarian-notice", body=NOTICE,
                                                   precedence="IMMEDIATE")))
            answers.append(await raw.answer())
        # every signature but the sender mismatches' went to the threads, when there are threads
        assert server.hotline.verifiers.started == (len(frames) * 7 // 8 + 1 if threads else 0)
    return [(a["type"], a.get("code", ""), a.get("message", ""), a.get("ref", "")) for a in answers]


def alice(home: Path, ws: Any = None) -> Raw:
    profile = Profile.load(home, "alice")
    return Raw(ws, profile.signing_key(), profile.origin)


async def test_a_refusal_from_the_verification_threads_is_the_inline_refusal(home: Path) -> None:
    frames = [bad(alice(home)) for bad in BAD] * 3
    inline = await refusals(home, frames, threads=0)
    ahead = await refusals(home, frames, threads=2)
    assert ahead[:-1] == inline[:-1]
    assert [a[1] for a in inline[:len(BAD)]] == [
        "auth.bad_signature", "auth.bad_signature", "crypto.invalid", "crypto.unsupported_alg",
        "envelope.clock_skew", "channel.unknown", "template.invalid", "auth.sender_mismatch"]
    assert (inline[-1][0], ahead[-1][0]) == ("accepted", "accepted")  # a fresh one each

