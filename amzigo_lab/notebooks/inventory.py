# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
# Inventory and reorder planning
# Logic lives in `amzigo_lab.analysis.inventory` (tested).
tenant = ""
start = ""
end = ""
marketplace = ""
currency = ""
comparison = "previous_period"
home = ""
access = "session"
purpose = "inventory_tracking"
velocity_days = 30
default_lead_time = 30
lead_times: dict[str, int] = {}
safety_days = 7.0
overstock_days = 90.0

# %%
from amzigo_lab.analysis import charts, render
from amzigo_lab.analysis.inventory import InventoryParams, build_inventory_report
from amzigo_lab.analysis.money import marketplace as find_marketplace
from amzigo_lab.analysis.notebook import header, open_source, show_chart, show_html
from amzigo_lab.analysis.period import Period

source = open_source(tenant, home, access, purpose)
period = Period.parse(start, end) if start and end else Period.last_days(30)
params = InventoryParams(
    velocity_days=int(velocity_days),
    default_lead_time=int(default_lead_time),
    lead_times={str(k): int(v) for k, v in dict(lead_times).items()},
    safety_days=float(safety_days),
    overstock_days=float(overstock_days),
)
report = build_inventory_report(source, period.end, params, find_marketplace(marketplace))
show_html(
    header(
        "Inventory and reorder planning",
        tenant,
        f"as of {period.end.isoformat()}",
        f"velocity over {params.velocity_days} days",
    )
)

# %% [markdown]
# ## Status

# %%
show_html(
    render.table_html(
        report.counts,
        [("status", "Status", "text"), ("skus", "SKUs", "count")],
        table_id="status-counts",
    )
)
if report.table.height:
    show_chart(charts.days_of_cover(report.table))

# %% [markdown]
# ## Stock by SKU, most urgent first

# %%
show_html(
    render.table_html(
        report.table,
        [
            ("status", "Status", "text"),
            ("marketplace", "Mkt", "text"),
            ("seller_sku", "SKU", "text"),
            ("asin", "ASIN", "text"),
            ("on_hand", "On hand", "count"),
            ("inbound", "Inbound", "count"),
            ("reserved", "Reserved", "count"),
            ("velocity", "Units/day", "float2"),
            ("days_of_cover", "Days of cover", "float1"),
            ("lead_time", "Lead time", "count"),
            ("reorder_point", "Reorder point", "float1"),
            ("reorder_date", "Reorder by", "text"),
        ],
        table_id="inventory",
    )
)
show_html(
    render.note(
        "Status: out = none on hand; critical < 3 days of cover; low 3-7 days; overstock > "
        f"{params.overstock_days:.0f} days or no sales. Reorder point = units/day x lead time "
        f"+ {params.safety_days:g} days of safety stock; reorder by = when stock on hand plus "
        "inbound falls to the reorder point."
    )
)
