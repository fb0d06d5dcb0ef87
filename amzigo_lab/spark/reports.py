"""Report builders on Spark: a `TableSource` whose ibis tables live on ibis' PySpark backend.

The builders (`amzigo_lab.analysis`) are written in ibis; over this source they compile to Spark
SQL and run on the Spark session. Each dataset is planned once with the gateway (`scale.plan`
for the run's token, one tenant, the report's purpose: policy checked and audited), read by
Spark from exactly the planned files, reduced to its latest state and registered as a
temporary view. `close()` ends the source's jobs (their tokens stop unwrapping).

One builder expression needs a shim: `analysis.local_days.local_day` (the sales builders' local
day) calls DuckDB's `timezone(zone, timestamptz)`, which Spark lacks; the source registers a
temporary SQL function of the same name over Spark's `from_utc_timestamp` (same wall-clock
result; the session's time zone is UTC). Anything else ibis' PySpark backend cannot compile
fails loudly, never silently.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from amzigo_lab.analysis.source import (
    FIXED_DATE_COLUMNS,
    REPORT_DATASETS,
    ReportError,
    period_bounds,
)
from amzigo_lab.names import tenant_id
from amzigo_lab.spark.reader import latest, scan

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from pyspark.sql import DataFrame, SparkSession

    from amzigo_lab.analysis.period import Period

#: DuckDB's `timezone(zone, ts)` (wall-clock time of a UTC instant in `zone`) for Spark SQL.
TIMEZONE_SHIM = (
    "CREATE OR REPLACE TEMPORARY FUNCTION timezone(zone STRING, ts TIMESTAMP) "
    "RETURNS TIMESTAMP RETURN from_utc_timestamp(ts, zone)"
)
_PARTITION_COLUMNS = ("tenant", "ingest_date", "purge_date")
_views = itertools.count(1)


class SparkTableSource:
    """Latest-state, one-tenant ibis tables on Spark (`amzigo report --engine spark`).

    `connection`: what `amzigo_lab.client.scale.plan_job` accepts (the run's gateway client
    with its service token, or a governed session); the gateway checks each dataset against
    the policy and audits the plan and the job's key unwraps."""

    def __init__(self, spark: SparkSession, connection: Any, tenant: str, purpose: str) -> None:
        import ibis

        if not tenant:
            raise ReportError("no tenant given: a report is always about exactly one tenant")
        self.spark = spark
        self.connection = connection
        self.tenant = tenant_id(tenant)
        self.purpose = purpose
        if spark.conf.get("spark.sql.session.timeZone") != "UTC":
            raise ReportError(
                "the Spark session's time zone must be UTC (amzigo_lab.spark.session)"
            )
        spark.sql(TIMEZONE_SHIM)
        self.backend = ibis.pyspark.connect(spark)
        self.plans: dict[str, Any] = {}
        self._tables: dict[str, ir.Table] = {}

    def _versions(self, name: str) -> DataFrame:
        """Every version of the tenant's `name` in the files the gateway planned (once)."""
        from amzigo_lab.client.scale import plan_job

        if name not in REPORT_DATASETS:
            raise ReportError(f"dataset {name!r} is not available to reports")
        if name not in self.plans:
            self.plans[name] = plan_job(
                self.connection, [name], tenants=[self.tenant], purpose=self.purpose,
                engine="spark",
            )  # fmt: skip
        return scan(self.spark, self.plans[name], name)

    def _register(self, key: str, frame: DataFrame) -> ir.Table:
        frame = frame.drop(*(c for c in _PARTITION_COLUMNS if c in frame.columns))
        view = f"amzigo_{key.split('@')[0]}_{next(_views)}"
        frame.createOrReplaceTempView(view)
        self._tables[key] = self.backend.table(view)
        return self._tables[key]

    def table(self, name: str) -> ir.Table:
        """The tenant's latest-state table of `name`."""
        if name in self._tables:
            return self._tables[name]
        return self._register(name, latest(self._versions(name), name))

    def period_table(self, name: str, period: Period) -> ir.Table:
        """The latest state of the records of `name` whose fixed date may fall in `period`
        (`FIXED_DATE_COLUMNS`), filtered below the latest-state window as the gateway does
        (Spark pushes the bounds into the Parquet scan); other datasets: `table(name)`."""
        column = FIXED_DATE_COLUMNS.get(name)
        if column is None:
            return self.table(name)
        key = f"{name}@{period.start.isoformat()}..{period.end.isoformat()}"
        if key in self._tables:
            return self._tables[key]
        from pyspark.sql import functions as F

        lo, hi = period_bounds(period)
        versions = self._versions(name)
        versions = versions.filter((F.col(column) >= F.lit(lo)) & (F.col(column) < F.lit(hi)))
        return self._register(key, latest(versions, name))

    def materialize(self, expr: ir.Table) -> ir.Table:
        """Compute `expr` once and keep it cached on the executors (the report's several
        aggregations over one period's rows)."""
        cached: ir.Table = expr.cache()
        return cached

    def close(self) -> None:
        """End the source's jobs at the gateway (later unwraps with their tokens fail)."""
        from amzigo_lab.client.scale import revoke_job

        plans, self.plans = self.plans, {}
        for plan in plans.values():
            revoke_job(self.connection, plan)
