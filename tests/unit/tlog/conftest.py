"""Fixtures for the hotline.tlog tests: the vector files under tests/vectors/tlog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "tlog"


def load_vectors(name: str) -> dict[str, Any]:
    path = VECTORS / name
    assert path.is_file(), f"missing test asset {path}"
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


@pytest.fixture(scope="session")
def external() -> dict[str, Any]:
    """Vectors transcribed from RFC 6962 test data, Go's sumdb/note tests and the C2SP specs."""
    return load_vectors("external_vectors.json")


@pytest.fixture(scope="session")
def ours() -> dict[str, Any]:
    """hotline's own vectors, written by tests/vectors/tlog/make_tlog_vectors.py."""
    return load_vectors("tlog_vectors.json")
