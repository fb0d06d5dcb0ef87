"""Customer Feedback API 2024-06-01: item review topics, review trends and browse node."""

from __future__ import annotations

from datetime import UTC, datetime, time

from ..errors import invalid_input, not_found
from ..protocol import Call, JsonObject, Response, Route
from ..reviews import ReviewTopic
from ..tenants import MARKETPLACE_BY_ID, Marketplace
from ._common import iso

SORT_BY = ("MENTIONS", "STAR_RATING_IMPACT")


def _marketplace(call: Call) -> Marketplace:
    """The single ``marketplaceId`` of the request."""
    marketplace_id = call.request.param("marketplaceId")
    if marketplace_id is None:
        ids = call.request.params("marketplaceIds")
        marketplace_id = ids[0] if ids else None
    if marketplace_id not in MARKETPLACE_BY_ID:
        raise invalid_input("A valid marketplaceId is required.")
    return MARKETPLACE_BY_ID[marketplace_id]


def _topics(call: Call) -> tuple[Marketplace, tuple[ReviewTopic, ...], JsonObject]:
    """Marketplace, topics and common response fields for the item in the path."""
    market = _marketplace(call)
    world = call.services.world
    asin = call.request.path_params["asin"]
    found = world.find_product(asin)
    topics = world.review_topics(market, asin)
    if found is None or topics is None:
        raise not_found(f"No review data for ASIN {asin}.")
    first = topics[0].trend[0].start
    last = topics[0].trend[-1].end
    common: JsonObject = {
        "asin": asin,
        "itemName": found[1].title,
        "marketplaceId": market.marketplace_id,
        "countryCode": market.country_code,
        "dateRange": {
            "startDate": iso(datetime.combine(first, time(0), tzinfo=UTC)),
            "endDate": iso(datetime.combine(last, time(0), tzinfo=UTC)),
        },
    }
    return market, topics, common


def get_item_review_topics(call: Call) -> Response:
    """``GET /customerFeedback/2024-06-01/items/{asin}/reviews/topics``."""
    sort_by = call.request.param("sortBy")
    if sort_by not in SORT_BY:
        raise invalid_input("sortBy must be MENTIONS or STAR_RATING_IMPACT.")
    _, topics, body = _topics(call)

    def key(topic: ReviewTopic) -> float:
        return topic.mentions if sort_by == "MENTIONS" else abs(topic.star_rating_impact)

    def render(topic: ReviewTopic) -> JsonObject:
        return {
            "topic": topic.topic,
            "asinMetrics": {
                "numberOfMentions": topic.mentions,
                "occurrencePercentage": topic.occurrence_percentage,
                "starRatingImpact": topic.star_rating_impact,
            },
            "reviewSnippets": list(topic.snippets),
        }

    positive = sorted((t for t in topics if t.positive), key=key, reverse=True)
    negative = sorted((t for t in topics if not t.positive), key=key, reverse=True)
    body["topics"] = {
        "positiveTopics": [render(t) for t in positive[:10]],
        "negativeTopics": [render(t) for t in negative[:10]],
    }
    return Response.json(body)


def get_item_review_trends(call: Call) -> Response:
    """``GET /customerFeedback/2024-06-01/items/{asin}/reviews/trends``."""
    _, topics, body = _topics(call)

    def render(topic: ReviewTopic) -> JsonObject:
        return {
            "topic": topic.topic,
            "trendMetrics": [
                {
                    "dateRange": {
                        "startDate": iso(datetime.combine(p.start, time(0), tzinfo=UTC)),
                        "endDate": iso(datetime.combine(p.end, time(0), tzinfo=UTC)),
                    },
                    "asinMetrics": {"occurrencePercentage": p.occurrence_percentage},
                }
                for p in topic.trend
            ],
        }

    body["reviewTrends"] = {
        "positiveTopics": [render(t) for t in topics if t.positive],
        "negativeTopics": [render(t) for t in topics if not t.positive],
    }
    return Response.json(body)


def get_item_browse_node(call: Call) -> Response:
    """``GET /customerFeedback/2024-06-01/items/{asin}/browseNode``."""
    _marketplace(call)
    found = call.services.world.find_product(call.request.path_params["asin"])
    if found is None:
        raise not_found("Unknown ASIN.")
    product = found[1]
    return Response.json(
        {"browseNodeId": product.browse_node_id, "displayName": product.browse_node_name}
    )


_BASE = "/customerFeedback/2024-06-01/items/{asin}"
ROUTES = (
    Route.of("GET", f"{_BASE}/reviews/topics", "getItemReviewTopics", get_item_review_topics),
    Route.of("GET", f"{_BASE}/reviews/trends", "getItemReviewTrends", get_item_review_trends),
    Route.of("GET", f"{_BASE}/browseNode", "getItemBrowseNode", get_item_browse_node),
)
