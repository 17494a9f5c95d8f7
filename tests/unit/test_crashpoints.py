"""Which armed crash point fires when (hotline.crashpoints): the pure part, without killing."""

from __future__ import annotations

import pytest

from hotline import crashpoints
from hotline.crashpoints import POINTS, CrashPoints
from hotline.errors import ConfigError


def test_unset_in_this_process_every_point_is_a_no_op() -> None:
    assert crashpoints.crashpoint is crashpoints._noop and crashpoints.PROBLEM is None
    for point in POINTS:
        crashpoints.crashpoint(point)  # returns: nothing is armed here


def test_a_point_fires_at_the_pass_it_names_and_only_then() -> None:
    points = CrashPoints.from_text("commit.before=3, checkpoint.filed")
    assert [points.fires("commit.before") for _ in range(5)] == [False, False, True, False, False]
    assert [points.fires("checkpoint.filed") for _ in range(2)] == [True, False]
    assert not any(points.fires("commit.after") for _ in range(5))  # not armed


def test_a_probability_fires_when_the_draw_is_below_it() -> None:
    draws = iter([0.9, 0.1, 0.5])
    points = CrashPoints({"checkpoint.signed": 0.25}, rng=lambda: next(draws))
    assert [points.fires("checkpoint.signed") for _ in range(3)] == [False, True, False]
    assert CrashPoints.from_text("checkpoint.signed=0.25").armed == {"checkpoint.signed": 0.25}


@pytest.mark.parametrize("text", ["commit.later", "commit.before=0", "commit.before=-1",
                                  "commit.before=1.5", "commit.before=x", "commit.before=1e9x"])
def test_an_unknown_point_or_a_bad_trigger_is_a_typed_error(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CrashPoints.from_text(text)
    assert caught.value.code == "config.invalid" and "HOTLINE_CRASHPOINTS" in caught.value.message
