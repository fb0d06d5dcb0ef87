"""Demand model: expected orders per seller, marketplace and day (seasonality, weekday, trend)."""

from __future__ import annotations

import math
from datetime import date

from .catalog import Product
from .tenants import Marketplace, Seller

_MARKETPLACE_SHARE = {"US": 1.0, "UK": 0.35, "DE": 0.4}
_WEEKDAY = (1.0, 0.96, 0.95, 0.99, 1.04, 1.14, 1.1)
_SEASON_PEAK_DAY = {"outdoor": 172, "home": 355, "tech": 330}
_SEASON_AMPLITUDE = {"outdoor": 0.35, "home": 0.2, "tech": 0.1}
_TREND_EPOCH = date(2025, 1, 1)
AVERAGE_UNITS_PER_ORDER = 1.3


def seasonality(category: str, day: date) -> float:
    """Seasonal multiplier of ``category`` on ``day`` (yearly wave, Prime Day, Q4 peak)."""
    doy = day.timetuple().tm_yday
    wave = 1.0 + _SEASON_AMPLITUDE[category] * math.cos(
        2.0 * math.pi * (doy - _SEASON_PEAK_DAY[category]) / 365.0
    )
    if (day.month, day.day) in ((7, 15), (7, 16)):
        wave *= 1.8
    if (11, 20) <= (day.month, day.day) <= (12, 22):
        wave *= 1.45
    return wave


def expected_orders(seller: Seller, marketplace: Marketplace, day: date, scale: float) -> float:
    """Expected number of orders for ``seller`` in ``marketplace`` on ``day``."""
    trend = math.exp(seller.growth_per_day * (day - _TREND_EPOCH).days)
    return (
        seller.base_orders_per_day
        * _MARKETPLACE_SHARE[marketplace.code]
        * seasonality(seller.category, day)
        * _WEEKDAY[day.weekday()]
        * trend
        * scale
    )


def product_shares(catalog: tuple[Product, ...]) -> tuple[float, ...]:
    """Share of orders going to each product of ``catalog`` (by popularity)."""
    total = sum(p.popularity for p in catalog)
    return tuple(p.popularity / total for p in catalog)


def expected_units(
    seller: Seller, marketplace: Marketplace, catalog: tuple[Product, ...], day: date, scale: float
) -> tuple[float, ...]:
    """Expected units sold per product of ``catalog`` on ``day``."""
    orders = expected_orders(seller, marketplace, day, scale)
    return tuple(orders * share * AVERAGE_UNITS_PER_ORDER for share in product_shares(catalog))
