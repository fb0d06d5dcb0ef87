"""The retention purge: drop everything past its purge date that no legal hold keeps.

Each partition's purge date was fixed at write time (retention_rules.py), so a purge only
chooses partitions from the catalog and drops them in batches through `Lake.drop_partitions`:
cost follows partitions, not bytes. The same run deletes expired derived outputs (reports,
exports), quarantine partitions (an ordinary dataset under the 18-month rule) and audit segments
older than 12 months, then signs one certificate for everything it destroyed.

A partition whose catalog row fails its MAC (edited outside amzigo-lab, lake/rowmac.py) is
neither dropped nor kept on the row's word: the purge drops everything else, emits a
`compliance.purge_refused_tampered` alert per such row and fails naming them.

Legal holds and derived outputs carry MACs too. A hold whose row fails (inserted, scope or
`until` edited outside amzigo-lab) is not honoured: the data it claims follows its own purge
date, a `compliance.hold_refused_tampered` alert is written per such hold and the run fails
naming it after doing the rest. A derived output whose row fails is never kept on its word: it
is treated as due now, its file deleted and certified (unless its untrusted path points into the
home's own files: then it is left and named), a `compliance.output_refused_tampered` alert is
written per row and the run fails naming it.

Idempotent and resumable: a run is recorded in `compliance_runs`; a crash leaves it unfinished
(and maybe partitions `dropping`), and the next purge resumes the same run, finishes those
partitions whatever their date, and certifies the whole run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from amzigo_lab.compliance.certificates import (
    existing_certificate,
    issue_certificate,
    signing_key,
)
from amzigo_lab.compliance.common import (
    SYSTEM_ACTOR,
    EventLog,
    finish_run,
    open_run,
    run_records,
    store_record,
    today,
)
from amzigo_lab.compliance.derived import (
    DerivedOutput,
    delete_outputs,
    output_path,
    output_rows,
    outputs,
    tamper_safe_path,
)
from amzigo_lab.compliance.drops import batches, drop_batch
from amzigo_lab.compliance.holds import expire_holds, holding, trusted_holds
from amzigo_lab.compliance.scoped_recovery import resume_scoped
from amzigo_lab.lake.catalog import ALL_STATES
from amzigo_lab.lake.records import DerivedOutputs, Runs
from amzigo_lab.lake.rowmac import RowProblem, TamperedRow
from amzigo_lab.retention_rules import add_months

if TYPE_CHECKING:
    from amzigo_lab.lake.catalog import Partition
    from amzigo_lab.lake.store import Lake

AUDIT_RETENTION_MONTHS = 12


def category(lake: Lake, p: Partition) -> str:
    """`pii`, `quarantine` or `amazon` (what the plan and the certificate call it)."""
    if p.dataset == "quarantine":
        return "quarantine"
    return "pii" if lake.spec(p.dataset).pii else lake.spec(p.dataset).origin


def _part(lake: Lake, p: Partition, **extra: Any) -> dict[str, Any]:
    return {
        "partition_id": p.id,
        "dataset": p.dataset,
        "tenant": p.tenant,
        "ingest_date": p.ingest_date.isoformat(),
        "purge_date": p.purge_date.isoformat(),
        "rows": p.row_count,
        "state": p.state,
        "category": category(lake, p),
        **extra,
    }


@dataclass
class PurgePlan:
    """What a purge as of a date would drop and keep."""

    as_of: dt.date
    drop: list[Partition] = field(default_factory=list)
    kept: list[tuple[Partition, str]] = field(default_factory=list)
    outputs_drop: list[DerivedOutput] = field(default_factory=list)
    outputs_kept: list[tuple[DerivedOutput, str]] = field(default_factory=list)
    audit_cutoff: dt.datetime | None = None
    #: live or dropping partitions whose catalog row fails its MAC (edited outside amzigo-lab):
    #: neither dropped nor kept on the row's word; the purge alerts and fails on them
    refused: list[tuple[Partition, RowProblem]] = field(default_factory=list)
    #: legal holds whose row fails its MAC: not honoured (what they claim follows its own date)
    holds_refused: list[RowProblem] = field(default_factory=list)
    #: derived outputs whose row fails its MAC: treated as due now (deleted unless the path is
    #: in the home's own files), alerted on, and the purge fails naming them
    outputs_refused: list[tuple[DerivedOutput, RowProblem]] = field(default_factory=list)

    @property
    def tampered(self) -> bool:
        """Whether any row the purge relies on failed its MAC."""
        return bool(self.refused or self.holds_refused or self.outputs_refused)

    def to_dict(self, lake: Lake) -> dict[str, Any]:
        """JSON-ready plan (identifiers, dates and counts only)."""
        by_cat: dict[str, dict[str, int]] = {}
        for p in self.drop:
            c = by_cat.setdefault(category(lake, p), {"partitions": 0, "rows": 0})
            c["partitions"] += 1
            c["rows"] += p.row_count
        return {
            "as_of": self.as_of.isoformat(),
            "drop": [_part(lake, p) for p in self.drop],
            "drop_summary": by_cat,
            "kept_under_hold": [_part(lake, p, hold=h) for p, h in self.kept],
            "outputs_drop": [_out(o) for o in self.outputs_drop],
            "outputs_kept_under_hold": [{**_out(o), "hold": h} for o, h in self.outputs_kept],
            "audit_segments_before": self.audit_cutoff.isoformat() if self.audit_cutoff else None,
            "refused_tampered": [
                _part(lake, p, check=rp.check, detail=rp.detail) for p, rp in self.refused
            ],
            "holds_refused_tampered": [
                {"hold": rp.row_id, "tenant": rp.tenant, "check": rp.check}
                for rp in self.holds_refused
            ],
            "outputs_refused_tampered": [
                {"output_id": o.id, "tenant": o.tenant, "check": rp.check}
                for o, rp in self.outputs_refused
            ],
        }


def _out(o: DerivedOutput) -> dict[str, Any]:
    return {
        "output_id": o.id,
        "kind": o.kind,
        "tenant": o.tenant,
        "dataset": o.dataset,
        "purge_date": o.purge_date.isoformat(),
    }


def plan_purge(lake: Lake, as_of: dt.date | None = None) -> PurgePlan:
    """Choose what to drop: live partitions due by `as_of` and not held, plus any `dropping`."""
    as_of = as_of or today(lake)
    plan = PurgePlan(as_of)
    # only holds whose row verifies keep anything; a forged or edited hold is refused
    holds, plan.holds_refused = trusted_holds(lake)
    bad_outputs = {
        rp.row_id: rp for rp in DerivedOutputs(lake.catalog).check(lake.row_mac_key())
    }  # rows of every state: `deleted_at` set outside would otherwise hide a file
    plan.outputs_refused = [(o, bad_outputs[o.id]) for o in output_rows(lake, bad_outputs)]
    # A row edited outside amzigo-lab (purge_date moved to 2099, or a live partition marked
    # `dropped` so no purge sees it) cannot be trusted either way: it is neither dropped nor
    # kept on its word, but refused and alerted on. Rows of every state are checked.
    tampered: dict[int, RowProblem] = {}
    for rp in lake.check_partition_rows():
        if rp.table == "partitions":
            tampered.setdefault(int(rp.row_id), rp)
    for p in lake.catalog.partitions(states=ALL_STATES):
        if p.id in tampered:
            plan.refused.append((p, tampered[p.id]))
        elif p.state == "dropped":
            continue
        elif p.state == "dropping":  # an interrupted drop: its key may be gone, always finish it
            plan.drop.append(p)
        elif p.purge_date <= as_of:
            h = holding(holds, p, as_of)
            if h is None:
                plan.drop.append(p)
            else:
                plan.kept.append((p, h.id))
    for o in outputs(lake, due_by=as_of):
        if o.id in bad_outputs:
            continue
        h = next(
            (h for h in holds if h.active(as_of) and h.covers(o.tenant, o.dataset, o.source_date)),
            None,
        )
        if h is None:
            plan.outputs_drop.append(o)
        else:
            plan.outputs_kept.append((o, h.id))
    cutoff = add_months(as_of, -AUDIT_RETENTION_MONTHS)
    plan.audit_cutoff = dt.datetime.combine(cutoff, dt.time(), dt.UTC)
    return plan


@dataclass
class PurgeResult:
    """What a purge did."""

    plan: PurgePlan
    dry_run: bool
    run_id: str | None = None
    partitions_dropped: int = 0
    rows_dropped: int = 0
    outputs_deleted: int = 0
    audit_segments_dropped: int = 0
    audit_note: str = ""
    record_ids: list[str] = field(default_factory=list)
    certificate_id: str | None = None
    resumed: bool = False

    def to_dict(self, lake: Lake) -> dict[str, Any]:
        """JSON-ready result."""
        return {
            "dry_run": self.dry_run,
            "run_id": self.run_id,
            "resumed": self.resumed,
            "partitions_dropped": self.partitions_dropped,
            "rows_dropped": self.rows_dropped,
            "outputs_deleted": self.outputs_deleted,
            "audit_segments_dropped": self.audit_segments_dropped,
            "audit_note": self.audit_note,
            "destruction_records": self.record_ids,
            "certificate_id": self.certificate_id,
            "plan": self.plan.to_dict(lake),
        }


def purge(
    lake: Lake,
    as_of: dt.date | None = None,
    *,
    dry_run: bool = False,
    actor: str = SYSTEM_ACTOR,
    batch_size: int = 500,
    audit_log: Any = None,
) -> PurgeResult:
    """Run (or, with `dry_run`, only plan) the retention purge as of a date."""
    as_of = as_of or today(lake)
    if not dry_run:
        signing_key(lake)  # nothing is destroyed that could not be certified
    if not dry_run and lake.catalog.partitions(states=("dropping",)):
        # an interrupted deletion notice or erasure finishes in its own run (and certificate)
        # before this purge would take its `dropping` partitions into the purge's run
        resume_scoped(lake)
    plan = plan_purge(lake, as_of)
    events = EventLog(lake, actor)
    if dry_run:
        events.emit(
            "compliance.purge_planned",
            reason=f"as_of={as_of} drop={len(plan.drop)} kept={len(plan.kept)}"
            + (f" refused_tampered={len(plan.refused)}" if plan.refused else "")
            + (f" holds_refused={len(plan.holds_refused)}" if plan.holds_refused else "")
            + (f" outputs_refused={len(plan.outputs_refused)}" if plan.outputs_refused else ""),
            row_count=sum(p.row_count for p in plan.drop),
        )
        return PurgeResult(plan, dry_run=True)
    unfinished = Runs(lake.catalog).count_unfinished("purge")
    run_id = open_run(lake, "purge", "retention", actor, {"as_of": as_of.isoformat()})
    events.run_id = run_id
    result = PurgeResult(plan, dry_run=False, run_id=run_id, resumed=bool(unfinished))
    expire_holds(lake, as_of, events)
    events.emit(
        "compliance.purge_started",
        resource=f"run:{run_id}",
        reason=f"as_of={as_of} drop={len(plan.drop)} kept_under_hold={len(plan.kept)}"
        + (" resumed" if result.resumed else ""),
    )
    reason = f"retention purge [{run_id}] as of {as_of}"
    for batch in batches(lake, plan.drop, batch_size):
        _record_id, rows = drop_batch(lake, batch, reason, events, "compliance.purge_batch")
        result.partitions_dropped += len(batch)
        result.rows_dropped += rows
        lake.fault_hook("purge_batch_done")
    for p, hold_id in plan.kept:
        events.emit(
            "compliance.purge_kept",
            resource=f"hold:{hold_id}",
            tenant=p.tenant,
            reason=f"partition {p.id} {p.dataset} due {p.purge_date}",
        )
    if plan.outputs_drop:
        delete_outputs(lake, plan.outputs_drop, reason)
        result.outputs_deleted = len(plan.outputs_drop)
        events.emit(
            "compliance.purge_outputs",
            row_count=len(plan.outputs_drop),
            reason=f"{len(plan.outputs_drop)} derived output(s) deleted",
        )
    doomed = [  # rows failing their MAC: due now, whatever they say (files still present)
        o
        for o, _rp in plan.outputs_refused
        if output_path(lake, o.path).exists() and tamper_safe_path(lake, o.path)
    ]
    if doomed:
        delete_outputs(lake, doomed, reason + " (derived row failed its MAC: due now)")
        result.outputs_deleted += len(doomed)
    result.audit_segments_dropped, result.audit_note = _purge_audit(
        lake, plan, audit_log, reason, events
    )
    records = run_records(lake, run_id)
    result.record_ids = [r["record_id"] for r in records]
    kept = [_part(lake, p, hold=h) for p, h in plan.kept]
    kept += [{**_out(o), "hold": h} for o, h in plan.outputs_kept]
    events.emit(
        "compliance.purge_finished",
        resource=f"run:{run_id}",
        row_count=result.rows_dropped,
        reason=f"{result.partitions_dropped} partitions, {result.outputs_deleted} "
        f"outputs, {result.audit_segments_dropped} audit segments",
    )
    if records and (done := existing_certificate(lake, "purge", run_id, records)):
        result.certificate_id = done
    elif records:
        cert = issue_certificate(
            lake,
            kind="purge",
            reference=run_id,
            actor=actor,
            records=records,
            event_ids=events.run_event_ids(),
            kept=kept,
        )
        result.certificate_id = cert.id
    finish_run(lake, run_id, result.certificate_id)
    if plan.tampered:
        _refuse_tampered(lake, plan, events, run_id, result.certificate_id)
    return result


def _refuse_tampered(
    lake: Lake, plan: PurgePlan, events: EventLog, run_id: str, certificate_id: str | None
) -> None:
    """Alert on each tampered row the purge refused, then fail (the rest was purged)."""
    for p, rp in plan.refused:
        events.emit(
            "compliance.purge_refused_tampered",
            resource=f"partition:{p.id}",
            tenant=p.tenant,
            decision="deny",
            reason=f"ALERT {rp.message()}; restore the catalog from backup"[:250],
        )
    for rp in plan.holds_refused:
        events.emit(
            "compliance.hold_refused_tampered",
            resource=f"hold:{rp.row_id}",
            tenant=rp.tenant,
            decision="deny",
            reason=f"ALERT {rp.message()}; hold not honoured, the data it claims followed its "
            "own purge date; restore the catalog from backup"[:250],
        )
    for o, rp in plan.outputs_refused:
        done = (
            "path in the home's own files: NOT deleted"
            if not tamper_safe_path(lake, o.path)
            else "treated as due now: deleted and certified"
        )
        events.emit(
            "compliance.output_refused_tampered",
            resource=f"output:{o.id}",
            tenant=rp.tenant,
            decision="deny",
            reason=f"ALERT {rp.message()}; {done}; restore the catalog from backup"[:250],
        )
    raise TamperedRow(
        [rp for _p, rp in plan.refused]
        + plan.holds_refused
        + [rp for _o, rp in plan.outputs_refused],
        "purge",
        note=f"Everything else due was purged (run {run_id}, certificate "
        f"{certificate_id or 'none'}); after restoring, run `amzigo purge` again.",
    )


def _purge_audit(
    lake: Lake, plan: PurgePlan, audit_log: Any, reason: str, events: EventLog
) -> tuple[int, str]:
    """Drop audit segments older than 12 months through the audit log's own crypto-shred."""
    log = audit_log if audit_log is not None else getattr(lake.audit, "log", None)
    if log is None or not hasattr(log, "drop_segments_before") or plan.audit_cutoff is None:
        return 0, "no audit log is wired to this lake: audit segments not examined"
    try:
        victims = log.drop_segments_before(plan.audit_cutoff)
    except ValueError as exc:  # the log refuses cutoffs younger than its minimum retention
        return 0, f"audit segments kept: {exc}"
    if not victims:
        return 0, f"no audit segment ends before {plan.audit_cutoff.date()}"
    store_record(
        lake,
        "audit_segments",
        {
            "reason": reason,
            "method": "crypto-shred of the segment key + file deletion (AuditLog)",
            "segments": [
                {
                    "segment_id": v.segment_id,
                    "first_seq": v.first_seq,
                    "records": v.records,
                    "sha256": v.sha256,
                }
                for v in victims
            ],
            "verification": {
                "ok": not any((log.directory / f"{v.segment_id}.log").exists() for v in victims),
                "files_present_after": sum(
                    (log.directory / f"{v.segment_id}.log").exists() for v in victims
                ),
            },
        },
    )
    events.emit(
        "compliance.purge_audit",
        resource="audit:log",
        row_count=len(victims),
        reason=f"{len(victims)} audit segment(s) before {plan.audit_cutoff.date()}",
    )
    return len(victims), f"{len(victims)} audit segment(s) dropped"
