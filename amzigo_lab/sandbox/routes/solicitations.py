"""Solicitations API v1: review-request actions, offered once per order inside the window."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..errors import invalid_input, not_found
from ..orders import Order, OrderStatus
from ..protocol import Call, JsonObject, Response, Route
from ._common import single_marketplace

ACTION = "productReviewAndSellerFeedback"
WINDOW_OPENS_AFTER = timedelta(days=5)  # after EarliestDeliveryDate
WINDOW_CLOSES_AFTER = timedelta(days=30)  # after LatestDeliveryDate


def in_window(order: Order, now: datetime) -> bool:
    """Whether ``now`` lies in the order's review-request window."""
    opens = order.earliest_delivery_date + WINDOW_OPENS_AFTER
    closes = order.latest_delivery_date + WINDOW_CLOSES_AFTER
    return opens <= now <= closes


def eligible(call: Call, order: Order) -> bool:
    """Whether a review request may still be sent for ``order``."""
    return (
        order.status is OrderStatus.SHIPPED
        and in_window(order, call.services.world.now)
        and not call.services.solicitations.was_sent(order.order_id)
    )


def _order(call: Call) -> Order:
    """The caller's order named in the path (404 otherwise)."""
    order_id = call.request.path_params["amazonOrderId"]
    order = call.services.world.order(order_id)
    if order is None or order.tenant != call.seller.tenant:
        raise not_found(f"Order {order_id} was not found.")
    return order


def get_solicitation_actions(call: Call) -> Response:
    """``GET /solicitations/v1/orders/{amazonOrderId}``."""
    order = _order(call)
    market = single_marketplace(call)
    base = f"/solicitations/v1/orders/{order.order_id}"
    query = f"?marketplaceIds={market.marketplace_id}"
    links: list[JsonObject] = []
    embedded: list[JsonObject] = []
    if eligible(call, order):
        links.append({"href": f"{base}/solicitations/{ACTION}{query}", "name": ACTION})
        embedded.append(
            {
                "_links": {
                    "schema": {"href": f"{base}/solicitations/{ACTION}/schema", "name": ACTION},
                    "self": {"href": f"{base}/solicitations/{ACTION}{query}", "name": ACTION},
                },
                "payload": {"name": ACTION},
            }
        )
    return Response.json(
        {
            "_links": {"actions": links, "self": {"href": f"{base}{query}"}},
            "_embedded": {"actions": embedded},
        }
    )


def create_review_solicitation(call: Call) -> Response:
    """``POST .../orders/{amazonOrderId}/solicitations/productReviewAndSellerFeedback``."""
    order = _order(call)
    ledger = call.services.solicitations
    ledger.attempt(order.order_id)
    if not eligible(call, order) or not ledger.record(order.order_id):
        raise invalid_input(
            "The order is not eligible for a productReviewAndSellerFeedback solicitation."
        )
    return Response.json({}, status=201)


_BASE = "/solicitations/v1/orders/{amazonOrderId}"
ROUTES = (
    Route.of("GET", _BASE, "getSolicitationActionsForOrder", get_solicitation_actions),
    Route.of(
        "POST",
        f"{_BASE}/solicitations/{ACTION}",
        "createProductReviewAndSellerFeedbackSolicitation",
        create_review_solicitation,
    ),
)
