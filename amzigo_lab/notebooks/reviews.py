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
now = ""  # the clock of "as of" (ISO timestamp); empty: the current time

# %%
import polars as pl

from amzigo_lab.analysis import charts, render
from amzigo_lab.analysis.money import marketplace as find_marketplace
from amzigo_lab.analysis.notebook import header, open_source, show_chart, show_html
from amzigo_lab.analysis.period import Period, parse_now
from amzigo_lab.analysis.reviews import (
    WORSENING_POINTS,
    build_reviews_report,
    top_topics,
    with_state_labels,
)

TOP = 12  # rows per table; the rest is counted in a "+N more" note
PANELS = 9  # small multiples of the worst-moving topics
LINES = 8  # products in the star-rating chart (one colour each)

source = open_source(tenant, home, access, purpose)
clock = parse_now(now)
market = find_marketplace(marketplace)
period = Period.parse(start, end) if start and end else Period.last_days(30, now=clock, marketplace=market)
report = build_reviews_report(source, period, market, now=clock)
show_html(header("Reviews", tenant, period.label(), marketplace or "all marketplaces"))
counts = report.counts()
latest = report.latest_ratings()
complaints = top_topics(report.topics, "negative", report.titles)
first_product = (
    charts.product_label(latest["title"][0], latest["asin"][0], latest["marketplace"][0])
    if latest.height
    else ""
)
top_complaint, complaint_product = "–", "no complaint topics reported"
if complaints.height:
    top = complaints.row(0, named=True)
    top_complaint = top["topic"]
    complaint_product = f"{top['review_count']:,} reviews · " + charts.product_label(
        top["title"], top["asin"], top["marketplace"], 24
    )
show_html(
    render.facts_html(
        [
            ("Products worsening", f"{counts['products_worsening']:,}", "ASIN × marketplace"),
            ("Topics worsening", f"{counts['topics_worsening']:,}", "last month vs the one before"),
            (
                ("Lowest star rating", f"{latest['star_rating'][0]:.1f} ★", first_product)
                if latest.height
                else ("Top complaint", top_complaint, complaint_product)
            ),
            (
                "Review requests open",
                f"{counts['review_requests_eligible']:,}",
                f"eligible now or soon, of {counts['review_requests_checked']:,} orders checked",
            ),
        ]
    )
)

# %% [markdown]
# ## Products with worsening topics

# %%
if report.worsening.height:
    show_html(
        render.note(
            f"A topic is worsening when its share of reviews moved {WORSENING_POINTS:g} points or "
            "more the wrong way last month against the month before: complaints (▲) up, praise "
            "(▼) down. Each marketplace is judged on its own. Worst first."
        )
    )
    show_html(
        render.table_html(
            report.worsening,
            [
                ("title", "Product", "text"),
                ("asin", "ASIN", "text"),
                ("marketplace", "Mkt", "text"),
                ("moves", "Worsening topics (share of reviews, change in points)", "moves"),
            ],
            table_id="worsening",
            max_rows=TOP,
            more="products with worsening topics (not shown)",
        )
    )
    show_chart(charts.topic_trends(report.trends, report.worst.head(PANELS)))
    if report.worst.height > PANELS:
        show_html(
            render.note(
                f"The {PANELS} largest moves of {report.worst.height} worsening topics are drawn."
            )
        )
else:
    show_html(
        render.note(
            f"No topic moved the wrong way by {WORSENING_POINTS:g} points or more last month."
        )
    )

# %% [markdown]
# ## Star rating

# %%
if report.ratings.height:
    shown = latest.head(LINES).select("asin", "marketplace")
    show_chart(
        charts.rating_trend(report.ratings.join(shown, on=["asin", "marketplace"]), report.titles)
    )
    if latest.height > shown.height:
        show_html(
            render.note(
                f"The {shown.height} lowest-rated of {latest.height} rated products are drawn."
            )
        )
else:
    show_html(render.note("Amazon reported no star rating for these products."))

# %% [markdown]
# ## What reviewers mention most (latest topics)

# %%
for sentiment, heading in (("negative", "Complaints"), ("positive", "Praise")):
    rows = (
        complaints
        if sentiment == "negative"
        else top_topics(report.topics, sentiment, report.titles)
    )
    show_html(f"<h4 style='font-family:sans-serif;margin:8px 0 2px'>{heading}</h4>")
    show_html(
        render.table_html(
            rows,
            [
                ("topic", "Topic", "text"),
                ("title", "Product", "text"),
                ("asin", "ASIN", "text"),
                ("marketplace", "Mkt", "text"),
                ("review_count", "Reviews", "count"),
                ("occurrence_percentage", "% of reviews", "float1"),
                ("star_rating_impact", "Star impact", "float2"),
            ],
            table_id=f"topics-{sentiment}",
            max_rows=TOP,
            more=f"{heading.lower()} (fewer reviews)",
        )
    )

# %% [markdown]
# ## Review requests (order ids and delivery windows only)

# %%
show_html(
    render.table_html(
        with_state_labels(report.request_counts),
        [("state_label", "State", "text"), ("orders", "Orders", "count")],
        table_id="request-counts",
    )
)
eligible = report.requests.filter(pl.col("state").is_in(["eligible_now", "eligible_later"]))
show_html(
    render.table_html(
        with_state_labels(eligible),
        [
            ("amazon_order_id", "Order", "text"),
            ("marketplace", "Mkt", "text"),
            ("state_label", "State", "text"),
            ("window_opens", "Window opens", "text"),
            ("window_closes", "Window closes", "text"),
        ],
        table_id="requests",
        max_rows=TOP,
        more="eligible orders (not shown)",
    )
)
show_html(
    render.note(
        "Amazon allows one review request per order, from 5 days after the earliest delivery "
        "date to 30 days after the latest delivery date."
    )
)
