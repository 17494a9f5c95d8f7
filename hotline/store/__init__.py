"""Storage behind one narrow interface (docs/ARCHITECTURE.md "Storage", "Scale-out path")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hotline.config import is_postgres
from hotline.store.base import PageRow, Store
from hotline.store.records import Appended, StoredEntry
from hotline.store.rowmac import row_mac_key

__all__ = ["Appended", "PageRow", "Store", "StoredEntry", "is_postgres", "open_store",
           "row_mac_key"]


async def open_store(location: Path | str, *, batch: int = 512, mac_key: bytes | None = None,
                     lead: bool = True, standby: Callable[[str], None] | None = None) -> Store:
    """Open the store at ``location``: a ``postgresql://`` URL (``hotline.store.postgres``,
    which needs the ``postgres`` extra), else a SQLite file (``hotline.store.sqlite``, created
    0600 if missing).

    Args:
        batch: most entries committed in one transaction.
        mac_key: the row-MAC key (``hotline.store.rowmac.row_mac_key`` of the log key); without
            it the store only reads (appends raise ``store.read_only``).
        lead: PostgreSQL: try for the lead of the log (one server at a time leads, the others
            follow; a store without ``mac_key`` never leads); ``standby`` is told once that
            another server leads. ``Store.leading`` is set while the store leads.

    Raises:
        StoreError: ``store.open_failed``, or ``store.damaged`` if the database or its tree is
            found damaged.
    """
    if is_postgres(location):
        from hotline.store.postgres import PostgresStore
        return await PostgresStore.connect(str(location), batch=batch, mac_key=mac_key,
                                           lead=lead, standby=standby)
    from hotline.store.sqlite import SqliteStore
    return await SqliteStore.open_file(Path(location), batch=batch, mac_key=mac_key)
