"""What the report notebooks call: open a tenant's data (fail closed), show HTML and SVG.

Two ways in:
- `access="service"`: the `amzigo report` command runs the notebook under the reports service
  identity `svc:reports`, which holds the policy's seller role for the one tenant: each dataset
  is checked by the policy for the report's purpose and its read audited (`ServiceTableSource`
  over `LakeTableSource`); the command audits the run.
- `access="session"`: a person running the notebook interactively reads through their governed
  session (`amzigo login` -> $AMZIGO_SESSION); policy, grants and per-read audit apply.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from amzigo_lab.analysis.source import LakeTableSource, ReportError, TableSource

if TYPE_CHECKING:
    import ibis.expr.types as ir

SERVICE_ACTOR = "svc:reports"
PURPOSES = {
    "sales": "sales_analysis",
    "reviews": "review_management",
    "inventory": "inventory_tracking",
}


class ServiceTableSource:
    """A `LakeTableSource` read as a service identity: each dataset is checked by the policy
    for the purpose and audited once, before it is opened."""

    def __init__(self, inner: LakeTableSource, reader: Any, purpose: str) -> None:
        self.inner = inner
        self.reader = reader  # amzigo_lab.governance.service.ServiceReader
        self.purpose = purpose
        self._checked: set[str] = set()

    def table(self, name: str) -> ir.Table:
        """The tenant's latest-state table of `name`, if the policy allows it (AccessDenied)."""
        if name in self._checked:
            return self.inner.table(name)
        self.reader.check(self.inner.lake.spec(name), self.purpose)
        table = self.inner.table(name)  # opened (and cached) before the read is recorded
        self.reader.record(name, self.purpose)
        self._checked.add(name)
        return table

    def materialize(self, expr: ir.Table) -> ir.Table:
        """As `LakeTableSource.materialize`."""
        return self.inner.materialize(expr)


class WorkbenchTableSource:
    """One tenant's tables from a governed session (`amzigo_lab.governance.session`)."""

    def __init__(self, workbench: Any, tenant: str) -> None:
        self.workbench = workbench
        self.tenant = tenant

    def table(self, name: str) -> ir.Table:
        """The session's latest-state view of `name`, restricted to the tenant."""
        t = self.workbench.table(name)
        return t.filter(t.tenant == self.tenant).drop("tenant")


def open_source(tenant: str, home: str = "", access: str = "service", purpose: str = "") -> Any:
    """A `TableSource` for the tenant; refuses an empty tenant (fail closed)."""
    if not str(tenant or "").strip():
        raise ReportError("the `tenant` parameter is empty: a report needs exactly one tenant")
    from amzigo_lab.config import load_settings

    settings = load_settings(home or None)
    if access == "session":
        from amzigo_lab.governance.session import connect

        return WorkbenchTableSource(connect(purpose=purpose, home=settings), tenant)
    if access != "service":
        raise ReportError(f"unknown access {access!r}: use service or session")
    from amzigo_lab.governance.policy import load_policy
    from amzigo_lab.governance.service import ServiceReader
    from amzigo_lab.home import open_lake

    if purpose not in PURPOSES.values():
        raise ReportError(f"unknown report purpose {purpose!r}: use {sorted(PURPOSES.values())}")
    lake = open_lake(settings)
    known = {p.tenant for p in lake.catalog.partitions()}
    if tenant not in known:
        raise ReportError(f"tenant {tenant!r} has no data in {settings.home}")
    why = "report run by amzigo report / the scheduler; tenant from the command"
    reader = ServiceReader(SERVICE_ACTOR, tenant, load_policy(settings.home), lake.audit, why)
    source: TableSource = ServiceTableSource(LakeTableSource(lake, tenant), reader, purpose)
    return source


def show_html(markup: str) -> None:
    """Display HTML in the notebook."""
    from IPython.display import HTML, display

    display(HTML(markup))


def show_chart(chart: Any) -> None:
    """Display a chart as inline SVG (rendered here, no CDN)."""
    from IPython.display import SVG, display

    from amzigo_lab.analysis.charts import to_svg

    display(SVG(to_svg(chart)))


def header(title: str, tenant: str, period_label: str, extra: str = "") -> str:
    """The report heading."""
    import html

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<h1 style='font-family:sans-serif;margin-bottom:2px'>{html.escape(title)}</h1>"
        f"<p style='font-family:sans-serif;color:#555;margin-top:0'>{html.escape(tenant)} · "
        f"{html.escape(period_label)}{(' · ' + html.escape(extra)) if extra else ''} · "
        f"generated {now}</p>"
    )
