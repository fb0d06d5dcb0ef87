"""polars decrypting lake files itself, one data key per file (issue 17).

`Scan.polars()` used to hand polars the decrypting pyarrow dataset (`scan_pyarrow_dataset`):
pyarrow decodes and decrypts, polars computes, and the Arrow hand-over cost 1.6-2.6x polars'
own reader on plaintext. Here every chosen file becomes a native `scan_parquet` with that file's
own data key (`lake/file_keys.py`), partition columns are added as literals from the catalog,
and the files are concatenated: polars reads, decrypts and verifies (AES-GCM, every module)
itself. Same files as the scan, same columns and types (`Scan.schema`), same rows.

The data keys live only in the returned LazyFrame (as the partition keys live in the `Scan`);
no key is written anywhere. A destroyed partition key fails here, when the frame is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import polars as pl

from amzigo_lab.lake.file_keys import data_key

if TYPE_CHECKING:
    import pyarrow as pa

    from amzigo_lab.lake.catalog import FileEntry, Partition
    from amzigo_lab.schema import DatasetSpec


class ScanLike(Protocol):
    """What this module needs of a `lake.reader.Scan` (it does not import the reader, which
    calls it: no import loop)."""

    spec: DatasetSpec
    partitions: list[Partition]
    files: list[FileEntry]
    paths: list[str]
    keys: dict[str, bytes]

    @property
    def schema(self) -> pa.Schema: ...


def polars_frame(scan: ScanLike) -> pl.LazyFrame:
    """A LazyFrame over exactly `scan`'s files, each decrypted natively with its own key."""
    schema = scan.schema
    empty = pl.from_arrow(schema.empty_table())
    assert isinstance(empty, pl.DataFrame)
    if not scan.files:
        return empty.lazy()
    by_id = {p.id: p for p in scan.partitions}
    partition_fields = list(scan.spec.partition_fields)
    names = schema.names
    file_schema = {n: t for n, t in empty.schema.items() if n not in partition_fields}
    frames = []
    for entry, path in zip(scan.files, scan.paths, strict=True):
        part = by_id[entry.partition_id]
        literals = {
            "tenant": pl.lit(part.tenant, dtype=pl.String),
            "ingest_date": pl.lit(part.ingest_date, dtype=pl.Date),
            "purge_date": pl.lit(part.purge_date, dtype=pl.Date),
        }
        decryption = pl.ParquetDecryptionProperties(footer_key=data_key(path, scan.keys))
        frame = pl.scan_parquet(
            path,
            decryption=decryption,
            hive_partitioning=False,
            glob=False,
            # as the pyarrow dataset with its explicit schema: the declared columns and types,
            # a column missing from an older file is null, an extra one is ignored
            schema=file_schema,
            missing_columns="insert",
            extra_columns="ignore",
        ).with_columns(literals[n].alias(n) for n in partition_fields)
        frames.append(frame.select(names))
    return pl.concat(frames, how="vertical")
