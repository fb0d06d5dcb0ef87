"""Money helpers: Decimal arithmetic rounded to cents, rendered as Amazon-style strings."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cents(value: Decimal | int | str) -> Decimal:
    """Round ``value`` to two decimal places (half up)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def amount_str(value: Decimal) -> str:
    """Render ``value`` as a plain two-decimal string, e.g. ``"12.30"``."""
    return f"{cents(value):.2f}"


def v0_money(value: Decimal, currency: str) -> dict[str, str]:
    """Money object of the v0 APIs: ``{"CurrencyCode": ..., "Amount": "12.34"}``."""
    return {"CurrencyCode": currency, "Amount": amount_str(value)}


def new_money(value: Decimal, currency: str) -> dict[str, str]:
    """Money object of the newer APIs: ``{"amount": "12.34", "currencyCode": ...}``."""
    return {"amount": amount_str(value), "currencyCode": currency}


def finance_money(value: Decimal, currency: str) -> dict[str, object]:
    """Currency object of Finances v0 (``CurrencyAmount`` is a number there)."""
    return {"CurrencyCode": currency, "CurrencyAmount": float(cents(value))}
