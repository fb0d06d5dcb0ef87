"""FBA inventory that sells down with expected demand and is restocked by inbound shipments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .catalog import Product
from .demand import expected_units
from .seeding import rng_for
from .tenants import Marketplace, Seller

_WARMUP_DAYS = 60


@dataclass(frozen=True, slots=True)
class InventoryLevel:
    """FBA inventory of one SKU in one marketplace at the start of a day."""

    asin: str
    sku: str
    title: str
    day: date
    fulfillable: int
    inbound_working: int
    inbound_shipped: int
    inbound_receiving: int
    reserved_customer_orders: int
    reserved_fc_processing: int
    unfulfillable: int

    @property
    def reserved(self) -> int:
        """Total reserved units."""
        return self.reserved_customer_orders + self.reserved_fc_processing

    @property
    def total(self) -> int:
        """Total quantity (as ``totalQuantity`` of the FBA Inventory API)."""
        return (
            self.fulfillable
            + self.inbound_working
            + self.inbound_shipped
            + self.inbound_receiving
            + self.reserved
            + self.unfulfillable
        )


def inventory_levels(
    seed: int,
    seller: Seller,
    marketplace: Marketplace,
    catalog: tuple[Product, ...],
    today: date,
    scale: float,
) -> tuple[InventoryLevel, ...]:
    """Simulate stock from a warm-up period up to ``today``; return levels at ``today``."""
    start = today - timedelta(days=_WARMUP_DAYS)
    demand = [
        expected_units(seller, marketplace, catalog, start + timedelta(days=d), scale)
        for d in range(_WARMUP_DAYS)
    ]
    levels: list[InventoryLevel] = []
    for p_index, product in enumerate(catalog):
        rng = rng_for(
            seed, "stock", seller.tenant, marketplace.code, product.sku, start.isoformat()
        )
        daily = [row[p_index] * seller.afn_share for row in demand]
        mean = max(sum(daily) / len(daily), 0.1)
        on_hand = round(mean * rng.uniform(20, 50))
        shipment: tuple[int, date] | None = None  # (units, arrival day)
        created = start
        for offset, units in enumerate(daily):
            day = start + timedelta(days=offset)
            if shipment is not None and shipment[1] <= day:
                on_hand += shipment[0]
                shipment = None
            on_hand = max(0, on_hand - round(units * rng.uniform(0.7, 1.3)))
            if shipment is None and on_hand < mean * 21:
                shipment = (round(mean * rng.uniform(45, 70)), day + timedelta(rng.randint(8, 20)))
                created = day
        working = shipped = receiving = 0
        if shipment is not None:
            days_left = (shipment[1] - today).days
            if (today - created).days < 3:
                working = shipment[0]
            elif days_left <= 2:
                receiving = shipment[0]
            else:
                shipped = shipment[0]
        reserved_orders = min(on_hand, round(mean * rng.uniform(0.3, 0.8)))
        levels.append(
            InventoryLevel(
                asin=product.asin,
                sku=product.sku,
                title=product.title,
                day=today,
                fulfillable=on_hand - reserved_orders,
                inbound_working=working,
                inbound_shipped=shipped,
                inbound_receiving=receiving,
                reserved_customer_orders=reserved_orders,
                reserved_fc_processing=rng.randint(0, 3),
                unfulfillable=rng.randint(0, 4),
            )
        )
    return tuple(levels)
