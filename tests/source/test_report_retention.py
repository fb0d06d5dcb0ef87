"""A report the sandbox has forgotten (past its retention) is discarded and re-requested by the
next run, not written and not wedging the stream (issue 12 item 1). The sandbox's report clock
is injected: reports age only when the test says so."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from amzigo_lab.config import Settings
from amzigo_lab.home import init_home, open_lake
from amzigo_lab.sandbox import ReportTimings, World
from tests.source.conftest import ACME, TODAY, start_server


class StepClock:
    """An injected monotonic clock that moves `step` seconds on every reading."""

    def __init__(self) -> None:
        self.now = 0.0
        self.step = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_forgotten_reports_are_re_requested(
    settings: Settings, world: World, sandbox_state: Path
) -> None:
    from amzigo_lab.source.ingest import ingest

    clock = StepClock()
    # at 1000x: 100 s processing, kept 500 s (of the injected clock)
    timings = ReportTimings(queued=0, processing=100_000, retention=500_000)
    server = start_server(world, sandbox_state, report_timings=timings, report_clock=clock)
    since = TODAY - dt.timedelta(days=1)
    try:
        with init_home(settings) as lake:
            first = ingest(lake, settings, [ACME], ["sales_traffic"], since, server=server,
                           report_wait=0.0)  # fmt: skip
            assert first.results[0].status == "pending"
            kept = lake.catalog.get_sync_state(ACME, "sales_traffic")["pending"]
            assert len(kept) == 2  # one day x (US, UK), in flight
        clock.now += 1000  # past the retention: the sandbox forgets them
        clock.step = 5.0  # from now on time passes as the sandbox is asked
        with open_lake(settings) as lake:
            second = ingest(lake, settings, [ACME], ["sales_traffic"], since, server=server,
                            report_wait=60_000)  # fmt: skip
            (result,) = second.results
            assert result.status == "ok", result.error
            assert result.reports_discarded == 2
            assert server.stats.requests["createReport"] == 4
            assert second.rows()["sales_traffic_by_date"] == 2
            ids = set(
                lake.scan("sales_traffic_by_date", [ACME])
                .to_arrow()
                .column("report_id")
                .to_pylist()
            )
            assert ids.isdisjoint(job["report_id"] for job in kept.values())
            assert lake.catalog.get_sync_state(ACME, "sales_traffic")["pending"] == {}
    finally:
        server.stop()
