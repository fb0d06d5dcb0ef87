"""The reviews report reads well: one trend per topic AND marketplace (no UK/US sawtooth),
product titles beside ASINs, the direction and size of each move, a colour-blind-safe palette
with distinct legend entries, and top-N tables with a "+N more" note."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pyarrow as pa

from amzigo_lab.analysis import charts, render
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.reviews import (
    build_reviews_report,
    change_label,
    top_topics,
    worst_topics,
)
from amzigo_lab.analysis.source import TenantSource
from amzigo_lab.datasets import REGISTRY

US, UK = "ATVPDKIKX0DER", "A1F83G8C2ARO7P"
PERIOD = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def _table(name: str, rows: list[dict]) -> pa.Table:
    schema = REGISTRY[name].schema
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema)


def _trend(asin: str, mkt: str, sentiment: str, topic: str, month: str, occ: float) -> dict:
    return dict(
        asin=asin,
        marketplace_id=mkt,
        fetched_on=dt.date(2026, 4, 1),
        sentiment=sentiment,
        topic=topic,
        month=dt.date.fromisoformat(month),
        occurrence_percentage=occ,
    )


class _Source(TenantSource):
    """Latest-state Arrow tables of one tenant (absent datasets are empty)."""

    def __init__(self, tables: dict[str, pa.Table]) -> None:
        super().__init__("acme-outdoor")
        for name in ("review_topics", "review_trends", "catalog_items", "order_items",
                     "solicitation_eligibility"):  # fmt: skip
            data = tables.get(name, _table(name, []))
            self.backend.con.register(name, data)
            self._tables[name] = self.backend.table(name)

    def table(self, name: str) -> Any:
        return self._tables[name]


def _source() -> _Source:
    # the same ASIN and topic in two marketplaces at very different levels: US 30 -> 42
    # (complaint up 12: worsening), UK 5 -> 4 (better). Mixed into one line they zig-zag.
    trends = [
        _trend("B0TENT", US, "negative", "Leaks", "2026-02-01", 30.0),
        _trend("B0TENT", UK, "negative", "Leaks", "2026-02-01", 5.0),
        _trend("B0TENT", US, "negative", "Leaks", "2026-03-01", 42.0),
        _trend("B0TENT", UK, "negative", "Leaks", "2026-03-01", 4.0),
        _trend("B0TENT", US, "positive", "Roomy", "2026-02-01", 40.0),
        _trend("B0TENT", US, "positive", "Roomy", "2026-03-01", 37.0),
        _trend("B0MUG", UK, "positive", "Keeps warm", "2026-02-01", 50.0),
        _trend("B0MUG", UK, "positive", "Keeps warm", "2026-03-01", 38.0),
    ]
    catalog = [
        dict(asin="B0TENT", marketplace_id=US, fetched_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
             title="Old tent title"),
        dict(asin="B0TENT", marketplace_id=US, fetched_at=dt.datetime(2026, 3, 9, tzinfo=dt.UTC),
             title="Summit Tent 2P, Green"),
    ]  # fmt: skip
    items = [  # no catalog entry for the mug: its title comes from the order lines
        dict(amazon_order_id="o1", order_item_id="1", marketplace_id=UK, asin="B0MUG",
             purchase_date=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
             last_update_date=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
             title="Camp Mug 350 ml", quantity_ordered=1),
    ]  # fmt: skip
    topics = [
        dict(asin="B0TENT", marketplace_id=US, fetched_on=dt.date(2026, 4, 1),
             sentiment="NEGATIVE", topic="Leaks", review_count=40, occurrence_percentage=42.0,
             star_rating_impact=-0.3),
        dict(asin="B0MUG", marketplace_id=UK, fetched_on=dt.date(2026, 3, 20),
             sentiment="NEGATIVE", topic="Chips", review_count=3, occurrence_percentage=2.0,
             star_rating_impact=-0.1),
    ]  # fmt: skip
    return _Source(
        {
            "review_trends": _table("review_trends", trends),
            "catalog_items": _table("catalog_items", catalog),
            "order_items": _table("order_items", items),
            "review_topics": _table("review_topics", topics),
        }
    )


def test_changes_are_per_marketplace_with_direction_and_size() -> None:
    rv = build_reviews_report(_source(), PERIOD)
    ch = {(r["asin"], r["marketplace"], r["topic"]): r for r in rv.changes.to_dicts()}
    assert ch[("B0TENT", "US", "Leaks")]["change"] == 12.0
    assert ch[("B0TENT", "UK", "Leaks")]["change"] == -1.0  # not a -38 jump from mixing
    assert ch[("B0TENT", "US", "Leaks")]["change_label"] == "▲ +12.0 pts"
    assert ch[("B0MUG", "UK", "Keeps warm")]["change_label"] == "▼ −12.0 pts"
    assert [(k, r["worsening"]) for k, r in sorted(ch.items())] == [
        (("B0MUG", "UK", "Keeps warm"), True),
        (("B0TENT", "UK", "Leaks"), False),
        (("B0TENT", "US", "Leaks"), True),
        (("B0TENT", "US", "Roomy"), True),
    ]
    assert change_label(None) == "new" and change_label(0.01) == "■ 0.0 pts"


def test_worsening_products_carry_titles_and_moves_worst_first() -> None:
    rv = build_reviews_report(_source(), PERIOD)
    assert rv.worsening.select("asin", "marketplace", "title", "moves").rows() == [
        ("B0TENT", "US", "Summit Tent 2P, Green", "Leaks ▲ +12.0 pts; Roomy ▼ −3.0 pts"),
        ("B0MUG", "UK", "Camp Mug 350 ml", "Keeps warm ▼ −12.0 pts"),
    ]
    worst = worst_topics(rv.changes, rv.titles, n=2)
    assert worst.select("asin", "marketplace", "topic").rows() == [
        ("B0MUG", "UK", "Keeps warm"),
        ("B0TENT", "US", "Leaks"),
    ]  # equal moves (12 points): by ASIN
    # a fetch the morning after the period still describes it; later ones do not
    assert set(rv.topics["asin"]) == {"B0TENT", "B0MUG"}
    complaints = top_topics(rv.topics, "negative", rv.titles)
    assert complaints.select("topic", "title").rows()[0] == ("Leaks", "Summit Tent 2P, Green")
    assert rv.counts()["products_worsening"] == 2 and rv.counts()["topics_worsening"] == 3
    # the review-request tile says how many orders were checked (a run checks a capped number)
    assert rv.counts()["review_requests_checked"] == rv.requests.height
    assert rv.counts()["review_requests_eligible"] <= rv.counts()["review_requests_checked"]


def test_a_period_reaching_the_present_reads_todays_fetch() -> None:
    """The demo's reviews report showed empty complaint and praise tables and "no star rating":
    its period ends at the latest day complete in Los Angeles while the topics were fetched
    today (UTC), after the morning after the period. A period that reaches the present reads
    today's fetch, the current state; a past period still ignores later fetches."""
    fetch = dict(asin="B0LAMP", marketplace_id=US, fetched_on=dt.date(2026, 4, 2),
                 sentiment="POSITIVE", topic="Bright", review_count=9,
                 occurrence_percentage=30.0, star_rating_impact=0.2, star_rating=4.4)  # fmt: skip
    source = _Source({"review_topics": _table("review_topics", [fetch])})
    # 01:00 UTC on 2 April is still 1 April in Los Angeles: March 31 is the latest complete day
    now = dt.datetime(2026, 4, 2, 1, 0, tzinfo=dt.UTC)
    current = build_reviews_report(source, PERIOD, now=now)
    assert top_topics(current.topics, "positive").select("topic", "review_count").rows() == [
        ("Bright", 9)
    ]
    assert current.latest_ratings().select("asin", "star_rating").rows() == [("B0LAMP", 4.4)]
    later = build_reviews_report(source, PERIOD, now=dt.datetime(2026, 4, 10, tzinfo=dt.UTC))
    assert later.topics.height == 0 and later.ratings.height == 0


def test_small_multiples_one_line_per_panel_okabe_ito_two_legend_entries() -> None:
    rv = build_reviews_report(_source(), PERIOD)
    spec = charts.topic_trends(rv.trends, rv.worst).to_dict()
    values = spec["data"]["values"] if "data" in spec else spec["datasets"]
    rows = values if isinstance(values, list) else next(iter(values.values()))
    panels: dict[str, list[str]] = {}
    for r in rows:
        panels.setdefault(r["panel"], []).append(r["month"])
    # 3 worsening topics -> 3 panels; each holds one marketplace's 2 months (never 4)
    assert len(panels) == 3 and all(len(m) == len(set(m)) == 2 for m in panels.values())
    assert any("B0TENT · US" in p and "Summit Tent" in p and "▲ +12.0 pts" in p for p in panels)
    color = spec["spec"]["encoding"]["color"]
    assert color["scale"]["domain"] == ["negative", "positive"]
    assert len(set(color["scale"]["range"])) == 2
    assert set(color["scale"]["range"]) <= set(charts.OKABE_ITO)
    assert "strokeDash" not in spec["spec"]["encoding"]  # one legend, no duplicate dots
    svg = charts.to_svg(charts.topic_trends(rv.trends, rv.worst))
    assert "Summit Tent 2P, Green" in svg


def test_rating_chart_one_colour_per_product_and_marketplace() -> None:
    ratings = pl.DataFrame(
        {
            "asin": ["B0A", "B0A", "B0A", "B0A"],
            "marketplace": ["US", "US", "UK", "UK"],
            "fetched_on": [dt.date(2026, 3, 1), dt.date(2026, 3, 8)] * 2,
            "star_rating": [4.5, 4.2, 3.9, 3.8],
        }
    )
    titles = pl.DataFrame({"asin": ["B0A"], "marketplace": ["US"], "title": ["Lamp"]})
    color = charts.rating_trend(ratings, titles).to_dict()["encoding"]["color"]
    assert color["scale"]["domain"] == ["Lamp (B0A · US)", "B0A · UK"]
    assert color["scale"]["range"] == charts.OKABE_ITO[:2]


def test_tables_cut_at_top_n_with_a_more_note_and_their_full_count() -> None:
    df = pl.DataFrame({"asin": [f"B0{i:02d}" for i in range(30)]})
    out = render.table_html(df, [("asin", "ASIN", "text")], max_rows=12, more="products")
    assert out.count("<tr>") == 13 and "+18 more products" in out and "data-rows='30'" in out
    assert "+" not in render.table_html(df.head(3), [("asin", "ASIN", "text")], max_rows=12)


def test_moves_are_marked_and_everything_else_escaped() -> None:
    df = pl.DataFrame({"moves": ["<b>Leaks</b> ▲ +12.0 pts; Roomy ▼ −3.0 pts"]})
    out = render.table_html(df, [("moves", "Moves", "moves")])
    assert "&lt;b&gt;Leaks&lt;/b&gt; <span class='amz-worse'>▲ +12.0 pts</span>" in out
    assert "<span class='amz-worse'>▼ −3.0 pts</span>" in out
