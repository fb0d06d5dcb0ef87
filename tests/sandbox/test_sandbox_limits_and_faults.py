"""Rate limits (429 + header + counters) and every switchable fault."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from pathlib import Path

import httpx
import pytest

from amzigo_lab.sandbox import Faults, SandboxServer, World
from tests.sandbox.helpers import US, Api

INVENTORY = {"granularityType": "Marketplace", "granularityId": US, "marketplaceIds": US}


def test_token_bucket_429_and_header(world: World, state_dir: Path) -> None:
    with SandboxServer(world, state_dir, time_scale=1.0) as real_speed:
        api = Api(real_speed)
        first = api.get("/fba/inventory/v1/summaries", **INVENTORY)
        assert first.status_code == 200 and first.headers["x-amzn-RateLimit-Limit"] == "2"
        assert api.get("/fba/inventory/v1/summaries", **INVENTORY).status_code == 200
        throttled = api.get("/fba/inventory/v1/summaries", **INVENTORY)
        assert throttled.status_code == 429
        assert throttled.headers["x-amzn-RateLimit-Limit"] == "2"
        assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
        # buckets are per seller: another tenant is not throttled
        assert (
            Api(real_speed, "cobalt-tech")
            .get("/fba/inventory/v1/summaries", **INVENTORY)
            .status_code
            == 200
        )
        time.sleep(0.6)  # 2 rps refill
        assert api.get("/fba/inventory/v1/summaries", **INVENTORY).status_code == 200
        stats = real_speed.stats.snapshot()
        assert stats["throttled"] == {"getInventorySummaries": 1}
        assert stats["requests"]["getInventorySummaries"] == 5


def test_time_scale_speeds_refill_and_none_disables(world: World, state_dir: Path) -> None:
    with SandboxServer(world, state_dir, time_scale=None) as unlimited:
        api = Api(unlimited)
        codes = {api.get("/fba/inventory/v1/summaries", **INVENTORY).status_code for _ in range(10)}
        assert codes == {200}
    with SandboxServer(world, state_dir, time_scale=100) as fast:
        api = Api(fast)
        header = api.get("/fba/inventory/v1/summaries", **INVENTORY).headers
        assert header["x-amzn-RateLimit-Limit"] == "200"


@pytest.fixture()
def faulty(world: World, state_dir: Path) -> Api:
    server = SandboxServer(world, state_dir, time_scale=None, faults=Faults())
    server.start()
    api = Api(server)
    yield api
    api.http.close()
    server.stop()


def test_fault_5xx_with_json_body(faulty: Api) -> None:
    faulty.server.faults.fail("getInventorySummaries", times=2, status=502)
    for _ in range(2):
        response = faulty.get("/fba/inventory/v1/summaries", **INVENTORY)
        assert response.status_code == 502
        assert response.json()["errors"][0]["code"] == "InternalFailure"
    assert faulty.get("/fba/inventory/v1/summaries", **INVENTORY).status_code == 200
    assert faulty.server.stats.faults["getInventorySummaries"] == 2


def test_fault_503_with_empty_body(faulty: Api) -> None:
    faulty.server.faults.unavailable("*")
    response = faulty.get("/fba/inventory/v1/summaries", **INVENTORY)
    assert response.status_code == 503 and response.content == b""


def test_fault_slow_response(faulty: Api) -> None:
    faulty.server.faults.slow("getInventorySummaries", seconds=0.3)
    started = time.monotonic()
    assert faulty.get("/fba/inventory/v1/summaries", **INVENTORY).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_fault_malformed_json_page(faulty: Api) -> None:
    faulty.server.faults.malformed("getOrders")
    response = faulty.get("/orders/v0/orders", CreatedAfter="2026-11-18", MarketplaceIds=US)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_fault_expired_token(faulty: Api) -> None:
    faulty.server.faults.expire_tokens()
    response = faulty.get("/fba/inventory/v1/summaries", **INVENTORY)
    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == "The access token you provided has expired"
    # the token stays expired; a refreshed one works
    assert faulty.get("/fba/inventory/v1/summaries", **INVENTORY).status_code == 403
    fresh = faulty.token(refresh=True)
    assert faulty.get("/fba/inventory/v1/summaries", token=fresh, **INVENTORY).status_code == 200


def _run_report(api: Api) -> dict[str, str]:
    spec = {
        "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
        "marketplaceIds": [US],
        "dataStartTime": "2026-11-18T00:00:00Z",
    }
    report_id = api.post("/reports/2021-06-30/reports", spec).json()["reportId"]
    return api.get(f"/reports/2021-06-30/reports/{report_id}").json()


def test_fault_fatal_report(faulty: Api) -> None:
    faulty.server.faults.fatal_reports()
    report = _run_report(faulty)
    assert report["processingStatus"] == "FATAL"
    document = faulty.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}").json()
    error = gzip.decompress(httpx.get(document["url"], verify=faulty.context).content)
    assert "errorDetails" in json.loads(error)
    assert _run_report(faulty)["processingStatus"] == "DONE"


def test_fault_truncated_gzip_document(faulty: Api) -> None:
    faulty.server.faults.truncate_documents()
    report = _run_report(faulty)
    url = faulty.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}").json()["url"]
    truncated = httpx.get(url, verify=faulty.context).content
    with pytest.raises((EOFError, zlib.error, OSError)):
        gzip.decompress(truncated)
    intact = httpx.get(url, verify=faulty.context).content
    assert gzip.decompress(intact).startswith(b"amazon-order-id\t")


def test_concurrent_requests(faulty: Api) -> None:
    from concurrent.futures import ThreadPoolExecutor

    faulty.server.faults.slow("*", seconds=0.3, times=8)
    token = faulty.token()

    def call(_: int) -> int:
        with httpx.Client(base_url=faulty.server.endpoint, verify=faulty.context) as client:
            return client.get(
                "/fba/inventory/v1/summaries",
                params=INVENTORY,
                headers={"x-amz-access-token": token},
            ).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(call, range(8))) == [200] * 8
    assert time.monotonic() - started < 1.5  # served in parallel, not 8 x 0.3 s
