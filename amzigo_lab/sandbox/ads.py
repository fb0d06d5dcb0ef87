"""Amazon Ads data of the sandbox world: profiles, Sponsored Products campaigns and daily metrics.

Deterministic from (seed, today) like the rest of the world, and consistent with its orders:
- one profile per (seller, marketplace), ids derived from the seed;
- each seller advertises a subset of its ASINs, each in one of a few campaigns per marketplace;
- on a marketplace-local day, the ad-attributed orders of an ASIN are a seeded subset of that
  day's non-canceled order lines of the ASIN, so attributed sales <= total sales of the ASIN and
  day (sales = sum of `item_price`, as the sales report counts them);
- attribution keeps moving: an attributed line only shows once its attribution lag (0-13 days)
  has passed at the world's `now`, so the last 14 days grow between two `today`s;
- clicks, impressions and spend follow from the (final) attributed orders, so spend is final.
Report jobs (reporting v3) live here too: PENDING -> PROCESSING -> COMPLETED (or FAILED), over
scaled time, with the duplicate-request rule and GZIP JSON documents.
"""

from __future__ import annotations

import gzip
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from .seeding import rng_for, stable_int
from .tenants import Marketplace, Seller
from .world import World

#: Marketplace-local zones (ads reports are in the profile's time zone, as the sales report).
ZONES = {"US": "America/Los_Angeles", "UK": "Europe/London", "DE": "Europe/Berlin"}
ADS_CLIENT_ID = "sandbox-ads-client-id"
ADS_CLIENT_SECRET = "sandbox-ads-client-secret"  # noqa: S105 - fixed public sandbox value
ADS_SCOPE = "advertising::campaign_management"
MAX_RANGE_DAYS = 31
RETENTION_DAYS = 95
ATTRIBUTION_DAYS = 14
CAMPAIGNS_PER_MARKETPLACE = 3
_CENT = Decimal("0.01")

#: Columns each report type may select (a subset of Amazon's).
CAMPAIGN_COLUMNS = frozenset(
    {
        "date", "campaignId", "campaignName", "campaignStatus", "impressions", "clicks", "cost",
        "costPerClick", "clickThroughRate", "purchases7d", "sales7d", "unitsSoldClicks7d",
        "attributedSalesSameSku7d", "campaignBudgetCurrencyCode",
    }
)  # fmt: skip
PRODUCT_COLUMNS = frozenset(
    {
        "date", "campaignId", "campaignName", "adGroupId", "adId", "advertisedAsin",
        "advertisedSku", "impressions", "clicks", "cost", "costPerClick", "clickThroughRate",
        "purchases7d", "sales7d", "unitsSoldClicks7d", "attributedSalesSameSku7d",
        "campaignBudgetCurrencyCode",
    }
)  # fmt: skip
REPORT_TYPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # reportTypeId -> (allowed groupBy, allowed columns)
    "spCampaigns": (frozenset({"campaign", "adGroup", "campaignPlacement"}), CAMPAIGN_COLUMNS),
    "spAdvertisedProduct": (frozenset({"advertiser"}), PRODUCT_COLUMNS),
}


class AdsRequestError(ValueError):
    """A report request Amazon would refuse (400)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """An advertising profile: one seller account in one marketplace."""

    profile_id: int
    seller: Seller
    marketplace: Marketplace

    def as_json(self) -> dict[str, Any]:
        """The `GET /v2/profiles` item."""
        return {
            "profileId": self.profile_id,
            "countryCode": self.marketplace.country_code,
            "currencyCode": self.marketplace.currency,
            "timezone": ZONES[self.marketplace.code],
            "dailyBudget": 0,
            "accountInfo": {
                "marketplaceStringId": self.marketplace.marketplace_id,
                "id": self.seller.seller_id,
                "type": "seller",
                "name": self.seller.display_name,
                "validPaymentMethod": True,
            },
        }


@dataclass(frozen=True, slots=True)
class AdRow:
    """One advertised product on one day (money in the marketplace currency)."""

    day: date
    campaign_id: int
    campaign_name: str
    ad_group_id: int
    ad_id: int
    asin: str
    sku: str
    impressions: int
    clicks: int
    cost: Decimal
    purchases: int
    sales: Decimal
    units: int


def profiles(world: World, seller: Seller) -> tuple[Profile, ...]:
    """The seller's profiles, one per marketplace (ids stable for a seed)."""
    return tuple(
        Profile(
            1_000_000_000_000
            + stable_int(world.seed, "ads-profile", seller.tenant, m.code) % 10**12,
            seller,
            m,
        )
        for m in seller.marketplaces
    )


def local_day(moment: datetime, marketplace: Marketplace) -> date:
    """The marketplace-local date of a UTC moment."""
    return moment.astimezone(ZoneInfo(ZONES[marketplace.code])).date()


def _campaign(world: World, profile: Profile, asin: str) -> tuple[int, str, int, int] | None:
    """(campaign id, name, ad group id, ad id) advertising `asin`, or None if not advertised."""
    code = profile.marketplace.code
    pick = stable_int(world.seed, "ads-asin", profile.seller.tenant, code, asin)
    if pick % 10 >= 6:  # 60 % of the ASINs are advertised
        return None
    n = pick // 10 % CAMPAIGNS_PER_MARKETPLACE
    campaign_id = 200_000_000_000 + stable_int(
        world.seed, "ads-campaign", profile.profile_id, n
    ) % (10**11)
    name = f"SP - {profile.seller.category} - {code} - {('Auto', 'Exact', 'Broad')[n]}"
    ad_group = campaign_id + 7
    ad_id = 300_000_000_000 + stable_int(world.seed, "ads-ad", profile.profile_id, asin) % 10**11
    return campaign_id, name, ad_group, ad_id


def day_rows(world: World, profile: Profile, day: date) -> list[AdRow]:
    """Advertised-product rows of `profile` on marketplace-local `day`, as seen at `world.now`."""
    market, tenant = profile.marketplace, profile.seller.tenant
    if day > world.last_day or day < world.today - timedelta(days=RETENTION_DAYS):
        return []
    lines: dict[str, list[tuple[str, str, Decimal, int]]] = {}
    for utc_day in (day - timedelta(days=1), day, day + timedelta(days=1)):
        for order in world.day_orders(tenant, market, utc_day):
            if order.status.value == "Canceled" or local_day(order.purchase_date, market) != day:
                continue
            for item in order.items:
                lines.setdefault(item.asin, []).append(
                    (order.order_id, item.sku, item.item_price, item.quantity)
                )
    rows: list[AdRow] = []
    for product in world.catalog(tenant):
        camp = _campaign(world, profile, product.asin)
        if camp is None:
            continue
        rng = rng_for(world.seed, "ads-day", profile.profile_id, product.asin, day.isoformat())
        share = rng.uniform(0.15, 0.55)  # chance an order line came from an ad click
        purchases = units = 0
        sales = Decimal("0.00")
        final_orders = 0
        for order_id, _sku, price, qty in lines.get(product.asin, []):
            r = rng_for(world.seed, "ads-line", order_id, product.asin)
            if r.random() >= share:
                continue
            final_orders += 1
            lag = r.randrange(ATTRIBUTION_DAYS)
            if day + timedelta(days=lag) >= world.today:
                continue  # not attributed yet
            purchases += 1
            units += qty
            sales += price
        conversion = rng.uniform(0.07, 0.16)
        clicks = int(final_orders / conversion) + rng.randrange(0, 6)
        if clicks == 0 and final_orders == 0 and rng.random() < 0.5:
            continue  # no impressions that day
        ctr = rng.uniform(0.002, 0.006)
        impressions = max(clicks, int(clicks / ctr)) + rng.randrange(0, 50)
        cpc = Decimal(str(round(rng.uniform(0.45, 1.6), 2))) * market.fx_from_usd
        cost = (cpc * clicks).quantize(_CENT, ROUND_HALF_UP)
        campaign_id, name, ad_group, ad_id = camp
        rows.append(
            AdRow(day, campaign_id, name, ad_group, ad_id, product.asin, product.sku,
                  impressions, clicks, cost, purchases, sales.quantize(_CENT), units)
        )  # fmt: skip
    return rows


def _money(value: Decimal) -> float:
    return float(value)


def render_rows(
    world: World,
    profile: Profile,
    request: dict[str, Any],
    rows_for: Callable[[World, Profile, date], list[AdRow]] = day_rows,
) -> list[dict[str, Any]]:
    """The rows of a validated report request (only the requested columns)."""
    cfg = request["configuration"]
    start, end = date.fromisoformat(request["startDate"]), date.fromisoformat(request["endDate"])
    columns: list[str] = cfg["columns"]
    daily = cfg.get("timeUnit", "SUMMARY") == "DAILY"
    product = cfg["reportTypeId"] == "spAdvertisedProduct"
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    day = start
    while day <= end:
        for row in rows_for(world, profile, day):
            key: tuple[Any, ...] = (row.day if daily else None, row.campaign_id)
            if product:
                key += (row.ad_id,)
            g = groups.setdefault(
                key,
                {
                    "date": row.day.isoformat() if daily else None,
                    "campaignId": row.campaign_id,
                    "campaignName": row.campaign_name,
                    "campaignStatus": "ENABLED",
                    "adGroupId": row.ad_group_id,
                    "adId": row.ad_id,
                    "advertisedAsin": row.asin,
                    "advertisedSku": row.sku,
                    "campaignBudgetCurrencyCode": profile.marketplace.currency,
                    "impressions": 0, "clicks": 0, "cost": Decimal("0.00"),
                    "purchases7d": 0, "sales7d": Decimal("0.00"), "unitsSoldClicks7d": 0,
                },
            )  # fmt: skip
            g["impressions"] += row.impressions
            g["clicks"] += row.clicks
            g["cost"] += row.cost
            g["purchases7d"] += row.purchases
            g["sales7d"] += row.sales
            g["unitsSoldClicks7d"] += row.units
        day += timedelta(days=1)
    out = []
    for key in sorted(groups, key=lambda k: tuple(str(p) for p in k)):
        g = groups[key]
        g["costPerClick"] = _money((g["cost"] / g["clicks"]).quantize(_CENT)) if g["clicks"] else 0
        g["clickThroughRate"] = round(g["clicks"] / g["impressions"], 4) if g["impressions"] else 0
        g["attributedSalesSameSku7d"] = g["sales7d"]
        g["cost"], g["sales7d"] = _money(g["cost"]), _money(g["sales7d"])
        g["attributedSalesSameSku7d"] = _money(g["attributedSalesSameSku7d"])
        if not daily:
            g.pop("date")
        out.append({c: g.get(c) for c in columns})
    return out


def validate_request(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """A createAsyncReport body checked as Amazon does (AdsRequestError otherwise)."""
    try:
        cfg = body["configuration"]
        start = date.fromisoformat(body["startDate"])
        end = date.fromisoformat(body["endDate"])
        report_type = cfg["reportTypeId"]
        group_by, columns = cfg["groupBy"], cfg["columns"]
    except (KeyError, TypeError, ValueError) as exc:
        raise AdsRequestError(f"invalid report request: {exc}") from None
    if cfg.get("adProduct") != "SPONSORED_PRODUCTS":
        raise AdsRequestError("configuration.adProduct must be SPONSORED_PRODUCTS")
    if report_type not in REPORT_TYPES:
        raise AdsRequestError(f"unsupported reportTypeId {report_type!r}")
    allowed_groups, allowed_columns = REPORT_TYPES[report_type]
    if not isinstance(group_by, list) or not group_by or set(group_by) - allowed_groups:
        raise AdsRequestError(f"groupBy {group_by!r} is not valid for {report_type}")
    if not isinstance(columns, list) or not columns or set(columns) - allowed_columns:
        bad = sorted(set(columns or []) - allowed_columns) if isinstance(columns, list) else []
        raise AdsRequestError(f"columns {bad or columns!r} are not valid for {report_type}")
    if cfg.get("timeUnit") not in ("DAILY", "SUMMARY"):
        raise AdsRequestError("configuration.timeUnit must be DAILY or SUMMARY")
    if cfg.get("timeUnit") == "SUMMARY" and "date" in columns:
        raise AdsRequestError("column date is only valid with timeUnit DAILY")
    if cfg.get("format") != "GZIP_JSON":
        raise AdsRequestError("configuration.format must be GZIP_JSON")
    if end < start:
        raise AdsRequestError("endDate is before startDate")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise AdsRequestError(f"the date range may not exceed {MAX_RANGE_DAYS} days")
    if start < world.today - timedelta(days=RETENTION_DAYS):
        raise AdsRequestError(f"startDate is more than {RETENTION_DAYS} days ago")
    if end > world.today:
        raise AdsRequestError("endDate is in the future")
    return body


def request_key(profile_id: int, body: dict[str, Any]) -> str:
    """Identity of a request for the duplicate rule (the name does not count)."""
    relevant = {k: v for k, v in body.items() if k != "name"}
    return f"{profile_id}|" + json.dumps(relevant, sort_keys=True)


@dataclass(frozen=True, slots=True)
class AdsTimings:
    """Seconds a report spends PENDING and PROCESSING at time scale 1."""

    pending: float = 30.0
    processing: float = 60.0
    retention: float = 3 * 86_400.0  # report ids are forgotten after this (the URL expires first)
    url_lifetime: float = 3600.0


@dataclass(slots=True)
class AdsReport:
    """A report job of one profile."""

    report_id: str
    profile: Profile
    body: dict[str, Any]
    created_at: datetime
    created_clock: float
    failed: bool


@dataclass
class AdsReportStore:
    """Report jobs of the Ads API, over scaled time."""

    world: World
    time_scale: float | None
    timings: AdsTimings = field(default_factory=AdsTimings)
    clock: Callable[[], float] = time.monotonic
    fail_next: int = 0  # the next N reports end FAILED (tests)
    _jobs: dict[str, AdsReport] = field(default_factory=dict)
    _documents: dict[str, bytes] = field(default_factory=dict)
    _rows: dict[tuple[int, date], list[AdRow]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def day_rows(self, world: World, profile: Profile, day: date) -> list[AdRow]:
        """`day_rows` of this store's world, computed once per (profile, day)."""
        key = (profile.profile_id, day)
        with self._lock:
            cached = self._rows.get(key)
        if cached is None:
            cached = day_rows(world, profile, day)
            with self._lock:
                self._rows[key] = cached
        return cached

    def _scaled(self, seconds: float) -> float:
        return seconds / self.time_scale if self.time_scale else 0.0

    def status(self, job: AdsReport) -> str:
        """PENDING, PROCESSING, COMPLETED or FAILED now."""
        elapsed = self.clock() - job.created_clock
        pending = self._scaled(self.timings.pending)
        if elapsed < pending:
            return "PENDING"
        if elapsed < pending + self._scaled(self.timings.processing):
            return "PROCESSING"
        return "FAILED" if job.failed else "COMPLETED"

    def _expire(self) -> None:
        horizon = self.clock() - (
            self.timings.retention / self.time_scale if self.time_scale else self.timings.retention
        )
        for rid in [r for r, j in self._jobs.items() if j.created_clock < horizon]:
            self._jobs.pop(rid)
            self._documents.pop(rid, None)

    def create(self, profile: Profile, body: dict[str, Any]) -> tuple[AdsReport, bool]:
        """A new job, or (the in-progress job of an identical request, True) for a duplicate."""
        key = request_key(profile.profile_id, body)
        with self._lock:
            self._expire()
            for job in self._jobs.values():
                same = request_key(job.profile.profile_id, job.body) == key
                if same and self.status(job) in ("PENDING", "PROCESSING"):
                    return job, True
            failed = self.fail_next > 0
            if failed:
                self.fail_next -= 1
            job = AdsReport(
                str(uuid.UUID(bytes=secrets.token_bytes(16), version=4)),
                profile,
                body,
                datetime.now(UTC).replace(microsecond=0),
                self.clock(),
                failed,
            )
            self._jobs[job.report_id] = job
        return job, False

    def get(self, profile_id: int, report_id: str) -> AdsReport | None:
        """The job `report_id` of `profile_id`, if it exists."""
        with self._lock:
            self._expire()
            job = self._jobs.get(report_id)
        return job if job is not None and job.profile.profile_id == profile_id else None

    def find(self, report_id: str) -> AdsReport | None:
        """The job `report_id` of any profile."""
        with self._lock:
            self._expire()
            return self._jobs.get(report_id)

    def document(self, job: AdsReport) -> bytes:
        """The GZIP JSON array of the job's rows (rendered once)."""
        with self._lock:
            cached = self._documents.get(job.report_id)
        if cached is not None:
            return cached
        rows = render_rows(self.world, job.profile, job.body, self.day_rows)
        data = gzip.compress(json.dumps(rows, separators=(",", ":")).encode("utf-8"), mtime=0)
        with self._lock:
            self._documents[job.report_id] = data
        return data

    def as_json(self, job: AdsReport, url: str | None = None) -> dict[str, Any]:
        """The reporting v3 report object."""
        status = self.status(job)
        cfg = job.body["configuration"]
        out: dict[str, Any] = {
            "reportId": job.report_id,
            "name": job.body.get("name"),
            "status": status,
            "startDate": job.body["startDate"],
            "endDate": job.body["endDate"],
            "configuration": cfg,
            "createdAt": job.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "updatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "url": None,
            "urlExpiresAt": None,
            "fileSize": None,
            "failureReason": None,
            "generatedAt": None,
        }
        if status == "COMPLETED":
            data = self.document(job)
            expires = datetime.now(UTC) + timedelta(
                seconds=self._scaled(self.timings.url_lifetime) or self.timings.url_lifetime
            )
            out.update(
                url=url,
                fileSize=len(data),
                urlExpiresAt=expires.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                generatedAt=out["updatedAt"],
            )
        elif status == "FAILED":
            out["failureReason"] = "Report generation failed (sandbox fault)."
        return out
