"""Amazon deletion notices: delete every live instance of a tenant's data (or a scope) now.

In scope: the tenant's lake partitions and their keys (quarantine included), sync state rows,
registered derived outputs (reports, exports), the tenant's report and cache folders, and its
blind-index entries. Everything is verified and certified (validation by a second person is
required for these certificates). A legal hold still wins: held partitions are kept, reported,
and named in the certificate so compliance can resolve them with Amazon before the deadline.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amzigo_lab.compliance.certificates import (
    existing_certificate,
    issue_certificate,
    signing_key,
)
from amzigo_lab.compliance.common import (
    EventLog,
    finish_run,
    open_run,
    reports_root,
    run_records,
    store_record,
    today,
)
from amzigo_lab.compliance.derived import delete_outputs, outputs
from amzigo_lab.compliance.drops import batches, drop_batch
from amzigo_lab.compliance.holds import holding, trusted_holds
from amzigo_lab.compliance.roles import COMPLIANCE, require_role
from amzigo_lab.lake.records import forget_tenant
from amzigo_lab.names import tenant_id

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake


@dataclass
class NoticeResult:
    """What a deletion notice deleted."""

    notice: str
    tenant: str
    run_id: str
    partitions_dropped: int = 0
    rows_dropped: int = 0
    outputs_deleted: int = 0
    folders_deleted: int = 0
    sync_state_rows: int = 0
    kept_under_hold: list[dict[str, Any]] = field(default_factory=list)
    certificate_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result."""
        return dict(self.__dict__)


def _folders(lake: Lake, tenant: str) -> list[Path]:
    """Unregistered per-tenant folders that may hold copies: reports and caches."""
    home = lake.settings.home
    candidates = [
        reports_root(lake) / tenant,
        home / "cache" / tenant,
        lake.settings.state_dir / "cache" / tenant,
    ]
    return [p for p in candidates if p.exists()]


def delete_scope(
    lake: Lake,
    *,
    tenant: str,
    notice: str,
    actor: str,
    datasets: list[str] | None = None,
    batch_size: int = 500,
) -> NoticeResult:
    """Carry out a deletion notice; resumable (re-run with the same notice reference)."""
    require_role(actor, COMPLIANCE, lake.settings.home)
    tenant_id(tenant)
    for d in datasets or []:
        lake.spec(d)
    signing_key(lake)  # nothing is destroyed that could not be certified
    run_id = open_run(
        lake, "deletion_notice", notice, actor, {"tenant": tenant, "datasets": datasets}
    )
    events = EventLog(lake, actor, run_id=run_id)
    result = NoticeResult(notice, tenant, run_id)
    events.emit(
        "compliance.notice_started",
        resource=f"notice:{notice}",
        tenant=tenant,
        reason=f"datasets={','.join(datasets or ['*'])} run={run_id}",
    )
    on = today(lake)
    holds, _refused = trusted_holds(lake)  # a hold failing its MAC keeps nothing
    parts = [
        p
        for p in lake.catalog.partitions(None, [tenant], states=("live", "dropping"))
        if datasets is None or p.dataset in datasets
    ]
    drop = []
    for p in parts:
        h = holding(holds, p, on) if p.state == "live" else None
        if h is None:
            drop.append(p)
        else:
            result.kept_under_hold.append(
                {"partition_id": p.id, "dataset": p.dataset, "hold": h.id}
            )
    reason = f"deletion notice {notice} [{run_id}]"
    for batch in batches(lake, drop, batch_size):
        _rid, rows = drop_batch(lake, batch, reason, events, "compliance.notice_batch")
        result.partitions_dropped += len(batch)
        result.rows_dropped += rows
        lake.fault_hook("notice_batch_done")
    held = [
        o
        for o in outputs(lake, tenant=tenant, datasets=datasets)
        if any(h.active(on) and h.covers(o.tenant, o.dataset, o.source_date) for h in holds)
    ]
    todo = [o for o in outputs(lake, tenant=tenant, datasets=datasets) if o not in held]
    delete_outputs(lake, todo, reason)
    result.outputs_deleted = len(todo)
    if datasets is None:
        folders = _folders(lake, tenant) if not result.kept_under_hold else []
        for folder in folders:
            shutil.rmtree(folder)
        result.sync_state_rows = forget_tenant(lake.catalog, tenant)
        lake.catalog.checkpoint()
        result.folders_deleted = len(folders)
        if folders or result.sync_state_rows:
            store_record(
                lake,
                "notice_files",
                {
                    "reason": reason,
                    "method": "file deletion; catalog rows deleted (secure_delete)",
                    "folders": [f.name for f in folders],
                    "sync_state_rows": result.sync_state_rows,
                    "verification": {
                        "ok": not any(f.exists() for f in folders),
                        "files_present_after": sum(f.exists() for f in folders),
                    },
                },
            )
    events.emit(
        "compliance.notice_finished",
        resource=f"notice:{notice}",
        tenant=tenant,
        row_count=result.rows_dropped,
        reason=f"{result.partitions_dropped} partitions, {result.outputs_deleted} outputs,"
        f" {len(result.kept_under_hold)} kept under hold",
    )
    records = run_records(lake, run_id)
    done = existing_certificate(lake, "deletion_notice", notice, records)
    if done is not None:
        result.certificate_id = done
        finish_run(lake, run_id, done)
        return result
    cert = issue_certificate(
        lake,
        kind="deletion_notice",
        reference=notice,
        actor=actor,
        records=records,
        event_ids=events.run_event_ids(),
        kept=result.kept_under_hold,
        validation_required=True,
        notes=f"tenant {tenant}, datasets {', '.join(datasets or ['all'])}",
    )
    result.certificate_id = cert.id
    finish_run(lake, run_id, cert.id)
    return result
