"""Sandbox report jobs: ids unique across processes and restarts, and a retention (issue 12).

The stores run on an injected clock (no wall-clock waits).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from amzigo_lab.sandbox import ReportTimings, World
from amzigo_lab.sandbox.documents import SALES_AND_TRAFFIC, ReportRequest
from amzigo_lab.sandbox.reports import ReportStore
from amzigo_lab.sandbox.tenants import SELLERS


class Clock:
    """An injected monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _request(world: World) -> ReportRequest:
    seller = SELLERS[0]
    day = dt.datetime.combine(world.today - dt.timedelta(days=1), dt.time(), dt.UTC)
    return ReportRequest(
        seller.tenant,
        SALES_AND_TRAFFIC,
        seller.marketplaces[0],
        day,
        day,
        {"asinGranularity": "CHILD"},
    )


def test_ids_differ_between_stores_like_processes(world: World) -> None:
    ids = set()
    for _ in range(3):  # three "processes" (or restarts), each with a fresh store
        store = ReportStore(world, 1.0, clock=Clock())
        ids |= {store.create(_request(world), fatal=False).report_id for _ in range(20)}
    assert len(ids) == 60
    assert all(i.isdigit() for i in ids)
    # an id of one store is "not found" in another, never another report
    first, second = ReportStore(world, 1.0, clock=Clock()), ReportStore(world, 1.0, clock=Clock())
    job = first.create(_request(world), fatal=False)
    assert second.get(job.request.tenant, job.report_id) is None


def test_ids_differ_between_real_processes() -> None:
    code = (
        "import datetime as dt;"
        "from amzigo_lab.sandbox import World;"
        "from amzigo_lab.sandbox.reports import ReportStore;"
        "from tests.sandbox.test_sandbox_report_ids import _request;"
        "w = World(seed=7, today=dt.date(2026, 11, 20));"
        "s = ReportStore(w, 1.0);"
        "print(s.create(_request(w), fatal=False).report_id)"
    )
    ids = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(ids) == 2


def test_reports_are_forgotten_after_the_retention(world: World) -> None:
    clock = Clock()
    timings = ReportTimings(queued=10, processing=10, retention=3600)
    store = ReportStore(world, 10.0, timings, clock=clock)  # scaled: 1+1 s, kept 360 s
    job = store.create(_request(world), fatal=False)
    tenant = job.request.tenant
    assert store.state(job).status == "IN_QUEUE"
    clock.now += 2.5
    assert store.state(job).status == "DONE"
    assert store.document(job.document_id) is not None
    clock.now += 350
    assert store.get(tenant, job.report_id) is job
    assert store.job_for_document(tenant, job.document_id) is job
    clock.now += 10
    assert store.get(tenant, job.report_id) is None
    assert store.job_for_document(tenant, job.document_id) is None
    assert store.document(job.document_id) is None
    assert store._documents == {}  # the rendered document is dropped with its job
