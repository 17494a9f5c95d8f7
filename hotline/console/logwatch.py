"""The console's log watch is the client's (``hotline.logwatch``): re-exported for its modules."""

from hotline.logwatch import Head, LogAlarm, LogWatch, ProofReport, Witness

__all__ = ["Head", "LogAlarm", "LogWatch", "ProofReport", "Witness"]
