"""The synthetic world: a pure, lazily generated function of (seed, today, scale).

The world is a snapshot taken at ``now`` = ``today`` 00:00 UTC. Orders exist for the
``history_days`` days before ``today``; each (seller, marketplace, day) is generated on demand
from its own seeded random stream, so nothing requires materialising the whole history.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from .catalog import Product, make_catalog
from .orders import Order, decode_order_id, generate_day
from .reviews import ReviewTopic, review_topics
from .stock import InventoryLevel, inventory_levels
from .tenants import MARKETPLACE_BY_ID, SELLER_BY_TENANT, SELLERS, Marketplace, Seller
from .traffic import AsinTraffic, daily_traffic

T = TypeVar("T")
DEFAULT_HISTORY_DAYS = 150


class _Lru:
    """A small thread-safe LRU cache keyed by tuples."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], build: Callable[[], T]) -> T:
        """Return the cached value for ``key``, building it with ``build`` on a miss."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]  # type: ignore[return-value]
        value = build()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


class World:
    """Deterministic sandbox data for all sellers; same inputs give byte-identical outputs."""

    def __init__(
        self,
        seed: int = 0,
        today: date | None = None,
        scale: float = 1.0,
        history_days: int = DEFAULT_HISTORY_DAYS,
        cache_days: int = 512,
    ) -> None:
        self.seed = seed
        self.today = today or datetime.now(UTC).date()
        self.scale = scale
        self.history_days = history_days
        self.now = datetime.combine(self.today, time(0, 0), tzinfo=UTC)
        self.first_day = self.today - timedelta(days=history_days)
        self.last_day = self.today - timedelta(days=1)
        self._catalogs = {s.tenant: make_catalog(seed, s) for s in SELLERS}
        self._cache = _Lru(cache_days)

    # -- roster -------------------------------------------------------------------------------
    @property
    def sellers(self) -> tuple[Seller, ...]:
        """All sellers (tenants) of the world."""
        return SELLERS

    def seller(self, tenant: str) -> Seller:
        """The seller with tenant id ``tenant`` (``KeyError`` if unknown)."""
        return SELLER_BY_TENANT[tenant]

    def seller_for_refresh_token(self, refresh_token: str) -> Seller | None:
        """The seller owning ``refresh_token``, if any."""
        return next((s for s in SELLERS if s.refresh_token == refresh_token), None)

    def catalog(self, tenant: str) -> tuple[Product, ...]:
        """Products of ``tenant``."""
        return self._catalogs[tenant]

    def product(self, tenant: str, asin_or_sku: str) -> Product | None:
        """Product of ``tenant`` by ASIN or SKU."""
        return next((p for p in self._catalogs[tenant] if asin_or_sku in (p.asin, p.sku)), None)

    def marketplace(self, marketplace_id: str) -> Marketplace:
        """Marketplace by id (``KeyError`` if unknown)."""
        return MARKETPLACE_BY_ID[marketplace_id]

    def days(self, start: date | None = None, end: date | None = None) -> Iterator[date]:
        """Days with data from ``start`` to ``end`` inclusive, clipped to the history window."""
        day = max(start or self.first_day, self.first_day)
        stop = min(end or self.last_day, self.last_day)
        while day <= stop:
            yield day
            day += timedelta(days=1)

    # -- orders -------------------------------------------------------------------------------
    def day_orders(self, tenant: str, marketplace: Marketplace, day: date) -> tuple[Order, ...]:
        """All orders of ``tenant`` in ``marketplace`` purchased on ``day`` (sorted by time)."""
        seller = self.seller(tenant)
        if not (self.first_day <= day <= self.last_day) or marketplace not in seller.marketplaces:
            return ()
        return self._cache.get(
            ("orders", tenant, marketplace.code, day),
            lambda: generate_day(
                self.seed, seller, marketplace, self._catalogs[tenant], day, self.now, self.scale
            ),
        )

    def orders(
        self, tenant: str, day: date, marketplace: Marketplace | None = None
    ) -> Iterator[Order]:
        """Orders of ``tenant`` purchased on ``day`` (all its marketplaces unless given)."""
        markets = (marketplace,) if marketplace else self.seller(tenant).marketplaces
        for market in markets:
            yield from self.day_orders(tenant, market, day)

    def order(self, order_id: str) -> Order | None:
        """Look an order up by its id (decoded, then regenerated from its day)."""
        decoded = decode_order_id(order_id)
        if decoded is None:
            return None
        seller, marketplace, day, index = decoded
        orders = self.day_orders(seller.tenant, marketplace, day)
        if index >= len(orders) or orders[index].order_id != order_id:
            return None
        return orders[index]

    # -- other datasets -----------------------------------------------------------------------
    def traffic(self, tenant: str, marketplace: Marketplace, day: date) -> tuple[AsinTraffic, ...]:
        """Per-ASIN traffic of ``tenant`` in ``marketplace`` on ``day``."""
        seller = self.seller(tenant)
        return self._cache.get(
            ("traffic", tenant, marketplace.code, day),
            lambda: daily_traffic(
                self.seed, seller, marketplace, self._catalogs[tenant], day, self.scale
            ),
        )

    def inventory(self, tenant: str, marketplace: Marketplace) -> tuple[InventoryLevel, ...]:
        """FBA inventory of ``tenant`` in ``marketplace`` at ``now``."""
        seller = self.seller(tenant)
        return self._cache.get(
            ("inventory", tenant, marketplace.code),
            lambda: inventory_levels(
                self.seed, seller, marketplace, self._catalogs[tenant], self.today, self.scale
            ),
        )

    def find_product(self, asin: str) -> tuple[Seller, Product] | None:
        """The seller and product with ``asin`` (catalogue data is public)."""
        for seller in SELLERS:
            for product in self._catalogs[seller.tenant]:
                if product.asin == asin:
                    return seller, product
        return None

    def review_topics(self, marketplace: Marketplace, asin: str) -> tuple[ReviewTopic, ...] | None:
        """Review topics of ``asin`` in ``marketplace`` (``None`` for an unknown ASIN)."""
        found = self.find_product(asin)
        if found is None:
            return None
        return review_topics(self.seed, marketplace, found[1], self.today)
