"""The composition root: ``build_server`` builds every part once, shared, from the config, on an
injected store and clock when given; nothing is assigned afterwards. Real deployment on disk,
real SQLite store, real keys."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hotline.config import load_config
from hotline.deployment import init_deployment
from hotline.keyfiles import load_log_key
from hotline.server.compose import build_server
from hotline.store import open_store, row_mac_key
from hotline.times import format_time

FIXED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


async def test_a_server_built_on_an_injected_store_and_clock(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_deployment(home, parties=["north", "south"], heartbeat_interval=10, port=0,
                    origin="hotline.test", force=False)
    config = load_config(home / "hotline.toml", home=home)
    store = await open_store(config.db_path, mac_key=row_mac_key(load_log_key(config.log_key_path)))
    try:
        server = await build_server(config, store=store, clock=lambda: FIXED)
        service = server.service
        # one of each part, shared by all that use it
        assert service.store is server.store is store
        assert service.roster is server.roster is server.checkpointer.roster is server.monitor.roster
        assert service.hub is server.hub is server.checkpointer.hub is server.monitor.hub
        assert service.monitor is server.monitor and service.checkpointer is server.checkpointer
        assert service.metrics is server.metrics is server.monitor.metrics
        # loaded from the roster folder, at the injected clock's time, and the head signed
        size = await store.size()
        assert size > 0 and sorted(server.roster.agreements) == ["north-south"]
        assert server.monitor.channels.keys() == {"north-south"}
        first = await store.entry(0)
        assert first is not None and first.entry.time == format_time(FIXED)
        assert server.checkpointer.latest is not None and server.checkpointer.latest.size == size
        async with server.running():
            pass
        await server.close()
        assert await store.size() == size  # the caller's store: still open, the caller closes it
    finally:
        await store.close()
