"""Named crash points: a testing aid that SIGKILLs the server at a chosen moment.

A crash at a random moment rarely lands in the few microseconds between writing a batch and
committing it, or between signing a checkpoint and saving it. So, as databases do (etcd's
gofail, FoundationDB's buggify), the places where a crash matters most carry a named point,
``crashpoint("commit.before")``, that does nothing unless the environment arms it:

    HOTLINE_CRASHPOINTS=commit.before=3,checkpoint.signed=0.2

``name`` alone fires at the first pass, ``name=N`` (an integer) at the N-th pass, ``name=P`` (a
number between 0 and 1) at each pass with probability P. A point that fires writes one line
``{"event": "crashpoint.fired", "point": NAME}`` to stderr and sends SIGKILL to its own process:
no handler, no flush, no cleanup runs, exactly as if the machine's operator had killed it.
``scripts/crashtest.py`` arms them in turn and checks that nothing accepted is lost.

The variable is read once, at import: unset (every deployment), ``crashpoint`` is a function
that returns at once. A malformed value is ``PROBLEM``, which the server refuses to start on.
Never set it on a real deployment.

The points (where, and what a crash there must not break):

- ``commit.before``: a group commit's rows are written, its transaction not committed (the
  whole batch must vanish, and none of it was ``accepted``);
- ``commit.after``: the transaction is committed, nobody has been answered yet (the batch is in
  the log; its senders got no answer and may resend, which must not log it twice);
- ``checkpoint.signed``: a checkpoint is signed, not yet written to the checkpoint file
  (unpublished: it must not matter);
- ``checkpoint.filed``: the checkpoint file holds it, the database does not (the restart must
  store it and serve it);
- ``checkpoint.stored``: stored, not yet pushed to the members nor its receipts sent.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from collections.abc import Callable

from hotline.errors import ConfigError

VARIABLE = "HOTLINE_CRASHPOINTS"
POINTS = ("commit.before", "commit.after", "checkpoint.signed", "checkpoint.filed",
          "checkpoint.stored")


class CrashPoints:
    """Which armed point fires at which pass (the pure part: the caller does the killing)."""

    def __init__(self, armed: dict[str, int | float], *, rng: Callable[[], float] = random.random) -> None:
        self.armed = armed
        self.passes: dict[str, int] = {}
        self.rng = rng

    @classmethod
    def from_text(cls, text: str) -> CrashPoints:
        """Parse ``name[=N|=P][,name...]``.

        Raises:
            ConfigError: an unknown point, or a count or probability that is not one.
        """
        armed: dict[str, int | float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.partition("=")
            if name not in POINTS:
                raise ConfigError(f"{VARIABLE}: unknown crash point {name!r}; the points are "
                                  f"{', '.join(POINTS)}")
            try:
                armed[name] = _trigger(value.strip())
            except ValueError:
                raise ConfigError(f"{VARIABLE}: {name}={value!r} is neither a pass count (1, 2, "
                                  "...) nor a probability (between 0 and 1)") from None
        return cls(armed)

    def fires(self, name: str) -> bool:
        """Count a pass through ``name``: whether it fires now."""
        trigger = self.armed.get(name)
        if trigger is None:
            return False
        if isinstance(trigger, float):
            return self.rng() < trigger
        self.passes[name] = self.passes.get(name, 0) + 1
        return self.passes[name] == trigger


def _trigger(value: str) -> int | float:
    if not value:
        return 1
    if value.isdigit() and int(value) >= 1:
        return int(value)
    probability = float(value)
    if not 0.0 < probability < 1.0:
        raise ValueError(value)
    return probability


def _noop(name: str) -> None:
    return None


def _armed(points: CrashPoints) -> Callable[[str], None]:
    def crashpoint(name: str) -> None:
        if points.fires(name):
            os.write(sys.stderr.fileno(), f'{{"event": "crashpoint.fired", "point": "{name}"}}\n'.encode())
            os.kill(os.getpid(), signal.SIGKILL)
    return crashpoint


def _from_environment() -> tuple[Callable[[str], None], ConfigError | None]:
    text = os.environ.get(VARIABLE, "")
    if not text.strip():
        return _noop, None
    try:
        return _armed(CrashPoints.from_text(text)), None
    except ConfigError as exc:  # raised by the server's start (hotline.server.app.start)
        return _noop, exc


crashpoint, PROBLEM = _from_environment()
