"""hotline.attachments.quota: each party's uploaded bytes over a sliding day, as hourly
buckets; its share comes back an hour at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hotline.attachments.quota import DailyShares

T0 = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_a_party_may_upload_its_share_in_a_day_and_no_more() -> None:
    shares = DailyShares(1000)
    assert shares.allowed_at("north", 1000, T0) is None
    shares.add("north", 600, T0)
    shares.add("north", 300, T0 + 3 * HOUR)
    assert shares.used("north", T0 + 3 * HOUR) == 900
    assert shares.allowed_at("north", 100, T0 + 4 * HOUR) is None
    # 200 more would need the 600 of 10:xx to leave the window: at 10:00 the next day
    assert shares.allowed_at("north", 200, T0 + 4 * HOUR) == datetime(2026, 12, 8, 10, tzinfo=UTC)
    # ... and 800 more the 300 of 13:xx too: at 13:00 the next day
    assert shares.allowed_at("north", 800, T0 + 4 * HOUR) == datetime(2026, 12, 8, 13, tzinfo=UTC)
    assert shares.allowed_at("south", 1000, T0) is None  # each party has its own
    assert shares.allowed_at("north", 1001, T0) == T0 + 24 * HOUR  # more than the whole share
    assert shares.used("north", datetime(2026, 12, 8, 10, tzinfo=UTC)) == 300  # 10:xx has left
    assert shares.used("north", datetime(2026, 12, 8, 13, tzinfo=UTC)) == 0


def test_bytes_in_the_same_hour_share_one_bucket() -> None:
    shares = DailyShares(10**9)
    for minute in range(0, 60, 5):
        shares.add("north", 1, T0.replace(minute=minute))
    assert len(shares._buckets["north"]) == 1 and shares.used("north", T0) == 12
