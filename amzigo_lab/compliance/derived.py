"""Derived outputs: report files, exports and other copies of Amazon data outside the lake.

They follow the rule of what they were derived from (policy: derived copies count too), so
whoever writes one registers it here with its source tenant, dataset and purge date (the
earliest purge date of the partitions it was built from). Purges, deletion notices and erasures
delete registered outputs like partitions, and record each deletion.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amzigo_lab.compliance.common import ComplianceError, new_id, store_record
from amzigo_lab.lake.catalog import iso
from amzigo_lab.names import tenant_id

if TYPE_CHECKING:
    from amzigo_lab.lake.catalog import Partition
    from amzigo_lab.lake.store import Lake

KINDS = ("report", "export", "dsr_export", "cache")


@dataclass(frozen=True)
class DerivedOutput:
    """One registered file (or folder) holding data derived from the lake."""

    id: str
    kind: str
    path: str
    tenant: str
    dataset: str
    source_date: dt.date
    purge_date: dt.date
    subject_id: str | None
    created_at: str


def derived_purge_date(sources: Iterable[Partition]) -> dt.date:
    """The purge date of an output built from these partitions: the earliest of theirs."""
    dates = [p.purge_date for p in sources]
    if not dates:
        raise ComplianceError("a derived output needs at least one source partition")
    return min(dates)


def register_output(
    lake: Lake,
    path: Path | str,
    *,
    kind: str,
    tenant: str,
    dataset: str,
    purge_date: dt.date,
    source_date: dt.date | None = None,
    subject_id: str | None = None,
) -> DerivedOutput:
    """Register a derived file so retention, deletion notices and erasures delete it."""
    if kind not in KINDS:
        raise ComplianceError(f"unknown derived output kind {kind!r}; use one of {KINDS}")
    tenant_id(tenant)
    lake.spec(dataset)
    out_id = new_id("out")
    resolved = str(Path(path).resolve())
    with lake.catalog.transaction() as db:
        db.execute(
            "INSERT INTO derived_outputs(id, kind, path, tenant, dataset, source_date, purge_date,"
            " subject_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO "
            "UPDATE SET purge_date = min(purge_date, excluded.purge_date), deleted_at = NULL",
            (
                out_id,
                kind,
                resolved,
                tenant,
                dataset,
                (source_date or purge_date).isoformat(),
                purge_date.isoformat(),
                subject_id,
                iso(lake.clock()),
            ),
        )
    return next(o for o in outputs(lake) if o.path == resolved)


def outputs(
    lake: Lake,
    *,
    tenant: str | None = None,
    datasets: list[str] | None = None,
    due_by: dt.date | None = None,
    subject_id: str | None = None,
) -> list[DerivedOutput]:
    """Registered outputs not yet deleted, filtered."""
    sql = "SELECT * FROM derived_outputs WHERE deleted_at IS NULL"
    args: list[Any] = []
    if tenant is not None:
        sql += " AND tenant = ?"
        args.append(tenant)
    if due_by is not None:
        sql += " AND purge_date <= ?"
        args.append(due_by.isoformat())
    if subject_id is not None:
        sql += " AND subject_id = ?"
        args.append(subject_id)
    rows = lake.catalog.db.execute(sql + " ORDER BY purge_date, path", args).fetchall()
    found = [
        DerivedOutput(
            r["id"],
            r["kind"],
            r["path"],
            r["tenant"],
            r["dataset"],
            dt.date.fromisoformat(r["source_date"]),
            dt.date.fromisoformat(r["purge_date"]),
            r["subject_id"],
            r["created_at"],
        )
        for r in rows
    ]
    return [o for o in found if datasets is None or o.dataset in datasets]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if path.parent.exists():
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def delete_outputs(lake: Lake, items: list[DerivedOutput], reason: str) -> str | None:
    """Delete registered outputs, verify they are gone, record it; the record id (or None)."""
    if not items:
        return None
    for o in items:
        _remove(Path(o.path))
    remaining = [o.path for o in items if Path(o.path).exists()]
    if remaining:
        raise ComplianceError(f"{len(remaining)} derived output(s) could not be deleted")
    now = iso(lake.clock())
    with lake.catalog.transaction() as db:
        db.executemany(
            "UPDATE derived_outputs SET deleted_at = ? WHERE id = ?", [(now, o.id) for o in items]
        )
    return store_record(
        lake,
        "derived_delete",
        {
            "reason": reason,
            "method": "file deletion (registered derived outputs)",
            "outputs": [
                {
                    "id": o.id,
                    "kind": o.kind,
                    "tenant": o.tenant,
                    "dataset": o.dataset,
                    "purge_date": o.purge_date.isoformat(),
                    "name": Path(o.path).name,
                }
                for o in items
            ],
            "verification": {"files_present_after": 0, "ok": True},
        },
    )
