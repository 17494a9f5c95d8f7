"""Issue 13, items 9, 11 and 15 (receipt): as a liaison uses `hotline send`, `listen` and `ack`
against a real server. An ack of one's own party's message is refused with a typed error and
never logged; `--reply-to` takes the log index `listen` shows (or the id it now shows); and the
proven line says plainly whether the witnesses cosigned the checkpoint, never calling a fresh
receipt cosigned."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from hotline.envelope import AckKind
from hotline.errors import ProtocolViolation
from tests.conftest import Running, hotline_cli, running_server, witness_all
from tests.integration.test_norms import logged

pytestmark = pytest.mark.slow  # real servers or child processes in every test

CHANNEL = "north-south"


@asynccontextmanager
async def serving(home: Path) -> AsyncIterator[Running]:
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as running:
        yield running


async def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = await asyncio.to_thread(hotline_cli, home, *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result


# -- item 9: an ack of one's own party's message ----------------------------------------------------

async def test_an_ack_of_ones_own_partys_message_is_refused_and_never_logged(home: Path) -> None:
    async with serving(home) as server:
        alice = await server.client("alice")
        sent = await alice.send(channel=CHANNEL, template="message", body={"text": "status"})
        before = len(logged(home))

        own = await cli(home, "ack", "--as", "alice", "--server", server.url,
                        "--index", str(sent.index))
        assert own.returncode == 1, own.stdout
        assert own.stderr.startswith(f"error: ack.own_party: message {sent.index} is north's "
                                     "own: a party acknowledges only the other parties' "
                                     "messages"), own.stderr
        assert len(logged(home)) == before  # refused before anything was sent: nothing logged

        # The server holds the same rule for a client that sends the ack anyway: refused with
        # the same code, the attempt recorded as refused, no ack in the log.
        message = await alice.fetch(sent.index)
        with pytest.raises(ProtocolViolation) as refused:
            await alice.ack(message, AckKind.UNDERSTOOD)
        assert refused.value.code == "ack.own_party"
        entries = logged(home)
        assert not [e for e in entries if e["kind"] == "envelope" and e["envelope"]["kind"] == "ack"]
        assert [e["code"] for e in entries if e["kind"] == "rejected"] == ["ack.own_party"]

        # the other party's ack of the same message is what acks are for
        other = await cli(home, "ack", "--as", "bob", "--server", server.url,
                          "--index", str(sent.index))
        assert other.returncode == 0, other.stderr


# -- item 11: --reply-to by log index, and the ids listen shows ------------------------------------

async def test_reply_to_takes_the_index_listen_shows_or_the_id_it_shows(home: Path) -> None:
    async with serving(home) as server:
        alice = await server.client("alice")
        sent = await alice.send(channel=CHANNEL, template="message", body={"text": "are you there"})
        index = sent.index

        heard = await cli(home, "listen", "--as", "bob", "--server", server.url, "--no-ack",
                          "--after", str(index - 1), "--count", "1")
        assert heard.returncode == 0, heard.stderr
        line = heard.stdout.splitlines()[0]
        assert line.startswith(f"[{index}] ") and f" message id={sent.id}: " in line

        by_index = await cli(home, "send", "--as", "bob", "--server", server.url, "--channel",
                             CHANNEL, "--reply-to", str(index), "--field", "text=here")
        assert by_index.returncode == 0, by_index.stderr
        reply = int(by_index.stdout.split("index=")[1].split()[0])
        by_id = await cli(home, "send", "--as", "bob", "--server", server.url, "--channel",
                          CHANNEL, "--reply-to", sent.id, "--field", "text=still here")
        assert by_id.returncode == 0, by_id.stderr
        entries = logged(home)
        assert entries[reply]["envelope"]["reply_to"] == sent.id
        assert entries[reply + 1]["envelope"]["reply_to"] == sent.id

        # listen shows what a reply answers, by the id of the message above it
        replies = await cli(home, "listen", "--as", "alice", "--server", server.url, "--no-ack",
                            "--after", str(reply - 1), "--count", "1", "--json")
        record = json.loads(replies.stdout.splitlines()[0])
        assert (record["index"], record["reply_to"]) == (reply, sent.id)
        text = await cli(home, "listen", "--as", "alice", "--server", server.url, "--no-ack",
                         "--after", str(reply - 1), "--count", "1")
        assert f" re={sent.id}: " in text.stdout.splitlines()[0]

        # an index that is no message on the channel: refused with the server's code, unsent
        bobs_ack = await cli(home, "ack", "--as", "bob", "--server", server.url, "--index", str(index))
        assert bobs_ack.returncode == 0, bobs_ack.stderr
        ack_index = int(bobs_ack.stdout.split("index=")[1].split()[0])
        before = len(logged(home))
        for target, why in ((str(ack_index), f"entry {ack_index} (ack on channel {CHANNEL}) is not "
                             f"a message on {CHANNEL}"),
                            ("0", "entry 0 is no message you can answer"),
                            ("99999", "entry 99999 is no message you can answer")):
            wrong = await cli(home, "send", "--as", "bob", "--server", server.url, "--channel",
                              CHANNEL, "--reply-to", target, "--field", "text=x")
            assert wrong.returncode == 1, wrong.stdout
            assert wrong.stderr.startswith(f"error: message.unknown_ref: --reply-to {target}: "
                                           f"{why}"), wrong.stderr
        assert len(logged(home)) == before
        usage = await cli(home, "send", "--as", "bob", "--server", server.url, "--channel",
                          CHANNEL, "--reply-to", "not-an-id", "--field", "text=x")
        assert usage.returncode == 2 and "log index of the message" in usage.stderr


# -- item 15: a receipt is not called cosigned before the witnesses cosigned it ---------------------

async def test_the_proven_line_says_whether_the_witnesses_cosigned(home: Path,
                                                                    tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.txt"
    async with serving(home) as server:
        sent = await cli(home, "send", "--as", "alice", "--server", server.url, "--channel",
                         CHANNEL, "--field", "text=Logged", "--receipt", str(receipt))
        assert sent.returncode == 0, sent.stderr
        assert ("; NOT cosigned yet by any of the 3 witnesses the agreement names (they cosign "
                "later checkpoints; `hotline audit verify` checks them)") in sent.stdout
        assert f"receipt saved to {receipt} (checkpoint " in sent.stdout
        checked = await cli(home, "audit", "receipt", str(receipt), "--as", "bob")
        assert checked.returncode == 0 and checked.stdout.startswith("OK: entry "), checked.stderr
        index = int(sent.stdout.split("index=")[1].split()[0])

        acked = await cli(home, "ack", "--as", "bob", "--server", server.url, "--index", str(index))
        assert acked.returncode == 0 and "NOT cosigned yet" in acked.stdout, acked.stderr
        await witness_all(home, server.url)  # every named witness cosigns the latest checkpoint
        # the same ack again: proven against the latest checkpoint, which the witnesses cosigned
        again = await cli(home, "ack", "--as", "bob", "--server", server.url, "--index", str(index))
        assert again.returncode == 0, again.stderr
        assert ("; cosigned by 3 of the 3 witnesses the agreement names (mediator/mediator-agent, "
                "north/north-agent, south/south-agent)") in again.stdout
