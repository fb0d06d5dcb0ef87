"""Governed reads of the lake as Dask DataFrames (`pip install amzigo-lab[dask]`).

    import amzigo_lab, amzigo_lab.dask
    wb = amzigo_lab.connect(purpose="sales_analysis")
    orders = amzigo_lab.dask.read(wb, "orders", tenants=["acme-outdoor"])
    orders.groupby("currency").order_total.count().compute()

`read` asks the gateway for a job (`scale.plan`: the same policy as a governed read, audited),
then builds `dd.from_map` over the job's committed files: each task opens one file with
pyarrow and decryption properties whose KMS client asks the gateway's unwrap endpoint for the
file's KEK with the job token (`amzigo_lab.client.scale`). No master key or partition key is
ever in this process or a Dask worker. The result is the latest state per natural key, by the
lake reader's own rule (the plan's `latest`: per tenant and key, the highest version column,
then the latest ingest date), as the governed views show it.

The job token expires (15 minutes by default, `ttl_s`); compute within that time or plan
again. To end a job early, plan it yourself and pass it in:

    job = amzigo_lab.dask.plan(wb, "orders")
    frame = amzigo_lab.dask.read(wb, "orders", job=job)
    ...
    amzigo_lab.client.scale.revoke_job(wb, job)

A purge, deletion notice or drop that covers one of the job's partitions revokes it: later
tasks fail with AccessDenied.
"""

from __future__ import annotations

import datetime as dt
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from amzigo_lab.client.scale import JobPlan, KeyService, file_decryption_properties, plan_job
from amzigo_lab.client.workbench import schema_from_b64

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd


def plan(
    connection_or_session: Any,
    dataset: str,
    tenants: list[str] | None = None,
    since: dt.date | str | None = None,
    until: dt.date | str | None = None,
    purpose: str | None = None,
    *,
    ttl_s: float | None = None,
) -> JobPlan:
    """A Dask job over one dataset (see `read`); revoke it with `client.scale.revoke_job`."""
    return plan_job(connection_or_session, [dataset], tenants, since, until, purpose, "dask", ttl_s)


def read(
    connection_or_session: Any,
    dataset: str,
    tenants: list[str] | None = None,
    since: dt.date | str | None = None,
    until: dt.date | str | None = None,
    purpose: str | None = None,
    *,
    ttl_s: float | None = None,
    job: JobPlan | None = None,
    decimals: str = "float",
) -> dd.DataFrame:
    """The latest-state rows of `dataset` for the granted scope, as a Dask DataFrame.

    `connection_or_session`: `amzigo_lab.connect(...)`'s session (its purpose is the default)
    or a `GatewayClient`. `tenants` None: every tenant the policy grants. `since`/`until`:
    ingest dates (inclusive). `job`: a plan from `amzigo_lab.client.scale.plan_job` to reuse.
    `decimals`: "float" (default) gives money columns as float64, which Dask sums and averages
    (exact to the cent for totals below about 10^13); "arrow" keeps exact Arrow decimals
    (`pd.ArrowDtype`), fine row by row, but Dask 2026.8 cannot reduce them (`.sum()` fails
    building its metadata)."""
    import dask.dataframe as dd

    if decimals not in ("float", "arrow"):
        raise ValueError('decimals must be "float" or "arrow"')
    job = job or plan(connection_or_session, dataset, tenants, since, until, purpose, ttl_s=ttl_s)
    info = job.datasets[dataset]
    schema = schema_from_b64(str(info["schema"]))
    if decimals == "float":
        schema = pa.schema(
            [f.with_type(pa.float64()) if pa.types.is_decimal(f.type) else f for f in schema]
        )
    meta = _pandas(schema.empty_table())
    files = job.files.get(dataset, [])
    spec = _FileSpec(job.connection(), str(info["dir"]), schema)
    if not files:
        frame = dd.from_pandas(meta, npartitions=1)
    else:
        frame = dd.from_map(
            spec, files, meta=meta, label=f"amzigo-{dataset}", enforce_metadata=False
        )
    rule = info.get("latest")
    if rule:
        keys, order = list(rule["keys"]), list(rule["order"])
        if frame.npartitions > 1:
            frame = frame.shuffle(on=keys)
        frame = frame.map_partitions(_latest, keys, order, meta=meta)
    return frame


def _latest(part: pd.DataFrame, keys: list[str], order: list[str]) -> pd.DataFrame:
    """Per key, the first row by `order` (each descending, nulls last): the lake's rule."""
    if part.empty:
        return part
    ranked = part.sort_values(order, ascending=False, na_position="last", kind="stable")
    return ranked.drop_duplicates(keys, keep="first")


class _FileSpec:
    """Reads one committed file (a Dask task): decrypt via the key service, add the hive
    partition columns from the path, convert to pandas in the plan's schema."""

    def __init__(self, service: KeyService, base_dir: str, schema: pa.Schema) -> None:
        self.service = service
        self.base_dir = base_dir
        self.schema = schema

    def __dask_tokenize__(self) -> tuple[str, ...]:
        """Deterministic identity for Dask's task names (reductions need it): the job (by a
        digest of its token, never the token), the dataset root and the schema."""
        import hashlib

        job = hashlib.sha256(self.service.token.encode()).hexdigest()
        return ("amzigo-file", self.service.url, job, self.base_dir, self.schema.to_string())

    def __call__(self, path: str) -> pd.DataFrame:
        props = file_decryption_properties(self.service)
        table = pq.ParquetFile(path, decryption_properties=props).read()
        rel = PurePosixPath(path).relative_to(self.base_dir)
        values = dict(p.split("=", 1) for p in rel.parent.parts if "=" in p)
        for name in self.schema.names:
            if name in table.column_names:
                continue
            typ = self.schema.field(name).type
            raw = values.get(name)
            value = None if raw is None else _partition_value(raw, typ)
            table = table.append_column(name, pa.array([value] * table.num_rows, typ))
        return _pandas(table.select(self.schema.names).cast(self.schema))


def _pandas(table: pa.Table) -> pd.DataFrame:
    """pandas with decimals and dates as Arrow-backed columns: as plain objects, Dask would
    turn them into strings (its `dataframe.convert-string` applies to every object column)."""
    import pandas as pd

    def mapper(typ: pa.DataType) -> Any:
        return pd.ArrowDtype(typ) if pa.types.is_decimal(typ) or pa.types.is_date(typ) else None

    return table.to_pandas(types_mapper=mapper)


def _partition_value(raw: str, typ: pa.DataType) -> Any:
    import urllib.parse

    text = urllib.parse.unquote(raw)
    if pa.types.is_date(typ):
        return dt.date.fromisoformat(text)
    return text
