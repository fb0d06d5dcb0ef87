"""Ingestion through the real python-amazon-sp-api client over HTTPS against the sandbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow.compute as pc
import pytest

from amzigo_lab.config import Settings
from amzigo_lab.lake import Lake
from amzigo_lab.sandbox import SandboxServer, World
from amzigo_lab.source import Scheduler, ingest, sync_status
from tests.source.conftest import ACME, TODAY, start_server

SINCE = TODAY - dt.timedelta(days=4)


def expected_orders(world: World, tenant: str, since: dt.date) -> dict[str, object]:
    """Orders the API must return for lastUpdatedAfter=since, computed from the world."""
    start = dt.datetime.combine(since, dt.time(), dt.UTC)
    return {
        o.order_id: o
        for day in world.days(since - dt.timedelta(days=15))
        for o in world.orders(tenant, day)
        if o.last_update_date >= start
    }


def test_orders_paginate_and_match_the_world(
    lake: Lake, settings: Settings, server: SandboxServer, world: World
) -> None:
    report = ingest(lake, settings, [ACME], ["orders"], SINCE, server=server)
    result = report.results[0]
    assert result.status == "ok", result.error
    assert result.pages > 3  # 100 orders per page
    expected = expected_orders(world, ACME, SINCE)
    orders = lake.scan("orders", [ACME]).latest()
    assert sorted(orders.column("amazon_order_id").to_pylist()) == sorted(expected)
    items = lake.scan("order_items", [ACME]).latest()
    assert items.num_rows == sum(len(o.items) for o in expected.values())  # type: ignore[attr-defined]
    total = pc.sum(orders.column("order_total")).as_py()
    want = sum(
        (o.order_total for o in expected.values() if o.status.value != "Canceled"),  # type: ignore[attr-defined]
        Decimal(0),
    )
    assert total == want
    statuses = dict(
        zip(
            orders.column("amazon_order_id").to_pylist(),
            orders.column("order_status").to_pylist(),
            strict=True,
        )
    )
    assert all(statuses[k] == o.status.value for k, o in expected.items())  # type: ignore[attr-defined]
    assert sync_status(lake)[0]["cursor"] == "2026-11-20T00:00:00Z"


def test_second_run_adds_nothing(lake: Lake, settings: Settings, server: SandboxServer) -> None:
    streams = ["orders", "finances", "inventory", "sales_traffic", "catalog"]
    first = ingest(lake, settings, [ACME], streams, SINCE, server=server)
    assert first.ok and first.rows()["orders"] > 0 and first.rows()["financial_events"] > 0
    assert first.rows()["sales_traffic_by_asin"] > 0 and first.rows()["catalog_items"] > 0
    counts = {p.dataset: p.row_count for p in lake.catalog.partitions()}
    second = ingest(lake, settings, [ACME], streams, SINCE, server=server)
    assert second.ok and second.total_rows == 0, second.rows()
    assert {p.dataset: p.row_count for p in lake.catalog.partitions()} == counts
    third = ingest(lake, settings, [ACME], streams, None, server=server)  # from the cursors
    assert third.ok and third.total_rows == 0, third.rows()


@pytest.fixture
def paced_server(world: World, sandbox_state: Path) -> Iterator[SandboxServer]:
    """A sandbox whose limits refill only 250x faster than Amazon's (searchOrders: a token
    every 0.7 s): slow enough that the limits bind however slow the machine running the tests
    is (at 1000x, a loaded machine's own request pace stayed under the limit)."""
    running = start_server(world, sandbox_state, time_scale=250)
    yield running
    running.stop()


def test_throttling_is_retried_and_no_429_escapes(
    lake: Lake, settings: Settings, paced_server: SandboxServer
) -> None:
    server = paced_server
    # a scheduler that believes searchOrders allows a burst of 60: the sandbox allows 20
    optimist = Scheduler(limits={"searchOrders": (1000.0, 60)}, backoff=0.001)
    report = ingest(
        lake,
        settings,
        [ACME],
        ["orders"],
        TODAY - dt.timedelta(days=40),
        server=server,
        scheduler=optimist,
    )
    assert report.ok, report.results
    throttled = server.stats.throttled["searchOrders"]
    assert throttled > 0 and optimist.stats.throttled == throttled
    assert optimist.stats.retries["searchOrders"] == throttled


def test_documented_limits_send_no_429(
    lake: Lake, settings: Settings, paced_server: SandboxServer
) -> None:
    server = paced_server
    report = ingest(
        lake, settings, [ACME], ["orders", "finances"], TODAY - dt.timedelta(days=40), server=server
    )
    assert report.ok and server.stats.snapshot()["throttled"] == {}
    assert report.scheduler.waits > 0  # searchOrders pages beyond the burst of 20 had to wait


def test_restart_in_the_middle_of_a_report(
    settings: Settings, world: World, sandbox_state: Path
) -> None:
    from amzigo_lab.home import init_home, open_lake
    from amzigo_lab.sandbox import ReportTimings

    slow = start_server(world, sandbox_state, report_timings=ReportTimings(1000, 500))  # 1.5 s
    try:
        with init_home(settings) as lake:
            first = ingest(
                lake,
                settings,
                [ACME],
                ["sales_traffic"],
                TODAY - dt.timedelta(days=2),
                server=slow,
                report_wait=0.0,
            )
            result = first.results[0]
            assert result.status == "pending" and result.reports_pending == 4  # 2 days x US, UK
            pending = lake.catalog.get_sync_state(ACME, "sales_traffic")["pending"]
            assert len(pending) == 4
        created = slow.stats.requests["createReport"]
        assert created == 4
        with open_lake(settings) as lake:  # a new process would see the same catalog
            second = ingest(
                lake,
                settings,
                [ACME],
                ["sales_traffic"],
                TODAY - dt.timedelta(days=2),
                server=slow,
                report_wait=5000,
            )
            assert second.results[0].status == "ok", second.results[0].error
            assert slow.stats.requests["createReport"] == created  # resumed, not re-requested
            assert second.rows()["sales_traffic_by_date"] == 4
            assert lake.catalog.get_sync_state(ACME, "sales_traffic")["pending"] == {}
            ids = set(
                lake.scan("sales_traffic_by_date", [ACME])
                .to_arrow()
                .column("report_id")
                .to_pylist()
            )
            assert ids == {job["report_id"] for job in pending.values()}
    finally:
        slow.stop()


def test_faults_are_survived(lake: Lake, settings: Settings, server: SandboxServer) -> None:
    server.faults.fail("searchOrders", times=2, status=500)
    server.faults.unavailable("listFinancialEvents", times=2)  # 503 with an empty body
    server.faults.truncate_documents(1)
    server.faults.expire_tokens(1)
    report = ingest(
        lake,
        settings,
        [ACME],
        ["orders", "finances", "sales_traffic"],
        TODAY - dt.timedelta(days=1),
        server=server,
    )
    assert report.ok, [r.error for r in report.results]
    assert report.scheduler.retries["searchOrders"] == 2
    assert report.scheduler.retries["listFinancialEvents"] == 2
    assert report.scheduler.retries["getReportDocument"] == 1  # truncated GZIP re-downloaded
    assert report.scheduler.token_refreshes == 1
    assert report.rows()["sales_traffic_by_date"] == 2


def test_fatal_report_cools_down(lake: Lake, settings: Settings, server: SandboxServer) -> None:
    server.faults.fatal_reports(1)
    since = TODAY - dt.timedelta(days=1)
    first = ingest(lake, settings, [ACME], ["sales_traffic"], since, server=server)
    assert first.results[0].reports_fatal == 1 and first.rows()["sales_traffic_by_date"] == 1
    state = lake.catalog.get_sync_state(ACME, "sales_traffic")
    assert len(state["cooldown"]) == 1
    created = server.stats.requests["createReport"]
    again = ingest(lake, settings, [ACME], ["sales_traffic"], since, server=server)
    assert again.results[0].reports_fatal == 1  # still cooling down: skipped
    assert server.stats.requests["createReport"] == created + 1  # only the healthy day again


def test_malformed_page_fails_the_stream_and_keeps_the_cursor(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    server.faults.malformed("searchOrders", times=1)
    report = ingest(lake, settings, [ACME], ["orders", "inventory"], SINCE, server=server)
    orders, inventory = report.results
    assert orders.status == "failed" and "MalformedResponse" in orders.error
    assert inventory.status == "ok"  # other streams carry on
    assert "cursor" not in lake.catalog.get_sync_state(ACME, "orders")
    assert sync_status(lake)[0]["last_status"] in ("failed", "ok")


def test_every_dataset_is_filled(
    lake: Lake, settings: Settings, server: SandboxServer, world: World
) -> None:
    report = ingest(lake, settings, [ACME], None, TODAY - dt.timedelta(days=12), server=server)
    assert report.ok, [(r.stream, r.error) for r in report.results]
    datasets = {p.dataset for p in lake.catalog.partitions()}
    assert datasets >= {
        "orders",
        "order_items",
        "sales_traffic_by_date",
        "sales_traffic_by_asin",
        "inventory_snapshots",
        "financial_events",
        "catalog_items",
        "review_topics",
        "review_trends",
        "solicitation_eligibility",
    }
    assert "order_buyers" not in datasets and "quarantine" not in datasets
    # independent cross-checks against the world
    inventory = lake.scan("inventory_snapshots", [ACME]).to_arrow()
    want = sum(
        level.total for m in world.seller(ACME).marketplaces for level in world.inventory(ACME, m)
    )
    assert pc.sum(inventory.column("total_quantity")).as_py() == want
    traffic = lake.scan("sales_traffic_by_date", [ACME]).to_arrow()
    us = world.marketplace("ATVPDKIKX0DER")
    day = TODAY - dt.timedelta(days=3)
    row = traffic.filter(
        pc.and_(
            pc.equal(traffic.column("date"), day),
            pc.equal(traffic.column("marketplace_id"), us.marketplace_id),
        )
    )
    assert row.column("sessions")[0].as_py() == sum(
        t.sessions for t in world.traffic(ACME, us, day)
    )
    eligible = lake.scan("solicitation_eligibility", [ACME]).to_arrow()
    assert eligible.num_rows > 0 and pc.all(eligible.column("eligible")).as_py()
