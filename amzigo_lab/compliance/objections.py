"""Objections, and the orders review requests must skip (objected or erased buyers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from amzigo_lab.compliance.blind_index import find_subject
from amzigo_lab.compliance.common import EventLog
from amzigo_lab.compliance.roles import COMPLIANCE, require_role
from amzigo_lab.compliance.subject_requests import open_request, update_request
from amzigo_lab.lake.catalog import iso
from amzigo_lab.lake.records import SubjectIndex, SubjectRequests

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake


def object_subject(
    lake: Lake, *, actor: str, tenant: str | None = None, **ident: str | None
) -> int:
    """Record an objection: the subject's orders (now and later) leave review requests."""
    require_role(actor, COMPLIANCE, lake.settings.home)
    subject = find_subject(lake, tenant=tenant, **ident)
    req_id = open_request(lake, "objection", subject, actor)
    SubjectIndex(lake.catalog).record_objection(
        subject.token, req_id, iso(lake.clock()), [(h[0], h[2]) for h in subject.hits]
    )
    EventLog(lake, actor).emit(
        "dsr.objection_recorded",
        resource=f"dsr:{req_id}",
        reason=f"subject={subject.subject_id}",
        row_count=len(subject.orders()),
    )
    update_request(lake, req_id, "completed")
    return len(subject.orders())


def objected_order_ids(lake: Lake, tenant: str) -> set[str]:
    """Order ids whose buyer objected: review requests and further processing skip them."""
    return SubjectIndex(lake.catalog).objected_orders(tenant)


def erased_order_ids(lake: Lake, tenant: str) -> set[str]:
    """Order ids of buyers who had their data erased: review requests skip them.

    The orders the erasure found (recorded with the request), and orders indexed later under
    the erased subject's blind-index token (the same buyer ordering again)."""
    out: set[str] = set()
    tokens: list[str] = []
    for detail in SubjectRequests(lake.catalog).details_of_kind("erasure"):
        out.update(o for t, o in detail.get("orders", []) if t == tenant)
        if detail.get("token"):
            tokens.append(detail["token"])
    index = SubjectIndex(lake.catalog)
    for token in tokens:
        out.update(index.orders_of(token, tenant))
    return out
