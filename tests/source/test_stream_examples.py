"""Amazon's example responses of every other operation the streams call, through their parsers.

searchOrders (orders 2026-01-01), searchCatalogItems (catalogItems 2022-04-01) and
getSolicitationActionsForOrder (solicitations); fbaInventory's model has no example response of
getInventorySummaries. An empty payload (a 204 or `{}`) is no data, never a failure.
"""

from __future__ import annotations

from typing import Any

import pytest

from amzigo_lab.source.client import MalformedResponse
from amzigo_lab.source.streams.base import Collector, page_list
from amzigo_lab.source.streams.catalog import map_item
from amzigo_lab.source.streams.orders import map_order
from amzigo_lab.source.streams.solicitations import eligible
from tests.source.spapi_examples import NOW, FakeStore, fake_context, responses, result


def _collector(stream: str) -> Collector:
    return Collector(None, stream, result(stream))  # type: ignore[arg-type]


@pytest.mark.parametrize("pii", [False, True])
def test_every_search_orders_example_maps(pii: bool) -> None:
    bodies = responses("orders_2026-01-01", "searchOrders")
    assert len(bodies) == 3
    for body in bodies:
        orders = page_list(body, "orders")
        assert orders
        collector = _collector("orders")
        for order in orders:
            collector.add("orders", order, lambda o=order: map_order(o, pii, NOW))
        assert collector.bad == []
        assert len(collector.rows["orders"]) == len(orders)
        assert {r["amazon_order_id"] for r in collector.rows["orders"]} == {
            o["orderId"] for o in orders
        }
        assert collector.rows["order_items"]
        if not pii:
            assert not collector.rows.get("order_buyers")


def test_every_search_catalog_items_example_maps() -> None:
    ctx = fake_context(None, FakeStore())
    bodies = responses("catalogItems_2022-04-01", "searchCatalogItems")
    assert bodies
    for body in bodies:
        items = page_list(body, "items")
        assert items
        collector = _collector("catalog")
        for item in items:
            mp = item["summaries"][0]["marketplaceId"]
            collector.add("catalog_items", item, lambda it=item, m=mp: map_item(it, m, ctx))
        assert collector.bad == []
        assert [r["asin"] for r in collector.rows["catalog_items"]] == [i["asin"] for i in items]


def test_every_solicitation_actions_example_is_read() -> None:
    (body,) = responses("solicitations", "getSolicitationActionsForOrder")
    assert eligible(body) is True
    assert eligible({}) is False  # a 204/empty answer: no action offered


@pytest.mark.parametrize(
    ("model", "operation", "status"),
    [
        ("orders_2026-01-01", "searchOrders", "400"),
        ("catalogItems_2022-04-01", "searchCatalogItems", "400"),
        ("solicitations", "getSolicitationActionsForOrder", "400"),
    ],
)
def test_error_examples_are_errors(model: str, operation: str, status: str) -> None:
    for body in responses(model, operation, status):
        assert body["errors"]


@pytest.mark.parametrize("path", [("orders",), ("items",), ("inventorySummaries",)])
@pytest.mark.parametrize("payload", [None, {}])
def test_an_empty_page_is_no_data(payload: Any, path: tuple[str, ...]) -> None:
    assert page_list(payload, *path) == []


def test_a_page_without_its_list_is_still_malformed() -> None:
    with pytest.raises(MalformedResponse):
        page_list({"pagination": {}}, "orders")
