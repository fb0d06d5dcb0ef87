"""Account-health report builders: each metric against Amazon's target, breaches and trends.

Reads `account_health_metrics`, `account_health_violations` and `account_health_rating` (the
seller-performance report; no PII). A metric is judged per marketplace (and, for the order
defect rate, per fulfilment channel) on its reporting windows up to "as of":
- `breach`: the latest window misses the target;
- `trending`: not yet, but each of the last two windows was worse than the one before (two
  consecutive windows worsening toward the threshold) and the latest is past half-way to it
  (`TREND_SHARE`; ODR above 0.5 %, valid tracking below 97.5 %: noise near zero is no trend);
- `near`: within `NEAR_SHARE` of the threshold (20 % of the target for "less than" targets,
  20 % of the room above the target for "greater than" ones);
- `ok` otherwise.
Rates are fractions (0.01 = 1 %), as Amazon reports them.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from dataclasses import dataclass, field

import polars as pl

from amzigo_lab.analysis.money import MARKETPLACES, MarketplaceInfo
from amzigo_lab.analysis.period import Period, is_current
from amzigo_lab.analysis.source import TableSource

#: Amazon's targets of the headline metrics: metric -> (label, target, condition).
TARGETS: dict[str, tuple[str, float, str]] = {
    "order_defect_rate": ("Order defect rate", 0.01, "LESS_THAN"),
    "late_shipment_rate": ("Late shipment rate", 0.04, "LESS_THAN"),
    "pre_fulfillment_cancellation_rate": ("Pre-fulfilment cancellation rate", 0.025, "LESS_THAN"),
    "valid_tracking_rate": ("Valid tracking rate", 0.95, "GREATER_THAN"),
    "on_time_delivery_rate": ("On-time delivery rate", 0.9, "GREATER_THAN"),
}
NEAR_SHARE = 0.2
#: A worsening trend counts once the latest window has used half of the room to the threshold.
TREND_SHARE = 0.5
VERDICTS = ("breach", "trending", "near", "ok")
VERDICT_LABELS = {
    "breach": "BREACH",
    "trending": "worsening toward target",
    "near": "near target",
    "ok": "ok",
}
RULES = (
    "Amazon's targets: order defect rate < 1 % (AFN and MFN each), late shipment rate < 4 %, "
    "pre-fulfilment cancellation rate < 2.5 %, valid tracking rate > 95 %, on-time delivery "
    "rate > 90 %. BREACH: the latest window misses the target; worsening toward target: each of "
    "the last two windows was worse than the one before and the latest is past half-way to the "
    "threshold; near target: within 20 % of the threshold."
)
EMPTY = (
    "No account-health data for this tenant: the seller-performance report "
    "(GET_V2_SELLER_PERFORMANCE_REPORT) has not been ingested yet (`amzigo ingest --streams "
    "account_health`)."
)
_CODES = {m.marketplace_id: m.code for m in MARKETPLACES}


def misses(rate: float, target: float, condition: str) -> bool:
    """Whether `rate` misses the target ("less than": must stay below; "greater than": above)."""
    return rate >= target if condition == "LESS_THAN" else rate <= target


def worse(a: float, b: float, condition: str) -> bool:
    """Whether `b` is worse than `a`."""
    return b > a if condition == "LESS_THAN" else b < a


def verdict(rates: list[float], target: float, condition: str) -> str:
    """The verdict of a metric from its windows' rates, oldest first (see the module doc)."""
    if not rates:
        return "ok"
    last = rates[-1]
    if misses(last, target, condition):
        return "breach"
    room = target if condition == "LESS_THAN" else 1.0 - target
    headroom = abs(target - last)
    if (
        len(rates) >= 3
        and worse(rates[-3], rates[-2], condition)
        and worse(rates[-2], last, condition)
        and headroom < TREND_SHARE * room
    ):
        return "trending"
    if headroom < NEAR_SHARE * room:
        return "near"
    return "ok"


def target_label(target: float, condition: str) -> str:
    """ "< 1%" / "> 95%"."""
    return f"{'<' if condition == 'LESS_THAN' else '>'} {target * 100:g}%"


@dataclass
class AccountHealthReport:
    """What the account-health notebook and the dashboard section show."""

    as_of: dt.date | None
    #: one row per marketplace, metric and channel: the latest window and its verdict
    current: pl.DataFrame
    #: every window up to as_of of the headline metrics (for the trend charts)
    history: pl.DataFrame
    #: the latest window's policy violations with a count, and BAD warning states
    violations: pl.DataFrame
    #: account status and account health rating of the latest window per marketplace
    ratings: pl.DataFrame
    #: the latest order-defect window per marketplace and channel, by cause
    defects: pl.DataFrame = field(default_factory=pl.DataFrame)
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether there is nothing to show (`reason` says why)."""
        return self.current.height == 0

    @property
    def violation_count(self) -> int:
        """Policy violations and warnings of the latest window (Amazon's target: 0); a row
        Amazon rates BAD without a count counts once."""
        if self.violations.height == 0:
            return 0
        counts = self.violations["defects_count"].fill_null(0).to_list()
        return sum(max(int(c), 1) for c in counts)


def violation_label(key: str) -> str:
    """Amazon's key of a policy violation or warning in words: "listingPolicyViolations" ->
    "Listing policy violations", "warning:spammingSellerMessaging" -> "Warning: spamming seller
    messaging"."""
    prefix, _, name = key.rpartition(":")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower().strip()
    text = words[:1].upper() + words[1:]
    return f"{prefix.capitalize()}: {text.lower()}" if prefix else text


def _code(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        marketplace=pl.col("marketplace_id").replace_strict(
            _CODES, default=pl.col("marketplace_id"), return_dtype=pl.String
        )
    )


def _cutoff(as_of: dt.date | None) -> dt.datetime | None:
    if as_of is None:
        return None
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), dt.UTC)


def windows_as_of(
    period: Period, now: dt.datetime | None = None, marketplace: MarketplaceInfo | None = None
) -> dt.date | None:
    """The last day of the windows a report of `period` judges: the period's end, or None (the
    newest report Amazon made) when the period reaches the present at `now`. Amazon's windows
    end the day before it makes the report, which can be a day after the latest local day
    complete in every marketplace (the period's end, as in every other report): the report
    keeps the same period as the others and still shows the current state."""
    markets = [marketplace] if marketplace else list(MARKETPLACES)
    return None if is_current(period.end, now, markets) else period.end


def build_account_health_report(
    source: TableSource,
    as_of: dt.date | None = None,
    marketplace: MarketplaceInfo | None = None,
    history_days: int = 120,
) -> AccountHealthReport:
    """Judge every headline metric on its windows ending on or before `as_of` (None: all)."""
    t = source.table("account_health_metrics")
    cutoff = _cutoff(as_of)
    if cutoff is not None:
        t = t.filter(t.window_end < cutoff)
    if marketplace is not None:
        t = t.filter(t.marketplace_id == marketplace.marketplace_id)
    t = t.filter(t.metric.isin(list(TARGETS)))
    df = t.select(
        "marketplace_id", "metric", "fulfillment_channel", "window_start", "window_end", "rate",
        "defects", "total", "claims", "chargebacks", "negative_feedback", "target_value",
        "target_condition", "status",
    ).to_polars()  # fmt: skip
    df = df.filter(pl.col("rate").is_not_null())
    empty = AccountHealthReport(
        as_of, pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), pl.DataFrame()
    )
    if df.height == 0:
        total = source.table("account_health_metrics").count().to_pyarrow().as_py()
        empty.reason = (
            EMPTY
            if not total
            else f"No account-health reporting window ends on or before {as_of}"
            + (f" in {marketplace.code}" if marketplace else "")
            + "."
        )
        return empty
    df = _code(df).sort(["marketplace", "metric", "fulfillment_channel", "window_end"])
    rows = []
    for (mp, metric, channel), grp in df.group_by(
        ["marketplace", "metric", "fulfillment_channel"], maintain_order=True
    ):
        label, default_target, default_condition = TARGETS[str(metric)]
        last = grp.row(grp.height - 1, named=True)
        target = last["target_value"] if last["target_value"] is not None else default_target
        condition = last["target_condition"] or default_condition
        rates = [float(r) for r in grp["rate"].to_list()]
        judged = verdict(rates, target, condition)
        recent = " → ".join(f"{r * 100:.2f}%" for r in rates[-3:])
        rows.append(
            {
                "marketplace": mp,
                "marketplace_id": last["marketplace_id"],
                "metric": metric,
                "label": label,
                "channel": "" if channel == "all" else str(channel).upper(),
                "window": f"{last['window_start']:%Y-%m-%d} – {last['window_end']:%Y-%m-%d}",
                "window_end": last["window_end"],
                "rate_pct": rates[-1] * 100,
                "target": target_label(target, condition),
                "recent": recent,
                "windows": len(rates),
                "defects": last["defects"],
                "total": last["total"],
                "amazon_status": last["status"],
                "verdict": judged,
                "verdict_label": VERDICT_LABELS[judged],
                "order": VERDICTS.index(judged),
            }
        )
    current = pl.DataFrame(rows).sort(["order", "marketplace", "metric", "channel"])
    first = df["window_end"].max() - dt.timedelta(days=history_days)  # type: ignore[operator]
    history = df.filter(pl.col("window_end") >= first)
    counts = {v: int((current["verdict"] == v).sum()) for v in VERDICTS}
    odr = df.filter(pl.col("metric") == "order_defect_rate")
    newest = odr.group_by(["marketplace", "fulfillment_channel"]).agg(
        pl.col("window_end").max().alias("_last")
    )
    defects = (
        odr.join(newest, on=["marketplace", "fulfillment_channel"])
        .filter(pl.col("window_end") == pl.col("_last"))
        .with_columns(
            channel=pl.col("fulfillment_channel").str.to_uppercase(),
            rate_pct=pl.col("rate") * 100,
        )
        .sort(["marketplace", "channel"])
    )
    return AccountHealthReport(
        as_of,
        current,
        history,
        _violations(source, cutoff, marketplace),
        _ratings(source, cutoff, marketplace),
        defects=defects,
        counts=counts,
    )


def _latest(df: pl.DataFrame) -> pl.DataFrame:
    if df.height == 0:
        return df
    last = df.group_by("marketplace_id").agg(pl.col("window_end").max().alias("_last"))
    return df.join(last, on="marketplace_id").filter(pl.col("window_end") == pl.col("_last"))


def _violations(
    source: TableSource, cutoff: dt.datetime | None, market: MarketplaceInfo | None
) -> pl.DataFrame:
    t = source.table("account_health_violations")
    if cutoff is not None:
        t = t.filter(t.window_end < cutoff)
    if market is not None:
        t = t.filter(t.marketplace_id == market.marketplace_id)
    df = t.select(
        "marketplace_id", "violation", "window_start", "window_end", "defects_count", "status"
    ).to_polars()
    df = _latest(df).filter(
        (pl.col("defects_count").fill_null(0) > 0) | (pl.col("status") == "BAD")
    )
    return (
        _code(df)
        .sort(["marketplace", "violation"])
        .with_columns(
            kind=pl.col("violation").map_elements(violation_label, return_dtype=pl.String),
            window=pl.col("window_start").dt.strftime("%Y-%m-%d")
            + " – "
            + pl.col("window_end").dt.strftime("%Y-%m-%d"),
        )
    )


def _ratings(
    source: TableSource, cutoff: dt.datetime | None, market: MarketplaceInfo | None
) -> pl.DataFrame:
    t = source.table("account_health_rating")
    if cutoff is not None:
        t = t.filter(t.window_end < cutoff)
    if market is not None:
        t = t.filter(t.marketplace_id == market.marketplace_id)
    df = t.select("marketplace_id", "window_end", "account_status", "ahr_status").to_polars()
    return _code(_latest(df)).sort("marketplace")


# -- a small offline SVG of one metric's windows against its target ---------------------------

#: Chart box: width, height, and the left (y-axis scale), right (value and target labels), top
#: (title) and bottom (dates) margins, in px; labels are 10 px high.
_W, _H, _L, _R, _T, _B = 340, 130, 46, 62, 22, 20
_LABEL_H = 11.0
_COLOURS = {"breach": "#c0392b", "trending": "#d68910", "near": "#b7950b", "ok": "#1f77b4"}


def _ticks(lo: float, hi: float, most: int = 5) -> list[float]:
    """Round rates (fractions) for the y-axis between `lo` and `hi`: steps of 1, 2, 2.5 or 5
    times a power of ten percentage points, at most `most` of them."""
    span = (hi - lo) * 100
    if span <= 0:
        return [lo]
    raw = span / max(1, most - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw - 1e-12)
    first = math.ceil(lo * 100 / step - 1e-9) * step
    out, v = [], first
    while v <= hi * 100 + 1e-9:
        out.append(round(v, 10) / 100)
        v += step
    return out


def _pct_labels(ticks: list[float]) -> list[str]:
    """Tick labels with the fewest decimals that show every tick exactly ("4%", "2.5%")."""
    pcts = [t * 100 for t in ticks]
    decimals = next((d for d in range(4) if all(abs(round(p, d) - p) < 1e-6 for p in pcts)), 4)
    return [f"{p:.{decimals}f}%" for p in pcts]


def _apart(a: float, b: float, top: float, bottom: float) -> tuple[float, float]:
    """Two label baselines moved apart to at least one label height, inside [top, bottom]."""
    if abs(a - b) >= _LABEL_H:
        return a, b
    mid, half = (a + b) / 2, _LABEL_H / 2
    upper, lower = mid - half, mid + half
    if upper < top:
        upper, lower = top, top + _LABEL_H
    if lower > bottom:
        upper, lower = bottom - _LABEL_H, bottom
    return (upper, lower) if a <= b else (lower, upper)


def trend_svg(
    points: list[tuple[dt.date, float]], target: float, title: str, judged: str = "ok"
) -> str:
    """Rates (fractions) of consecutive windows as a line, the target as a dashed red line.

    The y-axis has a scale (round percentages, light grid lines); the latest value and the
    target are labelled in the right margin, beside the line ends, and pushed apart when they
    would overlap (a value just under its target)."""
    values = [v for _, v in points] + [target]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.15 or max(hi * 0.1, 0.001)
    lo, hi = max(0.0, lo - pad), min(1.0, hi + pad) if hi <= 1.0 else hi + pad
    ticks = _ticks(lo, hi)

    def y(v: float) -> float:
        return _H - _B - (_H - _T - _B) * (v - lo) / ((hi - lo) or 1.0)

    def x(i: int) -> float:
        n = len(points)
        span = _W - _L - _R
        return _L + (span / 2 if n == 1 else span * i / (n - 1))

    colour = _COLOURS.get(judged, "#1f77b4")
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{_H}' "
        f"viewBox='0 0 {_W} {_H}' role='img' aria-label='{html.escape(title)}' "
        "style='font-family:sans-serif;font-size:10px;margin:2px 10px 6px 0'>",
        f"<text x='{_L}' y='13' font-size='11' font-weight='600'>{html.escape(title)}</text>",
    ]
    for t, label in zip(ticks, _pct_labels(ticks), strict=True):
        out.append(
            f"<line class='grid' x1='{_L}' y1='{y(t):.1f}' x2='{_W - _R}' y2='{y(t):.1f}' "
            "stroke='#e5e5e5'/>"
            f"<text class='tick' x='{_L - 4}' y='{y(t) + 3:.1f}' text-anchor='end' fill='#777'>"
            f"{label}</text>"
        )
    out += [
        f"<line x1='{_L}' y1='{_T}' x2='{_L}' y2='{_H - _B}' stroke='#999'/>",
        f"<line x1='{_L}' y1='{_H - _B}' x2='{_W - _R}' y2='{_H - _B}' stroke='#999'/>",
        f"<line x1='{_L}' y1='{y(target):.1f}' x2='{_W - _R}' y2='{y(target):.1f}' "
        "stroke='#c0392b' stroke-dasharray='4 3'/>",
    ]
    target_y = y(target) + 3
    if points:
        coords = [(x(i), y(v)) for i, (_, v) in enumerate(points)]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
        out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{path}'/>")
        for (a, b), (d, v) in zip(coords, points, strict=True):
            out.append(
                f"<circle cx='{a:.1f}' cy='{b:.1f}' r='2.5' fill='{colour}'>"
                f"<title>window to {d.isoformat()}: {v * 100:.2f}%</title></circle>"
            )
        value_y, target_y = _apart(coords[-1][1] + 3, target_y, _T + 8, _H - _B + 3)
        out.append(
            f"<text class='value' x='{_W - _R + 5}' y='{value_y:.1f}' fill='{colour}' "
            f"font-weight='600'>{points[-1][1] * 100:.2f}%</text>"
        )
        out.append(
            f"<text x='{_L}' y='{_H - 6}' fill='#555'>{points[0][0].isoformat()}</text>"
            f"<text x='{_W - _R}' y='{_H - 6}' text-anchor='end' fill='#555'>"
            f"{points[-1][0].isoformat()}</text>"
        )
    out.append(
        f"<text class='target' x='{_W - _R + 5}' y='{target_y:.1f}' fill='#c0392b'>"
        f"target {target * 100:g}%</text>"
    )
    out.append("</svg>")
    return "".join(out)


def trend_charts(report: AccountHealthReport, only: tuple[str, ...] = VERDICTS) -> list[str]:
    """One small chart per (marketplace, metric, channel) whose verdict is in `only`, worst
    first."""
    if report.empty:
        return []
    charts = []
    for row in report.current.filter(pl.col("verdict").is_in(list(only))).to_dicts():
        channel = row["channel"].lower() or "all"
        h = report.history.filter(
            (pl.col("marketplace") == row["marketplace"])
            & (pl.col("metric") == row["metric"])
            & (pl.col("fulfillment_channel") == channel)
        ).sort("window_end")
        points = [(d.date(), float(r)) for d, r in zip(h["window_end"], h["rate"], strict=True)]
        _, default_target, _ = TARGETS[row["metric"]]
        target = (
            float(h["target_value"][-1])
            if h.height and h["target_value"][-1] is not None
            else default_target
        )
        suffix = f" {row['channel']}" if row["channel"] else ""
        title = f"{row['marketplace']} · {row['label']}{suffix}"
        charts.append(trend_svg(points, target, title, row["verdict"]))
    return charts
