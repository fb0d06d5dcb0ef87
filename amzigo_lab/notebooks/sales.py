# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
now = ""  # the clock of "as of" (ISO timestamp); empty: the current time
engine = "duckdb"  # where the builders compute: duckdb (this kernel) or spark (local[2])

# %%
from amzigo_lab.analysis import charts, render
from amzigo_lab.analysis.money import marketplace as find_marketplace
from amzigo_lab.analysis.notebook import header, open_source, show_chart, show_html
from amzigo_lab.analysis.period import Period, comparison_period, day_rule, parse_now
from amzigo_lab.analysis.sales import (
    PROFIT_DEFINITIONS,
    SalesScope,
    build_sales_report,
    load_costs,
    profit_table,
    units_note,
)

source = open_source(tenant, home, access, purpose, engine)
market = find_marketplace(marketplace)
if start and end:
    period = Period.parse(start, end)
else:
    period = Period.last_days(30, now=parse_now(now), marketplace=market)
scope = SalesScope(period, market, currency or None)
previous = comparison_period(period, comparison)
costs = load_costs(costs_file) if costs_file else None
report = build_sales_report(source, scope, previous, costs)
where = scope.marketplace.code if scope.marketplace else "all marketplaces"
show_html(header("Sales and profit", tenant, period.label(), where))

# %% [markdown]
# ## Key figures

# %%
if report.totals:
    show_html(render.tiles_html(report.tiles, previous.label() if previous else ""))
else:
    show_html(render.note(f"No orders in this period ({period.label()}, {where})."))
for text in report.notes:
    show_html(render.note(text))

# %% [markdown]
# ## Gross profit (per currency, from the product costs)

# %%
has_profit = any(t.profit is not None for t in report.totals.values())
if report.totals:
    show_html(
        render.table_html(
            profit_table(report.totals),
            [
                ("currency", "Currency", "text"),
                ("sales", "Sales", "money"),
                ("refunds", "Refunds", "money"),
                ("fees", "Fees", "money"),
                ("net", "Net proceeds", "money"),
                ("costed_sales", "Sales of costed SKUs", "money"),
                ("cogs", "COGS", "money"),
                ("profit", "Gross profit", "money"),
                ("margin", "Margin", "pct"),
                ("uncosted_units", "Units without cost", "count"),
            ],
            table_id="profit",
        )
    )
show_html(render.note(PROFIT_DEFINITIONS))

# %% [markdown]
# ## Trends

# %%
if report.daily.height:
    show_chart(charts.sales_trend(report.daily))
    show_chart(charts.weekly_sales(report.weekly))
else:
    show_html(render.note("No orders in this period: no sales to chart."))

# %% [markdown]
# ## Traffic and conversion (Sales & Traffic report)

# %%
if not report.traffic.height:
    show_html(
        render.note(
            "No Sales & Traffic data in this period (Amazon publishes a day's report a day or two "
            "later)."
        )
    )
show_html(
    render.table_html(
        report.traffic,
        [
            ("marketplace", "Marketplace", "text"),
            ("sessions", "Sessions", "count"),
            ("page_views", "Page views", "count"),
            ("units", "Units (Sales & Traffic)", "count"),
            ("order_units", "Units (orders)", "count"),
            ("unit_session_pct", "Unit session %", "pct"),
            ("buy_box_pct", "Buy box %", "pct"),
        ],
        table_id="traffic",
    )
)
if report.traffic.height:
    show_html(render.note(units_note(report.traffic)))
if report.traffic_daily.height:
    show_chart(charts.conversion(report.traffic_daily))

# %% [markdown]
# ## Products (per SKU, ranked by sales within each currency)

# %%
if report.skus.height:
    show_chart(charts.top_skus(report.skus))
else:
    show_html(render.note("No orders, refunds or fees in this period: no products to rank."))
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
if has_profit:
    sku_columns += [
        ("unit_cost", "Unit cost", "money"),
        ("cogs", "COGS", "money"),
        ("profit", "Gross profit", "money"),
        ("margin", "Margin", "pct"),
        ("uncosted_units", "Units without cost", "count"),
    ]
show_html(render.table_html(report.skus, sku_columns, table_id="skus"))

# %% [markdown]
# ## Marketplaces (each in its own currency; never added together)

# %%
if not report.marketplaces.height:
    show_html(render.note("No orders, refunds or fees in this period: no marketplace to split."))
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
show_html(render.note(day_rule([market] if market else None)))

# %% [markdown]
# ## Advertising (Sponsored Products; ACoS, TACoS, ROAS)

# %%
import polars as pl

from amzigo_lab.analysis.ads import AFTER_ADS_RULE, DEFINITIONS, build_ads_report, profit_after_ads

ads = build_ads_report(source, scope)
ad_metrics = [
    ("ad_spend", "Ad spend", "money"),
    ("ad_sales", "Ad sales", "money"),
    ("total_sales", "Total sales", "money"),
    ("acos", "ACoS", "pct"),
    ("tacos", "TACoS", "pct"),
    ("roas", "ROAS", "float2"),
]
if ads.empty:
    show_html(render.note(f"No advertising figures: {ads.note} for this period ({period.label()}, {where})."))
else:
    show_html(render.table_html(ads.totals_frame(), [("currency", "Currency", "text"), *ad_metrics], table_id="ads_totals"))
    show_html(
        render.table_html(
            profit_after_ads(report.totals, ads),
            [("currency", "Currency", "text"), ("gross_profit", "Gross profit", "money"), ("ad_spend", "Ad spend", "money"), ("profit_after_ads", "Profit after ad spend", "money")],
            table_id="profit_after_ads",
        )
    )
    show_html(render.note(AFTER_ADS_RULE))
    show_html(render.table_html(ads.daily, [("day", "Day", "text"), ("currency", "Cur.", "text"), *ad_metrics], table_id="ads_daily"))
    show_html(render.table_html(ads.marketplaces, [("marketplace", "Marketplace", "text"), ("currency", "Cur.", "text"), *ad_metrics], table_id="ads_marketplaces"))
    for cur in ads.skus["currency"].unique(maintain_order=True).to_list():  # top SKUs of each currency
        show_html(
            render.table_html(
                ads.skus.filter(pl.col("currency") == cur),
                [("currency", "Cur.", "text"), ("marketplace", "Mkt", "text"), ("seller_sku", "SKU", "text"), *ad_metrics],
                max_rows=15,
                table_id=f"ads_skus_{cur}",
                more=f"{cur} SKUs with ad spend",
            )
        )
    show_html(render.note(DEFINITIONS))
