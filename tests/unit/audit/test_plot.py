"""hotline.audit.plot: the availability report drawn (matplotlib, the optional extra ``plot``).

A synthetic half hour with an agent's outage and a server's, as in test_availability: every span
of the report's timeline is one band of the SVG, in order and in proportion; each outage one
mark, each party's silences on its row. An empty report still draws. Bad suffixes are refused
before anything is drawn, and the output is the same bytes for the same report.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hotline.audit.availability import AvailabilityReport, build_availability
from hotline.audit.plot import PlotError, check_format, plotter
from tests.unit.audit.test_availability import CHANNEL, NOW, Injected, Log, synthetic_log

SVG = "{http://www.w3.org/2000/svg}"


def report() -> AvailabilityReport:
    entries = synthetic_log(Injected(silent={"north": ((300, 400),)}, server_down=((1000, 1130),)))
    return build_availability(entries, channel=CHANNEL, since=None, until=None, now=NOW)


def ids(svg: Path) -> dict[str, tuple[float, float]]:
    """Each group's id -> the x extent of its path."""
    found = {}
    for group in ET.parse(svg).iter(f"{SVG}g"):
        path = group.find(f"{SVG}path")
        if path is not None and "id" in group.attrib:
            numbers = [float(t) for t in path.attrib["d"].replace("M", " ").replace("L", " ")
                       .replace("z", " ").split()]
            found[group.attrib["id"]] = (min(numbers[0::2]), max(numbers[0::2]))
    return found


def test_bands_are_the_timeline_in_proportion(tmp_path: Path) -> None:
    drawn = report()
    svg = tmp_path / "a.svg"
    plotter(svg)(drawn)
    found = ids(svg)
    bands = [(k, v) for k, v in found.items() if k.startswith("state-")]
    assert [k for k, _ in bands] == [f"state-{n}-{s.state.value}"
                                     for n, s in enumerate(drawn.timeline)]
    left, right = bands[0][1][0], bands[-1][1][1]
    for span, (_, (x0, x1)) in zip(drawn.timeline, bands, strict=True):
        assert abs((x1 - x0) / (right - left) - span.length / drawn.period.length) < 0.001
    assert sorted(k for k in found if k.startswith("outage-")) == ["outage-1", "outage-2"]
    for party, traffic in drawn.parties.items():
        assert len([k for k in found if k.startswith(f"silence-{party}-")]) == len(traffic.silences)
    assert len(drawn.parties["north"].silences) == 2 and len(drawn.parties["south"].silences) == 1
    assert len([k for k in found if k.startswith("rtt-")]) == len(drawn.round_trips.histogram)
    again = tmp_path / "b.svg"
    plotter(again)(drawn)
    assert again.read_bytes() == svg.read_bytes()


def test_an_empty_report_draws(tmp_path: Path) -> None:
    empty = Log().report()
    for name in ("empty.svg", "empty.png"):
        plotter(tmp_path / name)(empty)
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize("name", ["a.pdf", "a", "a.svg.txt", "a.jpeg"])
def test_only_svg_and_png(name: str) -> None:
    with pytest.raises(PlotError) as info:
        check_format(Path(name))
    assert info.value.code == "plot.bad_format" and ".svg or .png" in info.value.message
    assert check_format(Path("A.PNG")) == "png" and check_format(Path("x.svg")) == "svg"
