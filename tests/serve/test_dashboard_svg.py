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
    ends = [float(x) for x in re.findall(r"<text x='([\d.]+)' y='[\d.]+' text-anchor='end'", chart)]
    values = [x for x in ends if x < svg._L]  # the value labels ("500", "250", "0"), not dates
    assert len(values) == 3
    for x, width in rects:
        assert x >= svg._L, x  # right of the axis, so no bar covers a value label
        assert x + width <= svg._W - svg._R
    assert rects == sorted(rects)  # in day order, left to right


@pytest.mark.parametrize(
    ("top", "axis"),
    [(6070.16, 8000.0), (978.0, 1000.0), (1526.0, 2000.0), (0.37, 0.4), (50.0, 50.0), (1.0, 1.0)],
)
def test_the_value_axis_ends_on_a_round_number(top: float, axis: float) -> None:
    """Labels read 8,000 / 4,000 / 0, not the data's own maximum (6,070.16 / 3,035.08)."""
    lo, hi = svg._scale([top / 3, top])
    assert lo == 0.0 and hi == pytest.approx(axis)
    chart = svg.line_svg(
        [(dt.date(2026, 11, 1), top / 3), (dt.date(2026, 11, 2), top)], "t", lambda v: f"{v:g}"
    )
    assert f">{axis:g}<" in chart and f">{axis / 2:g}<" in chart
