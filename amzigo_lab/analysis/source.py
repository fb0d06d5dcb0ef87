"""Where report builders get their tables: the `TableSource` protocol and the gateway source.

Builders only ever call `source.table(name)` and receive an ibis table holding the LATEST state
of each record (one row per natural key) of ONE tenant. Outside the gateway that comes from
`GatewayTableSource` (a service token) or a person's governed session; inside the gateway
(benches, tests) `amzigo_lab.gateway.sources.LakeTableSource` builds it from the lake.
This module never imports the lake.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

import ibis

from amzigo_lab.errors import AmzigoError
from amzigo_lab.names import tenant_id

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from amzigo_lab.analysis.period import Period

#: Datasets a report may read. Buyer PII (`order_buyers`) is deliberately absent.
REPORT_DATASETS = frozenset(
    {
        "orders",
        "order_items",
        "sales_traffic_by_date",
        "sales_traffic_by_asin",
        "inventory_snapshots",
        "financial_events",
        "catalog_items",
        "review_topics",
        "review_trends",
        "solicitation_eligibility",
        "product_costs",
        "account_health_metrics",
        "account_health_violations",
        "account_health_rating",
        "ads_profiles",
        "ads_campaign_daily",
        "ads_product_daily",
    }
)


#: Per dataset, a UTC timestamp column that no later version of a record ever changes (an
#: order's purchase date, copied onto each of its lines). Sources may filter a period on it
#: BEFORE reducing to the latest state (`period_table`), which gives the same records as
#: filtering after: the filter keeps or drops every version of a record together.
#: tests/analysis/test_period_pushdown.py proves the identical results.
FIXED_DATE_COLUMNS = {"orders": "purchase_date", "order_items": "purchase_date"}

#: A marketplace-local day lies within this margin of the same UTC day (UTC-12 .. UTC+14).
_LOCAL_DAY_MARGIN = dt.timedelta(days=1)


def period_bounds(period: Period) -> tuple[dt.datetime, dt.datetime]:
    """UTC [lo, hi) covering every instant whose marketplace-local day is in `period`."""
    lo = dt.datetime.combine(period.start, dt.time(), dt.UTC) - _LOCAL_DAY_MARGIN
    hi = dt.datetime.combine(period.end, dt.time(), dt.UTC) + dt.timedelta(days=1)
    return lo, hi + _LOCAL_DAY_MARGIN


class ReportError(AmzigoError):
    """A report cannot be built (bad parameters, unknown tenant, refused dataset)."""


class TableSource(Protocol):
    """Latest-state, single-tenant ibis tables by dataset name."""

    def table(self, name: str) -> ir.Table:
        """The latest state of dataset `name` for the source's tenant."""


def period_table(source: TableSource, name: str, period: Period) -> ir.Table:
    """`source.period_table(name, period)` when the source offers it (the latest state of the
    records whose fixed date may fall in `period`, computed over the period's versions only),
    else `source.table(name)`. Callers still filter the exact period on the result."""
    narrowed = getattr(source, "period_table", None)
    return source.table(name) if narrowed is None else narrowed(name, period)


class TenantSource:
    """The part every one-tenant source shares: its tenant, its own in-memory DuckDB (dates in
    UTC), the tables it has opened and `materialize`."""

    def __init__(self, tenant: str, backend: Any = None) -> None:
        if not tenant:
            raise ReportError("no tenant given: a report is always about exactly one tenant")
        self.tenant = tenant_id(tenant)
        self.backend = backend or ibis.duckdb.connect()
        # dates of UTC timestamps must not depend on the machine's time zone
        self.backend.raw_sql("SET TimeZone = 'UTC'")
        self._tables: dict[str, ir.Table] = {}
        self._n = 0

    def materialize(self, expr: ir.Table) -> ir.Table:
        """Compute `expr` once into a DuckDB temp table (kept until the source goes away):
        reports run several aggregations over the same period's rows."""
        self._n += 1
        name = f"_materialized_{self._n}"
        sql = ibis.to_sql(expr, dialect="duckdb")
        self.backend.con.execute(f'CREATE TEMP TABLE "{name}" AS {sql}')
        return self.backend.table(name, database="temp")


class GatewayTableSource(TenantSource):
    """Latest-state tables of one tenant, fetched from the gateway with a service token.

    The gateway checks the token (one service, one tenant, its purposes), asks the policy,
    reduces the tenant's partitions to their latest state and audits the read; this process
    receives Arrow and computes the report on its own in-memory DuckDB. It holds no key.
    """

    def __init__(self, client: Any, tenant: str, purpose: str, backend: Any = None) -> None:
        super().__init__(tenant, backend)
        self.client = client  # amzigo_lab.client.transport.GatewayClient with a service token
        self.purpose = purpose

    def table(self, name: str) -> ir.Table:
        """The tenant's latest-state table of `name` (fetched once per source; the gateway's
        policy decides, and audits, what the token may read)."""
        if name not in self._tables:
            data = self.client.table({"op": "latest", "dataset": name, "purpose": self.purpose})
            self.backend.con.register(f"{name}_latest", data)
            self._tables[name] = self.backend.table(f"{name}_latest")
        return self._tables[name]

    def period_table(self, name: str, period: Period) -> ir.Table:
        """The latest state of the records of `name` whose fixed date may fall in `period`
        (`FIXED_DATE_COLUMNS`; the gateway filters the versions below its window), else
        `table(name)`."""
        if name not in FIXED_DATE_COLUMNS:
            return self.table(name)
        key = f"{name}@{period.start.isoformat()}..{period.end.isoformat()}"
        if key not in self._tables:
            request = {
                "op": "latest",
                "dataset": name,
                "purpose": self.purpose,
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
            }
            data = self.client.table(request)
            view = f"{name}_latest_{period.start:%Y%m%d}_{period.end:%Y%m%d}"
            self.backend.con.register(view, data)
            self._tables[key] = self.backend.table(view)
        return self._tables[key]

    def objected_orders(self) -> set[str]:
        """Orders of this tenant whose buyer objected (data-subject requests)."""
        from amzigo_lab.client.protocol import SERVICE_OBJECTIONS

        answer = self.client.action(SERVICE_OBJECTIONS, {})
        return {str(o) for o in answer.get("orders", [])}


class MemoryTableSource:
    """Latest-state tables given directly as Arrow tables (tests, what-if analyses)."""

    def __init__(self, tables: dict[str, Any], backend: Any = None) -> None:
        self.backend = backend or ibis.duckdb.connect()
        self.backend.raw_sql("SET TimeZone = 'UTC'")
        self._tables = {
            name: self.backend.create_table(name, data, overwrite=True)
            for name, data in tables.items()
        }

    def table(self, name: str) -> ir.Table:
        """The table registered under `name` (an empty one if absent)."""
        if name not in self._tables:
            import pyarrow as pa

            from amzigo_lab.datasets import REGISTRY

            empty = pa.Table.from_pylist([], schema=REGISTRY[name].schema)
            self.backend.con.register(name, empty)
            self._tables[name] = self.backend.table(name)
        return self._tables[name]
