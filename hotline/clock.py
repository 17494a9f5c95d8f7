"""The one wall clock. Everything that reads the time takes a ``clock`` argument defaulting to
``utc_now``, so a test can stand in its own; the pure modules never import this."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
