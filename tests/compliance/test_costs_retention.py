"""product_costs is internal data kept while the tenant is active: the Amazon purge never takes
it, a whole-tenant deletion (or naming the dataset) drops and certifies it (issue 13 item 3)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from amzigo_lab.compliance import delete_scope, list_certificates, purge
from amzigo_lab.lake import Lake
from tests.analysis.data import table
from tests.compliance.conftest import Clock
from tests.lake.helpers import orders

D0 = dt.date(2026, 3, 1)
COSTS = [
    {"sku": "SKU-RED", "marketplace_id": None, "currency": "USD", "unit_cost": Decimal("8.00"),
     "valid_from": D0, "imported_at": dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC),
     "source_sha256": "a" * 64},
]  # fmt: skip


def _datasets(lake: Lake, tenant: str) -> list[str]:
    return sorted(p.dataset for p in lake.catalog.partitions(tenants=[tenant]))


def test_the_purge_keeps_costs_and_the_tenants_deletion_drops_them(
    lake: Lake, clock: Clock
) -> None:
    for tenant in ("acme", "beta"):
        lake.write("orders", tenant, D0, orders(2), f"o-{tenant}")
        lake.write("product_costs", tenant, D0, table("product_costs", COSTS), f"c-{tenant}")
    clock.set_day(dt.date(2030, 1, 1))  # years past the 18 months of the Amazon data
    purge(lake)
    assert _datasets(lake, "acme") == _datasets(lake, "beta") == ["product_costs"]
    # a notice for one dataset leaves the costs; the tenant's deletion takes them, certified
    lake.write("orders", "acme", dt.date(2030, 1, 1), orders(1), "o2")
    delete_scope(lake, tenant="acme", notice="AMZ-1", actor="alice", datasets=["orders"])
    assert _datasets(lake, "acme") == ["product_costs"]
    result = delete_scope(lake, tenant="acme", notice="AMZ-2", actor="alice")
    assert result.partitions_dropped == 1 and _datasets(lake, "acme") == []
    assert _datasets(lake, "beta") == ["product_costs"]
    cert = next(c for c in list_certificates(lake) if c.body["reference"] == "AMZ-2")
    assert cert.id == result.certificate_id
    assert "product_costs" in str(cert.body["items"])
