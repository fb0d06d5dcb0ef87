"""Amazon Ads streams through python-amazon-ad-api against the sandbox (issue 14 item 1)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow.compute as pc

from amzigo_lab.config import Settings
from amzigo_lab.lake import Lake
from amzigo_lab.sandbox import SandboxServer, World
from amzigo_lab.sandbox.ads import day_rows, profiles
from amzigo_lab.source import ingest
from tests.source.conftest import ACME, TODAY

ADS = ["ads_profiles", "ads_campaigns", "ads_products"]
US = "ATVPDKIKX0DER"


def test_ads_streams_fill_the_datasets_and_match_the_world(
    lake: Lake, settings: Settings, server: SandboxServer, world: World
) -> None:
    report = ingest(lake, settings, [ACME], ADS, TODAY - dt.timedelta(days=40), server=server)
    assert report.ok, [(r.stream, r.error) for r in report.results]
    rows = report.rows()
    assert rows["ads_profiles"] == 2
    assert rows["ads_campaign_daily"] > 0 and rows["ads_product_daily"] > 0
    # 40 days = 2 windows (31 + 9) per marketplace and report type
    assert server.stats.requests["adsCreateReport"] == 2 * 2 * 2
    assert server.stats.snapshot()["throttled"] == {}
    products = lake.scan("ads_product_daily", [ACME]).to_arrow()
    profile = next(
        p for p in profiles(world, world.seller(ACME)) if p.marketplace.marketplace_id == US
    )
    day = TODAY - dt.timedelta(days=20)
    want = day_rows(world, profile, day)
    got = products.filter(
        pc.and_(
            pc.equal(products.column("date"), day), pc.equal(products.column("marketplace_id"), US)
        )
    )
    assert got.num_rows == len(want)
    assert sum(got.column("cost").to_pylist(), Decimal(0)) == sum(r.cost for r in want)
    assert sum(got.column("sales_7d").to_pylist(), Decimal(0)) == sum(r.sales for r in want)
    campaigns = lake.scan("ads_campaign_daily", [ACME]).to_arrow()
    by_day = campaigns.filter(
        pc.and_(
            pc.equal(campaigns.column("date"), day),
            pc.equal(campaigns.column("marketplace_id"), US),
        )
    )
    assert sum(by_day.column("cost").to_pylist(), Decimal(0)) == sum(r.cost for r in want)
