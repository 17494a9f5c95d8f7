"""The WebSocket protocol: every frame both ways (``frames``) and the sans-IO handshake and
decoding of one connection (``session``). Pure."""
