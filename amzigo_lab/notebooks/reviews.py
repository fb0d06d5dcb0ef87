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
# Reviews
# Logic lives in `amzigo_lab.analysis.reviews` (tested); no buyer data is read.
tenant = ""
start = ""
end = ""
marketplace = ""
currency = ""
comparison = "previous_period"
home = ""
access = "session"
purpose = "review_management"

# %%
from amzigo_lab.analysis import charts, render
from amzigo_lab.analysis.money import marketplace as find_marketplace
from amzigo_lab.analysis.notebook import header, open_source, show_chart, show_html
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.reviews import build_reviews_report

source = open_source(tenant, home, access, purpose)
period = Period.parse(start, end) if start and end else Period.last_days(30)
report = build_reviews_report(source, period, find_marketplace(marketplace))
show_html(header("Reviews", tenant, period.label(), marketplace or "all marketplaces"))

# %% [markdown]
# ## Products with worsening topics

# %%
if report.worsening.height:
    show_html(
        render.table_html(
            report.worsening,
            [
                ("asin", "ASIN", "text"),
                ("marketplace", "Marketplace", "text"),
                ("worsening_topics", "Worsening topics", "text"),
                ("worst_change", "Largest move (points)", "float1"),
            ],
            table_id="worsening",
        )
    )
    show_chart(charts.topic_trends(report.trends, report.worsening["asin"].to_list()))
else:
    show_html(render.note("No topic moved the wrong way by 2 points or more last month."))

# %% [markdown]
# ## Star rating

# %%
if report.ratings.height:
    show_chart(charts.rating_trend(report.ratings))
else:
    show_html(render.note("Amazon reported no star rating for these products."))

# %% [markdown]
# ## Review topics (latest)

# %%
show_html(
    render.table_html(
        report.topics,
        [
            ("asin", "ASIN", "text"),
            ("marketplace", "Mkt", "text"),
            ("sentiment", "Sentiment", "text"),
            ("topic", "Topic", "text"),
            ("review_count", "Reviews", "count"),
            ("occurrence_percentage", "% of reviews", "float1"),
            ("star_rating_impact", "Star impact", "float2"),
        ],
        table_id="topics",
    )
)
show_html(
    render.table_html(
        report.changes,
        [
            ("asin", "ASIN", "text"),
            ("sentiment", "Sentiment", "text"),
            ("topic", "Topic", "text"),
            ("month", "Month", "text"),
            ("occurrence_percentage", "% last month", "float1"),
            ("previous", "% month before", "float1"),
            ("change", "Change", "float1"),
            ("worsening", "Worsening", "text"),
        ],
        table_id="changes",
    )
)

# %% [markdown]
# ## Review requests (order ids and delivery windows only)

# %%
show_html(
    render.table_html(
        report.request_counts,
        [("state", "State", "text"), ("orders", "Orders", "count")],
        table_id="request-counts",
    )
)
eligible = report.requests.filter(report.requests["state"].is_in(["eligible_now", "eligible_later"]))
show_html(
    render.table_html(
        eligible,
        [
            ("amazon_order_id", "Order", "text"),
            ("marketplace", "Mkt", "text"),
            ("state", "State", "text"),
            ("window_opens", "Window opens", "text"),
            ("window_closes", "Window closes", "text"),
        ],
        table_id="requests",
    )
)
show_html(
    render.note(
        "Amazon allows one review request per order, from 5 days after the earliest delivery "
        "date to 30 days after the latest delivery date."
    )
)
