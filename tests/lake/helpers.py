"""Small builders of valid tables for lake tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa

from amzigo_lab.datasets import ORDER_BUYERS, ORDERS


def orders(n: int, prefix: str = "o", cents: int = 150) -> pa.Table:
    """`n` valid orders with distinct ids, each totalling `cents`."""
    t0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    return pa.Table.from_pydict(
        {
            "amazon_order_id": [f"{prefix}{i}" for i in range(n)],
            "marketplace_id": ["ATVPDKIKX0DER" if i % 3 else "A1F83G8C2ARO7P" for i in range(n)],
            "purchase_date": [t0] * n,
            "last_update_date": [t0] * n,
            "order_status": ["Shipped"] * n,
            "fulfillment_channel": ["AFN"] * n,
            "sales_channel": ["Amazon.com"] * n,
            "order_total": [Decimal(cents + i) / 100 for i in range(n)],
            "currency": ["USD"] * n,
            "items_shipped": [1] * n,
            "items_unshipped": [0] * n,
            "earliest_delivery_date": [None] * n,
            "latest_delivery_date": [None] * n,
            "delivered_date": [None] * n,
            "is_business_order": [False] * n,
        },
        schema=ORDERS.schema,
    )


def buyers(delivered: list[dt.date | None], name: str = "Canary Buyer") -> pa.Table:
    """One fake-PII buyer row per delivery date."""
    n = len(delivered)
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    return pa.Table.from_pydict(
        {
            "amazon_order_id": [f"b{i}" for i in range(n)],
            "marketplace_id": ["ATVPDKIKX0DER"] * n,
            "fetched_at": [t0] * n,
            "delivered_date": delivered,
            "buyer_name": [f"{name} {i}" for i in range(n)],
            "buyer_email": [f"buyer{i}@example.com" for i in range(n)],
            "ship_name": [f"{name} {i}" for i in range(n)],
            "ship_address_line1": ["1 Canary Wharf"] * n,
            "ship_city": ["Springfield"] * n,
            "ship_state": ["ST"] * n,
            "ship_postal_code": ["00000"] * n,
            "ship_country": ["US"] * n,
            "ship_phone": [None] * n,
        },
        schema=ORDER_BUYERS.schema,
    )
