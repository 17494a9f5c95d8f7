"""The console proves entries as every client does (``hotline.client.proofs``): re-exported."""

from hotline.client.proofs import ROUND_LIMIT, prove_round, witnesses_of

__all__ = ["ROUND_LIMIT", "prove_round", "witnesses_of"]
