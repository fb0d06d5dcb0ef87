"""Gross profit from the product_costs dataset (issue 13 item 3): exact numbers on the report
fixtures, with partial costs, a cost change in mid-period (valid_from), a corrected import,
a marketplace-specific cost beside an every-marketplace one, and another tenant's costs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal as D

import polars as pl
import pytest

from amzigo_lab.analysis.cost_file import CostFileError, parse_cost_file
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.profit import cost_rows, sku_costs
from amzigo_lab.analysis.sales import SalesScope, build_sales_report, order_lines
from amzigo_lab.config import load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.gateway.sources import LakeTableSource
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake
from tests.analysis import data
from tests.analysis.data import ACME, END, OTHER, START, UK, US

PERIOD = Period(START, END)
FIRST = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 3, 9, 9, tzinfo=dt.UTC)


def _cost(sku: str, mp: str | None, cur: str, cost: str, day: str, at: dt.datetime) -> dict:
    return {
        "sku": sku, "marketplace_id": mp, "currency": cur, "unit_cost": D(cost),
        "valid_from": dt.date.fromisoformat(day), "imported_at": at, "source_sha256": "f" * 64,
    }  # fmt: skip


#: SKU-RED (USD) costs 8.00 everywhere from January, 9.00 in the US from 2 March (corrected to
#: 9.50 by a later import), 8.80 everywhere from 2 March (the US row wins on the same day).
#: SKU-BLUE has a EUR cost only (never converted: its USD unit stays uncosted). SKU-GREEN's GBP
#: cost starts on 7 March, after its only sale (6 March).
FIRST_IMPORT = [
    _cost("SKU-RED", None, "USD", "8.00", "2026-01-01", FIRST),
    _cost("SKU-RED", US, "USD", "9.00", "2026-03-02", FIRST),
    _cost("SKU-RED", None, "USD", "8.80", "2026-03-02", FIRST),
    _cost("SKU-BLUE", None, "EUR", "4.00", "2026-01-01", FIRST),
    _cost("SKU-RED", UK, "GBP", "7.00", "2026-01-01", FIRST),
    _cost("SKU-GREEN", UK, "GBP", "5.00", "2026-03-07", FIRST),
]
CORRECTION = [
    _cost("SKU-RED", US, "USD", "9.50", "2026-03-02", LATER),
    _cost("SKU-RED", None, "USD", "8.90", "2026-03-02", LATER),  # a null key is corrected too
]
OTHER_COSTS = [_cost("SKU-RED", None, "USD", "1.00", "2026-01-01", FIRST)]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    home = tmp_path_factory.mktemp("profit") / "home"
    lk = init_home(load_settings(home, env={}), audit=MemorySink())
    data.populate(lk)
    lk.write("product_costs", ACME, "2026-03-01", data.table("product_costs", FIRST_IMPORT), "c1")
    lk.write("product_costs", ACME, "2026-03-09", data.table("product_costs", CORRECTION), "c2")
    lk.write("product_costs", OTHER, "2026-03-01", data.table("product_costs", OTHER_COSTS), "c3")
    yield lk
    lk.close()


@pytest.fixture(scope="module")
def report(lake: Lake):  # type: ignore[no-untyped-def]
    return build_sales_report(LakeTableSource(lake, ACME), SalesScope(PERIOD), PERIOD.previous())


def test_effective_cost_follows_valid_from_and_the_latest_import(lake: Lake) -> None:
    source = LakeTableSource(lake, ACME)
    costs = cost_rows(source)
    assert costs.height == 6  # the correction replaced two rows of 2 March, history kept
    corrected = costs.filter(pl.col("valid_from") == dt.date(2026, 3, 2)).sort("unit_cost")
    assert corrected["unit_cost"].to_list() == [D("8.9000"), D("9.5000")]
    per_sku = sku_costs(order_lines(source, SalesScope(PERIOD)), costs)
    rows = {(r["currency"], r["seller_sku"]): r for r in per_sku.to_dicts()}
    # RED USD: 2 units on 1 March at 8.00, 1 + 3 units on 2-3 March at 9.50 (US row, corrected)
    assert rows[("USD", "SKU-RED")] == {
        "currency": "USD", "seller_sku": "SKU-RED", "costed_units": 6, "uncosted_units": 0,
        "cogs": D("54.00"),
    }  # fmt: skip
    assert rows[("USD", "SKU-BLUE")]["uncosted_units"] == 1  # a EUR cost never applies
    assert rows[("GBP", "SKU-GREEN")]["uncosted_units"] == 2  # its cost starts after the sale
    assert rows[("GBP", "SKU-RED")]["cogs"] == D("7.00")


def test_profit_and_margin_cover_costed_units_only(report) -> None:  # type: ignore[no-untyped-def]
    usd, gbp = report.totals["USD"], report.totals["GBP"]
    # fees and refunds per currency, as before
    assert (usd.sales, usd.refunds, usd.fees, usd.net_proceeds) == (
        D("145.50"), D("20.00"), D("14.43"), D("108.57"),
    )  # fmt: skip
    # USD: SKU-RED only (net 89.40, sales 120.00); SKU-BLUE's unit has no USD cost
    assert (usd.cogs, usd.costed_sales, usd.costed_net) == (D("54.00"), D("120.00"), D("89.40"))
    assert usd.profit == D("35.40")
    assert usd.margin == D("35.40") / D("120.00")  # 29.5 %, not (108.57 - 54) / 145.50
    assert usd.uncosted_units == 1
    # GBP: SKU-RED (18.00 sales, 2.70 fees, 7.00 COGS); SKU-GREEN's 2 units have no cost yet
    assert (gbp.cogs, gbp.costed_sales, gbp.profit, gbp.uncosted_units) == (
        D("7.00"), D("18.00"), D("8.30"), 2,
    )  # fmt: skip
    assert gbp.margin == D("8.30") / D("18.00")
    tiles = {(t.currency, t.metric): t for t in report.tiles}
    assert tiles[("USD", "profit")].label == "Gross profit"
    assert tiles[("USD", "profit")].value == D("35.40")
    assert report.notes == [
        "GBP: 2 units have no cost among the product costs (amzigo costs import) on their sale "
        "day (SKU SKU-GREEN); profit and margin cover the costed SKUs only.",
        "USD: 1 unit has no cost among the product costs (amzigo costs import) on their sale "
        "day (SKU SKU-BLUE); profit and margin cover the costed SKUs only.",
    ]


def test_sku_rows_without_a_full_cost_have_no_profit(report) -> None:  # type: ignore[no-untyped-def]
    rows = {(r["currency"], r["seller_sku"]): r for r in report.skus.to_dicts()}
    red = rows[("USD", "SKU-RED")]
    assert (red["cogs"], red["profit"], red["unit_cost"]) == (D("54.00"), D("35.40"), D("9.0000"))
    assert red["margin"] == pytest.approx(35.40 / 120.00)
    blue = rows[("USD", "SKU-BLUE")]
    assert (blue["cogs"], blue["profit"], blue["margin"], blue["uncosted_units"]) == (
        None, None, None, 1,
    )  # fmt: skip


def test_comparison_period_uses_the_costs_valid_then(report) -> None:  # type: ignore[no-untyped-def]
    prev = report.previous["USD"]
    # 22-28 Feb: SKU-RED 2 units at 8.00, 40.00 sales, a 20.00 refund; SKU-BLUE uncosted
    assert (prev.cogs, prev.costed_sales, prev.profit, prev.uncosted_units) == (
        D("16.00"), D("40.00"), D("4.00"), 1,
    )  # fmt: skip


def test_override_file_replaces_the_dataset(lake: Lake) -> None:
    costs = {("SKU-RED", "USD"): D("8.00"), ("SKU-BLUE", "USD"): D("10.00")}
    rep = build_sales_report(LakeTableSource(lake, ACME), SalesScope(PERIOD), None, costs)
    usd = rep.totals["USD"]
    assert (usd.cogs, usd.profit, usd.uncosted_units) == (D("58.00"), D("50.57"), 0)
    assert rep.totals["GBP"].profit is None  # the file has no GBP cost: no GBP margin
    assert any(n.startswith("GBP: 3 units have no cost in the cost file") for n in rep.notes)
    assert not any(t.currency == "GBP" and t.metric == "margin" for t in rep.tiles)


def test_another_tenants_costs_never_apply(lake: Lake) -> None:
    costs = cost_rows(LakeTableSource(lake, ACME))
    assert D("1.0000") not in costs["unit_cost"].to_list()
    other = cost_rows(LakeTableSource(lake, OTHER))
    assert other.height == 1


def test_no_costs_means_no_profit_and_a_note(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lk = init_home(load_settings(tmp_path / "h", env={}), audit=MemorySink())
    data.populate(lk)
    rep = build_sales_report(LakeTableSource(lk, ACME), SalesScope(PERIOD))
    lk.close()
    assert all(t.profit is None and t.margin is None for t in rep.totals.values())
    assert not any(t.metric in ("profit", "margin") for t in rep.tiles)
    assert rep.notes and "amzigo costs import" in rep.notes[0]
    assert rep.skus.filter(pl.col("profit").is_not_null()).height == 0


# -- the cost file ----------------------------------------------------------------------------


def test_cost_file_rows_are_validated_all_or_nothing() -> None:
    good = (
        b"sku,marketplace,currency,unit_cost,valid_from\n"
        b"SKU-RED,US,usd,9.5,2026-03-02\n"
        b"SKU-RED,,USD,8,\n"
        b"\n"
        b"SKU-GREEN,ALL,GBP,5.1234,2026-03-07\n"
    )
    rows = parse_cost_file("c.csv", good, dt.date(2026, 1, 1))
    assert [(r.sku, r.marketplace_id, r.currency, r.unit_cost, r.valid_from) for r in rows] == [
        ("SKU-RED", US, "USD", D("9.5"), dt.date(2026, 3, 2)),
        ("SKU-RED", None, "USD", D("8"), dt.date(2026, 1, 1)),
        ("SKU-GREEN", None, "GBP", D("5.1234"), dt.date(2026, 3, 7)),
    ]
    bad = (
        b"sku,marketplace,currency,unit_cost,valid_from\n"
        b"SKU-RED,US,USD,9.5,2026-03-02\n"  # row 2: fine
        b"SKU-A,US,USD,abc,2026-03-02\n"  # row 3
        b"SKU-B,UK,USD,1,2026-03-02\n"  # row 4: UK sells in GBP
        b"SKU-C,FR,EUR,1,2026-03-02\n"  # row 5
        b",US,USD,-1,2026-13-01\n"  # row 6: three problems
        b"SKU-D,US,USD,1.00001,\n"  # row 7: too precise, no date
        b"SKU-RED,US,USD,9.9,2026-03-02\n"  # row 8: same key as row 2
    )
    with pytest.raises(CostFileError) as err:
        parse_cost_file("c.csv", bad)
    msg = str(err.value)
    assert msg.splitlines()[0] == "c.csv: 9 problem(s); nothing was imported:"
    for line in (
        "row 3: unit_cost 'abc' is not a number",
        "row 4: currency USD is not marketplace UK's (GBP)",
        "row 5: unknown marketplace 'FR'",
        "row 6: sku is empty",
        "row 6: unit_cost '-1' is negative",
        "row 6: valid_from '2026-13-01' is not a date (YYYY-MM-DD)",
        "row 7: unit_cost '1.00001' has more than 4 decimal places",
        "row 7: valid_from is empty (fill it in, or give --valid-from YYYY-MM-DD)",
        "row 8: same sku, marketplace, currency and valid_from as row 2",
    ):
        assert line in msg, (line, msg)
    for text, expected in [
        (b"", "the file is empty"),
        (b"sku,cost\nA,1\n", "the header lacks currency"),
        (b"sku,currency,unit_cost,colour\nA,USD,1,red\n", "unknown column 'colour'"),
        (b"sku,currency,unit_cost\n", "no cost rows"),
        (b"sku,currency,unit_cost\nA,USD,\xff\n", "not UTF-8"),
    ]:
        with pytest.raises(CostFileError, match=expected):
            parse_cost_file("c.csv", text, dt.date(2026, 1, 1))


def test_xlsx_without_openpyxl_says_to_save_as_csv() -> None:
    from amzigo_lab.analysis.cost_file import xlsx_supported

    if xlsx_supported():
        pytest.skip("openpyxl is installed here")
    with pytest.raises(CostFileError, match="openpyxl.*save the sheet as CSV"):
        parse_cost_file("costs.xlsx", b"PK\x03\x04")


def test_product_costs_is_internal_and_kept_while_the_tenant_is_active(lake: Lake) -> None:
    from amzigo_lab.compliance.retention import plan_purge
    from amzigo_lab.datasets import REGISTRY

    spec = REGISTRY["product_costs"]
    assert spec.origin == "internal" and not spec.pii
    assert spec.retention.name == "while_tenant_active"
    parts = lake.catalog.partitions("product_costs")
    assert {p.purge_date for p in parts} == {dt.date(9999, 12, 31)}
    assert all(p.rel_dir.startswith("internal/product_costs/") for p in parts)
    # a purge decades from now still keeps them; the Amazon data of the same tenant goes
    plan = plan_purge(lake, dt.date(2060, 1, 1))
    dropped = {p.dataset for p in plan.drop}
    assert "product_costs" not in dropped and "orders" in dropped


def test_uk_costs_stay_in_their_marketplace(lake: Lake) -> None:
    source = LakeTableSource(lake, ACME)
    costs = cost_rows(source)
    uk = costs.filter(pl.col("marketplace_id") == UK)
    assert sorted(uk["sku"].to_list()) == ["SKU-GREEN", "SKU-RED"]


def test_dashboard_shows_gross_profit_and_what_lacks_a_cost(lake: Lake) -> None:
    from amzigo_lab.serve.dashboard import DATASETS, ArrowSource, SellerDashboard, View

    assert DATASETS["product_costs"] == "sales_analysis"
    lakesrc = LakeTableSource(lake, ACME)
    tables = {name: lakesrc.table(name).to_pyarrow() for name in DATASETS}
    board = SellerDashboard(ACME, ArrowSource(tables), END)
    sections = board.sections(View(START, END))
    tiles = sections.tiles
    assert "data-metric='profit' data-currency='USD'><div class='l'>Gross profit</div>" in tiles
    assert "<div class='v'>$35.40</div>" in tiles
    assert "data-metric='margin' data-currency='GBP'" in tiles
    assert "USD: 1 unit has no cost among the product costs (amzigo costs import)" in tiles
    assert "Amazon fees" in tiles and "Refunds" in tiles
    assert "Gross profit" in sections.products and "$35.40" in sections.products
    # no costs: no profit tile, and the dashboard says how to add them
    tables["product_costs"] = tables["product_costs"].slice(0, 0)
    bare = SellerDashboard(ACME, ArrowSource(tables), END).sections(View(START, END))
    assert "data-metric='profit'" not in bare.tiles
    assert "amzigo costs import" in bare.tiles and "Gross profit" not in bare.products
