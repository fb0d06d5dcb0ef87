"""Reads by service identities (`svc:dashboard`, `svc:reports`), through the same policy as people.

A service acts for exactly one tenant with the policy's `seller` role bound to it: the policy
decides which datasets it may read for a purpose (never buyer PII: the seller role has no PII
purpose), and each read is audited (`data.read`, allow or deny, with the tenant and purpose).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amzigo_lab.errors import AccessDenied

#: The role a service identity holds for the one tenant it serves.
SERVICE_ROLE = "seller"


@dataclass(frozen=True)
class ServiceReader:
    """A service identity bound to one tenant, checking and auditing its reads."""

    actor: str  # e.g. "svc:dashboard"
    tenant: str
    policy: Any  # amzigo_lab.governance.policy.Policy
    audit: Any  # an AuditSink
    why: str  # the audit reason, e.g. "seller dashboard; tenant from the user's record"

    def check(self, spec: Any, purpose: str) -> None:
        """Allow reading dataset `spec` for `purpose` for this tenant only; else audit the
        denial and raise AccessDenied."""
        from amzigo_lab.governance.policy import Principal

        who = Principal(self.actor, (SERVICE_ROLE,), self.tenant)
        access = self.policy.access(who, spec, purpose)
        if not access.allowed or access.tenants != frozenset({self.tenant}):
            self._emit(spec.name, purpose, "deny", access.reason)
            raise AccessDenied(f"{self.actor} may not read {spec.name}: {access.reason}")

    def record(self, dataset: str, purpose: str, row_count: int | None = None) -> None:
        """Audit an allowed read."""
        self._emit(dataset, purpose, "allow", self.why, row_count)

    def deny(self, dataset: str, purpose: str, reason: str) -> None:
        """Audit a refused read (the caller raises)."""
        self._emit(dataset, purpose, "deny", reason)

    def _emit(
        self, dataset: str, purpose: str, decision: str, reason: str, rows: int | None = None
    ) -> None:
        fields: dict[str, Any] = {"row_count": rows} if rows is not None else {}
        self.audit.emit(
            "data.read",
            actor=self.actor,
            resource=f"dataset:{dataset}",
            tenant=self.tenant,
            purpose=purpose,
            decision=decision,
            reason=reason,
            **fields,
        )


#: The role a seller's dashboard needs, bound to one tenant.
SELLER_ROLE = "seller"


def seller_tenant(gov: Any, username: str, purpose: str) -> tuple[str | None, str]:
    """(tenant, "") for a seller bound to a tenant and allowed `purpose`; else (None, why)."""
    from amzigo_lab.governance.identity import IdentityError

    try:
        record = gov.identity.get(username)
    except IdentityError:
        return None, "unknown user"
    if SELLER_ROLE not in record.roles:
        return None, f"roles {','.join(record.roles) or '-'} have no seller dashboard"
    if not record.tenant:
        return None, "seller account is not bound to a tenant"
    decision = gov.policy.check_purpose(gov.principal(username), purpose)
    if not decision.allowed:
        return None, decision.reason
    return str(record.tenant), ""
