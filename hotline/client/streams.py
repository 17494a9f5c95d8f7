"""The order of what the host delivers, as this client saw it. Pure.

Per channel, delivered log indexes strictly increase. The one exception the protocol makes is a
replay (``resume`` after an index): live entries the host sent just before it began replaying may
come first, so within a replay the order may drop back once, to an index after the one the
replay started from, and must increase from there; when ``resumed`` comes the channel is live
again. An index delivered twice with the same entry (a replay overlapping what was live) is shown
once; the same index with another entry, or an index that goes backwards, is the host's
misbehaviour. Inclusion proofs (``hotline.logwatch``) then show each shown entry is the one
logged at its index.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum

from hotline.entries import Entry, leaf_bytes

KEEP = 1 << 16  # indexes whose entry digest is remembered (a long-running client forgets the oldest)


class Arrival(Enum):
    NEW = "new"  # in order: show it
    AGAIN = "again"  # the same entry at an index already delivered: shown before, skip it


@dataclass
class _Replay:
    after: int  # the replay starts after this index
    last: int  # the last index in order
    restarted: bool = False  # the order dropped back once: the replay proper began


@dataclass
class Streams:
    live: dict[str, int] = field(default_factory=dict)  # channel -> last index in order
    replays: dict[str, _Replay] = field(default_factory=dict)  # channel -> its replay under way
    digests: dict[int, bytes] = field(default_factory=dict)  # index -> SHA-256 of the entry

    def replay(self, channel: str, after: int) -> None:
        """A replay of ``channel`` after ``after`` was asked for."""
        self.replays[channel] = _Replay(after, max(after, self.live.get(channel, -1)))

    def replayed(self, channel: str, last: int) -> None:
        """The replay of ``channel`` ended at ``last`` (the host's ``resumed``)."""
        replay = self.replays.pop(channel, None)
        self.live[channel] = max(self.live.get(channel, -1), last, replay.last if replay else -1)

    def arrive(self, index: int, channel: str | None, entry: Entry) -> Arrival | str:
        """Classify one delivered entry: ``NEW``, ``AGAIN``, or what is wrong with it."""
        digest = hashlib.sha256(leaf_bytes(entry)).digest()
        seen = self.digests.get(index)
        if seen is not None:
            return Arrival.AGAIN if seen == digest else (
                f"entry {index} was delivered before with other content")
        if channel is not None:
            replay = self.replays.get(channel)
            last = self.live.get(channel, -1) if replay is None else replay.last
            if replay is not None and index <= last and not replay.restarted and index > replay.after:
                replay.restarted = True
            elif index <= last:
                return (f"entry {index} on {channel} came after entry {last}: the host's order "
                        "went backwards")
            if replay is None:
                self.live[channel] = index
            else:
                replay.last = index
        self.digests[index] = digest
        if len(self.digests) > KEEP:
            del self.digests[next(iter(self.digests))]
        return Arrival.NEW
