"""The sales report's per-SKU table names every SKU, also one with fees but no order lines in
the period (the hand-check's GBP ACME-DOME-051-RED: sales 0, fees 23.49, ASIN "-"): the ASIN
comes from its inventory snapshots or older order lines, the title from those lines or the
catalog (catalog_items has no SKU, so it can only title an ASIN found that way)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal as D

import pytest

from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.sales import SalesScope, build_sales_report
from amzigo_lab.config import load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.gateway.sources import LakeTableSource
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake
from tests.analysis import data
from tests.analysis.data import ACME, END, OTHER, START, UK, US

PERIOD = Period(START, END)
OLD = data._item("Q0", 1, "2026-01-10", "SKU-QUIET", "B0QUIET", 1, "9.00", mp=UK, cur="GBP")
OLD["title"] = None  # the catalog titles it
FEES = [
    data._fe(
        "q1", "Shipment", "2026-03-04", "Q1", "SKU-QUIET", "fee", "FBAStorageFee", "-23.49",
        "GBP", "Amazon.co.uk",
    ),
    data._fe("s1", "Shipment", "2026-03-04", "S1", "SKU-STOCK", "fee", "FBAStorageFee", "-1.10"),
    data._fe("n1", "Shipment", "2026-03-04", "N1", "SKU-NOWHERE", "fee", "Commission", "-0.50"),
]  # fmt: skip
STOCK = [data._inv("2026-03-07", US, "SKU-STOCK", 4)]  # asin B0STOCK, no title in the dataset
CATALOG = [
    {"asin": "B0QUIET", "marketplace_id": UK, "fetched_at": data.ts("2026-02-01"),
     "title": "Old title"},
    {"asin": "B0QUIET", "marketplace_id": UK, "fetched_at": data.ts("2026-03-01"),
     "title": "Quiet Dome Tent"},
    {"asin": "B0STOCK", "marketplace_id": US, "fetched_at": data.ts("2026-03-01"),
     "title": "Stock Lantern"},
]  # fmt: skip
#: another tenant's catalog and lines never name this tenant's SKUs
OTHER_ITEM = data._item("BB-Q", 1, "2026-01-10", "SKU-NOWHERE", "B0SECRET", 1, "1.00")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    home = tmp_path_factory.mktemp("identity") / "home"
    lk = init_home(load_settings(home, env={}), audit=MemorySink())
    data.populate(lk)
    day = dt.date(2026, 3, 9)
    lk.write("order_items", ACME, day, data.table("order_items", [OLD]), "q-items")
    lk.write("financial_events", ACME, day, data.table("financial_events", FEES), "q-fees")
    lk.write("inventory_snapshots", ACME, day, data.table("inventory_snapshots", STOCK), "q-inv")
    lk.write("catalog_items", ACME, day, data.table("catalog_items", CATALOG), "q-cat")
    lk.write("order_items", OTHER, day, data.table("order_items", [OTHER_ITEM]), "q-other")
    yield lk
    lk.close()


def test_a_sku_with_fees_only_still_has_its_asin_and_title(lake: Lake) -> None:
    report = build_sales_report(LakeTableSource(lake, ACME), SalesScope(PERIOD), None)
    rows = {(r["currency"], r["seller_sku"]): r for r in report.skus.to_dicts()}
    quiet = rows[("GBP", "SKU-QUIET")]
    assert (quiet["sales"], quiet["fees"], quiet["units"]) == (D("0.00"), D("23.49"), 0)
    assert (quiet["asin"], quiet["title"]) == ("B0QUIET", "Quiet Dome Tent")
    stock = rows[("USD", "SKU-STOCK")]
    assert (stock["asin"], stock["title"]) == ("B0STOCK", "Stock Lantern")
    nowhere = rows[("USD", "SKU-NOWHERE")]
    assert (nowhere["asin"], nowhere["title"]) == (None, None)
    # SKUs with order lines in the period keep theirs
    assert (rows[("USD", "SKU-RED")]["asin"], rows[("USD", "SKU-RED")]["title"]) == (
        "B0RED",
        "Product SKU-RED",
    )
