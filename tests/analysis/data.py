"""Hand-made report fixtures with exact expected numbers (see the comments per table).

Tenant ACME is the subject; tenant OTHER holds look-alike data whose identifiers must never
appear in ACME's reports. `order_buyers` holds fake PII that no report may show.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pyarrow as pa

from amzigo_lab.datasets import REGISTRY
from amzigo_lab.lake import Lake

ACME = "acme-outdoor"
OTHER = "bluebird-home"
US, UK = "ATVPDKIKX0DER", "A1F83G8C2ARO7P"
START, END = dt.date(2026, 3, 1), dt.date(2026, 3, 7)
PII_MARKERS = ("Canary Buyer", "canary@example.com", "1 Canary Wharf", "+1-555-0100")
OTHER_MARKERS = ("BB-ORDER", "SKU-SECRET-BB", "B0SECRET")


def ts(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


def table(name: str, rows: list[dict]) -> pa.Table:
    schema = REGISTRY[name].schema
    full = [{f.name: r.get(f.name) for f in schema} for r in rows]
    return pa.Table.from_pylist(full, schema=schema)


def _order(
    oid: str, day: str, status: str = "Shipped", mp: str = US, cur: str = "USD", upd: int = 12
) -> dict:
    return dict(
        amazon_order_id=oid,
        marketplace_id=mp,
        purchase_date=ts(day),
        last_update_date=ts(day, upd),
        order_status=status,
        currency=cur,
        fulfillment_channel="AFN",
        sales_channel="Amazon.com",
    )


def _item(
    oid: str,
    n: int,
    day: str,
    sku: str,
    asin: str,
    qty: int,
    price: str,
    promo: str = "0",
    mp: str = US,
    cur: str = "USD",
    upd: int = 12,
) -> dict:
    return dict(
        amazon_order_id=oid,
        order_item_id=f"{oid}-{n}",
        marketplace_id=mp,
        purchase_date=ts(day),
        last_update_date=ts(day, upd),
        asin=asin,
        seller_sku=sku,
        title=f"Product {sku}",
        quantity_ordered=qty,
        quantity_shipped=qty,
        item_price=D(price),
        item_tax=D("0"),
        promotion_discount=D(promo),
        currency=cur,
    )


# Period 2026-03-01..07, comparison 2026-02-22..28.
# US: sales 40+25.50+20+60 = 145.50, promotions 2.50, orders A1 A2 A4 = 3, units 2+1+1+3 = 7.
# UK: sales 18+30 = 48.00 GBP, orders 2, units 3. Comparison US: sales 65.50, orders 2, units 3.
ORDERS_V1 = [  # first ingest: A4 still pending
    _order("A4", "2026-03-03", "Pending", upd=12),
]
ORDERS_V2 = [
    _order("A1", "2026-03-01"),
    _order("A2", "2026-03-02"),
    _order("A3", "2026-03-03", "Canceled"),
    _order("A4", "2026-03-03", "Shipped", upd=18),
    _order("A5", "2026-03-08"),
    _order("A0", "2026-02-25"),
    _order("A00", "2026-02-26"),
    _order("U1", "2026-03-05", mp=UK, cur="GBP"),
    _order("U2", "2026-03-06", mp=UK, cur="GBP"),
]
ITEMS_V1 = [_item("A4", 1, "2026-03-03", "SKU-RED", "B0RED", 1, "20.00", upd=12)]
ITEMS_V2 = [
    _item("A1", 1, "2026-03-01", "SKU-RED", "B0RED", 2, "40.00"),
    _item("A1", 2, "2026-03-01", "SKU-BLUE", "B0BLUE", 1, "25.50", "2.50"),
    _item("A2", 1, "2026-03-02", "SKU-RED", "B0RED", 1, "20.00"),
    _item("A3", 1, "2026-03-03", "SKU-BLUE", "B0BLUE", 1, "25.50"),  # canceled
    _item("A4", 1, "2026-03-03", "SKU-RED", "B0RED", 3, "60.00", upd=18),  # latest version
    _item("A5", 1, "2026-03-08", "SKU-RED", "B0RED", 1, "20.00"),  # after the period
    _item("A0", 1, "2026-02-25", "SKU-RED", "B0RED", 2, "40.00"),
    _item("A00", 1, "2026-02-26", "SKU-BLUE", "B0BLUE", 1, "25.50"),
    _item("U1", 1, "2026-03-05", "SKU-RED", "B0RED", 1, "18.00", mp=UK, cur="GBP"),
    _item("U2", 1, "2026-03-06", "SKU-GREEN", "B0GREEN", 2, "30.00", mp=UK, cur="GBP"),
]


def _fe(
    eid: str,
    etype: str,
    day: str,
    oid: str,
    sku: str,
    kind: str,
    ctype: str,
    amount: str,
    cur: str = "USD",
    mname: str = "Amazon.com",
) -> dict:
    return dict(
        event_id=eid,
        event_type=etype,
        posted_date=ts(day),
        amazon_order_id=oid,
        marketplace_name=mname,
        seller_sku=sku,
        charge_kind=kind,
        charge_type=ctype,
        amount=D(amount),
        currency=cur,
    )


# US fees 6+7+3.83-2.40 = 14.43 (RED 10.60, BLUE 3.83), refunds 20.00 (RED, order A2), net 108.57.
# UK fees 2.70 (RED), net 45.30. Comparison US: refunds 20.00, fees 0.
FINANCE = [
    _fe("e1", "Shipment", "2026-03-02", "A1", "SKU-RED", "fee", "Commission", "-6.00"),
    _fe(
        "e2", "Shipment", "2026-03-02", "A1", "SKU-RED", "fee", "FBAPerUnitFulfillmentFee", "-7.00"
    ),
    _fe("e3", "Shipment", "2026-03-02", "A1", "SKU-BLUE", "fee", "Commission", "-3.83"),
    _fe("e4", "Shipment", "2026-03-02", "A1", "SKU-RED", "charge", "Principal", "40.00"),
    _fe("e5", "Refund", "2026-03-05", "A2", "SKU-RED", "charge", "Principal", "-20.00"),
    _fe("e6", "Refund", "2026-03-05", "A2", "SKU-RED", "fee", "Commission", "2.40"),
    _fe("e7", "Shipment", "2026-03-08", "A4", "SKU-RED", "fee", "Commission", "-9.00"),
    _fe("e8", "Refund", "2026-02-27", "A0", "SKU-RED", "charge", "Principal", "-20.00"),
    _fe(
        "u1",
        "Shipment",
        "2026-03-06",
        "U1",
        "SKU-RED",
        "fee",
        "Commission",
        "-2.70",
        "GBP",
        "Amazon.co.uk",
    ),
]
COSTS = {
    ("SKU-RED", "USD"): D("8.00"),
    ("SKU-BLUE", "USD"): D("10.00"),
    ("SKU-RED", "GBP"): D("7.00"),
}


def _st(
    day: str, mp: str, rid: str, sessions: int, pv: int, units: int, bb: float, cur: str = "USD"
) -> dict:
    return dict(
        date=dt.date.fromisoformat(day),
        marketplace_id=mp,
        report_id=rid,
        currency=cur,
        ordered_product_sales=D("1.00"),
        units_ordered=units,
        total_order_items=units,
        units_refunded=0,
        refund_rate=0.0,
        sessions=sessions,
        page_views=pv,
        buy_box_percentage=bb,
        unit_session_percentage=0.0,
    )


# US: sessions 400, page views 400, units 12 -> 3 %; buy box (90*150 + 98*250)/400 = 95 %.
TRAFFIC_V1 = [_st("2026-03-02", US, "r1", 1, 1, 1, 10.0)]
TRAFFIC_V2 = [
    _st("2026-03-01", US, "r2", 100, 150, 5, 90.0),
    _st("2026-03-02", US, "r2", 300, 250, 7, 98.0),
    _st("2026-03-01", UK, "r2", 50, 60, 2, 100.0, "GBP"),
]


def _inv(
    day: str,
    mp: str,
    sku: str,
    on_hand: int,
    inbound: tuple[int, int, int] = (0, 0, 0),
    reserved: int = 0,
    upd: int = 12,
) -> dict:
    return dict(
        snapshot_date=dt.date.fromisoformat(day),
        marketplace_id=mp,
        asin="B0" + sku[4:],
        fn_sku="X" + sku,
        seller_sku=sku,
        product_name=f"Product {sku}",
        fulfillable_quantity=on_hand,
        inbound_working=inbound[0],
        inbound_shipped=inbound[1],
        inbound_receiving=inbound[2],
        reserved_quantity=reserved,
        unfulfillable_quantity=0,
        total_quantity=on_hand,
        last_updated_time=ts(day, upd),
    )


# as_of 2026-03-07, velocity over 7 days. US RED: units 6 -> 6/7/day, on hand 2 -> 2.33 d critical,
# lead 14: ROP 12 + 6 = 18 > position 10 -> reorder now. US BLUE: on hand 0 -> out, inbound 20,
# velocity 1/7, ROP 37/7, at the ROP in 103 days, below it (reorder by) on 2026-06-19.
# US OLD: 50, no sales -> overstock.
# UK RED: 2 on hand, 1/7 -> 14 d healthy. UK GREEN: 1 on hand, 2/7 -> 3.5 d low.
INVENTORY = [
    _inv("2026-03-06", US, "SKU-RED", 5),
    _inv("2026-03-07", US, "SKU-RED", 10, upd=8),
    _inv("2026-03-07", US, "SKU-RED", 2, (5, 3, 0), 1, upd=20),
    _inv("2026-03-08", US, "SKU-RED", 99),  # after as_of
    _inv("2026-03-07", US, "SKU-BLUE", 0, (0, 20, 0)),
    _inv("2026-03-07", US, "SKU-OLD", 50),
    _inv("2026-03-07", UK, "SKU-RED", 2),
    _inv("2026-03-07", UK, "SKU-GREEN", 1),
]


def _topic(
    asin: str,
    day: str,
    sentiment: str,
    topic: str,
    count: int,
    occ: float,
    impact: float,
    star: float | None,
) -> dict:
    return dict(
        asin=asin,
        marketplace_id=US,
        fetched_on=dt.date.fromisoformat(day),
        sentiment=sentiment,
        topic=topic,
        review_count=count,
        occurrence_percentage=occ,
        star_rating_impact=impact,
        star_rating=star,
    )


TOPICS = [
    _topic("B0RED", "2026-02-05", "negative", "Broke quickly", 8, 6.0, -0.2, 4.4),
    _topic("B0RED", "2026-03-05", "negative", "Broke quickly", 12, 8.0, -0.2, 4.1),
    _topic("B0RED", "2026-03-05", "positive", "Great value", 40, 30.0, 0.15, 4.1),
    _topic("B0BLUE", "2026-03-05", "negative", "Too small", 5, 7.0, -0.1, None),
    _topic("B0BLUE", "2026-03-05", "positive", "Soft", 9, 15.0, 0.1, None),
]


def _trend(
    asin: str, sentiment: str, topic: str, month: str, occ: float, fetched: str = "2026-03-05"
) -> dict:
    return dict(
        asin=asin,
        marketplace_id=US,
        fetched_on=dt.date.fromisoformat(fetched),
        sentiment=sentiment,
        topic=topic,
        month=dt.date.fromisoformat(month),
        occurrence_percentage=occ,
    )


# B0RED "Broke quickly" 6.0 -> 9.5 (+3.5, worsening); "Great value" 30 -> 31 (fine).
# B0BLUE "Too small" 10 -> 7 (better); "Soft" 20 -> 15 (positive down 5: worsening).
TRENDS_V1 = [_trend("B0RED", "negative", "Broke quickly", "2026-03-01", 4.0, "2026-03-02")]
TRENDS_V2 = [
    _trend("B0RED", "negative", "Broke quickly", "2026-01-01", 5.0),
    _trend("B0RED", "negative", "Broke quickly", "2026-02-01", 6.0),
    _trend("B0RED", "negative", "Broke quickly", "2026-03-01", 9.5),
    _trend("B0RED", "positive", "Great value", "2026-02-01", 30.0),
    _trend("B0RED", "positive", "Great value", "2026-03-01", 31.0),
    _trend("B0BLUE", "negative", "Too small", "2026-02-01", 10.0),
    _trend("B0BLUE", "negative", "Too small", "2026-03-01", 7.0),
    _trend("B0BLUE", "positive", "Soft", "2026-02-01", 20.0),
    _trend("B0BLUE", "positive", "Soft", "2026-03-01", 15.0),
]


def _sol(
    oid: str, edd: str, ldd: str, eligible: bool, requested: bool, checked: str = "2026-03-07"
) -> dict:
    return dict(
        amazon_order_id=oid,
        marketplace_id=US,
        checked_at=ts(checked),
        earliest_delivery_date=ts(edd, 0),
        latest_delivery_date=ts(ldd, 0),
        eligible=eligible,
        requested=requested,
    )


# as of 2026-03-08T00:00Z: S1 already_requested, S2 eligible_now, S3 eligible_later (opens
# 2026-03-10), S4 not_eligible (window closed 2026-03-05), S5 already_requested (latest version).
SOLICIT_V1 = [_sol("S5", "2026-02-20", "2026-02-22", True, False, "2026-03-01")]
SOLICIT_V2 = [
    _sol("S1", "2026-02-20", "2026-02-22", False, True),
    _sol("S2", "2026-02-25", "2026-02-27", True, False),
    _sol("S3", "2026-03-05", "2026-03-06", False, False),
    _sol("S4", "2026-02-01", "2026-02-03", False, False),
    _sol("S5", "2026-02-20", "2026-02-22", False, True),
    _sol("S9", "2025-10-01", "2025-10-03", False, False),  # delivered long before: out of scope
]

BUYERS = [
    dict(
        amazon_order_id="A1",
        marketplace_id=US,
        fetched_at=ts("2026-03-02"),
        delivered_date=dt.date(2026, 3, 4),
        buyer_name="Canary Buyer",
        buyer_email="canary@example.com",
        ship_name="Canary Buyer",
        ship_address_line1="1 Canary Wharf",
        ship_city="Springfield",
        ship_state="ST",
        ship_postal_code="00000",
        ship_country="US",
        ship_phone="+1-555-0100",
    ),
]


def _ad(day: str, sku: str, asin: str, cost: str, sales: str, retrieved: str) -> dict:
    """One advertised product's day (`ads_product_daily`), pulled at `retrieved`."""
    return dict(
        date=dt.date.fromisoformat(day), marketplace_id=US, profile_id="1001", ad_id="AD-" + sku,
        retrieved_at=ts(retrieved), campaign_id="C-1", ad_group_id="G-1", asin=asin,
        seller_sku=sku, impressions=1000, clicks=20, cost=D(cost), currency="USD",
        purchases_7d=1, sales_7d=D(sales), units_sold_7d=1,
    )  # fmt: skip


# attribution moved between the two pulls: the report shows the later one ($20.00 ad sales)
ADS_V1 = [_ad("2026-03-02", "SKU-RED", "B0RED", "12.34", "10.00", "2026-03-07")]
ADS_V2 = [_ad("2026-03-02", "SKU-RED", "B0RED", "12.34", "20.00", "2026-03-08")]

OTHER_ROWS = {
    "orders": [_order("BB-ORDER-1", "2026-03-02")],
    "order_items": [_item("BB-ORDER-1", 1, "2026-03-02", "SKU-SECRET-BB", "B0SECRET", 5, "999.00")],
    "ads_product_daily": [
        _ad("2026-03-02", "SKU-SECRET-BB", "B0SECRET", "777.00", "999.00", "2026-03-08")
    ],
    "financial_events": [
        _fe(
            "bb1",
            "Shipment",
            "2026-03-02",
            "BB-ORDER-1",
            "SKU-SECRET-BB",
            "fee",
            "Commission",
            "-50.00",
        )
    ],
    "sales_traffic_by_date": [_st("2026-03-01", US, "r9", 7777, 8888, 66, 50.0)],
    "inventory_snapshots": [_inv("2026-03-07", US, "SKU-SECRET-BB", 3)],
    "review_topics": [
        _topic("B0SECRET", "2026-03-05", "negative", "Secret topic", 3, 50.0, -1.0, 1.0)
    ],
    "review_trends": [_trend("B0SECRET", "negative", "Secret topic", "2026-03-01", 50.0)],
    "solicitation_eligibility": [_sol("BB-ORDER-1", "2026-03-01", "2026-03-02", True, False)],
}


def _ah(mp: str, metric: str, end: str, rate: float, channel: str = "all", days: int = 30) -> dict:
    """One account-health window ending `end` (target from Amazon's published ones)."""
    targets = {
        "order_defect_rate": (0.01, "LESS_THAN"),
        "late_shipment_rate": (0.04, "LESS_THAN"),
        "pre_fulfillment_cancellation_rate": (0.025, "LESS_THAN"),
        "valid_tracking_rate": (0.95, "GREATER_THAN"),
    }
    last = ts(end, 23).replace(minute=59)
    return dict(
        marketplace_id=mp,
        metric=metric,
        fulfillment_channel=channel,
        window_start=ts(end, 0) - dt.timedelta(days=days - 1),
        window_end=last,
        fetched_at=last + dt.timedelta(hours=1),
        report_id=f"ah-{end}",
        rate=rate,
        defects=round(rate * 1000),
        total=1000,
        target_value=targets[metric][0],
        target_condition=targets[metric][1],
        status="GOOD",
    )


# Account health of ACME, windows ending 21 Feb, 28 Feb and 6 Mar (the one ending 14 Mar is after
# the period and must be ignored): US late shipment 3.0 -> 3.4 -> 3.7 % (worsening toward 4 %),
# US valid tracking 97 -> 96 -> 94 % (breach of > 95 %; 99 % on 14 Mar), US pre-fulfilment
# cancellation 2.1 % once (near 2.5 %), UK order defect rate MFN 0.2 % (ok).
HEALTH = [
    *[
        _ah(US, "late_shipment_rate", d, r)
        for d, r in (("2026-02-21", 0.030), ("2026-02-28", 0.034), ("2026-03-06", 0.037))
    ],
    *[
        _ah(US, "valid_tracking_rate", d, r)
        for d, r in (
            ("2026-02-21", 0.97),
            ("2026-02-28", 0.96),
            ("2026-03-06", 0.94),
            ("2026-03-14", 0.99),
        )
    ],
    _ah(US, "pre_fulfillment_cancellation_rate", "2026-03-06", 0.021, days=7),
    _ah(UK, "order_defect_rate", "2026-03-06", 0.002, "mfn", 60),
]
HEALTH_VIOLATIONS = [
    dict(
        marketplace_id=US,
        violation="listingPolicyViolations",
        window_start=ts("2026-01-01", 0),
        window_end=ts("2026-03-06", 23),
        fetched_at=ts("2026-03-07", 1),
        report_id="ah-2026-03-06",
        defects_count=2,
        target_value=0.0,
        target_condition="EQUALS",
        status="BAD",
    )
]
HEALTH_RATING = [
    dict(
        marketplace_id=US,
        window_start=ts("2026-01-01", 0),
        window_end=ts("2026-03-06", 23),
        fetched_at=ts("2026-03-07", 1),
        report_id="ah-2026-03-06",
        account_status="AT_RISK",
        ahr_status="WARNED",
    )
]
OTHER_ROWS["account_health_metrics"] = [_ah(US, "valid_tracking_rate", "2026-03-06", 0.5)]


def batches() -> list[tuple[str, str, dt.date, list[dict]]]:
    """(dataset, tenant, ingest date, rows) in ingestion order."""
    d1, d2 = dt.date(2026, 3, 7), dt.date(2026, 3, 8)
    out = [
        ("orders", ACME, d1, ORDERS_V1),
        ("orders", ACME, d2, ORDERS_V2),
        ("order_items", ACME, d1, ITEMS_V1),
        ("order_items", ACME, d2, ITEMS_V2),
        ("financial_events", ACME, d2, FINANCE),
        ("sales_traffic_by_date", ACME, d1, TRAFFIC_V1),
        ("sales_traffic_by_date", ACME, d2, TRAFFIC_V2),
        ("inventory_snapshots", ACME, d2, INVENTORY),
        ("review_topics", ACME, d2, TOPICS),
        ("review_trends", ACME, d1, TRENDS_V1),
        ("review_trends", ACME, d2, TRENDS_V2),
        ("solicitation_eligibility", ACME, d1, SOLICIT_V1),
        ("solicitation_eligibility", ACME, d2, SOLICIT_V2),
        ("order_buyers", ACME, d2, BUYERS),
        ("account_health_metrics", ACME, d2, HEALTH),
        ("account_health_violations", ACME, d2, HEALTH_VIOLATIONS),
        ("account_health_rating", ACME, d2, HEALTH_RATING),
        ("ads_product_daily", ACME, d1, ADS_V1),
        ("ads_product_daily", ACME, d2, ADS_V2),
    ]
    out += [(name, OTHER, d2, rows) for name, rows in OTHER_ROWS.items()]
    return out


def populate(lake: Lake) -> None:
    """Write every fixture batch through the real (encrypting) lake writer."""
    for i, (name, tenant, day, rows) in enumerate(batches()):
        lake.write(name, tenant, day, table(name, rows), f"fixture-{i}")
