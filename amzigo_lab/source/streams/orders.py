"""Orders 2026-01-01 `searchOrders` -> orders, order_items (and order_buyers with a PII purpose).

Why 2026-01-01 and not v0: v0 is removed after 2027-03-27; v0 needs one `getOrderItems` call per
order (0.5 rps) where searchOrders returns the items inline, 100 orders per page; and buyer PII
comes with `includedData=BUYER,RECIPIENT` under the app's PII role, so no Restricted Data Token is
ever requested. Without a PII purpose neither BUYER nor RECIPIENT is requested.

The cursor is the `lastUpdatedBefore` the API echoes; each run asks from cursor - look-back, so
late updates are caught and re-seen versions are de-duplicated. The 2026 model has no delivery
time: an order whose packages are all DELIVERED gets `delivered_date` = the earlier of its last
update and the end of its delivery window (never later than the truth, so PII retention, counted
from delivery, errs on the side of deleting sooner).
"""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

import datetime as dt
from typing import Any

from amzigo_lab.source.streams.base import (
    Collector,
    InvalidRecord,
    StreamContext,
    StreamResult,
    integer,
    iso_z,
    money,
    page_list,
    ts,
)

LOOKBACK = dt.timedelta(days=2)
PII_DAYS = 30
STATUS = {
    "PENDING": "Pending",
    "UNSHIPPED": "Unshipped",
    "PARTIALLY_SHIPPED": "PartiallyShipped",
    "SHIPPED": "Shipped",
    "CANCELLED": "Canceled",
    "UNFULFILLABLE": "Unfulfillable",
}
CHANNEL = {"AMAZON": "AFN", "MERCHANT": "MFN"}


def _breakdown(proceeds: dict[str, Any] | None, kind: str) -> Any:
    for entry in (proceeds or {}).get("breakdowns") or []:
        if entry.get("type") == kind:
            return (entry.get("subtotal") or {}).get("amount")
    return None


def delivered_date(order: dict[str, Any]) -> dt.date | None:
    """Inferred delivery date (see module docstring)."""
    packages = order.get("packages") or []
    if not packages or any(
        (p.get("packageStatus") or {}).get("status") != "DELIVERED" for p in packages
    ):
        return None
    updated = ts(order["lastUpdatedTime"])
    window = ((order.get("fulfillment") or {}).get("deliverByWindow") or {}).get("latestDateTime")
    latest = ts(window)
    assert updated is not None
    return min(updated, latest).date() if latest is not None else updated.date()


def map_order(
    order: dict[str, Any], pii: bool, fetched_at: dt.datetime
) -> dict[str, list[dict[str, Any]]]:
    """The rows of one searchOrders `Order`."""
    order_id = order["orderId"]
    channel = order.get("salesChannel") or {}
    marketplace = channel.get("marketplaceId")
    fulfillment = order.get("fulfillment") or {}
    window = fulfillment.get("deliverByWindow") or {}
    purchase, updated = ts(order["createdTime"]), ts(order["lastUpdatedTime"])
    grand = (order.get("proceeds") or {}).get("grandTotal") or {}
    items_out: list[dict[str, Any]] = []
    shipped = unshipped = 0
    currency = grand.get("currencyCode")
    for item in order["orderItems"]:
        product = item["product"]
        qty = integer(item["quantityOrdered"])
        done = integer((item.get("fulfillment") or {}).get("quantityFulfilled"))
        todo = integer((item.get("fulfillment") or {}).get("quantityUnfulfilled"))
        shipped += done or 0
        unshipped += todo or 0
        unit = (product.get("price") or {}).get("unitPrice") or {}
        item_currency = unit.get("currencyCode") or currency
        currency = currency or item_currency
        discount = money(_breakdown(item.get("proceeds"), "DISCOUNT"))
        items_out.append(
            {
                "amazon_order_id": order_id,
                "order_item_id": item["orderItemId"],
                "marketplace_id": marketplace,
                "purchase_date": purchase,
                "last_update_date": updated,
                "asin": product.get("asin"),
                "seller_sku": product.get("sellerSku"),
                "title": product.get("title"),
                "quantity_ordered": qty,
                "quantity_shipped": done,
                "item_price": money(_breakdown(item.get("proceeds"), "ITEM")),
                "item_tax": money(_breakdown(item.get("proceeds"), "TAX")),
                "promotion_discount": -discount if discount is not None else None,
                "currency": item_currency,
            }
        )
    status = fulfillment.get("fulfillmentStatus")
    if status is not None and status not in STATUS:
        raise InvalidRecord(f"unknown fulfillmentStatus {status!r}")
    delivered = delivered_date(order)
    rows: dict[str, list[dict[str, Any]]] = {
        "orders": [
            {
                "amazon_order_id": order_id,
                "marketplace_id": marketplace,
                "purchase_date": purchase,
                "last_update_date": updated,
                "order_status": STATUS.get(status or ""),
                "fulfillment_channel": CHANNEL.get(fulfillment.get("fulfilledBy") or ""),
                "sales_channel": channel.get("marketplaceName"),
                "order_total": money(grand.get("amount")),
                "currency": currency,
                "items_shipped": shipped,
                "items_unshipped": unshipped,
                "earliest_delivery_date": ts(window.get("earliestDateTime")),
                "latest_delivery_date": ts(window.get("latestDateTime")),
                "delivered_date": delivered,
                "is_business_order": "AMAZON_BUSINESS" in (order.get("programs") or []),
            }
        ],
        "order_items": items_out,
    }
    if pii and ("buyer" in order or "recipient" in order):
        buyer = order.get("buyer") or {}
        address = (order.get("recipient") or {}).get("deliveryAddress") or {}
        rows["order_buyers"] = [
            {
                "amazon_order_id": order_id,
                "marketplace_id": marketplace,
                "fetched_at": fetched_at,
                "delivered_date": delivered,
                "buyer_name": buyer.get("buyerName"),
                "buyer_email": buyer.get("buyerEmail"),
                "ship_name": address.get("name"),
                "ship_address_line1": address.get("addressLine1"),
                "ship_city": address.get("city"),
                "ship_state": address.get("stateOrRegion"),
                "ship_postal_code": address.get("postalCode"),
                "ship_country": address.get("countryCode"),
                "ship_phone": address.get("phone"),
            }
        ]
    return rows


class OrdersStream:
    """searchOrders by last update time, all of the tenant's marketplaces in one query."""

    name = "orders"
    datasets = ("orders", "order_items", "order_buyers")

    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """Page through orders updated since the cursor (minus look-back); advance the cursor."""
        from sp_api.api.orders.orders_2026_01_01 import OrdersV20260101

        state = ctx.store.get_state(ctx.tenant, self.name)
        cursor = ts(state.get("cursor"))
        after = ctx.start(cursor, LOOKBACK)
        included = ["FULFILLMENT", "PROCEEDS", "PACKAGES"] + (
            ["BUYER", "RECIPIENT"] if ctx.pii else []
        )
        client = ctx.client(OrdersV20260101)
        collector = Collector(ctx, self.name, result)
        floors: dict[str, dt.date | None] = {
            "orders": after.date(),
            "order_items": after.date(),
            "order_buyers": after.date(),
        }
        fetched_at = ctx.now
        pii_deadline = ctx.today - dt.timedelta(days=PII_DAYS)
        token: str | None = None
        high_water: str | None = None
        while True:
            if token is None:
                query = {
                    "lastUpdatedAfter": iso_z(after),
                    "includedData": included,
                    "marketplaceIds": list(ctx.marketplaces),
                    "maxResultsPerPage": 100,
                }
                response = ctx.call("searchOrders", lambda q=query: client.search_orders(**q))
                high_water = response.payload.get("lastUpdatedBefore")
            else:
                response = ctx.call(
                    "searchOrders", lambda t=token: client.search_orders(paginationToken=t)
                )
            orders = page_list(response.payload, "orders")
            result.pages += 1
            ctx.emit(self.name, "pages", 1)
            for order in orders:
                collector.add("orders", order, lambda o=order: map_order(o, ctx.pii, fetched_at))
            buyers = collector.rows.get("order_buyers")
            if buyers:  # PII already past its 30-day deadline is never written
                keep = [
                    b
                    for b in buyers
                    if b["delivered_date"] is None or b["delivered_date"] >= pii_deadline
                ]
                result.pii_skipped_expired += len(buyers) - len(keep)
                collector.rows["order_buyers"] = keep
            collector.flush(floors)
            token = response.next_token
            if not token:
                break
        collector.flush(floors, force=True)
        new_cursor = high_water or iso_z(ctx.now)
        ctx.store.update_state(
            ctx.tenant, self.name, {"cursor": new_cursor, "window_start": iso_z(after)}
        )
