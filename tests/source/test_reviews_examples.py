"""customerFeedback: Amazon's example responses through the review parsers and stream.

A 204 from getItemReviewTopics/Trends (`{}`) is "no data": 0 rows, nothing quarantined (it was
quarantined as `KeyError: 'topics'`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from amzigo_lab.source.streams.base import Collector
from amzigo_lab.source.streams.reviews import ReviewsStream, map_topics, map_trends
from tests.source.spapi_examples import (
    NOW,
    FakeStore,
    api_response,
    fake_context,
    responses,
    result,
)

MODEL = "customerFeedback_2024-06-01"
US = "ATVPDKIKX0DER"


def _topic_count(body: dict[str, Any]) -> int:
    return sum(len(v) for v in body["topics"].values())


def _trend_count(body: dict[str, Any]) -> int:
    return sum(len(t["trendMetrics"]) for v in body["reviewTrends"].values() for t in v)


def test_every_topics_example_maps() -> None:
    bodies = responses(MODEL, "getItemReviewTopics")
    assert bodies
    for body in bodies:
        rows = map_topics(body, body["asin"], US, NOW.date())["review_topics"]
        assert len(rows) == _topic_count(body) > 0
        first = body["topics"]["positiveTopics"][0]
        assert rows[0]["topic"] == first["topic"]
        assert rows[0]["review_count"] == first["asinMetrics"]["numberOfMentions"]
        assert {r["sentiment"] for r in rows} <= {"positive", "negative"}


def test_every_trends_example_maps() -> None:
    bodies = responses(MODEL, "getItemReviewTrends")
    assert bodies
    for body in bodies:
        rows = map_trends(body, body["asin"], US, NOW.date())["review_trends"]
        assert len(rows) == _trend_count(body) > 0
        assert all(r["month"].day == 1 for r in rows)


@pytest.mark.parametrize("operation", ["getItemReviewTopics", "getItemReviewTrends"])
def test_204_examples_are_no_data(operation: str) -> None:
    (body,) = responses(MODEL, operation, "204")
    assert body == {}
    mapper = map_topics if operation == "getItemReviewTopics" else map_trends
    collector = Collector(None, "reviews", result("reviews"))  # type: ignore[arg-type]
    collector.add("review_topics", body, lambda: mapper(body, "B0", US, NOW.date()))
    assert not collector.bad
    assert sum(len(r) for r in collector.rows.values()) == 0


class _Feedback:
    def __init__(self, status: str) -> None:
        self.status = status

    def get_item_review_topics(self, asin: str, **kw: Any) -> Any:
        (body,) = responses(MODEL, "getItemReviewTopics", self.status)
        return api_response(body)

    def get_item_review_trends(self, asin: str, **kw: Any) -> Any:
        (body,) = responses(MODEL, "getItemReviewTrends", self.status)
        return api_response(body)


@pytest.mark.parametrize("status", ["200", "204"])
def test_stream_over_the_examples(status: str) -> None:
    store = FakeStore()
    store.tables["order_items"] = pa.table({"marketplace_id": [US], "asin": ["B0BT5K9B2T"]})
    res = result("reviews")
    ReviewsStream().run(fake_context(_Feedback(status), store), res)
    assert res.status == "ok" and res.quarantined == 0 and not store.quarantined
    topics = store.written.get("review_topics", [])
    trends = store.written.get("review_trends", [])
    if status == "204":
        assert topics == [] and trends == []
    else:
        (t,) = responses(MODEL, "getItemReviewTopics")
        (r,) = responses(MODEL, "getItemReviewTrends")
        assert len(topics) == _topic_count(t) and len(trends) == _trend_count(r)
    assert store.state["fetched_on"] == NOW.date().isoformat()
