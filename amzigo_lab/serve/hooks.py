"""Voila's pre-launch hook: bind the logged-in seller's tenant into the notebook, or refuse.

Voila calls `prelaunch_hook(req, notebook, cwd)` synchronously before it starts a kernel.
The tenant comes from the user's record in the identity store (never from the URL, a header or
the environment). Users without the seller role and a tenant binding get 403 and no kernel.
The tenant and a short-lived `svc:dashboard` gateway token for it are injected with papermill's
`parameterize_notebook` after the cell tagged `parameters`; a notebook without such a cell is
refused (fail closed). The kernel reads through the gateway with that token only.
"""

from __future__ import annotations

import copy
from typing import Any

from tornado import web

from amzigo_lab.serve.kernels import REQUEST_SESSION, REQUEST_USER

#: The purpose a dashboard view is recorded under (the seller role allows it).
DASHBOARD_PURPOSE = "sales_analysis"


class NoParametersCell(web.HTTPError):
    """The notebook has no cell tagged `parameters`: nothing safe to inject into."""

    def __init__(self) -> None:
        super().__init__(500, "dashboard notebook has no cell tagged 'parameters'")


def normalise(notebook: Any) -> Any:
    """A copy of `notebook`: every cell has a `metadata.tags` list; `metadata.papermill` exists."""
    nb = copy.deepcopy(notebook)
    nb.metadata.setdefault("papermill", {})
    for cell in nb.cells:
        cell.setdefault("metadata", {})
        tags = cell.metadata.get("tags")
        if tags is None:
            cell.metadata["tags"] = []
        elif isinstance(tags, str):
            cell.metadata["tags"] = [tags]
        else:
            cell.metadata["tags"] = list(tags)
    return nb


def inject_parameters(notebook: Any, parameters: dict[str, Any]) -> Any:
    """`notebook` with `parameters` injected after its `parameters` cell (refused without one)."""
    from papermill.parameterize import parameterize_notebook

    nb = normalise(notebook)
    if not any("parameters" in c.metadata["tags"] for c in nb.cells):
        raise NoParametersCell()
    return parameterize_notebook(nb, parameters, comment="Parameters injected by amzigo serve")


#: How long a dashboard kernel's token lives (it is used once, at load, then revoked).
DASHBOARD_TOKEN_TTL_S = 600.0


def dashboard_token(home: Any, tenant: str) -> str:
    """A `svc:dashboard` token for `tenant` from the home's gateway (503 when it is down)."""
    from amzigo_lab.client import service
    from amzigo_lab.errors import AmzigoError
    from amzigo_lab.serve.dashboard import DATASETS, SERVICE_ACTOR

    purposes = sorted(set(DATASETS.values()))
    try:
        minted = service.mint(
            home, SERVICE_ACTOR, tenant, purposes, DASHBOARD_TOKEN_TTL_S, require_data=False
        )
        return minted.token
    except AmzigoError as exc:
        import logging

        logging.getLogger("amzigo.serve").error("dashboard token for %s: %s", tenant, exc)
        raise web.HTTPError(503, "the data service is unavailable; try again shortly") from None


def inventory_settings(home: Any, tenant: str) -> dict[str, Any]:
    """The stock-advice parameters of `tenant` from the home's `[inventory]` settings, as the
    inventory report uses them (so the dashboard agrees). Unreadable or invalid settings are
    logged and the defaults used: the dashboard still opens."""
    from amzigo_lab.analysis.generate import inventory_parameters
    from amzigo_lab.analysis.inventory import InventoryParams
    from amzigo_lab.config import load_settings

    try:
        return inventory_parameters(load_settings(home), tenant)
    except Exception as exc:  # advice falls back to the defaults; the operator sees why
        import logging

        logging.getLogger("amzigo.serve").error("[inventory] settings for %s: %s", tenant, exc)
        return InventoryParams().as_parameters()


def prelaunch_hook(req: Any, notebook: Any, cwd: str) -> Any:
    """Return the notebook bound to the seller's tenant; raise 403 for anybody else."""
    user = req.current_user
    provider = req.settings.get("identity_provider")
    if user is None or provider is None or not hasattr(provider, "directory"):
        raise web.HTTPError(403, "log in first")
    tenant, why = provider.directory.seller_binding(user.username, DASHBOARD_PURPOSE)
    name = str(req.request.path).strip("/") or "dashboard"
    if tenant is None:
        provider.audit(
            "dashboard.open",
            actor=user.username,
            resource=f"dashboard:{name}",
            purpose=DASHBOARD_PURPOSE,
            decision="deny",
            reason=why,
        )
        raise web.HTTPError(403, "this dashboard is for seller accounts bound to a tenant")
    token = dashboard_token(provider.directory.home, tenant)
    inventory = inventory_settings(provider.directory.home, tenant)
    nb = inject_parameters(notebook, {"tenant": tenant, "token": token, "inventory": inventory})
    REQUEST_USER.set(user.username)  # the owner of the kernel Voila starts next
    from amzigo_lab.serve.identity import COOKIE_NAME

    raw = req.get_secure_cookie(COOKIE_NAME, max_age_days=1)
    REQUEST_SESSION.set(raw.decode() if raw else None)  # this request's, never an earlier one
    provider.audit(
        "dashboard.open",
        actor=user.username,
        resource=f"dashboard:{name}",
        tenant=tenant,
        purpose=DASHBOARD_PURPOSE,
        decision="allow",
        reason="tenant from the user record",
    )
    return nb
