"""Crash consistency: a writer SIGKILLed at any step leaves the whole batch or none of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amzigo_lab.config import Settings
from amzigo_lab.home import init_home, open_lake
from amzigo_lab.lake import doctor

STEPS = [
    "validated",
    "file_written",
    "file_renamed",
    "catalog_begin",
    "catalog_commit",
    "committed",
]
ROOT = Path(__file__).resolve().parents[2]


def run_writer(home: Path, step: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "tests/lake/crash_writer.py"), str(home), step, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def visible(settings: Settings) -> dict[str, int]:
    with open_lake(settings) as lake:
        return {ds: lake.scan(ds).to_arrow().num_rows for ds in ("order_buyers", "orders")}


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_step_leaves_all_or_nothing(settings: Settings, step: str) -> None:
    init_home(settings).close()
    killed = run_writer(settings.home, step)
    assert killed.returncode == -9, killed.stderr
    seen = visible(settings)
    # the first batch (order_buyers, 2 files) is all-or-nothing; orders was never reached
    assert seen["order_buyers"] in (0, 2) and seen["orders"] == 0
    if step in ("catalog_commit", "committed"):
        # the kill hit the first write's commit; only "committed" is past the commit point
        assert seen["order_buyers"] == (2 if step == "committed" else 0)
    with open_lake(settings) as lake:
        report = doctor(lake, fix=True)
        assert report.ok, report.problems
        assert lake.verify().ok
    # a retry completes the job, with no duplicates
    retry = run_writer(settings.home, "never")
    assert retry.returncode == 0, retry.stderr
    assert visible(settings) == {"order_buyers": 2, "orders": 20000}


def test_disk_full_write_fails_cleanly(settings: Settings) -> None:
    init_home(settings).close()
    full = run_writer(settings.home, "never", "--disk-full")
    assert full.returncode == 1
    assert "disk is full or a size limit was hit" in full.stderr
    assert "Traceback" in full.stderr  # uncaught in this bare script, but a WriteError
    assert "WriteError" in full.stderr
    seen = visible(settings)
    assert seen == {"order_buyers": 2, "orders": 0}  # first batch committed, second not at all
    with open_lake(settings) as lake:
        assert not list(lake.root.rglob("*.tmp"))
        assert doctor(lake).ok
