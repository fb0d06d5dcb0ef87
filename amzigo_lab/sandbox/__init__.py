"""Fake Amazon Selling Partner API + Login with Amazon over HTTPS, for tests and benchmarks.

This package owns the sandbox: a deterministic synthetic world of sellers, products, orders,
traffic, inventory, finances and reviews (``world``); a local CA and server certificate
(``tls``); and an HTTPS server imitating LWA and the SP-API operations the workbench ingests,
with Amazon's rate limits, pagination, Restricted Data Tokens, report lifecycles and
switchable faults (``server``, ``routes``, ``ratelimit``, ``faults``). It imports nothing else
from ``amzigo_lab``.
"""

from __future__ import annotations

from .faults import Faults
from .orders import Order, OrderItem, OrderStatus, Refund
from .reports import ReportTimings
from .server import SandboxServer, serve
from .tenants import (
    MARKETPLACES,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SELLERS,
    Marketplace,
    Seller,
)
from .tls import ca_path, client_context, ensure_certificates
from .world import World

__all__ = [
    "MARKETPLACES",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SELLERS",
    "Faults",
    "Marketplace",
    "Order",
    "OrderItem",
    "OrderStatus",
    "Refund",
    "ReportTimings",
    "SandboxServer",
    "Seller",
    "World",
    "ca_path",
    "client_context",
    "ensure_certificates",
    "serve",
]
