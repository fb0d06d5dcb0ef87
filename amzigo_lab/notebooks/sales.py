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
# Sales and profit
# Logic lives in `amzigo_lab.analysis.sales` (tested); this notebook only shows it.
# `amzigo report sales --tenant T --start D --end D` fills the parameters below.
tenant = ""
start = ""
end = ""
marketplace = ""
currency = ""
comparison = "previous_period"
costs_file = ""
home = ""
access = "session"
purpose = "sales_analysis"

# %%
from amzigo_lab.analysis import charts, render
from amzigo_lab.analysis.money import marketplace as find_marketplace
from amzigo_lab.analysis.notebook import header, open_source, show_chart, show_html
from amzigo_lab.analysis.period import Period, comparison_period
from amzigo_lab.analysis.sales import SalesScope, build_sales_report, load_costs

source = open_source(tenant, home, access, purpose)
period = Period.parse(start, end) if start and end else Period.last_days(30)
scope = SalesScope(period, find_marketplace(marketplace), currency or None)
previous = comparison_period(period, comparison)
costs = load_costs(costs_file) if costs_file else None
report = build_sales_report(source, scope, previous, costs)
where = scope.marketplace.code if scope.marketplace else "all marketplaces"
show_html(header("Sales and profit", tenant, period.label(), where))

# %% [markdown]
# ## Key figures

# %%
show_html(render.tiles_html(report.tiles, previous.label() if previous else ""))
for text in report.notes:
    show_html(render.note(text))

# %% [markdown]
# ## Trends

# %%
if report.daily.height:
    show_chart(charts.sales_trend(report.daily))
    show_chart(charts.weekly_sales(report.weekly))
else:
    show_html(render.note("No sales in this period."))

# %% [markdown]
# ## Traffic and conversion (Sales & Traffic report)

# %%
show_html(
    render.table_html(
        report.traffic,
        [
            ("marketplace", "Marketplace", "text"),
            ("sessions", "Sessions", "count"),
            ("page_views", "Page views", "count"),
            ("units", "Units", "count"),
            ("unit_session_pct", "Unit session %", "pct"),
            ("buy_box_pct", "Buy box %", "pct"),
        ],
        table_id="traffic",
    )
)
if report.traffic_daily.height:
    show_chart(charts.conversion(report.traffic_daily))

# %% [markdown]
# ## Products (per SKU, ranked by sales within each currency)

# %%
if report.skus.height:
    show_chart(charts.top_skus(report.skus))
sku_columns = [
    ("rank", "#", "count"),
    ("currency", "Cur.", "text"),
    ("seller_sku", "SKU", "text"),
    ("asin", "ASIN", "text"),
    ("sales", "Sales", "money"),
    ("units", "Units", "count"),
    ("refunds", "Refunds", "money"),
    ("fees", "Fees", "money"),
    ("net", "Net", "money"),
]
if costs is not None:
    sku_columns += [("cogs", "COGS", "money"), ("profit", "Profit", "money"), ("margin", "Margin", "pct")]
show_html(render.table_html(report.skus, sku_columns, table_id="skus"))

# %% [markdown]
# ## Marketplaces (each in its own currency; never added together)

# %%
show_html(
    render.table_html(
        report.marketplaces,
        [
            ("marketplace", "Marketplace", "text"),
            ("currency", "Currency", "text"),
            ("sales", "Sales", "money"),
            ("orders", "Orders", "count"),
            ("units", "Units", "count"),
            ("refunds", "Refunds", "money"),
            ("fees", "Fees", "money"),
            ("net", "Net", "money"),
        ],
        table_id="marketplaces",
    )
)
show_html(
    render.note(
        "Sales, orders and units by purchase date (canceled orders excluded); refunds and fees "
        "by the date Amazon posted them; net = sales - promotions - refunds - fees."
    )
)
