"""Every endpoint walked over HTTPS; each response validated against the official model."""

from __future__ import annotations

import gzip
import json
import time

import httpx

from amzigo_lab.sandbox import World
from tests.sandbox.helpers import US, Api, validate_response, validate_sales_and_traffic

ALL_MARKETPLACE_PARAMS = {
    "MarketplaceId": US,
    "MarketplaceIds": US,
    "marketplace_ids": US,
    "marketplaceIds": US,
}


def test_orders_v0_get_orders_and_items(api: Api) -> None:
    response = api.get(
        "/orders/v0/orders",
        CreatedAfter="2026-11-10T00:00:00Z",
        MaxResultsPerPage=20,
        **ALL_MARKETPLACE_PARAMS,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-amzn-RateLimit-Limit"]
    body = response.json()
    validate_response("orders_v0", "/orders/v0/orders", "get", body)
    orders = body["payload"]["Orders"]
    assert len(orders) == 20 and body["payload"]["NextToken"]
    assert all("BuyerInfo" not in o and "ShippingAddress" not in o for o in orders)
    assert isinstance(orders[0]["OrderTotal"]["Amount"], str)
    order_id = orders[0]["AmazonOrderId"]
    items = api.get(f"/orders/v0/orders/{order_id}/orderItems", **ALL_MARKETPLACE_PARAMS)
    assert items.status_code == 200
    validate_response("orders_v0", "/orders/v0/orders/{orderId}/orderItems", "get", items.json())
    single = api.get(f"/orders/v0/orders/{order_id}")
    validate_response("orders_v0", "/orders/v0/orders/{orderId}", "get", single.json())


def test_orders_v0_last_updated_filter(api: Api, world: World) -> None:
    after = "2026-11-18T00:00:00Z"
    response = api.get("/orders/v0/orders", LastUpdatedAfter=after, MarketplaceIds=US)
    body = response.json()
    validate_response("orders_v0", "/orders/v0/orders", "get", body)
    assert body["payload"]["LastUpdatedBefore"] == "2026-11-20T00:00:00Z"
    assert all(o["LastUpdateDate"] >= after for o in body["payload"]["Orders"])
    # orders purchased before the window but updated inside it are included
    assert any(o["PurchaseDate"] < after for o in body["payload"]["Orders"])


def test_orders_v0_requires_one_time_filter(api: Api) -> None:
    response = api.get("/orders/v0/orders", MarketplaceIds=US)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvalidInput"


def test_unknown_order_is_404_and_foreign_order_hidden(api: Api, world: World) -> None:
    assert api.get("/orders/v0/orders/999-0000000-0000000/orderItems").status_code == 404
    other = next(world.orders("cobalt-tech", world.last_day))
    assert api.get(f"/orders/v0/orders/{other.order_id}/orderItems").status_code == 404


def test_search_orders_2026(api: Api) -> None:
    response = api.get(
        "/orders/2026-01-01/orders",
        createdAfter="2026-11-15T00:00:00Z",
        includedData="BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,PACKAGES,TAX,PAYMENT,CANCELLATION",
        maxResultsPerPage=50,
        **ALL_MARKETPLACE_PARAMS,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    validate_response("orders_2026", "/orders/2026-01-01/orders", "get", body)
    assert body["pagination"]["nextToken"]
    orders = body["orders"]
    assert all("buyer" not in o and "recipient" not in o for o in orders)  # no PII role
    assert {o["fulfillment"]["fulfilledBy"] for o in orders} == {"AMAZON", "MERCHANT"}
    assert isinstance(orders[0]["orderItems"][0]["product"]["price"]["unitPrice"]["amount"], str)


def test_reports_sales_and_traffic_lifecycle(api: Api) -> None:
    spec = {
        "reportType": "GET_SALES_AND_TRAFFIC_REPORT",
        "marketplaceIds": [US],
        "MarketplaceIds": [US],
        "dataStartTime": "2026-10-01",
        "dataEndTime": "2026-10-31",
        "reportOptions": {"dateGranularity": "WEEK", "asinGranularity": "SKU"},
    }
    created = api.post("/reports/2021-06-30/reports", spec)
    assert created.status_code == 202, created.text
    validate_response("reports", "/reports/2021-06-30/reports", "post", created.json(), "202")
    report_id = created.json()["reportId"]
    seen = []
    for _ in range(200):
        report = api.get(f"/reports/2021-06-30/reports/{report_id}").json()
        validate_response("reports", "/reports/2021-06-30/reports/{reportId}", "get", report)
        seen.append(report["processingStatus"])
        if report["processingStatus"] == "DONE":
            break
        time.sleep(0.02)
    assert seen[0] == "IN_QUEUE" and "IN_PROGRESS" in seen and seen[-1] == "DONE"
    document = api.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}").json()
    validate_response(
        "reports", "/reports/2021-06-30/documents/{reportDocumentId}", "get", document
    )
    assert document["compressionAlgorithm"] == "GZIP"
    raw = httpx.get(document["url"], verify=api.context)  # no auth header, like S3
    assert raw.status_code == 200
    content = json.loads(gzip.decompress(raw.content).decode("utf-8"))
    validate_sales_and_traffic(content)
    assert content["salesAndTrafficByDate"][0]["date"] == "2026-09-27"  # Sunday-based weeks
    assert all("sku" in row for row in content["salesAndTrafficByAsin"])
    tampered = document["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.get(tampered, verify=api.context).status_code == 403


def test_flat_file_orders_report(api: Api, world: World) -> None:
    spec = {
        "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
        "marketplaceIds": [US],
        "dataStartTime": "2026-11-17T00:00:00Z",
        "dataEndTime": "2026-11-19T23:59:59Z",
    }
    report_id = api.post("/reports/2021-06-30/reports", spec).json()["reportId"]
    for _ in range(200):
        report = api.get(f"/reports/2021-06-30/reports/{report_id}").json()
        if report["processingStatus"] == "DONE":
            break
        time.sleep(0.02)
    url = api.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}").json()["url"]
    text = gzip.decompress(httpx.get(url, verify=api.context).content).decode("utf-8")
    lines = text.splitlines()
    header = lines[0].split("\t")
    assert header[:5] == [
        "amazon-order-id",
        "merchant-order-id",
        "purchase-date",
        "last-updated-date",
        "order-status",
    ]
    assert all(len(line.split("\t")) == len(header) for line in lines[1:])
    expected_rows = sum(
        len(o.items)
        for day in world.days()
        for o in world.orders("acme-outdoor", day, world.marketplace(US))
        if "2026-11-17" <= o.last_update_date.date().isoformat() <= "2026-11-19"
    )
    assert len(lines) - 1 == expected_rows > 0


def test_fba_inventory(api: Api) -> None:
    response = api.get(
        "/fba/inventory/v1/summaries",
        details="true",
        granularityType="Marketplace",
        granularityId=US,
        **ALL_MARKETPLACE_PARAMS,
    )
    body = response.json()
    validate_response("inventory", "/fba/inventory/v1/summaries", "get", body)
    summaries = body["payload"]["inventorySummaries"]
    assert len(summaries) == 50 and body["pagination"]["nextToken"]
    assert all(s["inventoryDetails"]["fulfillableQuantity"] >= 0 for s in summaries)
    second = api.get(
        "/fba/inventory/v1/summaries",
        nextToken=body["pagination"]["nextToken"],
        granularityType="Marketplace",
        granularityId=US,
        marketplaceIds=US,
    ).json()
    validate_response("inventory", "/fba/inventory/v1/summaries", "get", second)
    assert len(second["payload"]["inventorySummaries"]) == 10
    assert "pagination" not in second


def test_finances(api: Api) -> None:
    response = api.get(
        "/finances/v0/financialEvents",
        PostedAfter="2026-11-10T00:00:00Z",
        PostedBefore="2026-11-19T00:00:00Z",
        **ALL_MARKETPLACE_PARAMS,
    )
    body = response.json()
    validate_response("finances", "/finances/v0/financialEvents", "get", body)
    events = body["payload"]["FinancialEvents"]
    assert events["ShipmentEventList"] and events["RefundEventList"]
    fees = {
        f["FeeType"]
        for e in events["ShipmentEventList"]
        for i in e["ShipmentItemList"]
        for f in i["ItemFeeList"]
    }
    assert {"Commission", "FBAPerUnitFulfillmentFee"} <= fees
    assert body["payload"]["NextToken"]


def test_catalog(api: Api, world: World) -> None:
    product = world.catalog("acme-outdoor")[0]
    found = api.get(
        "/catalog/2022-04-01/items",
        identifiers=product.asin,
        identifiersType="ASIN",
        includedData="summaries,identifiers,salesRanks,productTypes,attributes,images",
        **ALL_MARKETPLACE_PARAMS,
    ).json()
    validate_response("catalog", "/catalog/2022-04-01/items", "get", found)
    assert found["numberOfResults"] == 1 and found["items"][0]["asin"] == product.asin
    by_keyword = api.get("/catalog/2022-04-01/items", keywords="acme", marketplaceIds=US).json()
    validate_response("catalog", "/catalog/2022-04-01/items", "get", by_keyword)
    assert by_keyword["numberOfResults"] == 60 and by_keyword["pagination"]["nextToken"]
    item = api.get(f"/catalog/2022-04-01/items/{product.asin}", marketplaceIds=US).json()
    validate_response("catalog", "/catalog/2022-04-01/items/{asin}", "get", item)
    assert item["summaries"][0]["itemName"] == product.title
    assert api.get("/catalog/2022-04-01/items/B000000000", marketplaceIds=US).status_code == 404


def test_customer_feedback(api: Api, world: World) -> None:
    asin = world.catalog("acme-outdoor")[1].asin
    base = f"/customerFeedback/2024-06-01/items/{asin}"
    topics = api.get(f"{base}/reviews/topics", marketplaceId=US, sortBy="MENTIONS").json()
    validate_response(
        "feedback", "/customerFeedback/2024-06-01/items/{asin}/reviews/topics", "get", topics
    )
    assert topics["topics"]["positiveTopics"] and topics["topics"]["negativeTopics"]
    trends = api.get(f"{base}/reviews/trends", marketplaceId=US).json()
    validate_response(
        "feedback", "/customerFeedback/2024-06-01/items/{asin}/reviews/trends", "get", trends
    )
    assert len(trends["reviewTrends"]["positiveTopics"][0]["trendMetrics"]) == 6
    node = api.get(f"{base}/browseNode", marketplaceId=US).json()
    validate_response(
        "feedback", "/customerFeedback/2024-06-01/items/{asin}/browseNode", "get", node
    )
    assert api.get(f"{base}/reviews/topics", marketplaceId=US, sortBy="X").status_code == 400


def test_sales_order_metrics(api: Api, world: World) -> None:
    response = api.get(
        "/sales/v1/orderMetrics",
        interval="2026-11-01T00:00:00Z--2026-11-08T00:00:00Z",
        granularity="Day",
        **ALL_MARKETPLACE_PARAMS,
    )
    body = response.json()
    validate_response("sales", "/sales/v1/orderMetrics", "get", body)
    assert len(body["payload"]) == 7
    first = body["payload"][0]
    day = world.first_day.replace(year=2026, month=11, day=1)
    orders = [
        o
        for o in world.orders("acme-outdoor", day, world.marketplace(US))
        if o.status.value != "Canceled"
    ]
    assert first["orderCount"] == len(orders)
    assert first["unitCount"] == sum(o.units for o in orders)
    total = api.get(
        "/sales/v1/orderMetrics",
        interval="2026-11-01T00:00:00Z--2026-11-08T00:00:00Z",
        granularity="Total",
        marketplaceIds=US,
    ).json()
    assert total["payload"][0]["orderCount"] == sum(p["orderCount"] for p in body["payload"])


def test_tokens_endpoint_schema(api: Api) -> None:
    body = {
        "restrictedResources": [
            {
                "method": "GET",
                "path": "/orders/v0/orders",
                "dataElements": ["buyerInfo", "shippingAddress"],
            }
        ],
        "marketplaceIds": [US],
        "MarketplaceIds": [US],
    }
    response = api.post("/tokens/2021-03-01/restrictedDataToken", body)
    assert response.status_code == 200, response.text
    validate_response("tokens", "/tokens/2021-03-01/restrictedDataToken", "post", response.json())
