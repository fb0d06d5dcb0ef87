"""Data-subject requests as recorded: kind, pseudonymous subject, one-month deadline, status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from amzigo_lab.compliance.blind_index import Subject
from amzigo_lab.compliance.common import ComplianceError, EventLog, new_id, today
from amzigo_lab.lake.catalog import iso
from amzigo_lab.lake.records import SubjectRequests
from amzigo_lab.retention_rules import add_months

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake


def open_request(lake: Lake, kind: str, subject: Subject, actor: str, **detail: Any) -> str:
    """Record a received request with its one-month deadline; its id."""
    req_id = new_id(f"dsr-{kind}")
    received = today(lake)
    SubjectRequests(lake.catalog).open(
        req_id,
        kind,
        subject.subject_id,
        iso(lake.clock()),
        add_months(received, 1).isoformat(),
        actor,
        detail,
    )
    EventLog(lake, actor).emit(
        f"dsr.{kind}_received", resource=f"dsr:{req_id}", reason=f"subject={subject.subject_id}"
    )
    return req_id


def update_request(lake: Lake, req_id: str, status: str | None = None, **detail: Any) -> None:
    """Merge `detail` into a request's and, with `status`, set it (completed: with the time)."""
    requests = SubjectRequests(lake.catalog)
    stored = requests.detail(req_id)
    if stored is None:
        raise ComplianceError(f"no data-subject request {req_id!r}")
    completed = iso(lake.clock()) if status == "completed" else None
    requests.update(req_id, {**stored, **detail}, status, completed)


def list_requests(lake: Lake) -> list[dict[str, Any]]:
    """Every request: kind, subject id, received date, one-month deadline, status."""
    rows = SubjectRequests(lake.catalog).rows()
    on = today(lake).isoformat()
    return [
        {
            "id": r[0],
            "kind": r[1],
            "subject_id": r[2],
            "received": r[3][:10],
            "deadline": r[4],
            "status": r[5],
            "actor": r[6],
            "completed_at": r[7],
            "overdue": r[5] != "completed" and on > r[4],
        }
        for r in rows
    ]
