"""Tiny offline SVG charts (line and bar, per day) for the dashboard.

Hand-written: importing altair costs 1.7 s and vl-convert's first call 0.6 s, which alone would
break the dashboard's 3 s first-render target.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

_W, _H, _L, _R, _T, _B = 560, 170, 64, 12, 24, 26


def _nice(v: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 or 10 times a power of ten that is at
    least `v` (> 0): axis labels read 8,000 and 4,000, not 6,070.16 and 3,035.08."""
    power = 10.0 ** math.floor(math.log10(v))
    return next(step * power for step in _STEPS if step * power >= v * (1 - 1e-9))


_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def _scale(values: list[float]) -> tuple[float, float]:
    lo = min(0.0, *values) if values else 0.0
    hi = max(values) if values else 1.0
    if hi <= lo:
        return lo, lo + 1.0
    return lo, (_nice(hi) if hi > 0 else hi)


def _frame(title: str, lo: float, hi: float, fmt: Any, days: list[dt.date]) -> list[str]:
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{_H}' "
        f"viewBox='0 0 {_W} {_H}' role='img' aria-label='{html.escape(title)}' "
        "style='font-family:sans-serif;font-size:10px;margin:4px 12px 8px 0'>",
        f"<text x='{_L}' y='14' font-size='12' font-weight='600'>{html.escape(title)}</text>",
        f"<line x1='{_L}' y1='{_H - _B}' x2='{_W - _R}' y2='{_H - _B}' stroke='#999'/>",
    ]
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        y = _H - _B - (_H - _T - _B) * frac
        out.append(
            f"<line x1='{_L}' y1='{y:.1f}' x2='{_W - _R}' y2='{y:.1f}' stroke='#eee'/>"
            f"<text x='{_L - 4}' y='{y + 3:.1f}' text-anchor='end' fill='#555'>"
            f"{html.escape(fmt(v))}</text>"
        )
    if days:
        last = len(days) - 1
        for i in sorted({0, len(days) // 2, last}):
            x = _x(i, len(days))
            anchor = "start" if i == 0 and last else "end" if i == last and last else "middle"
            out.append(
                f"<text x='{x:.1f}' y='{_H - 8}' text-anchor='{anchor}' fill='#555'>"
                f"{days[i].isoformat()}</text>"
            )
    return out


def _x(i: int, n: int) -> float:
    span = _W - _L - _R
    return _L + (span / 2 if n == 1 else span * i / (n - 1))


def _y(v: float, lo: float, hi: float) -> float:
    return _H - _B - (_H - _T - _B) * (v - lo) / (hi - lo)


def line_svg(points: list[tuple[dt.date, float]], title: str, fmt: Any) -> str:
    """A line chart of (day, value) points as an SVG string."""
    values = [v for _, v in points]
    lo, hi = _scale(values)
    out = _frame(title, lo, hi, fmt, [d for d, _ in points])
    coords = [(_x(i, len(points)), _y(v, lo, hi)) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    out.append(f"<polyline fill='none' stroke='#1f77b4' stroke-width='2' points='{path}'/>")
    for (x, y), (d, v) in zip(coords, points, strict=True):
        out.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='#1f77b4'>"
            f"<title>{d.isoformat()}: {html.escape(fmt(v))}</title></circle>"
        )
    out.append("</svg>")
    return "".join(out)


def bar_svg(points: list[tuple[dt.date, float]], title: str, fmt: Any) -> str:
    """A bar chart of (day, value) points as an SVG string."""
    values = [v for _, v in points]
    lo, hi = _scale(values)
    out = _frame(title, lo, hi, fmt, [d for d, _ in points])
    n = max(len(points), 1)
    width = min(18.0, max(1.0, (_W - _L - _R) / n * 0.7))
    # bars stay right of the value labels and inside the frame (a first bar centred on the axis
    # covered the labels: "489" read "48" on a 7-day view)
    pad = width / 2 + 2
    span = _W - _L - _R - 2 * pad
    for i, (d, v) in enumerate(points):
        x = _L + pad + (span / 2 if n == 1 else span * i / (n - 1))
        y = _y(v, lo, hi)
        out.append(
            f"<rect x='{x - width / 2:.1f}' y='{y:.1f}' width='{width:.1f}' "
            f"height='{_H - _B - y:.1f}' fill='#67a9cf'><title>{d.isoformat()}: "
            f"{html.escape(fmt(v))}</title></rect>"
        )
    out.append("</svg>")
    return "".join(out)
