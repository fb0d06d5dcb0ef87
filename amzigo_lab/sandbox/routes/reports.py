"""Reports API 2021-06-30: createReport, getReport, getReportDocument and the document download."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from ..documents import JSON_REPORT_TYPES, REPORT_TYPES, SALES_AND_TRAFFIC, ReportRequest
from ..errors import ApiError, invalid_input, not_found
from ..protocol import Call, JsonObject, Request, Response, Route
from ..services import Services
from ._common import iso, parse_time

DOWNLOAD_PREFIX = "/sandbox-documents/"
_DATE_GRANULARITY = ("DAY", "WEEK", "MONTH")
_ASIN_GRANULARITY = ("PARENT", "CHILD", "SKU")


def _time(body: JsonObject, name: str, default: datetime, end_of_day: bool) -> datetime:
    """``dataStartTime``/``dataEndTime`` of a request (a bare date end means end of that day)."""
    raw = body.get(name)
    if raw is None:
        return default
    if not isinstance(raw, str):
        raise invalid_input(f"{name} must be an ISO 8601 string.")
    value = parse_time(name, raw)
    if end_of_day and len(raw) == 10:
        value += timedelta(days=1, seconds=-1)
    return value


def create_report(call: Call) -> Response:
    """``POST /reports/2021-06-30/reports``."""
    body = call.request.json()
    report_type = body.get("reportType")
    if report_type not in REPORT_TYPES:
        raise invalid_input(f"Report type {report_type} is not supported by the sandbox.")
    ids = body.get("marketplaceIds") or body.get("MarketplaceIds")
    if not isinstance(ids, list) or not ids:
        raise invalid_input("marketplaceIds is required.")
    market = next((m for m in call.seller.marketplaces if m.marketplace_id in ids), None)
    if market is None:
        raise invalid_input("The seller is not registered in the requested marketplace(s).")
    world = call.services.world
    end = _time(body, "dataEndTime", world.now, end_of_day=True)
    start = _time(body, "dataStartTime", end - timedelta(days=30), end_of_day=False)
    if start > end:
        raise invalid_input("dataStartTime must be before dataEndTime.")
    options = body.get("reportOptions") or {}
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise invalid_input("reportOptions must map strings to strings.")
    if report_type == SALES_AND_TRAFFIC and (
        options.get("dateGranularity", "DAY") not in _DATE_GRANULARITY
        or options.get("asinGranularity", "PARENT") not in _ASIN_GRANULARITY
    ):
        raise invalid_input("Invalid reportOptions for GET_SALES_AND_TRAFFIC_REPORT.")
    request = ReportRequest(call.seller.tenant, report_type, market, start, end, dict(options))
    job = call.services.reports.create(request, fatal=call.services.faults.take_fatal())
    return Response.json({"reportId": job.report_id}, status=202)


def get_report(call: Call) -> Response:
    """``GET /reports/2021-06-30/reports/{reportId}``."""
    store = call.services.reports
    job = store.get(call.seller.tenant, call.request.path_params["reportId"])
    if job is None:
        raise not_found("Report not found.")
    state = store.state(job)
    body: JsonObject = {
        "reportId": job.report_id,
        "reportType": job.request.report_type,
        "marketplaceIds": [job.request.marketplace.marketplace_id],
        "dataStartTime": iso(job.request.start),
        "dataEndTime": iso(job.request.end),
        "createdTime": iso(job.created_at),
        "processingStatus": state.status,
    }
    if state.started_at is not None:
        body["processingStartTime"] = iso(state.started_at)
    if state.ended_at is not None:
        body["processingEndTime"] = iso(state.ended_at)
        body["reportDocumentId"] = job.document_id
    return Response.json(body)


def get_report_document(call: Call) -> Response:
    """``GET /reports/2021-06-30/documents/{reportDocumentId}`` with a pre-signed URL."""
    services = call.services
    document_id = call.request.path_params["reportDocumentId"]
    if services.reports.job_for_document(call.seller.tenant, document_id) is None:
        raise not_found("Report document not found.")
    expires = str(int(time.time() + services.document_url_lifetime))
    signature = services.sign(document_id, expires)
    url = (
        f"{services.base_url}{DOWNLOAD_PREFIX}{document_id}"
        f"?X-Amz-Expires={expires}&X-Amz-Signature={signature}"
    )
    return Response.json(
        {"reportDocumentId": document_id, "url": url, "compressionAlgorithm": "GZIP"}
    )


def download_document(services: Services, request: Request) -> Response:
    """Serve a document at its pre-signed URL (no auth header, like S3)."""
    document_id = request.path[len(DOWNLOAD_PREFIX) :]
    expires = request.param("X-Amz-Expires") or ""
    signature = request.param("X-Amz-Signature") or ""
    if not expires.isdigit() or signature != services.sign(document_id, expires):
        raise ApiError(403, "AccessDenied", "Request signature does not match.")
    if int(expires) < time.time():
        raise ApiError(403, "AccessDenied", "Request has expired.")
    data = services.reports.document(document_id)
    if data is None:
        raise not_found("No such document.")
    if services.faults.take_truncate():
        data = data[: max(10, len(data) // 2)]
    is_json = _is_json(services, document_id)
    content_type = "application/json" if is_json else "text/tab-separated-values"
    return Response(200, data, {"Content-Type": f"{content_type}; charset=UTF-8"})


def _is_json(services: Services, document_id: str) -> bool:
    """Whether the document is JSON (Sales & Traffic, account health or an error document)."""
    job = services.reports.job_by_document(document_id)
    return job is not None and (job.fatal or job.request.report_type in JSON_REPORT_TYPES)


ROUTES = (
    Route.of("POST", "/reports/2021-06-30/reports", "createReport", create_report),
    Route.of("GET", "/reports/2021-06-30/reports/{reportId}", "getReport", get_report),
    Route.of(
        "GET",
        "/reports/2021-06-30/documents/{reportDocumentId}",
        "getReportDocument",
        get_report_document,
    ),
)
