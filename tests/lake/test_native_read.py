"""Issue 17: polars decrypting lake files natively with per-file data keys.

The native path must give exactly the rows, columns and types of the pyarrow path it replaced
(`pl.scan_pyarrow_dataset` over the decrypting dataset), and must never return changed data from
a tampered file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from amzigo_lab.errors import IntegrityError
from amzigo_lab.lake import Lake
from amzigo_lab.lake.file_keys import data_key
from amzigo_lab.lake.pme import read_file
from tests.lake.helpers import buyers, orders

DAYS = [dt.date(2026, 3, d) for d in range(1, 6)]


@pytest.fixture
def filled(lake: Lake) -> Lake:
    for i, day in enumerate(DAYS):
        for tenant in ("acme", "bluebird"):
            lake.write("orders", tenant, day, orders(30 + i, f"{tenant}-{i}-"), f"o{i}")
    # a row-dependent retention: several purge_date partitions per ingest day
    lake.write("order_buyers", "acme", DAYS[-1], buyers([DAYS[-2], DAYS[-3], None]), "b1")
    lake.write("order_buyers", "bluebird", DAYS[-1], buyers([DAYS[-2]]), "b2")
    # more rows than one data page holds (pyarrow writes several pages per column chunk)
    lake.write("orders", "acme", DAYS[0] - dt.timedelta(days=1), orders(60_000, "big-"), "big")
    return lake


def _old_path(scan) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return pl.scan_pyarrow_dataset(scan.arrow_dataset()).collect()


@pytest.mark.parametrize(
    ("dataset", "tenants", "start", "end"),
    [
        ("orders", None, None, None),
        ("orders", ["bluebird"], DAYS[1], DAYS[3]),
        ("orders", ["acme"], DAYS[4], None),
        ("order_buyers", None, None, None),
        ("order_buyers", ["acme"], None, None),
    ],
)  # fmt: skip
def test_native_polars_gives_the_same_rows_columns_and_types(
    filled: Lake,
    dataset: str,
    tenants: list[str] | None,
    start: dt.date | None,
    end: dt.date | None,
) -> None:
    scan = filled.scan(dataset, tenants, start, end)
    old = _old_path(scan)
    new = scan.polars().collect()
    assert new.schema == old.schema
    assert new.columns == scan.schema.names
    key = [
        c for c in ("tenant", "ingest_date", "purge_date", "amazon_order_id") if c in old.columns
    ]
    assert new.sort(key).equals(old.sort(key))
    assert new.height == scan.row_count > 0


def test_native_polars_pushes_filters_and_projections(filled: Lake) -> None:
    scan = filled.scan("orders")
    q = (
        scan.polars()
        .filter(pl.col("ingest_date") >= DAYS[3])
        .group_by("tenant")
        .agg(pl.col("order_total").sum(), pl.len())
        .sort("tenant")
        .collect()
    )
    old = (
        _old_path(scan)
        .filter(pl.col("ingest_date") >= DAYS[3])
        .group_by("tenant")
        .agg(pl.col("order_total").sum(), pl.len())
        .sort("tenant")
    )
    assert q.equals(old)
    assert q["len"].to_list() == [33 + 34, 33 + 34]


def test_empty_scan_keeps_the_schema(lake: Lake) -> None:
    scan = lake.scan("orders", ["acme"])
    frame = scan.polars().collect()
    assert frame.height == 0
    assert frame.schema == _old_path(scan).schema


def test_every_file_has_its_own_data_key(filled: Lake) -> None:
    scan = filled.scan("orders")
    keys = [data_key(p, scan.keys) for p in scan.paths]
    assert all(len(k) == 32 for k in keys)
    assert len(set(keys)) == len(keys)
    assert not set(keys) & set(scan.keys.values())  # a data key is not a partition key


def test_data_key_needs_the_files_partition_key(filled: Lake) -> None:
    scan = filled.scan("orders", ["acme"], DAYS[0], DAYS[0])
    other = filled.scan("orders", ["bluebird"], DAYS[0], DAYS[0])
    with pytest.raises(IntegrityError, match="not available") as e:
        data_key(scan.paths[0], other.keys)
    for secret in other.keys.values():
        assert secret.hex() not in str(e.value)
    # the right id with wrong key bytes (a forged catalog) does not unwrap either
    forged = {k: bytes(32) for k in scan.keys}
    with pytest.raises(IntegrityError, match="does not unwrap"):
        data_key(scan.paths[0], forged)


def test_a_plaintext_or_truncated_file_is_refused(filled: Lake, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    plain = tmp_path / "plain.parquet"
    pq.write_table(orders(3), plain)
    with pytest.raises(IntegrityError, match="encrypted footer"):
        data_key(plain, {})
    scan = filled.scan("orders", ["acme"], DAYS[0], DAYS[0])
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(Path(scan.paths[0]).read_bytes()[:-2000])
    with pytest.raises(IntegrityError):
        data_key(cut, scan.keys)


def test_a_flipped_bit_never_changes_what_is_read(lake: Lake) -> None:
    """Flip one bit in (every 3rd byte of) a real lake file: the native polars read raises, or
    returns exactly the original rows (flips in framing bytes such as module lengths or the
    leading magic, which AES-GCM does not cover and the decoder does not need). Never other data.
    pyarrow (the old path) is held to the same rule on the same flips."""
    lake.write("orders", "acme", DAYS[0], orders(40), "b1")
    scan = lake.scan("orders")
    path = Path(scan.paths[0])
    original = path.read_bytes()
    dek = data_key(path, scan.keys)
    want = pl.read_parquet(path, decryption=pl.ParquetDecryptionProperties(footer_key=dek))
    want_arrow = read_file(str(path), scan.keys).read()
    detected = 0
    try:
        for i in range(0, len(original), 3):
            flipped = bytearray(original)
            flipped[i] ^= 1 << (i % 8)
            path.write_bytes(bytes(flipped))
            try:
                key = data_key(path, scan.keys)
                got = pl.read_parquet(
                    path, decryption=pl.ParquetDecryptionProperties(footer_key=key)
                )
            except Exception:
                detected += 1
            else:
                assert got.equals(want), f"flip at byte {i} changed the data read"
            try:
                got_arrow = read_file(str(path), scan.keys).read()
            except Exception:
                pass
            else:
                assert got_arrow.equals(want_arrow), f"flip at byte {i} changed pyarrow's data"
    finally:
        path.write_bytes(original)
    assert detected > 0.9 * (len(original) / 3)


def test_a_file_without_a_declared_column_reads_as_the_pyarrow_path(lake: Lake) -> None:
    """Like the pyarrow dataset (explicit schema): a column an older file lacks reads as nulls,
    a column the dataset no longer declares is ignored (for future schema versions)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from amzigo_lab.lake.pme import encryption_properties

    lake.write("orders", "acme", DAYS[0], orders(5), "b1")
    scan = lake.scan("orders")
    (key_id, key), path = next(iter(scan.keys.items())), scan.paths[0]
    older = orders(5).drop_columns(["currency"]).append_column("legacy", pa.array(["x"] * 5))
    pq.write_table(older, path, encryption_properties=encryption_properties(key_id, key))
    old = _old_path(scan)
    new = scan.polars().collect()
    assert new.schema == old.schema
    assert new.sort("amazon_order_id").equals(old.sort("amazon_order_id"))
    assert new["currency"].null_count() == 5 and "legacy" not in new.columns
