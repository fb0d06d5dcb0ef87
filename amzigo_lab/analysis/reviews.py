"""Reviews report builders: topics, topic trends, star-rating trend, worsening flags and the
review-request view.

Review data are aggregates per ASIN (no reviewer data). The review-request view reads only
order ids, marketplaces and delivery dates from `solicitation_eligibility`: never buyer PII.
Percentages are as Amazon reports them (0-100).

Topics and star ratings come from the latest fetch that describes the period: one made up to the
morning after it ends, or, when the period reaches the present (it ends at the latest local day
complete in its marketplaces, see `period.is_current`), one made today: the current state, as
the inventory report's current stock position.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

import polars as pl

from amzigo_lab.analysis.money import MARKETPLACES, MarketplaceInfo
from amzigo_lab.analysis.period import Period, is_current
from amzigo_lab.analysis.source import TableSource

#: Amazon's review-request window: from 5 days after the earliest delivery date to 30 days
#: after the latest delivery date.
WINDOW_OPENS_AFTER = dt.timedelta(days=5)
WINDOW_CLOSES_AFTER = dt.timedelta(days=30)
#: A topic is "worsening" when its latest monthly share moved this many points the wrong way
#: (negative topics up, positive topics down) against the month before.
WORSENING_POINTS = 2.0
#: Orders whose earliest delivery lies this long before the period start are still shown.
LOOKBACK = dt.timedelta(days=35)
REQUEST_STATES = (
    "eligible_now", "eligible_later", "not_eligible", "already_requested", "objected"
)  # fmt: skip

_CODES = {m.marketplace_id: m.code for m in MARKETPLACES}


def _marketplace_code(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        marketplace=pl.col("marketplace_id").replace_strict(
            _CODES, default=pl.col("marketplace_id"), return_dtype=pl.String
        )
    )


def fetch_cutoff(
    period: Period, now: dt.datetime | None = None, marketplace: MarketplaceInfo | None = None
) -> dt.date | None:
    """The newest fetch date describing `period`: the morning after it (a fetch on the day
    after the period closes describes it), or None (no bound: the latest fetch) when the period
    reaches the present at `now`, since a fetch made today is the current state."""
    markets = [marketplace] if marketplace else list(MARKETPLACES)
    return None if is_current(period.end, now, markets) else period.end_exclusive


def current_topics(
    source: TableSource,
    period: Period,
    marketplace: MarketplaceInfo | None = None,
    now: dt.datetime | None = None,
) -> pl.DataFrame:
    """The latest fetch of each ASIN's topics describing the period (`fetch_cutoff`)."""
    t = source.table("review_topics")
    cutoff = fetch_cutoff(period, now, marketplace)
    if cutoff is not None:
        t = t.filter(t.fetched_on <= cutoff)
    if marketplace is not None:
        t = t.filter(t.marketplace_id == marketplace.marketplace_id)
    latest = t.group_by(["asin", "marketplace_id"]).aggregate(last=t.fetched_on.max())
    cur = t.join(latest, ["asin", "marketplace_id"]).filter(lambda x: x.fetched_on == x.last)
    df = cur.select(
        "asin", "marketplace_id", "fetched_on", "sentiment", "topic", "review_count",
        "occurrence_percentage", "star_rating_impact", "star_rating",
    ).to_polars()  # fmt: skip
    df = _marketplace_code(df).with_columns(sentiment=pl.col("sentiment").str.to_lowercase())
    return df.sort(
        ["asin", "marketplace", "sentiment", "occurrence_percentage"],
        descending=[False, False, False, True],
    )


def rating_trend(
    source: TableSource,
    period: Period,
    marketplace: MarketplaceInfo | None = None,
    now: dt.datetime | None = None,
) -> pl.DataFrame:
    """Star rating per ASIN and fetch date (only where Amazon reported one), fetches describing
    the period (`fetch_cutoff`)."""
    t = source.table("review_topics")
    t = t.filter(t.star_rating.notnull())
    cutoff = fetch_cutoff(period, now, marketplace)
    if cutoff is not None:
        t = t.filter(t.fetched_on <= cutoff)
    if marketplace is not None:
        t = t.filter(t.marketplace_id == marketplace.marketplace_id)
    agg = t.group_by(["asin", "marketplace_id", "fetched_on"]).aggregate(
        star_rating=t.star_rating.max()
    )
    return _marketplace_code(agg.to_polars()).sort(["asin", "marketplace", "fetched_on"])


def topic_trends(
    source: TableSource, period: Period, marketplace: MarketplaceInfo | None = None
) -> pl.DataFrame:
    """Monthly occurrence of each topic per ASIN, months up to the period end."""
    t = source.table("review_trends")
    t = t.filter(t.month <= period.end)
    if marketplace is not None:
        t = t.filter(t.marketplace_id == marketplace.marketplace_id)
    df = t.select(
        "asin", "marketplace_id", "sentiment", "topic", "month", "occurrence_percentage"
    ).to_polars()
    df = _marketplace_code(df).with_columns(sentiment=pl.col("sentiment").str.to_lowercase())
    return df.sort(["asin", "marketplace", "sentiment", "topic", "month"])


def change_label(change: float | None) -> str:
    """A change in percentage points with its direction: "▲ +3.5 pts", "▼ −12.0 pts"."""
    if change is None:
        return "new"
    if abs(change) < 0.05:
        return "■ 0.0 pts"
    arrow = "▲" if change > 0 else "▼"
    return f"{arrow} {'+' if change > 0 else '−'}{abs(change):.1f} pts"


def topic_changes(trends: pl.DataFrame, points: float = WORSENING_POINTS) -> pl.DataFrame:
    """Per topic and marketplace: latest month, its share, the share the month before, the
    change (points), how far it moved the wrong way (`bad_move`, > 0 = worse), its label and
    the verdict."""
    keys = ["asin", "marketplace", "sentiment", "topic"]
    ranked = trends.sort([*keys, "month"]).with_columns(
        previous=pl.col("occurrence_percentage").shift(1).over(keys),
        is_last=pl.col("month") == pl.col("month").max().over(keys),
    )
    last = ranked.filter(pl.col("is_last")).drop("is_last")
    last = last.with_columns(change=pl.col("occurrence_percentage") - pl.col("previous"))
    bad_dir = (
        pl.when(pl.col("sentiment") == "negative")
        .then(pl.col("change"))
        .otherwise(-pl.col("change"))
    )
    return last.with_columns(
        worsening=(bad_dir >= points).fill_null(False),
        bad_move=bad_dir,
        change_label=pl.col("change").map_elements(change_label, return_dtype=pl.String),
    ).select(
        *keys, "month", "occurrence_percentage", "previous", "change", "change_label",
        "bad_move", "worsening",
    )  # fmt: skip


def _with_titles(df: pl.DataFrame, titles: pl.DataFrame | None) -> pl.DataFrame:
    if titles is None or not titles.height:
        return df.with_columns(title=pl.lit(None, dtype=pl.String))
    return df.join(titles, on=["asin", "marketplace"], how="left")


def worsening_products(changes: pl.DataFrame, titles: pl.DataFrame | None = None) -> pl.DataFrame:
    """Products (ASIN per marketplace) with at least one worsening topic, worst first; `moves`
    lists each worsening topic with its move ("Soft ▼ −5.0 pts"), worst first."""
    bad = changes.filter(pl.col("worsening")).sort(["bad_move", "topic"], descending=[True, False])
    out = (
        bad.group_by(["asin", "marketplace"], maintain_order=True)
        .agg(
            worsening_topics=pl.col("topic").sort().str.join(", "),
            moves=(pl.col("topic") + " " + pl.col("change_label")).str.join("; "),
            topics=pl.len().cast(pl.Int64),
            worst_change=pl.col("change").abs().max(),
            worst_label=pl.col("change_label").first(),
        )
        .sort(["topics", "worst_change", "asin"], descending=[True, True, False])
    )
    return _with_titles(out, titles)


def worst_topics(
    changes: pl.DataFrame, titles: pl.DataFrame | None = None, n: int | None = None
) -> pl.DataFrame:
    """The worsening topics (one row per ASIN, marketplace and topic), the largest wrong-way
    move first; the first `n` only when given."""
    bad = changes.filter(pl.col("worsening")).sort(
        ["bad_move", "asin", "marketplace", "topic"], descending=[True, False, False, False]
    )
    bad = _with_titles(bad, titles)
    return bad.head(n) if n is not None else bad


def top_topics(
    topics: pl.DataFrame, sentiment: str, titles: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Latest topics of one sentiment, the most-mentioned first (review count, then share)."""
    rows = topics.filter(pl.col("sentiment") == sentiment).sort(
        ["review_count", "occurrence_percentage", "asin", "topic"],
        descending=[True, True, False, False],
        nulls_last=True,
    )
    return _with_titles(rows, titles)


def item_titles(source: TableSource, marketplace: MarketplaceInfo | None = None) -> pl.DataFrame:
    """A title per ASIN and marketplace from the order lines (asin, marketplace, title): what a
    source without the catalog (the dashboard's) can name products by."""
    return _marketplace_code(_item_titles(source, marketplace)).select(
        "asin", "marketplace", "title"
    )


def _item_titles(source: TableSource, marketplace: MarketplaceInfo | None) -> pl.DataFrame:
    i = source.table("order_items")
    i = i.filter(i.title.notnull())
    if marketplace is not None:
        i = i.filter(i.marketplace_id == marketplace.marketplace_id)
    return i.group_by(["asin", "marketplace_id"]).aggregate(title=i.title.max()).to_polars()


def product_titles(source: TableSource, marketplace: MarketplaceInfo | None = None) -> pl.DataFrame:
    """A title per ASIN and marketplace: the catalog's latest, else one from the order lines."""
    c = source.table("catalog_items")
    c = c.filter(c.title.notnull())
    if marketplace is not None:
        c = c.filter(c.marketplace_id == marketplace.marketplace_id)
    catalog = (
        c.order_by([c.asin, c.marketplace_id, c.fetched_at.desc()])
        .select("asin", "marketplace_id", "title")
        .to_polars()
        .unique(["asin", "marketplace_id"], keep="first", maintain_order=True)
    )
    items = _item_titles(source, marketplace)
    both = pl.concat([catalog, items.select(catalog.columns)], how="vertical_relaxed")
    both = both.unique(["asin", "marketplace_id"], keep="first", maintain_order=True)
    return _marketplace_code(both).select("asin", "marketplace", "title")


def review_requests(
    source: TableSource,
    period: Period,
    marketplace: MarketplaceInfo | None = None,
    as_of: dt.datetime | None = None,
    objected: Collection[str] = (),
) -> pl.DataFrame:
    """Review-request state of each order delivered around the period (ids and dates only).

    States at `as_of` (default: the end of the period): already_requested; objected (the buyer
    objected to processing through a data-subject request: never request); eligible_now (Amazon
    says eligible); eligible_later (the window opens after `as_of`); not_eligible.
    """
    as_of = as_of or dt.datetime.combine(period.end_exclusive, dt.time(), dt.UTC)
    s = source.table("solicitation_eligibility")
    first = period.start - LOOKBACK
    edd = s.earliest_delivery_date.date()
    s = s.filter(edd >= first, edd <= period.end)
    if marketplace is not None:
        s = s.filter(s.marketplace_id == marketplace.marketplace_id)
    df = s.select(
        "amazon_order_id", "marketplace_id", "earliest_delivery_date", "latest_delivery_date",
        "eligible", "requested", "checked_at",
    ).to_polars()  # fmt: skip
    opens = pl.col("earliest_delivery_date") + WINDOW_OPENS_AFTER
    closes = pl.col("latest_delivery_date") + WINDOW_CLOSES_AFTER
    df = df.with_columns(window_opens=opens.dt.date(), window_closes=closes.dt.date())
    state = (
        pl.when(pl.col("requested"))
        .then(pl.lit("already_requested"))
        .when(pl.col("amazon_order_id").is_in(sorted(objected)))
        .then(pl.lit("objected"))
        .when(pl.col("eligible"))
        .then(pl.lit("eligible_now"))
        .when(opens > pl.lit(as_of))
        .then(pl.lit("eligible_later"))
        .otherwise(pl.lit("not_eligible"))
    )
    df = _marketplace_code(df.with_columns(state=state))
    return df.select(
        "amazon_order_id", "marketplace", "state", "window_opens", "window_closes", "checked_at"
    ).sort(["state", "window_opens", "amazon_order_id"])


#: Review-request states as a seller reads them (the report's tables show these).
REQUEST_STATE_LABELS = {
    "eligible_now": "can be requested now",
    "eligible_later": "window not open yet",
    "not_eligible": "not eligible",
    "already_requested": "already requested",
    "objected": "buyer objected: never requested",
}


def with_state_labels(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with a `state_label` column: each review-request state in words."""
    return df.with_columns(
        state_label=pl.col("state").replace_strict(REQUEST_STATE_LABELS, return_dtype=pl.String)
    )


def request_summary(requests: pl.DataFrame) -> pl.DataFrame:
    """Orders per review-request state (every state listed, zeros included)."""
    counts = requests.group_by("state").agg(orders=pl.len().cast(pl.Int64))
    states = pl.DataFrame({"state": list(REQUEST_STATES)})
    return states.join(counts, on="state", how="left").with_columns(pl.col("orders").fill_null(0))


@dataclass
class ReviewsReport:
    """Everything the reviews notebook shows."""

    period: Period
    topics: pl.DataFrame
    ratings: pl.DataFrame
    trends: pl.DataFrame
    changes: pl.DataFrame
    worsening: pl.DataFrame
    requests: pl.DataFrame
    request_counts: pl.DataFrame
    titles: pl.DataFrame
    worst: pl.DataFrame

    def latest_ratings(self) -> pl.DataFrame:
        """Per ASIN and marketplace: the latest star rating, the first one in the trend, and
        the change between them (lowest latest rating first)."""
        r = self.ratings.sort(["asin", "marketplace", "fetched_on"])
        out = r.group_by(["asin", "marketplace"], maintain_order=True).agg(
            first=pl.col("star_rating").first(),
            star_rating=pl.col("star_rating").last(),
            fetched_on=pl.col("fetched_on").last(),
        )
        out = out.with_columns(change=pl.col("star_rating") - pl.col("first")).drop("first")
        return _with_titles(out, self.titles).sort(
            ["star_rating", "change", "asin"], descending=[False, False, False]
        )

    def counts(self) -> dict[str, int]:
        """Rows per section (the `--json` summary)."""
        return {
            "products_worsening": self.worsening.height,
            "topics_worsening": self.worst.height,
            "topics": self.topics.height,
            "products_rated": self.ratings.select("asin", "marketplace").unique().height,
            "review_requests_eligible": self.requests.filter(
                pl.col("state").is_in(["eligible_now", "eligible_later"])
            ).height,
            "review_requests_checked": self.requests.height,
        }


def objected_orders(source: TableSource) -> set[str]:
    """Orders whose buyer objected (data-subject requests), when the source can tell (the
    gateway's service sources can; in-memory test sources cannot)."""
    ask = getattr(source, "objected_orders", None)
    return set(ask()) if callable(ask) else set()


def build_reviews_report(
    source: TableSource,
    period: Period,
    marketplace: MarketplaceInfo | None = None,
    as_of: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> ReviewsReport:
    """Compute every table of the reviews report. `now` (default: the current time) decides
    whether the period reaches the present, so that today's fetch of topics counts."""
    trends = topic_trends(source, period, marketplace)
    changes = topic_changes(trends)
    titles = product_titles(source, marketplace)
    requests = review_requests(source, period, marketplace, as_of, objected_orders(source))
    return ReviewsReport(
        period=period,
        topics=current_topics(source, period, marketplace, now),
        ratings=rating_trend(source, period, marketplace, now),
        trends=trends,
        changes=changes,
        worsening=worsening_products(changes, titles),
        requests=requests,
        request_counts=request_summary(requests),
        titles=titles,
        worst=worst_topics(changes, titles),
    )
