"""Where report builders get their tables: the `TableSource` protocol and a lake adapter.

Builders only ever call `source.table(name)` and receive an ibis table holding the LATEST state
of each record (one row per natural key) of ONE tenant. The governed session provides that for
users; `LakeTableSource` builds the same thing straight from the lake for services and tests.
This module never opens `order_buyers` (buyer PII): reports have no reason to read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import ibis

from amzigo_lab.errors import AmzigoError
from amzigo_lab.names import tenant_id

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from amzigo_lab.lake.store import Lake

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
    }
)
_PARTITION_COLUMNS = ("ingest_date", "purge_date")


class ReportError(AmzigoError):
    """A report cannot be built (bad parameters, unknown tenant, refused dataset)."""


class TableSource(Protocol):
    """Latest-state, single-tenant ibis tables by dataset name."""

    def table(self, name: str) -> ir.Table:
        """The latest state of dataset `name` for the source's tenant."""


class LakeTableSource:
    """Latest-state tables of one tenant, read from the encrypted lake through one DuckDB backend.

    The lake's catalog prunes to the tenant's partitions before any file opens; pyarrow decrypts;
    DuckDB computes. Latest state = `row_number() OVER (PARTITION BY natural key ORDER BY
    version DESC, ingest_date DESC) = 0`, the same rule as `Scan.latest()`.
    """

    def __init__(self, lake: Lake, tenant: str, backend: Any = None) -> None:
        if not tenant:
            raise ReportError("no tenant given: a report is always about exactly one tenant")
        self.lake = lake
        self.tenant = tenant_id(tenant)
        self.backend = backend or ibis.duckdb.connect()
        # dates of UTC timestamps must not depend on the machine's time zone
        self.backend.raw_sql("SET TimeZone = 'UTC'")
        self._tables: dict[str, ir.Table] = {}
        self._n = 0

    def table(self, name: str) -> ir.Table:
        """The tenant's latest-state table of `name` (cached per source)."""
        if name not in REPORT_DATASETS:
            raise ReportError(f"dataset {name!r} is not available to reports")
        if name not in self._tables:
            self._tables[name] = self._build(name)
        return self._tables[name]

    def materialize(self, expr: ir.Table) -> ir.Table:
        """Compute `expr` once into a DuckDB temp table (kept until the source goes away).

        Reports run several aggregations over the same period's rows; materialising them
        decrypts and reduces the files to their latest state a single time.
        """
        self._n += 1
        name = f"_materialized_{self._n}"
        sql = ibis.to_sql(expr, dialect="duckdb")
        self.backend.con.execute(f'CREATE TEMP TABLE "{name}" AS {sql}')
        return self.backend.table(name, database="temp")

    def _build(self, name: str) -> ir.Table:
        spec = self.lake.spec(name)
        scan = self.lake.scan(name, [self.tenant])
        if not scan.paths:  # nothing ingested yet: an empty table with the right columns
            import pyarrow as pa

            empty = pa.Table.from_pylist([], schema=spec.schema)
            self.backend.con.register(f"{name}_empty", empty)
            return self.backend.table(f"{name}_empty")
        raw = scan.ibis(self.backend, f"{name}_versions")
        keep = [c for c in raw.columns if c not in _PARTITION_COLUMNS and c != "tenant"]
        if not spec.natural_key:
            return raw.select(*keep)
        order = [ibis.desc(spec.version_column)] if spec.version_column else []
        order.append(ibis.desc("ingest_date"))
        window = ibis.window(group_by=list(spec.natural_key), order_by=order)
        ranked = raw.mutate(_version_rank=ibis.row_number().over(window))
        return ranked.filter(ranked._version_rank == 0).select(*keep)


class GatewayTableSource:
    """Latest-state tables of one tenant, fetched from the gateway with a service token.

    The gateway checks the token (one service, one tenant, its purposes), asks the policy,
    reduces the tenant's partitions to their latest state and audits the read; this process
    receives Arrow and computes the report on its own in-memory DuckDB. It holds no key.
    """

    def __init__(self, client: Any, tenant: str, purpose: str, backend: Any = None) -> None:
        if not tenant:
            raise ReportError("no tenant given: a report is always about exactly one tenant")
        self.client = client  # amzigo_lab.client.transport.GatewayClient with a service token
        self.tenant = tenant_id(tenant)
        self.purpose = purpose
        self.backend = backend or ibis.duckdb.connect()
        self.backend.raw_sql("SET TimeZone = 'UTC'")
        self._tables: dict[str, ir.Table] = {}
        self._n = 0

    def table(self, name: str) -> ir.Table:
        """The tenant's latest-state table of `name` (fetched once per source; the gateway's
        policy decides, and audits, what the token may read)."""
        if name not in self._tables:
            data = self.client.table({"op": "latest", "dataset": name, "purpose": self.purpose})
            self.backend.con.register(f"{name}_latest", data)
            self._tables[name] = self.backend.table(f"{name}_latest")
        return self._tables[name]

    def materialize(self, expr: ir.Table) -> ir.Table:
        """As `LakeTableSource.materialize`: computed once into a temp table."""
        self._n += 1
        name = f"_materialized_{self._n}"
        sql = ibis.to_sql(expr, dialect="duckdb")
        self.backend.con.execute(f'CREATE TEMP TABLE "{name}" AS {sql}')
        return self.backend.table(name, database="temp")


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
