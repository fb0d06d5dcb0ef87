"""Finishing interrupted deletion notices and data-subject requests, each in its own run.

A deletion notice or an erasure/rectification killed mid-run leaves its compliance run (or
DSR request) unfinished and perhaps partitions `dropping`. `resume_scoped` re-runs each exactly
as its command would (same run id, same scope), so its own certificate covers everything it
destroyed. The retention purge calls it before taking any `dropping` partition into its own
run; `recovery.resume_interrupted` (`amzigo doctor --fix`) calls it first of all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from amzigo_lab.compliance.notices import delete_scope
from amzigo_lab.compliance.subject_rewrites import resume_requests
from amzigo_lab.lake.records import Runs, SubjectRequests

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake


@dataclass
class Recovery:
    """What `resume_scoped` or `recovery.resume_interrupted` finished."""

    purges: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    dsr_requests: list[str] = field(default_factory=list)
    recovered_run: str | None = None
    certificates: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        """Whether anything was resumed."""
        return bool(self.purges or self.notices or self.dsr_requests or self.recovered_run)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "purge_runs": self.purges,
            "deletion_notice_runs": self.notices,
            "dsr_requests": self.dsr_requests,
            "recovery_run": self.recovered_run,
            "certificates": self.certificates,
        }


def pending_scoped(lake: Lake) -> bool:
    """Whether a deletion notice or an erasure/rectification was interrupted."""
    if Runs(lake.catalog).unfinished("deletion_notice"):
        return True
    in_progress = SubjectRequests(lake.catalog).in_progress_ids()
    stage = lake.settings.state_dir / "dsr-staging"
    return bool(in_progress) or (stage.exists() and any(stage.glob("*.bin")))


def resume_scoped(lake: Lake) -> Recovery:
    """Finish interrupted deletion notices and data-subject requests (each in its own run)."""
    out = Recovery()
    if not pending_scoped(lake):
        return out
    for run_id, notice, actor, scope in Runs(lake.catalog).unfinished("deletion_notice"):
        res = delete_scope(
            lake, tenant=scope["tenant"], notice=notice, actor=actor, datasets=scope.get("datasets")
        )
        out.notices.append(run_id)
        if res.certificate_id:
            out.certificates.append(res.certificate_id)
    out.dsr_requests = resume_requests(lake)
    for req in out.dsr_requests:
        detail = SubjectRequests(lake.catalog).detail(req)
        cert = detail.get("certificate") if detail else None
        if cert:
            out.certificates.append(cert)
    return out
