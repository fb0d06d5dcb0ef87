"""The dashboard's data: one tenant's datasets, read from the gateway as `svc:dashboard` into a
private in-memory DuckDB (the kernel holds no key; widget updates query memory only)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from amzigo_lab.analysis.source import ReportError

SERVICE_ACTOR = "svc:dashboard"
#: Dataset -> the purpose the dashboard reads it for.
DATASETS: dict[str, str] = {
    "orders": "sales_analysis",
    "order_items": "sales_analysis",
    "financial_events": "sales_analysis",
    "sales_traffic_by_date": "sales_analysis",
    "product_costs": "sales_analysis",
    "inventory_snapshots": "inventory_tracking",
    "review_trends": "review_management",
    "account_health_metrics": "sales_analysis",
    "account_health_violations": "sales_analysis",
    "account_health_rating": "sales_analysis",
    "ads_product_daily": "sales_analysis",
}


class ArrowSource:
    """A `TableSource` over Arrow tables registered on a private in-memory DuckDB (zero copy).

    (ibis' `create_table` from Arrow fails with duckdb 2.0.1, so `MemoryTableSource` can't be
    used here; registering the Arrow tables on the connection works.)
    """

    def __init__(self, tables: dict[str, Any], backend: Any = None) -> None:
        self.backend = backend or self.connect()
        self._tables = {}
        for name, data in tables.items():
            self.backend.con.register(name, data)
            self._tables[name] = self.backend.table(name)

    @staticmethod
    def connect() -> Any:
        """A private in-memory DuckDB (ibis backend) computing dates in UTC."""
        import ibis

        backend = ibis.duckdb.connect()
        # dates of UTC timestamps must not depend on the server's time zone
        backend.raw_sql("SET TimeZone = 'UTC'")
        return backend

    def table(self, name: str) -> Any:
        """The registered table `name`."""
        if name not in self._tables:
            raise ReportError(f"the dashboard did not load dataset {name!r}")
        return self._tables[name]


def require_tenant(tenant: str) -> str:
    """The injected tenant id, validated; ReportError when none was injected (fail closed)."""
    from amzigo_lab.names import tenant_id

    if not str(tenant or "").strip():
        raise ReportError("no tenant was injected: this dashboard is served only to sellers")
    return tenant_id(tenant)


@dataclass(frozen=True)
class LoadedData:
    """A tenant's datasets in memory, its newest order's day and the clock of "as of"."""

    source: ArrowSource
    last_day: dt.date | None
    clock: dt.datetime


def load(tenant: str, home: str = "", token: str = "") -> LoadedData:
    """Read `tenant`'s datasets from the gateway (see `SellerDashboard.open`); the token is
    revoked once they are loaded."""
    from amzigo_lab.client import protocol, service
    from amzigo_lab.client.transport import GatewayClient
    from amzigo_lab.client.workbench import home_path

    where = home_path(home or None)
    if token:
        address = protocol.default_address(where)
    else:
        minted = service.mint(
            where, SERVICE_ACTOR, tenant, sorted(set(DATASETS.values())), require_data=False
        )
        address, token = minted.address, minted.token
    backend = ArrowSource.connect()
    tables: dict[str, Any] = {}
    try:
        with GatewayClient(address, token) as client:
            for name, purpose in DATASETS.items():
                ticket = {"op": protocol.TICKET_LATEST, "dataset": name, "purpose": purpose}
                tables[name] = client.table(ticket)
    finally:
        service.revoke(address, token)
    items = tables["order_items"]
    last = None
    clock = dt.datetime.now(dt.UTC)
    if items.num_rows:
        import pyarrow.compute as pc

        newest = pc.max(items.column("purchase_date")).as_py()
        last = newest.date() if newest is not None else None
        if newest is not None:  # a day is complete once it is over AND the data is past it
            clock = min(clock, newest)
    return LoadedData(ArrowSource(tables, backend), last, clock)
