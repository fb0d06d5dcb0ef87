"""Pagination tokens: opaque, stable, validated, bound to operation and seller."""

from __future__ import annotations

from amzigo_lab.sandbox import World
from tests.sandbox.helpers import US, Api


def _page(api: Api, **params: object) -> dict:
    response = api.get("/orders/2026-01-01/orders", marketplaceIds=US, **params)
    assert response.status_code == 200, response.text
    return response.json()


def test_search_orders_walk_matches_world(api: Api, world: World) -> None:
    seen: list[str] = []
    page = _page(api, lastUpdatedAfter="2026-11-16T00:00:00Z", maxResultsPerPage=37)
    while True:
        seen.extend(o["orderId"] for o in page["orders"])
        token = page.get("pagination", {}).get("nextToken")
        if not token:
            break
        page = _page(api, paginationToken=token)
    expected = {
        o.order_id
        for day in world.days()
        for o in world.orders("acme-outdoor", day, world.marketplace(US))
        if o.last_update_date.isoformat() >= "2026-11-16"
    }
    assert len(seen) == len(set(seen)) and set(seen) == expected


def test_tokens_are_stable(api: Api) -> None:
    first = _page(api, createdAfter="2026-11-10T00:00:00Z", maxResultsPerPage=5)
    second = _page(api, createdAfter="2026-11-10T00:00:00Z", maxResultsPerPage=5)
    assert first["pagination"]["nextToken"] == second["pagination"]["nextToken"]


def test_bad_tokens_are_rejected(api: Api, server: object) -> None:
    token = _page(api, createdAfter="2026-11-10T00:00:00Z", maxResultsPerPage=5)["pagination"][
        "nextToken"
    ]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (tampered, "garbage", token + "x"):
        response = api.get("/orders/2026-01-01/orders", paginationToken=bad)
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "InvalidInput"
    # another operation or another seller cannot use the token
    assert api.get("/orders/v0/orders", NextToken=token).status_code == 400
    other = Api(api.server, "cobalt-tech")
    assert other.get("/orders/2026-01-01/orders", paginationToken=token).status_code == 400


def test_finances_and_catalog_pages(api: Api) -> None:
    first = api.get(
        "/finances/v0/financialEvents", PostedAfter="2026-11-01T00:00:00Z", MaxResultsPerPage=10
    ).json()["payload"]
    following = api.get("/finances/v0/financialEvents", NextToken=first["NextToken"]).json()

    def order_ids(payload: dict) -> set[str]:
        events = payload["FinancialEvents"]
        return {e["AmazonOrderId"] for e in events["ShipmentEventList"] + events["RefundEventList"]}

    ids, more = order_ids(first), order_ids(following["payload"])
    assert ids and more and not ids & more
    catalog = api.get(
        "/catalog/2022-04-01/items", keywords="acme", marketplaceIds=US, pageSize=20
    ).json()
    page2 = api.get(
        "/catalog/2022-04-01/items", pageToken=catalog["pagination"]["nextToken"], marketplaceIds=US
    ).json()
    assert page2["pagination"]["previousToken"]
    assert {i["asin"] for i in page2["items"]}.isdisjoint(i["asin"] for i in catalog["items"])
