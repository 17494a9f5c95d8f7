"""The console's log watch is every client's (``hotline.logwatch``), re-exported for its modules."""

from hotline.logwatch import Head, LogWatch, ProofReport

__all__ = ["Head", "LogWatch", "ProofReport"]
