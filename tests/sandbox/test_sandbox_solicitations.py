"""Review solicitations: offered only inside the delivery window, once per order."""

from __future__ import annotations

from datetime import timedelta

from amzigo_lab.sandbox import Order, OrderStatus, World
from tests.sandbox.helpers import US, Api, validate_response

PATH = "/solicitations/v1/orders/{amazonOrderId}"


def _find(world: World, predicate: object) -> Order:
    for day in world.days():
        for order in world.orders("acme-outdoor", day, world.marketplace(US)):
            if predicate(order):  # type: ignore[operator]
                return order
    raise AssertionError("no such order")


def _actions(api: Api, order: Order) -> list[str]:
    body = api.get(f"/solicitations/v1/orders/{order.order_id}", marketplaceIds=US).json()
    validate_response("solicitations", PATH, "get", body)
    return [a["name"] for a in body["_links"]["actions"]]


def test_window_rules(api: Api, world: World) -> None:
    now = world.now
    inside = _find(
        world,
        lambda o: (
            o.status is OrderStatus.SHIPPED
            and o.earliest_delivery_date + timedelta(days=5)
            <= now
            <= o.latest_delivery_date + timedelta(days=30)
        ),
    )
    too_early = _find(
        world,
        lambda o: (
            o.status is OrderStatus.SHIPPED and now < o.earliest_delivery_date + timedelta(days=5)
        ),
    )
    too_late = _find(
        world,
        lambda o: (
            o.status is OrderStatus.SHIPPED and now > o.latest_delivery_date + timedelta(days=30)
        ),
    )
    canceled = _find(
        world,
        lambda o: (
            o.status is OrderStatus.CANCELED and o.earliest_delivery_date + timedelta(days=5) <= now
        ),
    )
    assert _actions(api, inside) == ["productReviewAndSellerFeedback"]
    for order in (too_early, too_late, canceled):
        assert _actions(api, order) == []
        sent = api.post(
            f"{PATH.format(amazonOrderId=order.order_id)}/solicitations/"
            "productReviewAndSellerFeedback",
            {},
            marketplaceIds=US,
        )
        assert sent.status_code == 400


def test_sent_once(api: Api, world: World) -> None:
    now = world.now
    order = _find(
        world,
        lambda o: (
            o.status is OrderStatus.SHIPPED
            and o.earliest_delivery_date + timedelta(days=6)
            <= now
            <= o.latest_delivery_date + timedelta(days=29)
        ),
    )
    url = f"/solicitations/v1/orders/{order.order_id}/solicitations/productReviewAndSellerFeedback"
    first = api.post(url, {}, marketplaceIds=US)
    assert first.status_code == 201
    validate_response(
        "solicitations",
        f"{PATH}/solicitations/productReviewAndSellerFeedback",
        "post",
        first.json(),
        "201",
    )
    assert _actions(api, order) == []
    assert api.post(url, {}, marketplaceIds=US).status_code == 400
