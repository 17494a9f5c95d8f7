"""The console proves entries as every client does (``hotline.client.proofs``), re-exported."""

from hotline.client.proofs import prove_round, witnesses_of

__all__ = ["prove_round", "witnesses_of"]
