"""Issue 15, acceptance 3 from the host's side: after north's authority handed over to a new key,
a document its old key signs is refused everywhere, even when the host itself slips it past its
own checks: the server refuses it, a member's client does not take it from the roster the host
sends, and the auditor fails the log that holds it. What the old key signed before stays valid.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from hotline.clock import utc_now
from hotline.entries import roster_entry
from hotline.errorcodes import Code
from hotline.errors import ProtocolViolation
from hotline.keyfiles import load_private_key
from hotline.keys import SigningKey
from hotline.roster import Role, enrollment, handover, sign_document
from hotline.server.service import document_id
from hotline.times import format_time
from tests.conftest import hotline_cli, running_server

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL

WAIT = 30.0  # seconds: a bound against hangs, never a synchronisation
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.1"}


async def audit(home: Path, url: str) -> tuple[int, str]:
    result = await asyncio.to_thread(hotline_cli, home, "audit", "verify", "--as", "audrey",
                                     "--server", url, "--require-witnesses", "0", "--state",
                                     str(home / "fresh-audit.json"))
    return result.returncode, result.stdout + result.stderr


async def test_the_old_authority_key_is_refused_by_server_client_and_auditor(home: Path) -> None:
    old = load_private_key(home / "keys" / "authority-north.pem")
    new = SigningKey.generate()
    mallory = SigningKey.generate()
    async with running_server(home, **FAST) as server:
        service = server.hotline
        passed = sign_document(handover(party="north", old=old.public_key, new=new.public_key,
                                        at=utc_now()), old, new)
        await service.add_document(passed.to_json())
        assert service.roster.current["north"].key_id == new.key_id
        alice = await server.client("alice")  # enrolled by the old key: still a member
        await alice.send(channel="north-south", template="message", body={"text": "still here"})

        late = sign_document(enrollment(
            party="north", member="mallory", role=Role.LIAISON, key=mallory.public_key,
            not_before=utc_now() - timedelta(days=30), not_after=utc_now() + timedelta(days=30)),
            old)
        try:
            await service.add_document(late.to_json())
            raise AssertionError("the server logged a document of a retired authority key")
        except ProtocolViolation as exc:
            assert exc.code == Code.ROSTER_RETIRED_AUTHORITY
        code, out = await audit(home, server.url)
        assert code == 0, out  # the log as the honest host wrote it verifies

        # a dishonest host logs it anyway, and sends it in the roster to every client
        await service.store.append(roster_entry(late.to_json(), time=format_time(utc_now())),
                                   envelope_id=document_id(late.to_json()))
        service.documents.append(late)
        bob = await server.client("bob")
        assert mallory.key_id not in bob.roster.enrollments  # the client refused it
        assert bob.roster.current["north"].key_id == new.key_id
        size = await service.store.size()
        checkpointer = service.checkpointer
        async with asyncio.timeout(WAIT):
            while checkpointer.latest is None or checkpointer.latest.size < size:
                await asyncio.sleep(0.05)
        code, out = await audit(home, server.url)
    assert code == 1 and "FAILED" in out and "retired authority key" in out, out
