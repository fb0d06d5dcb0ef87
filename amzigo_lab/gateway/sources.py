"""Table sources that read the lake directly: only for code inside the gateway's trust domain
(the gateway itself, benches measuring the in-process baseline, tests of the builders)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis

from amzigo_lab.analysis.source import REPORT_DATASETS, ReportError, TenantSource

if TYPE_CHECKING:
    import ibis.expr.types as ir

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

    def table(self, name: str) -> ir.Table:
        """The tenant's latest-state table of `name` (cached per source)."""
        if name not in REPORT_DATASETS:
            raise ReportError(f"dataset {name!r} is not available to reports")
        if name not in self._tables:
            self._tables[name] = self._build(name)
        return self._tables[name]

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

    def objected_orders(self) -> set[str]:
        """Orders of this tenant whose buyer objected (data-subject requests)."""
        from amzigo_lab.compliance.dsr import objected_order_ids

        return objected_order_ids(self.lake, self.tenant)
