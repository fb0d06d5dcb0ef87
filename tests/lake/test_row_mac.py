"""Catalog row MACs: rows edited with sqlite3 (as an attacker would) are named and refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main as cli
from amzigo_lab.config import Settings
from amzigo_lab.events import MemorySink
from amzigo_lab.home import open_lake
from amzigo_lab.lake import Lake
from amzigo_lab.lake.rowmac import MAC_INFO, TamperedRow, check_all, derive_key
from tests.conftest import DAY
from tests.lake.helpers import orders


def attack(catalog: Path, sql: str, args: tuple[object, ...] = ()) -> None:
    """Edit the catalog outside amzigo-lab, with its own sqlite3 connection."""
    db = sqlite3.connect(catalog)
    try:
        assert db.execute(sql, args).rowcount >= 1
        db.commit()
    finally:
        db.close()


@pytest.fixture
def written(lake: Lake) -> int:
    """Two tenants' orders; returns acme's partition id."""
    res = lake.write("orders", "acme", DAY, orders(20), "b1")
    lake.write("orders", "acme", DAY, orders(5, prefix="x"), "b2")  # appends to the partition
    lake.write("orders", "bluebird", DAY, orders(10), "b1")
    return res.partition_ids[0]


def test_untouched_lake_verifies_and_rows_carry_macs(lake: Lake, written: int) -> None:
    assert lake.verify().ok
    assert lake.scan("orders").to_arrow().num_rows == 35
    macs = lake.catalog.db.execute("SELECT mac FROM partitions UNION ALL SELECT mac FROM files")
    assert all(len(m[0]) == 64 for m in macs)
    # the MAC key is HKDF-derived with its own label, never the raw master key
    assert lake.row_mac_key() == derive_key(lake.master().secret) != lake.master().secret
    assert MAC_INFO == b"amzigo-lab/catalog-row-mac/v1"


TAMPERING = {
    "purge_date": ("UPDATE partitions SET purge_date = '2099-01-01' WHERE id = ?", "partition"),
    "tenant": ("UPDATE partitions SET tenant = 'cobalt' WHERE id = ?", "partition"),
    "state": ("UPDATE partitions SET state = 'dropped' WHERE id = ?", "partition"),
    "row_count": ("UPDATE partitions SET row_count = 1 WHERE id = ?", "partition"),
    "checksum": ("UPDATE files SET sha256 = '00' || substr(sha256, 3) WHERE id = (SELECT min(id) FROM files WHERE partition_id = ?)", "file"),
    "file_deleted": ("DELETE FROM files WHERE partition_id = ? AND batch_id = 'b2'", "partition"),
}  # fmt: skip


@pytest.mark.parametrize("what", sorted(TAMPERING))
def test_tampered_partition_row_is_named_and_refused(
    lake: Lake, settings: Settings, written: int, what: str
) -> None:
    sql, check = TAMPERING[what]
    attack(settings.catalog_path, sql, (written,))
    # lake verify names the row: dataset, tenant (as it now reads), ingest date, failed check
    report = lake.verify()
    macs = [p for p in report.problems if p.kind == "row_mac"]
    assert len(macs) == 1, report.problems
    tenant = "cobalt" if what == "tenant" else "acme"
    assert macs[0].subject == f"partition {written} (dataset orders, tenant {tenant}, " + (
        f"ingest_date {DAY.isoformat()})"
    )
    assert f"{check} row" in macs[0].detail and "MAC mismatch" in macs[0].detail
    # the CLI exits non-zero and prints the row
    result = CliRunner().invoke(
        cli, ["lake", "verify", "--break-glass", "test", "--home", str(settings.home)]
    )
    assert result.exit_code == 1 and f"partition {written}" in result.output
    # a scan of the dataset refuses, naming the row and what to do
    with pytest.raises(TamperedRow, match=rf"partition {written} .*amzigo lake verify.*backup"):
        lake.scan("orders")
    # a drop refuses: a tampered row is never dropped (nor certified) on its word
    with pytest.raises(TamperedRow, match=rf"refusing to drop .*partition {written} "):
        lake.drop_partition(written, reason="test")
    assert lake.catalog.wrapped_keys([lake.catalog.partition(written).key_id])  # key intact
    # nor is it appended to (and so re-sealed) by a later write
    if what in ("row_count", "checksum", "file_deleted"):
        with pytest.raises(TamperedRow, match="append to"):
            lake.write("orders", "acme", DAY, orders(2, prefix="y"), "b3")


def test_untampered_tenant_still_reads_and_drops(
    lake: Lake, settings: Settings, written: int
) -> None:
    attack(settings.catalog_path, "UPDATE partitions SET purge_date = '2099-01-01' WHERE id = ?", (written,))  # fmt: skip
    assert lake.scan("orders", ["bluebird"]).to_arrow().num_rows == 10
    other = lake.catalog.partitions("orders", ["bluebird"])[0]
    assert lake.drop_partition(other.id).rows == 10
    assert [p.kind for p in lake.verify().problems] == ["row_mac"]  # only the tampered row


def test_mac_copied_from_another_row_fails(lake: Lake, settings: Settings, written: int) -> None:
    attack(
        settings.catalog_path,
        "UPDATE partitions SET mac = (SELECT mac FROM partitions WHERE id != ?) WHERE id = ?",
        (written, written),
    )
    assert [p.kind for p in lake.verify().problems] == ["row_mac"]


def test_deleted_partition_row_is_named(lake: Lake, settings: Settings, written: int) -> None:
    # deleting the row would let the data escape every purge; its live key and files remain
    attack(settings.catalog_path, "DELETE FROM files WHERE partition_id = ?", (written,))
    attack(settings.catalog_path, "DELETE FROM partitions WHERE id = ?", (written,))
    subjects = [p.subject for p in lake.verify().problems if p.kind == "row_mac"]
    assert len(subjects) == 1 and subjects[0].startswith("partition key pk-")


def test_drop_and_write_keep_rows_verifying(lake: Lake, written: int) -> None:
    lake.drop_partition(written, reason="test")
    lake.write("orders", "acme", DAY, orders(3, prefix="z"), "b9")
    assert lake.verify().ok
    assert not check_all(lake.catalog.db, lake.row_mac_key())


def test_rotation_re_macs_every_row(lake: Lake, settings: Settings, written: int) -> None:
    old_key = lake.row_mac_key()
    lake.rotate_master_key()
    new_key = lake.row_mac_key()
    assert new_key != old_key
    assert lake.verify().ok and lake.scan("orders").to_arrow().num_rows == 35
    assert check_all(lake.catalog.db, old_key)  # the old key no longer validates anything
    lake.close()
    with open_lake(settings, audit=MemorySink()) as reopened:
        assert reopened.verify().ok
        assert reopened.drop_partition(written).rows == 25


def test_rotation_refuses_to_launder_a_tampered_row(
    lake: Lake, settings: Settings, written: int
) -> None:
    master = lake.master_key_id
    attack(settings.catalog_path, "UPDATE partitions SET purge_date = '2099-01-01' WHERE id = ?", (written,))  # fmt: skip
    with pytest.raises(TamperedRow, match=rf"rotate the master key over .*partition {written} "):
        lake.rotate_master_key()
    assert lake.master_key_id == master  # nothing changed; the staged key was discarded
    assert not settings.master_key_file.with_name("master.key.next").exists()
    assert [p.kind for p in lake.verify().problems] == ["row_mac"]


def _downgrade_to_schema_2(catalog: Path) -> None:
    """Make the catalog what an amzigo-lab from before row MACs left behind."""
    db = sqlite3.connect(catalog)
    for table in ("partitions", "files", "certificates", "legal_holds", "derived_outputs"):
        db.execute(f"ALTER TABLE {table} DROP COLUMN mac")
    db.execute("DELETE FROM meta WHERE key IN ('row_mac_migration', 'hold_mac_migration')")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()


def test_migration_macs_a_pre_mac_home_once_and_audits_it(
    lake: Lake, settings: Settings, written: int
) -> None:
    lake.close()
    _downgrade_to_schema_2(settings.catalog_path)
    sink = MemorySink()
    with open_lake(settings, audit=sink) as migrated:
        assert migrated.catalog.schema_version == 4
        assert migrated.verify().ok
        assert migrated.scan("orders").to_arrow().num_rows == 35
        done = migrated.catalog.get_meta("row_mac_migration") or ""
        assert done.startswith("done ") and "2 partitions, 3 files" in done
    events = [e for e in sink.events if e["action"] == "catalog.row_mac_migration"]
    assert len(events) == 1 and events[0]["row_count"] == 5
    # after the migration, a row whose MAC is removed is not re-sealed on the next open
    attack(settings.catalog_path, "UPDATE partitions SET mac = NULL WHERE id = ?", (written,))
    attack(settings.catalog_path, "UPDATE meta SET value = 'pending' WHERE key = 'row_mac_migration'")  # fmt: skip
    sink2 = MemorySink()
    with open_lake(settings, audit=sink2) as again:
        checks = sorted(p.detail.split(":")[0].split(" (")[0] for p in again.verify().problems)
        assert checks == ["partition row has no MAC", "row-MAC migration marker reset to 'pending'"]
        with pytest.raises(TamperedRow, match="partition row has no MAC"):
            again.scan("orders")
    assert not [e for e in sink2.events if e["action"] == "catalog.row_mac_migration"]
