"""The demo's flow on a small scale: the sandbox world ingested through the real client, then
the inventory report and the dashboard's stock section built "as of" the sandbox's clock.

The demo showed 0 SKUs everywhere: the only snapshot is dated the ingest day while reports end
the day before. Both must now show the stock, and the same stock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from amzigo_lab.analysis.inventory import InventoryParams, build_inventory_report
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.sales import SalesScope, build_sales_report
from amzigo_lab.config import load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.gateway.sources import LakeTableSource
from amzigo_lab.home import init_home
from amzigo_lab.sandbox import World
from amzigo_lab.serve.dashboard import ALERT_ROWS, SellerDashboard
from amzigo_lab.source import ingest
from tests.source.conftest import ACME, SEED, TODAY, start_server

pytestmark = pytest.mark.slow
#: the sandbox's clock: its world is a snapshot taken at today 00:00 UTC
NOW = dt.datetime.combine(TODAY, dt.time(0, 0), tzinfo=dt.UTC)
DAYS = 7


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LakeTableSource]:
    settings = load_settings(
        tmp_path_factory.mktemp("flow") / "home", env={}, sandbox_seed=SEED, sandbox_today=TODAY
    )
    lake = init_home(settings, audit=MemorySink())
    state: Path = tmp_path_factory.mktemp("flow-sandbox")
    server = start_server(World(seed=SEED, today=TODAY), state)
    try:
        since = TODAY - dt.timedelta(days=DAYS + 2)
        report = ingest(lake, settings, [ACME], ["orders", "inventory"], since, server=server)
        assert all(r.status == "ok" for r in report.results), report.results
        yield LakeTableSource(lake, ACME)
    finally:
        server.stop()
        lake.close()


def test_inventory_report_and_dashboard_show_the_ingested_stock(ingested) -> None:
    period = Period.last_days(DAYS, now=NOW)
    assert period.end == TODAY - dt.timedelta(days=2)  # yesterday is not over in Los Angeles
    params = InventoryParams(velocity_days=DAYS)
    report = build_inventory_report(ingested, period.end, params, None, NOW)
    assert report.table.height > 0 and report.current and not report.reason
    assert report.stock_date == TODAY  # the snapshot taken on the ingest day
    assert report.table["units_sold"].sum() > 0
    assert set(report.table["status"]) <= {"out", "critical", "reorder", "healthy", "overstock"}

    last_day = TODAY - dt.timedelta(days=1)
    board = SellerDashboard(ACME, ingested, last_day, params, NOW)
    view = board.default_view()
    assert view.end == period.end  # the dashboard's "as of" is the reports'
    section = board.sections(view).inventory
    assert f"{report.table.height} SKUs tracked" in section
    assert "No inventory snapshot" not in section
    alerts = report.table.filter(pl.col("status").is_in(["out", "critical", "reorder"]))
    for sku in alerts["seller_sku"].head(ALERT_ROWS):  # the most urgent, in the report's order
        assert f"<td>{sku}</td>" in section
    if alerts.height > ALERT_ROWS:
        assert f"{alerts.height - ALERT_ROWS} more rows not shown" in section
    sales = build_sales_report(ingested, SalesScope(period))
    assert sales.totals and sales.daily.height


def test_a_past_period_says_why_its_stock_is_empty(ingested) -> None:
    """The old behaviour, now explained: a period ending before the only snapshot."""
    end = TODAY - dt.timedelta(days=1)
    past = build_inventory_report(ingested, end, None, None, NOW + dt.timedelta(days=30))
    assert past.table.height == 0
    assert f"the first one is dated {TODAY.isoformat()}" in past.reason
