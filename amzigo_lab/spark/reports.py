"""Report builders on Spark: a `TableSource` whose ibis tables live on ibis' PySpark backend.

The builders (`amzigo_lab.analysis`) are written in ibis; over this source they compile to Spark
SQL and run on the Spark session. Each dataset is read with `amzigo_lab.spark.read` (planned by
the gateway for the run's token, one tenant, the report's purpose), reduced to its latest state,
and registered as a temporary view.

One builder expression needs a shim: `analysis.sales.local_day` calls DuckDB's
`timezone(zone, timestamptz)`, which Spark lacks; the source registers a temporary SQL function
of the same name over Spark's `from_utc_timestamp` (same wall-clock result; the session's time
zone is UTC). Anything else ibis' PySpark backend cannot compile fails loudly, never silently.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from amzigo_lab.analysis.source import REPORT_DATASETS, ReportError
from amzigo_lab.names import tenant_id
from amzigo_lab.spark.reader import read

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from pyspark.sql import SparkSession

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
    the policy and audits the plan and every key unwrap."""

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
        self._tables: dict[str, ir.Table] = {}

    def table(self, name: str) -> ir.Table:
        """The tenant's latest-state table of `name` (read and registered once per source)."""
        if name not in REPORT_DATASETS:
            raise ReportError(f"dataset {name!r} is not available to reports")
        if name not in self._tables:
            frame = read(
                self.spark, self.connection, name, tenants=[self.tenant], purpose=self.purpose
            )
            frame = frame.drop(*(c for c in _PARTITION_COLUMNS if c in frame.columns))
            view = f"amzigo_{name}_{next(_views)}"
            frame.createOrReplaceTempView(view)
            self._tables[name] = self.backend.table(view)
        return self._tables[name]

    def materialize(self, expr: ir.Table) -> ir.Table:
        """Compute `expr` once and keep it cached on the executors (the report's several
        aggregations over one period's rows)."""
        cached: ir.Table = expr.cache()
        return cached
