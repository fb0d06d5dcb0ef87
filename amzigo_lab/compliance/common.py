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
from amzigo_lab.lake.records import Destructions, Runs

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
                Runs(self.lake.catalog).add_event(self.run_id, event_id)
        return event_id

    def run_event_ids(self) -> list[str]:
        """Every event id recorded on the run so far (including a crashed earlier attempt)."""
        if self.run_id is None:
            return list(self.ids)
        ids = Runs(self.lake.catalog).event_ids(self.run_id)
        return ids if ids is not None else list(self.ids)


# -- resumable runs ------------------------------------------------------------------------
def open_run(lake: Lake, kind: str, reference: str, actor: str, scope: dict[str, Any]) -> str:
    """Resume the unfinished run of this kind and reference, or start a new one; its id."""
    runs = Runs(lake.catalog)
    found = runs.unfinished_id(kind, reference)
    if found is not None:
        return found
    run_id = new_id("run")
    runs.start(run_id, kind, reference, actor, scope, iso(lake.clock()))
    return run_id


def finish_run(lake: Lake, run_id: str, certificate_id: str | None) -> None:
    """Mark a run finished."""
    Runs(lake.catalog).finish(run_id, iso(lake.clock()), certificate_id)


def run_records(lake: Lake, run_id: str) -> list[dict[str, Any]]:
    """Every destruction record of a run (the run id is in each record's reason)."""
    out = []
    for record_id, kind, record_json in Destructions(lake.catalog).tagged(run_id):
        rec = json.loads(record_json)
        rec["record_id"], rec["kind"] = record_id, kind
        out.append(rec)
    return out


def store_record(lake: Lake, kind: str, record: dict[str, Any]) -> str:
    """Store a destruction record that is not a partition drop (files, audit segments)."""
    record_id = "dr-" + uuid.uuid4().hex
    now = iso(lake.clock())
    record = {"record_id": record_id, "performed_at": now, **record}
    Destructions(lake.catalog).add(record_id, kind, json.dumps(record, sort_keys=True), now)
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
    lake.keep_secrets(
        {
            _canary_secret(pid): json.dumps(sorted(set(values))).encode()
            for pid, values in by_partition.items()
        }
    )


def forget_canaries(lake: Lake, partition_ids: Iterable[int]) -> None:
    """Destroy the kept canaries of dropped partitions (secure_delete, WAL truncated)."""
    lake.delete_secrets(_canary_secret(i) for i in partition_ids)


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
