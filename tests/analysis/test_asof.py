""" "As of", marketplace-local days and stock advice (issue 13 items 1, 2, 4).

Orders near midnight land on the marketplace's local day; the default period ends at the latest
day complete in every marketplace; inventory uses the latest snapshot on or before the period's
end, or today's when the period reaches the present, and says why when there is none; stock
advice weighs cover against each SKU's lead time and safety stock; the dashboard's stock
section is the inventory report's own result.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import polars as pl
import pytest

from amzigo_lab.analysis.inventory import (
    STATUS_RULES,
    InventoryParams,
    build_inventory_report,
    params_from_config,
    params_from_parameters,
    plan,
)
from amzigo_lab.analysis.money import BY_CODE, marketplace
from amzigo_lab.analysis.period import (
    Period,
    day_rule,
    latest_complete_day,
    local_today,
    parse_now,
)
from amzigo_lab.analysis.sales import SalesScope, finance_lines, order_lines, sales_totals
from amzigo_lab.analysis.source import REPORT_DATASETS, ReportError
from amzigo_lab.serve.dashboard import ArrowSource, SellerDashboard, View
from tests.analysis.data import UK, US, _fe, _inv, _item, _order, table

DE = "A1PA6795UKMFR9"
MARKET = {US: ("USD", "Amazon.com"), UK: ("GBP", "Amazon.co.uk"), DE: ("EUR", "Amazon.de")}


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def source(**rows: list[dict]) -> ArrowSource:
    """Every report dataset (empty unless given) on a private DuckDB."""
    return ArrowSource({name: table(name, rows.get(name, [])) for name in REPORT_DATASETS})


def order_at(oid: str, when: str, mp: str, sku: str = "SKU-A", qty: int = 1) -> dict[str, list]:
    cur, channel = MARKET[mp]
    o = _order(oid, "2026-01-01", mp=mp, cur=cur)
    i = _item(oid, 1, "2026-01-01", sku, "B0" + sku[4:], qty, "10.00", mp=mp, cur=cur)
    o.update(purchase_date=utc(when), last_update_date=utc(when), sales_channel=channel)
    i.update(purchase_date=utc(when), last_update_date=utc(when))
    return {"orders": [o], "order_items": [i]}


def merged(*parts: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {}
    for part in parts:
        for name, rows in part.items():
            out.setdefault(name, []).extend(rows)
    return out


# (order id, UTC purchase time, marketplace, its local day)
NEAR_MIDNIGHT = [
    ("US-1", "2026-03-02T07:30", US, "2026-03-01"),  # 23:30 PST the day before
    ("US-2", "2026-03-02T08:30", US, "2026-03-02"),  # 00:30 PST
    ("US-3", "2026-07-02T06:30", US, "2026-07-01"),  # 23:30 PDT (summer: UTC-7)
    ("US-4", "2026-07-02T07:30", US, "2026-07-02"),  # 00:30 PDT
    ("UK-1", "2026-03-01T23:30", UK, "2026-03-01"),  # 23:30 GMT
    ("UK-2", "2026-07-01T23:30", UK, "2026-07-02"),  # 00:30 BST
    ("DE-1", "2026-03-01T22:30", DE, "2026-03-01"),  # 23:30 CET
    ("DE-2", "2026-03-01T23:30", DE, "2026-03-02"),  # 00:30 CET
    ("DE-3", "2026-07-01T21:30", DE, "2026-07-01"),  # 23:30 CEST
    ("DE-4", "2026-07-01T22:30", DE, "2026-07-02"),  # 00:30 CEST
]


def test_orders_near_midnight_fall_on_their_marketplaces_local_day() -> None:
    src = source(**merged(*(order_at(o, t, mp) for o, t, mp, _ in NEAR_MIDNIGHT)))
    lines = order_lines(src, SalesScope(Period.parse("2026-02-01", "2026-08-01")))
    got = dict(
        zip(
            lines.amazon_order_id.to_pyarrow().to_pylist(),
            lines.day.to_pyarrow().to_pylist(),
            strict=True,
        )
    )
    assert {o: d.isoformat() for o, d in got.items()} == {o: d for o, _, _, d in NEAR_MIDNIGHT}
    # a one-day period holds exactly the orders of that local day
    one = sales_totals(src, SalesScope(Period.parse("2026-03-01", "2026-03-01")))
    assert {c: t.orders for c, t in one.items()} == {"USD": 1, "GBP": 1, "EUR": 1}
    us_day = sales_totals(src, SalesScope(Period.parse("2026-03-02", "2026-03-02"), BY_CODE["US"]))
    assert us_day["USD"].orders == 1  # US-2 only: US-1 at 07:30 UTC is still 1 March in LA


def test_refunds_and_fees_are_posted_on_the_local_day() -> None:
    fe = [
        _fe("e1", "Refund", "2026-03-02", "US-1", "SKU-A", "charge", "Principal", "-10.00"),
        _fe(
            "e2",
            "Shipment",
            "2026-03-02",
            "DE-1",
            "SKU-A",
            "fee",
            "Commission",
            "-1.00",
            "EUR",
            "Amazon.de",
        ),
    ]
    fe[0]["posted_date"] = utc("2026-03-02T07:30")  # 1 March in Los Angeles
    fe[1]["posted_date"] = utc("2026-03-01T23:30")  # 2 March in Berlin
    lines = finance_lines(
        source(financial_events=fe), SalesScope(Period.parse("2026-02-01", "2026-04-01"))
    )
    days = dict(
        zip(
            lines.amazon_order_id.to_pyarrow().to_pylist(),
            lines.day.to_pyarrow().to_pylist(),
            strict=True,
        )
    )
    assert days == {"US-1": dt.date(2026, 3, 1), "DE-1": dt.date(2026, 3, 2)}


def test_as_of_is_the_latest_day_complete_in_every_marketplace() -> None:
    early = utc("2026-03-02T07:30")  # still 1 March in Los Angeles, 2 March in London/Berlin
    assert local_today(BY_CODE["US"], early) == dt.date(2026, 3, 1)
    assert local_today(BY_CODE["DE"], early) == dt.date(2026, 3, 2)
    assert latest_complete_day(early) == dt.date(2026, 2, 28)
    assert latest_complete_day(early, [BY_CODE["UK"], BY_CODE["DE"]]) == dt.date(2026, 3, 1)
    assert Period.last_days(7, now=early) == Period.parse("2026-02-22", "2026-02-28")
    assert Period.last_days(7, now=early, marketplace=BY_CODE["UK"]).end == dt.date(2026, 3, 1)
    assert Period.last_days(7, now=utc("2026-03-02T08:30")).end == dt.date(2026, 3, 1)
    assert Period.last_days(7, dt.date(2026, 3, 2)).end == dt.date(2026, 3, 1)  # explicit today
    assert parse_now("2026-03-02T07:30") == early and parse_now("").tzinfo is not None
    assert "US America/Los_Angeles" in day_rule() and "DE Europe/Berlin" in day_rule()


# the sandbox's clock: its world is a snapshot taken at today 00:00 UTC; the inventory stream
# stamps snapshots with the ingest day
NOW = utc("2026-03-10T00:00")
STOCK = [
    _inv("2026-03-10", US, "SKU-A", 40),  # 8 days of cover at 5/day against 30 days of lead
    _inv("2026-03-10", US, "SKU-B", 5, (0, 20, 0)),
]


def sold(days: int, per_day: int, sku: str, end: str = "2026-03-08") -> dict[str, list]:
    last = dt.date.fromisoformat(end)
    parts = [
        order_at(f"{sku}-{d}", f"{last - dt.timedelta(days=d)}T20:00", US, sku, per_day)
        for d in range(days)
    ]
    return merged(*parts)


def stock_world() -> ArrowSource:
    return source(inventory_snapshots=STOCK, **merged(sold(30, 5, "SKU-A"), sold(30, 1, "SKU-B")))


def test_todays_snapshot_is_the_current_position_of_a_period_as_of_now() -> None:
    src = stock_world()
    period = Period.last_days(30, now=NOW)
    assert period.end == dt.date(2026, 3, 8)  # 9 March is not over in Los Angeles yet
    report = build_inventory_report(src, period.end, InventoryParams(), None, NOW)
    assert report.table.height == 2 and report.current and not report.reason
    assert report.stock_date == dt.date(2026, 3, 10) and report.cutoff is None
    assert "snapshot of 2026-03-10, the current position" in report.stock_label()


def test_an_empty_stock_section_says_why() -> None:
    src = stock_world()
    past = build_inventory_report(src, dt.date(2026, 3, 1), InventoryParams(), None, NOW)
    assert past.table.height == 0 and not past.current and past.stock_date is None
    assert past.reason == (
        "No inventory snapshot on or before 2026-03-01: the first one is dated 2026-03-10. "
        "Choose a period ending on or after that day."
    )
    none = build_inventory_report(source(), dt.date(2026, 3, 8), None, None, NOW)
    assert none.reason.startswith("No inventory snapshot yet:")
    uk = build_inventory_report(src, dt.date(2026, 3, 8), None, marketplace("UK"), NOW)
    assert uk.reason.startswith("No inventory snapshot yet for UK:")


def test_cover_below_lead_time_is_critical_not_healthy() -> None:
    """The demo's finding: 8-17 days of cover against a 30-day lead time were 'healthy'."""
    p = InventoryParams(velocity_days=30, default_lead_time=30, safety_days=7)
    day = dt.date(2026, 3, 8)

    def status(on_hand: int, inbound: int = 0, units: int = 150, sku: str = "S") -> dict[str, Any]:
        row = {"seller_sku": sku, "units": units, "on_hand": on_hand, "inbound": inbound}
        return plan(row, day, p)

    for cover in (8, 12, 17, 29):  # at 5 a day
        assert status(cover * 5)["status"] == "critical", cover
    assert status(40, 110)["status"] == "reorder"  # 30 days in position: lands, but no safety
    r = status(40, 110)
    assert (r["reorder_point"], r["reorder_quantity"]) == (pytest.approx(185.0), 185)
    assert status(40, 150)["status"] == "healthy"  # 38 days >= 30 + 7
    assert status(500)["status"] == "overstock"  # 100 days > 90
    assert status(0, 500)["status"] == "out"
    assert status(5, units=0)["status"] == "overstock"  # stock that does not sell
    # per-SKU lead time and safety stock change the verdict
    fast = InventoryParams(lead_times={"S": 5}, safety_stock={"S": 10})
    r = plan({"seller_sku": "S", "units": 150, "on_hand": 40, "inbound": 0}, day, fast)
    assert (r["status"], r["reorder_point"], r["reorder_quantity"]) == ("healthy", 35.0, 0)


def test_reorder_by_today_only_comes_with_a_quantity() -> None:
    """The hand-check's finding: ACME-HAMM-009-BLA was "healthy, reorder qty 0, reorder by
    <today>": the position sat less than a day's sales above the reorder point. Above the
    reorder point the date is the first day the position falls below it, so in the future."""
    p = InventoryParams(velocity_days=30, default_lead_time=30, safety_days=7)
    day = dt.date(2026, 3, 8)

    def row(on_hand: int) -> dict[str, Any]:
        r = {"seller_sku": "S", "units": 150, "on_hand": on_hand, "inbound": 0}
        return plan(r, day, p)

    just_above = row(187)  # reorder point 185, 2 units (0.4 days) above it
    assert (just_above["status"], just_above["reorder_quantity"]) == ("healthy", 0)
    assert just_above["reorder_date"] == day + dt.timedelta(days=1)
    at_point = row(185)  # not below it yet: still nothing to order today
    assert (at_point["reorder_quantity"], at_point["reorder_date"]) == (0, dt.date(2026, 3, 9))
    later = row(200)  # 15 units above at 5 a day: at the point on day 3, below it on day 4
    assert (later["reorder_quantity"], later["reorder_date"]) == (0, dt.date(2026, 3, 12))
    below = row(184)
    assert below["reorder_quantity"] > 0 and below["reorder_date"] == day
    for on_hand in range(150, 260):
        r = row(on_hand)
        assert (r["reorder_date"] == day) == (r["reorder_quantity"] > 0), on_hand


def test_the_legend_defines_days_of_cover_as_on_hand_only() -> None:
    """The demo showed "healthy, days of cover 8.1, lead time 30" (36 units inbound): the status
    counts inbound, the column does not, and the legend did not say so."""
    p = InventoryParams(velocity_days=30, default_lead_time=30, safety_days=7)
    r = plan({"seller_sku": "S", "units": 30, "on_hand": 8, "inbound": 40}, dt.date(2026, 3, 8), p)
    assert r["status"] == "healthy" and r["days_of_cover"] == pytest.approx(8.0)
    rules = STATUS_RULES.format(overstock=p.overstock_days)
    assert "Days of cover = on hand / units per day" in rules
    assert "inbound is not counted" in rules


def test_lead_time_and_safety_stock_come_from_the_config() -> None:
    section = {
        "lead_time_days": 45,
        "safety_stock_days": 10,
        "order_days": 60,
        "skus": {
            "acme-outdoor": {"SKU-A": {"lead_time_days": 14, "safety_stock_units": 20}},
            "bluebird-home": {"SKU-A": {"lead_time_days": 90}},
        },
    }
    p = params_from_config(section, "acme-outdoor")
    assert (p.default_lead_time, p.safety_days, p.order_days) == (45, 10.0, 60)
    assert (dict(p.lead_times), dict(p.safety_stock)) == ({"SKU-A": 14}, {"SKU-A": 20})
    assert params_from_parameters(p.as_parameters()) == p  # the notebook rebuilds the same
    assert params_from_config({}, "acme-outdoor") == InventoryParams()
    with pytest.raises(ReportError, match="lead_time"):
        params_from_config({"lead_time": 3}, "acme-outdoor")
    with pytest.raises(ReportError, match="0 or more"):
        params_from_config({"skus": {"t": {"S": {"lead_time_days": -1}}}}, "t")


def _shown(section_html: str) -> list[tuple[str, str, str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", section_html)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    return [(c[0], c[1], c[2]) for c in cells if c]


def test_dashboard_stock_section_is_the_inventory_report() -> None:
    src = stock_world()
    params = InventoryParams(lead_times={"SKU-B": 20})  # 25 in position at 1 a day
    board = SellerDashboard("acme-outdoor", src, dt.date(2026, 3, 9), params, NOW)
    view = board.default_view()
    assert view.end == dt.date(2026, 3, 8)  # the reports' "as of"
    report = build_inventory_report(src, view.end, params, None, NOW)
    html = board.sections(view).inventory
    alerts = report.table.filter(pl.col("status").is_in(["out", "critical", "reorder"]))
    assert _shown(html) == [
        (r["status"], r["marketplace"], r["seller_sku"]) for r in alerts.to_dicts()
    ]
    assert _shown(html) == [("critical", "US", "SKU-A"), ("reorder", "US", "SKU-B")]
    assert "snapshot of 2026-03-10, the current position" in html and "2 SKUs tracked" in html
    # and an empty section says why
    past = board.sections(View(dt.date(2026, 2, 1), dt.date(2026, 3, 1))).inventory
    assert "No inventory snapshot on or before 2026-03-01" in past


def test_report_and_dashboard_read_the_same_inventory_settings(tmp_path) -> None:
    from amzigo_lab.analysis.generate import inventory_parameters
    from amzigo_lab.config import load_settings
    from amzigo_lab.serve.hooks import inventory_settings

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        "[inventory]\nlead_time_days = 21\nsafety_stock_days = 5\n"
        '[inventory.skus."acme-outdoor"."SKU-A"]\nlead_time_days = 7\n'
    )
    report = inventory_parameters(load_settings(home, env={}), "acme-outdoor")
    assert (report["default_lead_time"], report["safety_days"]) == (21, 5.0)
    assert report["lead_times"] == {"SKU-A": 7}
    assert inventory_settings(home, "acme-outdoor") == report  # what the dashboard gets
    (home / "config.toml").write_text("[inventory]\nlead_time_days = -3\n")
    with pytest.raises(ReportError, match="lead_time_days"):
        inventory_parameters(load_settings(home, env={}), "acme-outdoor")
    assert inventory_settings(home, "acme-outdoor") == InventoryParams().as_parameters()
