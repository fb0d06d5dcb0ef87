"""One module per Selling Partner API; ``ROUTES`` lists every operation the sandbox serves."""

from __future__ import annotations

from ..protocol import Route
from . import (
    catalog,
    feedback,
    finances,
    inventory,
    orders_2026,
    orders_v0,
    reports,
    sales,
    solicitations,
    tokens,
)

ROUTES: tuple[Route, ...] = (
    *orders_2026.ROUTES,
    *orders_v0.ROUTES,
    *reports.ROUTES,
    *inventory.ROUTES,
    *finances.ROUTES,
    *catalog.ROUTES,
    *feedback.ROUTES,
    *solicitations.ROUTES,
    *sales.ROUTES,
    *tokens.ROUTES,
)
