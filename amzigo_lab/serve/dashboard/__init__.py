"""The seller dashboard, as the notebook's kernel runs it (logic here, notebook thin).

`SellerDashboard.open(tenant, token=...)` is the governed, tenant-bound read, served by the
gateway: the pre-launch hook injects the tenant from the logged-in user's record and a
`svc:dashboard` token the server minted for that tenant; the gateway checks the token, asks the
policy which datasets the service may read for each purpose (sales_analysis,
inventory_tracking, review_management; never buyer PII), reduces ONLY that tenant's partitions
to their latest state and writes one `data.read` audit event per dataset with its row count.
The kernel receives Arrow into a private in-memory DuckDB and holds no key; widget updates
then query memory only (fast).

Rendering is offline and light: KPI tiles and tables are the report builders' HTML, charts are
small hand-written SVGs (importing altair costs 1.7 s and vl-convert's first call 0.6 s on this
machine, which alone would break the 3 s first-render target).

The package, by concern: `loading` (the governed read from the gateway into memory), `view`
(what the pickers select, and its bounds), `sections` (`SellerDashboard`: the HTML sections),
`svg` (the charts) and `widgets` (the ipywidgets page and `show`, which the notebook calls).
"""

from amzigo_lab.serve.dashboard.loading import (
    DATASETS,
    SERVICE_ACTOR,
    ArrowSource,
    LoadedData,
    load,
    require_tenant,
)
from amzigo_lab.serve.dashboard.sections import (
    ALERT_ROWS,
    ALERT_STATUSES,
    Sections,
    SellerDashboard,
)
from amzigo_lab.serve.dashboard.svg import bar_svg, line_svg
from amzigo_lab.serve.dashboard.view import DEFAULT_DAYS, MAX_DAYS, View, bound_view
from amzigo_lab.serve.dashboard.widgets import (
    BOXES,
    DashboardWidgets,
    box_html,
    report_failure,
    show,
)

__all__ = [
    "ALERT_ROWS",
    "ALERT_STATUSES",
    "BOXES",
    "DATASETS",
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "SERVICE_ACTOR",
    "ArrowSource",
    "DashboardWidgets",
    "LoadedData",
    "Sections",
    "SellerDashboard",
    "View",
    "bar_svg",
    "bound_view",
    "box_html",
    "line_svg",
    "load",
    "report_failure",
    "require_tenant",
    "show",
]
