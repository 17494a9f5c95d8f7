"""``hotline.server.feed``: every entry once, in log order, whichever server logged it. Two
stores on one real PostgreSQL log stand for two servers; each store's appends race the other's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hotline.server.feed import Feed
from hotline.store import Store, StoredEntry, open_store
from tests.log_entries import rejected as entry

KEY = bytes(range(32))
WAIT = 10.0  # seconds: a bound against hangs, never a synchronisation


class Applied:
    """What a feed applied: (index, own, origin), in the order applied."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, bool, object]] = []

    async def __call__(self, stored: StoredEntry, own: bool, origin: object) -> None:
        self.seen.append((stored.index, own, origin))
        await asyncio.sleep(0)  # let the other server's appends interleave with the feed's work


async def test_two_servers_appending_at_once_each_feed_gets_every_entry_once_in_order(
        postgres_url: str) -> None:
    a = await open_store(postgres_url, mac_key=KEY, lead=False)
    b = await open_store(postgres_url, mac_key=KEY, lead=False)
    applied = Applied()
    feed = Feed(a, applied, poll=1.0)
    feed.start(0)
    try:
        async def write(store: Store, who: str) -> list[int]:
            found = []
            for n in range(40):
                appended = await store.append(entry(n), origin=who)
                found.append(appended.stored.index)
            return found

        ours, theirs = await asyncio.gather(write(a, "a"), write(b, "b"))
        assert min(theirs) < max(ours) and min(ours) < max(theirs)  # the two interleaved
        await asyncio.wait_for(feed.applied(79), WAIT)
        assert [index for index, _, _ in applied.seen] == list(range(80))
        assert {i for i, own, origin in applied.seen if own and origin == "a"} == set(ours)
        assert {i for i, own, origin in applied.seen if not own and origin is None} == set(theirs)
    finally:
        await feed.stop()
        await a.close()
        await b.close()


async def test_a_feed_started_after_a_load_applies_only_what_follows(postgres_url: str) -> None:
    a = await open_store(postgres_url, mac_key=KEY, lead=False)
    b = await open_store(postgres_url, mac_key=KEY, lead=False)
    applied = Applied()
    feed = Feed(a, applied, poll=1.0)
    try:
        for n in range(3):
            await a.append(entry(n))  # read by the server's load, before its feed starts
        feed.start(3)
        await b.append(entry(3))  # heard by NOTIFY
        await a.append(entry(4), origin="mine")
        await asyncio.wait_for(feed.applied(4), WAIT)
        assert applied.seen == [(3, False, None), (4, True, "mine")]
    finally:
        await feed.stop()
        await a.close()
        await b.close()


async def test_on_a_file_of_its_own_the_feed_reads_nothing_back(tmp_path: Path) -> None:
    """SQLite: one writer; its entries come from its commits, in order, with their origins."""
    store = await open_store(tmp_path / "hotline.db", mac_key=KEY)
    applied = Applied()
    feed = Feed(store, applied, poll=None)
    feed.start(0)
    try:
        futures = [store.enqueue(entry(n), origin=n) for n in range(5)]
        await asyncio.gather(*futures)
        waiting = asyncio.ensure_future(feed.applied(4))
        await asyncio.wait_for(waiting, WAIT)
        assert applied.seen == [(n, True, n) for n in range(5)]
    finally:
        await feed.stop()
        await store.close()
