"""GET_SALES_AND_TRAFFIC_REPORT -> sales_traffic_by_date and sales_traffic_by_asin.

One report per (marketplace, day) with CHILD ASIN granularity: a multi-day report aggregates its
ASIN rows over the whole period, so daily ASIN rows need daily reports. Lifecycle:
createReport -> poll getReport until DONE/FATAL/CANCELLED -> getReportDocument (GZIP, UTF-8).

Resumable: a report id is stored in the sync state, with the request it was created for (report
type, marketplaces, data start/end, options), the moment it is created and removed only once its
rows are written, so a restart (or a run that stops waiting) polls the same report instead of
requesting a new one. A resumed report is trusted only after its getReport answer and then its
document's `reportSpecification` (and row dates) match that request; a mismatch, or a report or
document Amazon no longer has (404), is discarded (never written) and re-requested, at most
`MAX_ATTEMPTS` times per day and run. A FATAL report puts its (marketplace, day) in a cooldown
(30 minutes of API time) before it is requested again. Each run re-requests the last
`LOOKBACK_DAYS` days: Amazon revises recent Sales & Traffic figures. A run waits for reports
`report_wait` seconds in all (the sum of its waits, however many reports finish meanwhile), then
leaves the reports in flight pending and the days not yet requested for the next run.
"""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from amzigo_lab.source.client import (
    MalformedResponse,
    ReportMismatch,
    download_document,
)
from amzigo_lab.source.ratelimit import _status
from amzigo_lab.source.streams.base import (
    Collector,
    InvalidRecord,
    StreamContext,
    StreamResult,
    integer,
    money,
    number,
    ts,
)

REPORT_TYPE = "GET_SALES_AND_TRAFFIC_REPORT"
LOOKBACK_DAYS = 3
FATAL_COOLDOWN = dt.timedelta(minutes=30)
MAX_IN_FLIGHT = 15
POLL_INTERVAL = 15.0  # seconds of API time between polls of one report
OPTIONS = {"dateGranularity": "DAY", "asinGranularity": "CHILD"}
MAX_ATTEMPTS = 3  # reports requested for one (marketplace, day) in one run
_DAY = dt.timedelta(days=1)


def key_of(marketplace_id: str, day: dt.date) -> str:
    """The sync-state key of one daily report."""
    return f"{marketplace_id}|{day.isoformat()}"


def request_of(marketplace_id: str, day: dt.date) -> dict[str, Any]:
    """The createReport body of one daily report (also kept in the sync state with its id)."""
    return {
        "reportType": REPORT_TYPE,
        "marketplaceIds": [marketplace_id],
        "dataStartTime": day.isoformat(),
        "dataEndTime": day.isoformat(),
        "reportOptions": dict(OPTIONS),
    }


def _request_day(request: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (inclusive, end of day) of a request's dates, in UTC."""
    start = dt.datetime.combine(dt.date.fromisoformat(request["dataStartTime"]), dt.time(), dt.UTC)
    end = dt.datetime.combine(dt.date.fromisoformat(request["dataEndTime"]), dt.time(), dt.UTC)
    return start, end + _DAY - dt.timedelta(seconds=1)


def poll_report(
    ctx: StreamContext,
    marketplace_id: str,
    job: dict[str, Any],
    check: Callable[[dict[str, Any], dict[str, Any]], None],
) -> tuple[dict[str, Any] | None, str]:
    """getReport for a pending job, checked by `check` against the job's request: (the
    report, "") or (None, why it must be discarded and requested again: another report
    behind the id, or one Amazon no longer has (retention, another sandbox))."""
    from sp_api.api import Reports

    report_id = job["report_id"]
    client = ctx.client(Reports, marketplace_id)
    try:
        report = ctx.call("getReport", lambda: client.get_report(report_id)).payload
        check(report, job["request"])
    except ReportMismatch as exc:
        return None, str(exc)
    except Exception as exc:
        if _status(exc) != 404:
            raise
        return None, f"report {report_id} not found"
    return report, ""


def check_report(report: dict[str, Any], request: dict[str, Any]) -> None:
    """Raise ReportMismatch unless a getReport answer is a report of `request`.

    Times may be given in the marketplace's zone: a start or end more than a day away from the
    requested one (another day's report) is a mismatch.
    """
    rid = report.get("reportId")
    if report.get("reportType") != request["reportType"]:
        raise ReportMismatch(f"report {rid} is a {report.get('reportType')}")
    ids = report.get("marketplaceIds")
    if ids is not None and sorted(ids) != sorted(request["marketplaceIds"]):
        raise ReportMismatch(f"report {rid} is for marketplaces {ids}")
    for field, want in zip(("dataStartTime", "dataEndTime"), _request_day(request), strict=True):
        value = report.get(field)
        if value is None:
            continue
        try:
            got = ts(value)
        except (InvalidRecord, ValueError):
            raise ReportMismatch(f"report {rid} has {field} {value!r}") from None
        if got is None or abs(got - want) >= _DAY:
            raise ReportMismatch(f"report {rid} has {field} {value}, requested {want:%Y-%m-%d}")


def check_document(doc: dict[str, Any], request: dict[str, Any], report_id: str) -> None:
    """Raise ReportMismatch unless a document's reportSpecification (and dates) match `request`."""
    spec = doc.get("reportSpecification")
    if not isinstance(spec, dict):
        raise ReportMismatch(f"report {report_id}: document has no reportSpecification")
    got = {
        "reportType": spec.get("reportType"),
        "marketplaceIds": sorted(spec.get("marketplaceIds") or []),
        "dataStartTime": str(spec.get("dataStartTime"))[:10],
        "dataEndTime": str(spec.get("dataEndTime"))[:10],
        "reportOptions": {k: (spec.get("reportOptions") or {}).get(k) for k in OPTIONS},
    }
    want = {**request, "marketplaceIds": sorted(request["marketplaceIds"])}
    want["reportOptions"] = {k: request["reportOptions"].get(k) for k in OPTIONS}
    if got != want:
        diff = sorted(k for k in want if got[k] != want[k])
        raise ReportMismatch(
            f"report {report_id}: document is for another request "
            + ", ".join(f"{k}={got[k]}" for k in diff)
        )
    days = {
        row.get("date") for row in doc.get("salesAndTrafficByDate") or [] if isinstance(row, dict)
    }
    if days - {request["dataStartTime"]}:
        raise ReportMismatch(f"report {report_id}: document has rows of {sorted(map(str, days))}")


def parse_document(
    text: str,
    marketplace_id: str,
    day: dt.date,
    report_id: str,
    collector: Collector,
    request: dict[str, Any] | None = None,
) -> None:
    """Rows of one daily Sales & Traffic document, once it is checked to be `request`'s."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise MalformedResponse(f"report {report_id}: document is not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("salesAndTrafficByDate"), list):
        raise MalformedResponse(f"report {report_id}: document has no salesAndTrafficByDate")
    check_document(doc, request or request_of(marketplace_id, day), report_id)

    def by_date(row: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        sales, traffic = row["salesByDate"], row["trafficByDate"]
        ordered = sales.get("orderedProductSales") or {}
        return {
            "sales_traffic_by_date": [
                {
                    "date": dt.date.fromisoformat(row["date"]),
                    "marketplace_id": marketplace_id,
                    "report_id": report_id,
                    "ordered_product_sales": money(ordered.get("amount")),
                    "currency": ordered.get("currencyCode"),
                    "units_ordered": integer(sales.get("unitsOrdered")),
                    "total_order_items": integer(sales.get("totalOrderItems")),
                    "units_refunded": integer(sales.get("unitsRefunded")),
                    "refund_rate": number(sales.get("refundRate")),
                    "sessions": integer(traffic.get("sessions")),
                    "page_views": integer(traffic.get("pageViews")),
                    "buy_box_percentage": number(traffic.get("buyBoxPercentage")),
                    "unit_session_percentage": number(traffic.get("unitSessionPercentage")),
                }
            ]
        }

    def by_asin(row: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        sales, traffic = row.get("salesByAsin") or {}, row.get("trafficByAsin") or {}
        ordered = sales.get("orderedProductSales") or {}
        return {
            "sales_traffic_by_asin": [
                {
                    "date": day,
                    "marketplace_id": marketplace_id,
                    "report_id": report_id,
                    "parent_asin": row.get("parentAsin"),
                    "child_asin": row.get("childAsin") or row.get("parentAsin"),
                    "sku": row.get("sku"),
                    "units_ordered": integer(sales.get("unitsOrdered")),
                    "ordered_product_sales": money(ordered.get("amount")),
                    "currency": ordered.get("currencyCode"),
                    "total_order_items": integer(sales.get("totalOrderItems")),
                    "sessions": integer(traffic.get("sessions")),
                    "page_views": integer(traffic.get("pageViews")),
                    "buy_box_percentage": number(traffic.get("buyBoxPercentage")),
                    "unit_session_percentage": number(traffic.get("unitSessionPercentage")),
                }
            ]
        }

    for row in doc["salesAndTrafficByDate"]:
        collector.add("sales_traffic_by_date", row, lambda r=row: by_date(r))
    for row in doc.get("salesAndTrafficByAsin") or []:
        collector.add("sales_traffic_by_asin", row, lambda r=row: by_asin(r))


class SalesTrafficStream:
    """Daily Sales & Traffic reports per marketplace, resumable across runs."""

    name = "sales_traffic"
    datasets = ("sales_traffic_by_date", "sales_traffic_by_asin")

    def _days(self, ctx: StreamContext, cursor: str | None) -> list[dt.date]:
        last = ctx.now.date() - dt.timedelta(days=1)
        if ctx.since is not None:
            first = ctx.since
        elif cursor:
            first = dt.date.fromisoformat(cursor) - dt.timedelta(days=LOOKBACK_DAYS - 1)
        else:
            first = ctx.now.date() - dt.timedelta(days=ctx.backfill_days)
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]

    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """Resume pending reports, request missing days, write finished ones."""
        from sp_api.api import Reports

        state = ctx.store.get_state(ctx.tenant, self.name)
        pending: dict[str, dict[str, Any]] = {
            k: _job(v) for k, v in (state.get("pending") or {}).items()
        }
        cooldown: dict[str, str] = dict(state.get("cooldown") or {})
        cursors: dict[str, str] = dict(state.get("cursor") or {})
        wall = ctx.scheduler.clock.monotonic  # the injected clock (tests: no wall-clock waits)
        scale = max(ctx.time_scale, 1e-9)
        now_api = dt.datetime.now(dt.UTC)  # cooldowns are in (scaled) wall-clock time
        wanted: list[tuple[str, dt.date]] = []
        for mp in ctx.marketplaces:
            for day in self._days(ctx, cursors.get(mp)):
                key = key_of(mp, day)
                until = cooldown.get(key)
                if key in pending:
                    continue
                if until and dt.datetime.fromisoformat(until) > now_api:
                    result.reports_fatal += 1
                    continue
                wanted.append((mp, day))
        considered = {key_of(mp, day) for mp, day in wanted} | set(pending)
        done: set[str] = set()
        failed: set[str] = set()
        attempts: dict[str, int] = {}
        problems: list[str] = []
        waited = 0.0  # seconds this run has slept waiting for reports (report_wait bounds it)
        next_poll: dict[str, float] = {}
        poll_gap = POLL_INTERVAL / scale
        queue = list(wanted)
        floor = min((dt.date.fromisoformat(k.split("|")[1]) for k in considered), default=None)
        floors = {name: floor for name in self.datasets}
        collector = Collector(ctx, self.name, result)
        unwritten: list[str] = []  # finished reports whose rows are not written yet

        def save() -> None:
            ctx.store.update_state(
                ctx.tenant, self.name, {"pending": pending, "cooldown": cooldown}
            )
            ctx.emit(self.name, "reports_pending", len(pending))

        def discard(key: str, why: str) -> None:
            """Forget a report that is gone or not the one requested; ask again (bounded)."""
            del pending[key]
            next_poll.pop(key, None)
            result.reports_discarded += 1
            mp, day_text = key.split("|")
            if attempts.get(key, 0) < MAX_ATTEMPTS:
                queue.append((mp, dt.date.fromisoformat(day_text)))
            else:
                failed.add(key)
                problems.append(why)
            save()

        for key, job in list(pending.items()):  # a request this code would not make: ask again
            mp, day_text = key.split("|")
            if job["request"] != request_of(mp, dt.date.fromisoformat(day_text)):
                discard(key, f"report {job['report_id']} was requested differently")

        while queue or pending:
            while queue and len(pending) < MAX_IN_FLIGHT:
                mp, day = queue.pop(0)
                key = key_of(mp, day)
                client = ctx.client(Reports, mp)
                body = request_of(mp, day)
                created = ctx.call("createReport", lambda c=client, b=body: c.create_report(**b))
                report_id = created.payload.get("reportId")
                if not isinstance(report_id, str):
                    raise MalformedResponse("createReport returned no reportId")
                attempts[key] = attempts.get(key, 0) + 1
                pending[key] = {"report_id": report_id, "request": body}
                save()  # persisted before anything else can fail
            progressed = False
            for key, job in list(pending.items()):
                if key in unwritten or next_poll.get(key, 0.0) > wall():
                    continue
                mp, day_text = key.split("|")
                report_id, request = job["report_id"], job["request"]
                report, why = poll_report(ctx, mp, job, check_report)
                if report is None:
                    progressed = True
                    discard(key, why)
                    continue
                status = report.get("processingStatus")
                if status in ("IN_QUEUE", "IN_PROGRESS"):
                    next_poll[key] = wall() + poll_gap
                    continue
                progressed = True
                if status == "DONE":
                    client = ctx.client(Reports, mp)
                    document_id = report.get("reportDocumentId")
                    try:
                        text = ctx.call(
                            "getReportDocument",
                            lambda c=client, d=document_id: download_document(c, d),
                        ).payload["document"]
                        parse_document(
                            text, mp, dt.date.fromisoformat(day_text), report_id, collector,
                            request,
                        )  # fmt: skip
                    except ReportMismatch as exc:
                        discard(key, str(exc))
                        continue
                    except Exception as exc:
                        if _status(exc) != 404:
                            raise
                        discard(key, f"document of report {report_id} not found")
                        continue
                    unwritten.append(key)
                    continue
                # FATAL or CANCELLED: cool down before asking again
                cool_until = dt.datetime.now(dt.UTC) + FATAL_COOLDOWN / scale
                cooldown[key] = cool_until.isoformat()
                result.reports_fatal += 1
                failed.add(key)
                del pending[key]
                save()
            if unwritten and (len(unwritten) >= MAX_IN_FLIGHT or not progressed or not queue):
                collector.flush(floors, force=True)  # rows first, then forget the report ids
                for key in unwritten:
                    done.add(key)
                    del pending[key]
                unwritten.clear()
                save()
            if pending and not progressed:
                if waited > ctx.report_wait:
                    break  # leave them pending (the next run resumes these ids), the queue too
                slept = wall()
                ctx.scheduler.clock.sleep(min(poll_gap, 0.05 if scale > 1 else poll_gap))
                waited += wall() - slept
        result.reports_pending = len(pending)
        if pending:
            result.status = "pending"
        if problems:
            result.status = "failed"
            result.error = (
                f"{len(problems)} report(s) discarded {MAX_ATTEMPTS} times: {problems[0]}"
            )
        # advance each marketplace's cursor over the days that are complete in order
        for mp in ctx.marketplaces:
            days = [
                dt.date.fromisoformat(k.split("|")[1]) for k in considered if k.startswith(mp + "|")
            ]
            cursor = cursors.get(mp)
            for day in sorted(set(days)):
                if key_of(mp, day) not in done:
                    break
                cursor = max(cursor or "", day.isoformat())
            if cursor:
                cursors[mp] = cursor
        cooldown = {
            k: v
            for k, v in cooldown.items()
            if dt.datetime.fromisoformat(v) > dt.datetime.now(dt.UTC)
        }
        ctx.store.update_state(
            ctx.tenant, self.name, {"pending": pending, "cooldown": cooldown, "cursor": cursors}
        )


def _job(value: Any) -> dict[str, Any]:
    """A pending report of the sync state; an id alone (older states) has no known request."""
    if isinstance(value, dict) and isinstance(value.get("report_id"), str):
        return {"report_id": value["report_id"], "request": value.get("request")}
    return {"report_id": str(value), "request": None}
