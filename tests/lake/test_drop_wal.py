"""A drop must not release the SQLite locks of the process that runs it (the gateway)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from amzigo_lab.lake import Lake
from tests.conftest import DAY
from tests.lake.helpers import orders

_OTHER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
if len(sys.argv) > 2:
    db.execute("INSERT INTO meta(key, value) VALUES ('probe', ?) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (sys.argv[2],))
else:
    db.execute("SELECT count(*) FROM partitions").fetchone()
db.close()
"""


def _other_process(lake: Lake, *args: str) -> None:
    path = str(lake.settings.catalog_path)
    subprocess.run([sys.executable, "-c", _OTHER, path, *args], check=True, timeout=120)


def test_after_a_drop_this_process_still_sees_other_processes_writes(lake: Lake) -> None:
    lake.write("orders", "acme", DAY, orders(3), "b1")
    pid = lake.write("orders", "globex", DAY, orders(2), "b1").partition_ids[0]
    lake.drop_partition(pid)  # verification byte-scans the catalog files
    wal = lake.settings.catalog_path.with_name(lake.settings.catalog_path.name + "-wal")
    _other_process(lake)  # another process (a CLI purge, a test) opens and closes the catalog
    assert wal.exists()  # it did not take itself for the last connection and delete our WAL
    _other_process(lake, "written elsewhere")
    assert lake.catalog.get_meta("probe") == "written elsewhere"


def test_without_proc_the_catalog_scan_runs_in_a_child_and_finds_the_bytes(tmp_path: Path) -> None:
    """Where /proc is missing the drop check scans in a child process; it must find what the
    in-process scan finds (a wrapped key left in a catalog file) and nothing else."""
    from amzigo_lab.lake import drop

    hit, miss = tmp_path / "catalog.sqlite", tmp_path / "catalog.sqlite-wal"
    hit.write_bytes(b"\0" * (5 << 20) + b"WRAPPED-KEY" + b"\0" * 10)
    miss.write_bytes(b"nothing here")
    paths = [hit, miss, tmp_path / "absent"]
    assert drop._scan_in_child(paths, [b"WRAPPED-KEY"]) == ["catalog.sqlite"]
    assert drop._scan_catalog_bytes(paths, [b"WRAPPED-KEY"]) == ["catalog.sqlite"]
