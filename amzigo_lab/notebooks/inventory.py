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
# `amzigo report inventory` fills lead times and safety stock from the home's [inventory].
tenant = ""
start = ""
end = ""
marketplace = ""
currency = ""
comparison = "previous_period"
home = ""
access = "session"
purpose = "inventory_tracking"
now = ""  # the clock of "as of" (ISO timestamp); empty: the current time
velocity_days = 30
default_lead_time = 30
lead_times: dict[str, int] = {}
safety_days = 7.0
safety_days_by_sku: dict[str, float] = {}
safety_stock: dict[str, int] = {}
order_days = 30
overstock_days = 90.0

# %%
from amzigo_lab.analysis import charts, render
from amzigo_lab.analysis.inventory import STATUS_RULES, build_inventory_report, params_from_parameters
from amzigo_lab.analysis.money import marketplace as find_marketplace
from amzigo_lab.analysis.notebook import header, open_source, show_chart, show_html
from amzigo_lab.analysis.period import Period, day_rule, parse_now

source = open_source(tenant, home, access, purpose)
clock = parse_now(now)
market = find_marketplace(marketplace)
period = Period.parse(start, end) if start and end else Period.last_days(30, now=clock, marketplace=market)
params = params_from_parameters(
    {
        "velocity_days": velocity_days,
        "default_lead_time": default_lead_time,
        "lead_times": lead_times,
        "safety_days": safety_days,
        "safety_days_by_sku": safety_days_by_sku,
        "safety_stock": safety_stock,
        "order_days": order_days,
        "overstock_days": overstock_days,
    }
)
report = build_inventory_report(source, period.end, params, market, clock)
show_html(
    header(
        "Inventory and reorder planning",
        tenant,
        f"as of {period.end.isoformat()}",
        f"velocity over {params.velocity_days} days",
    )
)
if report.table.height:
    show_html(render.note(f"As of {period.end.isoformat()}: {report.stock_label()}."))

# %% [markdown]
# ## Status

# %%
if report.table.height:
    show_html(
        render.table_html(
            report.counts,
            [("status", "Status", "text"), ("skus", "SKUs", "count")],
            table_id="status-counts",
        )
    )
    show_chart(charts.days_of_cover(report.table))
else:
    show_html(render.note(report.reason))

# %% [markdown]
# ## Stock by SKU, most urgent first

# %%
if report.table.height:
    # the snapshot's date is in the note above; a column only when SKUs' snapshots differ
    several = report.table["snapshot_date"].n_unique() > 1
    show_html(
        render.table_html(
            report.table,
            [
                ("status", "Status", "text"),
                ("marketplace", "Mkt", "text"),
                ("seller_sku", "SKU", "text"),
                ("asin", "ASIN", "text"),
                *([("snapshot_date", "Snapshot", "text")] if several else []),
                ("on_hand", "On hand", "count"),
                ("inbound", "Inbound", "count"),
                ("reserved", "Reserved", "count"),
                ("velocity", "Units/day", "float2"),
                ("days_of_cover", "Days of cover", "float1"),
                ("lead_time", "Lead time", "count"),
                ("safety_stock", "Safety stock", "float1"),
                ("reorder_point", "Reorder point", "float1"),
                ("reorder_quantity", "Reorder qty", "count"),
                ("reorder_date", "Reorder by", "text"),
            ],
            table_id="inventory",
        )
    )
else:
    show_html(render.note(f"No SKUs to list: {report.reason}"))
show_html(
    render.note(
        "Status: "
        + STATUS_RULES.format(overstock=params.overstock_days)
        + f" Units/day = units ordered in the {params.velocity_days} days to "
        f"{period.end.isoformat()}, canceled orders excluded. Lead time: {params.default_lead_time} "
        f"days unless set per SKU; safety stock: {params.safety_days:g} days of sales unless set "
        "per SKU. Reorder point = units/day x lead time + safety stock; reorder qty brings on "
        f"hand plus inbound back to the reorder point plus {params.order_days} days of sales; "
        "reorder by = today when on hand plus inbound is below the reorder point (then the "
        "reorder qty is what to order now), otherwise the first day it is projected to fall "
        "below it, always a later day (reorder qty 0: nothing to order yet). Stock is the latest "
        "snapshot on or before the period's end; when the period ends at the latest complete "
        "day, a snapshot taken today is the current position."
    )
)
show_html(render.note(day_rule([market] if market else None)))
