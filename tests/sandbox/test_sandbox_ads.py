"""The sandbox's Amazon Ads API (issue 14 item 2): every answer is validated against the shapes of
facts/ads.md, the report lifecycle, duplicates (425), throttling (429 + Retry-After), the 31-day
and 95-day limits, its own LWA grant, and spend/attributed sales consistent with the orders."""

from __future__ import annotations

import gzip
import json
import ssl
import time
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from amzigo_lab.sandbox import SandboxServer, World
from amzigo_lab.sandbox.ads import ADS_CLIENT_ID, ADS_CLIENT_SECRET, day_rows, local_day, profiles
from amzigo_lab.sandbox.routes.ads import ads_refresh_token
from amzigo_lab.sandbox.tenants import SELLER_BY_TENANT
from tests.sandbox.helpers import SEED, TODAY, US

V3 = "application/vnd.createasyncreportrequest.v3+json"
ACME = SELLER_BY_TENANT["acme-outdoor"]
NULLABLE_STR = {"type": ["string", "null"]}
# The shapes of facts/ads.md ("Ads API basics", "Reporting v3")
PROFILES_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["profileId", "countryCode", "currencyCode", "timezone", "accountInfo"],
        "properties": {
            "profileId": {"type": "integer"},
            "countryCode": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "currencyCode": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "timezone": {"type": "string"},
            "dailyBudget": {"type": "number"},
            "accountInfo": {
                "type": "object",
                "required": ["marketplaceStringId", "id", "type"],
                "properties": {
                    "marketplaceStringId": {"type": "string"},
                    "id": {"type": "string"},
                    "type": {"enum": ["seller", "vendor", "agency"]},
                    "name": {"type": "string"},
                    "validPaymentMethod": {"type": "boolean"},
                },
            },
        },
    },
}
REPORT_SCHEMA = {
    "type": "object",
    "required": ["reportId", "status", "startDate", "endDate", "configuration"],
    "properties": {
        "reportId": {"type": "string"},
        "name": NULLABLE_STR,
        "status": {"enum": ["PENDING", "PROCESSING", "COMPLETED", "FAILED"]},
        "startDate": {"type": "string", "format": "date"},
        "endDate": {"type": "string", "format": "date"},
        "configuration": {
            "type": "object",
            "required": ["adProduct", "reportTypeId", "groupBy", "columns", "timeUnit", "format"],
            "properties": {
                "adProduct": {"const": "SPONSORED_PRODUCTS"},
                "reportTypeId": {"type": "string"},
                "groupBy": {"type": "array", "items": {"type": "string"}},
                "columns": {"type": "array", "items": {"type": "string"}},
                "timeUnit": {"enum": ["DAILY", "SUMMARY"]},
                "format": {"const": "GZIP_JSON"},
            },
        },
        "url": NULLABLE_STR,
        "urlExpiresAt": NULLABLE_STR,
        "fileSize": {"type": ["integer", "null"]},
        "failureReason": NULLABLE_STR,
        "createdAt": {"type": "string"},
        "updatedAt": {"type": "string"},
    },
    "allOf": [
        {
            "if": {"properties": {"status": {"const": "COMPLETED"}}},
            "then": {
                "properties": {
                    "url": {"type": "string"},
                    "fileSize": {"type": "integer"},
                    "urlExpiresAt": {"type": "string"},
                }
            },
        },
        {
            "if": {"properties": {"status": {"const": "FAILED"}}},
            "then": {"properties": {"failureReason": {"type": "string"}}},
        },
    ],
}
_METRICS = {
    "impressions": {"type": "integer", "minimum": 0},
    "clicks": {"type": "integer", "minimum": 0},
    "cost": {"type": "number", "minimum": 0},
    "costPerClick": {"type": "number", "minimum": 0},
    "clickThroughRate": {"type": "number", "minimum": 0, "maximum": 1},
    "purchases7d": {"type": "integer", "minimum": 0},
    "sales7d": {"type": "number", "minimum": 0},
    "unitsSoldClicks7d": {"type": "integer", "minimum": 0},
    "attributedSalesSameSku7d": {"type": "number", "minimum": 0},
    "date": {"type": "string", "format": "date"},
    "campaignId": {"type": "integer"},
    "campaignName": {"type": "string"},
    "campaignStatus": {"type": "string"},
    "campaignBudgetCurrencyCode": {"type": "string"},
}
ROWS_SCHEMA = {
    "spCampaigns": {"type": "array", "items": {"type": "object", "properties": _METRICS,
                                               "additionalProperties": False}},
    "spAdvertisedProduct": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {**_METRICS, "advertisedAsin": {"type": "string"},
                           "advertisedSku": {"type": "string"}, "adId": {"type": "integer"},
                           "adGroupId": {"type": "integer"}},
            "additionalProperties": False,
        },
    },
}  # fmt: skip
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "details"],
    "properties": {"code": {"type": "string"}, "details": {"type": "string"}},
}
CAMPAIGN_COLUMNS = [
    "date", "campaignId", "campaignName", "campaignStatus", "impressions", "clicks", "cost",
    "costPerClick", "clickThroughRate", "purchases7d", "sales7d", "unitsSoldClicks7d",
    "attributedSalesSameSku7d",
]  # fmt: skip
PRODUCT_COLUMNS = [
    "date", "campaignId", "adGroupId", "adId", "advertisedAsin", "advertisedSku", "impressions",
    "clicks", "cost", "purchases7d", "sales7d", "unitsSoldClicks7d",
]  # fmt: skip


def check(schema: dict[str, Any], body: Any) -> None:
    """Validate against a shape of facts/ads.md (with date formats checked)."""
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(body)


def body(report_type: str, start: date, end: date, time_unit: str = "DAILY") -> dict[str, Any]:
    """A createAsyncReport body."""
    columns = CAMPAIGN_COLUMNS if report_type == "spCampaigns" else PRODUCT_COLUMNS
    return {
        "name": "test",
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "configuration": {
            "adProduct": "SPONSORED_PRODUCTS",
            "reportTypeId": report_type,
            "groupBy": ["campaign" if report_type == "spCampaigns" else "advertiser"],
            "columns": columns if time_unit == "DAILY" else columns[1:],
            "timeUnit": time_unit,
            "format": "GZIP_JSON",
        },
    }


class AdsClient:
    """A small HTTPS client of the sandbox's Ads API for one seller."""

    def __init__(self, server: SandboxServer, refresh_token: str = "") -> None:
        self.server = server
        self.tls = ssl.create_default_context(cafile=str(server.ca_path))
        self.http = httpx.Client(base_url=server.endpoint, verify=self.tls, timeout=30)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token or ads_refresh_token(ACME),
            "client_id": ADS_CLIENT_ID,
            "client_secret": ADS_CLIENT_SECRET,
        }
        answer = self.http.post("/auth/o2/token", data=form)
        assert answer.status_code == 200, answer.text
        assert answer.json()["scope"] == "advertising::campaign_management"
        self.token = answer.json()["access_token"]

    def headers(self, profile: int | None = None) -> dict[str, str]:
        out = {
            "Authorization": f"Bearer {self.token}",
            "Amazon-Advertising-API-ClientId": ADS_CLIENT_ID,
        }
        if profile is not None:
            out["Amazon-Advertising-API-Scope"] = str(profile)
        return out

    def profiles(self) -> list[dict[str, Any]]:
        answer = self.http.get("/v2/profiles", headers=self.headers())
        assert answer.status_code == 200, answer.text
        return list(answer.json())

    def create(self, profile: int, request: dict[str, Any]) -> httpx.Response:
        return self.http.post(
            "/reporting/reports",
            content=json.dumps(request),
            headers={**self.headers(profile), "Content-Type": V3},
        )

    def get(self, profile: int, report_id: str) -> httpx.Response:
        return self.http.get(f"/reporting/reports/{report_id}", headers=self.headers(profile))

    def wait(self, profile: int, report_id: str) -> dict[str, Any]:
        seen = []
        for _ in range(400):
            report = self.get(profile, report_id).json()
            check(REPORT_SCHEMA, report)
            seen.append(report["status"])
            if report["status"] in ("COMPLETED", "FAILED"):
                report["_seen"] = seen
                return report
            time.sleep(0.01)
        raise AssertionError(f"report {report_id} never finished: {seen[-3:]}")


@pytest.fixture()
def ads(server: SandboxServer) -> Iterator[AdsClient]:
    client = AdsClient(server)
    yield client
    client.http.close()


def us_profile(ads: AdsClient) -> int:
    return next(
        p["profileId"] for p in ads.profiles() if p["accountInfo"]["marketplaceStringId"] == US
    )


def test_profiles_one_per_marketplace(ads: AdsClient) -> None:
    found = ads.profiles()
    check(PROFILES_SCHEMA, found)
    assert sorted(p["accountInfo"]["marketplaceStringId"] for p in found) == sorted(
        m.marketplace_id for m in ACME.marketplaces
    )
    assert all(p["accountInfo"]["type"] == "seller" for p in found)


@pytest.mark.parametrize("report_type", ["spCampaigns", "spAdvertisedProduct"])
def test_report_lifecycle_and_rows(ads: AdsClient, report_type: str) -> None:
    profile = us_profile(ads)
    answer = ads.create(
        profile, body(report_type, TODAY - timedelta(days=10), TODAY - timedelta(days=1))
    )
    assert answer.status_code == 200, answer.text
    created = answer.json()
    check(REPORT_SCHEMA, created)
    assert created["status"] == "PENDING"
    report = ads.wait(profile, created["reportId"])
    assert report["status"] == "COMPLETED"
    assert "PROCESSING" in report["_seen"] or "PENDING" in report["_seen"]
    download = httpx.get(report["url"], verify=ads.tls)
    assert download.status_code == 200 and len(download.content) == report["fileSize"]
    rows = json.loads(gzip.decompress(download.content))
    check(ROWS_SCHEMA[report_type], rows)
    assert rows and {r["date"] for r in rows} <= {
        (TODAY - timedelta(days=d)).isoformat() for d in range(1, 11)
    }
    # the download is pre-signed (S3): an Authorization header is refused, as S3 does
    refused = httpx.get(report["url"], headers={"Authorization": "Bearer x"}, verify=ads.tls)
    assert refused.status_code == 400 or refused.status_code == 403


def test_failed_report(ads: AdsClient, server: SandboxServer) -> None:
    profile = us_profile(ads)
    server.ads.reports.fail_next = 1
    created = ads.create(
        profile, body("spCampaigns", TODAY - timedelta(days=3), TODAY - timedelta(days=3))
    ).json()
    report = ads.wait(profile, created["reportId"])
    assert report["status"] == "FAILED" and report["failureReason"]


def test_duplicate_request_names_the_report_in_progress(ads: AdsClient) -> None:
    profile = us_profile(ads)
    request = body("spCampaigns", TODAY - timedelta(days=5), TODAY - timedelta(days=4))
    first = ads.create(profile, request).json()
    again = ads.create(profile, {**request, "name": "another name"})
    assert again.status_code == 425
    check(ERROR_SCHEMA, again.json())
    assert first["reportId"] in again.json()["details"]


@pytest.mark.parametrize(
    ("start", "end", "why"),
    [
        (TODAY - timedelta(days=40), TODAY - timedelta(days=1), "31 days"),
        (TODAY - timedelta(days=96), TODAY - timedelta(days=90), "95 days"),
        (TODAY - timedelta(days=2), TODAY + timedelta(days=1), "future"),
    ],
)
def test_window_and_availability_limits(ads: AdsClient, start: date, end: date, why: str) -> None:
    answer = ads.create(us_profile(ads), body("spCampaigns", start, end))
    assert answer.status_code == 400
    check(ERROR_SCHEMA, answer.json())
    assert why in answer.json()["details"]


def test_auth_scope_and_tokens(server: SandboxServer, ads: AdsClient) -> None:
    # an SP-API access token is no Ads token (and an Ads token no SP-API token)
    sp = ads.http.post(
        "/auth/o2/token",
        data={"grant_type": "refresh_token", "refresh_token": ACME.refresh_token,
              "client_id": "sandbox-client-id", "client_secret": "sandbox-client-secret"},
    ).json()["access_token"]  # fmt: skip
    refused = ads.http.get(
        "/v2/profiles", headers={**ads.headers(), "Authorization": f"Bearer {sp}"}
    )
    assert refused.status_code == 401
    check(ERROR_SCHEMA, refused.json())
    orders = ads.http.get(
        "/orders/v0/orders", params={"MarketplaceIds": US, "CreatedAfter": "2026-11-01"},
        headers={"x-amz-access-token": ads.token},
    )  # fmt: skip
    assert orders.status_code == 403
    # reporting needs the caller's own profile as scope
    other = AdsClient(server, ads_refresh_token(SELLER_BY_TENANT["bluebird-home"]))
    theirs = other.profiles()[0]["profileId"]
    request = body("spCampaigns", TODAY - timedelta(days=2), TODAY - timedelta(days=2))
    assert ads.create(theirs, request).status_code == 403
    missing = ads.http.post("/reporting/reports", content=json.dumps(request),
                            headers={**ads.headers(), "Content-Type": V3})  # fmt: skip
    assert missing.status_code == 403
    wrong_client = ads.http.get(
        "/v2/profiles", headers={**ads.headers(), "Amazon-Advertising-API-ClientId": "x"}
    )
    assert wrong_client.status_code == 401


def test_throttling_answers_429_with_retry_after(world: World, state_dir: Path) -> None:
    with SandboxServer(world, state_dir, time_scale=1.0) as paced:
        client = AdsClient(paced)
        statuses = [client.http.get("/v2/profiles", headers=client.headers()) for _ in range(7)]
        throttled = [r for r in statuses if r.status_code == 429]
        assert [r.status_code for r in statuses[:5]] == [200] * 5 and throttled
        assert all(int(r.headers["Retry-After"]) >= 1 for r in throttled)
        check(ERROR_SCHEMA, throttled[0].json())
        assert paced.stats.throttled["adsListProfiles"] == len(throttled)


def test_attributed_sales_never_exceed_the_orders_and_are_deterministic(world: World) -> None:
    again = World(seed=SEED, today=TODAY)
    for seller in world.sellers:
        for profile in profiles(world, seller):
            market = profile.marketplace
            for back in (1, 5, 20, 60):
                day = TODAY - timedelta(days=back)
                rows = day_rows(world, profile, day)
                assert rows == day_rows(
                    again, profiles(again, seller)[profiles(world, seller).index(profile)], day
                )
                totals: dict[str, Decimal] = {}
                for utc_day in (day - timedelta(days=1), day, day + timedelta(days=1)):
                    for order in world.day_orders(seller.tenant, market, utc_day):
                        if (
                            order.status.value == "Canceled"
                            or local_day(order.purchase_date, market) != day
                        ):
                            continue
                        for item in order.items:
                            totals[item.asin] = totals.get(item.asin, Decimal(0)) + item.item_price
                for row in rows:
                    assert row.sales <= totals.get(row.asin, Decimal(0)), (seller.tenant, day, row)
                    assert row.cost >= 0 and row.clicks <= row.impressions
    # attribution keeps moving for 14 days: a later 'today' sees at least as much for a recent day
    later = World(seed=SEED, today=TODAY + timedelta(days=10))
    seller = world.sellers[0]
    day = TODAY - timedelta(days=3)
    now_sales = sum(r.sales for r in day_rows(world, profiles(world, seller)[0], day))
    later_sales = sum(r.sales for r in day_rows(later, profiles(later, seller)[0], day))
    assert later_sales > now_sales
    assert sum(r.cost for r in day_rows(world, profiles(world, seller)[0], day)) == sum(
        r.cost for r in day_rows(later, profiles(later, seller)[0], day)
    )  # spend is final
