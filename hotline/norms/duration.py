"""ISO 8601 durations as templates write ack deadlines, rate periods and notice rules. Pure.

Only the exact units are accepted: weeks, days, hours, minutes and seconds (``P3D``, ``PT48H``,
``P1DT12H``, ``PT10M``, ``P2W``). Years and months are refused because their length depends on
the calendar: an agreement that says "one month" means a date, not a duration.
"""

from __future__ import annotations

import re
from datetime import timedelta

MAX_DURATION = timedelta(days=3653)
_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W|(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)S)?)?)")


def parse_duration(text: object) -> timedelta:
    """``PT48H`` -> 48 hours. Raises ValueError naming the accepted form (callers wrap it)."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT") or (isinstance(text, str) and text.endswith("T")):
        raise ValueError(f"{text!r} is not an ISO 8601 duration in weeks, days, hours, minutes or "
                         "seconds (for example PT10M, PT48H, P3D)")
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    try:
        delta = timedelta(**parts)
    except OverflowError:
        delta = MAX_DURATION * 2
    if delta > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than the longest duration accepted (10 years)")
    return delta


def format_duration(delta: timedelta) -> str:
    """The shortest ISO 8601 form: ``timedelta(hours=48)`` -> ``P2D``; ``90 s`` -> ``PT1M30S``."""
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return sign + (text if text != "P" else "PT0S")


def describe_duration(delta: timedelta) -> str:
    """For people: ``2 d``, ``10 min``, ``1 h 30 min``."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return ("-" if delta.total_seconds() < 0 else "") + (" ".join(parts) or "0 s")
