"""How many bytes each party may upload in a day (``limits.upload_bytes_per_day``). Pure: the
time comes in as an argument.

Theory of operation: a sliding window of 24 hours kept as 24 hourly buckets per party, so the
state is bounded (24 counters a party) and a party's share comes back an hour at a time as its
oldest bytes leave the window. Only bytes the store took count (a chunk refused or sent twice
does not). It bounds what one party can make the host's disk hold in a day whatever its
messages, beside the agreement's own bounds (a template's size and count per message times its
rate per day).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

WINDOW = timedelta(hours=24)
BUCKET = timedelta(hours=1)


def _hour(at: datetime) -> int:
    return int(at.timestamp() // BUCKET.total_seconds())


class DailyShares:
    """Each party's uploaded bytes over the last 24 hours, against ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buckets: dict[str, deque[tuple[int, int]]] = {}  # party -> (hour, bytes), oldest first

    def _window(self, party: str, at: datetime) -> deque[tuple[int, int]]:
        buckets = self._buckets.setdefault(party, deque())
        oldest = _hour(at) - int(WINDOW / BUCKET) + 1
        while buckets and buckets[0][0] < oldest:
            buckets.popleft()
        return buckets

    def used(self, party: str, at: datetime) -> int:
        """The bytes ``party`` uploaded in the 24 hours up to ``at``."""
        return sum(n for _, n in self._window(party, at))

    def allowed_at(self, party: str, size: int, at: datetime) -> datetime | None:
        """None if ``party`` may upload ``size`` more bytes at ``at``; else the first hour at which
        enough of its share has come back (never, for more than the whole share: ``at`` plus a
        day, when all of it has)."""
        buckets = self._window(party, at)
        over = sum(n for _, n in buckets) + size - self.limit
        if over <= 0:
            return None
        for hour, n in buckets:
            over -= n
            if over <= 0:
                return datetime.fromtimestamp((hour + int(WINDOW / BUCKET)) * BUCKET.total_seconds(),
                                              tz=at.tzinfo)
        return at + WINDOW

    def add(self, party: str, size: int, at: datetime) -> None:
        """``party`` uploaded ``size`` bytes at ``at``."""
        buckets, hour = self._window(party, at), _hour(at)
        if buckets and buckets[-1][0] == hour:
            buckets[-1] = (hour, buckets[-1][1] + size)
        else:
            buckets.append((hour, size))
