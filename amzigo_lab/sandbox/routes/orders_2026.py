"""Orders API 2026-01-01: searchOrders (BUYER/RECIPIENT data only with the PII role)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..errors import invalid_input
from ..money import ZERO, new_money
from ..orders import MAX_UPDATE_LAG, Order, OrderItem, OrderStatus
from ..protocol import Call, JsonObject, Response, Route
from ._common import (
    cursor_of,
    iso,
    lag_start,
    optional_time,
    parse_time,
    requested_marketplaces,
    scan_orders,
    to_date,
)

INCLUDED_DATA = frozenset(
    {
        "BUYER",
        "RECIPIENT",
        "PROCEEDS",
        "EXPENSE",
        "PROMOTION",
        "CANCELLATION",
        "FULFILLMENT",
        "PACKAGES",
        "TAX",
        "PAYMENT",
        "FULFILLMENT_ORDERS",
    }
)
PII_DATA = frozenset({"BUYER", "RECIPIENT"})
_STATUS = {
    OrderStatus.PENDING: "PENDING",
    OrderStatus.UNSHIPPED: "UNSHIPPED",
    OrderStatus.SHIPPED: "SHIPPED",
    OrderStatus.CANCELED: "CANCELLED",
}


def _item_json(order: Order, item: OrderItem, included: frozenset[str]) -> JsonObject:
    """One ``OrderItem`` of the 2026-01-01 model."""
    currency = order.currency
    body: JsonObject = {
        "orderItemId": item.order_item_id,
        "quantityOrdered": item.quantity,
        "product": {
            "asin": item.asin,
            "title": item.title,
            "sellerSku": item.sku,
            "condition": {"conditionType": "New", "conditionSubtype": "New"},
            "price": {"unitPrice": new_money(item.unit_price, currency)},
        },
    }
    if "PROCEEDS" in included:
        total = item.item_price + item.item_tax + item.shipping_price - item.promotion_discount
        body["proceeds"] = {
            "proceedsTotal": new_money(total, currency),
            "breakdowns": [
                {"type": "ITEM", "subtotal": new_money(item.item_price, currency)},
                {"type": "TAX", "subtotal": new_money(item.item_tax, currency)},
                {"type": "SHIPPING", "subtotal": new_money(item.shipping_price, currency)},
                {"type": "DISCOUNT", "subtotal": new_money(-item.promotion_discount, currency)},
            ],
        }
    if "PROMOTION" in included and item.promotion_discount > ZERO:
        body["promotion"] = {"breakdowns": [{"promotionId": "SANDBOX-PROMO-10"}]}
    if "CANCELLATION" in included and order.status is OrderStatus.CANCELED:
        body["cancellation"] = {
            "cancellationExecution": {"cancelledBy": "BUYER", "cancelReason": "NO_LONGER_NEEDED"}
        }
    if "FULFILLMENT" in included:
        done = item.quantity if order.shipped_at else 0
        body["fulfillment"] = {
            "quantityFulfilled": done,
            "quantityUnfulfilled": item.quantity - done,
        }
    if "TAX" in included:
        body["tax"] = {
            "taxCollections": [
                {"model": "MarketplaceFacilitator", "responsibleParty": "Amazon Services, Inc."}
            ]
        }
    return body


def order_json(order: Order, included: frozenset[str], pii: bool) -> JsonObject:
    """One ``Order`` of the 2026-01-01 model with the requested datasets."""
    currency = order.currency
    body: JsonObject = {
        "orderId": order.order_id,
        "createdTime": iso(order.purchase_date),
        "lastUpdatedTime": iso(order.last_update_date),
        "programs": ["PRIME"] if order.is_prime else [],
        "salesChannel": {
            "channelName": "AMAZON",
            "marketplaceId": order.marketplace.marketplace_id,
            "marketplaceName": order.marketplace.sales_channel,
        },
        "orderItems": [_item_json(order, item, included) for item in order.items],
    }
    if pii and order.buyer is not None and "BUYER" in included:
        body["buyer"] = {"buyerName": order.buyer.name, "buyerEmail": order.buyer.email}
    if pii and order.buyer is not None and "RECIPIENT" in included:
        a = order.buyer.address
        body["recipient"] = {
            "deliveryAddress": {
                "name": a.name,
                "addressLine1": a.line1,
                "city": a.city,
                "stateOrRegion": a.state_or_region,
                "postalCode": a.postal_code,
                "countryCode": a.country_code,
                "phone": a.phone,
                "addressType": "RESIDENTIAL",
            }
        }
    if "PROCEEDS" in included and order.status is not OrderStatus.CANCELED:
        body["proceeds"] = {"grandTotal": new_money(order.order_total, currency)}
    if "PAYMENT" in included and order.status is not OrderStatus.CANCELED:
        body["payment"] = {
            "paymentExecutions": [
                {"paymentMethod": "OTHER", "paymentAmount": new_money(order.order_total, currency)}
            ]
        }
    if "FULFILLMENT" in included:
        body["fulfillment"] = {
            "fulfillmentStatus": _STATUS[order.status],
            "fulfilledBy": "AMAZON" if order.fulfillment_channel == "AFN" else "MERCHANT",
            "fulfillmentServiceLevel": order.ship_service_level.upper(),
            "shipByWindow": {
                "earliestDateTime": iso(order.earliest_ship_date),
                "latestDateTime": iso(order.latest_ship_date),
            },
            "deliverByWindow": {
                "earliestDateTime": iso(order.earliest_delivery_date),
                "latestDateTime": iso(order.latest_delivery_date),
            },
        }
    if "PACKAGES" in included and order.shipped_at is not None:
        body["packages"] = [
            {
                "packageReferenceId": "1",
                "createdTime": iso(order.shipped_at - timedelta(hours=1)),
                "packageStatus": {"status": "DELIVERED" if order.delivered_at else "IN_TRANSIT"},
                "carrier": "AMZN_US" if order.marketplace.code == "US" else "DHL",
                "shipTime": iso(order.shipped_at),
                "trackingNumber": f"SBX{order.order_id.replace('-', '')}",
                "packageItems": [
                    {"orderItemId": i.order_item_id, "quantity": i.quantity} for i in order.items
                ],
            }
        ]
    return body


def _filters(call: Call) -> dict[str, Any]:
    """Validated query of a first searchOrders page."""
    request = call.request
    created_after = optional_time(call, "createdAfter")
    updated_after = optional_time(call, "lastUpdatedAfter")
    if (created_after is None) == (updated_after is None):
        raise invalid_input("Exactly one of createdAfter and lastUpdatedAfter must be provided.")
    now = call.services.world.now
    if created_after is not None:
        if request.param("lastUpdatedBefore"):
            raise invalid_input("lastUpdatedBefore cannot be combined with createdAfter.")
        mode, after, before = "created", created_after, optional_time(call, "createdBefore") or now
    else:
        assert updated_after is not None
        if request.param("createdBefore"):
            raise invalid_input("createdBefore cannot be combined with lastUpdatedAfter.")
        mode, after = "updated", updated_after
        before = optional_time(call, "lastUpdatedBefore") or now
    if before < after:
        raise invalid_input("The 'Before' time must be equal to or after the 'After' time.")
    statuses = request.params("fulfillmentStatuses")
    if any(s not in _STATUS.values() for s in statuses):
        raise invalid_input("Invalid fulfillmentStatuses value.")
    fulfilled_by = request.params("fulfilledBy")
    if any(f not in ("MERCHANT", "AMAZON") for f in fulfilled_by):
        raise invalid_input("Invalid fulfilledBy value.")
    included = request.params("includedData")
    if any(i not in INCLUDED_DATA for i in included):
        raise invalid_input("Invalid includedData value.")
    return {
        "mode": mode,
        "after": iso(after),
        "before": iso(before),
        "statuses": statuses,
        "fulfilledBy": fulfilled_by,
        "included": sorted(set(included)),
        "ids": [m.marketplace_id for m in requested_marketplaces(call, required=False)],
        "max": request.int_param("maxResultsPerPage", 100, 1, 100),
        "cursor": None,
    }


def search_orders(call: Call) -> Response:
    """``GET /orders/2026-01-01/orders``."""
    services = call.services
    seller_id = call.seller.seller_id
    token = call.request.param("paginationToken")
    state = (
        services.paginator.resolve(token, "searchOrders", seller_id) if token else _filters(call)
    )
    after, before = parse_time("after", state["after"]), parse_time("before", state["before"])
    first = to_date(after) if state["mode"] == "created" else lag_start(after, MAX_UPDATE_LAG)
    markets = [services.world.marketplace(i) for i in state["ids"]]
    included = frozenset(state["included"])
    orders: list[JsonObject] = []
    response: JsonObject = {}
    stream = scan_orders(
        services.world,
        call.seller.tenant,
        markets,
        first,
        to_date(before),
        cursor_of(state["cursor"]),
    )
    for position, order in stream:
        moment = order.purchase_date if state["mode"] == "created" else order.last_update_date
        if not after <= moment <= before:
            continue
        if state["statuses"] and _STATUS[order.status] not in state["statuses"]:
            continue
        by = "AMAZON" if order.fulfillment_channel == "AFN" else "MERCHANT"
        if state["fulfilledBy"] and by not in state["fulfilledBy"]:
            continue
        if len(orders) == state["max"]:
            next_state = {**state, "cursor": list(position)}
            response["pagination"] = {
                "nextToken": services.paginator.issue("searchOrders", seller_id, next_state)
            }
            break
        orders.append(order_json(order, included, services.pii_role))
    response["orders"] = orders
    response["createdBefore" if state["mode"] == "created" else "lastUpdatedBefore"] = state[
        "before"
    ]
    return Response.json(response)


ROUTES = (Route.of("GET", "/orders/2026-01-01/orders", "searchOrders", search_orders),)
