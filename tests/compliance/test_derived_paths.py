"""Issue 12 item 4: derived-output paths are stored relative to the home, so purging a copy of
a home never deletes the original home's files; absolute rows of older versions are migrated."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from amzigo_lab.compliance import purge, register_output
from amzigo_lab.config import load_settings
from amzigo_lab.home import open_lake
from amzigo_lab.lake import Lake
from amzigo_lab.lake.rowmac import check_derived, seal_derived
from amzigo_lab.lake.store import PATHS_META
from tests.compliance.conftest import Clock
from tests.lake.helpers import orders

D0 = dt.date(2026, 3, 1)


def _report(lake: Lake) -> tuple[Path, dt.date]:
    pid = lake.write("orders", "acme", D0, orders(2), "o1").partition_ids[0]
    src = lake.catalog.partition(pid)
    path = lake.settings.home / "reports" / "acme" / "sales.html"
    path.parent.mkdir(parents=True)
    path.write_text("<html>report</html>")
    register_output(
        lake, path, kind="report", tenant="acme", dataset="orders", purge_date=src.purge_date
    )
    return path, src.purge_date


def _paths(lake: Lake) -> list[str]:
    return [r[0] for r in lake.catalog.db.execute("SELECT path FROM derived_outputs")]


def test_paths_inside_the_home_are_stored_relative(lake: Lake, clock: Clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, due = _report(lake)
    assert _paths(lake) == ["reports/acme/sales.html"]
    outside = tmp_path / "elsewhere.html"
    outside.write_text("x")
    register_output(lake, outside, kind="report", tenant="acme", dataset="orders", purge_date=due)
    assert str(outside.resolve()) in _paths(lake)
    clock.set_day(due)
    assert purge(lake).outputs_deleted == 2
    assert not path.exists() and not outside.exists()


def _copy_and_purge(original: Path, copy: Path, due: dt.date) -> None:
    lake_clock = Clock()
    lake_clock.set_day(due)
    with open_lake(load_settings(copy, env={}), clock=lake_clock) as twin:
        assert all(not Path(p).is_absolute() for p in _paths(twin))
        result = purge(twin)
        assert result.outputs_deleted == 1
        twin.audit.close()  # type: ignore[attr-defined]


def test_purging_a_copied_home_leaves_the_original_alone(lake: Lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, due = _report(lake)
    lake.audit.close()  # type: ignore[attr-defined]
    copy = tmp_path / "copy"
    shutil.copytree(lake.settings.home, copy, symlinks=True)
    _copy_and_purge(lake.settings.home, copy, due)
    assert path.exists()  # the original home's report is untouched
    assert not (copy / "reports" / "acme" / "sales.html").exists()


def test_absolute_rows_of_older_versions_are_migrated(lake: Lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, due = _report(lake)
    with lake.catalog.transaction() as db:  # as an older version stored it
        db.execute("UPDATE derived_outputs SET path = ?", (str(path.resolve()),))
        seal_derived(
            db, lake.row_mac_key(), [r[0] for r in db.execute("SELECT id FROM derived_outputs")]
        )
        db.execute("DELETE FROM meta WHERE key = ?", (PATHS_META,))
    lake.audit.close()  # type: ignore[attr-defined]
    copy = tmp_path / "copy"
    shutil.copytree(lake.settings.home, copy, symlinks=True)  # copied before any upgrade
    with open_lake(lake.settings) as again:  # the original, upgraded in place
        assert _paths(again) == ["reports/acme/sales.html"]
        assert check_derived(again.catalog.db, again.row_mac_key()) == []
        again.audit.close()  # type: ignore[attr-defined]
    # the copy's catalog still names the original home's absolute path: it is rebased onto the
    # copy (the catalog recorded where it last lived), so its purge deletes only its own file
    _copy_and_purge(lake.settings.home, copy, due)
    assert path.exists()
