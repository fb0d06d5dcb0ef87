"""The real python-amazon-sp-api client against the sandbox: pagination, reports, 429, RDT."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from amzigo_lab.sandbox import SandboxServer, World
from tests.sandbox.spapi_client import clean_environment, clear_token_cache, client_kwargs

clean_environment()
from sp_api.api import Orders, Reports, Tokens  # noqa: E402
from sp_api.base import SellingApiRequestThrottledException  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    clean_environment()
    clear_token_cache()
    yield
    clear_token_cache()


def test_get_orders_pagination(server: SandboxServer, world: World) -> None:
    client = Orders(**client_kwargs(server, "bluebird-home"))
    ids: list[str] = []
    token = None
    pages = 0
    while True:
        if token:
            response = client.get_orders(NextToken=token)
        else:
            response = client.get_orders(CreatedAfter="2026-11-12T00:00:00Z", MaxResultsPerPage=40)
        pages += 1
        ids.extend(o["AmazonOrderId"] for o in response.payload["Orders"])
        token = response.next_token
        if not token:
            break
    market = world.marketplace("ATVPDKIKX0DER")
    expected = [
        o.order_id
        for day in world.days(world.today.replace(day=12))
        for o in world.orders("bluebird-home", day, market)
    ]
    assert ids == expected and pages > 1
    assert response.rate_limit  # x-amzn-RateLimit-Limit surfaced by the client


def test_reports_lifecycle_and_download(server: SandboxServer) -> None:
    client = Reports(**client_kwargs(server, "acme-outdoor"))
    created = client.create_report(
        reportType="GET_SALES_AND_TRAFFIC_REPORT",
        dataStartTime="2026-11-01",
        dataEndTime="2026-11-03",
        reportOptions={"dateGranularity": "DAY", "asinGranularity": "CHILD"},
    )
    report_id = created.payload["reportId"]
    for _ in range(200):
        report = client.get_report(report_id).payload
        if report["processingStatus"] in ("DONE", "FATAL"):
            break
        time.sleep(0.02)
    assert report["processingStatus"] == "DONE"
    document = client.get_report_document(
        report["reportDocumentId"], download=True, character_code="utf-8"
    )
    assert '"salesAndTrafficByDate"' in document.payload["document"]


def test_throttling_raises_429(world: World, server: SandboxServer) -> None:
    with SandboxServer(world, server.state_dir, time_scale=1.0) as slow:
        client = Orders(**client_kwargs(slow, "cobalt-tech"))
        for _ in range(20):  # burst of getOrders is 20
            client.get_orders(CreatedAfter="2026-11-19T00:00:00Z", MaxResultsPerPage=1)
        with pytest.raises(SellingApiRequestThrottledException) as caught:
            client.get_orders(CreatedAfter="2026-11-19T00:00:00Z", MaxResultsPerPage=1)
        assert caught.value.code == 429
        assert caught.value.headers["x-amzn-RateLimit-Limit"] == "0.0167"
        assert slow.stats.throttled["getOrders"] == 1


def test_restricted_data_token_unlocks_pii(server: SandboxServer) -> None:
    kwargs = client_kwargs(server, "acme-outdoor")
    rdt = (
        Tokens(**kwargs)
        .create_restricted_data_token(
            restrictedResources=[
                {
                    "method": "GET",
                    "path": "/orders/v0/orders",
                    "dataElements": ["buyerInfo", "shippingAddress"],
                }
            ]
        )
        .payload["restrictedDataToken"]
    )
    plain = Orders(**kwargs).get_orders(CreatedAfter="2026-11-18T00:00:00Z").payload["Orders"]
    with_pii = (
        Orders(**kwargs, restricted_data_token=rdt)
        .get_orders(CreatedAfter="2026-11-18T00:00:00Z")
        .payload["Orders"]
    )
    mfn = [o for o in with_pii if o["FulfillmentChannel"] == "MFN"]
    assert mfn and all(
        o["BuyerInfo"]["BuyerEmail"].endswith(".example")
        or o["BuyerInfo"]["BuyerEmail"].endswith("@example.com")
        for o in mfn
    )
    assert all("ShippingAddress" in o for o in mfn)
    assert not any("BuyerInfo" in o or "ShippingAddress" in o for o in plain)
