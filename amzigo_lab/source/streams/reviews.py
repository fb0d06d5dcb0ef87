"""customerFeedback 2024-06-01 item review topics and trends -> review_topics, review_trends.

A 204 (no review data for the item yet) arrives as `{}` and means no rows, not a bad record.
Aggregates only: review snippets (free text written by buyers) are not stored. The topics are
daily aggregates, so a tenant's reviews are fetched at most once per day (two calls per ASIN and
marketplace); `--since` forces a refresh.
"""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

import datetime as dt
from typing import Any

from amzigo_lab.source.client import MalformedResponse
from amzigo_lab.source.streams.base import (
    Collector,
    StreamContext,
    StreamResult,
    integer,
    number,
    ts,
)
from amzigo_lab.source.streams.catalog import seller_asins

SENTIMENTS = (("positive", "positiveTopics"), ("negative", "negativeTopics"))


def map_topics(
    body: dict[str, Any], asin: str, mp: str, today: dt.date
) -> dict[str, list[dict[str, Any]]]:
    """Rows of one getItemReviewTopics response (a 204, `{}`, is no data: no rows)."""
    rows = []
    if not body:
        return {"review_topics": []}
    topics = body["topics"] or {}
    for sentiment, field in SENTIMENTS:
        for t in topics.get(field) or []:
            metrics = t.get("asinMetrics") or {}
            rows.append(
                {
                    "asin": asin,
                    "marketplace_id": mp,
                    "fetched_on": today,
                    "sentiment": sentiment,
                    "topic": t["topic"],
                    "review_count": integer(metrics.get("numberOfMentions")),
                    "occurrence_percentage": number(metrics.get("occurrencePercentage")),
                    "star_rating_impact": number(metrics.get("starRatingImpact")),
                    "star_rating": None,  # not reported per topic by this API
                }
            )
    return {"review_topics": rows}


def map_trends(
    body: dict[str, Any], asin: str, mp: str, today: dt.date
) -> dict[str, list[dict[str, Any]]]:
    """Rows of one getItemReviewTrends response (one per topic and month; `{}` is no data)."""
    rows = []
    if not body:
        return {"review_trends": []}
    trends = body["reviewTrends"] or {}
    for sentiment, field in SENTIMENTS:
        for t in trends.get(field) or []:
            for m in t.get("trendMetrics") or []:
                start = ts((m.get("dateRange") or {})["startDate"])
                assert start is not None
                rows.append(
                    {
                        "asin": asin,
                        "marketplace_id": mp,
                        "fetched_on": today,
                        "sentiment": sentiment,
                        "topic": t["topic"],
                        "month": start.date().replace(day=1),
                        "occurrence_percentage": number(
                            (m.get("asinMetrics") or {}).get("occurrencePercentage")
                        ),
                    }
                )
    return {"review_trends": rows}


class ReviewsStream:
    """Topics and monthly trends for every ASIN the tenant sells, per marketplace."""

    name = "reviews"
    datasets = ("review_topics", "review_trends")

    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """Two calls per (ASIN, marketplace)."""
        from sp_api.api import CustomerFeedback

        from amzigo_lab.source.ratelimit import _status

        state = ctx.store.get_state(ctx.tenant, self.name)
        if state.get("fetched_on") == ctx.today.isoformat() and ctx.since is None:
            result.status = "skipped"  # daily aggregates: already fetched today
            return
        collector = Collector(ctx, self.name, result)
        for mp, asins in seller_asins(ctx).items():
            client = ctx.client(CustomerFeedback, mp)
            for asin in asins:
                try:
                    topics = ctx.call(
                        "getItemReviewTopics",
                        lambda a=asin, c=client, m=mp: c.get_item_review_topics(
                            a, marketplaceId=m, sortBy="MENTIONS"
                        ),
                    ).payload
                    trends = ctx.call(
                        "getItemReviewTrends",
                        lambda a=asin, c=client, m=mp: c.get_item_review_trends(a, marketplaceId=m),
                    ).payload
                except Exception as exc:
                    if _status(exc) == 404:  # no review data for this ASIN yet
                        continue
                    raise
                if not isinstance(topics, dict) or not isinstance(trends, dict):
                    raise MalformedResponse("review response is not an object")
                result.pages += 2
                collector.add(
                    "review_topics",
                    topics,
                    lambda b=topics, a=asin, m=mp: map_topics(b, a, m, ctx.today),
                )
                collector.add(
                    "review_trends",
                    trends,
                    lambda b=trends, a=asin, m=mp: map_trends(b, a, m, ctx.today),
                )
        collector.flush(force=True)
        ctx.store.update_state(ctx.tenant, self.name, {"fetched_on": ctx.today.isoformat()})
