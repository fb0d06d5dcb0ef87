"""Per-seller product catalogues: ASINs, SKUs, titles, prices, costs and fee rates."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .money import cents
from .seeding import rng_for, stable_code
from .tenants import Marketplace, Seller

_NOUNS: dict[str, tuple[str, ...]] = {
    "outdoor": (
        "Dome Tent",
        "Daypack 25L",
        "Headlamp",
        "Sleeping Bag",
        "Trekking Poles",
        "Water Filter",
        "Camp Stove",
        "Rain Jacket",
        "Hammock",
        "Cooler Bag",
    ),
    "home": (
        "Ceramic Mug",
        "Throw Blanket",
        "Soy Candle",
        "Planter Pot",
        "Bath Towel Set",
        "Cutting Board",
        "Table Lamp",
        "Cushion Cover",
        "Storage Basket",
        "Wall Clock",
    ),
    "tech": (
        "USB-C Cable",
        "GaN Charger 65W",
        "Wireless Earbuds",
        "Power Bank 10000mAh",
        "Mechanical Keyboard",
        "Wireless Mouse",
        "HDMI Adapter",
        "Phone Stand",
        "Webcam 1080p",
        "Laptop Sleeve",
    ),
}
_ADJECTIVES = ("Trail", "Classic", "Compact", "Pro", "Lite", "Everyday", "Summit", "Urban")
_COLORS = ("Black", "Blue", "Green", "Grey", "Red", "Sand")
_REFERRAL_RATE = {"outdoor": Decimal("0.15"), "home": Decimal("0.15"), "tech": Decimal("0.08")}
_BROWSE_NODE = {
    "outdoor": ("3375251", "Sports & Outdoors"),
    "home": ("1055398", "Home & Kitchen"),
    "tech": ("172282", "Electronics"),
}
PRODUCTS_PER_SELLER = 60


@dataclass(frozen=True, slots=True)
class Product:
    """A product listed by a seller (prices in USD; converted per marketplace)."""

    asin: str
    sku: str
    title: str
    brand: str
    category: str
    browse_node_id: str
    browse_node_name: str
    price_usd: Decimal
    unit_cost_usd: Decimal
    fba_fee_usd: Decimal
    referral_rate: Decimal
    popularity: float
    conversion_rate: float
    rating: float

    def price_in(self, marketplace: Marketplace) -> Decimal:
        """Unit price in the marketplace currency (rounded to .99 endings)."""
        if marketplace.fx_from_usd == 1:
            return self.price_usd
        converted = (self.price_usd * marketplace.fx_from_usd).to_integral_value()
        return cents(converted - Decimal("0.01"))

    def fba_fee_in(self, marketplace: Marketplace) -> Decimal:
        """FBA per-unit fulfilment fee in the marketplace currency."""
        return cents(self.fba_fee_usd * marketplace.fx_from_usd)

    def unit_cost_in(self, marketplace: Marketplace) -> Decimal:
        """Landed unit cost in the marketplace currency."""
        return cents(self.unit_cost_usd * marketplace.fx_from_usd)


def make_catalog(seed: int, seller: Seller) -> tuple[Product, ...]:
    """Build the deterministic catalogue of ``seller`` for ``seed``."""
    rng = rng_for(seed, "catalog", seller.tenant)
    nouns = _NOUNS[seller.category]
    brand = seller.display_name.split(" (")[0]
    node_id, node_name = _BROWSE_NODE[seller.category]
    products: list[Product] = []
    for i in range(PRODUCTS_PER_SELLER):
        noun = nouns[i % len(nouns)]
        adjective = rng.choice(_ADJECTIVES)
        color = rng.choice(_COLORS)
        price = cents(Decimal(rng.randint(8, 120)) - Decimal("0.01"))
        cost = cents(price * Decimal(str(round(rng.uniform(0.25, 0.45), 3))))
        fba_fee = cents(Decimal("3.22") + price * Decimal("0.02"))
        prefix = seller.tenant.split("-")[0][:4].upper()
        products.append(
            Product(
                asin="B0" + stable_code(8, seed, "asin", seller.tenant, i),
                sku=f"{prefix}-{noun.split()[0][:4].upper()}-{i + 1:03d}-{color[:3].upper()}",
                title=f"{brand} {adjective} {noun}, {color}",
                brand=brand,
                category=seller.category,
                browse_node_id=node_id,
                browse_node_name=node_name,
                price_usd=price,
                unit_cost_usd=cost,
                fba_fee_usd=fba_fee,
                referral_rate=_REFERRAL_RATE[seller.category],
                popularity=round(rng.paretovariate(1.6), 4),
                conversion_rate=round(rng.uniform(0.06, 0.16), 4),
                rating=round(rng.uniform(3.6, 4.8), 1),
            )
        )
    return tuple(products)
