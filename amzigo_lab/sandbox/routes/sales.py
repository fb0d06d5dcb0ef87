"""Sales API v1: getOrderMetrics."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ..errors import invalid_input
from ..money import new_money
from ..orders import OrderStatus
from ..protocol import Call, JsonObject, Response, Route
from ._common import parse_time, requested_marketplaces, scan_orders, to_date


@dataclass(slots=True)
class _Totals:
    """Order metrics of one interval."""

    units: int = 0
    items: int = 0
    orders: int = 0
    sales: Decimal = Decimal(0)


GRANULARITIES = ("Hour", "Day", "Week", "Month", "Year", "Total")
MAX_BUCKETS = 5000


def _add_months(moment: datetime, months: int) -> datetime:
    """``moment`` shifted by whole calendar months (day clamped to 28)."""
    total = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=total // 12, month=total % 12 + 1, day=min(moment.day, 28))


def _buckets(start: datetime, end: datetime, granularity: str) -> list[tuple[datetime, datetime]]:
    """Consecutive [from, to) intervals covering ``start``..``end``."""
    if granularity == "Total":
        return [(start, end)]
    buckets: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        if granularity in ("Hour", "Day", "Week"):
            step = {"Hour": timedelta(hours=1), "Day": timedelta(days=1), "Week": timedelta(days=7)}
            nxt = cursor + step[granularity]
        else:
            nxt = _add_months(cursor, 1 if granularity == "Month" else 12)
        buckets.append((cursor, min(nxt, end)))
        cursor = nxt
        if len(buckets) > MAX_BUCKETS:
            raise invalid_input("The interval has too many granularity buckets.")
    return buckets


def _label(start: datetime, end: datetime) -> str:
    """Interval label ``start--end`` in the request's offset."""
    return f"{start.isoformat(timespec='minutes')}--{end.isoformat(timespec='minutes')}"


def get_order_metrics(call: Call) -> Response:
    """``GET /sales/v1/orderMetrics``."""
    request, world = call.request, call.services.world
    interval = request.param("interval") or ""
    start_raw, sep, end_raw = interval.partition("--")
    if not sep:
        raise invalid_input("interval must look like <start>--<end>.")
    start, end = parse_time("interval", start_raw), parse_time("interval", end_raw)
    if start >= end:
        raise invalid_input("The interval start must be before its end.")
    granularity = request.param("granularity")
    if granularity not in GRANULARITIES:
        raise invalid_input(f"granularity must be one of {', '.join(GRANULARITIES)}.")
    network = request.param("fulfillmentNetwork")
    buyer_type = request.param("buyerType") or "All"
    asin, sku = request.param("asin"), request.param("sku")
    markets = requested_marketplaces(call)[:1]
    buckets = _buckets(start, end, granularity)
    totals = [_Totals() for _ in buckets]
    starts = [lo for lo, _ in buckets]
    for _, order in scan_orders(world, call.seller.tenant, markets, to_date(start), to_date(end)):
        if order.status is OrderStatus.CANCELED or not start <= order.purchase_date < end:
            continue
        if network and order.fulfillment_channel != network:
            continue
        if buyer_type != "All" and (buyer_type == "B2B") != order.is_business:
            continue
        items = [
            i for i in order.items if (not asin or i.asin == asin) and (not sku or i.sku == sku)
        ]
        if not items:
            continue
        row = totals[bisect.bisect_right(starts, order.purchase_date) - 1]
        row.units += sum(i.quantity for i in items)
        row.items += len(items)
        row.orders += 1
        row.sales += sum((i.item_price for i in items), Decimal(0))
    currency = markets[0].currency
    payload: list[JsonObject] = []
    for (lo, hi), row in zip(buckets, totals, strict=True):
        average = row.sales / row.units if row.units else Decimal(0)
        payload.append(
            {
                "interval": _label(lo, hi),
                "unitCount": row.units,
                "orderItemCount": row.items,
                "orderCount": row.orders,
                "averageUnitPrice": new_money(average, currency),
                "totalSales": new_money(row.sales, currency),
            }
        )
    return Response.json({"payload": payload})


ROUTES = (Route.of("GET", "/sales/v1/orderMetrics", "getOrderMetrics", get_order_metrics),)
