"""The Amazon Ads API of the sandbox: its own LWA grant, profiles and reporting v3.

Served by the same HTTPS server as the SP-API (the server hands every Ads request here first):
- `POST /auth/o2/token` with an Ads refresh token (client `sandbox-ads-client-id`, scope
  `advertising::campaign_management`): Ads access tokens, which the SP-API routes do not accept
  (and SP-API tokens are refused here);
- `GET /v2/profiles`: one profile per marketplace of the seller;
- `POST /reporting/reports` (v3 content type or JSON), `GET /reporting/reports/{reportId}`:
  the report lifecycle, 425 naming the in-progress report for a duplicate request;
- `GET /ads-reports/{reportId}?X-Amz-Expires&X-Amz-Signature`: the pre-signed GZIP download.
Every call needs `Authorization: Bearer`, `Amazon-Advertising-API-ClientId` and (reporting)
`Amazon-Advertising-API-Scope: <profileId>` of the caller's own profile. Throttling per
(seller, operation) answers 429 with `Retry-After` (seconds of API time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from ..ads import (
    ADS_CLIENT_ID,
    ADS_CLIENT_SECRET,
    ADS_SCOPE,
    AdsReportStore,
    AdsRequestError,
    Profile,
    profiles,
    validate_request,
)
from ..protocol import Request, Response
from ..ratelimit import RateLimiter
from ..tenants import SELLERS, Seller
from ..world import World

LWA_PATH = "/auth/o2/token"
log = logging.getLogger(__name__)
DOWNLOAD_PREFIX = "/ads-reports/"
V3_CONTENT_TYPE = "application/vnd.createasyncreportrequest.v3+json"
#: Ads limits are not published; the sandbox enforces these (the client schedules within them).
ADS_PLANS: dict[str, tuple[float, int]] = {
    "adsListProfiles": (1.0, 5),
    "adsCreateReport": (1.0, 5),
    "adsGetReport": (2.0, 10),
    "adsDownloadReport": (2.0, 10),
}


def ads_refresh_token(seller: Seller) -> str:
    """The Ads refresh token of a sandbox seller (distinct from its SP-API token)."""
    return f"sandbox-ads-refresh-{seller.tenant}"


class AdsError(Exception):
    """An Ads API error answer."""

    def __init__(self, status: int, code: str, details: str, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code}: {details}")
        self.status, self.code, self.details = status, code, details
        self.headers = headers or {}

    def response(self) -> Response:
        """The JSON error answer (`code` and `details`, as the Ads API gives them)."""
        body = json.dumps({"code": self.code, "details": self.details}).encode("utf-8")
        return Response(self.status, body, {"Content-Type": "application/json", **self.headers})


class AdsApi:
    """Ads endpoints of one sandbox server."""

    def __init__(
        self,
        world: World,
        time_scale: float | None,
        base_url: Callable[[], str],
        count: Callable[[str, str], None] | None = None,
        token_lifetime: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.world = world
        self.time_scale = time_scale
        self.reports = AdsReportStore(world, time_scale, clock=clock)
        self.limiter = RateLimiter(time_scale, ADS_PLANS)
        self._base_url = base_url
        self._count = count or (lambda counter, op: None)
        self._token_lifetime = token_lifetime
        self._clock = clock
        self._tokens: dict[str, tuple[Seller, float]] = {}
        self._lock = threading.Lock()
        self._secret = secrets.token_bytes(32)
        self._by_refresh = {ads_refresh_token(s): s for s in SELLERS}
        self._profiles = {s.tenant: profiles(world, s) for s in SELLERS}

    # -- dispatch ------------------------------------------------------------------------------
    def handles(self, request: Request) -> bool:
        """Whether `request` is an Ads API request (or an LWA exchange of an Ads token)."""
        path = request.path
        if path.startswith(("/v2/profiles", "/reporting/reports", DOWNLOAD_PREFIX)):
            return True
        if request.method == "POST" and path == LWA_PATH:
            form = parse_qs(request.body.decode("utf-8", "replace"))
            return form.get("refresh_token", [""])[0] in self._by_refresh
        return False

    def handle(self, request: Request) -> Response:
        """Answer one Ads request."""
        try:
            if request.path == LWA_PATH:
                return self._lwa(request)
            if request.method == "GET" and request.path.startswith(DOWNLOAD_PREFIX):
                return self._download(request)
            seller = self._authenticate(request)
            if request.path == "/v2/profiles" and request.method == "GET":
                self._throttle(seller, "adsListProfiles")
                return Response.json([p.as_json() for p in self._profiles[seller.tenant]])
            if request.path == "/reporting/reports" and request.method == "POST":
                profile = self._scope(request, seller)
                self._throttle(seller, "adsCreateReport")
                return self._create(request, profile)
            if request.path.startswith("/reporting/reports/") and request.method == "GET":
                profile = self._scope(request, seller)
                self._throttle(seller, "adsGetReport")
                return self._get(request.path.rsplit("/", 1)[1], profile)
            raise AdsError(404, "NOT_FOUND", "Resource not found.")
        except AdsError as error:
            return error.response()
        except Exception:
            log.exception("sandbox Ads handler failed")
            return AdsError(500, "INTERNAL_ERROR", "Internal error.").response()

    # -- auth ----------------------------------------------------------------------------------
    def _lwa(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if (form.get("client_id"), form.get("client_secret")) != (
            ADS_CLIENT_ID,
            ADS_CLIENT_SECRET,
        ):
            body: dict[str, Any] = {
                "error": "invalid_client",
                "error_description": "Client authentication failed",
            }
            return Response.json(body, 401)
        seller = self._by_refresh[form.get("refresh_token", "")]
        token = "sandbox-ads-access-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (seller, self._clock() + self._token_lifetime)
        body = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": round(self._token_lifetime),
            "refresh_token": form["refresh_token"],
            "scope": ADS_SCOPE,
        }
        response = Response.json(body)
        response.headers["Cache-Control"] = "no-store"
        return response

    def _authenticate(self, request: Request) -> Seller:
        header = request.headers.get("authorization", "")
        if request.headers.get("amazon-advertising-api-clientid") != ADS_CLIENT_ID:
            raise AdsError(
                401, "UNAUTHORIZED", "Missing or unknown Amazon-Advertising-API-ClientId"
            )
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        with self._lock:
            found = self._tokens.get(token)
        if found is None:
            raise AdsError(401, "UNAUTHORIZED", "Not authorized to access this advertiser")
        seller, expires = found
        if expires <= self._clock():
            raise AdsError(401, "UNAUTHORIZED", "The access token has expired")
        return seller

    def _scope(self, request: Request, seller: Seller) -> Profile:
        raw = request.headers.get("amazon-advertising-api-scope", "")
        profile = next(
            (p for p in self._profiles[seller.tenant] if str(p.profile_id) == raw.strip()), None
        )
        if profile is None:
            raise AdsError(
                403, "FORBIDDEN", "Amazon-Advertising-API-Scope is missing or not your profile"
            )
        return profile

    def _throttle(self, seller: Seller, operation: str) -> None:
        self._count("requests", operation)
        if self.limiter.allow(seller.seller_id, operation):
            return
        self._count("throttled", operation)
        rate, _ = self.limiter.plan(operation)
        raise AdsError(
            429,
            "TOO_MANY_REQUESTS",
            "Request rate exceeded; retry later.",
            {"Retry-After": str(max(1, math.ceil(1.0 / rate)))},
        )

    # -- reporting -----------------------------------------------------------------------------
    def _create(self, request: Request, profile: Profile) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type not in (V3_CONTENT_TYPE, "application/json"):
            raise AdsError(415, "UNSUPPORTED_MEDIA_TYPE", f"Content-Type {content_type!r}")
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise AdsError(400, "BAD_REQUEST", "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise AdsError(400, "BAD_REQUEST", "The request body must be a JSON object.")
        try:
            validate_request(self.world, body)
        except AdsRequestError as exc:
            raise AdsError(400, "BAD_REQUEST", str(exc)) from None
        job, duplicate = self.reports.create(profile, body)
        if duplicate:
            raise AdsError(425, "425", f"The Request is a duplicate of : {job.report_id}")
        return Response.json(self.reports.as_json(job))

    def _get(self, report_id: str, profile: Profile) -> Response:
        job = self.reports.get(profile.profile_id, report_id)
        if job is None:
            raise AdsError(404, "NOT_FOUND", f"Report {report_id} not found")
        return Response.json(self.reports.as_json(job, self._url(job.report_id)))

    def _sign(self, report_id: str, expires: str) -> str:
        message = f"{report_id}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _url(self, report_id: str) -> str:
        lifetime = self.reports.timings.url_lifetime
        expires = str(int(time.time() + lifetime))
        return (
            f"{self._base_url()}{DOWNLOAD_PREFIX}{report_id}.json.gz"
            f"?X-Amz-Expires={expires}&X-Amz-Signature={self._sign(report_id, expires)}"
        )

    def _download(self, request: Request) -> Response:
        report_id = request.path[len(DOWNLOAD_PREFIX) :].removesuffix(".json.gz")
        expires = request.param("X-Amz-Expires") or ""
        signature = request.param("X-Amz-Signature") or ""
        if not expires.isdigit() or not hmac.compare_digest(
            signature, self._sign(report_id, expires)
        ):
            return _s3_error("SignatureDoesNotMatch")
        if "authorization" in request.headers:
            return _s3_error("InvalidArgument")  # S3: only one auth mechanism allowed
        if int(expires) < time.time():
            return _s3_error("AccessDenied")
        job = self.reports.find(report_id)
        if job is None or self.reports.status(job) != "COMPLETED":
            return _s3_error("NoSuchKey", 404)
        self._count("requests", "adsDownloadReport")
        data = self.reports.document(job)
        return Response(200, data, {"Content-Type": "application/octet-stream"})


def _s3_error(code: str, status: int = 403) -> Response:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>".encode()
    return Response(status, body, {"Content-Type": "application/xml"})
