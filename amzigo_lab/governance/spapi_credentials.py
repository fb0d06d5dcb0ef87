"""The SP-API credentials (LWA client id/secret, tenants' refresh tokens), encrypted in the
catalog: stored and rotated (audited), listed by name and age, never by value."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from amzigo_lab.errors import ConfigError
from amzigo_lab.governance.context import Governance
from amzigo_lab.names import tenant_id

WARN_AGE_DAYS = 365


def credential_names(tenant: str | None) -> dict[str, str]:
    """Field -> catalog secret name, matching what the ingestion client reads."""
    from amzigo_lab.source.client import (
        SECRET_CLIENT_ID,
        SECRET_CLIENT_SECRET,
        SECRET_REFRESH_PREFIX,
    )

    names = {"client_id": SECRET_CLIENT_ID, "client_secret": SECRET_CLIENT_SECRET}
    if tenant is not None:
        names["refresh_token"] = SECRET_REFRESH_PREFIX + tenant_id(tenant)
    return names


def set_credentials(
    gov: Governance, tenant: str | None, values: Mapping[str, str], actor: str
) -> list[str]:
    """Store the given credential fields encrypted in the catalog; audit each; return names.

    Connects the home to Amazon for good (source/mode.py): refused on a sandbox home, whose
    lake holds synthetic data."""
    from amzigo_lab.source.mode import mark_amazon, require_not_sandbox

    require_not_sandbox(gov.lake)
    names = credential_names(tenant)
    existing = {n for n, _c, _r in gov.lake.secret_names()}
    stored = []
    for field, value in values.items():
        if field not in names:
            raise ConfigError(f"unknown credential field {field!r}; use {', '.join(names)}")
        if field == "refresh_token" and tenant is None:
            raise ConfigError("a refresh token belongs to a tenant: add --tenant")
        name = names[field]
        gov.lake.put_secret(name, value.encode("utf-8"))
        rotated = name in existing
        gov.emit(
            "credentials.rotated" if rotated else "credentials.set",
            actor=actor,
            resource=f"secret:{name}",
            tenant=tenant or "",
            reason="replaced" if rotated else "created",
        )
        stored.append(name)
    if stored:
        mark_amazon(gov.lake)
    return stored


@dataclass(frozen=True)
class CredentialAge:
    """Name and age of a stored SP-API credential (never its value)."""

    name: str
    created_at: str
    rotated_at: str
    age_days: int

    @property
    def stale(self) -> bool:
        """Older than the yearly rotation rule."""
        return self.age_days >= WARN_AGE_DAYS


def list_credentials(gov: Governance, now: dt.datetime) -> list[CredentialAge]:
    """Stored SP-API credentials and their ages since the last rotation."""
    out = []
    for name, created, rotated in gov.lake.secret_names():
        if not name.startswith("spapi."):
            continue
        when = dt.datetime.fromisoformat(rotated)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        out.append(CredentialAge(name, created, rotated, (now - when).days))
    return out
