"""Sales & Traffic report jobs: a resumed report is checked against its request before any row
is written; a mismatch or a vanished report is discarded and re-requested (issue 12 item 1).

Runs the real stream over a fake Reports client (no sandbox, no wall clock): the fake hands out
the ids the test says, answers getReport for whatever report an id really is, and serves
documents whose reportSpecification says what they are.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

import pytest
from sp_api.base.exceptions import SellingApiNotFoundException

from amzigo_lab.source.streams.base import Collector
from amzigo_lab.source.streams.sales_traffic import (
    MAX_ATTEMPTS,
    MAX_IN_FLIGHT,
    POLL_INTERVAL,
    ReportMismatch,
    SalesTrafficStream,
    check_document,
    check_report,
    key_of,
    parse_document,
    request_of,
)
from tests.source.spapi_examples import (
    NOW,
    FakeStore,
    api_response,
    fake_context,
    responses,
    result,
)

US, UK = "ATVPDKIKX0DER", "A1F83G8C2ARO7P"
CURRENCY = {US: "USD", UK: "GBP"}
DAY = NOW.date() - dt.timedelta(days=1)
REPORTS_MODEL = "reports_2021-06-30"


def document(mp: str, day: dt.date, units: int) -> str:
    """A one-day, one-ASIN Sales & Traffic document (CHILD granularity)."""
    money = {"amount": 10.0 * units, "currencyCode": CURRENCY[mp]}
    return json.dumps(
        {
            "reportSpecification": {
                "reportType": "GET_SALES_AND_TRAFFIC_REPORT",
                "reportOptions": {"dateGranularity": "DAY", "asinGranularity": "CHILD"},
                "dataStartTime": day.isoformat(),
                "dataEndTime": day.isoformat(),
                "marketplaceIds": [mp],
            },
            "salesAndTrafficByDate": [
                {
                    "date": day.isoformat(),
                    "salesByDate": {"orderedProductSales": money, "unitsOrdered": units},
                    "trafficByDate": {"sessions": 3 * units, "pageViews": 4 * units},
                }
            ],
            "salesAndTrafficByAsin": [
                {
                    "parentAsin": "B0PARENT",
                    "childAsin": "B0CHILD",
                    "salesByAsin": {"orderedProductSales": money, "unitsOrdered": units},
                    "trafficByAsin": {"sessions": 3 * units},
                }
            ],
        }
    )


def units(mp: str, day: dt.date) -> int:
    """The figure a marketplace's day really has (distinct for every report)."""
    return (7 if mp == US else 5) * 100 + day.day


class FakeReports:
    """createReport/getReport/getReportDocument over a dict of reports."""

    def __init__(self) -> None:
        self.reports: dict[str, dict[str, Any]] = {}
        self.ids = (f"5{n:010d}" for n in itertools.count(1))
        self.created: list[str] = []
        self.gone: set[str] = set()
        self.clock: Any = None  # the stream's injected clock (set by _run)
        self.delay = 0.0  # seconds (of that clock) a new report stays IN_PROGRESS

    def add(self, report_id: str, request: dict[str, Any], status: str = "DONE") -> None:
        self.reports[report_id] = {"request": request, "status": status}

    def create_report(self, **body: Any) -> Any:
        report_id = next(self.ids)
        self.add(report_id, body)
        self.reports[report_id]["ready_at"] = self.clock.now + self.delay
        self.created.append(
            key_of(body["marketplaceIds"][0], dt.date.fromisoformat(body["dataStartTime"]))
        )
        return api_response({"reportId": report_id})

    def get_report(self, report_id: str) -> Any:
        if report_id not in self.reports or report_id in self.gone:
            raise SellingApiNotFoundException([{"code": "NotFound", "message": "Report not found"}])
        job = self.reports[report_id]
        if job["status"] == "DONE" and self.clock.now < job.get("ready_at", 0.0):
            job = {**job, "status": "IN_PROGRESS"}
        request = job["request"]
        day = dt.date.fromisoformat(request["dataStartTime"])
        body = {
            "reportId": report_id,
            "reportType": request["reportType"],
            "marketplaceIds": request["marketplaceIds"],
            "dataStartTime": f"{day}T00:00:00Z",
            "dataEndTime": f"{day}T23:59:59Z",
            "createdTime": f"{day}T00:00:00Z",
            "processingStatus": job["status"],
        }
        if job["status"] == "DONE":
            body["reportDocumentId"] = "doc-" + report_id
        return api_response(body)

    def get_report_document(self, document_id: str, **kw: Any) -> Any:
        report_id = document_id.removeprefix("doc-")
        if report_id in self.gone:
            raise SellingApiNotFoundException([{"code": "NotFound", "message": "gone"}])
        job = self.reports[report_id]
        request = job.get("document_of") or job["request"]
        mp, day = request["marketplaceIds"][0], dt.date.fromisoformat(request["dataStartTime"])
        return api_response({"payload": {"document": document(mp, day, units(mp, day))}})


def _run(
    reports: FakeReports,
    state: dict[str, Any],
    mps: tuple[str, ...] = (US, UK),
    report_wait: float = 0.0,
    since: dt.date = DAY,
) -> tuple[FakeStore, Any]:
    store = FakeStore(state)
    ctx = fake_context(reports, store, mps)
    ctx.since = since
    ctx.report_wait = report_wait
    reports.clock = ctx.scheduler.clock
    res = result("sales_traffic")
    SalesTrafficStream().run(ctx, res)
    return store, res


def _figures(store: FakeStore) -> dict[tuple[str, str], tuple[int, str]]:
    """(dataset, marketplace) -> (units, currency) of every written row."""
    out = {}
    for name in ("sales_traffic_by_date", "sales_traffic_by_asin"):
        for row in store.written.get(name, []):
            assert (name, row["marketplace_id"]) not in out, "one row per marketplace and day"
            out[(name, row["marketplace_id"])] = (row["units_ordered"], row["currency"])
    return out


def _expected() -> dict[tuple[str, str], tuple[int, str]]:
    return {
        (name, mp): (units(mp, DAY), CURRENCY[mp])
        for name in ("sales_traffic_by_date", "sales_traffic_by_asin")
        for mp in (US, UK)
    }


def _pending(report_id: str, mp: str, day: dt.date = DAY) -> dict[str, Any]:
    return {key_of(mp, day): {"report_id": report_id, "request": request_of(mp, day)}}


def test_uninterrupted_run() -> None:
    reports = FakeReports()
    store, res = _run(reports, {})
    assert res.status == "ok" and res.reports_discarded == 0
    assert _figures(store) == _expected()
    assert store.state["pending"] == {}
    assert store.state["cursor"] == {US: DAY.isoformat(), UK: DAY.isoformat()}


def test_reports_in_flight_are_polled_on_the_injected_clock_then_resumed() -> None:
    reports = FakeReports()
    reports.delay = 100.0  # IN_PROGRESS for 100 s of the fake clock
    store, res = _run(reports, {}, report_wait=30.0)
    assert res.status == "pending" and res.reports_pending == 2 and not store.written
    kept = store.state["pending"]
    assert kept == {
        key_of(mp, DAY): {
            "report_id": kept[key_of(mp, DAY)]["report_id"],
            "request": request_of(mp, DAY),
        }
        for mp in (US, UK)
    }
    # the next run resumes them (the same ids, no new request) and waits them out
    created = list(reports.created)
    store, res = _run(reports, store.state, report_wait=1000.0)
    assert res.status == "ok" and reports.created == created
    assert _figures(store) == _expected()
    assert {r["report_id"] for r in store.written["sales_traffic_by_date"]} == {
        job["report_id"] for job in kept.values()
    }


def test_report_wait_bounds_the_whole_run_of_a_long_backfill() -> None:
    """`report_wait` is the run's total wait, not a timer that each finished report resets: a
    60-day backfill (four waves of MAX_IN_FLIGHT reports, 100 s each) with report_wait 150 s
    stops after ~150 s of waiting, leaving the wave in flight pending and the rest unrequested;
    the next run resumes those ids and requests the rest. All on the injected clock."""
    first = DAY - dt.timedelta(days=59)
    days = [first + dt.timedelta(days=i) for i in range(60)]
    reports = FakeReports()
    reports.delay = 100.0
    store, res = _run(reports, {}, (US,), report_wait=150.0, since=first)
    waited = reports.clock.now  # only the stream's sleeps move the injected clock
    assert waited <= 150.0 + POLL_INTERVAL, waited  # was ~4 x 100 s: every wave reset the timer
    assert res.status == "pending" and res.reports_pending == MAX_IN_FLIGHT
    assert len(reports.created) == 2 * MAX_IN_FLIGHT  # the rest never requested
    written = sorted(r["date"] for r in store.written["sales_traffic_by_date"])
    assert written == days[:MAX_IN_FLIGHT]
    assert store.state["cursor"] == {US: days[MAX_IN_FLIGHT - 1].isoformat()}
    kept = {job["report_id"] for job in store.state["pending"].values()}
    assert len(kept) == MAX_IN_FLIGHT
    # the next run resumes the pending ids and requests only the days never requested
    created = list(reports.created)
    rest = days[MAX_IN_FLIGHT]  # the first day not written (as the cursor would resume)
    store, res = _run(reports, store.state, (US,), report_wait=1000.0, since=rest)
    assert res.status == "ok" and store.state["pending"] == {}
    assert reports.created[: len(created)] == created and len(reports.created) == 60
    assert len(set(reports.created)) == 60  # no day asked twice
    assert sorted(r["date"] for r in store.written["sales_traffic_by_date"]) == days[MAX_IN_FLIGHT:]
    assert kept <= {r["report_id"] for r in store.written["sales_traffic_by_date"]}
    assert store.state["cursor"] == {US: DAY.isoformat()}


def test_a_pending_report_is_resumed_not_re_requested() -> None:
    reports = FakeReports()
    reports.add("R-US", request_of(US, DAY))
    store, res = _run(reports, {"pending": _pending("R-US", US)})
    assert reports.created == [key_of(UK, DAY)]
    assert _figures(store) == _expected() and res.reports_discarded == 0
    assert {r["report_id"] for r in store.written["sales_traffic_by_date"]} >= {"R-US"}


def test_a_stored_id_that_is_another_report_is_never_written() -> None:
    """The sandbox used to number reports from the same id in every process: the id kept for
    the UK day named a US report in the next process (UK rows in USD)."""
    reports = FakeReports()
    reports.add("R-1", request_of(US, DAY))
    store, res = _run(reports, {"pending": _pending("R-1", UK)})
    assert res.status == "ok" and res.reports_discarded == 1
    assert _figures(store) == _expected()
    assert sorted(reports.created) == sorted([key_of(US, DAY), key_of(UK, DAY)])
    assert "R-1" not in {r["report_id"] for r in store.written["sales_traffic_by_asin"]
                         if r["marketplace_id"] == UK}  # fmt: skip


def test_a_document_of_another_request_is_never_written() -> None:
    reports = FakeReports()
    reports.add("R-1", request_of(UK, DAY))
    reports.reports["R-1"]["document_of"] = request_of(US, DAY)  # getReport agrees, the doc not
    store, res = _run(reports, {"pending": _pending("R-1", UK)})
    assert res.reports_discarded == 1
    assert _figures(store) == _expected()


def test_a_vanished_report_is_re_requested_not_wedging_the_stream() -> None:
    reports = FakeReports()  # a new process: R-1 was never heard of here
    store, res = _run(reports, {"pending": _pending("R-1", US)})
    assert res.status == "ok" and res.reports_discarded == 1
    assert _figures(store) == _expected()
    assert store.state["pending"] == {}
    # and a document that vanished between getReport and the download
    reports = FakeReports()
    reports.add("R-2", request_of(US, DAY))
    original = reports.get_report_document

    def vanish_once(document_id: str, **kw: Any) -> Any:
        if document_id == "doc-R-2":
            reports.gone.add("R-2")
        return original(document_id, **kw)

    reports.get_report_document = vanish_once  # type: ignore[method-assign]
    store, res = _run(reports, {"pending": _pending("R-2", US)})
    assert res.status == "ok" and res.reports_discarded == 1
    assert _figures(store) == _expected()


def test_an_old_state_without_requests_is_re_requested() -> None:
    reports = FakeReports()
    reports.add("50000000001", request_of(US, DAY))
    store, res = _run(reports, {"pending": {key_of(UK, DAY): "50000000001"}})
    assert res.reports_discarded == 1
    assert _figures(store) == _expected()


def test_a_report_that_never_matches_fails_after_bounded_attempts() -> None:
    reports = FakeReports()
    original = reports.create_report

    def always_us(**body: Any) -> Any:
        return original(**{**body, "marketplaceIds": [US]})

    reports.create_report = always_us  # type: ignore[method-assign]
    store, res = _run(reports, {}, (UK,))
    assert res.status == "failed" and "discarded 3 times" in res.error
    assert res.reports_discarded == MAX_ATTEMPTS
    assert not store.written and store.state["pending"] == {}
    assert UK not in store.state["cursor"]


def test_check_report_and_document() -> None:
    request = request_of(UK, DAY)
    good = {
        "reportId": "1",
        "reportType": "GET_SALES_AND_TRAFFIC_REPORT",
        "marketplaceIds": [UK],
        "dataStartTime": f"{DAY}T00:00:00+00:00",
        "dataEndTime": f"{DAY}T23:59:59+00:00",
    }
    check_report(good, request)
    check_report({k: v for k, v in good.items() if k.startswith("report")}, request)
    pst = {**good, "dataStartTime": f"{DAY}T00:00:00-08:00", "dataEndTime": f"{DAY}T23:59:59-08:00"}
    check_report(pst, request)  # a marketplace's own zone is the same day
    for bad in (
        {**good, "marketplaceIds": [US]},
        {**good, "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"},
        {**good, "dataStartTime": f"{DAY - dt.timedelta(days=1)}T00:00:00Z"},
        {**good, "dataEndTime": f"{DAY + dt.timedelta(days=1)}T23:59:59Z"},
        {**good, "dataStartTime": "yesterday"},
    ):
        with pytest.raises(ReportMismatch):
            check_report(bad, request)
    doc = json.loads(document(UK, DAY, 3))
    check_document(doc, request, "1")
    for change in (
        {"marketplaceIds": [US]},
        {"dataStartTime": (DAY - dt.timedelta(days=1)).isoformat()},
        {"reportOptions": {"dateGranularity": "WEEK", "asinGranularity": "CHILD"}},
    ):
        other = {**doc, "reportSpecification": {**doc["reportSpecification"], **change}}
        with pytest.raises(ReportMismatch):
            check_document(other, request, "1")
    with pytest.raises(ReportMismatch):
        check_document({k: v for k, v in doc.items() if k != "reportSpecification"}, request, "1")
    shifted = json.loads(json.dumps(doc))
    shifted["salesAndTrafficByDate"][0]["date"] = (DAY - dt.timedelta(days=1)).isoformat()
    with pytest.raises(ReportMismatch):
        check_document(shifted, request, "1")


def test_reports_examples_go_through_the_stream_checks() -> None:
    """Amazon's example answers: createReport's id is taken; the example getReport (a
    FEE_DISCOUNTS_REPORT) is not a Sales & Traffic report of ours and is discarded."""
    (created,) = responses(REPORTS_MODEL, "createReport", "202")
    assert api_response(created).payload["reportId"] == "ID323"
    (example,) = responses(REPORTS_MODEL, "getReport")
    with pytest.raises(ReportMismatch):
        check_report(example, request_of(US, DAY))
    (doc,) = responses(REPORTS_MODEL, "getReportDocument")
    assert doc["url"].startswith("https://") and doc["reportDocumentId"]
    for operation in ("createReport", "getReport", "getReportDocument"):
        for body in responses(REPORTS_MODEL, operation, "400"):
            assert body["errors"]

    class ExampleReports(FakeReports):
        def get_report(self, report_id: str) -> Any:
            return api_response({**example, "reportId": report_id})

    store, res = _run(ExampleReports(), {"pending": _pending("ReportId1", US)}, (US,))
    assert res.status == "failed" and res.reports_discarded == 1 + MAX_ATTEMPTS
    assert not store.written


def test_parse_document_checks_before_adding_rows() -> None:
    collector = Collector(None, "sales_traffic", result("sales_traffic"))  # type: ignore[arg-type]
    with pytest.raises(ReportMismatch):
        parse_document(document(US, DAY, 3), UK, DAY, "1", collector)
    assert not collector.rows
    parse_document(document(UK, DAY, 3), UK, DAY, "1", collector)
    assert collector.rows["sales_traffic_by_date"][0]["currency"] == "GBP"
