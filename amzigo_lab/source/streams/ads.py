"""Amazon Ads streams: profiles, and Sponsored Products daily reports through reporting v3.

`ads_profiles`: `GET /v2/profiles` -> ads_profiles (one per marketplace; the reports of a
marketplace are requested under its profile's `Amazon-Advertising-API-Scope`). The profiles are
listed once per ingest and tenant (by whichever Ads stream runs first): the report streams run
first so that their create requests start at once.

`ads_campaigns` (spCampaigns, groupBy campaign) and `ads_products` (spAdvertisedProduct, groupBy
advertiser, per ASIN/SKU), both `timeUnit` DAILY, GZIP_JSON. Lifecycle: create
(`POST /reporting/reports`) -> poll until COMPLETED/FAILED -> download the GZIP JSON. Same rules
as the SP-API report streams (`sales_traffic`):
- windows of at most 31 days per (marketplace, window), never starting more than 93 days ago
  (Amazon keeps 95 days; two days of margin for the profile's time zone);
- each run re-pulls the last `LOOKBACK_DAYS` (14) days before the cursor: attribution moves;
- a report id is stored in the sync state with the request it was created for before anything
  else can fail, and removed only once its rows are written; a resumed report is trusted only
  if `getReport` answers the same request (dates and configuration) and every row's date lies
  in it; otherwise (or 404) it is discarded and re-requested, at most `MAX_ATTEMPTS` times;
- a duplicate request (HTTP 425) names the report in progress: that id is adopted;
- FAILED puts the window in a cooldown before it is requested again.
Every call goes through the shared scheduler (429s are retried honouring Retry-After).
"""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

import datetime as dt
import threading
import weakref
from typing import Any

from amzigo_lab.source.ads_client import (
    AdsFactory,
    DownloadFailed,
    ads_connection,
    download,
    duplicate_of,
)
from amzigo_lab.source.client import MalformedResponse, ReportMismatch
from amzigo_lab.source.ratelimit import DOCUMENTED_LIMITS, SAFETY, _status
from amzigo_lab.source.streams.base import (
    Collector,
    InvalidRecord,
    StreamContext,
    StreamResult,
    integer,
    money,
)

LOOKBACK_DAYS = 14
MAX_WINDOW_DAYS = 31
AVAILABLE_DAYS = 93  # Amazon keeps 95 days; margin for the profile's time zone
FAILED_COOLDOWN = dt.timedelta(minutes=30)
MAX_IN_FLIGHT = 10
POLL_INTERVAL = 15.0  # seconds of API time between polls of one report
MAX_ATTEMPTS = 3
ADS_OPERATIONS = ("adsListProfiles", "adsCreateReport", "adsGetReport", "adsDownloadReport")
METRIC_COLUMNS = [
    "impressions", "clicks", "cost", "purchases7d", "sales7d", "unitsSoldClicks7d",
    "campaignBudgetCurrencyCode",
]  # fmt: skip
_FACTORIES: weakref.WeakKeyDictionary[Any, AdsFactory | None] = weakref.WeakKeyDictionary()

_LOCK = threading.Lock()


def factory_for(ctx: StreamContext) -> AdsFactory | None:
    """The Ads factory of this ingest's connection (None: no Ads credentials configured)."""
    with _LOCK:
        if ctx.factory not in _FACTORIES:
            conn = ads_connection(ctx.factory.connection)
            made = AdsFactory(conn) if conn is not None else None
            if made is not None:
                for tenant in made.connection.refresh_tokens:
                    made.forget_token(tenant)  # a token cached for another endpoint is useless
            _FACTORIES[ctx.factory] = made
        factory = _FACTORIES[ctx.factory]
    if factory is None or ctx.tenant not in factory.connection.refresh_tokens:
        return None
    if ctx.time_scale != 1.0:  # the sandbox runs its clocks faster: so do its Ads limits
        for op in ADS_OPERATIONS:
            rate = DOCUMENTED_LIMITS.get(op, (1.0, 5))[0]
            ctx.scheduler.observe(ctx.tenant, op, rate * ctx.time_scale)
    return factory


def _call(ctx: StreamContext, ads: AdsFactory, operation: str, request: Any) -> Any:
    return ctx.scheduler.call(ctx.tenant, operation, request, lambda: ads.forget_token(ctx.tenant))


def _region(ctx: StreamContext, marketplace_id: str) -> str:
    return ctx.factory.marketplace(marketplace_id).region


def list_profiles(
    ctx: StreamContext, ads: AdsFactory, cached: bool = False
) -> dict[str, dict[str, Any]]:
    """Seller profiles of the tenant by marketplace id (its marketplaces only); `cached`: those
    listed earlier in this ingest, if any."""
    if cached and ctx.tenant in ads.profiles:
        return ads.profiles[ctx.tenant]
    found: dict[str, dict[str, Any]] = {}
    regions = sorted({_region(ctx, mp) for mp in ctx.marketplaces})
    for region in regions:
        client = ads.client(ads.api.Profiles, ctx.tenant, region)
        payload = _call(ctx, ads, "adsListProfiles", lambda c=client: c.list_profiles()).payload
        if not isinstance(payload, list):
            raise MalformedResponse("GET /v2/profiles did not answer a list")
        for item in payload:
            info = item.get("accountInfo") if isinstance(item, dict) else None
            if not isinstance(info, dict) or info.get("type") != "seller":
                continue
            mp = info.get("marketplaceStringId")
            if mp in ctx.marketplaces and "profileId" in item:
                found[mp] = item
    ads.profiles[ctx.tenant] = found
    return found


class AdsProfilesStream:
    """`GET /v2/profiles` -> ads_profiles."""

    name = "ads_profiles"
    datasets = ("ads_profiles",)

    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """Fetch the tenant's seller profiles and write them."""
        ads = factory_for(ctx)
        if ads is None:
            result.status = "skipped"
            result.error = "no Amazon Ads credentials for this tenant"
            return
        collector = Collector(ctx, self.name, result)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for mp, item in sorted(list_profiles(ctx, ads, cached=True).items()):
            info = item["accountInfo"]
            collector.add(
                "ads_profiles",
                item,
                lambda i=item, a=info, m=mp: {
                    "ads_profiles": [
                        {
                            "profile_id": str(i["profileId"]),
                            "marketplace_id": m,
                            "fetched_at": now,
                            "country_code": i.get("countryCode"),
                            "currency": i.get("currencyCode"),
                            "timezone": i.get("timezone"),
                            "account_type": a.get("type"),
                            "account_id": a.get("id"),
                        }
                    ]
                },
            )
        result.pages += 1
        collector.flush(force=True)


def key_of(marketplace_id: str, start: dt.date, end: dt.date) -> str:
    """The sync-state key of one report window."""
    return f"{marketplace_id}|{start.isoformat()}|{end.isoformat()}"


def windows(first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date]]:
    """`first`..`last` cut into windows of at most 31 days."""
    out = []
    start = first
    while start <= last:
        end = min(last, start + dt.timedelta(days=MAX_WINDOW_DAYS - 1))
        out.append((start, end))
        start = end + dt.timedelta(days=1)
    return out


class AdsReportStream:
    """One Sponsored Products daily report type per marketplace, resumable across runs."""

    def __init__(
        self,
        name: str,
        dataset: str,
        report_type: str,
        group_by: str,
        columns: list[str],
    ) -> None:
        self.name = name
        self.dataset = dataset
        self.datasets = (dataset,)
        self.report_type = report_type
        self.group_by = group_by
        self.columns = columns

    # -- requests --------------------------------------------------------------------------------
    def request_of(self, marketplace_id: str, start: dt.date, end: dt.date) -> dict[str, Any]:
        """The createAsyncReport body of one window (also kept in the sync state)."""
        return {
            "name": f"amzigo {self.report_type} {marketplace_id} {start} {end}",
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "configuration": {
                "adProduct": "SPONSORED_PRODUCTS",
                "reportTypeId": self.report_type,
                "groupBy": [self.group_by],
                "columns": list(self.columns),
                "timeUnit": "DAILY",
                "format": "GZIP_JSON",
            },
        }

    def check_report(self, report: dict[str, Any], request: dict[str, Any]) -> None:
        """Raise ReportMismatch unless a getReport answer is a report of `request`."""
        rid = report.get("reportId")
        for field in ("startDate", "endDate"):
            if str(report.get(field)) != request[field]:
                raise ReportMismatch(f"report {rid} has {field} {report.get(field)!r}")
        cfg, want = report.get("configuration") or {}, request["configuration"]
        for field in ("adProduct", "reportTypeId", "groupBy", "timeUnit", "format"):
            if cfg.get(field) != want[field]:
                raise ReportMismatch(f"report {rid} has {field} {cfg.get(field)!r}")
        if sorted(cfg.get("columns") or []) != sorted(want["columns"]):
            raise ReportMismatch(f"report {rid} has other columns")

    def _days(
        self, ctx: StreamContext, cursor: str | None, history_start: str | None = None
    ) -> tuple[dt.date, dt.date] | None:
        last = ctx.now.date() - dt.timedelta(days=1)
        if ctx.since is not None:
            first = ctx.since
        elif cursor:
            first = dt.date.fromisoformat(cursor) - dt.timedelta(days=LOOKBACK_DAYS - 1)
            if history_start:  # the look-back never reaches before the history first asked for
                first = max(first, dt.date.fromisoformat(history_start))
        else:
            first = ctx.now.date() - dt.timedelta(days=ctx.backfill_days)
        first = max(first, ctx.now.date() - dt.timedelta(days=AVAILABLE_DAYS))
        return (first, last) if first <= last else None

    # -- rows ------------------------------------------------------------------------------------
    def rows(
        self,
        raw: list[Any],
        request: dict[str, Any],
        marketplace_id: str,
        profile_id: str,
        retrieved_at: dt.datetime,
        report_id: str,
        collector: Collector,
    ) -> None:
        """Rows of a downloaded report, once every row's date is checked to be in the request."""
        start = dt.date.fromisoformat(request["startDate"])
        end = dt.date.fromisoformat(request["endDate"])
        for row in raw:
            day = row.get("date") if isinstance(row, dict) else None
            try:
                parsed = dt.date.fromisoformat(str(day))
            except ValueError:
                parsed = None
            if parsed is not None and not start <= parsed <= end:
                raise ReportMismatch(f"report {report_id} has a row of {day}")
        for row in raw:
            collector.add(
                self.dataset,
                row,
                lambda r=row: {
                    self.dataset: [self._row(r, marketplace_id, profile_id, retrieved_at)]
                },
            )

    def _row(
        self, r: dict[str, Any], marketplace_id: str, profile_id: str, retrieved_at: dt.datetime
    ) -> dict[str, Any]:
        if not isinstance(r, dict):
            raise InvalidRecord("report row is not an object")
        out: dict[str, Any] = {
            "date": dt.date.fromisoformat(r["date"]),
            "marketplace_id": marketplace_id,
            "profile_id": profile_id,
            "campaign_id": _id(r.get("campaignId")),
            "retrieved_at": retrieved_at,
            "impressions": integer(r.get("impressions")),
            "clicks": integer(r.get("clicks")),
            "cost": money(r.get("cost")),
            "currency": r.get("campaignBudgetCurrencyCode"),
            "purchases_7d": integer(r.get("purchases7d")),
            "sales_7d": money(r.get("sales7d")),
            "units_sold_7d": integer(r.get("unitsSoldClicks7d")),
        }
        if self.dataset == "ads_campaign_daily":
            out.update(campaign_name=r.get("campaignName"), campaign_status=r.get("campaignStatus"))
        else:
            out.update(
                ad_id=_id(r.get("adId")),
                ad_group_id=_id(r.get("adGroupId")),
                asin=r.get("advertisedAsin"),
                seller_sku=r.get("advertisedSku"),
            )
        return out

    # -- run -------------------------------------------------------------------------------------
    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """Resume pending reports, request missing windows, write finished ones."""
        ads = factory_for(ctx)
        if ads is None:
            result.status = "skipped"
            result.error = "no Amazon Ads credentials for this tenant"
            return
        profiles = list_profiles(ctx, ads, cached=True)
        state = ctx.store.get_state(ctx.tenant, self.name)
        pending: dict[str, dict[str, Any]] = dict(state.get("pending") or {})
        cooldown: dict[str, str] = dict(state.get("cooldown") or {})
        cursors: dict[str, str] = dict(state.get("cursor") or {})
        #: per marketplace, the first day of the history (backfill or --since) first asked for
        starts: dict[str, str] = dict(state.get("start") or {})
        wall = ctx.scheduler.clock.monotonic
        scale = max(ctx.time_scale, 1e-9)
        poll_gap = POLL_INTERVAL / scale
        queue: list[tuple[str, dt.date, dt.date]] = []
        problems: list[str] = []
        done: set[str] = set()
        attempts: dict[str, int] = {}
        url_failures: dict[str, int] = {}  # downloads that gave no GZIP (an expired URL)
        clients: dict[str, Any] = {}

        def client(mp: str) -> Any:
            if mp not in clients:
                pid = str(profiles[mp]["profileId"])
                clients[mp] = ads.client(ads.api.Reports, ctx.tenant, _region(ctx, mp), pid)
            return clients[mp]

        now_api = dt.datetime.now(dt.UTC)
        for mp in ctx.marketplaces:
            if mp not in profiles:  # the seller does not advertise there: nothing to fetch
                result.events["marketplaces_without_profile"] = (
                    result.events.get("marketplaces_without_profile", 0) + 1
                )
                continue
            span = self._days(ctx, cursors.get(mp), starts.get(mp))
            if span and mp not in starts:
                starts[mp] = span[0].isoformat()
            for start, end in windows(*span) if span else []:
                key = key_of(mp, start, end)
                until = cooldown.get(key)
                if key in pending:
                    continue
                if until and dt.datetime.fromisoformat(until) > now_api:
                    result.reports_fatal += 1
                    continue
                queue.append((mp, start, end))
        considered = {key_of(*w) for w in queue} | set(pending)
        floor = min((dt.date.fromisoformat(k.split("|")[1]) for k in considered), default=None)
        collector = Collector(ctx, self.name, result)
        next_poll: dict[str, float] = {}
        last_progress = wall()

        def save() -> None:
            ctx.store.update_state(
                ctx.tenant, self.name, {"pending": pending, "cooldown": cooldown, "start": starts}
            )
            ctx.emit(self.name, "reports_pending", len(pending))

        def discard(key: str, why: str) -> None:
            pending.pop(key, None)
            next_poll.pop(key, None)
            result.reports_discarded += 1
            mp, first, last = key.split("|")
            if attempts.get(key, 0) < MAX_ATTEMPTS and mp in profiles:
                queue.append((mp, dt.date.fromisoformat(first), dt.date.fromisoformat(last)))
            else:
                problems.append(why)
            save()

        for key, job in list(pending.items()):  # a request this code would not make: ask again
            mp, first, last = key.split("|")
            want = self.request_of(mp, dt.date.fromisoformat(first), dt.date.fromisoformat(last))
            profile = profiles.get(mp, {}).get("profileId")
            if job.get("request") != want or str(job.get("profile_id")) != str(profile):
                discard(key, f"report {job.get('report_id')} was requested differently")

        while queue or pending:
            while queue and len(pending) < MAX_IN_FLIGHT:
                if pending and _token_wait(ctx, "adsCreateReport") > 0:
                    break  # poll and write what is there while the next token comes
                mp, start, end = queue.pop(0)
                key = key_of(mp, start, end)
                body = self.request_of(mp, start, end)
                c = client(mp)
                try:
                    created = _call(
                        ctx, ads, "adsCreateReport", lambda c=c, b=body: c.create_report(b)
                    ).payload
                    report_id = created.get("reportId") if isinstance(created, dict) else None
                except Exception as exc:
                    report_id = duplicate_of(exc)  # 425: the identical request in progress
                    if report_id is None:
                        if _status(exc) == 400:
                            problems.append(f"{key}: {getattr(exc, 'error', exc)}")
                            continue
                        raise
                if not isinstance(report_id, str):
                    raise MalformedResponse("createReport returned no reportId")
                attempts[key] = attempts.get(key, 0) + 1
                pending[key] = {
                    "report_id": report_id,
                    "request": body,
                    "profile_id": str(profiles[mp]["profileId"]),
                }
                last_progress = wall()
                save()  # persisted before anything else can fail
            progressed = False
            finished: list[str] = []
            for key, job in list(pending.items()):
                if next_poll.get(key, 0.0) > wall():
                    continue
                mp = key.split("|")[0]
                c, report_id, request = client(mp), job["report_id"], job["request"]
                try:
                    report = _call(
                        ctx, ads, "adsGetReport", lambda c=c, r=report_id: c.get_report(r)
                    ).payload
                    if not isinstance(report, dict):
                        raise MalformedResponse(f"getReport {report_id} is not an object")
                    self.check_report(report, request)
                except ReportMismatch as exc:
                    progressed = True
                    discard(key, str(exc))
                    continue
                except Exception as exc:
                    if _status(exc) != 404:
                        raise
                    progressed = True
                    discard(key, f"report {report_id} not found")
                    continue
                status = report.get("status")
                if status in ("PENDING", "PROCESSING"):
                    next_poll[key] = wall() + poll_gap
                    continue
                progressed = True
                last_progress = wall()
                if status == "COMPLETED":
                    url = report.get("url")
                    if not isinstance(url, str):
                        raise MalformedResponse(f"report {report_id} is COMPLETED without url")
                    try:
                        raw = _call(
                            ctx, ads, "adsDownloadReport", lambda c=c, u=url: download(c, u)
                        )
                        self.rows(
                            raw, request, mp, job["profile_id"],
                            dt.datetime.now(dt.UTC).replace(microsecond=0), report_id, collector,
                        )  # fmt: skip
                    except DownloadFailed as exc:
                        url_failures[key] = url_failures.get(key, 0) + 1
                        if url_failures[key] > 1:  # a fresh URL failed too: ask again
                            discard(key, str(exc))
                        continue  # polled again next pass: getReport signs a fresh URL
                    except ReportMismatch as exc:
                        discard(key, str(exc))
                        continue
                    finished.append(key)
                    continue
                # FAILED: cool down before asking again
                cooldown[key] = (dt.datetime.now(dt.UTC) + FAILED_COOLDOWN / scale).isoformat()
                result.reports_fatal += 1
                problems.append(f"report {report_id} FAILED: {report.get('failureReason')}")
                del pending[key]
                save()
            if finished:
                collector.flush({self.dataset: floor}, force=True)  # rows first, then forget
                for key in finished:
                    done.add(key)
                    del pending[key]
                save()
            if pending and not progressed:
                if wall() - last_progress > ctx.report_wait and not queue:
                    break  # leave them pending: the next run resumes these report ids
                due = [next_poll.get(k, 0.0) - wall() for k in pending]
                if queue and len(pending) < MAX_IN_FLIGHT:
                    due.append(_token_wait(ctx, "adsCreateReport"))
                nap = min(poll_gap, 0.05) if scale > 1 else poll_gap
                ctx.scheduler.clock.sleep(max(0.001, min(nap, *due)))
        collector.flush({self.dataset: floor}, force=True)
        result.reports_pending = len(pending)
        if pending:
            result.status = "pending"
        if problems:
            result.status = "failed"
            result.error = f"{len(problems)} problem(s): {problems[0]}"
        for mp in ctx.marketplaces:  # advance each cursor over windows complete in order
            keys = sorted(k for k in considered if k.startswith(mp + "|"))
            cursor = cursors.get(mp)
            for key in keys:
                if key not in done:
                    break
                cursor = max(cursor or "", key.split("|")[2])
            if cursor:
                cursors[mp] = cursor
        cooldown = {
            k: v
            for k, v in cooldown.items()
            if dt.datetime.fromisoformat(v) > dt.datetime.now(dt.UTC)
        }
        ctx.store.update_state(
            ctx.tenant,
            self.name,
            {"pending": pending, "cooldown": cooldown, "cursor": cursors, "start": starts},
        )


def _token_wait(ctx: StreamContext, operation: str) -> float:
    """Seconds until the scheduler would give `operation` a token (a hint; 0 = now)."""
    bucket = ctx.scheduler.bucket(ctx.tenant, operation)
    rate = bucket.rate / SAFETY
    now = ctx.scheduler.clock.monotonic()
    tokens = min(float(bucket.burst), bucket.tokens + (now - bucket.updated) * rate)
    return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate


def _id(value: Any) -> str | None:
    """An Ads id (a JSON number) as text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidRecord(f"id expected, got {type(value).__name__}")
    return str(value)


CAMPAIGNS = AdsReportStream(
    "ads_campaigns",
    "ads_campaign_daily",
    "spCampaigns",
    "campaign",
    ["date", "campaignId", "campaignName", "campaignStatus", *METRIC_COLUMNS],
)
PRODUCTS = AdsReportStream(
    "ads_products",
    "ads_product_daily",
    "spAdvertisedProduct",
    "advertiser",
    ["date", "campaignId", "adGroupId", "adId", "advertisedAsin", "advertisedSku",
     *METRIC_COLUMNS],
)  # fmt: skip
