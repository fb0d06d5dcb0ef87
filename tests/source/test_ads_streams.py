"""Amazon Ads streams through python-amazon-ad-api against the sandbox (issue 14 item 1)."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from pathlib import Path

import pyarrow.compute as pc
import pytest

from amzigo_lab.config import Settings
from amzigo_lab.lake import Lake
from amzigo_lab.sandbox import SandboxServer, World
from amzigo_lab.sandbox.ads import day_rows, profiles
from amzigo_lab.source import ingest
from tests.source.conftest import ACME, TODAY, start_server

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


def test_second_run_resumes_the_cursor_and_adds_only_what_changed(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    first = ingest(lake, settings, [ACME], ADS, TODAY - dt.timedelta(days=20), server=server)
    assert first.ok, [(r.stream, r.error) for r in first.results]
    state = lake.catalog.get_sync_state(ACME, "ads_products")
    assert (
        state["pending"] == {} and state["cursor"][US] == (TODAY - dt.timedelta(days=1)).isoformat()
    )
    created = server.stats.requests["adsCreateReport"]
    second = ingest(lake, settings, [ACME], ADS, None, server=server)  # from the cursors
    assert second.ok, [(r.stream, r.error) for r in second.results]
    # the look-back re-pulls 14 days in one window per marketplace and report type
    assert server.stats.requests["adsCreateReport"] == created + 2 * 2
    # the same world: nothing changed, so nothing is added
    assert second.rows().get("ads_product_daily", 0) == 0
    assert second.rows().get("ads_campaign_daily", 0) == 0


def test_the_look_back_never_reaches_before_the_history_first_asked_for(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    """A 7-day backfill, then a run from the cursor: the 14-day look-back stops at the first
    day of the backfill (found by the ingest kill sweep: a re-run doubled the rows)."""
    first = ingest(lake, settings, [ACME], ADS, server=server, backfill_days=7)
    assert first.ok, [(r.stream, r.error) for r in first.results]
    start = (TODAY - dt.timedelta(days=7)).isoformat()
    assert lake.catalog.get_sync_state(ACME, "ads_campaigns")["start"][US] == start
    days = lake.scan("ads_campaign_daily", tenants=[ACME]).latest().column("date")
    again = ingest(lake, settings, [ACME], ADS, server=server, backfill_days=7)
    assert again.ok, [(r.stream, r.error) for r in again.results]
    after = lake.scan("ads_campaign_daily", tenants=[ACME]).latest().column("date")
    assert min(after.to_pylist()).isoformat() == start == min(days.to_pylist()).isoformat()
    assert len(after) == len(days)


def test_restart_with_a_report_in_flight_resumes_it(
    settings: Settings, world: World, sandbox_state: Path
) -> None:
    from amzigo_lab.home import init_home, open_lake
    from amzigo_lab.sandbox.ads import AdsTimings

    slow = start_server(world, sandbox_state)
    slow.ads.reports.timings = AdsTimings(pending=1000, processing=1000)  # 2 s at 1000x
    try:
        with init_home(settings) as lake:
            first = ingest(
                lake, settings, [ACME], ["ads_campaigns"], TODAY - dt.timedelta(days=3),
                server=slow, report_wait=0.0,
            )  # fmt: skip
            assert first.results[0].status == "pending"
            pending = lake.catalog.get_sync_state(ACME, "ads_campaigns")["pending"]
            assert len(pending) == 2  # US, UK
        assert slow.stats.requests["adsCreateReport"] == 2
        with open_lake(settings) as lake:
            second = ingest(
                lake, settings, [ACME], ["ads_campaigns"], TODAY - dt.timedelta(days=3),
                server=slow, report_wait=10_000,
            )  # fmt: skip
            assert second.results[0].status == "ok", second.results[0].error
            assert slow.stats.requests["adsCreateReport"] == 2  # resumed, never re-requested
            assert second.rows()["ads_campaign_daily"] > 0
            assert lake.catalog.get_sync_state(ACME, "ads_campaigns")["pending"] == {}
    finally:
        slow.stop()


def test_duplicate_answer_adopts_the_report_in_progress(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    from amzigo_lab.sandbox.ads import AdsTimings
    from amzigo_lab.source.streams.ads import CAMPAIGNS

    server.ads.reports.timings = AdsTimings(pending=200, processing=200)  # 0.4 s at 1000x
    # a report of the same request is already in progress (another run that crashed early)
    profile = next(
        p
        for p in profiles(server.world, server.world.seller(ACME))
        if p.marketplace.marketplace_id == US
    )
    day = TODAY - dt.timedelta(days=2)
    job, _ = server.ads.reports.create(
        profile, CAMPAIGNS.request_of(US, day, TODAY - dt.timedelta(days=1))
    )
    report = ingest(lake, settings, [ACME], ["ads_campaigns"], day, server=server)
    assert report.ok, report.results
    assert server.stats.requests["adsCreateReport"] == 2  # US answered 425, UK created
    assert len(server.ads.reports._jobs) == 2  # no second US report
    assert job.report_id in server.ads.reports._jobs


def test_failed_report_cools_down_and_fails_the_stream(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    server.ads.reports.fail_next = 1
    report = ingest(
        lake, settings, [ACME], ["ads_campaigns"], TODAY - dt.timedelta(days=2), server=server
    )
    result = report.results[0]
    assert result.status == "failed" and "FAILED" in result.error and result.reports_fatal == 1
    state = lake.catalog.get_sync_state(ACME, "ads_campaigns")
    assert len(state["cooldown"]) == 1
    created = server.stats.requests["adsCreateReport"]
    ingest(lake, settings, [ACME], ["ads_campaigns"], TODAY - dt.timedelta(days=2), server=server)
    assert server.stats.requests["adsCreateReport"] == created + 1  # only the healthy window


def test_no_429_under_the_scheduler(lake: Lake, settings: Settings, server: SandboxServer) -> None:
    report = ingest(lake, settings, None, ADS, TODAY - dt.timedelta(days=60), server=server)
    assert report.ok, [(r.tenant, r.stream, r.error) for r in report.results if r.status != "ok"]
    assert server.stats.snapshot()["throttled"] == {}
    assert report.scheduler.throttled == 0
    for seller in server.world.sellers:  # every tenant, every marketplace (the demo's run)
        got = lake.scan("ads_product_daily", [seller.tenant]).to_arrow()
        assert set(got.column("marketplace_id").to_pylist()) == {
            m.marketplace_id for m in seller.marketplaces
        }


def test_library_traps_are_handled(monkeypatch: pytest.MonkeyPatch) -> None:
    """AD_API_* variables would replace the credentials given in code; importing ad_api would
    configure the root logger; the endpoint comes from the region (or the sandbox)."""
    import logging

    from amzigo_lab.source.ads_client import AdsConnection, AdsFactory

    monkeypatch.setenv("AD_API_CLIENT_ID", "env-id")
    monkeypatch.setenv("AD_API_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("AD_API_REFRESH_TOKEN", "env-token")
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    factory = AdsFactory(AdsConnection("amazon", "code-id", "code-secret", {ACME: "code-token"}))
    client = factory.client(factory.api.Reports, ACME, "EU", "123")
    assert client.credentials["client_id"] == "code-id"  # not the environment's
    assert client.credentials["refresh_token"] == "code-token"
    assert client.credentials["profile_id"] == "123"
    assert client.endpoint == "https://advertising-api-eu.amazon.com"
    assert client._auth.host == "api.amazon.com"
    assert (list(root.handlers), root.level) == before


def test_scheduler_waits_at_least_retry_after_in_api_time() -> None:
    """A 429 with Retry-After (the Ads API's way) waits that long; the sandbox's seconds are
    divided by its time scale."""
    from ad_api.base.exceptions import AdvertisingApiTooManyRequestsException

    from amzigo_lab.source.ratelimit import Scheduler

    class Clock:
        def __init__(self) -> None:
            self.now, self.slept = 0.0, []

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.slept.append(seconds)
            self.now += seconds

    for scale, want in ((1.0, 3.0), (1000.0, 0.003)):
        clock = Clock()
        s = Scheduler(clock=clock, limits={"op": (100.0, 5)}, time_scale=scale)
        answers = iter([AdvertisingApiTooManyRequestsException(429, {}, {"Retry-After": "3"})])

        def request() -> str:
            exc = next(answers, None)
            if exc is not None:
                raise exc
            return "ok"

        assert s.call("t", "op", request) == "ok"
        assert s.stats.throttled == 1 and clock.slept[0] == pytest.approx(want)


def test_an_expired_download_url_is_fetched_again_from_a_fresh_poll(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    """The library hands back an expired URL's XML as if it were the report: it is not written;
    the report is polled again for a fresh URL, not requested again."""
    import amzigo_lab.source.streams.ads as ads_stream

    real = ads_stream.download
    calls: list[str] = []

    def expired_once(client: object, url: str) -> list[object]:
        calls.append(url)
        if len(calls) == 1:
            from amzigo_lab.source.ads_client import DownloadFailed

            raise DownloadFailed("report URL did not answer a GZIP document (expired?)")
        return real(client, url)

    ads_stream.download = expired_once  # type: ignore[assignment]
    try:
        day = TODAY - dt.timedelta(days=2)
        report = ingest(lake, settings, [ACME], ["ads_campaigns"], day, server=server)
    finally:
        ads_stream.download = real  # type: ignore[assignment]
    assert report.ok, report.results
    assert server.stats.requests["adsCreateReport"] == 2  # US and UK, never re-requested
    assert len(calls) == 3 and report.results[0].reports_discarded == 0


def test_ads_datasets_are_amazon_data_kept_18_months_without_pii() -> None:
    from amzigo_lab.datasets import AMAZON_NON_PII, REGISTRY
    from amzigo_lab.source.streams import STREAMS

    for name in ("ads_profiles", "ads_campaign_daily", "ads_product_daily"):
        spec = REGISTRY[name]
        assert spec.origin == "amazon" and spec.retention == AMAZON_NON_PII and not spec.pii
    assert {"ads_profiles", "ads_campaigns", "ads_products"} <= set(STREAMS)  # amzigo ingest


def test_a_marketplace_without_a_profile_is_skipped_not_failed(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    """A seller that does not advertise in one of its marketplaces has no profile there."""
    from amzigo_lab.source.streams import ads as ads_stream

    real = ads_stream.list_profiles

    def us_only(ctx: object, ads: object, cached: bool = False) -> dict:
        return {mp: p for mp, p in real(ctx, ads, cached).items() if mp == US}  # type: ignore[arg-type]

    ads_stream.list_profiles = us_only  # type: ignore[assignment]
    try:
        report = ingest(
            lake, settings, [ACME], ["ads_campaigns"], TODAY - dt.timedelta(days=2), server=server
        )
    finally:
        ads_stream.list_profiles = real  # type: ignore[assignment]
    result = report.results[0]
    assert result.status == "ok" and result.events == {"marketplaces_without_profile": 1}
    assert server.stats.requests["adsCreateReport"] == 1  # US only


def test_importing_the_ads_library_never_prints_other_threads_info_lines() -> None:
    """`ad_api` calls `logging.basicConfig(level=INFO)` at import. While another ingest thread
    logs, no INFO line may reach stderr, not even in the moment of the import (the demo printed
    a few stray lines before the import was guarded)."""
    import subprocess
    import sys

    child = """
import logging, threading
from amzigo_lab.source.ads_client import import_ad_api
done = threading.Event()
log = logging.getLogger("amzigo_lab.ingest.probe")
def chatter():
    while not done.is_set():
        log.info("probe-info-line")
t = threading.Thread(target=chatter)
t.start()
try:
    import_ad_api()
finally:
    done.set()
    t.join()
root = logging.getLogger()
print(len(root.handlers), root.level)
"""
    out = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=300, check=True
    )
    assert "probe-info-line" not in out.stderr
    assert out.stdout.split() == ["0", str(logging.WARNING)]
