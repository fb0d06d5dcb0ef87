"""Shared pieces of the compliance layer: errors, dates, audit emission, runs, canaries."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amzigo_lab.errors import AmzigoError
from amzigo_lab.lake.catalog import iso

if TYPE_CHECKING:
    from amzigo_lab.lake.catalog import Partition
    from amzigo_lab.lake.store import Lake

SYSTEM_ACTOR = "system:retention"


class ComplianceError(AmzigoError):
    """A compliance operation was refused or could not complete; the message says why."""


def tool_version() -> str:
    """`amzigo-lab <version>` for certificates."""
    try:
        return f"amzigo-lab {metadata.version('amzigo-lab')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "amzigo-lab (unknown version)"


def today(lake: Lake) -> dt.date:
    """The lake clock's UTC date."""
    return lake.clock().astimezone(dt.UTC).date()


def new_id(prefix: str) -> str:
    """A random identifier with a readable prefix."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@dataclass
class EventLog:
    """Emits audit events through the lake's sink and remembers the ids it got back."""

    lake: Lake
    actor: str
    ids: list[str] = field(default_factory=list)
    run_id: str | None = None

    def emit(self, action: str, **fields: Any) -> str:
        """Emit one event (identifiers and counts only) and keep its id (also on the run)."""
        event_id = self.lake.audit.emit(action, actor=self.actor, **fields)
        if event_id:
            self.ids.append(event_id)
            if self.run_id is not None:
                with self.lake.catalog.transaction() as db:
                    row = db.execute(
                        "SELECT event_ids_json FROM compliance_runs WHERE id = ?", (self.run_id,)
                    ).fetchone()
                    ids = [*json.loads(row[0]), event_id] if row else [event_id]
                    db.execute(
                        "UPDATE compliance_runs SET event_ids_json = ? WHERE id = ?",
                        (json.dumps(ids), self.run_id),
                    )
        return event_id

    def run_event_ids(self) -> list[str]:
        """Every event id recorded on the run so far (including a crashed earlier attempt)."""
        if self.run_id is None:
            return list(self.ids)
        row = self.lake.catalog.db.execute(
            "SELECT event_ids_json FROM compliance_runs WHERE id = ?", (self.run_id,)
        ).fetchone()
        return list(json.loads(row[0])) if row else list(self.ids)


# -- resumable runs ------------------------------------------------------------------------
def open_run(lake: Lake, kind: str, reference: str, actor: str, scope: dict[str, Any]) -> str:
    """Resume the unfinished run of this kind and reference, or start a new one; its id."""
    row = lake.catalog.db.execute(
        "SELECT id FROM compliance_runs WHERE kind = ? AND reference = ? AND finished_at IS NULL "
        "ORDER BY started_at LIMIT 1",
        (kind, reference),
    ).fetchone()
    if row is not None:
        return str(row[0])
    run_id = new_id("run")
    with lake.catalog.transaction() as db:
        db.execute(
            "INSERT INTO compliance_runs(id, kind, reference, actor, scope_json, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, kind, reference, actor, json.dumps(scope, sort_keys=True), iso(lake.clock())),
        )
    return run_id


def finish_run(lake: Lake, run_id: str, certificate_id: str | None) -> None:
    """Mark a run finished."""
    with lake.catalog.transaction() as db:
        db.execute(
            "UPDATE compliance_runs SET finished_at = ?, certificate_id = ? WHERE id = ?",
            (iso(lake.clock()), certificate_id, run_id),
        )


def run_records(lake: Lake, run_id: str) -> list[dict[str, Any]]:
    """Every destruction record of a run (the run id is in each record's reason)."""
    rows = lake.catalog.db.execute(
        "SELECT id, kind, record_json FROM destructions WHERE record_json LIKE ? "
        "ORDER BY created_at",
        (f"%[{run_id}]%",),
    ).fetchall()
    out = []
    for r in rows:
        rec = json.loads(r[2])
        rec["record_id"], rec["kind"] = r[0], r[1]
        out.append(rec)
    return out


def store_record(lake: Lake, kind: str, record: dict[str, Any]) -> str:
    """Store a destruction record that is not a partition drop (files, audit segments)."""
    record_id = "dr-" + uuid.uuid4().hex
    now = iso(lake.clock())
    record = {"record_id": record_id, "performed_at": now, **record}
    with lake.catalog.transaction() as db:
        db.execute(
            "INSERT INTO destructions(id, kind, record_json, created_at) VALUES (?, ?, ?, ?)",
            (record_id, kind, json.dumps(record, sort_keys=True), now),
        )
    return record_id


# -- canaries ------------------------------------------------------------------------------
CANARY_COLUMNS = ("buyer_email", "buyer_name", "ship_address_line1")


def sample_canaries(lake: Lake, parts: Iterable[Partition], per_partition: int = 3) -> list[str]:
    """A few PII values read from each PII partition before it is dropped.

    The drop's verification then proves these values appear nowhere in the lake. The values are
    returned to the caller only to hand to `drop_partitions`: never print or log them. They are
    also kept, until `forget_canaries` after the drop, as lake secrets (wrapped by the master
    key): a drop killed after its keys were destroyed is resumed with the same canaries, as the
    original command would have verified them.
    """
    from amzigo_lab.lake.pme import read_file

    out: list[str] = []
    parts = list(parts)
    lake.require_intact([p.id for p in parts], "drop")
    fresh: dict[int, list[str]] = {}
    for p in parts:
        kept = _kept_canaries(lake, p.id)
        if kept is not None:
            out.extend(kept)
            continue
        spec = lake.spec(p.dataset)
        cols = [c for c in CANARY_COLUMNS if c in {x.name for x in spec.columns}]
        if not spec.pii or not cols or p.state not in ("live", "dropping"):
            continue
        keys = lake.partition_keys([p.key_id])
        if not keys:
            continue
        found: list[str] = []
        for f in lake.catalog.files([p.id])[:1]:
            if not lake.path(f.rel_path).exists():
                continue
            table = read_file(str(lake.path(f.rel_path)), keys).read(columns=cols)
            for col in cols:
                values = [v for v in table.column(col).to_pylist()[:per_partition] if v]
                found.extend(v for v in values if len(v) >= 6)
        if found:
            fresh[p.id] = found
            out.extend(found)
    _keep_canaries(lake, fresh)
    return sorted(set(out))


def _canary_secret(partition_id: int) -> str:
    return f"drop-canaries-{partition_id}"


def _kept_canaries(lake: Lake, partition_id: int) -> list[str] | None:
    from amzigo_lab.errors import KeyProviderError

    try:
        raw = lake.secret(_canary_secret(partition_id), create=False)
    except KeyProviderError:
        return None
    return [str(v) for v in json.loads(raw)]


def _keep_canaries(lake: Lake, by_partition: dict[int, list[str]]) -> None:
    """Store each partition's canaries wrapped by the master key (one transaction)."""
    from amzigo_lab.lake.keys import wrap

    if not by_partition:
        return
    master = lake.master()
    now = iso(lake.clock())
    rows = []
    for pid, values in by_partition.items():
        name = _canary_secret(pid)
        blob = wrap(master.secret, json.dumps(sorted(set(values))).encode(), f"secret:{name}")
        rows.append((name, blob, master.key_id, now, now))
    with lake.catalog.transaction() as db:
        db.executemany(
            "INSERT INTO secrets(name, ciphertext, master_key_id, created_at, rotated_at) VALUES "
            "(?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
            rows,
        )


def forget_canaries(lake: Lake, partition_ids: Iterable[int]) -> None:
    """Destroy the kept canaries of dropped partitions (secure_delete, WAL truncated)."""
    names = [(_canary_secret(i),) for i in partition_ids]
    with lake.catalog.transaction() as db:
        n = db.executemany("DELETE FROM secrets WHERE name = ?", names).rowcount
    if n:
        lake.catalog.checkpoint()


def scan_for(root: Path, needles: Iterable[str]) -> list[Path]:
    """Files under `root` containing any needle as bytes (a whole-home canary scan)."""
    wanted = [n.encode() for n in needles if n]
    hits: list[Path] = []
    if not wanted:
        return hits
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(w in data for w in wanted):
                hits.append(path)
    return hits


def home_config(lake: Lake) -> dict[str, Any]:
    """The `[compliance]` section of `<home>/config.toml` (organisation, backups)."""
    from amzigo_lab.config import config_sections

    section = config_sections(lake.settings).get("compliance", {})
    return dict(section) if isinstance(section, dict) else {}


def reports_root(lake: Lake) -> Path:
    """The reports folder, resolved as `amzigo report` resolves it (relative: inside the
    home). Reports written elsewhere (`--out`) are found through the derived-output
    registry, where `amzigo report` records every file it writes."""
    return lake.settings.reports_dir.expanduser().resolve()


def exports_root(lake: Lake) -> Path:
    """`<home>/exports` (DSR exports and other exported files)."""
    return lake.settings.home / "exports"
