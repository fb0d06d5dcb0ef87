"""Integrity: verify every committed file, find and sweep orphans, check the home's health."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from amzigo_lab.errors import AmzigoError
from amzigo_lab.lake.fs import file_sha256, files_under
from amzigo_lab.lake.handle import LakeHandle
from amzigo_lab.lake.pme import read_file
from amzigo_lab.lake.rotation import recover_rotation
from amzigo_lab.lake.rowmac import check_all

#: The lake a `doctor` call is given, handed on as is to its `resume` callback.
L = TypeVar("L", bound=LakeHandle)


@dataclass(frozen=True)
class Problem:
    """One integrity problem, naming the file or object."""

    kind: str  # missing | tampered | undecryptable | row_count | orphan | permissions | catalog
    # | row_mac (a catalog row edited outside amzigo-lab: its MAC does not match)
    subject: str
    detail: str


@dataclass
class VerifyReport:
    """The outcome of `amzigo lake verify` / `amzigo doctor`."""

    files_checked: int = 0
    rows_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "files_checked": self.files_checked,
            "rows_checked": self.rows_checked,
            "problems": [asdict(p) for p in self.problems],
        }


def check_row_macs(lake: LakeHandle) -> list[Problem]:
    """Every catalog row (partition, file, certificate) whose MAC does not match, by name."""
    return [
        Problem(
            "row_mac",
            rp.subject,
            f"{rp.check}"
            + (f" ({rp.detail})" if rp.detail else "")
            + ": edited outside amzigo-lab; restore the catalog from backup "
            "(docs/operations.md)",
        )
        for rp in check_all(lake.catalog.db, lake.row_mac_key())
    ]


def verify_lake(lake: LakeHandle) -> VerifyReport:
    """Check every catalog row's MAC, then read every committed file: present, SHA-256 and row
    count as committed, decrypts."""
    report = VerifyReport()
    report.problems.extend(check_row_macs(lake))
    parts = lake.catalog.partitions()
    keys = lake.partition_keys(p.key_id for p in parts)
    key_of = {p.id: p.key_id for p in parts}
    for entry in lake.catalog.files(list(key_of)):
        path = lake.path(entry.rel_path)
        report.files_checked += 1
        if not path.exists():
            report.problems.append(Problem("missing", entry.rel_path, "file not found"))
            continue
        if file_sha256(path) != entry.sha256:
            report.problems.append(
                Problem("tampered", entry.rel_path, "SHA-256 differs from the committed one")
            )
            continue
        try:
            pf = read_file(
                str(path), {key_of[entry.partition_id]: keys[key_of[entry.partition_id]]}
            )
            rows = pf.read().num_rows
        except (OSError, pa.ArrowException, AmzigoError, KeyError) as exc:
            report.problems.append(Problem("undecryptable", entry.rel_path, type(exc).__name__))
            continue
        if rows != entry.row_count:
            report.problems.append(
                Problem("row_count", entry.rel_path, f"{rows} rows, {entry.row_count} committed")
            )
        report.rows_checked += rows
    return report


def find_orphans(lake: LakeHandle) -> list[Path]:
    """Files under the lake that no live or dropping partition owns (e.g. after a crash)."""
    owned = lake.catalog.live_rel_paths()
    return sorted(
        path
        for path in files_under(lake.root)
        if path.relative_to(lake.root).as_posix() not in owned
    )


def sweep_orphans(lake: LakeHandle) -> list[Path]:
    """Delete orphan files (under the write lock, so no in-flight write is touched)."""
    with lake.write_lock():
        orphans = find_orphans(lake)
        for path in orphans:
            path.unlink(missing_ok=True)
    return orphans


def doctor(lake: L, fix: bool = False, resume: Callable[[L], object] | None = None) -> VerifyReport:
    """Key-file permissions, catalog integrity, orphans, then a full verification.

    Partitions left `dropping` by an interrupted drop are never finished here: with `fix`,
    `resume` (the compliance layer's `resume_interrupted`) finishes them inside their own
    compliance run so that they are certified; without it they are reported."""
    problems: list[Problem] = []
    key_file = lake.settings.master_key_file
    if lake.settings.key_provider == "file" and key_file.exists():
        mode = key_file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            problems.append(
                Problem("permissions", str(key_file), f"mode {oct(mode & 0o777)}; run chmod 600")
            )
        if key_file.resolve().is_relative_to(lake.root.resolve()):
            problems.append(Problem("permissions", str(key_file), "key file inside the lake"))
    result = lake.catalog.db.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        problems.append(Problem("catalog", str(lake.settings.catalog_path), str(result)))
    if fix:
        with lake.write_lock():
            recover_rotation(lake)
    orphans = sweep_orphans(lake) if fix else find_orphans(lake)
    for path in orphans:
        detail = "removed" if fix else "no committed partition owns it; `amzigo doctor --fix`"
        problems.append(Problem("orphan", path.relative_to(lake.root).as_posix(), detail))
    if fix and resume is not None:
        resume(lake)
    dropping = lake.catalog.partitions(states=("dropping",))
    if dropping:
        problems.append(
            Problem(
                "catalog",
                f"{len(dropping)} partition(s)",
                "drop interrupted; `amzigo doctor --fix` resumes it inside its compliance run",
            )
        )
    report = verify_lake(lake)
    report.problems[:0] = [p for p in problems if not (fix and p.kind == "orphan")]
    return report
