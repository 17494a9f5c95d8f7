"""Structured logs: JSON lines (or a console rendering) on stderr, with bodies and signatures
redacted, for the server, the witness and the command-line tools alike.

Our own loggers are structlog's native filtering loggers writing straight to stderr (a few µs a
line: the server logs every accepted envelope); the stdlib loggers of aiohttp, asyncio and
websockets go through the same processors via ``ProcessorFormatter``, so an operator reads one
format.

Two rules keep hostile input out of the log and the log bounded:
- tracebacks are rendered without local variables (a frame's locals hold message bodies and
  signatures);
- a line repeated too often is throttled: at most ``burst`` lines of one event (our event name,
  or a stdlib logger's message template) per ``window`` seconds; the first line after a quiet
  window says how many were ``suppressed``. A peer that makes the server fail a thousand times a
  second costs a few lines, not gigabytes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

from hotline.display import shown_lines

_REDACT = frozenset({"body", "sig", "sigs", "signature", "text", "passphrase", "token"})


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in _REDACT & event.keys():
        event[key] = "[redacted]"
    return event


def _visible(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """For the plain-text renderer: a value may quote a peer or the host, and that text reaches
    the operator's terminal raw (JSON lines are escaped by the encoder already)."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = shown_lines(value)
    return event


class Throttle:
    """At most ``burst`` occurrences of one key per ``window`` seconds (fixed windows); info
    lines (the record of normal work, e.g. each accepted envelope) get ``info_burst``."""

    def __init__(self, *, burst: int = 20, info_burst: int = 500, window: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.info_burst, self.window, self.clock = burst, info_burst, window, clock
        self._windows: dict[Any, tuple[float, int, int]] = {}  # key -> (start, seen, suppressed)

    def admit(self, key: Any, *, info: bool = False) -> int | None:
        """``None`` to drop this occurrence, else how many were dropped before it (to report)."""
        now = self.clock()
        start, seen, suppressed = self._windows.get(key, (now, 0, 0))
        if now - start >= self.window:
            start, seen = now, 0
        if seen >= (self.info_burst if info else self.burst):
            self._windows[key] = (start, seen, suppressed + 1)
            return None
        self._windows[key] = (start, seen + 1, 0)
        if len(self._windows) > 10_000:  # keys are event names and templates: few; stay bounded
            self._windows.clear()
        return suppressed


def _throttled(throttle: Throttle) -> Callable[[Any, str, MutableMapping[str, Any]],
                                               MutableMapping[str, Any]]:
    def processor(_: Any, level: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        suppressed = throttle.admit((level, event.get("event")), info=level in ("debug", "info"))
        if suppressed is None:
            raise structlog.DropEvent
        if suppressed:
            event["suppressed"] = suppressed
        return event
    return processor


class _StdlibThrottle(logging.Filter):
    """The same throttle for stdlib records, keyed by logger and message template (an accept loop
    logging ``EMFILE`` per connection attempt repeats one template)."""

    def __init__(self, throttle: Throttle) -> None:
        super().__init__()
        self.throttle = throttle

    def filter(self, record: logging.LogRecord) -> bool:
        suppressed = self.throttle.admit((record.levelno, record.name, str(record.msg)),
                                         info=record.levelno <= logging.INFO)
        if suppressed:
            record.suppressed = suppressed
        return suppressed is not None


def configure(*, level: str = "info", fmt: str = "json") -> None:
    throttle = Throttle()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _throttled(throttle),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    no_locals = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False,
                                                        exception_formatter=structlog.dev.plain_traceback))
    exceptions = [no_locals] if fmt == "json" else []  # the console renderer formats its own
    visible: list[Any] = [] if fmt == "json" else [structlog.processors.format_exc_info, _visible]
    structlog.configure(
        processors=[*shared, *visible, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_StdlibThrottle(throttle))
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, structlog.stdlib.add_logger_name,
                           structlog.processors.add_log_level,
                           structlog.stdlib.ExtraAdder(allow=["suppressed"]),
                           structlog.processors.TimeStamper(fmt="iso", utc=True), _redact,
                           *visible],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *exceptions,
                    renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
