"""Marketplaces and the fixed roster of sandbox sellers (tenants) with their LWA credentials."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 - fixed public sandbox value


@dataclass(frozen=True, slots=True)
class Marketplace:
    """An Amazon marketplace served by the sandbox."""

    code: str
    marketplace_id: str
    country_code: str
    currency: str
    region: str
    sales_channel: str
    fx_from_usd: Decimal
    tax_rate: Decimal


MARKETPLACES: tuple[Marketplace, ...] = (
    Marketplace(
        "US", "ATVPDKIKX0DER", "US", "USD", "NA", "Amazon.com", Decimal("1"), Decimal("0.0725")
    ),
    Marketplace(
        "UK", "A1F83G8C2ARO7P", "GB", "GBP", "EU", "Amazon.co.uk", Decimal("0.79"), Decimal("0")
    ),
    Marketplace(
        "DE", "A1PA6795UKMFR9", "DE", "EUR", "EU", "Amazon.de", Decimal("0.92"), Decimal("0")
    ),
)
MARKETPLACE_BY_ID: dict[str, Marketplace] = {m.marketplace_id: m for m in MARKETPLACES}
MARKETPLACE_BY_CODE: dict[str, Marketplace] = {m.code: m for m in MARKETPLACES}


@dataclass(frozen=True, slots=True)
class Seller:
    """A sandbox seller: one tenant of the analytics workbench."""

    index: int
    tenant: str
    seller_id: str
    display_name: str
    category: str
    marketplace_codes: tuple[str, ...]
    afn_share: float
    base_orders_per_day: float
    growth_per_day: float

    @property
    def refresh_token(self) -> str:
        """LWA refresh token accepted for this seller."""
        return f"sandbox-refresh-{self.tenant}"

    @property
    def marketplaces(self) -> tuple[Marketplace, ...]:
        """Marketplaces this seller sells in."""
        return tuple(MARKETPLACE_BY_CODE[c] for c in self.marketplace_codes)

    def sells_in(self, marketplace_id: str) -> bool:
        """Whether the seller participates in ``marketplace_id``."""
        return any(m.marketplace_id == marketplace_id for m in self.marketplaces)


SELLERS: tuple[Seller, ...] = (
    Seller(
        0,
        "acme-outdoor",
        "A1SBXACME00001",
        "Acme Outdoor (sandbox)",
        "outdoor",
        ("US", "UK"),
        0.7,
        40.0,
        0.0008,
    ),
    Seller(
        1,
        "bluebird-home",
        "A2SBXBLUEBRD01",
        "Bluebird Home (sandbox)",
        "home",
        ("US", "DE"),
        0.5,
        25.0,
        0.0003,
    ),
    Seller(
        2,
        "cobalt-tech",
        "A3SBXCOBALT001",
        "Cobalt Tech (sandbox)",
        "tech",
        ("US", "UK", "DE"),
        0.85,
        60.0,
        -0.0004,
    ),
)
SELLER_BY_TENANT: dict[str, Seller] = {s.tenant: s for s in SELLERS}
