"""Derived outputs: report files, exports and other copies of Amazon data outside the lake.

They follow the rule of what they were derived from (policy: derived copies count too), so
whoever writes one registers it here with its source tenant, dataset and purge date (the
earliest purge date of the partitions it was built from). Purges, deletion notices and erasures
delete registered outputs like partitions, and record each deletion.

Every row carries a MAC (lake/rowmac.py), set in the transaction that writes it and checked
before any update. A row that fails its MAC (purge date pushed out, path or deletion edited, or
inserted outside amzigo-lab) is never kept on its word: the purge treats it as due now, deletes
its file and certifies that, alerts and fails naming it. Its row is left as found (never
re-sealed). Because its path cannot be trusted either, a tampered row never makes amzigo-lab
delete the home's own files: inside the home only `reports/` and `exports/` are deleted for one
(`tamper_safe_path`); anything else is refused and named.

Paths inside the home are stored relative to it (`stored_path`), so purging a copy of a home
never deletes the original's files; rows written as absolute paths by older versions are
rewritten once when the lake opens (`Lake._migrate_output_paths`).
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
from amzigo_lab.lake.records import DerivedOutputs
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
    resolved = stored_path(lake, path)
    # an update of an existing row is checked before it changes (TamperedRow), then sealed
    DerivedOutputs(lake.catalog).register(
        {
            "id": out_id,
            "kind": kind,
            "path": resolved,
            "tenant": tenant,
            "dataset": dataset,
            "source_date": (source_date or purge_date).isoformat(),
            "purge_date": purge_date.isoformat(),
            "subject_id": subject_id,
            "created_at": iso(lake.clock()),
        },
        lake.row_mac_key(),
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
    rows = DerivedOutputs(lake.catalog).live(
        tenant=tenant,
        due_by=None if due_by is None else due_by.isoformat(),
        subject_id=subject_id,
    )
    found = [_from_row(r) for r in rows]
    return [o for o in found if datasets is None or o.dataset in datasets]


def _date(v: Any) -> dt.date:
    try:
        return dt.date.fromisoformat(str(v))
    except ValueError:  # a tampered row may hold anything
        return dt.date.min


def _from_row(r: Any) -> DerivedOutput:
    return DerivedOutput(
        r["id"],
        r["kind"],
        r["path"],
        r["tenant"],
        r["dataset"],
        _date(r["source_date"]),
        _date(r["purge_date"]),
        r["subject_id"],
        r["created_at"],
    )


def output_rows(lake: Lake, ids: Iterable[str]) -> list[DerivedOutput]:
    """Outputs by id, deleted or not (the purge's view of rows that fail their MAC)."""
    return [_from_row(r) for r in DerivedOutputs(lake.catalog).rows(ids)]


def stored_path(lake: Lake, path: Path | str) -> str:
    """The path as the catalog stores it: relative to the home when inside it (so a copied or
    moved home never points at the original's files), else absolute."""
    resolved = Path(path).resolve()
    home = lake.settings.home.resolve()
    if resolved.is_relative_to(home) and resolved != home:
        return resolved.relative_to(home).as_posix()
    return str(resolved)


def output_path(lake: Lake, path: str) -> Path:
    """The file of a stored path (relative ones are under the home)."""
    p = Path(path)
    return p if p.is_absolute() else lake.settings.home / p


def tamper_safe_path(lake: Lake, path: str) -> bool:
    """Whether the file of a row that fails its MAC may be deleted: outside the home, or in its
    `reports/` or `exports/` (never the lake, keys, catalog, state or audit log)."""
    home = lake.settings.home.resolve()
    target = output_path(lake, path).resolve()
    if not target.is_relative_to(home):
        return True
    return any(
        target.is_relative_to(home / d) and target != home / d for d in ("reports", "exports")
    )


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
    mac_key = lake.row_mac_key()
    bad = {p.row_id for p in DerivedOutputs(lake.catalog).check(mac_key, [o.id for o in items])}
    # a row that fails its MAC: its file goes (never kept on its word) unless its path points
    # into the home's own files; its row is left as found, never re-sealed
    unsafe = [o for o in items if o.id in bad and not tamper_safe_path(lake, o.path)]
    items = [o for o in items if o not in unsafe]
    record_id = _delete(lake, items, reason, bad, mac_key) if items else None
    if unsafe:  # after the rest is done and recorded
        names = ", ".join(f"{o.id} ({o.path})" for o in unsafe)
        raise ComplianceError(
            f"refusing to delete the path of derived output row(s) that fail their MAC: {names}. "
            "Run `amzigo lake verify` and restore the catalog from backup (docs/operations.md)"
        )
    return record_id


def _delete(
    lake: Lake, items: list[DerivedOutput], reason: str, bad: set[str], mac_key: bytes
) -> str:
    for o in items:
        _remove(output_path(lake, o.path))
    remaining = [o.path for o in items if output_path(lake, o.path).exists()]
    if remaining:
        raise ComplianceError(f"{len(remaining)} derived output(s) could not be deleted")
    intact = [o.id for o in items if o.id not in bad]
    # checked again inside the transaction, before the update: a failing row is left as found
    bad |= DerivedOutputs(lake.catalog).mark_deleted(intact, iso(lake.clock()), mac_key)
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
                    **({"row_mac": "failed: deleted as due now"} if o.id in bad else {}),
                }
                for o in items
            ],
            "verification": {"files_present_after": 0, "ok": True},
        },
    )
