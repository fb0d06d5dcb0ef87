"""Which tenants a home knows: a grant or a seller binding to any other is a typo until proven
otherwise (issue 12). Checked where the gateway runs `users add` and `users grant`, so it holds
however the CLI (or any other client) calls them.

A tenant is known once the lake has seen it: it has partitions (in any state, dropped ones
too), sync state, or stored SP-API credentials (a refresh token). A tenant about to be
connected is granted with `new_tenant` (`--new-tenant`), which is audited as such.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amzigo_lab.errors import UnknownTenant

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake

__all__ = ["UnknownTenant", "known_tenants", "require_known_tenant"]


def known_tenants(lake: Lake) -> set[str]:
    """Tenants with partitions (any state), sync state or a stored refresh token."""
    from amzigo_lab.source.client import SECRET_REFRESH_PREFIX

    found = lake.catalog.tenants_seen()
    found |= {
        name[len(SECRET_REFRESH_PREFIX) :]
        for name, _c, _r in lake.secret_names()
        if name.startswith(SECRET_REFRESH_PREFIX)
    }
    return found


def require_known_tenant(lake: Lake, tenant: str, *, new_tenant: bool = False) -> None:
    """Raise `UnknownTenant` (naming the known ones and the fix) unless the lake has seen
    `tenant` or `new_tenant` says it is about to be connected."""
    if new_tenant:
        return
    known = known_tenants(lake)
    if tenant in known:
        return
    shown = ", ".join(sorted(known)[:10]) or "none yet"
    raise UnknownTenant(
        f"unknown tenant {tenant!r}: this home's lake has never seen it (known: {shown}); "
        "check the spelling, or add --new-tenant for a tenant not ingested yet"
    )
