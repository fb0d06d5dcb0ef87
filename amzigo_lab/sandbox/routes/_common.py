"""Helpers shared by route modules: time parsing/formatting, marketplaces, order scanning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from ..errors import invalid_input
from ..orders import Order
from ..protocol import Call
from ..tenants import MARKETPLACE_BY_ID, Marketplace
from ..world import World

MARKETPLACE_PARAMS = (
    "marketplaceIds",
    "MarketplaceIds",
    "MarketplaceId",
    "marketplace_ids",
    "marketplaceId",
)
Cursor = tuple[int, int, int]  # (marketplace position, day ordinal, index within day)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC timestamp with a ``Z`` suffix and whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(name: str, raw: str) -> datetime:
    """Parse an ISO 8601 date or date-time (naive = UTC); 400 if invalid."""
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), datetime.min.time(), tzinfo=UTC)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_input(f"{name} is not a valid ISO 8601 date-time.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def optional_time(call: Call, name: str) -> datetime | None:
    """Query parameter ``name`` as a date-time, if present."""
    raw = call.request.param(name)
    return parse_time(name, raw) if raw else None


def requested_marketplaces(call: Call, required: bool = True) -> list[Marketplace]:
    """Marketplaces named in any marketplace parameter that the seller sells in."""
    ids: list[str] = []
    for name in MARKETPLACE_PARAMS:
        for value in call.request.params(name):
            if value not in ids:
                ids.append(value)
    if not ids:
        if required:
            raise invalid_input("MarketplaceIds is required.")
        return list(call.seller.marketplaces)
    unknown = [i for i in ids if i not in MARKETPLACE_BY_ID]
    if unknown:
        raise invalid_input(f"Invalid marketplace id: {unknown[0]}")
    markets = [m for m in call.seller.marketplaces if m.marketplace_id in ids]
    if not markets:
        raise invalid_input("The seller is not registered in the requested marketplace(s).")
    return markets


def single_marketplace(call: Call) -> Marketplace:
    """The first requested marketplace (for operations that take one)."""
    return requested_marketplaces(call)[0]


def scan_orders(
    world: World,
    tenant: str,
    markets: list[Marketplace],
    first: date,
    last: date,
    cursor: Cursor | None = None,
) -> Iterator[tuple[Cursor, Order]]:
    """Orders of ``markets`` purchased ``first``..``last`` in a stable order, from ``cursor``."""
    start_mp, start_ordinal, start_index = cursor or (0, 0, 0)
    for mp_pos, market in enumerate(markets):
        if mp_pos < start_mp:
            continue
        for day in world.days(first, last):
            ordinal = day.toordinal()
            if (mp_pos, ordinal) < (start_mp, start_ordinal):
                continue
            orders = world.day_orders(tenant, market, day)
            begin = start_index if (mp_pos, ordinal) == (start_mp, start_ordinal) else 0
            for index in range(begin, len(orders)):
                yield (mp_pos, ordinal, index), orders[index]


def to_date(moment: datetime) -> date:
    """UTC calendar date of ``moment``."""
    return moment.astimezone(UTC).date()


def lag_start(moment: datetime, lag: timedelta) -> date:
    """First purchase day whose orders may have changed after ``moment``."""
    return to_date(moment - lag)


def cursor_of(raw: object) -> Cursor | None:
    """Cursor stored in a pagination state (400 if malformed)."""
    if raw is None:
        return None
    if isinstance(raw, list) and len(raw) == 3 and all(isinstance(v, int) for v in raw):
        return (raw[0], raw[1], raw[2])
    raise invalid_input("Invalid pagination token.")
