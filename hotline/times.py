"""RFC 3339 UTC timestamps as signed JSON carries them (no floats: strings with millisecond precision)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hotline.errorcodes import Code
from hotline.errors import WireError

_RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


def format_time(moment: datetime) -> str:
    """``2026-11-27T21:00:00.123Z`` for an aware datetime."""
    if moment.tzinfo is None:
        raise WireError("timestamps must be timezone-aware", code=Code.FRAME_BAD_TIME)
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: object, *, field: str = "time") -> datetime:
    """Parse an RFC 3339 UTC timestamp (``Z`` suffix required); WireError names the field."""
    if not isinstance(text, str) or not _RFC3339_UTC.fullmatch(text):
        raise WireError(f"{field} must be an RFC 3339 UTC timestamp like 2026-11-27T21:00:00.000Z",
                        code=Code.FRAME_BAD_TIME)
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:
        raise WireError(f"{field} names no such date or time", code=Code.FRAME_BAD_TIME) from exc
