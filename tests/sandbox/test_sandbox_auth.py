"""LWA tokens, expiry, and Restricted Data Token gating of PII."""

from __future__ import annotations

import time
from pathlib import Path

from amzigo_lab.sandbox import SandboxServer, World
from tests.sandbox.helpers import US, Api, lwa_form


def test_lwa_exchange_and_errors(api: Api) -> None:
    ok = api.http.post("/auth/o2/token", data=lwa_form("cobalt-tech"))
    body = ok.json()
    assert ok.status_code == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["refresh_token"] == "sandbox-refresh-cobalt-tech"
    bad = api.http.post("/auth/o2/token", data=lwa_form("nobody"))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    wrong_client = {**lwa_form("cobalt-tech"), "client_secret": "nope"}
    assert api.http.post("/auth/o2/token", data=wrong_client).status_code == 401


def test_missing_or_invalid_token_is_403(api: Api) -> None:
    missing = api.http.get("/orders/v0/orders", params={"CreatedAfter": "2026-11-01"})
    assert missing.status_code == 403
    assert missing.json()["errors"][0]["code"] == "Unauthorized"
    forged = api.get("/orders/v0/orders", token="sandbox-access-forged", CreatedAfter="2026-11-01")
    assert forged.status_code == 403


def test_access_token_identifies_the_seller(server: SandboxServer, world: World) -> None:
    bluebird = Api(server, "bluebird-home")
    response = bluebird.get("/orders/v0/orders", CreatedAfter="2026-11-19", MarketplaceIds=US)
    first = response.json()["payload"]["Orders"][0]["AmazonOrderId"]
    assert world.order(first) is not None and world.order(first).tenant == "bluebird-home"
    uk_only = bluebird.get(
        "/orders/v0/orders", CreatedAfter="2026-11-19", MarketplaceIds="A1F83G8C2ARO7P"
    )
    assert uk_only.status_code == 400  # bluebird does not sell in the UK


def test_token_expiry(world: World, tmp_path: Path, state_dir: Path) -> None:
    with SandboxServer(world, state_dir, time_scale=None, token_lifetime=0.3) as short:
        api = Api(short)
        assert (
            api.get("/orders/v0/orders", CreatedAfter="2026-11-19", MarketplaceIds=US).status_code
            == 200
        )
        time.sleep(0.4)
        expired = api.get("/orders/v0/orders", CreatedAfter="2026-11-19", MarketplaceIds=US)
        assert expired.status_code == 403
        error = expired.json()["errors"][0]
        assert error == {
            "code": "Unauthorized",
            "message": "The access token you provided has expired",
            "details": "",
        }
        assert (
            api.get(
                "/orders/v0/orders",
                token=api.token(refresh=True),
                CreatedAfter="2026-11-19",
                MarketplaceIds=US,
            ).status_code
            == 200
        )


def _rdt(api: Api, resources: list[dict[str, object]]) -> str:
    response = api.post(
        "/tokens/2021-03-01/restrictedDataToken", {"restrictedResources": resources}
    )
    assert response.status_code == 200, response.text
    return response.json()["restrictedDataToken"]


def test_rdt_gates_pii_by_data_element_and_path(api: Api, world: World) -> None:
    buyer_only = _rdt(
        api, [{"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo"]}]
    )
    orders = api.get(
        "/orders/v0/orders", token=buyer_only, CreatedAfter="2026-11-18", MarketplaceIds=US
    ).json()["payload"]["Orders"]
    mfn = [o for o in orders if o["FulfillmentChannel"] == "MFN"]
    afn = [o for o in orders if o["FulfillmentChannel"] == "AFN"]
    assert mfn and all("BuyerInfo" in o and "ShippingAddress" not in o for o in mfn)
    assert afn and all("BuyerInfo" not in o for o in afn)  # FBA orders carry no buyer
    # the RDT only covers getOrders: other operations are refused with it
    order_id = orders[0]["AmazonOrderId"]
    refused = api.get(f"/orders/v0/orders/{order_id}/orderItems", token=buyer_only)
    assert refused.status_code == 403
    items_rdt = _rdt(
        api,
        [
            {
                "method": "GET",
                "path": "/orders/v0/orders/{orderId}/orderItems",
                "dataElements": ["buyerInfo"],
            }
        ],
    )
    assert api.get(f"/orders/v0/orders/{order_id}/orderItems", token=items_rdt).status_code == 200
    specific = _rdt(
        api,
        [
            {
                "method": "GET",
                "path": f"/orders/v0/orders/{order_id}",
                "dataElements": ["shippingAddress"],
            }
        ],
    )
    single = api.get(f"/orders/v0/orders/{order_id}", token=specific).json()["payload"]
    assert ("ShippingAddress" in single) == (single["FulfillmentChannel"] == "MFN")


def test_rdt_request_validation(api: Api) -> None:
    bad_path = api.post(
        "/tokens/2021-03-01/restrictedDataToken",
        {"restrictedResources": [{"method": "GET", "path": "/fba/inventory/v1/summaries"}]},
    )
    assert bad_path.status_code == 400
    bad_element = api.post(
        "/tokens/2021-03-01/restrictedDataToken",
        {
            "restrictedResources": [
                {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["creditCard"]}
            ]
        },
    )
    assert bad_element.status_code == 400
    too_many = api.post(
        "/tokens/2021-03-01/restrictedDataToken",
        {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders"}] * 51},
    )
    assert too_many.status_code == 400


def test_search_orders_pii_only_with_role(world: World, state_dir: Path) -> None:
    with SandboxServer(world, state_dir, time_scale=None, pii_role=True) as pii:
        api = Api(pii)
        orders = api.get(
            "/orders/2026-01-01/orders",
            createdAfter="2026-11-18T00:00:00Z",
            includedData="BUYER,RECIPIENT",
            marketplaceIds=US,
        ).json()["orders"]
        merchant = [o for o in orders if "buyer" in o]
        assert merchant and all("deliveryAddress" in o["recipient"] for o in merchant)
        without = api.get(
            "/orders/2026-01-01/orders", createdAfter="2026-11-18T00:00:00Z", marketplaceIds=US
        ).json()["orders"]
        assert not any("buyer" in o for o in without)
