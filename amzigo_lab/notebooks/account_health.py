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
# Account health
# Logic lives in `amzigo_lab.analysis.account_health` (tested); no buyer data is read.
tenant = ""
start = ""
end = ""
marketplace = ""
currency = ""
comparison = "previous_period"
home = ""
access = "session"
purpose = "sales_analysis"
now = ""  # the clock of "as of" (ISO timestamp); empty: the current time

# %%
from IPython.display import SVG, display

from amzigo_lab.analysis import render
from amzigo_lab.analysis.account_health import (
    RULES,
    build_account_health_report,
    trend_charts,
    windows_as_of,
)
from amzigo_lab.analysis.money import marketplace as find_marketplace
from amzigo_lab.analysis.notebook import header, open_source, show_html
from amzigo_lab.analysis.period import Period, parse_now

source = open_source(tenant, home, access, purpose)
clock = parse_now(now)
market = find_marketplace(marketplace)
period = Period.parse(start, end) if start and end else Period.last_days(30, now=clock, marketplace=market)
judged_to = windows_as_of(period, clock, market)
report = build_account_health_report(source, judged_to, market)
show_html(
    header(
        "Account health",
        tenant,
        f"as of {period.end.isoformat()}",
        marketplace or "all marketplaces",
    )
)
if not report.empty and judged_to is None:
    newest = max(report.current["window_end"].to_list())
    show_html(
        render.note(
            "The period reaches the present: each metric is judged on Amazon's newest report "
            f"(its windows end {newest:%Y-%m-%d}, the day before Amazon made it)."
        )
    )
if report.empty:
    show_html(render.note(report.reason))
else:
    counts = report.counts
    statuses = ", ".join(
        f"{r['marketplace']} {r['account_status'] or '–'}" for r in report.ratings.to_dicts()
    )
    ratings = ", ".join(
        f"{r['marketplace']} {r['ahr_status'] or '–'}" for r in report.ratings.to_dicts()
    )
    show_html(
        render.facts_html(
            [
                ("Targets missed", f"{counts['breach']:,}", "latest window"),
                ("Worsening toward a target", f"{counts['trending']:,}", "two windows in a row"),
                ("Near a target", f"{counts['near']:,}", "within 20 % of it"),
                ("Policy violations", f"{report.violation_count:,}", "latest window; target 0"),
                ("Account status", statuses or "–", f"rating: {ratings or '–'}"),
            ]
        )
    )

# %% [markdown]
# ## Metrics against Amazon's targets

# %%
if report.empty:
    show_html(render.note(report.reason))
else:
    show_html(render.note(RULES))
    show_html(
        render.table_html(
            report.current,
            [
                ("verdict_label", "Verdict", "text"),
                ("marketplace", "Mkt", "text"),
                ("label", "Metric", "text"),
                ("channel", "Channel", "text"),
                ("rate_pct", "Rate %", "float2"),
                ("target", "Target", "text"),
                ("recent", "Last windows", "text"),
                ("defects", "Count", "count"),
                ("total", "Of", "count"),
                ("window", "Latest window", "text"),
            ],
            table_id="health-metrics",
        )
    )

# %% [markdown]
# ## Metrics that need attention, window by window

# %%
flagged = trend_charts(report, ("breach", "trending", "near"))
if report.empty:
    show_html(render.note(report.reason))
elif flagged:
    for chart in flagged:
        display(SVG(chart))
    show_html(
        render.note(
            "Each point is one reporting window (the date is its last day); the dashed red line "
            "is Amazon's target."
        )
    )
else:
    show_html(render.note("Every metric is comfortably within Amazon's targets."))

# %% [markdown]
# ## Order defects by cause (latest window)

# %%
if report.empty:
    show_html(render.note(report.reason))
elif report.defects.height:
    show_html(
        render.table_html(
            report.defects,
            [
                ("marketplace", "Mkt", "text"),
                ("channel", "Channel", "text"),
                ("total", "Orders", "count"),
                ("defects", "With defects", "count"),
                ("negative_feedback", "Negative feedback", "count"),
                ("claims", "A-to-z claims", "count"),
                ("chargebacks", "Chargebacks", "count"),
                ("rate_pct", "Order defect rate %", "float2"),
            ],
            table_id="health-defects",
        )
    )
    show_html(
        render.note(
            "An order counts once however many defects it has; Amazon's target is below 1 % "
            "for Amazon-fulfilled (AFN) and merchant-fulfilled (MFN) orders separately, over "
            "60 days."
        )
    )
else:
    show_html(render.note("Amazon reported no order defect rate in these windows."))

# %% [markdown]
# ## Policy violations and warnings

# %%
if report.empty:
    show_html(render.note(report.reason))
elif report.violations.height:
    show_html(
        render.table_html(
            report.violations,
            [
                ("marketplace", "Mkt", "text"),
                ("kind", "Violation or warning", "text"),
                ("defects_count", "Count", "count"),
                ("status", "Amazon status", "text"),
                ("window", "Window", "text"),
            ],
            table_id="health-violations",
        )
    )
else:
    show_html(
        render.note("No policy violations and no warnings in the latest window (target: 0).")
    )
