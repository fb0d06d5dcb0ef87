"""Finances API v0: listFinancialEvents (shipment events with fees, refund events)."""

from __future__ import annotations

from datetime import timedelta

from ..errors import invalid_input
from ..money import finance_money
from ..orders import MAX_REFUND_LAG, Order
from ..protocol import Call, JsonObject, Response, Route
from ._common import cursor_of, iso, lag_start, optional_time, parse_time, scan_orders, to_date


def shipment_event(order: Order) -> JsonObject:
    """``ShipmentEvent`` posted when ``order`` shipped."""
    assert order.shipped_at is not None
    currency = order.currency
    items: list[JsonObject] = []
    for item in order.items:
        charges = [
            {"ChargeType": "Principal", "ChargeAmount": finance_money(item.item_price, currency)},
            {"ChargeType": "Tax", "ChargeAmount": finance_money(item.item_tax, currency)},
            {
                "ChargeType": "ShippingCharge",
                "ChargeAmount": finance_money(item.shipping_price, currency),
            },
        ]
        fees = [{"FeeType": "Commission", "FeeAmount": finance_money(-item.referral_fee, currency)}]
        if item.fba_fee:
            fees.append(
                {
                    "FeeType": "FBAPerUnitFulfillmentFee",
                    "FeeAmount": finance_money(-item.fba_fee, currency),
                }
            )
        entry: JsonObject = {
            "SellerSKU": item.sku,
            "OrderItemId": item.order_item_id,
            "QuantityShipped": item.quantity,
            "ItemChargeList": charges,
            "ItemFeeList": fees,
        }
        if item.promotion_discount:
            entry["PromotionList"] = [
                {
                    "PromotionType": "PromotionMetaDataDefinitionValue",
                    "PromotionId": "SANDBOX-PROMO-10",
                    "PromotionAmount": finance_money(-item.promotion_discount, currency),
                }
            ]
        items.append(entry)
    return {
        "AmazonOrderId": order.order_id,
        "MarketplaceName": order.marketplace.sales_channel,
        "PostedDate": iso(order.shipped_at),
        "ShipmentItemList": items,
    }


def refund_event(order: Order) -> JsonObject:
    """``ShipmentEvent`` of the ``RefundEventList`` for ``order``'s refund."""
    refund = order.refund
    assert refund is not None
    currency = order.currency
    return {
        "AmazonOrderId": order.order_id,
        "MarketplaceName": order.marketplace.sales_channel,
        "PostedDate": iso(refund.posted),
        "ShipmentItemAdjustmentList": [
            {
                "SellerSKU": refund.sku,
                "OrderAdjustmentItemId": refund.order_item_id[::-1],
                "QuantityShipped": refund.quantity,
                "ItemChargeAdjustmentList": [
                    {
                        "ChargeType": "Principal",
                        "ChargeAmount": finance_money(-refund.amount, currency),
                    }
                ],
                "ItemFeeAdjustmentList": [
                    {
                        "FeeType": "Commission",
                        "FeeAmount": finance_money(refund.referral_fee_refund, currency),
                    }
                ],
            }
        ],
    }


def list_financial_events(call: Call) -> Response:
    """``GET /finances/v0/financialEvents``."""
    request, services = call.request, call.services
    seller_id = call.seller.seller_id
    token = request.param("NextToken")
    if token:
        state = services.paginator.resolve(token, "listFinancialEvents", seller_id)
    else:
        world = services.world
        before = optional_time(call, "PostedBefore") or world.now
        after = optional_time(call, "PostedAfter") or before - timedelta(days=2)
        if after > before:
            raise invalid_input("PostedAfter must be before PostedBefore.")
        state = {
            "after": iso(after),
            "before": iso(before),
            "max": request.int_param("MaxResultsPerPage", 100, 1, 100),
            "cursor": None,
        }
    after, before = parse_time("after", state["after"]), parse_time("before", state["before"])
    shipments: list[JsonObject] = []
    refunds: list[JsonObject] = []
    payload: JsonObject = {}
    stream = scan_orders(
        services.world,
        call.seller.tenant,
        list(call.seller.marketplaces),
        lag_start(after, MAX_REFUND_LAG),
        to_date(before),
        cursor_of(state["cursor"]),
    )
    for position, order in stream:
        ship = order.shipped_at is not None and after <= order.shipped_at < before
        refund = order.refund is not None and after <= order.refund.posted < before
        if not (ship or refund):
            continue
        if len(shipments) + len(refunds) >= state["max"]:
            payload["NextToken"] = services.paginator.issue(
                "listFinancialEvents", seller_id, {**state, "cursor": list(position)}
            )
            break
        if ship:
            shipments.append(shipment_event(order))
        if refund:
            refunds.append(refund_event(order))
    payload["FinancialEvents"] = {"ShipmentEventList": shipments, "RefundEventList": refunds}
    return Response.json({"payload": payload})


ROUTES = (
    Route.of("GET", "/finances/v0/financialEvents", "listFinancialEvents", list_financial_events),
)
