"""Marketplaces, currencies and money formatting for reports.

Money stays `Decimal` from the lake to the table cell; only charts get floats. Amounts in
different currencies are never added: every money aggregate is grouped by `currency`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class MarketplaceInfo:
    """A marketplace as reports name it. `timezone`: the IANA zone of the marketplace's
    business day, the day Seller Central reports it in (reports bucket by it)."""

    code: str
    marketplace_id: str
    currency: str
    sales_channel: str
    timezone: str = "UTC"


MARKETPLACES: tuple[MarketplaceInfo, ...] = (
    MarketplaceInfo("US", "ATVPDKIKX0DER", "USD", "Amazon.com", "America/Los_Angeles"),
    MarketplaceInfo("UK", "A1F83G8C2ARO7P", "GBP", "Amazon.co.uk", "Europe/London"),
    MarketplaceInfo("DE", "A1PA6795UKMFR9", "EUR", "Amazon.de", "Europe/Berlin"),
)
#: The zone of data whose marketplace is not in the registry.
FALLBACK_TIMEZONE = "UTC"
BY_ID = {m.marketplace_id: m for m in MARKETPLACES}
BY_CODE = {m.code: m for m in MARKETPLACES}
SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€"}
CENT = Decimal("0.01")


def marketplace(value: str | None) -> MarketplaceInfo | None:
    """A marketplace from its code ("US") or id ("ATVPDKIKX0DER"); None/""/"ALL" -> None."""
    if value is None or value.strip().upper() in ("", "ALL"):
        return None
    v = value.strip()
    found = BY_CODE.get(v.upper()) or BY_ID.get(v)
    if found is None:
        known = ", ".join(f"{m.code} ({m.marketplace_id})" for m in MARKETPLACES)
        raise ValueError(f"unknown marketplace {value!r}; known: {known}")
    return found


def marketplace_code(marketplace_id: str) -> str:
    """ "ATVPDKIKX0DER" -> "US" (unknown ids are returned unchanged)."""
    m = BY_ID.get(marketplace_id)
    return m.code if m else marketplace_id


def money(value: Decimal | float | int | None) -> Decimal:
    """A value as Decimal rounded to the cent (None -> 0.00)."""
    if value is None:
        return Decimal("0.00")
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return d.quantize(CENT, rounding=ROUND_HALF_UP)


def ratio(num: Decimal | int | float | None, den: Decimal | int | float | None) -> Decimal | None:
    """num / den as a Decimal, or None when the denominator is 0 or missing."""
    if num is None or den is None or Decimal(str(den)) == 0:
        return None
    return Decimal(str(num)) / Decimal(str(den))


def fmt_money(value: Decimal | float | None, currency: str) -> str:
    """Decimal("1234.5"), "USD" -> "$1,234.50"; unknown currencies keep their code."""
    if value is None:
        return "–"
    d = money(value)
    sign = "-" if d < 0 else ""
    sym = SYMBOLS.get(currency)
    body = f"{abs(d):,.2f}"
    return f"{sign}{sym}{body}" if sym else f"{sign}{body} {currency}"


def fmt_pct(value: Decimal | float | None, digits: int = 1) -> str:
    """0.1234 -> "12.3%" (a fraction, not a percentage)."""
    if value is None:
        return "–"
    return f"{float(value) * 100:.{digits}f}%"
