"""The server on PostgreSQL (issue 17): ``hotline store migrate`` makes the schema; the demo
deployment served from a real PostgreSQL 18 exchanges, proves and audits as on SQLite; a second
server process on the same database after the first is gone resumes the log where it was; the
database URL's password never reaches a log line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from click.testing import CliRunner

from hotline.cli import main
from hotline.store.postgres import SCHEMA_VERSION
from hotline.wire.frames import Deliver
from tests.conftest import DEMO_ROSTER, running_server
from tests.integration.test_hybrid_keys import checkpointed
from tests.integration.test_rotation_audit import audit

WAIT = 10.0  # seconds: a safety net against hangs, never a synchronisation
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}


def test_store_migrate_makes_the_schema_once(home: Path, postgres_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["--home", str(home), "store", "migrate", "--url", postgres_url])
    assert first.exit_code == 0, first.output
    assert f"schema version {SCHEMA_VERSION} (was empty)" in first.output
    again = runner.invoke(main, ["--home", str(home), "store", "migrate"],
                          env={"HOTLINE_STORE_URL": postgres_url})
    assert again.exit_code == 0 and f"schema version {SCHEMA_VERSION} (already)" in again.output, \
        again.output
    unset = runner.invoke(main, ["--home", str(home), "store", "migrate"])
    assert unset.exit_code != 0 and "SQLite file" in unset.output and "[store] url" in unset.output
    wrong = runner.invoke(main, ["--home", str(home), "store", "migrate", "--url", "mysql://x/y"])
    assert wrong.exit_code == 2 and "postgresql://" in wrong.output


async def test_the_demo_deployment_runs_on_postgresql(home: Path, postgres_url: str) -> None:
    env = {"HOTLINE_STORE_URL": postgres_url, **FAST}
    async with running_server(home, **env) as server:
        assert server.hotline.store.location == postgres_url  # no password in this URL
        alice, bob = await server.client("alice"), await server.client("bob")
        accepted = await alice.send(channel="north-south", template="message",
                                    body={"text": "on postgres"})
        assert accepted.index == DEMO_ROSTER
        frame = await asyncio.wait_for(bob.deliveries.get(), WAIT)
        assert isinstance(frame, Deliver) and frame.index == DEMO_ROSTER
        assert server.body_seen(bob, bob.verify(frame))["text"] == "on postgres"
        await checkpointed(server)
        size = await server.hotline.store.size()
        base = server.url.replace("ws://", "http://").replace("/v1/ws", "")
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as response:
                assert (await response.json())["store"] == {"engine": "postgresql", "leader": True}
            async with http.get(base + "/metrics") as response:
                assert 'hotline_store_leader{engine="postgresql"} 1.0' in await response.text()
    assert not (home / "hotline.db").exists()  # the log is in PostgreSQL alone

    async with running_server(home, **env) as again:  # another server process, the same log
        assert await again.hotline.store.size() == size
        carol = await again.client("carol")
        second = await carol.send(channel="north-south", template="message", body={"text": "again"})
        assert second.index == size
        await checkpointed(again)
        code, out = await audit(home, again.url)
    assert code == 0, out


async def test_the_password_of_the_database_url_is_never_logged(
        home: Path, postgres_url: str, capfd: object) -> None:
    parts = urlsplit(postgres_url)
    secret = parts._replace(netloc="postgres:Sup3rSecret@").geturl()
    async with running_server(home, HOTLINE_STORE_URL=secret) as server:
        assert "Sup3rSecret" not in server.hotline.store.location
        await (await server.client("alice")).send(channel="north-south", template="message",
                                                  body={"text": "x"})
    out, err = capfd.readouterr()  # type: ignore[attr-defined]
    assert "server.ready" in out + err and "Sup3rSecret" not in out + err
