"""Writing: round trip, encryption on disk, validation, idempotence, PII purge partitions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from amzigo_lab.errors import InvalidName, SchemaMismatch, UnknownDataset
from amzigo_lab.lake import Lake
from tests.conftest import DAY
from tests.lake.helpers import buyers, orders


def lake_files(lake: Lake) -> list[Path]:
    return sorted(p for p in lake.root.rglob("*") if p.is_file())


def test_round_trip_and_every_file_is_pme_encrypted(lake: Lake) -> None:
    table = orders(500)
    result = lake.write("orders", "acme", DAY, table, "batch-1")
    assert result.rows == 500 and len(result.files) == 1
    rel = result.files[0]
    assert rel == f"amazon/orders/tenant=acme/ingest_date={DAY}/" + Path(rel).name
    back = lake.scan("orders").to_arrow()
    assert (
        back.drop_columns(["tenant", "ingest_date"])
        .sort_by("amazon_order_id")
        .equals(table.sort_by("amazon_order_id"))
    )
    assert set(back.column("tenant").to_pylist()) == {"acme"}
    for path in lake_files(lake):
        data = path.read_bytes()
        assert data[:4] == b"PARE" and data[-4:] == b"PARE", path
        assert b"o499" not in data  # no plaintext values
        with pytest.raises(Exception, match=r"(?i)encrypt|decrypt|key"):
            pq.read_table(path)  # unreadable without the home's keys


def test_rewriting_a_committed_batch_is_a_no_op(lake: Lake) -> None:
    lake.write("orders", "acme", DAY, orders(10), "b1")
    again = lake.write("orders", "acme", DAY, orders(10), "b1")
    assert again.already_committed
    assert lake.scan("orders").to_arrow().num_rows == 10
    assert len(lake_files(lake)) == 1


def test_batches_accumulate_in_one_partition_with_one_key(lake: Lake) -> None:
    lake.write("orders", "acme", DAY, orders(10, "a"), "b1")
    lake.write("orders", "acme", DAY, orders(5, "b"), "b2")
    parts = lake.catalog.partitions("orders")
    assert len(parts) == 1 and parts[0].row_count == 15
    assert len(lake.catalog.files([parts[0].id])) == 2
    assert lake.scan("orders").to_arrow().num_rows == 15


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.append_column("buyer_email", pa.array(["x"] * t.num_rows)), "'buyer_email' is not declared"),
        (lambda t: t.drop_columns(["order_status"]), "required column 'order_status' is missing"),
        (lambda t: t.set_column(9, "items_shipped", pa.array(["x"] * t.num_rows)), "'items_shipped' has type string"),
        (lambda t: t.set_column(0, "amazon_order_id", pa.array([None] * t.num_rows, pa.string())), "'amazon_order_id' has 3 null"),
        (lambda t: pa.concat_tables([t, t]), "duplicate key"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_nothing_is_written(lake: Lake, mutate, message) -> None:
    with pytest.raises(SchemaMismatch, match=message):
        lake.write("orders", "acme", DAY, mutate(orders(3)), "bad")
    assert lake_files(lake) == []
    assert lake.catalog.partitions() == []
    assert not lake.catalog.batch_exists("orders", "acme", "bad")


@pytest.mark.parametrize(
    "tenant", ["../etc", "acme/../../x", "Acme", "a b", "", "x'; DROP TABLE partitions; --"]
)
def test_invalid_tenant_ids_are_refused(lake: Lake, tenant: str) -> None:
    with pytest.raises(InvalidName, match="invalid tenant id"):
        lake.write("orders", tenant, DAY, orders(1), "b1")
    assert lake_files(lake) == []


def test_unknown_and_malicious_dataset_names(lake: Lake) -> None:
    with pytest.raises(UnknownDataset, match="not declared"):
        lake.write("customers", "acme", DAY, orders(1), "b1")
    with pytest.raises(InvalidName):
        lake.write("../orders", "acme", DAY, orders(1), "b1")
    with pytest.raises(InvalidName):
        lake.write("orders", "acme", DAY, orders(1), "b1/../../x")


def test_pii_rows_are_partitioned_by_purge_date(lake: Lake) -> None:
    ingest = dt.date(2026, 3, 10)
    delivered = [dt.date(2026, 3, 1), dt.date(2026, 3, 5), None, dt.date(2026, 3, 5)]
    lake.write("order_buyers", "acme", ingest, buyers(delivered), "pii-1")
    parts = {p.purge_date: p.row_count for p in lake.catalog.partitions("order_buyers")}
    # delivered before ingestion: delivery + 30; undelivered: ingestion + 30
    assert parts == {dt.date(2026, 3, 31): 1, dt.date(2026, 4, 4): 2, dt.date(2026, 4, 9): 1}
    rel_dirs = {p.rel_dir for p in lake.catalog.partitions("order_buyers")}
    assert all("/purge_date=" in d for d in rel_dirs)
    back = lake.scan("order_buyers").to_arrow()
    assert back.num_rows == 4 and "purge_date" in back.column_names


def test_pii_already_past_its_deadline_is_refused(lake: Lake) -> None:
    with pytest.raises(SchemaMismatch, match="past their retention deadline"):
        lake.write("order_buyers", "acme", dt.date(2026, 5, 1), buyers([dt.date(2026, 3, 1)]), "x")
    assert lake_files(lake) == []


def test_amazon_data_gets_an_18_month_purge_date(lake: Lake) -> None:
    lake.write("orders", "acme", dt.date(2026, 8, 31), orders(1), "b1")
    assert lake.catalog.partitions()[0].purge_date == dt.date(2028, 2, 29)


def test_writes_are_audited_without_values(lake: Lake, audit) -> None:
    lake.write("orders", "acme", DAY, orders(3), "b1")
    assert audit.events[-1]["action"] == "lake.write"
    assert audit.events[-1]["row_count"] == 3
    assert "o1" not in repr(audit.events)
