"""Account health: the seller-performance report from the sandbox to the lake, schema-checked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from amzigo_lab.config import Settings
from amzigo_lab.events import MemorySink
from amzigo_lab.governance.audit import AccountHealthBreach, AuditEvent
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake
from amzigo_lab.sandbox import ReportTimings, SandboxServer, World
from amzigo_lab.sandbox.account_health import seller_performance
from amzigo_lab.source import ingest
from amzigo_lab.source.streams.account_health import (
    METRICS_DATASET,
    RATING_DATASET,
    VIOLATIONS_DATASET,
    breaches,
    check_document,
    map_entry,
    request_of,
)
from amzigo_lab.source.streams.sales_traffic import ReportMismatch
from tests.source.conftest import SEED, TODAY, start_server

FIXTURES = Path(__file__).parents[1] / "fixtures"
SCHEMA = FIXTURES / "spapi-schemas" / "accountHealthReport-2020-11-18.json"
EXAMPLE = FIXTURES / "account-health" / "seller-performance.json"
COBALT = "cobalt-tech"
DE = "A1PA6795UKMFR9"
US = "ATVPDKIKX0DER"


def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def test_sandbox_documents_validate_against_amazons_schema(world: World) -> None:
    check = validator()
    for seller in world.sellers:
        ids = [m.marketplace_id for m in seller.marketplaces]
        doc = seller_performance(world, seller.tenant, ids)
        errors = [e.message for e in check.iter_errors(doc)]
        assert errors == [], (seller.tenant, errors[:3])
        assert [e["marketplaceId"] for e in doc["performanceMetrics"]] == ids


def test_sandbox_is_deterministic_and_has_a_tenant_at_risk() -> None:
    a = World(seed=SEED, today=TODAY)
    b = World(seed=SEED, today=TODAY)
    assert seller_performance(a, COBALT, [DE]) == seller_performance(b, COBALT, [DE])
    doc = seller_performance(a, COBALT, [DE])
    vtr = doc["performanceMetrics"][0]["validTrackingRate"]
    assert vtr["rate"] < 0.95 and vtr["status"] == "BAD"  # over (under) Amazon's target
    assert doc["accountStatuses"] == [{"marketplaceId": DE, "status": "AT_RISK"}]
    assert doc["performanceMetrics"][0]["accountHealthRating"]["ahrStatus"] == "WARNED"
    fine = seller_performance(a, "acme-outdoor", [US])
    assert fine["accountStatuses"][0]["status"] == "NORMAL"
    # the report as of another day continues the same history (a later window, same profile)
    later = World(seed=SEED, today=TODAY + dt.timedelta(days=7))
    moved = seller_performance(later, COBALT, [DE])["performanceMetrics"][0]
    assert moved["validTrackingRate"]["reportingDateRange"]["reportingDateTo"] == (
        f"{(TODAY + dt.timedelta(days=6)).isoformat()}T23:59Z"
    )


def test_odr_order_counts_are_the_worlds_orders(world: World) -> None:
    market = world.marketplace(US)
    end = world.last_day
    days = list(world.days(end - dt.timedelta(days=59), end))
    orders = [o for d in days for o in world.day_orders("acme-outdoor", market, d)]
    doc = seller_performance(world, "acme-outdoor", [US])
    odr = doc["performanceMetrics"][0]["orderDefectRate"]
    assert odr["afn"]["orderCount"] == sum(o.fulfillment_channel == "AFN" for o in orders)
    assert odr["mfn"]["orderCount"] == sum(o.fulfillment_channel != "AFN" for o in orders)
    for part in odr.values():
        counts = part["claims"]["count"] + part["chargebacks"]["count"]
        assert counts + part["negativeFeedback"]["count"] == part["orderWithDefects"]["count"]


def test_parser_input_validates_and_maps_exactly() -> None:
    doc = json.loads(EXAMPLE.read_text())
    assert [e.message for e in validator().iter_errors(doc)] == []
    fetched = dt.datetime(2020, 11, 20, tzinfo=dt.UTC)
    rows = map_entry(doc["performanceMetrics"][0], "R1", fetched)
    metrics = {(r["metric"], r["fulfillment_channel"]): r for r in rows[METRICS_DATASET]}
    assert set(metrics) == {
        ("order_defect_rate", "afn"),
        ("order_defect_rate", "mfn"),
        ("late_shipment_rate", "all"),
        ("pre_fulfillment_cancellation_rate", "all"),
        ("valid_tracking_rate", "all"),
        ("on_time_delivery_rate", "all"),
        ("unit_on_time_delivery_rate", "all"),
        ("invoice_defect_rate", "all"),
    }
    afn = metrics[("order_defect_rate", "afn")]
    assert (afn["total"], afn["defects"], afn["claims"], afn["chargebacks"]) == (
        120000, 1440, 600, 40
    )  # fmt: skip
    assert afn["negative_feedback"] == 800 and afn["rate"] == 0.012
    assert afn["window_start"] == dt.datetime(2020, 9, 6, tzinfo=dt.UTC)
    assert afn["window_end"] == dt.datetime(2020, 11, 4, 23, 59, tzinfo=dt.UTC)
    late = metrics[("late_shipment_rate", "all")]
    assert (late["defects"], late["total"], late["target_value"]) == (27896, 870669, 0.04)
    assert late["target_condition"] == "LESS_THAN" and late["status"] == "GOOD"
    vtr = metrics[("valid_tracking_rate", "all")]
    assert (vtr["defects"], vtr["total"], vtr["rate"]) == (896462, 878443, 0.9529)
    violations = {r["violation"]: r for r in rows[VIOLATIONS_DATASET]}
    assert violations["listingPolicyViolations"]["defects_count"] == 86
    assert violations["productAuthenticityCustomerComplaints"]["defects_count"] == 212
    assert violations["warning:spammingSellerMessaging"]["status"] == "BAD"
    assert len(violations) == 11  # ten violation metrics and one warning state
    [rating] = rows[RATING_DATASET]
    assert rating["ahr_status"] == "WARNED"
    # only the AFN order defect rate (1.2 %) misses its target; a known window is not new
    reasons = breaches(rows[METRICS_DATASET], set())
    assert reasons == [
        "ATVPDKIKX0DER order_defect_rate (afn) 1.20% misses target < 1% (window to 2020-11-04)"
    ]
    known = {(US, "order_defect_rate", "afn", "2020-11-04")}
    assert breaches(rows[METRICS_DATASET], known) == []


def test_a_document_about_another_marketplace_is_refused() -> None:
    doc = json.loads(EXAMPLE.read_text())
    check_document(doc, request_of(US), "R1")
    with pytest.raises(ReportMismatch):
        check_document(doc, request_of(DE), "R1")


def _events(lake: Lake) -> list[dict[str, Any]]:
    return list(lake.audit.events)  # type: ignore[attr-defined]


def test_ingest_writes_every_window_once_and_audits_breaches(
    lake: Lake, settings: Settings, server: SandboxServer, world: World
) -> None:
    report = ingest(lake, settings, [COBALT], ["account_health"], server=server)
    result = report.results[0]
    assert result.status == "ok", result.error
    assert server.stats.requests["createReport"] == 3  # one per marketplace: US, UK, DE
    metrics = lake.scan(METRICS_DATASET, [COBALT]).latest()
    assert metrics.num_rows == 3 * 8  # 2 ODR channels + 6 rate metrics per marketplace
    de = [r for r in metrics.to_pylist() if r["marketplace_id"] == DE]
    doc = seller_performance(world, COBALT, [DE])["performanceMetrics"][0]
    vtr = next(r for r in de if r["metric"] == "valid_tracking_rate")
    assert vtr["rate"] == doc["validTrackingRate"]["rate"]
    assert vtr["total"] == doc["validTrackingRate"]["shipmentCount"]
    rating = lake.scan(RATING_DATASET, [COBALT]).latest().to_pylist()
    assert {(r["marketplace_id"], r["account_status"]) for r in rating} >= {(DE, "AT_RISK")}
    breach = [e for e in _events(lake) if e["action"] == "account_health.breach"]
    assert breach and all(e["tenant"] == COBALT for e in breach)
    assert any("valid_tracking_rate" in str(e["reason"]) for e in breach)
    # the same day again: no new report, no new rows, no second alert
    again = ingest(lake, settings, [COBALT], ["account_health"], server=server)
    assert again.ok and server.stats.requests["createReport"] == 3
    assert [e for e in _events(lake) if e["action"] == "account_health.breach"] == breach


def test_breach_events_become_alerts() -> None:
    ev = AuditEvent.new(
        action="account_health.breach",
        actor="system:ingest",
        resource=f"account_health:{DE}",
        tenant=COBALT,
        reason=f"{DE} valid_tracking_rate 93.10% misses target > 95% (window to 2026-11-19)",
    )
    other = AuditEvent.new(action="source.ingest", actor="system")
    [alert] = AccountHealthBreach().evaluate([ev, other])
    assert alert.rule == "account_health_breach" and alert.event_ids == (ev.event_id,)
    assert alert.detail.startswith(f"tenant {COBALT}: {DE} valid_tracking_rate")


def test_a_pending_report_is_resumed_not_requested_again(
    settings: Settings, world: World, sandbox_state: Path
) -> None:
    slow = start_server(world, sandbox_state, report_timings=ReportTimings(1000, 500))
    try:
        with init_home(settings, audit=MemorySink()) as lake:
            first = ingest(
                lake, settings, [COBALT], ["account_health"], server=slow, report_wait=0.0
            )
            assert first.results[0].status == "pending"
            pending = lake.catalog.get_sync_state(COBALT, "account_health")["pending"]
            assert sorted(pending) == sorted([US, "A1F83G8C2ARO7P", DE])
            assert all(job["request"] == request_of(mp) for mp, job in pending.items())
            second = ingest(
                lake, settings, [COBALT], ["account_health"], server=slow, report_wait=5000
            )
            assert second.results[0].status == "ok", second.results[0].error
            assert slow.stats.requests["createReport"] == 3  # resumed, not re-requested
            ids = set(lake.scan(METRICS_DATASET, [COBALT]).to_arrow()["report_id"].to_pylist())
            assert ids == {job["report_id"] for job in pending.values()}
            assert lake.catalog.get_sync_state(COBALT, "account_health")["pending"] == {}
    finally:
        slow.stop()


def test_a_fatal_report_cools_its_marketplace_down(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    server.faults.fatal_reports(1)
    first = ingest(lake, settings, [COBALT], ["account_health"], server=server)
    assert first.results[0].reports_fatal == 1
    cooling = lake.catalog.get_sync_state(COBALT, "account_health")["cooldown"]
    assert len(cooling) == 1
    written = set(lake.scan(METRICS_DATASET, [COBALT]).to_arrow()["marketplace_id"].to_pylist())
    assert written == {US, "A1F83G8C2ARO7P", DE} - set(cooling)  # the others are written
    again = ingest(lake, settings, [COBALT], ["account_health"], server=server)
    assert again.results[0].reports_fatal == 1  # still cooling down: not requested
    assert server.stats.requests["createReport"] == 3


def test_an_unknown_report_id_is_discarded_and_requested_again(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    stale = {"report_id": "50000000000123", "request": request_of(DE)}  # another sandbox's id
    with lake.catalog.transaction():
        lake.catalog.put_sync_state(COBALT, "account_health", {"pending": {DE: stale}})
    report = ingest(lake, settings, [COBALT], ["account_health"], server=server)
    result = report.results[0]
    assert result.status == "ok" and result.reports_discarded == 1
    ids = set(lake.scan(METRICS_DATASET, [COBALT]).to_arrow()["report_id"].to_pylist())
    assert "50000000000123" not in ids and len(ids) == 3
