"""``hotline audit availability --plot FILE``: the availability report drawn, for people who look
rather than read. Fed only by the pure :class:`~hotline.audit.availability.AvailabilityReport`
(so it shows exactly what the text says, from the same verified log); matplotlib is an optional
extra (``pip install 'hotline[plot]'``), imported only here and only when asked for.

The figure, top to bottom:

- the channel's states over the period: one band per timeline span, coloured by state, each
  outage marked above it (``host`` when every party fell silent at once);
- each party's heartbeat silences (gaps longer than interval + grace) on its own row;
- the heartbeat -> echo round trips: a histogram by millisecond, p50/p90/p99 marked.

Every drawn band carries an SVG id (``gid``) naming what it shows (``state-N-STATE``,
``outage-N``, ``silence-PARTY-N``, ``rtt-MS``), so a test or a script can find it. The output is
deterministic: Agg only (no display), a fixed SVG hash salt, no date or software metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hotline.audit.availability import ORDER, AvailabilityReport
from hotline.audit.text import duration_text, moment_text
from hotline.entries import HealthState as State
from hotline.errorcodes import Code
from hotline.errors import HotlineError

INSTALL = "pip install 'hotline[plot]'"
FORMATS = {".svg": "svg", ".png": "png"}
COLOURS = {State.UP: "#2e9e44", State.DEGRADED: "#f0a202", State.DOWN: "#d62828",
           State.UNKNOWN: "#a0a0a0"}
SILENCE = "#7a1f1f"
RC: dict[str, str | int] = {"svg.hashsalt": "hotline", "svg.fonttype": "none", "font.family": "DejaVu Sans",
      "font.size": 9, "axes.titlesize": 10}
SIZE = (11.0, 6.4)  # inches
DPI = 100


class PlotError(HotlineError):
    """The plot cannot be drawn or written."""

    code = Code.PLOT_FAILED


class PlotUnavailable(PlotError):
    """matplotlib is not installed."""

    code = Code.PLOT_UNAVAILABLE


def check_format(path: Path) -> str:
    """The image format ``path``'s suffix asks for.

    Raises:
        PlotError: ``plot.bad_format``, the suffix is neither ``.svg`` nor ``.png``.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise PlotError(f"{path.name}: give a file ending in .svg or .png", code=Code.PLOT_BAD_FORMAT)
    return fmt


def plotter(path: Path) -> Callable[[AvailabilityReport], None]:
    """A function that draws a report into ``path``, checked before any work is done.

    Raises:
        PlotError: ``plot.bad_format``, see :func:`check_format`.
        PlotUnavailable: matplotlib is not installed; the message says how to install it.
    """
    fmt = check_format(path)
    try:
        import matplotlib  # noqa: F401  (only to know it is there)
    except ImportError as exc:
        raise PlotUnavailable(f"drawing the report needs matplotlib, an optional extra: "
                              f"{INSTALL} (or pip install 'matplotlib>=3.8')") from exc
    return lambda report: write(report, path, fmt)


def write(report: AvailabilityReport, path: Path, fmt: str) -> None:
    """Draw ``report`` and write it to ``path`` as ``fmt`` (``svg`` or ``png``).

    Raises:
        PlotError: ``plot.write_failed``, the file cannot be written.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):  # type: ignore[arg-type]  # its keys are typed literals
        figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure, report)
        metadata: dict[str, str | None] = ({"Date": None, "Creator": None} if fmt == "svg"
                                           else {"Software": None})
        try:
            figure.savefig(path, format=fmt, metadata=metadata)
        except OSError as exc:
            raise PlotError(f"cannot write {path}: {exc.strerror or exc}",
                            code=Code.PLOT_WRITE_FAILED) from exc


def draw(figure: Any, report: AvailabilityReport) -> None:
    """The three panels of the module docstring, on ``figure`` (a matplotlib Figure)."""
    grid = figure.add_gridspec(3, 1, height_ratios=(1.1, max(1.0, 0.35 * len(report.parties)), 1.4))
    states = figure.add_subplot(grid[0])
    parties = figure.add_subplot(grid[1], sharex=states)
    trips = figure.add_subplot(grid[2])
    figure.suptitle(_title(report), fontsize=11)
    _states(states, report)
    _silences(parties, report)
    _round_trips(trips, report)


def _title(report: AvailabilityReport) -> str:
    period = report.period
    shares = "   ".join(f"{s.value} {p:.2f}%" for s in ORDER
                        if (p := report.percent(s)) is not None and report.time_in[s])
    if period.since is None or period.until is None:
        return f"Channel {report.channel}: no entries in the log"
    return (f"Channel {report.channel}, {moment_text(period.since)} to {moment_text(period.until)} UTC\n"
            f"{shares}   outages: {len(report.outages)}")


def _minutes(report: AvailabilityReport, moment: datetime | None) -> float:
    """Minutes from the start of the period: the shared x axis (0 with no period)."""
    since = report.period.since
    return 0.0 if since is None or moment is None else (moment - since) / timedelta(minutes=1)


def _states(ax: Any, report: AvailabilityReport) -> None:
    from matplotlib.patches import Patch, Rectangle

    ax.set_title("Channel state (health transitions logged by the server)", loc="left")
    ax.set_yticks([])
    ax.set_ylim(0, 1.45)
    length = _minutes(report, report.period.until)
    ax.set_xlim(0, length or 1.0)
    if not report.timeline:
        ax.text(0.5, 0.5, "no time in the period", ha="center", va="center",
                transform=ax.transAxes)
    for n, span in enumerate(report.timeline):
        start = _minutes(report, span.start)
        rect = Rectangle((start, 0.1), _minutes(report, span.end) - start, 0.8,
                         facecolor=COLOURS[span.state], edgecolor="none", label=span.state.value)
        rect.set_gid(f"state-{n}-{span.state.value}")
        ax.add_patch(rect)
    for n, outage in enumerate(report.outages, start=1):
        start = max(0.0, _minutes(report, outage.start))
        end = _minutes(report, outage.end) if outage.end is not None else length
        end = min(end, length)
        marker = Rectangle((start, 0.95), end - start, 0.12, facecolor="black", edgecolor="none")
        marker.set_gid(f"outage-{n}")
        ax.add_patch(marker)
        who = "host" if outage.host else "party"
        ongoing = "+" if outage.ongoing else ""
        ax.annotate(f"outage {n}: {duration_text(outage.length)}{ongoing} ({who})",
                    xy=(start, 1.1), fontsize=8, va="bottom", annotation_clip=False)
    ax.legend(handles=[Patch(facecolor=COLOURS[s], label=s.value) for s in ORDER],
              loc="upper right", ncols=4, fontsize=8, frameon=False, bbox_to_anchor=(1, 1.32))
    ax.tick_params(labelbottom=False)


def _silences(ax: Any, report: AvailabilityReport) -> None:
    from matplotlib.patches import Rectangle

    grace = "" if report.interval is None or report.grace is None else (
        f" (gaps over {int((report.interval + report.grace).total_seconds())} s: "
        "interval + grace)")
    ax.set_title(f"Heartbeat silences by party{grace}", loc="left")
    names = list(report.parties)
    ax.set_ylim(-0.5, max(len(names), 1) - 0.5)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("minutes from the start of the period")
    ax.set_axisbelow(True)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    for row, party in enumerate(names):
        for n, gap in enumerate(report.parties[party].silences):
            start = _minutes(report, gap.start)
            rect = Rectangle((start, row - 0.3), _minutes(report, gap.end) - start, 0.6,
                             facecolor=SILENCE, edgecolor="none")
            rect.set_gid(f"silence-{party}-{n}")
            ax.add_patch(rect)


def _round_trips(ax: Any, report: AvailabilityReport) -> None:
    trips = report.round_trips
    ax.set_title(f"Heartbeat -> echo round trips: {trips.count}", loc="left")
    ax.set_xlabel("milliseconds")
    ax.set_ylabel("echoes")
    if not trips.histogram:
        ax.text(0.5, 0.5, "no round trips in the period", ha="center", va="center",
                transform=ax.transAxes)
        return
    bars = ax.bar([ms for ms, _ in trips.histogram], [n for _, n in trips.histogram], width=1.0,
                  color="#3a6ea5")
    for (ms, _), bar in zip(trips.histogram, bars, strict=True):
        bar.set_gid(f"rtt-{ms}")
    for name, value, style in (("p50", trips.p50, "-"), ("p90", trips.p90, "--"),
                               ("p99", trips.p99, ":")):
        if value is not None:
            at = value / timedelta(milliseconds=1)
            ax.axvline(at, color="black", linestyle=style, linewidth=1,
                       label=f"{name} {at:.0f} ms")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
