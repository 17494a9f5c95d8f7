"""The forms of names and envelope ids, shared by every signed object (pure). A name (a party, a
member, a channel, a template, a field) is lower-case ASCII, starting with a letter or digit, at
most 64 characters; an envelope id is 128 bits in unpadded base64url, a digest (SHA-256) 256."""

from __future__ import annotations

import re
from typing import Annotated

from msgspec import Meta

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}\Z"
ENVELOPE_ID_PATTERN = r"^[A-Za-z0-9_-]{22}\Z"
DIGEST_PATTERN = r"^[A-Za-z0-9_-]{43}\Z"
NAME = re.compile(NAME_PATTERN[1:-2])
ENVELOPE_ID = re.compile(ENVELOPE_ID_PATTERN[1:-2])

Name = Annotated[str, Meta(pattern=NAME_PATTERN)]
EnvelopeId = Annotated[str, Meta(pattern=ENVELOPE_ID_PATTERN)]
Digest = Annotated[str, Meta(pattern=DIGEST_PATTERN)]
