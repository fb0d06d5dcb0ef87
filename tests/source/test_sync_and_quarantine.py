"""De-duplication, the quarantine and the reader's latest() view."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa

from amzigo_lab.datasets import CATALOG_ITEMS, ORDERS
from amzigo_lab.lake import Lake
from amzigo_lab.source.streams.base import Collector, StreamContext, StreamResult
from amzigo_lab.source.streams.orders import map_order
from amzigo_lab.source.sync import LakeGateway, dedup

NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
DAY = NOW.date()


def order(order_id: str, updated: str, status: str = "SHIPPED", **extra: Any) -> dict[str, Any]:
    return {
        "orderId": order_id,
        "createdTime": "2026-11-18T10:00:00Z",
        "lastUpdatedTime": updated,
        "salesChannel": {
            "channelName": "AMAZON",
            "marketplaceId": "ATVPDKIKX0DER",
            "marketplaceName": "Amazon.com",
        },
        "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": "MERCHANT"},
        "proceeds": {"grandTotal": {"amount": "12.50", "currencyCode": "USD"}},
        "orderItems": [
            {
                "orderItemId": "1",
                "quantityOrdered": 1,
                "product": {
                    "asin": "B0TEST",
                    "price": {"unitPrice": {"amount": "12.50", "currencyCode": "USD"}},
                },
            }
        ],
        **extra,
    }


def context(lake: Lake) -> StreamContext:
    return StreamContext(
        tenant="acme-outdoor",
        marketplaces=("ATVPDKIKX0DER",),
        factory=None,
        scheduler=None,  # type: ignore[arg-type]
        store=LakeGateway(lake),
        today=DAY,
        now=NOW,
        since=None,
        backfill_days=30,
        pii=False,
        time_scale=1.0,
        report_wait=0.0,
        max_solicitation_checks=10,
        progress=lambda e: None,
    )


def test_versions_are_kept_and_latest_wins(lake: Lake) -> None:
    ctx = context(lake)
    result = StreamResult("acme-outdoor", "orders")
    for updated, status in (
        ("2026-11-18T11:00:00Z", "UNSHIPPED"),
        ("2026-11-19T09:00:00Z", "SHIPPED"),
    ):
        c = Collector(ctx, "orders", result)
        c.add(
            "orders",
            order("111-1", updated, status),
            lambda u=updated, s=status: map_order(order("111-1", u, s), False, NOW),
        )
        c.flush(force=True)
    again = Collector(ctx, "orders", result)  # the same version again adds nothing
    again.add("orders", {}, lambda: map_order(order("111-1", "2026-11-19T09:00:00Z"), False, NOW))
    again.flush(force=True)
    assert result.rows["orders"] == 2
    scan = lake.scan("orders", ["acme-outdoor"])
    assert scan.row_count == 2
    latest = scan.latest()
    assert latest.num_rows == 1 and latest.column("order_status")[0].as_py() == "Shipped"


def test_unchanged_snapshot_adds_no_version() -> None:
    def table(fetched: dt.datetime, title: str) -> pa.Table:
        return pa.Table.from_pylist(
            [
                {
                    "asin": "B1",
                    "marketplace_id": "M",
                    "fetched_at": fetched,
                    "title": title,
                    "brand": "b",
                    "product_type": None,
                    "classification": None,
                }
            ],
            schema=CATALOG_ITEMS.schema,
        )

    old = table(NOW - dt.timedelta(days=1), "Tent")
    assert dedup(CATALOG_ITEMS, table(NOW, "Tent"), old, old).num_rows == 0
    assert dedup(CATALOG_ITEMS, table(NOW, "Tent v2"), old, old).num_rows == 1
    assert dedup(ORDERS, ORDERS.schema.empty_table(), None, None).num_rows == 0


def test_invalid_records_go_to_the_encrypted_quarantine(lake: Lake) -> None:
    ctx = context(lake)
    result = StreamResult("acme-outdoor", "orders")
    c = Collector(ctx, "orders", result)
    good = order("111-2", "2026-11-19T09:00:00Z")
    bad = order("111-3", "2026-11-19T09:00:00Z", buyer={"buyerEmail": "someone@example.com"})
    bad["proceeds"]["grandTotal"]["amount"] = "twelve"
    missing = order("111-4", "2026-11-19T09:00:00Z")
    del missing["orderItems"][0]["product"]
    for record in (good, bad, missing):
        c.add("orders", record, lambda r=record: map_order(r, False, NOW))
    c.flush(force=True)
    assert result.quarantined == 2 and result.rows["orders"] == 1
    q = lake.scan("quarantine", ["acme-outdoor"]).to_arrow()
    assert q.num_rows == 2
    raws = [json.loads(r) for r in q.column("raw_json").to_pylist()]
    assert {r["orderId"] for r in raws} == {"111-3", "111-4"}
    assert all("buyer" not in r for r in raws)  # PII sub-objects are never quarantined
    assert any("invalid amount" in r for r in q.column("reason").to_pylist())
    files = list(lake.root.rglob("*.parquet"))
    assert files and not any(b"111-3" in f.read_bytes() for f in files)  # encrypted at rest
