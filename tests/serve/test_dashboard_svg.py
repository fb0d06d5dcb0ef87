"""The dashboard's hand-written SVG charts: bars never cover the value labels."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from amzigo_lab.serve.dashboard import svg


@pytest.mark.parametrize("days", [1, 7, 30, 90])
def test_bars_stay_right_of_the_value_labels_and_inside_the_frame(days: int) -> None:
    start = dt.date(2026, 11, 23)
    points = [(start + dt.timedelta(days=i), 400.0 + i) for i in range(days)]
    chart = svg.bar_svg(points, "Sessions per day", lambda v: f"{v:,.0f}")
    rects = [
        (float(x), float(w))
        for x, w in re.findall(r"<rect x='([-\d.]+)' y='[-\d.]+' width='([\d.]+)'", chart)
    ]
    assert len(rects) == days
    values = re.findall(r"<text x='([\d.]+)' y='[\d.]+' text-anchor='end' fill='#555'>4", chart)
    assert values and all(float(x) < svg._L for x in values)  # the value labels: "400", ...
    for x, width in rects:
        assert x >= svg._L, x  # right of the axis, so no bar covers a value label
        assert x + width <= svg._W - svg._R
    assert rects == sorted(rects)  # in day order, left to right
