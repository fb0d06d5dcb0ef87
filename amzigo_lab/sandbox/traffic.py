"""Per-ASIN daily traffic: sessions, page views (browser/mobile) and buy-box share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .catalog import Product
from .demand import expected_units
from .seeding import rng_for
from .tenants import Marketplace, Seller


@dataclass(frozen=True, slots=True)
class AsinTraffic:
    """Traffic of one ASIN on one day in one marketplace."""

    asin: str
    sku: str
    day: date
    browser_sessions: int
    mobile_sessions: int
    browser_page_views: int
    mobile_page_views: int
    buy_box_percentage: float

    @property
    def sessions(self) -> int:
        """Total sessions."""
        return self.browser_sessions + self.mobile_sessions

    @property
    def page_views(self) -> int:
        """Total page views."""
        return self.browser_page_views + self.mobile_page_views


def daily_traffic(
    seed: int,
    seller: Seller,
    marketplace: Marketplace,
    catalog: tuple[Product, ...],
    day: date,
    scale: float,
) -> tuple[AsinTraffic, ...]:
    """Traffic of every product of ``catalog`` on ``day`` (driven by expected demand)."""
    rng = rng_for(seed, "traffic", seller.tenant, marketplace.code, day.isoformat())
    units = expected_units(seller, marketplace, catalog, day, scale)
    rows: list[AsinTraffic] = []
    for product, expected in zip(catalog, units, strict=True):
        sessions = round(expected / product.conversion_rate * rng.uniform(0.85, 1.15)) + 3
        mobile_share = rng.uniform(0.52, 0.72)
        mobile = round(sessions * mobile_share)
        browser = sessions - mobile
        rows.append(
            AsinTraffic(
                asin=product.asin,
                sku=product.sku,
                day=day,
                browser_sessions=browser,
                mobile_sessions=mobile,
                browser_page_views=round(browser * rng.uniform(1.2, 1.8)),
                mobile_page_views=round(mobile * rng.uniform(1.1, 1.6)),
                buy_box_percentage=round(rng.uniform(82.0, 100.0), 2),
            )
        )
    return tuple(rows)
