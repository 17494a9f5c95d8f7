"""Storage behind one narrow interface (DESIGN.md §10–11)."""

from hotline.store.sqlite import Appended, Store, StoredEntry

__all__ = ["Appended", "Store", "StoredEntry"]
