"""Deterministic synthetic orders for the foundation demo and the benchmarks.

Pure functions of (seed, tenant, day): the same inputs give the same rows. No PII.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from amzigo_lab.datasets import ORDER_ITEMS, ORDERS


def _rng(seed: int, *parts: object) -> random.Random:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def orders_for_day(seed: int, tenant: str, day: dt.date, per_day: int = 40) -> pa.Table:
    """One day of orders for one tenant, in the `orders` schema."""
    rng = _rng(seed, tenant, day)
    n = max(1, int(per_day * rng.uniform(0.6, 1.4)))
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    purchase = [start + dt.timedelta(seconds=rng.randrange(86_400)) for _ in range(n)]
    totals = [Decimal(rng.randrange(500, 20_000)) / 100 for _ in range(n)]
    cols = {
        "amazon_order_id": [f"{tenant[:3].upper()}-{day:%y%m%d}-{i:06d}" for i in range(n)],
        "marketplace_id": ["ATVPDKIKX0DER"] * n,
        "purchase_date": purchase,
        "last_update_date": purchase,
        "order_status": [rng.choice(["Shipped"] * 3 + ["Canceled"]) for _ in purchase],
        "fulfillment_channel": [rng.choice(["AFN", "MFN"]) for _ in range(n)],
        "sales_channel": ["Amazon.com"] * n,
        "order_total": totals,
        "currency": ["USD"] * n,
        "items_shipped": [1] * n,
        "items_unshipped": [0] * n,
        "earliest_delivery_date": [p + dt.timedelta(days=2) for p in purchase],
        "latest_delivery_date": [p + dt.timedelta(days=5) for p in purchase],
        "delivered_date": [(p + dt.timedelta(days=3)).date() for p in purchase],
        "is_business_order": [rng.random() < 0.1 for _ in range(n)],
    }
    return pa.Table.from_pydict(cols, schema=ORDERS.schema)


def items_for_orders(seed: int, orders: pa.Table) -> pa.Table:
    """One order line per order, matching the order total."""
    ids = orders.column("amazon_order_id").to_pylist()
    rng = _rng(seed, "items", ids[0] if ids else "")
    n = len(ids)
    return pa.Table.from_pydict(
        {
            "amazon_order_id": ids,
            "order_item_id": [f"{i}-1" for i in ids],
            "marketplace_id": orders.column("marketplace_id").to_pylist(),
            "purchase_date": orders.column("purchase_date").to_pylist(),
            "last_update_date": orders.column("last_update_date").to_pylist(),
            "asin": [f"B0DEMO{rng.randrange(20):04d}" for _ in range(n)],
            "seller_sku": [f"SKU-{rng.randrange(20):03d}" for _ in range(n)],
            "title": ["Demo product"] * n,
            "quantity_ordered": [1] * n,
            "quantity_shipped": [1] * n,
            "item_price": orders.column("order_total").to_pylist(),
            "item_tax": [Decimal("0.00")] * n,
            "promotion_discount": [Decimal("0.00")] * n,
            "currency": ["USD"] * n,
        },
        schema=ORDER_ITEMS.schema,
    )


def _cents_to_money(cents: np.ndarray) -> pa.Array:
    """Integer cents -> decimal128(18, 2) without per-value Python objects."""
    whole = pa.array(cents.astype(np.int32)).cast(pa.decimal128(10, 0))
    scaled = pc.multiply(whole, pa.scalar(Decimal("0.01"), pa.decimal128(3, 2)))
    return scaled.cast(pa.decimal128(18, 2))


def bulk_orders(seed: int, rows: int, days: int, start: dt.date) -> pa.Table:
    """`rows` orders spread over `days` days (vectorised; for benchmarks), with a `day` column."""
    rng = np.random.default_rng(seed)
    day_idx = np.sort(rng.integers(0, days, rows))
    base = np.datetime64(start, "us")
    seconds = rng.integers(0, 86_400, rows)
    ts = base + (day_idx * 86_400 + seconds).astype("timedelta64[s]")
    cents = rng.integers(500, 20_000, rows)
    ids = pa.array(np.char.add("ORD-", np.arange(rows).astype(str)))
    ts_arr = pa.array(ts, pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "amazon_order_id": ids,
            "marketplace_id": pa.array(
                np.where(rng.random(rows) < 0.7, "ATVPDKIKX0DER", "A1F83G8C2ARO7P")
            ),
            "purchase_date": ts_arr,
            "last_update_date": ts_arr,
            "order_status": pa.array(np.where(rng.random(rows) < 0.95, "Shipped", "Canceled")),
            "fulfillment_channel": pa.array(np.where(rng.random(rows) < 0.6, "AFN", "MFN")),
            "sales_channel": pa.array(["Amazon.com"] * rows),
            "order_total": _cents_to_money(cents),
            "currency": pa.array(["USD"] * rows),
            "items_shipped": pa.array(np.ones(rows, dtype=np.int32)),
            "items_unshipped": pa.array(np.zeros(rows, dtype=np.int32)),
            "earliest_delivery_date": ts_arr,
            "latest_delivery_date": ts_arr,
            "delivered_date": pa.array([None] * rows, pa.date32()),
            "is_business_order": pa.array(rng.random(rows) < 0.1),
            "day": pa.array(day_idx.astype(np.int32)),
        }
    )
