"""Report builders on hand-made fixtures: exact numbers, latest state, tenant isolation, and a
cross-check against an independent polars computation over the same rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import polars as pl
import pytest

from amzigo_lab.analysis.inventory import InventoryParams, build_inventory_report
from amzigo_lab.analysis.money import marketplace
from amzigo_lab.analysis.period import Period, comparison_period
from amzigo_lab.analysis.reviews import build_reviews_report
from amzigo_lab.analysis.sales import (
    UNITS_NOTE,
    SalesScope,
    build_sales_report,
    load_costs,
    sales_totals,
    units_note,
    with_order_units,
)
from amzigo_lab.analysis.source import ReportError
from amzigo_lab.gateway.sources import LakeTableSource
from tests.analysis import data
from tests.analysis.data import COSTS, END, OTHER_MARKERS, START

PERIOD = Period(START, END)


@pytest.fixture(scope="module")
def sales(acme):
    return build_sales_report(acme, SalesScope(PERIOD), PERIOD.previous(), COSTS)


def test_kpis_per_currency_are_exact(sales) -> None:
    usd, gbp = sales.totals["USD"], sales.totals["GBP"]
    assert (usd.sales, usd.promotions, usd.orders, usd.units) == (D("145.50"), D("2.50"), 3, 7)
    assert usd.average_order_value == D("48.50")
    assert (usd.refunds, usd.refunded_orders, usd.fees) == (D("20.00"), 1, D("14.43"))
    assert usd.refund_rate == D(1) / D(3)
    assert usd.net_proceeds == D("108.57")
    assert (usd.cogs, usd.profit) == (D("58.00"), D("50.57"))
    assert usd.margin == D("50.57") / D("145.50")
    assert (gbp.sales, gbp.orders, gbp.units, gbp.fees, gbp.net_proceeds) == (
        D("48.00"),
        2,
        3,
        D("2.70"),
        D("45.30"),
    )
    assert (gbp.cogs, gbp.uncosted_units) == (D("7.00"), 2)  # SKU-GREEN has no cost
    assert any(n.startswith("GBP: 2 units have no cost in the cost file") for n in sales.notes)


def test_comparison_tiles(sales, acme) -> None:
    prev = sales.previous["USD"]
    assert (prev.sales, prev.orders, prev.units, prev.refunds, prev.fees) == (
        D("65.50"),
        2,
        3,
        D("20.00"),
        D("0.00"),
    )
    tiles = {(t.currency, t.metric): t for t in sales.tiles}
    assert tiles[("USD", "sales")].change == pytest.approx(80 / 65.5)
    assert tiles[("USD", "orders")].change == pytest.approx(0.5)
    assert tiles[("GBP", "sales")].previous == D("0.00") and tiles[("GBP", "sales")].change is None
    assert ("USD", "margin") in tiles
    no_costs = build_sales_report(acme, SalesScope(PERIOD), None, None)
    assert not any(t.metric in ("profit", "margin") for t in no_costs.tiles)


def test_sku_table_and_ranks(sales) -> None:
    rows = {(r["currency"], r["seller_sku"]): r for r in sales.skus.to_dicts()}
    red = rows[("USD", "SKU-RED")]
    assert (red["rank"], red["sales"], red["units"], red["refunds"], red["fees"], red["net"]) == (
        1,
        D("120.00"),
        6,
        D("20.00"),
        D("10.60"),
        D("89.40"),
    )
    assert (red["cogs"], red["profit"]) == (D("48.00"), D("41.40"))
    blue = rows[("USD", "SKU-BLUE")]
    assert (blue["rank"], blue["sales"], blue["fees"], blue["net"]) == (
        2,
        D("25.50"),
        D("3.83"),
        D("19.17"),
    )
    green = rows[("GBP", "SKU-GREEN")]
    assert green["rank"] == 1 and green["cogs"] is None and green["margin"] is None
    # per-SKU figures add up to the totals of each currency
    for cur, t in sales.totals.items():
        sub = sales.skus.filter(pl.col("currency") == cur)
        assert sum(sub["sales"].to_list()) == t.sales
        assert sum(sub["fees"].to_list()) == t.fees


def test_trends_marketplaces_traffic(sales) -> None:
    usd = sales.daily.filter(pl.col("currency") == "USD")
    assert usd.height == 7  # days without sales are present
    assert dict(zip(usd["day"].to_list(), usd["sales"].to_list(), strict=True))[
        dt.date(2026, 3, 3)
    ] == D("60.00")
    weekly = {(r["currency"], r["day"]): r for r in sales.weekly.to_dicts()}
    assert weekly[("USD", dt.date(2026, 2, 23))]["sales"] == D("65.50")  # Sunday 1 March
    assert weekly[("USD", dt.date(2026, 3, 2))]["sales"] == D("80.00")
    mk = {r["marketplace"]: r for r in sales.marketplaces.to_dicts()}
    assert (mk["US"]["currency"], mk["US"]["sales"], mk["US"]["net"]) == (
        "USD",
        D("145.50"),
        D("108.57"),
    )
    assert (mk["UK"]["currency"], mk["UK"]["sales"], mk["UK"]["fees"]) == (
        "GBP",
        D("48.00"),
        D("2.70"),
    )
    tr = {r["marketplace"]: r for r in sales.traffic.to_dicts()}
    assert (tr["US"]["sessions"], tr["US"]["page_views"], tr["US"]["units"]) == (400, 400, 12)
    assert tr["US"]["unit_session_pct"] == pytest.approx(0.03)
    assert tr["US"]["buy_box_pct"] == pytest.approx(0.95)
    assert tr["UK"]["unit_session_pct"] == pytest.approx(0.04)


def test_marketplace_filter_keeps_one_currency(acme) -> None:
    totals = sales_totals(acme, SalesScope(PERIOD, marketplace("UK")))
    assert list(totals) == ["GBP"] and totals["GBP"].sales == D("48.00")


def test_independent_polars_cross_check(sales) -> None:
    """Recompute sales/fees/refunds with polars from the raw fixture rows (latest state by hand)."""

    def latest(rows, key, version):
        df = pl.DataFrame([{k: v for k, v in r.items()} for r in rows], infer_schema_length=None)
        return df.sort(version, descending=True).unique(subset=key, keep="first")

    orders = latest(data.ORDERS_V1 + data.ORDERS_V2, ["amazon_order_id"], "last_update_date")
    items = latest(
        data.ITEMS_V1 + data.ITEMS_V2, ["amazon_order_id", "order_item_id"], "last_update_date"
    )
    canceled = orders.filter(pl.col("order_status") == "Canceled")["amazon_order_id"]
    lines = items.filter(
        pl.col("purchase_date").dt.date().is_between(START, END),
        ~pl.col("amazon_order_id").is_in(canceled.implode()),
    )
    per_cur = lines.group_by("currency").agg(
        pl.col("item_price").sum().alias("sales"),
        pl.col("quantity_ordered").sum().alias("units"),
        pl.col("amazon_order_id").n_unique().alias("orders"),
    )
    fe = pl.DataFrame(data.FINANCE).filter(pl.col("posted_date").dt.date().is_between(START, END))
    fees = (
        fe.filter(pl.col("charge_kind") == "fee")
        .group_by("currency")
        .agg((-pl.col("amount").sum()).alias("fees"))
    )
    for r in per_cur.to_dicts():
        t = sales.totals[r["currency"]]
        assert (t.sales, t.units, t.orders) == (r["sales"], r["units"], r["orders"])
    for r in fees.to_dicts():
        assert sales.totals[r["currency"]].fees == r["fees"]


def test_reviews(acme) -> None:
    rv = build_reviews_report(acme, PERIOD)
    assert rv.topics.height == 4 and set(rv.topics["asin"]) == {"B0RED", "B0BLUE"}
    assert rv.ratings.select("asin", "star_rating").rows() == [("B0RED", 4.4), ("B0RED", 4.1)]
    changes = {(r["asin"], r["topic"]): r for r in rv.changes.to_dicts()}
    assert changes[("B0RED", "Broke quickly")]["occurrence_percentage"] == 9.5  # latest version
    assert changes[("B0RED", "Broke quickly")]["change"] == pytest.approx(3.5)
    assert [r["worsening"] for r in rv.changes.to_dicts()] == [False, True, True, False]
    assert rv.worsening.select("asin", "worsening_topics").rows() == [
        ("B0BLUE", "Soft"),
        ("B0RED", "Broke quickly"),
    ]
    states = dict(zip(rv.requests["amazon_order_id"], rv.requests["state"], strict=True))
    assert states == {
        "S1": "already_requested",
        "S2": "eligible_now",
        "S3": "eligible_later",
        "S4": "not_eligible",
        "S5": "already_requested",
    }
    assert rv.request_counts.rows() == [
        ("eligible_now", 1),
        ("eligible_later", 1),
        ("not_eligible", 1),
        ("already_requested", 2),
        ("objected", 0),
    ]
    opens = dict(zip(rv.requests["amazon_order_id"], rv.requests["window_opens"], strict=True))
    assert opens["S3"] == dt.date(2026, 3, 10)


def test_inventory(acme) -> None:
    params = InventoryParams(
        velocity_days=7, lead_times={"SKU-RED": 14, "SKU-GREEN": 2}, safety_stock={"SKU-GREEN": 0}
    )
    inv = build_inventory_report(acme, END, params)
    got = [(r["marketplace"], r["seller_sku"], r["status"]) for r in inv.table.to_dicts()]
    assert got == [
        ("US", "SKU-BLUE", "out"),
        ("US", "SKU-RED", "critical"),  # 10 in position at 6/7 a day: 11.7 days < 14 lead
        ("UK", "SKU-RED", "reorder"),  # 14 days >= 14 lead, below lead + 7 days safety
        ("UK", "SKU-GREEN", "healthy"),  # 3.5 days >= 2 lead, no safety stock
        ("US", "SKU-OLD", "overstock"),
    ]
    rows = {(r["marketplace"], r["seller_sku"]): r for r in inv.table.to_dicts()}
    red = rows[("US", "SKU-RED")]
    assert (red["on_hand"], red["inbound"], red["reserved"], red["units_sold"]) == (2, 8, 1, 6)
    assert red["days_of_cover"] == pytest.approx(7 / 3)
    assert red["reorder_point"] == pytest.approx(18.0) and red["reorder_date"] == END
    assert red["reorder_quantity"] == 34  # 18 + 30 days x 6/7 - 10, rounded up
    blue = rows[("US", "SKU-BLUE")]
    assert blue["reorder_point"] == pytest.approx(37 / 7) and blue["reorder_quantity"] == 0
    # at the reorder point after 103 days, below it on day 104
    assert blue["reorder_date"] == dt.date(2026, 6, 19)
    uk_red = rows[("UK", "SKU-RED")]
    assert uk_red["reorder_point"] == pytest.approx(3.0) and uk_red["reorder_quantity"] == 6
    assert rows[("UK", "SKU-GREEN")]["days_of_cover"] == pytest.approx(3.5)
    assert rows[("US", "SKU-OLD")]["reorder_date"] is None
    assert inv.counts.rows() == [
        ("out", 1),
        ("critical", 1),
        ("reorder", 1),
        ("healthy", 1),
        ("overstock", 1),
    ]
    # a period in the past takes the snapshot of its end (not the later one of 8 March)
    assert inv.stock_date == END and inv.cutoff == END and not inv.current and not inv.reason


def test_no_other_tenant_rows_reach_any_builder(acme) -> None:
    sales = build_sales_report(acme, SalesScope(PERIOD), None, None)
    rv = build_reviews_report(acme, PERIOD)
    inv = build_inventory_report(acme, END)
    text = " ".join(
        str(df.rows())
        for df in (
            sales.skus,
            sales.daily,
            sales.traffic,
            rv.topics,
            rv.requests,
            rv.trends,
            inv.table,
        )
    )
    assert not [m for m in OTHER_MARKERS if m in text]
    assert sales.traffic.filter(pl.col("marketplace") == "US")["sessions"].item() == 400


def test_source_fails_closed(report_lake) -> None:
    with pytest.raises(ReportError):
        LakeTableSource(report_lake, "")
    with pytest.raises(ReportError, match="not available"):
        LakeTableSource(report_lake, data.ACME).table("order_buyers")


def test_periods_and_costs(tmp_path) -> None:
    p = Period.parse("2026-03-01", "2026-03-31")
    assert p.previous() == Period(dt.date(2026, 1, 29), dt.date(2026, 2, 28))
    assert comparison_period(
        Period.parse("2024-02-29", "2024-02-29"), "previous_year"
    ).start == dt.date(2023, 2, 28)
    assert comparison_period(p, "2026-01-01..2026-01-31") == Period.parse(
        "2026-01-01", "2026-01-31"
    )
    with pytest.raises(ValueError):
        comparison_period(p, "last_week")
    f = tmp_path / "costs.csv"
    f.write_text("sku,currency,unit_cost\nSKU-RED,usd,8.00\n")
    assert load_costs(f) == {("SKU-RED", "USD"): D("8.00")}
    f.write_text("sku,unit_cost\nSKU-RED,8\n")
    with pytest.raises(ReportError, match="header"):
        load_costs(f)


def test_missing_datasets_are_empty_not_errors(tmp_path) -> None:
    from amzigo_lab.config import load_settings
    from amzigo_lab.events import MemorySink
    from amzigo_lab.home import init_home

    lake = init_home(load_settings(tmp_path / "h", env={}), audit=MemorySink())
    lake.write("order_items", "solo", END, data.table("order_items", data.ITEMS_V2), "b1")
    totals = sales_totals(LakeTableSource(lake, "solo"), SalesScope(PERIOD))
    assert totals["USD"].sales == D("171.00") and totals["USD"].fees == D(
        "0.00"
    )  # no orders: none canceled
    lake.close()


def test_orders_of_objecting_buyers_are_never_offered_for_review_requests(acme) -> None:
    from amzigo_lab.analysis.reviews import review_requests

    requests = review_requests(acme, PERIOD, objected={"S2", "S3", "S5"})
    states = dict(zip(requests["amazon_order_id"], requests["state"], strict=True))
    # an already-sent request stays recorded; eligible orders of objecting buyers are excluded
    assert states == {
        "S1": "already_requested",
        "S2": "objected",
        "S3": "objected",
        "S4": "not_eligible",
        "S5": "already_requested",
    }


def test_traffic_units_sit_beside_the_order_units_and_a_difference_is_explained(sales) -> None:
    """Amazon's Sales & Traffic units and the units counted from the orders are shown side by
    side; where they differ the note names the marketplace and both figures."""
    tr = {r["marketplace"]: r for r in sales.traffic.to_dicts()}
    mk = {r["marketplace"]: r for r in sales.marketplaces.to_dicts()}
    assert (tr["US"]["units"], tr["US"]["order_units"]) == (12, mk["US"]["units"]) == (12, 7)
    assert tr["UK"]["order_units"] == mk["UK"]["units"]
    note = units_note(sales.traffic)
    assert note.startswith(UNITS_NOTE) and "US 12 (Sales & Traffic) vs 7 (orders)" in note
    same = sales.traffic.with_columns(order_units=pl.col("units"))
    assert units_note(same) == UNITS_NOTE  # nothing to name when they agree
    empty = with_order_units(sales.traffic.clear(), sales.marketplaces)
    assert empty.height == 0 and units_note(empty) == ""
