"""GET_SALES_AND_TRAFFIC_REPORT -> sales_traffic_by_date and sales_traffic_by_asin.

One report per (marketplace, day) with CHILD ASIN granularity: a multi-day report aggregates its
ASIN rows over the whole period, so daily ASIN rows need daily reports. Lifecycle:
createReport -> poll getReport until DONE/FATAL/CANCELLED -> getReportDocument (GZIP, UTF-8).

Resumable: a report id is stored in the sync state the moment it is created and removed only
once its rows are written, so a restart (or a run that stops waiting) polls the same report
instead of requesting a new one. A FATAL report puts its (marketplace, day) in a cooldown
(30 minutes of API time) before it is requested again. Each run re-requests the last
`LOOKBACK_DAYS` days: Amazon revises recent Sales & Traffic figures.
"""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from amzigo_lab.source.client import MalformedResponse, download_document
from amzigo_lab.source.streams.base import (
    Collector,
    StreamContext,
    StreamResult,
    integer,
    money,
    number,
)

REPORT_TYPE = "GET_SALES_AND_TRAFFIC_REPORT"
LOOKBACK_DAYS = 3
FATAL_COOLDOWN = dt.timedelta(minutes=30)
MAX_IN_FLIGHT = 15
POLL_INTERVAL = 15.0  # seconds of API time between polls of one report


def key_of(marketplace_id: str, day: dt.date) -> str:
    """The sync-state key of one daily report."""
    return f"{marketplace_id}|{day.isoformat()}"


def parse_document(
    text: str, marketplace_id: str, day: dt.date, report_id: str, collector: Collector
) -> None:
    """Rows of one daily Sales & Traffic document."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise MalformedResponse(f"report {report_id}: document is not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("salesAndTrafficByDate"), list):
        raise MalformedResponse(f"report {report_id}: document has no salesAndTrafficByDate")

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
        pending: dict[str, str] = dict(state.get("pending") or {})
        cooldown: dict[str, str] = dict(state.get("cooldown") or {})
        cursors: dict[str, str] = dict(state.get("cursor") or {})
        wall = time.monotonic
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
        last_progress = wall()
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

        while queue or pending:
            while queue and len(pending) < MAX_IN_FLIGHT:
                mp, day = queue.pop(0)
                client = ctx.client(Reports, mp)
                body = {
                    "reportType": REPORT_TYPE,
                    "dataStartTime": day.isoformat(),
                    "dataEndTime": day.isoformat(),
                    "marketplaceIds": [mp],
                    "reportOptions": {"dateGranularity": "DAY", "asinGranularity": "CHILD"},
                }
                created = ctx.call("createReport", lambda c=client, b=body: c.create_report(**b))
                report_id = created.payload.get("reportId")
                if not isinstance(report_id, str):
                    raise MalformedResponse("createReport returned no reportId")
                pending[key_of(mp, day)] = report_id
                last_progress = wall()
                save()  # persisted before anything else can fail
            progressed = False
            for key, report_id in list(pending.items()):
                if key in unwritten or next_poll.get(key, 0.0) > wall():
                    continue
                mp, day_text = key.split("|")
                client = ctx.client(Reports, mp)
                report = ctx.call(
                    "getReport", lambda c=client, r=report_id: c.get_report(r)
                ).payload
                status = report.get("processingStatus")
                if status in ("IN_QUEUE", "IN_PROGRESS"):
                    next_poll[key] = wall() + poll_gap
                    continue
                progressed = True
                last_progress = wall()
                if status == "DONE":
                    document_id = report.get("reportDocumentId")
                    text = ctx.call(
                        "getReportDocument",
                        lambda c=client, d=document_id: download_document(c, d),
                    ).payload["document"]
                    parse_document(text, mp, dt.date.fromisoformat(day_text), report_id, collector)
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
                if wall() - last_progress > ctx.report_wait and not queue:
                    break  # leave them pending: the next run resumes these report ids
                ctx.scheduler.clock.sleep(min(poll_gap, 0.05 if scale > 1 else poll_gap))
        result.reports_pending = len(pending)
        if pending:
            result.status = "pending"
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
