"""The liaison console (docs/ARCHITECTURE.md "Command line", ``hotline console --as NAME``): a Textual
terminal client for a
duty officer.

Modules, from the pure core outwards:

- ``state``: the view-model (channels, messages, acknowledgements per party, countdowns, health,
  alerts) as plain data; no Textual, no I/O, ``now`` is an argument.
- ``forms``: a template's schema as a form, and a form's values as a body checked with the very
  validator the server runs.
- ``link``: the connection (a ``hotline.client.connection.Client``) kept up across failures with
  backoff and failover, the outbox resent by id, history resumed after the last index seen.
- ``proofs``: the inclusion proof and cosignatures of one entry, fetched and checked on demand.
- ``render``: rich text for each line of the screen (marks that survive a monochrome terminal).
- ``screens`` (the modal views: template list, form, details, safety numbers, help) and ``app``:
  the Textual application; ``command``: the click command ``hotline console``.
"""
