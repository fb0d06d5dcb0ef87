"""Orders API v0: getOrders, getOrder, getOrderItems (PII only through a Restricted Data Token)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ..errors import invalid_input, not_found
from ..money import ZERO, v0_money
from ..orders import MAX_UPDATE_LAG, Order, OrderStatus
from ..protocol import Call, JsonObject, Response, Route
from ._common import (
    Cursor,
    cursor_of,
    iso,
    lag_start,
    optional_time,
    parse_time,
    requested_marketplaces,
    scan_orders,
    to_date,
)

ORDERS_PATH = "/orders/v0/orders"


def order_json(order: Order, elements: frozenset[str]) -> JsonObject:
    """An Orders v0 ``Order``; BuyerInfo/ShippingAddress only with the RDT data elements."""
    shipped = order.status is OrderStatus.SHIPPED
    units = order.units
    body: JsonObject = {
        "AmazonOrderId": order.order_id,
        "PurchaseDate": iso(order.purchase_date),
        "LastUpdateDate": iso(order.last_update_date),
        "OrderStatus": order.status.value,
        "FulfillmentChannel": order.fulfillment_channel,
        "SalesChannel": order.marketplace.sales_channel,
        "ShipServiceLevel": order.ship_service_level,
        "ShipmentServiceLevelCategory": order.ship_service_level,
        "NumberOfItemsShipped": units if shipped else 0,
        "NumberOfItemsUnshipped": 0 if shipped or order.canceled_at else units,
        "PaymentMethod": "Other",
        "PaymentMethodDetails": ["Standard"],
        "MarketplaceId": order.marketplace.marketplace_id,
        "OrderType": "StandardOrder",
        "EarliestShipDate": iso(order.earliest_ship_date),
        "LatestShipDate": iso(order.latest_ship_date),
        "EarliestDeliveryDate": iso(order.earliest_delivery_date),
        "LatestDeliveryDate": iso(order.latest_delivery_date),
        "IsBusinessOrder": order.is_business,
        "IsPrime": order.is_prime,
        "IsPremiumOrder": False,
        "IsGlobalExpressEnabled": False,
        "IsReplacementOrder": False,
        "IsSoldByAB": False,
        "IsISPU": False,
        "IsAccessPointOrder": False,
        "HasRegulatedItems": False,
    }
    if order.status is not OrderStatus.CANCELED:
        body["OrderTotal"] = v0_money(order.order_total, order.currency)
    if order.buyer is not None and "buyerInfo" in elements:
        body["BuyerInfo"] = {"BuyerEmail": order.buyer.email, "BuyerName": order.buyer.name}
    if order.buyer is not None and "shippingAddress" in elements:
        a = order.buyer.address
        body["ShippingAddress"] = {
            "Name": a.name,
            "AddressLine1": a.line1,
            "City": a.city,
            "StateOrRegion": a.state_or_region,
            "PostalCode": a.postal_code,
            "CountryCode": a.country_code,
            "Phone": a.phone,
            "AddressType": "Residential",
        }
    return body


def _filters(call: Call) -> dict[str, Any]:
    """Validated query of a first getOrders page."""
    created_after = optional_time(call, "CreatedAfter")
    updated_after = optional_time(call, "LastUpdatedAfter")
    if (created_after is None) == (updated_after is None):
        raise invalid_input("Exactly one of CreatedAfter and LastUpdatedAfter must be specified.")
    world = call.services.world
    if created_after is not None:
        if call.request.param("LastUpdatedBefore"):
            raise invalid_input("LastUpdatedBefore cannot be used with CreatedAfter.")
        mode, after = "created", created_after
        before = optional_time(call, "CreatedBefore") or world.now
    else:
        assert updated_after is not None
        if call.request.param("CreatedBefore"):
            raise invalid_input("CreatedBefore cannot be used with LastUpdatedAfter.")
        mode, after = "updated", updated_after
        before = optional_time(call, "LastUpdatedBefore") or world.now
    if before < after:
        raise invalid_input("The 'Before' date must be later than the 'After' date.")
    statuses = call.request.params("OrderStatuses")
    valid = {s.value for s in OrderStatus}
    if any(s not in valid for s in statuses):
        raise invalid_input("Invalid OrderStatuses value.")
    channels = call.request.params("FulfillmentChannels")
    if any(c not in ("AFN", "MFN") for c in channels):
        raise invalid_input("Invalid FulfillmentChannels value.")
    return {
        "mode": mode,
        "after": iso(after),
        "before": iso(before),
        "statuses": statuses,
        "channels": channels,
        "ids": [m.marketplace_id for m in requested_marketplaces(call)],
        "max": call.request.int_param("MaxResultsPerPage", 100, 1, 100),
        "cursor": None,
    }


def _matches(order: Order, state: dict[str, Any], after: datetime, before: datetime) -> bool:
    """Whether ``order`` satisfies the getOrders filters in ``state``."""
    moment = order.purchase_date if state["mode"] == "created" else order.last_update_date
    if not after <= moment <= before:
        return False
    if state["statuses"] and order.status.value not in state["statuses"]:
        return False
    return not state["channels"] or order.fulfillment_channel in state["channels"]


def get_orders(call: Call) -> Response:
    """``GET /orders/v0/orders``."""
    services = call.services
    token = call.request.param("NextToken")
    seller_id = call.seller.seller_id
    state = services.paginator.resolve(token, "getOrders", seller_id) if token else _filters(call)
    after = parse_time("after", state["after"])
    before = parse_time("before", state["before"])
    markets = [services.world.marketplace(i) for i in state["ids"]]
    first = to_date(after) if state["mode"] == "created" else lag_start(after, MAX_UPDATE_LAG)
    cursor = cursor_of(state["cursor"])
    stream: Iterator[tuple[Cursor, Order]] = scan_orders(
        services.world, call.seller.tenant, markets, first, to_date(before), cursor
    )
    page: list[JsonObject] = []
    elements = call.grant.data_elements("GET", ORDERS_PATH)
    payload: JsonObject = {}
    for position, order in stream:
        if not _matches(order, state, after, before):
            continue
        if len(page) == state["max"]:
            payload["NextToken"] = services.paginator.issue(
                "getOrders", seller_id, {**state, "cursor": list(position)}
            )
            break
        page.append(order_json(order, elements))
    payload["Orders"] = page
    payload["CreatedBefore" if state["mode"] == "created" else "LastUpdatedBefore"] = state[
        "before"
    ]
    return Response.json({"payload": payload})


def _owned_order(call: Call) -> Order:
    """The order named in the path, if it belongs to the caller (404 otherwise)."""
    order_id = call.request.path_params["orderId"]
    order = call.services.world.order(order_id)
    if order is None or order.tenant != call.seller.tenant:
        raise not_found(f"Order {order_id} was not found.")
    return order


def get_order(call: Call) -> Response:
    """``GET /orders/v0/orders/{orderId}``."""
    order = _owned_order(call)
    elements = call.grant.data_elements("GET", call.request.path)
    return Response.json({"payload": order_json(order, elements)})


def get_order_items(call: Call) -> Response:
    """``GET /orders/v0/orders/{orderId}/orderItems``."""
    order = _owned_order(call)
    token = call.request.param("NextToken")
    if token:
        call.services.paginator.resolve(token, "getOrderItems", call.seller.seller_id)
    items: list[JsonObject] = []
    for item in order.items:
        shipped = item.quantity if order.status is OrderStatus.SHIPPED else 0
        items.append(
            {
                "ASIN": item.asin,
                "SellerSKU": item.sku,
                "OrderItemId": item.order_item_id,
                "Title": item.title,
                "QuantityOrdered": item.quantity,
                "QuantityShipped": shipped,
                "ProductInfo": {"NumberOfItems": "1"},
                "ItemPrice": v0_money(item.item_price, order.currency),
                "ShippingPrice": v0_money(item.shipping_price, order.currency),
                "ItemTax": v0_money(item.item_tax, order.currency),
                "ShippingTax": v0_money(ZERO, order.currency),
                "ShippingDiscount": v0_money(ZERO, order.currency),
                "ShippingDiscountTax": v0_money(ZERO, order.currency),
                "PromotionDiscount": v0_money(item.promotion_discount, order.currency),
                "PromotionDiscountTax": v0_money(ZERO, order.currency),
                "PromotionIds": ["SANDBOX-PROMO-10"] if item.promotion_discount else [],
                "IsGift": "false",
                "ConditionId": "New",
                "ConditionSubtypeId": "New",
                "IsTransparency": False,
                "SerialNumberRequired": False,
            }
        )
    return Response.json({"payload": {"AmazonOrderId": order.order_id, "OrderItems": items}})


ROUTES = (
    Route.of("GET", ORDERS_PATH, "getOrders", get_orders),
    Route.of("GET", "/orders/v0/orders/{orderId}", "getOrder", get_order),
    Route.of("GET", "/orders/v0/orders/{orderId}/orderItems", "getOrderItems", get_order_items),
)
