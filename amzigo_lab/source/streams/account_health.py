"""GET_V2_SELLER_PERFORMANCE_REPORT (account health, JSON) -> account_health_metrics,
account_health_violations and account_health_rating.

The report takes no dates: Amazon computes each metric over its own trailing window (ODR 60
days, late shipment 30, pre-fulfilment cancellation 7, ...). One report per marketplace per
ingest day; each run adds the windows it reports, so the history of windows builds up and the
report and dashboard can see a metric worsening from one window to the next.

Durable report jobs, with the rules of the Sales & Traffic stream (and its helpers): the report
id is stored in the sync state with the request it was created for before anything else can
fail, and removed only once its rows are written; a restart polls the same report instead of
requesting a new one. A resumed report is trusted only after its getReport answer matches the
request (`sales_traffic.check_report` rules: type, marketplaces) and its document is about the
requested marketplace only (`check_document`); a mismatch, or a report or document Amazon no
longer has (404), is discarded (never written) and re-requested, at most `MAX_ATTEMPTS` times
per marketplace and run. A FATAL report cools its marketplace down for 30 minutes of API time.

A newly ingested window that breaches Amazon's target is audited as `account_health.breach`
(ids, metric, rate and target only): the gateway's alert rule `account_health_breach` delivers
it through the configured alert sinks.
"""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from amzigo_lab.source.client import MalformedResponse, download_document
from amzigo_lab.source.ratelimit import _status
from amzigo_lab.source.streams.base import (
    Collector,
    InvalidRecord,
    StreamContext,
    StreamResult,
    integer,
    number,
    ts,
)
from amzigo_lab.source.streams.sales_traffic import (
    FATAL_COOLDOWN,
    MAX_ATTEMPTS,
    MAX_IN_FLIGHT,
    POLL_INTERVAL,
    ReportMismatch,
    _job,
    poll_report,
)

REPORT_TYPE = "GET_V2_SELLER_PERFORMANCE_REPORT"
METRICS_DATASET = "account_health_metrics"
VIOLATIONS_DATASET = "account_health_violations"
RATING_DATASET = "account_health_rating"
#: Document key -> metric name in the dataset (rate metrics).
RATE_METRICS = {
    "lateShipmentRate": "late_shipment_rate",
    "preFulfillmentCancellationRate": "pre_fulfillment_cancellation_rate",
    "validTrackingRate": "valid_tracking_rate",
    "onTimeDeliveryRate": "on_time_delivery_rate",
    "unitOnTimeDeliveryRate": "unit_on_time_delivery_rate",
    "invoiceDefectRate": "invoice_defect_rate",
}
#: (defects, total) fields of each rate metric.
_COUNTS = {
    "lateShipmentRate": ("lateShipmentCount", "orderCount"),
    "preFulfillmentCancellationRate": ("cancellationCount", "orderCount"),
    "validTrackingRate": ("validTrackingCount", "shipmentCount"),
    "onTimeDeliveryRate": ("onTimeDeliveryCount", "shipmentCountWithValidTracking"),
    "unitOnTimeDeliveryRate": ("unitOnTimeDeliveryCount", "totalUnitCount"),
    "invoiceDefectRate": ("invoiceDefect.count", "orderCount"),
}
VIOLATION_KEYS = (
    "listingPolicyViolations",
    "productAuthenticityCustomerComplaints",
    "productConditionCustomerComplaints",
    "productSafetyCustomerComplaints",
    "receivedIntellectualPropertyComplaints",
    "restrictedProductPolicyViolations",
    "suspectedIntellectualPropertyViolations",
    "foodAndProductSafetyIssues",
    "otherPolicyViolations",
    "documentRequests",
)
#: Amazon's published targets (used when a document omits one): metric -> (value, condition).
TARGETS: dict[str, tuple[float, str]] = {
    "order_defect_rate": (0.01, "LESS_THAN"),
    "late_shipment_rate": (0.04, "LESS_THAN"),
    "pre_fulfillment_cancellation_rate": (0.025, "LESS_THAN"),
    "valid_tracking_rate": (0.95, "GREATER_THAN"),
    "on_time_delivery_rate": (0.9, "GREATER_THAN"),
}


def request_of(marketplace_id: str) -> dict[str, Any]:
    """The createReport body of one marketplace's report (kept in the sync state with its id)."""
    return {"reportType": REPORT_TYPE, "marketplaceIds": [marketplace_id]}


def check_report(report: dict[str, Any], request: dict[str, Any]) -> None:
    """Raise ReportMismatch unless a getReport answer is a report of `request`."""
    rid = report.get("reportId")
    if report.get("reportType") != request["reportType"]:
        raise ReportMismatch(f"report {rid} is a {report.get('reportType')}")
    ids = report.get("marketplaceIds")
    if ids is not None and sorted(ids) != sorted(request["marketplaceIds"]):
        raise ReportMismatch(f"report {rid} is for marketplaces {ids}")


def check_document(doc: dict[str, Any], request: dict[str, Any], report_id: str) -> None:
    """Raise ReportMismatch unless every entry of the document is about the requested
    marketplace(s) (the document carries no report specification)."""
    wanted = set(request["marketplaceIds"])
    got = {
        e.get("marketplaceId")
        for key in ("performanceMetrics", "accountStatuses")
        for e in doc.get(key) or []
        if isinstance(e, dict)
    }
    if got - wanted:
        raise ReportMismatch(
            f"report {report_id}: document is about marketplaces {sorted(map(str, got))}"
        )


def is_breach(rate: float | None, target: float | None, condition: str | None) -> bool:
    """Whether `rate` misses its target (LESS_THAN: must stay below; GREATER_THAN: above)."""
    if rate is None or target is None:
        return False
    if condition == "LESS_THAN":
        return rate >= target
    if condition == "GREATER_THAN":
        return rate <= target
    if condition == "EQUALS":
        return rate != target
    return False


def _window(node: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    rng = node.get("reportingDateRange")
    if not isinstance(rng, dict):
        raise InvalidRecord("reportingDateRange is missing")
    start, end = ts(rng.get("reportingDateFrom")), ts(rng.get("reportingDateTo"))
    if start is None or end is None:
        raise InvalidRecord("reportingDateRange has no dates")
    return start, end


def _field(node: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None  # type: ignore[assignment]
    return node


def _rate_row(
    node: dict[str, Any], mp: str, metric: str, channel: str, report_id: str, fetched: dt.datetime
) -> dict[str, Any]:
    start, end = _window(node)
    return {
        "marketplace_id": mp,
        "metric": metric,
        "fulfillment_channel": channel,
        "window_start": start,
        "window_end": end,
        "fetched_at": fetched,
        "report_id": report_id,
        "rate": number(node.get("rate")),
        "target_value": number(node.get("targetValue")),
        "target_condition": node.get("targetCondition"),
        "status": node.get("status"),
    }


def map_entry(
    entry: dict[str, Any], report_id: str, fetched: dt.datetime
) -> dict[str, list[dict[str, Any]]]:
    """The rows of one marketplace's performanceMetrics entry."""
    mp = entry["marketplaceId"]
    if not isinstance(mp, str) or not mp:
        raise InvalidRecord("marketplaceId is missing")
    metrics = []
    for channel, node in sorted((entry.get("orderDefectRate") or {}).items()):
        if not isinstance(node, dict):
            continue
        row = _rate_row(node, mp, "order_defect_rate", channel, report_id, fetched)
        row.update(
            defects=integer(_field(node, "orderWithDefects.count")),
            total=integer(node.get("orderCount")),
            claims=integer(_field(node, "claims.count")),
            chargebacks=integer(_field(node, "chargebacks.count")),
            negative_feedback=integer(_field(node, "negativeFeedback.count")),
        )
        metrics.append(row)
    for key, metric in RATE_METRICS.items():
        node = entry.get(key)
        if not isinstance(node, dict):
            continue
        row = _rate_row(node, mp, metric, "all", report_id, fetched)
        part, whole = _COUNTS[key]
        row.update(defects=integer(_field(node, part)), total=integer(_field(node, whole)))
        metrics.append(row)
    violations = []
    for key in VIOLATION_KEYS:
        node = entry.get(key)
        if not isinstance(node, dict):
            continue
        start, end = _window(node)
        violations.append(
            {
                "marketplace_id": mp,
                "violation": key,
                "window_start": start,
                "window_end": end,
                "fetched_at": fetched,
                "report_id": report_id,
                "defects_count": integer(node.get("defectsCount")),
                "target_value": number(node.get("targetValue")),
                "target_condition": node.get("targetCondition"),
                "status": node.get("status"),
            }
        )
    ahr = entry.get("accountHealthRating") or {}
    rating = []
    if isinstance(ahr, dict) and ahr:
        start, end = _window(ahr)
        for warning in entry.get("warningStates") or []:
            if isinstance(warning, dict) and warning.get("warningType"):
                violations.append(
                    {
                        "marketplace_id": mp,
                        "violation": f"warning:{warning['warningType']}",
                        "window_start": start,
                        "window_end": end,
                        "fetched_at": fetched,
                        "report_id": report_id,
                        "defects_count": None,
                        "target_value": None,
                        "target_condition": None,
                        "status": warning.get("status"),
                    }
                )
        rating.append(
            {
                "marketplace_id": mp,
                "window_start": start,
                "window_end": end,
                "fetched_at": fetched,
                "report_id": report_id,
                "account_status": None,
                # the schema requires `ahrStatus`; it also describes `accountHealthRatingStatus`
                "ahr_status": ahr.get("ahrStatus") or ahr.get("accountHealthRatingStatus"),
            }
        )
    return {
        METRICS_DATASET: metrics,
        VIOLATIONS_DATASET: violations,
        RATING_DATASET: rating,
    }


def parse_document(
    text: str,
    request: dict[str, Any],
    report_id: str,
    collector: Collector,
    fetched: dt.datetime,
) -> list[dict[str, Any]]:
    """Collect the rows of one account-health document once it is checked to be `request`'s;
    return its rate-metric rows (for the breach check)."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise MalformedResponse(f"report {report_id}: document is not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("performanceMetrics"), list):
        raise MalformedResponse(f"report {report_id}: document has no performanceMetrics")
    check_document(doc, request, report_id)
    status = {
        s.get("marketplaceId"): s.get("status")
        for s in doc.get("accountStatuses") or []
        if isinstance(s, dict)
    }

    def build(entry: Any) -> dict[str, list[dict[str, Any]]]:
        if not isinstance(entry, dict):
            raise InvalidRecord("performanceMetrics entry is not an object")
        built = map_entry(entry, report_id, fetched)
        for r in built[RATING_DATASET]:
            r["account_status"] = status.get(r["marketplace_id"])
        return built

    for entry in doc["performanceMetrics"]:
        collector.add(METRICS_DATASET, entry, lambda e=entry: build(e))
    return list(collector.rows.get(METRICS_DATASET, []))


def breaches(rows: list[dict[str, Any]], known: set[tuple[str, str, str, str]]) -> list[str]:
    """Reasons for the newly ingested windows (not in `known`) that breach a target."""
    out = []
    for r in rows:
        ident = (r["marketplace_id"], r["metric"], r["fulfillment_channel"], _day(r["window_end"]))
        if ident in known or r["metric"] not in TARGETS:
            continue
        target, condition = TARGETS[r["metric"]]
        target = r["target_value"] if r["target_value"] is not None else target
        condition = r["target_condition"] or condition
        if is_breach(r["rate"], target, condition):
            sign = "<" if condition == "LESS_THAN" else ">"
            channel = "" if r["fulfillment_channel"] == "all" else f" ({r['fulfillment_channel']})"
            out.append(
                f"{r['marketplace_id']} {r['metric']}{channel} {r['rate'] * 100:.2f}% misses "
                f"target {sign} {target * 100:g}% (window to {ident[3]})"
            )
    return out


def _day(moment: Any) -> str:
    return moment.date().isoformat() if isinstance(moment, dt.datetime) else str(moment)[:10]


class AccountHealthStream:
    """One seller-performance report per marketplace and day, resumable across runs."""

    name = "account_health"
    datasets = (METRICS_DATASET, VIOLATIONS_DATASET, RATING_DATASET)

    def _known(self, ctx: StreamContext) -> set[tuple[str, str, str, str]]:
        table = ctx.store.column(
            METRICS_DATASET, ctx.tenant, ["marketplace_id", "metric", "fulfillment_channel",
                                          "window_end"],
        )  # fmt: skip
        return {
            (r["marketplace_id"], r["metric"], r["fulfillment_channel"], _day(r["window_end"]))
            for r in table.to_pylist()
        }

    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """Resume pending reports, request today's, write finished ones, audit breaches."""
        from sp_api.api import Reports

        state = ctx.store.get_state(ctx.tenant, self.name)
        pending: dict[str, dict[str, Any]] = {
            k: _job(v) for k, v in (state.get("pending") or {}).items()
        }
        cooldown: dict[str, str] = dict(state.get("cooldown") or {})
        fetched_on: dict[str, str] = dict(state.get("fetched_on") or {})
        wall = ctx.scheduler.clock.monotonic
        scale = max(ctx.time_scale, 1e-9)
        today = ctx.today.isoformat()
        queue: list[str] = []
        for mp in ctx.marketplaces:
            until = cooldown.get(mp)
            if mp in pending or fetched_on.get(mp) == today:
                continue
            if until and dt.datetime.fromisoformat(until) > dt.datetime.now(dt.UTC):
                result.reports_fatal += 1
                continue
            queue.append(mp)
        attempts: dict[str, int] = {}
        problems: list[str] = []
        next_poll: dict[str, float] = {}
        poll_gap = POLL_INTERVAL / scale
        last_progress = wall()
        known = self._known(ctx)

        def save() -> None:
            ctx.store.update_state(
                ctx.tenant, self.name, {"pending": pending, "cooldown": cooldown}
            )
            ctx.emit(self.name, "reports_pending", len(pending))

        def discard(mp: str, why: str) -> None:
            del pending[mp]
            next_poll.pop(mp, None)
            result.reports_discarded += 1
            if attempts.get(mp, 0) < MAX_ATTEMPTS:
                queue.append(mp)
            else:
                problems.append(why)
            save()

        for mp, job in list(pending.items()):  # a request this code would not make: ask again
            if job["request"] != request_of(mp):
                discard(mp, f"report {job['report_id']} was requested differently")

        while queue or pending:
            while queue and len(pending) < MAX_IN_FLIGHT:
                mp = queue.pop(0)
                client = ctx.client(Reports, mp)
                body = request_of(mp)
                created = ctx.call("createReport", lambda c=client, b=body: c.create_report(**b))
                report_id = created.payload.get("reportId")
                if not isinstance(report_id, str):
                    raise MalformedResponse("createReport returned no reportId")
                attempts[mp] = attempts.get(mp, 0) + 1
                pending[mp] = {"report_id": report_id, "request": body}
                last_progress = wall()
                save()  # persisted before anything else can fail
            progressed = False
            for mp, job in list(pending.items()):
                if next_poll.get(mp, 0.0) > wall():
                    continue
                report_id, request = job["report_id"], job["request"]
                report, why = poll_report(ctx, mp, job, check_report)
                if report is None:
                    progressed = True
                    discard(mp, why)
                    continue
                status = report.get("processingStatus")
                if status in ("IN_QUEUE", "IN_PROGRESS"):
                    next_poll[mp] = wall() + poll_gap
                    continue
                progressed = True
                last_progress = wall()
                if status == "DONE":
                    collector = Collector(ctx, self.name, result)
                    client = ctx.client(Reports, mp)
                    document_id = report.get("reportDocumentId")
                    try:
                        text = ctx.call(
                            "getReportDocument",
                            lambda c=client, d=document_id: download_document(c, d),
                        ).payload["document"]
                        rows = parse_document(text, request, report_id, collector, ctx.now)
                    except ReportMismatch as exc:
                        discard(mp, str(exc))
                        continue
                    except Exception as exc:
                        if _status(exc) != 404:
                            raise
                        discard(mp, f"document of report {report_id} not found")
                        continue
                    collector.flush(force=True)  # rows first, then forget the report id
                    for reason in breaches(rows, known):
                        ctx.store.audit(
                            "account_health.breach",
                            actor="system:ingest",
                            resource=f"account_health:{mp}",
                            tenant=ctx.tenant,
                            decision="info",
                            reason=reason,
                        )
                    known |= {
                        (r["marketplace_id"], r["metric"], r["fulfillment_channel"],
                         _day(r["window_end"]))
                        for r in rows
                    }  # fmt: skip
                    del pending[mp]
                    fetched_on[mp] = today
                    ctx.store.update_state(
                        ctx.tenant,
                        self.name,
                        {"pending": pending, "cooldown": cooldown, "fetched_on": fetched_on},
                    )
                    continue
                # FATAL or CANCELLED: cool down before asking again
                cooldown[mp] = (dt.datetime.now(dt.UTC) + FATAL_COOLDOWN / scale).isoformat()
                result.reports_fatal += 1
                del pending[mp]
                save()
            if pending and not progressed:
                if wall() - last_progress > ctx.report_wait and not queue:
                    break  # leave them pending: the next run resumes these report ids
                ctx.scheduler.clock.sleep(min(poll_gap, 0.05 if scale > 1 else poll_gap))
        result.reports_pending = len(pending)
        if pending:
            result.status = "pending"
        if problems:
            result.status = "failed"
            result.error = (
                f"{len(problems)} report(s) discarded {MAX_ATTEMPTS} times: {problems[0]}"
            )
        cooldown = {
            k: v
            for k, v in cooldown.items()
            if dt.datetime.fromisoformat(v) > dt.datetime.now(dt.UTC)
        }
        ctx.store.update_state(
            ctx.tenant,
            self.name,
            {"pending": pending, "cooldown": cooldown, "fetched_on": fetched_on},
        )
