"""Dataset declarations (schema + classification) and validation of tables against them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from amzigo_lab.errors import SchemaMismatch
from amzigo_lab.names import dataset_name
from amzigo_lab.retention_rules import RetentionRule

#: Data classes a column can carry. `pii.*` classes make a dataset a PII dataset.
DATA_CLASSES = frozenset(
    {
        "id",
        "date",
        "timestamp",
        "money",
        "currency",
        "count",
        "ratio",
        "text",
        "category",
        "flag",
        "pii.name",
        "pii.email",
        "pii.address",
        "pii.phone",
    }
)

#: Columns the lake adds from the partition path; a table must not carry them.
PARTITION_COLUMNS = ("tenant", "ingest_date", "purge_date")


@dataclass(frozen=True)
class Column:
    """One declared column: name, Arrow type, data class, nullability."""

    name: str
    type: pa.DataType
    data_class: str
    nullable: bool = True

    def __post_init__(self) -> None:
        if self.data_class not in DATA_CLASSES:
            raise ValueError(f"column {self.name}: unknown data class {self.data_class!r}")


@dataclass(frozen=True)
class DatasetSpec:
    """A declared dataset: what it holds, where it comes from, how long it may be kept."""

    name: str
    origin: str  # "amazon" or "internal" (policy 5.3: Amazon data kept apart and tagged)
    columns: tuple[Column, ...]
    retention: RetentionRule
    natural_key: tuple[str, ...] = ()
    version_column: str | None = None
    description: str = ""
    schema_version: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        dataset_name(self.name)
        if self.origin not in ("amazon", "internal"):
            raise ValueError(f"dataset {self.name}: origin must be 'amazon' or 'internal'")
        names = [c.name for c in self.columns]
        for col in (*self.natural_key, *([self.version_column] if self.version_column else [])):
            if col not in names:
                raise ValueError(f"dataset {self.name}: key column {col!r} is not declared")
        if clash := set(names) & set(PARTITION_COLUMNS):
            raise ValueError(f"dataset {self.name}: {sorted(clash)} are partition columns")

    @property
    def pii(self) -> bool:
        """Whether any column holds personal data."""
        return any(c.data_class.startswith("pii.") for c in self.columns)

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the files (partition columns excluded)."""
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    @property
    def partition_fields(self) -> tuple[str, ...]:
        """The hive partition levels of this dataset's paths."""
        if self.retention.row_dependent:
            return ("tenant", "ingest_date", "purge_date")
        return ("tenant", "ingest_date")

    def column_classes(self) -> dict[str, str]:
        """Column name -> data class, for the catalog and the record of processing."""
        return {c.name: c.data_class for c in self.columns}

    def conform(self, table: pa.Table) -> pa.Table:
        """Return `table` in the declared schema, or raise SchemaMismatch naming the problem."""
        declared = {c.name: c for c in self.columns}
        given = list(table.column_names)
        if dup := sorted({n for n in given if given.count(n) > 1}):
            raise SchemaMismatch(f"{self.name}: column {dup[0]!r} appears more than once")
        if extra := [n for n in given if n not in declared]:
            raise SchemaMismatch(
                f"{self.name}: column {extra[0]!r} is not declared; declared columns: "
                f"{', '.join(declared)}"
            )
        if missing := [n for n in declared if n not in given]:
            raise SchemaMismatch(f"{self.name}: required column {missing[0]!r} is missing")
        arrays = []
        for col in self.columns:
            arr = table.column(col.name)
            if not arr.type.equals(col.type):
                try:
                    arr = arr.cast(col.type, safe=True)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SchemaMismatch(
                        f"{self.name}: column {col.name!r} has type {arr.type}, expected "
                        f"{col.type} and it cannot be converted safely ({exc})"
                    ) from None
            if not col.nullable and arr.null_count:
                raise SchemaMismatch(
                    f"{self.name}: column {col.name!r} has {arr.null_count} null value(s) "
                    "but is declared not nullable"
                )
            arrays.append(arr)
        out = pa.Table.from_arrays(arrays, schema=self.schema)
        if self.natural_key and out.num_rows:
            self._check_unique_keys(out)
        return out

    def _check_unique_keys(self, table: pa.Table) -> None:
        keys = list(self.natural_key) + ([self.version_column] if self.version_column else [])
        import polars as pl  # its hash-based n_unique is ~5x faster than pyarrow's here

        if pl.from_arrow(table.column(keys[0])).n_unique() == table.num_rows:
            return  # the first key column alone is unique: no group-by needed
        grouped = table.group_by(keys).aggregate([([], "count_all")])
        dupes = pc.sum(pc.greater(grouped.column("count_all"), 1)).as_py() or 0
        if dupes:
            raise SchemaMismatch(
                f"{self.name}: {dupes} duplicate key(s) on ({', '.join(keys)}) in one batch; "
                "deduplicate the batch before writing"
            )
