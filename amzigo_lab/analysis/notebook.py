"""What the report notebooks call: open a tenant's data (fail closed), show HTML and SVG.

Two ways in:
- `access="service"`: the `amzigo report` command asks the gateway for a `svc:reports` token
  bound to the one tenant and the report's purpose and gives it to the kernel ($AMZIGO_TOKEN);
  the gateway checks each dataset against the policy, reduces it to its latest state and
  audits the read (`GatewayTableSource`); the command audits the run. The kernel holds no key.
- `access="session"`: a person running the notebook interactively reads through their governed
  session (`amzigo login` -> $AMZIGO_SESSION); policy, grants and per-read audit apply.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from amzigo_lab.analysis.source import ReportError

if TYPE_CHECKING:
    import ibis.expr.types as ir

SERVICE_ACTOR = "svc:reports"
PURPOSES = {
    "sales": "sales_analysis",
    "reviews": "review_management",
    "inventory": "inventory_tracking",
    "account_health": "sales_analysis",  # account-performance metrics (data policy: sales)
}


class WorkbenchTableSource:
    """One tenant's tables from a governed session (`amzigo_lab.governance.session`)."""

    def __init__(self, workbench: Any, tenant: str) -> None:
        self.workbench = workbench
        self.tenant = tenant

    def table(self, name: str) -> ir.Table:
        """The session's latest-state view of `name`, restricted to the tenant."""
        t = self.workbench.table(name)
        return t.filter(t.tenant == self.tenant).drop("tenant")


#: Where report builders compute: "duckdb" (in the kernel, over Arrow the gateway sends) or
#: "spark" (a local[2] Spark session reading the lake's files with keys unwrapped per job by
#: the gateway; `amzigo_lab.spark`, extra `amzigo-lab[spark]`).
ENGINES = ("duckdb", "spark")


def open_source(
    tenant: str,
    home: str = "",
    access: str = "service",
    purpose: str = "",
    engine: str = "duckdb",
) -> Any:
    """A `TableSource` for the tenant; refuses an empty tenant (fail closed)."""
    if not str(tenant or "").strip():
        raise ReportError("the `tenant` parameter is empty: a report needs exactly one tenant")
    if engine not in ENGINES:
        raise ReportError(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    from amzigo_lab.client.workbench import home_path

    where = home_path(home or None)  # a path only: a kernel never reads the home
    if access == "session":
        from amzigo_lab.client.workbench import connect

        workbench = connect(purpose=purpose, home=where)
        if engine == "spark":
            return spark_source(workbench, tenant, purpose)
        return WorkbenchTableSource(workbench, tenant)
    if access != "service":
        raise ReportError(f"unknown access {access!r}: use service or session")
    if purpose not in PURPOSES.values():
        raise ReportError(f"unknown report purpose {purpose!r}: use {sorted(PURPOSES.values())}")
    if engine == "spark":
        return spark_source(service_client(where), tenant, purpose)
    return gateway_source(tenant, where, purpose)


def service_client(home: Any, token: str = "") -> Any:
    """A gateway client with the run's service token ($AMZIGO_TOKEN, set by `amzigo report`
    and the scheduler for this kernel only)."""
    import os

    from amzigo_lab.client import protocol
    from amzigo_lab.client.transport import GatewayClient

    token = token or os.environ.get(protocol.TOKEN_ENV, "")
    if not token:
        raise ReportError(
            "no service token for this report run: run it with `amzigo report`, which asks the "
            "gateway for one, or use access='session' after `amzigo login`"
        )
    return GatewayClient(protocol.default_address(home), token)


def gateway_source(tenant: str, home: Any, purpose: str, token: str = "") -> Any:
    """The tenant's tables from the gateway, with the run's service token."""
    from amzigo_lab.analysis.source import GatewayTableSource

    return GatewayTableSource(service_client(home, token), tenant, purpose)


def spark_source(connection: Any, tenant: str, purpose: str) -> Any:
    """The tenant's tables on a local[2] Spark session, each dataset planned by the gateway for
    `connection` (the run's service client or a governed session)."""
    try:
        from amzigo_lab.spark import session
        from amzigo_lab.spark.reports import SparkTableSource
    except ImportError as exc:
        raise ReportError(
            f"engine spark needs the spark extra: pip install 'amzigo-lab[spark]' ({exc})"
        ) from None
    return SparkTableSource(session(app_name="amzigo-report"), connection, tenant, purpose)


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
