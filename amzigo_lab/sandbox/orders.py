"""Synthetic orders: one seeded generator per (seller, marketplace, day), and order-id codec."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from .catalog import Product
from .demand import expected_orders
from .money import ZERO, cents
from .people import Buyer, make_buyer
from .seeding import rng_for, stable_int
from .tenants import MARKETPLACES, SELLERS, Marketplace, Seller

#: Longest time between purchase and the last status change (delivery) of any order.
MAX_UPDATE_LAG = timedelta(days=14)
#: Longest time between purchase and a refund.
MAX_REFUND_LAG = timedelta(days=45)

_MOD = 10**7
_DAY_MUL, _DAY_ADD = 3_456_789, 1_234_567
_IDX_MUL, _IDX_ADD = 7_654_321, 2_718_281


class OrderStatus(StrEnum):
    """Order status values of Orders v0."""

    PENDING = "Pending"
    UNSHIPPED = "Unshipped"
    SHIPPED = "Shipped"
    CANCELED = "Canceled"


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One line of an order; money in the marketplace currency."""

    order_item_id: str
    asin: str
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    item_price: Decimal
    item_tax: Decimal
    shipping_price: Decimal
    promotion_discount: Decimal
    referral_fee: Decimal
    fba_fee: Decimal
    unit_cost: Decimal


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund of one order item, posted at ``posted``."""

    posted: datetime
    order_item_id: str
    sku: str
    quantity: int
    amount: Decimal
    referral_fee_refund: Decimal


@dataclass(frozen=True, slots=True)
class Order:
    """An order as seen at the world's ``now`` (events after ``now`` are not yet known)."""

    order_id: str
    tenant: str
    marketplace: Marketplace
    purchase_date: datetime
    last_update_date: datetime
    status: OrderStatus
    fulfillment_channel: str
    ship_service_level: str
    is_prime: bool
    is_business: bool
    items: tuple[OrderItem, ...]
    buyer: Buyer | None
    earliest_ship_date: datetime
    latest_ship_date: datetime
    earliest_delivery_date: datetime
    latest_delivery_date: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None
    canceled_at: datetime | None
    refund: Refund | None

    @property
    def currency(self) -> str:
        """Currency code of the order."""
        return self.marketplace.currency

    @property
    def order_total(self) -> Decimal:
        """Total charged to the buyer (items + tax + shipping - promotions)."""
        return sum(
            (
                i.item_price + i.item_tax + i.shipping_price - i.promotion_discount
                for i in self.items
            ),
            ZERO,
        )

    @property
    def units(self) -> int:
        """Total units ordered."""
        return sum(i.quantity for i in self.items)


def encode_order_id(seller: Seller, marketplace: Marketplace, day: date, index: int) -> str:
    """Build the Amazon-style order id ``NNN-NNNNNNN-NNNNNNN`` of an order."""
    group1 = 100 + 10 * seller.index + MARKETPLACES.index(marketplace)
    group2 = (day.toordinal() * _DAY_MUL + _DAY_ADD) % _MOD
    group3 = (index * _IDX_MUL + _IDX_ADD) % _MOD
    return f"{group1:03d}-{group2:07d}-{group3:07d}"


def decode_order_id(order_id: str) -> tuple[Seller, Marketplace, date, int] | None:
    """Invert :func:`encode_order_id`; ``None`` if ``order_id`` is not a sandbox order id."""
    parts = order_id.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    if (len(parts[0]), len(parts[1]), len(parts[2])) != (3, 7, 7):
        return None
    seller_index, mp_index = divmod(int(parts[0]) - 100, 10)
    if not (0 <= seller_index < len(SELLERS) and 0 <= mp_index < len(MARKETPLACES)):
        return None
    ordinal = ((int(parts[1]) - _DAY_ADD) * pow(_DAY_MUL, -1, _MOD)) % _MOD
    index = ((int(parts[2]) - _IDX_ADD) * pow(_IDX_MUL, -1, _MOD)) % _MOD
    if ordinal < 1:
        return None
    return SELLERS[seller_index], MARKETPLACES[mp_index], date.fromordinal(ordinal), index


def _draw_count(rng: random.Random, mean: float) -> int:
    """Draw an order count around ``mean`` (normal approximation of a Poisson)."""
    return max(0, round(rng.gauss(mean, math.sqrt(mean) * 0.9)))


def _items(
    rng: random.Random,
    order_id: str,
    catalog: tuple[Product, ...],
    weights: tuple[float, ...],
    marketplace: Marketplace,
    afn: bool,
    prime: bool,
) -> tuple[OrderItem, ...]:
    """Draw the items of one order."""
    lines = 1 if rng.random() < 0.82 else (2 if rng.random() < 0.8 else 3)
    products = rng.choices(catalog, weights=weights, k=lines)
    seen: set[str] = set()
    items: list[OrderItem] = []
    for k, product in enumerate(products):
        qty = 1 if rng.random() < 0.85 else rng.randint(2, 3)
        promo_roll = rng.random()
        if product.sku in seen:
            continue
        seen.add(product.sku)
        unit = product.price_in(marketplace)
        price = cents(unit * qty)
        promo = cents(price * Decimal("0.10")) if promo_roll < 0.08 else ZERO
        shipping = ZERO if (afn or prime) else cents(Decimal("4.99") * marketplace.fx_from_usd)
        referral = max(cents((price - promo) * product.referral_rate), cents(Decimal("0.30") * qty))
        items.append(
            OrderItem(
                order_item_id=f"{stable_int(order_id, k) % 10**14:014d}",
                asin=product.asin,
                sku=product.sku,
                title=product.title,
                quantity=qty,
                unit_price=unit,
                item_price=price,
                item_tax=cents((price - promo) * marketplace.tax_rate),
                shipping_price=shipping,
                promotion_discount=promo,
                referral_fee=referral,
                fba_fee=cents(product.fba_fee_in(marketplace) * qty) if afn else ZERO,
                unit_cost=product.unit_cost_in(marketplace),
            )
        )
    return tuple(items)


def _hours(hours: float) -> timedelta:
    """A duration of ``hours`` rounded to whole seconds."""
    return timedelta(seconds=round(hours * 3600))


def _at_or_before(moment: datetime | None, now: datetime) -> datetime | None:
    """Return ``moment`` if it already happened at ``now``."""
    return moment if moment is not None and moment <= now else None


def generate_day(
    seed: int,
    seller: Seller,
    marketplace: Marketplace,
    catalog: tuple[Product, ...],
    day: date,
    now: datetime,
    scale: float,
) -> tuple[Order, ...]:
    """Generate every order ``seller`` received in ``marketplace`` on ``day``, as seen at ``now``.

    All random draws happen whatever ``now`` is, so the same order keeps its content when the
    world is built for a later ``today``; only status, update time and known events change.
    """
    rng = rng_for(seed, "orders", seller.tenant, marketplace.code, day.isoformat())
    count = _draw_count(rng, expected_orders(seller, marketplace, day, scale))
    midnight = datetime.combine(day, time(0, 0), tzinfo=UTC)
    seconds = sorted(rng.randrange(86_400) for _ in range(count))
    weights = tuple(p.popularity for p in catalog)
    orders: list[Order] = []
    for index, second in enumerate(seconds):
        order_id = encode_order_id(seller, marketplace, day, index)
        purchase = midnight + timedelta(seconds=second)
        afn = rng.random() < seller.afn_share
        prime = afn or rng.random() < 0.2
        business = rng.random() < 0.06
        expedited = rng.random() < 0.15
        items = _items(rng, order_id, catalog, weights, marketplace, afn, prime)
        pending_end = purchase + timedelta(minutes=rng.randint(5, 240))
        handling = _hours(rng.uniform(6, 30) if afn else rng.uniform(18, 52))
        transit = _hours(rng.uniform(20, 70) if (afn or expedited) else rng.uniform(40, 140))
        ship = pending_end + handling
        earliest_delivery = datetime.combine(
            (purchase + timedelta(days=2 if afn else 3)).date(), time(8), tzinfo=UTC
        )
        latest_delivery = earliest_delivery + timedelta(days=2 if afn else 5, hours=12)
        delivery = ship + transit
        cancel_roll, cancel_delay = rng.random(), timedelta(minutes=rng.randint(10, 1200))
        refund_roll, refund_delay = rng.random(), _hours(rng.uniform(72, 600))
        buyer_rng = random.Random(rng.getrandbits(64))
        canceled = purchase + cancel_delay if cancel_roll < 0.02 else None
        if canceled is not None and canceled >= ship:
            canceled = ship - timedelta(minutes=1)
        refund: Refund | None = None
        if canceled is None and refund_roll < 0.04 and items:
            first = items[0]
            refund = Refund(
                posted=delivery + refund_delay,
                order_item_id=first.order_item_id,
                sku=first.sku,
                quantity=first.quantity,
                amount=first.item_price - first.promotion_discount,
                referral_fee_refund=cents(first.referral_fee * Decimal("0.8")),
            )
        events: list[datetime] = [purchase]
        if canceled is not None and canceled <= now:
            status = OrderStatus.CANCELED
            events.append(canceled)
            shipped = delivered = None
        else:
            shipped = _at_or_before(ship, now) if canceled is None else None
            delivered = _at_or_before(delivery, now) if shipped is not None else None
            if shipped is not None:
                status = OrderStatus.SHIPPED
            elif pending_end <= now:
                status = OrderStatus.UNSHIPPED
            else:
                status = OrderStatus.PENDING
            events.extend(
                e for e in (pending_end, shipped, delivered) if e is not None and e <= now
            )
        orders.append(
            Order(
                order_id=order_id,
                tenant=seller.tenant,
                marketplace=marketplace,
                purchase_date=purchase,
                last_update_date=max(events),
                status=status,
                fulfillment_channel="AFN" if afn else "MFN",
                ship_service_level="Expedited" if expedited else "Standard",
                is_prime=prime,
                is_business=business,
                items=items,
                buyer=None if afn else make_buyer(buyer_rng, marketplace.country_code),
                earliest_ship_date=pending_end,
                latest_ship_date=pending_end + timedelta(days=1 if afn else 2),
                earliest_delivery_date=earliest_delivery,
                latest_delivery_date=latest_delivery,
                shipped_at=shipped,
                delivered_at=delivered,
                canceled_at=_at_or_before(canceled, now),
                refund=refund if refund is not None and refund.posted <= now else None,
            )
        )
    return tuple(orders)
