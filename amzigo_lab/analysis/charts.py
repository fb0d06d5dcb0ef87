"""Report charts: altair specs rendered to SVG on the server (vl-convert), so reports need no
CDN and print cleanly. Decimals, dates and 128-bit integers are converted to JSON-safe floats,
ISO strings and ints before they reach altair. Money charts are faceted by currency with
independent scales: amounts in different currencies never share an axis.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import altair as alt
import polars as pl

WIDTH = 620
STATUS_COLORS = {
    "out": "#b2182b",
    "critical": "#ef8a62",
    "reorder": "#fddbc7",
    "healthy": "#67a9cf",
    "overstock": "#999999",
}


def records(df: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts (Decimal -> float, date -> ISO string)."""

    def safe(v: Any) -> Any:
        if isinstance(v, Decimal):
            return float(v)
        if isinstance(v, dt.datetime | dt.date):
            return v.isoformat()
        if isinstance(v, int) and abs(v) > 2**53:
            return float(v)
        return v

    return [{k: safe(v) for k, v in row.items()} for row in df.to_dicts()]


def _data(df: pl.DataFrame) -> alt.Data:
    return alt.Data(values=records(df))


def to_svg(chart: alt.TopLevelMixin) -> str:
    """Render a chart to an SVG string (no network)."""
    import vl_convert as vlc

    return str(vlc.vegalite_to_svg(chart.to_dict()))


def _configure(chart: Any) -> Any:
    return chart.configure_axis(labelFontSize=11, titleFontSize=12).configure_view(stroke=None)


def sales_trend(daily: pl.DataFrame, title: str = "Sales per day") -> alt.TopLevelMixin:
    """Sales line with order bars, one panel per currency."""
    line = (
        alt.Chart(_data(daily))
        .mark_line(point=True, color="#1f77b4")
        .encode(
            x=alt.X("day:T", title=None, timeUnit="yearmonthdate", axis=alt.Axis(format="%b %d")),
            y=alt.Y("sales:Q", title="sales"),
            tooltip=["day:T", "sales:Q", "orders:Q", "units:Q"],
        )
    )
    chart = line.properties(width=WIDTH, height=160).facet(row=alt.Row("currency:N", title=None))
    return _configure(chart.resolve_scale(y="independent").properties(title=title))


def weekly_sales(weekly: pl.DataFrame) -> alt.TopLevelMixin:
    """Weekly sales bars, one panel per currency. Each bar spans the days of the period in its
    week (Monday to Sunday), so a part week at either end is narrower and lighter, and the last
    bar ends inside the axis."""
    data = weekly.with_columns(
        end_day=pl.col("last_day") + pl.duration(days=1),
        week=pl.when(pl.col("days") < 7).then(pl.lit("part week")).otherwise(pl.lit("full week")),
    )
    chart = (
        alt.Chart(_data(data))
        .mark_bar(color="#4c78a8", xOffset=1, x2Offset=-1)
        .encode(
            x=alt.X(
                "first_day:T",
                title="week (Monday to Sunday; lighter: a part week inside the period)",
                axis=alt.Axis(format="%b %d"),
            ),
            x2="end_day:T",
            y=alt.Y("sales:Q", title="sales"),
            y2=alt.datum(0),
            opacity=alt.Opacity(
                "week:N",
                scale=alt.Scale(domain=["full week", "part week"], range=[1.0, 0.45]),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("first_day:T", title="from"),
                alt.Tooltip("last_day:T", title="to"),
                alt.Tooltip("days:Q", title="days"),
                alt.Tooltip("sales:Q", title="sales"),
            ],
        )
        .properties(width=WIDTH, height=140)
        .facet(row=alt.Row("currency:N", title=None))
        .resolve_scale(y="independent")
    )
    return _configure(chart.properties(title="Sales per week"))


def conversion(traffic_daily: pl.DataFrame) -> alt.TopLevelMixin:
    """Sessions and unit session percentage per day and marketplace."""
    data = traffic_daily.with_columns(
        unit_session_pct=pl.col("unit_session_pct") * 100, buy_box_pct=pl.col("buy_box_pct") * 100
    )
    base = alt.Chart(_data(data)).encode(
        x=alt.X("day:T", title=None, timeUnit="yearmonthdate", axis=alt.Axis(format="%b %d")),
        color=alt.Color("marketplace:N", title="marketplace"),
    )
    sessions = base.mark_line(point=True).encode(y=alt.Y("sessions:Q", title="sessions"))
    usp = base.mark_line(point=True, strokeDash=[4, 2]).encode(
        y=alt.Y("unit_session_pct:Q", title="unit session %")
    )
    return _configure(
        alt.vconcat(
            sessions.properties(width=WIDTH, height=140, title="Sessions"),
            usp.properties(width=WIDTH, height=140, title="Unit session percentage"),
        )
    )


def top_skus(skus: pl.DataFrame, n: int = 10) -> alt.TopLevelMixin:
    """The top `n` SKUs by sales, one panel per currency."""
    top = skus.filter(pl.col("rank") <= n).select("currency", "seller_sku", "sales", "units")
    chart = (
        alt.Chart(_data(top))
        .mark_bar(color="#4c78a8")
        .encode(
            y=alt.Y("seller_sku:N", sort="-x", title=None),
            x=alt.X("sales:Q", title="sales"),
            tooltip=["seller_sku:N", "sales:Q", "units:Q"],
        )
        .properties(width=WIDTH - 100, height=alt.Step(16))
        .facet(row=alt.Row("currency:N", title=None))
        .resolve_scale(x="independent", y="independent")
    )
    return _configure(chart.properties(title=f"Top {n} SKUs by sales"))


#: Okabe & Ito's colour-blind-safe palette (black dropped: it reads as an axis).
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#999999"]
#: Review sentiments: vermillion for complaints, blue for praise (distinct for every vision).
SENTIMENT_COLORS = {"negative": "#D55E00", "positive": "#0072B2"}


def _short(text: Any, limit: int) -> str:
    t = " ".join(str(text or "").split())
    return t if len(t) <= limit else t[: limit - 1].rstrip() + "…"


def product_label(title: Any, asin: str, marketplace: str, limit: int = 34) -> str:
    """ "Trail Bottle 1L (B0RED · US)", or the ASIN alone when no title is known."""
    where = f"{asin} · {marketplace}"
    return f"{_short(title, limit)} ({where})" if title else where


def rating_trend(ratings: pl.DataFrame, titles: pl.DataFrame | None = None) -> alt.TopLevelMixin:
    """Star rating over fetch dates: one line per product and marketplace (at most 8: the
    caller picks which), Okabe–Ito colours."""
    data = ratings
    if titles is not None and titles.height:
        data = data.join(titles, on=["asin", "marketplace"], how="left")
    else:
        data = data.with_columns(title=pl.lit(None, dtype=pl.String))
    data = data.with_columns(
        product=pl.struct("title", "asin", "marketplace").map_elements(
            lambda r: product_label(r["title"], r["asin"], r["marketplace"], 30),
            return_dtype=pl.String,
        )
    ).select("product", "fetched_on", "star_rating")
    order = list(dict.fromkeys(str(p) for p in data["product"].to_list()))
    chart = (
        alt.Chart(_data(data))
        .mark_line(point=True)
        .encode(
            x=alt.X("fetched_on:T", title=None, axis=alt.Axis(format="%b %d")),
            y=alt.Y("star_rating:Q", title="stars", scale=alt.Scale(domain=[1, 5])),
            color=alt.Color(
                "product:N",
                title=None,
                scale=alt.Scale(domain=order, range=OKABE_ITO[: max(1, len(order))]),
                legend=alt.Legend(orient="bottom", columns=2, labelLimit=320),
            ),
        )
        .properties(width=WIDTH, height=160, title="Star rating")
    )
    return _configure(chart)


def topic_trends(trends: pl.DataFrame, worst: pl.DataFrame, columns: int = 3) -> alt.TopLevelMixin:
    """Small multiples: one panel per worsening topic in `worst` (rows of
    `reviews.worst_topics`, in that order), each one line (that product, marketplace and
    topic), coloured by sentiment. Marketplaces are never mixed in one line."""
    keys = ["asin", "marketplace", "sentiment", "topic"]
    panels = worst.with_columns(
        panel=pl.struct("title", "asin", "marketplace", "topic", "change_label").map_elements(
            lambda r: (
                f"{_short(r['title'] or r['asin'], 34)}|{r['asin']} · {r['marketplace']}"
                + f"|{_short(r['topic'], 26)}  {r['change_label']}"
            ),
            return_dtype=pl.String,
        )
    ).select(*keys, "panel")
    data = trends.join(panels, on=keys, how="inner").select(
        "panel", "sentiment", "month", "occurrence_percentage"
    )
    order = [str(p) for p in panels["panel"].to_list()]
    chart = (
        alt.Chart(_data(data))
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X(
                "month:T", title=None, timeUnit="yearmonth", axis=alt.Axis(format="%b", tickCount=4)
            ),
            y=alt.Y("occurrence_percentage:Q", title="% of reviews", scale=alt.Scale(zero=True)),
            color=alt.Color(
                "sentiment:N",
                title="sentiment",
                scale=alt.Scale(
                    domain=list(SENTIMENT_COLORS), range=list(SENTIMENT_COLORS.values())
                ),
                legend=alt.Legend(orient="top"),
            ),
        )
        .properties(width=(WIDTH + 80) // columns - 40, height=90)
        .facet(
            facet=alt.Facet(
                "panel:N",
                sort=order,
                title=None,
                header=alt.Header(
                    labelExpr="split(datum.value, '|')",
                    labelFontSize=11,
                    labelLimit=260,
                    labelAlign="left",
                    labelAnchor="start",
                ),
            ),
            columns=columns,
        )
        .resolve_scale(y="independent")
    )
    return _configure(chart.properties(title="Worsening topics, month by month"))


def days_of_cover(table: pl.DataFrame, n: int = 25) -> alt.TopLevelMixin:
    """Days of cover of the `n` most urgent SKUs, coloured by status (capped at 120 days), with
    a tick at each SKU's lead time: a bar short of its tick runs out before a reorder lands
    (unless inbound stock covers it)."""
    data = (
        table.head(n)
        .with_columns(
            label=pl.col("marketplace") + " " + pl.col("seller_sku"),
            cover=pl.col("days_of_cover").fill_null(120.0).clip(0, 120),
            lead=pl.col("lead_time").cast(pl.Float64).clip(0, 120),
        )
        .select("label", "cover", "status", "lead")
    )
    order = [str(x) for x in data["label"].to_list()]
    y = alt.Y("label:N", sort=order, title=None)
    # room right of the longest bar or tick, so a tick at the axis end is not read as its border
    right = max([0.0, *data["cover"].to_list(), *data["lead"].to_list()])
    domain = [0.0, min(round(right * 1.1 + 1.0), 130)]
    title = "Days of cover against lead time"
    if table.height > data.height:
        title += f": the {data.height} most urgent of {table.height} SKUs"
    bars = (
        alt.Chart(_data(data))
        .mark_bar()
        .encode(
            y=y,
            x=alt.X(
                "cover:Q",
                title="days of cover on hand (capped at 120); tick = lead time",
                scale=alt.Scale(domain=domain),
            ),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values())),
            ),
        )
    )
    ticks = alt.Chart(_data(data)).mark_tick(color="#222", thickness=2).encode(y=y, x="lead:Q")
    return _configure(
        alt.layer(bars, ticks).properties(width=WIDTH - 100, height=alt.Step(16), title=title)
    )
