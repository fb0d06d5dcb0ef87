"""Report documents rendered from the world: Sales & Traffic (JSON) and flat-file orders (TSV)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from .account_health import SELLER_PERFORMANCE, seller_performance
from .orders import MAX_REFUND_LAG, MAX_UPDATE_LAG, Order, OrderStatus
from .tenants import Marketplace
from .world import World

SALES_AND_TRAFFIC = "GET_SALES_AND_TRAFFIC_REPORT"
ORDERS_BY_LAST_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
ORDERS_BY_ORDER_DATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
REPORT_TYPES = (SALES_AND_TRAFFIC, ORDERS_BY_LAST_UPDATE, ORDERS_BY_ORDER_DATE, SELLER_PERFORMANCE)
#: Report types whose documents are JSON (the others are tab-separated flat files).
JSON_REPORT_TYPES = (SALES_AND_TRAFFIC, SELLER_PERFORMANCE)


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """What a report covers."""

    tenant: str
    report_type: str
    marketplace: Marketplace
    start: datetime
    end: datetime
    options: dict[str, str] = field(default_factory=dict)


def render(world: World, request: ReportRequest) -> bytes:
    """Render the (uncompressed) document of ``request``."""
    if request.report_type == SALES_AND_TRAFFIC:
        return json.dumps(sales_and_traffic(world, request), separators=(",", ":")).encode()
    if request.report_type == SELLER_PERFORMANCE:
        doc = seller_performance(world, request.tenant, [request.marketplace.marketplace_id])
        return json.dumps(doc, separators=(",", ":")).encode()
    return orders_flat_file(world, request).encode("utf-8")


# -- Sales & Traffic ------------------------------------------------------------------------
@dataclass(slots=True)
class _Sales:
    """Accumulated sales figures of one period or ASIN."""

    sales: Decimal = Decimal(0)
    units: int = 0
    items: int = 0
    refunded: int = 0
    shipped_sales: Decimal = Decimal(0)
    units_shipped: int = 0
    orders_shipped: int = 0


@dataclass(slots=True)
class _Traffic:
    """Accumulated traffic of one period or ASIN."""

    browser_sessions: int = 0
    mobile_sessions: int = 0
    browser_views: int = 0
    mobile_views: int = 0
    buy_box_weighted: float = 0.0

    @property
    def sessions(self) -> int:
        """Total sessions."""
        return self.browser_sessions + self.mobile_sessions

    @property
    def views(self) -> int:
        """Total page views."""
        return self.browser_views + self.mobile_views

    @property
    def buy_box(self) -> float:
        """Buy-box percentage weighted by page views."""
        return round(self.buy_box_weighted / self.views, 2) if self.views else 0.0


def _period_start(day: date, granularity: str) -> date:
    """Start of the DAY/WEEK (Sunday-based)/MONTH period containing ``day``."""
    if granularity == "WEEK":
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if granularity == "MONTH":
        return day.replace(day=1)
    return day


def _money(value: Decimal, currency: str) -> dict[str, Any]:
    """Amount object of the Sales & Traffic schema (a number, not a string)."""
    return {"amount": float(round(value, 2)), "currencyCode": currency}


def _pct(part: float, whole: float, cap: float | None = 100.0) -> float:
    """``part / whole`` in percent, rounded, optionally capped."""
    if not whole:
        return 0.0
    value = round(100.0 * part / whole, 2)
    return min(value, cap) if cap is not None else value


def _scan(world: World, request: ReportRequest, lag: timedelta) -> Iterator[Order]:
    """Orders purchased from ``start - lag`` to ``end``."""
    first = (request.start - lag).date()
    for day in world.days(first, request.end.date()):
        yield from world.day_orders(request.tenant, request.marketplace, day)


def sales_and_traffic(world: World, request: ReportRequest) -> dict[str, Any]:
    """The ``GET_SALES_AND_TRAFFIC_REPORT`` document (validates against the official schema)."""
    date_gran = request.options.get("dateGranularity", "DAY")
    asin_gran = request.options.get("asinGranularity", "PARENT")
    currency = request.marketplace.currency
    first, last = request.start.date(), request.end.date()
    by_date: dict[date, _Sales] = {}
    traffic_by_date: dict[date, _Traffic] = {}
    by_asin: dict[tuple[str, str], _Sales] = {}
    traffic_by_asin: dict[tuple[str, str], _Traffic] = {}

    def key_of(asin: str, sku: str) -> tuple[str, str]:
        return (asin, sku if asin_gran == "SKU" else "")

    def bucket(day: date) -> date:
        return _period_start(day, date_gran)

    for day in world.days(first, last):
        by_date.setdefault(bucket(day), _Sales())
        period = traffic_by_date.setdefault(bucket(day), _Traffic())
        for row in world.traffic(request.tenant, request.marketplace, day):
            for target in (
                period,
                traffic_by_asin.setdefault(key_of(row.asin, row.sku), _Traffic()),
            ):
                target.browser_sessions += row.browser_sessions
                target.mobile_sessions += row.mobile_sessions
                target.browser_views += row.browser_page_views
                target.mobile_views += row.mobile_page_views
                target.buy_box_weighted += row.buy_box_percentage * row.page_views

    def within(moment: datetime | None) -> bool:
        return moment is not None and first <= moment.date() <= last

    for order in _scan(world, request, MAX_REFUND_LAG):
        if within(order.purchase_date) and order.status is not OrderStatus.CANCELED:
            day_sales = by_date[bucket(order.purchase_date.date())]
            for item in order.items:
                asin_sales = by_asin.setdefault(key_of(item.asin, item.sku), _Sales())
                for acc in (day_sales, asin_sales):
                    acc.sales += item.item_price
                    acc.units += item.quantity
                    acc.items += 1
        if within(order.shipped_at):
            assert order.shipped_at is not None
            shipped = by_date[bucket(order.shipped_at.date())]
            shipped.orders_shipped += 1
            for item in order.items:
                shipped.shipped_sales += item.item_price
                shipped.units_shipped += item.quantity
        if order.refund is not None and within(order.refund.posted):
            by_date[bucket(order.refund.posted.date())].refunded += order.refund.quantity

    products = len(world.catalog(request.tenant))
    date_rows = []
    for start in sorted(by_date):
        s, t = by_date[start], traffic_by_date[start]
        negative = t.sessions // 4000
        feedback = t.sessions // 600 + negative
        date_rows.append(
            {
                "date": start.isoformat(),
                "salesByDate": {
                    "orderedProductSales": _money(s.sales, currency),
                    "unitsOrdered": s.units,
                    "totalOrderItems": s.items,
                    "averageSalesPerOrderItem": _money(
                        s.sales / s.items if s.items else Decimal(0), currency
                    ),
                    "averageUnitsPerOrderItem": round(s.units / s.items, 2) if s.items else 0.0,
                    "averageSellingPrice": _money(
                        s.sales / s.units if s.units else Decimal(0), currency
                    ),
                    "unitsRefunded": s.refunded,
                    "refundRate": _pct(s.refunded, s.units),
                    "claimsGranted": 0,
                    "claimsAmount": _money(Decimal(0), currency),
                    "shippedProductSales": _money(s.shipped_sales, currency),
                    "unitsShipped": s.units_shipped,
                    "ordersShipped": s.orders_shipped,
                },
                "trafficByDate": {
                    "browserPageViews": t.browser_views,
                    "mobileAppPageViews": t.mobile_views,
                    "pageViews": t.views,
                    "browserSessions": t.browser_sessions,
                    "mobileAppSessions": t.mobile_sessions,
                    "sessions": t.sessions,
                    "buyBoxPercentage": t.buy_box,
                    "orderItemSessionPercentage": _pct(s.items, t.sessions),
                    "unitSessionPercentage": _pct(s.units, t.sessions, cap=None),
                    "averageOfferCount": products * 3,
                    "averageParentItems": products,
                    "feedbackReceived": feedback,
                    "negativeFeedbackReceived": negative,
                    "receivedNegativeFeedbackRate": _pct(negative, feedback),
                },
            }
        )
    total = _Traffic()
    for each in traffic_by_asin.values():
        total.browser_sessions += each.browser_sessions
        total.mobile_sessions += each.mobile_sessions
        total.browser_views += each.browser_views
        total.mobile_views += each.mobile_views
    asin_rows = []
    for key in sorted(traffic_by_asin):
        asin, sku = key
        s, t = by_asin.get(key, _Sales()), traffic_by_asin[key]
        entry: dict[str, Any] = {"parentAsin": asin}
        if asin_gran in ("CHILD", "SKU"):
            entry["childAsin"] = asin
        if asin_gran == "SKU":
            entry["sku"] = sku
        entry["salesByAsin"] = {
            "unitsOrdered": s.units,
            "orderedProductSales": _money(s.sales, currency),
            "totalOrderItems": s.items,
        }
        entry["trafficByAsin"] = {
            "browserSessions": t.browser_sessions,
            "mobileAppSessions": t.mobile_sessions,
            "sessions": t.sessions,
            "browserSessionPercentage": _pct(t.browser_sessions, total.browser_sessions),
            "mobileAppSessionPercentage": _pct(t.mobile_sessions, total.mobile_sessions),
            "sessionPercentage": _pct(t.sessions, total.sessions),
            "browserPageViews": t.browser_views,
            "mobileAppPageViews": t.mobile_views,
            "pageViews": t.views,
            "browserPageViewsPercentage": _pct(t.browser_views, total.browser_views),
            "mobileAppPageViewsPercentage": _pct(t.mobile_views, total.mobile_views),
            "pageViewsPercentage": _pct(t.views, total.views),
            "buyBoxPercentage": t.buy_box,
            "unitSessionPercentage": _pct(s.units, t.sessions, cap=None),
        }
        asin_rows.append(entry)
    return {
        "reportSpecification": {
            "reportType": SALES_AND_TRAFFIC,
            "reportOptions": {"dateGranularity": date_gran, "asinGranularity": asin_gran},
            "dataStartTime": first.isoformat(),
            "dataEndTime": last.isoformat(),
            "marketplaceIds": [request.marketplace.marketplace_id],
        },
        "salesAndTrafficByDate": date_rows,
        "salesAndTrafficByAsin": asin_rows,
    }


# -- flat-file orders -----------------------------------------------------------------------
FLAT_FILE_COLUMNS = (
    "amazon-order-id",
    "merchant-order-id",
    "purchase-date",
    "last-updated-date",
    "order-status",
    "fulfillment-channel",
    "sales-channel",
    "order-channel",
    "ship-service-level",
    "product-name",
    "sku",
    "asin",
    "item-status",
    "quantity",
    "currency",
    "item-price",
    "item-tax",
    "shipping-price",
    "shipping-tax",
    "gift-wrap-price",
    "gift-wrap-tax",
    "item-promotion-discount",
    "ship-promotion-discount",
    "ship-city",
    "ship-state",
    "ship-postal-code",
    "ship-country",
    "promotion-ids",
    "is-business-order",
    "purchase-order-number",
    "price-designation",
)
_FLAT_STATUS = {
    OrderStatus.PENDING: "Pending",
    OrderStatus.UNSHIPPED: "Unshipped",
    OrderStatus.SHIPPED: "Shipped",
    OrderStatus.CANCELED: "Cancelled",
}


def _flat_time(moment: datetime) -> str:
    """Timestamp format of flat-file reports."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def orders_flat_file(world: World, request: ReportRequest) -> str:
    """Tab-separated all-orders report, one row per order item."""
    by_update = request.report_type == ORDERS_BY_LAST_UPDATE
    moment: Callable[[Order], datetime] = (
        (lambda o: o.last_update_date) if by_update else (lambda o: o.purchase_date)
    )
    lines = ["\t".join(FLAT_FILE_COLUMNS)]
    lag = MAX_UPDATE_LAG if by_update else timedelta(0)
    for order in _scan(world, request, lag):
        if not request.start <= moment(order) <= request.end:
            continue
        address = order.buyer.address if order.buyer else None
        status = _FLAT_STATUS[order.status]
        for item in order.items:
            lines.append(
                "\t".join(
                    (
                        order.order_id,
                        "",
                        _flat_time(order.purchase_date),
                        _flat_time(order.last_update_date),
                        status,
                        "Amazon" if order.fulfillment_channel == "AFN" else "Merchant",
                        order.marketplace.sales_channel,
                        "",
                        order.ship_service_level,
                        item.title,
                        item.sku,
                        item.asin,
                        "Cancelled"
                        if order.status is OrderStatus.CANCELED
                        else ("Shipped" if order.shipped_at else "Unshipped"),
                        str(item.quantity),
                        order.currency,
                        str(item.item_price),
                        str(item.item_tax),
                        str(item.shipping_price),
                        "0.00",
                        "",
                        "",
                        str(item.promotion_discount),
                        "0.00",
                        address.city if address else "",
                        address.state_or_region if address else "",
                        address.postal_code if address else "",
                        address.country_code if address else "",
                        "",
                        "true" if order.is_business else "false",
                        "",
                        "",
                    )
                )
            )
    return "\n".join(lines) + "\n"
