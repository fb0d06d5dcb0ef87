"""Reading: four engines agree, pruning opens only the files in range, names are injection-safe."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import ibis
import polars as pl
import pyarrow as pa
import pytest

from amzigo_lab.errors import InvalidName
from amzigo_lab.lake import Lake
from tests.lake.helpers import orders

DAYS = [dt.date(2026, 3, d) for d in range(1, 11)]


@pytest.fixture
def filled(lake: Lake) -> Lake:
    for i, day in enumerate(DAYS):
        for tenant in ("acme", "bluebird"):
            lake.write("orders", tenant, day, orders(20 + i, f"{tenant}-{i}-"), f"b{i}")
    return lake


def expected(tenants: set[str], days: list[dt.date]) -> tuple[int, Decimal]:
    rows, total = 0, Decimal(0)
    for i, day in enumerate(DAYS):
        if day in days:
            t = orders(20 + i)
            rows += t.num_rows * len(tenants)
            total += sum(t.column("order_total").to_pylist()) * len(tenants)
    return rows, total


@pytest.mark.parametrize(
    ("tenants", "start", "end"),
    [(None, None, None), (["acme"], None, None), (["bluebird"], DAYS[2], DAYS[4]), (None, DAYS[9], None)],
)  # fmt: skip
def test_all_four_engines_give_identical_results(filled: Lake, tenants, start, end) -> None:
    scan = filled.scan("orders", tenants, start, end)
    days = [d for d in DAYS if (start is None or d >= start) and (end is None or d <= end)]
    want = expected(set(tenants or ["acme", "bluebird"]), days)

    arrow = scan.to_arrow()
    a = (arrow.num_rows, sum(arrow.column("order_total").to_pylist(), Decimal(0)))
    d = scan.duckdb(duckdb.connect()).aggregate("count(*), sum(order_total)").fetchone()
    i = scan.ibis(ibis.duckdb.connect())
    ib = (int(i.count().execute()), i.order_total.sum().execute())
    p = scan.polars().select(pl.len(), pl.col("order_total").sum()).collect().row(0)
    assert a == want
    assert (d[0], Decimal(d[1])) == want
    assert (ib[0], Decimal(ib[1])) == want
    assert (p[0], Decimal(p[1])) == want

    per_day_duck = dict(scan.duckdb().aggregate("ingest_date, count(*)", "ingest_date").fetchall())
    per_day_pl = dict(scan.polars().group_by("ingest_date").len().collect().iter_rows())
    assert per_day_duck == per_day_pl and set(per_day_duck) == set(days)


def test_files_outside_the_range_are_never_opened(filled: Lake) -> None:
    # Destroy every file outside (bluebird, days 3-4): a read that opened one would fail.
    keep = {p.id for p in filled.catalog.partitions("orders", ["bluebird"], DAYS[2], DAYS[3])}
    outside = [
        f for f in filled.catalog.files([p.id for p in filled.catalog.partitions("orders")])
        if f.partition_id not in keep
    ]  # fmt: skip
    for f in outside:
        filled.path(f.rel_path).write_bytes(b"garbage")
    scan = filled.scan("orders", ["bluebird"], DAYS[2], DAYS[3])
    assert len(scan.paths) == 2
    assert scan.to_arrow().num_rows == (20 + 2) + (20 + 3)
    assert scan.duckdb().aggregate("count(*)").fetchone()[0] == 45
    assert scan.polars().select(pl.len()).collect().item() == 45
    with pytest.raises(Exception):  # the whole lake includes the garbage files
        filled.scan("orders").to_arrow()


def test_empty_scan_has_the_schema(lake: Lake) -> None:
    scan = lake.scan("orders", ["acme"])
    assert scan.to_arrow().num_rows == 0
    assert "order_total" in scan.to_arrow().column_names
    assert scan.duckdb().aggregate("count(*)").fetchone()[0] == 0


@pytest.mark.parametrize("name", ["x; DROP TABLE t", "a b", "t'--", "1abc", "x" * 65])
def test_relation_names_are_whitelisted(filled: Lake, name: str) -> None:
    with pytest.raises(InvalidName):
        filled.scan("orders").duckdb(name=name)


def test_partition_columns_keep_their_types(filled: Lake) -> None:
    rel = filled.scan("orders", ["acme"]).duckdb()
    types = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    assert types["ingest_date"] == "DATE" and types["tenant"] == "VARCHAR"
    assert types["order_total"] == "DECIMAL(18,2)"


def test_latest_keeps_the_newest_version_per_tenant_and_key(lake: Lake) -> None:
    import pyarrow.compute as pc

    old = orders(3)
    newer = old.set_column(
        old.schema.get_field_index("last_update_date"),
        "last_update_date",
        pc.add(old.column("last_update_date"), pa.scalar(dt.timedelta(hours=1))),
    ).set_column(
        old.schema.get_field_index("order_status"), "order_status", pa.array(["Canceled"] * 3)
    )
    lake.write("orders", "acme", DAYS[0], old, "v1")
    lake.write("orders", "acme", DAYS[1], newer, "v2")
    lake.write("orders", "bluebird", DAYS[0], old, "v1")  # same order ids, another tenant
    latest = lake.scan("orders").latest()
    assert latest.num_rows == 6
    by_tenant = {
        (t, s)
        for t, s in zip(
            latest.column("tenant").to_pylist(),
            latest.column("order_status").to_pylist(),
            strict=True,
        )
    }
    assert by_tenant == {("acme", "Canceled"), ("bluebird", "Shipped")}


def test_latest_with_bounds_filters_versions_below_the_window(lake: Lake) -> None:
    """Issue 17: bounds on a column that never changes between versions give the latest state
    of exactly the records inside them (the newest version, not the one ingested in range)."""
    import pyarrow.compute as pc

    old = orders(3)
    i = old.schema.get_field_index("purchase_date")
    t0 = old.column(i)[0].as_py()
    days = [t0 + dt.timedelta(days=k) for k in range(3)]
    old = old.set_column(i, old.schema.field(i), pa.array(days, old.schema.field(i).type))
    newer = old.set_column(
        old.schema.get_field_index("last_update_date"),
        "last_update_date",
        pc.add(old.column("last_update_date"), pa.scalar(dt.timedelta(days=30))),
    ).set_column(
        old.schema.get_field_index("order_status"), "order_status", pa.array(["Canceled"] * 3)
    )
    lake.write("orders", "acme", DAYS[0], old, "v1")
    lake.write("orders", "acme", DAYS[1], newer, "v2")
    full = lake.scan("orders").latest()
    purchased = sorted(full.column("purchase_date").to_pylist())
    lo, hi = purchased[0], purchased[1]  # the first record only
    part = lake.scan("orders").latest(bounds=("purchase_date", lo, hi))
    assert part.num_rows == 1
    assert part.column("order_status").to_pylist() == ["Canceled"]
    assert (
        lake.scan("orders")
        .latest(bounds=("purchase_date", lo, purchased[-1] + dt.timedelta(1)))
        .num_rows
        == 3
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        lake.scan("orders").latest(bounds=("purchase_date", lo.replace(tzinfo=None), hi))
