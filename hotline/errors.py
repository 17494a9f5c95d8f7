"""One root error, one family per layer, each error with a stable dotted wire code.

Codes are part of the wire contract (docs/ARCHITECTURE.md "Error codes"): clients and tests match on them, so
they never
change meaning. Pure modules raise only these; a stray ``ValueError`` escaping one is a bug.
"""

from __future__ import annotations

import re
from typing import Self

from hotline.display import shown
from hotline.errorcodes import Code

CODE_FORM = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
"""Every code's form, ``family.reason`` (lower-case ASCII): what a peer's error frame must match."""
MAX_CODE = 64


class PeerCode(str):
    """A code a peer sent us (a server's ``error`` frame or HTTP error body): not ours to
    register, so kept apart from ``Code``; only the form ``family.reason`` is checked. Compare it
    with registry members (``exc.code == Code.LOG_UNKNOWN_WITNESS``) like any string."""

    __slots__ = ()

    def __new__(cls, text: str) -> PeerCode:
        if not cls.accepts(text):
            raise ValueError(f"not a code: {text[:80]!r}")
        return super().__new__(cls, text)

    @staticmethod
    def accepts(text: str) -> bool:
        """Whether ``text`` has the form of a code (what a peer's error frame must match)."""
        return len(text) <= MAX_CODE and CODE_FORM.fullmatch(text) is not None


class HotlineError(Exception):
    """Root of every error hotline raises on purpose.

    Attributes:
        code: stable dotted code sent on the wire (``family.reason``): a ``Code`` of the
            registry (``hotline.errorcodes``), or the ``PeerCode`` a peer answered with.
        message: human text naming the field or rule at fault.
        ref: the envelope id the error refers to, if any.
    """

    code: Code | PeerCode = Code.INTERNAL_ERROR

    def __init__(self, message: str, *, code: Code | PeerCode | None = None,
                 ref: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.ref = ref
        _check_class(self)

    def with_ref(self, ref: str) -> Self:
        """The same error, naming the envelope ``ref`` it refers to (the error is not changed:
        it may be raised again elsewhere)."""
        error = type(self).__new__(type(self), *self.args)
        error.__dict__.update(self.__dict__)
        error.ref = ref
        return error

    def diagnostics(self) -> str:
        """One line for a person at a terminal (a message may quote a peer or the host: it is
        sanitized like every other text from elsewhere)."""
        return shown(f"error: {self.code}: {self.message}")


class WireError(HotlineError):
    """A peer sent bytes that are not a valid frame or JSON document (remote misbehaviour)."""

    code = Code.FRAME_MALFORMED


class CryptoError(HotlineError):
    """A key, signature or fingerprint is malformed or does not verify."""

    code = Code.CRYPTO_INVALID


class SealError(HotlineError):
    """Sealed fields, a disclosure or an epoch key are malformed, do not open, or do not match
    what was signed (``seal.*``)."""

    code = Code.SEAL_INVALID


class AuthError(HotlineError):
    """Authentication failed: the session is closed after this error."""

    code = Code.AUTH_FAILED


class ProtocolViolation(HotlineError):
    """A well-formed request that the roster, the agreement or the session rules refuse."""

    code = Code.PROTOCOL_VIOLATION


class LogError(HotlineError):
    """Transparency-log data (entries, proofs, checkpoints) is inconsistent."""

    code = Code.LOG_INVALID


class StoreError(HotlineError):
    """The store could not commit or read."""

    code = Code.STORE_FAILED


class ConfigError(HotlineError):
    """A configuration file or setting is invalid; names the file and the key."""

    code = Code.CONFIG_INVALID

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

    code = Code.USAGE_INVALID


class BackupError(HotlineError):
    """A backup could not be taken, or an archive cannot be restored (``backup.*``,
    ``restore.*``): the message says what was found and what to do."""

    code = Code.BACKUP_FAILED


def _check_class(error: HotlineError) -> None:
    """Refuse an error raised as another class than its code's (``Code.raised_as``); an
    ``AuthError`` may carry any code: it is the verdict that closes a session, whatever refused
    the authentication, and its code says which rule did. A ``PeerCode`` is the peer's word."""
    code = error.code
    if not isinstance(code, Code):
        if not isinstance(code, PeerCode):
            raise TypeError(f"{type(error).__name__} raised with code {code!r}: a code is a Code "
                            "of hotline.errorcodes, or a PeerCode")
        return
    names = {cls.__name__ for cls in type(error).__mro__}
    if code.raised_as not in names and "AuthError" not in names:
        raise TypeError(f"{type(error).__name__} raised with {code.value}, which is raised as "
                        f"{code.raised_as} (hotline.errorcodes)")
