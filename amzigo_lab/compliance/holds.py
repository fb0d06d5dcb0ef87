"""Legal holds: the only way to keep data past its purge date.

A hold names a tenant, optionally a dataset and an ingestion-date range, a reason, who placed it
and until when. It covers partitions (and derived outputs) in its scope until `until` has passed
or it is released; it then expires by itself. Every change is audited.

Every row carries a MAC (lake/rowmac.py), set in the transaction that writes it and checked
before any update. A hold whose row fails its MAC (inserted or edited outside amzigo-lab) is
never honoured: `trusted_holds` leaves it out, and the purge alerts on it and fails naming it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from amzigo_lab.compliance.common import ComplianceError, EventLog, new_id, today
from amzigo_lab.compliance.roles import COMPLIANCE, require_role
from amzigo_lab.lake.catalog import iso
from amzigo_lab.lake.records import Holds
from amzigo_lab.lake.rowmac import RowProblem
from amzigo_lab.names import tenant_id

if TYPE_CHECKING:
    from amzigo_lab.lake.catalog import Partition
    from amzigo_lab.lake.store import Lake


@dataclass(frozen=True)
class LegalHold:
    """One legal hold."""

    id: str
    tenant: str
    dataset: str | None
    from_date: dt.date | None
    to_date: dt.date | None
    reason: str
    until: dt.date
    created_by: str
    created_at: str
    released_by: str | None
    released_at: str | None

    def active(self, on: dt.date) -> bool:
        """Whether the hold still holds on `on` (not released, `until` not passed)."""
        return self.released_at is None and on <= self.until

    def covers(self, tenant: str, dataset: str, day: dt.date) -> bool:
        """Whether data of this tenant/dataset with this (ingestion) date is in scope."""
        return (
            tenant == self.tenant
            and (self.dataset is None or dataset == self.dataset)
            and (self.from_date is None or day >= self.from_date)
            and (self.to_date is None or day <= self.to_date)
        )

    @property
    def scope(self) -> str:
        """Human-readable scope."""
        rng = (
            f" {self.from_date or '...'}..{self.to_date or '...'}"
            if (self.from_date or self.to_date)
            else ""
        )
        return f"tenant={self.tenant} dataset={self.dataset or '*'}{rng}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        for k in ("from_date", "to_date", "until"):
            d[k] = None if d[k] is None else d[k].isoformat()
        return d


def _d(v: str | None) -> dt.date | None:
    return None if v is None else dt.date.fromisoformat(v)


def list_holds(lake: Lake, include_inactive: bool = True) -> list[LegalHold]:
    """Every hold (or only the active ones)."""
    rows = Holds(lake.catalog).rows()
    holds = [
        LegalHold(
            r["id"],
            r["tenant"],
            r["dataset"],
            _d(r["from_date"]),
            _d(r["to_date"]),
            r["reason"],
            dt.date.fromisoformat(r["until"]),
            r["created_by"],
            r["created_at"],
            r["released_by"],
            r["released_at"],
        )
        for r in rows
    ]
    if include_inactive:
        return holds
    on = today(lake)
    return [h for h in holds if h.active(on)]


def trusted_holds(lake: Lake) -> tuple[list[LegalHold], list[RowProblem]]:
    """Every hold whose row verifies, and the problems of those that do not (never honoured)."""
    problems = Holds(lake.catalog).check(lake.row_mac_key())
    bad = {p.row_id for p in problems}
    return [h for h in list_holds(lake) if h.id not in bad], problems


def add_hold(
    lake: Lake,
    *,
    tenant: str,
    reason: str,
    until: dt.date,
    actor: str,
    dataset: str | None = None,
    from_date: dt.date | None = None,
    to_date: dt.date | None = None,
) -> LegalHold:
    """Place a hold (compliance role only); audited."""
    require_role(actor, COMPLIANCE, lake.settings.home)
    return place_hold(
        lake, tenant=tenant, reason=reason, until=until, actor=actor, dataset=dataset,
        from_date=from_date, to_date=to_date,
    )  # fmt: skip


def place_hold(
    lake: Lake,
    *,
    tenant: str,
    reason: str,
    until: dt.date,
    actor: str,
    dataset: str | None = None,
    from_date: dt.date | None = None,
    to_date: dt.date | None = None,
) -> LegalHold:
    """Place a hold for a caller that checked the actor's right itself (the gateway's incident
    isolation: a compliance or security officer); audited like `add_hold`."""
    tenant_id(tenant)
    if dataset is not None:
        lake.spec(dataset)
    if not reason.strip():
        raise ComplianceError("a legal hold needs a reason (e.g. the case or request reference)")
    if until < today(lake):
        raise ComplianceError(f"--until {until} is in the past")
    if from_date and to_date and from_date > to_date:
        raise ComplianceError(f"--from {from_date} is after --to {to_date}")
    hold_id = new_id("hold")
    now = iso(lake.clock())
    Holds(lake.catalog).add(  # with the row's MAC, in the same transaction
        {
            "id": hold_id,
            "tenant": tenant,
            "dataset": dataset,
            "from_date": from_date and from_date.isoformat(),
            "to_date": to_date and to_date.isoformat(),
            "reason": reason.strip(),
            "until": until.isoformat(),
            "created_by": actor,
            "created_at": now,
        },
        lake.row_mac_key(),
    )
    EventLog(lake, actor).emit(
        "compliance.hold_added",
        resource=f"hold:{hold_id}",
        tenant=tenant,
        reason=f"dataset={dataset or '*'} until={until}",
    )
    return next(h for h in list_holds(lake) if h.id == hold_id)


def release_hold(lake: Lake, hold_id: str, *, actor: str) -> LegalHold:
    """Release a hold (compliance role only); audited. The next purge drops what it kept."""
    require_role(actor, COMPLIANCE, lake.settings.home)
    return lift_hold(lake, hold_id, actor=actor)


def lift_hold(lake: Lake, hold_id: str, *, actor: str) -> LegalHold:
    """Release a hold for a caller that checked the actor's right itself (an incident's close
    releases the holds its isolation placed); audited like `release_hold`."""
    hold = next((h for h in list_holds(lake) if h.id == hold_id), None)
    if hold is None:
        raise ComplianceError(f"no legal hold {hold_id!r}; see `amzigo hold list`")
    if hold.released_at is not None:
        return hold
    # checked before it changes (TamperedRow): a row edited outside is never re-sealed
    Holds(lake.catalog).release(hold_id, actor, iso(lake.clock()), lake.row_mac_key())
    EventLog(lake, actor).emit(
        "compliance.hold_released", resource=f"hold:{hold_id}", tenant=hold.tenant
    )
    return next(h for h in list_holds(lake) if h.id == hold_id)


def expire_holds(lake: Lake, on: dt.date, events: EventLog) -> list[LegalHold]:
    """Record (once) the holds whose `until` has passed; audited as `compliance.hold_expired`.

    Holds whose row fails its MAC are left as they are (never re-sealed): the purge refuses them.
    """
    mac_key = lake.row_mac_key()
    table = Holds(lake.catalog)
    rows = table.lapsed(on.isoformat(), mac_key)
    if rows:
        done = set(table.expire([r[0] for r in rows], iso(lake.clock()), mac_key))
        rows = [r for r in rows if r[0] in done]
        for hold_id, tenant in rows:
            events.emit("compliance.hold_expired", resource=f"hold:{hold_id}", tenant=tenant)
    expired = {r[0] for r in rows}
    return [h for h in list_holds(lake) if h.id in expired]


def holding(holds: list[LegalHold], p: Partition, on: dt.date) -> LegalHold | None:
    """The first active hold covering a partition, if any."""
    for h in holds:
        if h.active(on) and h.covers(p.tenant, p.dataset, p.ingest_date):
            return h
    return None
