"""Table sources that read the lake directly: only for code inside the gateway's trust domain
(the gateway itself, benches measuring the in-process baseline, tests of the builders)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis

from amzigo_lab.analysis.source import (
    FIXED_DATE_COLUMNS,
    REPORT_DATASETS,
    ReportError,
    TenantSource,
    period_bounds,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from amzigo_lab.analysis.period import Period
    from amzigo_lab.lake.store import Lake

_PARTITION_COLUMNS = ("ingest_date", "purge_date")


class LakeTableSource(TenantSource):
    """Latest-state tables of one tenant, read from the encrypted lake through one DuckDB backend.

    The lake's catalog prunes to the tenant's partitions before any file opens; pyarrow decrypts;
    DuckDB computes. Latest state = `row_number() OVER (PARTITION BY natural key ORDER BY
    version DESC, ingest_date DESC) = 0`, the same rule as `Scan.latest()`.
    """

    def __init__(self, lake: Lake, tenant: str, backend: Any = None) -> None:
        super().__init__(tenant, backend)
        self.lake = lake
        self._versions: dict[str, ir.Table | None] = {}

    def table(self, name: str) -> ir.Table:
        """The tenant's latest-state table of `name` (cached per source)."""
        if name not in REPORT_DATASETS:
            raise ReportError(f"dataset {name!r} is not available to reports")
        if name not in self._tables:
            self._tables[name] = self._build(name)
        return self._tables[name]

    def period_table(self, name: str, period: Period) -> ir.Table:
        """The latest state of the records of `name` whose fixed date (`FIXED_DATE_COLUMNS`,
        e.g. an order's purchase date) may fall on a local day of `period`: a superset of the
        records the period's report keeps, never missing one. The period filter runs BELOW the
        latest-state window (valid because every version of a record carries the same fixed
        date), so the window sorts the period's versions only and DuckDB pushes the bounds into
        the scan (row-group statistics skip older files). Other datasets: `table(name)`."""
        column = FIXED_DATE_COLUMNS.get(name)
        if column is None:
            return self.table(name)
        key = f"{name}@{period.start.isoformat()}..{period.end.isoformat()}"
        if key not in self._tables:
            self.table(name)  # the same checks (report datasets only)
            self._tables[key] = self._build(name, (column, *period_bounds(period)))
        return self._tables[key]

    def _versions_of(self, name: str) -> ir.Table | None:
        """Every ingested version of the tenant's `name` (registered once per source)."""
        if name not in self._versions:
            scan = self.lake.scan(name, [self.tenant])
            versions = None
            if scan.paths:  # the decrypting dataset, never a hot cache table: this source
                # stays registered for its lifetime (lake/hot_cache.py)
                self.backend.con.register(f"{name}_versions", scan.arrow_dataset())
                versions = self.backend.table(f"{name}_versions")
            self._versions[name] = versions
        return self._versions[name]

    def _build(self, name: str, bounds: tuple[str, Any, Any] | None = None) -> ir.Table:
        spec = self.lake.spec(name)
        raw = self._versions_of(name)
        if raw is None:  # nothing ingested yet: an empty table with the right columns
            import pyarrow as pa

            empty = pa.Table.from_pylist([], schema=spec.schema)
            self.backend.con.register(f"{name}_empty", empty)
            return self.backend.table(f"{name}_empty")
        if bounds is not None:
            column, lo, hi = bounds
            raw = raw.filter(raw[column] >= lo, raw[column] < hi)
        keep = [c for c in raw.columns if c not in _PARTITION_COLUMNS and c != "tenant"]
        if not spec.natural_key:
            return raw.select(*keep)
        order = [ibis.desc(spec.version_column)] if spec.version_column else []
        order.append(ibis.desc("ingest_date"))
        window = ibis.window(group_by=list(spec.natural_key), order_by=order)
        ranked = raw.mutate(_version_rank=ibis.row_number().over(window))
        return ranked.filter(ranked._version_rank == 0).select(*keep)

    def objected_orders(self) -> set[str]:
        """Orders of this tenant whose buyer objected (data-subject requests)."""
        from amzigo_lab.compliance.dsr import objected_order_ids

        return objected_order_ids(self.lake, self.tenant)
