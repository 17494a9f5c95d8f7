"""One root error, one family per layer, each error with a stable dotted wire code.

Codes are part of the wire contract (DESIGN.md §5): clients and tests match on them, so they never
change meaning. Pure modules raise only these; a stray ``ValueError`` escaping one is a bug.
"""

from __future__ import annotations

import re

from hotline.display import shown

CODE_FORM = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
"""Every code's form, ``family.reason`` (lower-case ASCII): what a peer's error frame must match."""
MAX_CODE = 64


class HotlineError(Exception):
    """Root of every error hotline raises on purpose.

    Attributes:
        code: stable dotted code sent on the wire (``family.reason``).
        message: human text naming the field or rule at fault.
        ref: the envelope id the error refers to, if any.
    """

    code = "internal.error"

    def __init__(self, message: str, *, code: str | None = None, ref: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.ref = ref

    def diagnostics(self) -> str:
        """One line for a person at a terminal (a message may quote a peer or the host: it is
        sanitized like every other text from elsewhere)."""
        return shown(f"error: {self.code}: {self.message}")


class WireError(HotlineError):
    """A peer sent bytes that are not a valid frame or JSON document (remote misbehaviour)."""

    code = "frame.malformed"


class CryptoError(HotlineError):
    """A key, signature or fingerprint is malformed or does not verify."""

    code = "crypto.invalid"


class AuthError(HotlineError):
    """Authentication failed: the session is closed after this error."""

    code = "auth.failed"


class ProtocolViolation(HotlineError):
    """A well-formed request that the roster, the agreement or the session rules refuse."""

    code = "protocol.violation"


class LogError(HotlineError):
    """Transparency-log data (entries, proofs, checkpoints) is inconsistent."""

    code = "log.invalid"


class StoreError(HotlineError):
    """The store could not commit or read."""

    code = "store.failed"


class ConfigError(HotlineError):
    """A configuration file or setting is invalid; names the file and the key."""

    code = "config.invalid"

    def __init__(self, message: str, *, path: tuple[str, ...] = (), file: str | None = None) -> None:
        where = ".".join(path)
        prefix = f"{file}: " if file else ""
        super().__init__(f"{prefix}{where + ': ' if where else ''}{message}")
        self.detail = message
        self.path = path
        self.file = file

    def in_file(self, file: str) -> ConfigError:
        """The same error, naming ``file``."""
        return ConfigError(self.detail, path=self.path, file=file)


class UsageProblem(HotlineError):
    """The command line named what cannot be used (an unknown profile, a malformed server URL):
    a usage error, on which the ``hotline`` command exits 2, not a refusal (exit 1). Mixed into
    the family it belongs to (``class UnknownProfile(ConfigError, UsageProblem)``)."""

    code = "usage.invalid"


class BackupError(HotlineError):
    """A backup could not be taken, or an archive cannot be restored (``backup.*``,
    ``restore.*``): the message says what was found and what to do."""

    code = "backup.failed"
