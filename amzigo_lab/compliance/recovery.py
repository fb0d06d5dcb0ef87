"""Recovery of interrupted destructions, always inside a compliance run (issue 12, item 3).

A purge, deletion notice or erasure killed mid-run leaves its compliance run (or DSR request)
unfinished and perhaps partitions `dropping`. `amzigo doctor --fix` must not finish those drops
on its own: the destruction would then be certified by nobody (or by a later certificate that
only covers part of it). `resume_interrupted` instead resumes each unfinished operation exactly
as re-running its command would (same run id, same reason, canaries sampled from every
partition whose key is still present) so the operation's own certificate covers everything it
destroyed. Partitions left `dropping` by no known operation (a raw `Lake.drop_partitions`
killed mid-way) are finished in a `recovery` run of their own and certified as such.
Interrupted deletion notices and data-subject requests are finished first, by
`resume_scoped` (compliance/scoped_recovery.py, named here too; the purge calls it as well).

`uncovered_partitions` (compliance/coverage.py, named here too) lists destroyed partitions that
no certificate covers, for `amzigo certificate verify` and `amzigo doctor`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from amzigo_lab.compliance.common import (
    SYSTEM_ACTOR,
    ComplianceError,
    EventLog,
    finish_run,
    open_run,
    run_records,
)
from amzigo_lab.compliance.coverage import Uncovered, uncovered_partitions
from amzigo_lab.compliance.drops import batches, drop_batch
from amzigo_lab.compliance.retention import purge
from amzigo_lab.compliance.scoped_recovery import Recovery, pending_scoped, resume_scoped
from amzigo_lab.lake.records import Destructions, Runs, SubjectRequests

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake

RECOVERY_ACTOR = "system:recovery"

__all__ = [
    "RECOVERY_ACTOR",
    "Recovery",
    "Uncovered",
    "pending_scoped",
    "resume_interrupted",
    "resume_scoped",
    "uncovered_partitions",
]


def _unfinished(lake: Lake, kind: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    return Runs(lake.catalog).unfinished(kind)


def _certificate_of(lake: Lake, run_id: str) -> str | None:
    return Runs(lake.catalog).certificate_of(run_id)


def resume_interrupted(lake: Lake) -> Recovery:
    """Finish every interrupted destruction inside its own compliance run and certify it.

    Deletion notices and erasures first (a purge would otherwise take their `dropping`
    partitions into its own run), then purges, then partitions no operation claims."""
    out = resume_scoped(lake)
    for run_id, _ref, actor, scope in _unfinished(lake, "purge"):
        as_of = dt.date.fromisoformat(scope["as_of"]) if scope.get("as_of") else None
        result = purge(lake, as_of, actor=actor or SYSTEM_ACTOR)
        out.purges.append(result.run_id or run_id)
        if result.certificate_id:
            out.certificates.append(result.certificate_id)
    orphaned = lake.catalog.partitions(states=("dropping",))
    if orphaned or _unfinished(lake, "recovery"):
        cert_id, run_id = _recover_orphaned(lake)
        out.recovered_run = run_id
        if cert_id:
            out.certificates.append(cert_id)
    late = _certify_late(lake)
    if late:
        out.certificates.append(late)
    return out


def _certify_late(lake: Lake) -> str | None:
    """Certify destruction records no certificate covers (partitions dropped outside any
    compliance run, e.g. by an older `doctor --fix`), from their stored records, noted as such."""
    from amzigo_lab.compliance.certificates import issue_certificate

    # records of an operation still running (another process) are its own to certify
    busy = [f"[{i}]" for i in Runs(lake.catalog).unfinished_ids()]
    busy += [f"[{i}]" for i in SubjectRequests(lake.catalog).in_progress_ids()]
    stored = Destructions(lake.catalog)
    records = []
    for rid in sorted({u.record_id for u in uncovered_partitions(lake) if u.record_id}):
        found = stored.get(rid)
        if found is None:  # the partition row names a record that is not there
            raise ComplianceError(f"destruction record {rid} is not in the catalog")
        kind, rec_json = found
        rec = json.loads(rec_json)
        if any(tag in str(rec.get("reason", "")) for tag in busy):
            continue
        rec["record_id"], rec["kind"] = rid, kind
        records.append(rec)
    if not records:
        return None
    ids = [r["record_id"] for r in records]
    events = EventLog(lake, RECOVERY_ACTOR)
    events.emit(
        "compliance.late_certification",
        resource="destructions",
        row_count=sum(len(r.get("partitions", [])) for r in records),
        reason=f"{len(records)} destruction record(s) no certificate covered",
    )
    cert = issue_certificate(
        lake,
        kind="recovery",
        reference="late-" + "-".join(ids)[:60],
        actor=RECOVERY_ACTOR,
        records=records,
        event_ids=events.ids,
        notes="certified late from the stored destruction records: these partitions were "
        "destroyed outside a compliance run (e.g. by an older `amzigo doctor --fix`), without "
        "canaries; the verification shown is the one recorded at destruction time",
    )
    return cert.id


def _recover_orphaned(lake: Lake) -> tuple[str | None, str]:
    """Drop partitions left `dropping` by no known operation, in a certified `recovery` run."""
    from amzigo_lab.compliance.certificates import existing_certificate, issue_certificate

    run_id = open_run(lake, "recovery", "interrupted-drop", RECOVERY_ACTOR, {})
    events = EventLog(lake, RECOVERY_ACTOR, run_id=run_id)
    parts = lake.catalog.partitions(states=("dropping",))
    events.emit(
        "compliance.recovery_started",
        resource=f"run:{run_id}",
        reason=f"{len(parts)} partition(s) left dropping by an interrupted drop",
    )
    reason = f"resume interrupted drop [{run_id}]"
    for batch in batches(lake, parts, 500):
        drop_batch(lake, batch, reason, events, "compliance.recovery_batch")
    records = run_records(lake, run_id)
    cert_id = existing_certificate(lake, "recovery", run_id, records) if records else None
    if records and cert_id is None:
        cert = issue_certificate(
            lake,
            kind="recovery",
            reference=run_id,
            actor=RECOVERY_ACTOR,
            records=records,
            event_ids=events.run_event_ids(),
            notes="partitions left `dropping` by an interrupted drop outside any compliance run",
        )
        cert_id = cert.id
    finish_run(lake, run_id, cert_id)
    return cert_id, run_id
