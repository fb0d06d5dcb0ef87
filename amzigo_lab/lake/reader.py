"""Reading committed partitions: one `Scan`, four engines (pyarrow, DuckDB, ibis, polars).

Pruning happens before any file is opened: the catalog chooses the files of the requested
dataset, tenants and ingest-date range, and only those enter the pyarrow dataset. pyarrow
decrypts (about 1.0x plaintext cost); DuckDB and ibis compute over that dataset (or over the
process's hot cache, `lake/hot_cache.py`, when one is enabled), so no key ever reaches DuckDB's
SQL text or logs. polars decrypts natively, one data key per file (`lake/native_read.py`).
Partition columns (`tenant`, `ingest_date`, and `purge_date` where the retention rule needs it)
come from the hive-style paths (polars: from the catalog).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from amzigo_lab.lake.catalog import ALL_STATES
from amzigo_lab.lake.handle import LakeHandle
from amzigo_lab.lake.hot_cache import cache_of
from amzigo_lab.lake.pme import parquet_format
from amzigo_lab.names import iso_date, sql_name, tenant_id

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import polars as pl

    from amzigo_lab.lake.catalog import FileEntry, Partition
    from amzigo_lab.lake.hot_cache import HotCache
    from amzigo_lab.schema import DatasetSpec

_PARTITION_TYPES = {"tenant": pa.string(), "ingest_date": pa.date32(), "purge_date": pa.date32()}


#: (column, lo, hi): only versions with lo <= column < hi (UTC timestamps) enter the
#: latest-state window. Valid for a column no later version of a record changes (the caller
#: decides which; see analysis/source.py FIXED_DATE_COLUMNS).
Bounds = tuple[str, dt.datetime, dt.datetime]


def _bounds_sql(bounds: Bounds | None) -> str:
    if bounds is None:
        return ""
    column, lo, hi = bounds
    edges = []
    for value in (lo, hi):
        if not isinstance(value, dt.datetime) or value.utcoffset() is None:
            raise ValueError("latest-state bounds must be timezone-aware datetimes")
        edges.append(value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00"))
    name = sql_name(column)
    return (
        f" WHERE \"{name}\" >= TIMESTAMPTZ '{edges[0]}' AND \"{name}\" < TIMESTAMPTZ '{edges[1]}'"
    )


def latest_sql(spec: DatasetSpec, view: str, bounds: Bounds | None = None) -> str:
    """The latest-state query over `view` (rows of `spec` with its partition columns): per
    tenant and natural key, the row with the highest version, then the latest ingest date.
    `bounds` filters the versions first (below the window)."""
    order = [spec.version_column] if spec.version_column else []
    order = [f'"{sql_name(c)}" DESC NULLS LAST' for c in [*order, "ingest_date"]]
    # natural keys are unique per tenant, never across tenants
    keys = ", ".join(f'"{sql_name(k)}"' for k in ["tenant", *spec.natural_key])
    return (
        f'SELECT * FROM "{sql_name(view)}"{_bounds_sql(bounds)} QUALIFY '  # noqa: S608
        f"row_number() OVER (PARTITION BY {keys} ORDER BY {', '.join(order)}) = 1"
    )


@dataclass
class Scan:
    """The files of one dataset that a read may open, with the keys to decrypt them."""

    spec: DatasetSpec
    partitions: list[Partition]
    files: list[FileEntry]
    paths: list[str]
    base_dir: str
    keys: dict[str, bytes]
    _dataset: ds.Dataset | None = field(default=None, repr=False)
    hot_cache: HotCache | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        lake: LakeHandle,
        dataset: str,
        tenants: list[str] | None,
        start: dt.date | str | None,
        end: dt.date | str | None,
    ) -> Scan:
        """Choose partitions and files from the catalog; unwrap only their keys. Raises
        `TamperedRow` if a chosen partition row (or file row) fails its MAC check."""
        spec = lake.spec(dataset)
        tenants = None if tenants is None else [tenant_id(t) for t in tenants]
        lo = None if start is None else iso_date(start)
        hi = None if end is None else iso_date(end)
        # every row in range is checked, dropped ones too: a row edited outside amzigo-lab is
        # never read, nor hidden (say a live partition edited to `dropped`) without notice
        chosen = lake.catalog.partitions(dataset, tenants, lo, hi, states=ALL_STATES)
        lake.require_intact(p.id for p in chosen)
        parts = [p for p in chosen if p.state == "live"]
        files = lake.catalog.files([p.id for p in parts])
        keys = lake.partition_keys(p.key_id for p in parts)
        base = lake.root / spec.origin / spec.name
        paths = [str(lake.path(f.rel_path)) for f in files]
        return cls(spec, parts, files, paths, str(base), keys, hot_cache=cache_of(lake))

    @property
    def schema(self) -> pa.Schema:
        """Columns of the dataset followed by its partition columns."""
        fields = list(self.spec.schema)
        fields += [pa.field(n, _PARTITION_TYPES[n]) for n in self.spec.partition_fields]
        return pa.schema(fields)

    @property
    def row_count(self) -> int:
        """Rows in the chosen files, from the catalog (no file is opened)."""
        return sum(f.row_count for f in self.files)

    def arrow_dataset(self) -> ds.Dataset:
        """A pyarrow dataset over exactly the chosen files, decrypting on read.

        Every file's footer is opened here, in the calling thread, so that the key-encryption
        keys are unwrapped (and cached) before any engine thread scans: engine threads then
        never call back into Python for a key.
        """
        if self._dataset is None:
            part_schema = pa.schema(
                [pa.field(n, _PARTITION_TYPES[n]) for n in self.spec.partition_fields]
            )
            dataset = ds.dataset(
                self.paths,
                schema=self.schema,
                format=parquet_format(self.keys),
                partitioning=ds.partitioning(part_schema, flavor="hive"),
                partition_base_dir=self.base_dir,
            )
            for fragment in dataset.get_fragments():
                fragment.ensure_complete_metadata()
            self._dataset = dataset
        return self._dataset

    def to_arrow(self) -> pa.Table:
        """Read everything into one Arrow table."""
        return self.arrow_dataset().to_table()

    def latest(
        self, con: duckdb.DuckDBPyConnection | None = None, bounds: Bounds | None = None
    ) -> pa.Table:
        """The latest state per natural key: the row with the highest version (then the latest
        ingest date) among every ingested version. Datasets without a natural key: all rows.
        `con`: a DuckDB connection to run on (opening one costs about 10 ms). `bounds`: only
        versions within them (for a column whose value never changes between versions)."""
        if not self.spec.natural_key and bounds is None:
            return self.to_arrow()
        own = con is None
        db = duckdb.connect() if con is None else con
        view = f"_amzigo_versions_{uuid.uuid4().hex}"
        try:
            db.register(view, self.engine_source())
            if not self.spec.natural_key:
                return db.sql(f'SELECT * FROM "{view}"{_bounds_sql(bounds)}').to_arrow_table()  # noqa: S608
            return db.sql(latest_sql(self.spec, view, bounds)).to_arrow_table()
        finally:
            if own:
                db.close()
            else:
                db.unregister(view)

    def engine_source(self) -> ds.Dataset | pa.Table:
        """What DuckDB and ibis scan: the lake's hot cache table if the process enabled one
        and the scan fits it (`lake/hot_cache.py`), else the decrypting dataset."""
        if self.hot_cache is not None:
            table = self.hot_cache.table_for(self)
            if table is not None:
                return table
        return self.arrow_dataset()

    def duckdb(self, con: duckdb.DuckDBPyConnection | None = None, name: str = "") -> Any:
        """A DuckDB relation (registers the dataset on `con` under `name`)."""
        con = con or duckdb.connect()
        name = sql_name(name or self.spec.name)
        con.register(name, self.engine_source())
        return con.table(name)

    def polars(self) -> pl.LazyFrame:
        """A polars LazyFrame: polars reads and decrypts each file itself with the file's own
        data key (`lake/native_read.py`), as fast as its reader on plaintext."""
        from amzigo_lab.lake.native_read import polars_frame

        return polars_frame(self)

    def ibis(self, backend: Any = None, name: str = "") -> ir.Table:
        """An ibis table on a DuckDB backend (a new in-memory one unless given)."""
        import ibis

        backend = backend or ibis.duckdb.connect()
        name = sql_name(name or self.spec.name)
        backend.con.register(name, self.engine_source())
        return backend.table(name)
