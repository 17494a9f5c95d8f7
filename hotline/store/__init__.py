"""Storage behind one narrow interface (DESIGN.md §10–11)."""

from hotline.store.records import Appended, StoredEntry
from hotline.store.rowmac import row_mac_key
from hotline.store.sqlite import PageRow, Store

__all__ = ["Appended", "PageRow", "Store", "StoredEntry", "row_mac_key"]
