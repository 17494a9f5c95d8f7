"""Storage behind one narrow interface (docs/ARCHITECTURE.md "Storage", "Scale-out path")."""

from hotline.store.records import Appended, StoredEntry
from hotline.store.rowmac import row_mac_key
from hotline.store.sqlite import PageRow, Store

__all__ = ["Appended", "PageRow", "Store", "StoredEntry", "row_mac_key"]
