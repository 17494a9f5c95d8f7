"""Reconnection pacing for unattended clients (the agent, the console)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Backoff:
    """Exponential backoff with jitter: a random wait between half and all of ``base * 2**n``,
    capped, so that many clients cut off together do not all return in the same instant."""

    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0
    rng: Callable[[], float] = random.random

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2 ** self.attempt) * (0.5 + self.rng() / 2)
        self.attempt += 1
        return float(delay)

    def reset(self) -> None:
        self.attempt = 0
