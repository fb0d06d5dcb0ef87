"""Dropping partitions: crypto-erase, delete, verify, and nothing readable afterwards."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from amzigo_lab.errors import CatalogError, IntegrityError
from amzigo_lab.lake import Lake
from amzigo_lab.lake.pme import read_file
from tests.conftest import DAY
from tests.lake.helpers import buyers, orders


def test_drop_destroys_key_and_files_and_verifies(lake: Lake, tmp_path: Path) -> None:
    result = lake.write(
        "order_buyers", "acme", DAY, buyers([DAY - dt.timedelta(days=1), None]), "b1"
    )
    lake.write("orders", "acme", DAY, orders(5), "b1")
    target = lake.catalog.partition(result.partition_ids[0])
    rel = lake.catalog.files([target.id])[0].rel_path
    stolen = tmp_path / "copy.parquet"  # a copy made before the drop (e.g. a backup)
    shutil.copy(lake.path(rel), stolen)
    wrapped = lake.catalog.wrapped_keys([target.key_id])[target.key_id][0]

    record = lake.drop_partition(target.id, canaries=["Canary Buyer 0", "buyer0@example.com"])

    assert record.verification["ok"] and record.verification["canary_hits"] == 0
    assert record.partitions[0].key_id == target.key_id and record.rows == 1
    assert not lake.path(rel).exists()
    assert lake.catalog.partition(target.id).state == "dropped"
    # the key is gone: the surviving copy cannot be decrypted with anything the home holds
    assert lake.partition_keys([target.key_id]) == {}
    with pytest.raises(Exception, match="not available|destroyed"):
        read_file(str(stolen), lake.partition_keys([target.key_id])).read()
    # and the wrapped key bytes are nowhere in the catalog files any more
    for path in lake.settings.home.glob("catalog.sqlite*"):
        assert wrapped not in path.read_bytes()
    # other data is untouched
    assert lake.scan("orders").to_arrow().num_rows == 5
    assert lake.scan("order_buyers").to_arrow().num_rows == 1
    assert lake.verify().ok


def test_drop_is_idempotent_and_recorded(lake: Lake) -> None:
    pid = lake.write("orders", "acme", DAY, orders(3), "b1").partition_ids[0]
    lake.drop_partition(pid)
    again = lake.drop_partition(pid)
    assert again.partitions == []
    rows = lake.catalog.db.execute("SELECT kind FROM destructions").fetchall()
    assert [r[0] for r in rows] == ["partition_drop", "partition_drop"]


def test_canary_left_elsewhere_fails_verification(lake: Lake) -> None:
    pid = lake.write("orders", "acme", DAY, orders(3), "b1").partition_ids[0]
    (lake.root / "stray.txt").write_text("leaked o1 value")
    with pytest.raises(IntegrityError, match="canary values found"):
        lake.drop_partition(pid, canaries=["leaked o1"])
    assert lake.catalog.partition(pid).state == "dropping"  # resumable, not marked dropped


def test_rewriting_after_a_drop_makes_a_new_partition(lake: Lake) -> None:
    pid = lake.write("orders", "acme", DAY, orders(3), "b1").partition_ids[0]
    lake.drop_partition(pid)
    new = lake.write("orders", "acme", DAY, orders(4, "n"), "b2").partition_ids[0]
    assert new != pid
    assert lake.scan("orders").to_arrow().num_rows == 4


def test_unknown_partition(lake: Lake) -> None:
    with pytest.raises(CatalogError, match="no partition with id 999"):
        lake.drop_partition(999)


def test_drop_removes_empty_folders(lake: Lake) -> None:
    pid = lake.write("orders", "acme", dt.date(2026, 1, 1), orders(3), "b1").partition_ids[0]
    lake.drop_partition(pid)
    assert not (lake.root / "amazon" / "orders" / "tenant=acme").exists()
    assert lake.root.exists()
