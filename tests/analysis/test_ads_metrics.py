"""Advertising metrics on a small fixture, to the cent (issue 14 item 4, ads half):
ad spend, ad-attributed sales, ACoS, TACoS, ROAS per day / marketplace / SKU and per currency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from amzigo_lab.analysis.ads import NO_DATA, ads_table, build_ads_report
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.sales import SalesScope
from amzigo_lab.analysis.source import TenantSource
from amzigo_lab.datasets import REGISTRY

US, UK = "ATVPDKIKX0DER", "A1F83G8C2ARO7P"
D2, D3 = dt.date(2026, 3, 2), dt.date(2026, 3, 3)
SCOPE = SalesScope(Period(dt.date(2026, 3, 1), dt.date(2026, 3, 31)))
NOON_UTC = dt.time(20, 0, tzinfo=dt.UTC)  # 12:00 in Los Angeles, 20:00 in London: same day


def _table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = REGISTRY[name].schema
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema)


def _order(
    oid: str, mkt: str, day: dt.date, sku: str, price: str, cur: str, status: str = "Shipped"
):
    when = dt.datetime.combine(day, NOON_UTC)
    order = dict(amazon_order_id=oid, marketplace_id=mkt, purchase_date=when,
                 last_update_date=when, order_status=status, currency=cur)  # fmt: skip
    item = dict(amazon_order_id=oid, order_item_id=oid + "-1", marketplace_id=mkt,
                purchase_date=when, last_update_date=when, asin="B0" + sku, seller_sku=sku,
                quantity_ordered=1, item_price=Decimal(price), currency=cur)  # fmt: skip
    return order, item


def _ad(
    day: dt.date, mkt: str, sku: str, cost: str, sales: str, cur: str, clicks: int
) -> dict[str, Any]:
    return dict(date=day, marketplace_id=mkt, profile_id="P" + mkt, ad_id=f"{sku}-{mkt}",
                retrieved_at=dt.datetime(2026, 3, 20, tzinfo=dt.UTC), campaign_id="C1",
                asin="B0" + sku, seller_sku=sku, impressions=clicks * 100, clicks=clicks,
                cost=Decimal(cost), currency=cur, purchases_7d=1, sales_7d=Decimal(sales),
                units_sold_7d=1)  # fmt: skip


class _Source(TenantSource):
    def __init__(self, tables: dict[str, pa.Table]) -> None:
        super().__init__("acme-outdoor")
        for name in ("orders", "order_items", "ads_product_daily"):
            self.backend.con.register(name, tables.get(name, _table(name, [])))
            self._tables[name] = self.backend.table(name)

    def table(self, name: str) -> Any:
        return self._tables[name]


def _source(with_ads: bool = True) -> _Source:
    pairs = [
        _order("O1", US, D2, "SKU-A", "100.00", "USD"),
        _order("O2", US, D2, "SKU-A", "50.00", "USD"),
        _order("O3", US, D2, "SKU-B", "200.00", "USD"),
        _order("O4", US, D2, "SKU-A", "80.00", "USD", "Canceled"),  # not a sale
        _order("O5", US, D3, "SKU-A", "60.00", "USD"),
        _order("O6", UK, D2, "SKU-A", "40.00", "GBP"),
        _order("O7", US, D3, "SKU-C", "90.00", "USD"),  # a SKU without ads: TACoS only
    ]
    ads = [
        _ad(D2, US, "SKU-A", "15.00", "50.00", "USD", 20),
        _ad(D2, US, "SKU-B", "10.00", "0.00", "USD", 8),
        _ad(D3, US, "SKU-A", "6.00", "60.00", "USD", 5),
        _ad(D2, UK, "SKU-A", "4.00", "20.00", "GBP", 4),
    ]
    return _Source(
        {
            "orders": _table("orders", [o for o, _ in pairs]),
            "order_items": _table("order_items", [i for _, i in pairs]),
            "ads_product_daily": _table("ads_product_daily", ads if with_ads else []),
        }
    )


def test_totals_per_currency_are_exact() -> None:
    report = build_ads_report(_source(), SCOPE)
    usd, gbp = report.totals["USD"], report.totals["GBP"]
    assert (usd.ad_spend, usd.ad_sales, usd.total_sales) == (
        Decimal("31.00"), Decimal("110.00"), Decimal("500.00"),
    )  # fmt: skip
    assert usd.acos == Decimal(31) / Decimal(110)
    assert usd.tacos == Decimal(31) / Decimal(500)  # total sales include SKU-C, without ads
    assert usd.roas == Decimal(110) / Decimal(31)
    assert (usd.clicks, usd.impressions, usd.ad_orders) == (33, 3300, 3)
    assert (gbp.ad_spend, gbp.ad_sales, gbp.total_sales) == (
        Decimal("4.00"), Decimal("20.00"), Decimal("40.00"),
    )  # fmt: skip
    assert (gbp.acos, gbp.tacos, gbp.roas) == (Decimal("0.2"), Decimal("0.1"), Decimal(5))


def test_per_day_marketplace_and_sku() -> None:
    report = build_ads_report(_source(), SCOPE)
    daily = {(r["currency"], r["day"]): r for r in report.daily.to_dicts()}
    d2 = daily[("USD", D2)]
    assert (d2["ad_spend"], d2["ad_sales"], d2["total_sales"]) == (
        Decimal("25.00"), Decimal("50.00"), Decimal("350.00"),
    )  # fmt: skip
    assert (d2["acos"], d2["tacos"], d2["roas"]) == (0.5, 25 / 350, 2.0)
    d3 = daily[("USD", D3)]
    assert d3["total_sales"] == Decimal("150.00")  # SKU-A 60 + SKU-C 90
    assert (d3["acos"], d3["tacos"], d3["roas"]) == (0.1, 6 / 150, 10.0)
    markets = {r["marketplace_id"]: r for r in report.marketplaces.to_dicts()}
    assert markets[US]["ad_spend"] == Decimal("31.00") and markets[UK]["tacos"] == 0.1
    skus = {(r["marketplace_id"], r["seller_sku"]): r for r in report.skus.to_dicts()}
    a = skus[(US, "SKU-A")]
    assert (a["ad_spend"], a["ad_sales"], a["total_sales"]) == (
        Decimal("21.00"), Decimal("110.00"), Decimal("210.00"),
    )  # fmt: skip
    assert (a["acos"], a["tacos"], a["roas"]) == (21 / 110, 0.1, 110 / 21)
    b = skus[(US, "SKU-B")]
    assert b["acos"] is None and b["tacos"] == 0.05 and b["roas"] == 0.0  # spend, no sales
    assert (US, "SKU-C") not in skus  # not advertised
    assert report.skus["seller_sku"].to_list()[0] == "SKU-A"  # GBP first, then by spend
    # a seller reads marketplace codes, as in every other table (the ids were shown raw)
    assert {r["marketplace_id"]: r["marketplace"] for r in report.marketplaces.to_dicts()} == {
        US: "US",
        UK: "UK",
    }
    assert set(report.skus["marketplace"]) == {"US", "UK"}


def test_no_ads_data_says_why() -> None:
    report = build_ads_report(_source(with_ads=False), SCOPE)
    assert report.empty and report.note == NO_DATA
    assert report.totals == {} and report.daily.is_empty()


@pytest.mark.parametrize("currency", ["USD", "GBP"])
def test_scope_by_currency(currency: str) -> None:
    scoped = SalesScope(SCOPE.period, currency=currency)
    assert set(build_ads_report(_source(), scoped).totals) == {currency}


def test_sandbox_ads_through_the_lake_stay_within_the_orders(tmp_path: Any) -> None:
    """The sandbox's ads, ingested through the real client with its orders: every SKU-day's
    ad-attributed sales are at most its total sales, and spend gives a TACoS."""
    from amzigo_lab.config import load_settings
    from amzigo_lab.events import MemorySink
    from amzigo_lab.gateway.sources import LakeTableSource
    from amzigo_lab.home import init_home
    from amzigo_lab.sandbox import World
    from amzigo_lab.source import ingest
    from tests.source.conftest import ACME, SEED, TODAY, start_server

    settings = load_settings(tmp_path / "home", env={}, sandbox_seed=SEED, sandbox_today=TODAY)
    lake = init_home(settings, audit=MemorySink())
    server = start_server(World(seed=SEED, today=TODAY), tmp_path / "sandbox")
    try:
        since = TODAY - dt.timedelta(days=12)
        streams = ["orders", "ads_profiles", "ads_products"]
        report = ingest(lake, settings, [ACME], streams, since, server=server)
        assert report.ok, [(r.stream, r.error) for r in report.results]
        period = Period(since + dt.timedelta(days=1), TODAY - dt.timedelta(days=2))
        ads = build_ads_report(LakeTableSource(lake, ACME), SalesScope(period))
        assert not ads.empty and set(ads.totals) == {"USD", "GBP"}
        assert all(t.tacos is not None and t.tacos > 0 for t in ads.totals.values())
        by_sku_day = ads_table(LakeTableSource(lake, ACME), SalesScope(period))
        assert by_sku_day.height > 0
        assert (by_sku_day["ad_sales"] <= by_sku_day["total_sales"]).all()
    finally:
        server.stop()
        lake.close()


def test_profit_after_ad_spend_is_gross_profit_less_all_spend() -> None:
    from types import SimpleNamespace

    from amzigo_lab.analysis.ads import AdsReport, AdTotals, profit_after_ads

    d = Decimal
    ads = AdsReport(scope=None)  # type: ignore[arg-type]
    ads.totals = {
        "USD": AdTotals("USD", d("12.50"), d("40.00"), d("145.50"), 90, 3000, 3),
        "GBP": AdTotals("GBP", d("4.00"), d("0.00"), d("30.00"), 10, 500, 0),
    }
    totals = {
        "USD": SimpleNamespace(profit=d("35.40")),
        "GBP": SimpleNamespace(profit=None),  # no unit of GBP has a cost
        "EUR": SimpleNamespace(profit=d("10.00")),  # no ads in EUR
    }
    rows = {r["currency"]: r for r in profit_after_ads(totals, ads).to_dicts()}
    assert rows["USD"]["profit_after_ads"] == d("22.90")
    assert rows["GBP"]["profit_after_ads"] is None and rows["GBP"]["ad_spend"] == d("4.00")
    assert rows["EUR"]["profit_after_ads"] == d("10.00") and rows["EUR"]["ad_spend"] == d("0")
