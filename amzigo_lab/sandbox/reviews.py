"""Customer review topics per ASIN with monthly trends (Customer Feedback API data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .catalog import Product
from .seeding import rng_for
from .tenants import Marketplace

_POSITIVE = (
    "easy to use",
    "good quality",
    "great value",
    "sturdy",
    "looks great",
    "lightweight",
    "fast delivery",
    "works as described",
    "comfortable",
    "compact",
)
_NEGATIVE = (
    "broke quickly",
    "poor instructions",
    "too small",
    "smells odd",
    "color differs",
    "hard to clean",
    "missing parts",
    "flimsy zipper",
    "overpriced",
    "noisy",
)
_SNIPPETS = (
    "I would buy this again.",
    "Does what it says.",
    "Not what I expected.",
    "Arrived on time.",
    "Okay for the price.",
)
TREND_MONTHS = 6


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """Occurrence of a topic in reviews of one month."""

    start: date
    end: date
    occurrence_percentage: float


@dataclass(frozen=True, slots=True)
class ReviewTopic:
    """A positive or negative review topic of an ASIN."""

    topic: str
    positive: bool
    mentions: int
    occurrence_percentage: float
    star_rating_impact: float
    snippets: tuple[str, ...]
    trend: tuple[TrendPoint, ...]


def _month_start(day: date, back: int) -> date:
    """First day of the month ``back`` months before ``day``'s month."""
    months = day.year * 12 + day.month - 1 - back
    return date(months // 12, months % 12 + 1, 1)


def review_topics(
    seed: int, marketplace: Marketplace, product: Product, today: date
) -> tuple[ReviewTopic, ...]:
    """Topics of ``product``'s reviews in ``marketplace`` with monthly trends up to ``today``."""
    rng = rng_for(seed, "reviews", marketplace.code, product.asin)
    reviews = rng.randint(80, 2500)
    topics: list[ReviewTopic] = []
    for positive, pool in ((True, _POSITIVE), (False, _NEGATIVE)):
        count = 6 if positive else 4
        for name in rng.sample(pool, count):
            pct = round(rng.uniform(3, 40 if positive else 15), 2)
            drift = rng.uniform(-0.8, 0.8)
            trend: list[TrendPoint] = []
            for back in range(TREND_MONTHS, 0, -1):
                start = _month_start(today, back)
                end = _month_start(today, back - 1)
                value = max(0.0, min(100.0, pct + drift * (TREND_MONTHS - back) + rng.gauss(0, 1)))
                trend.append(TrendPoint(start, end, round(value, 2)))
            impact = round(rng.uniform(0.01, 0.3), 3)
            topics.append(
                ReviewTopic(
                    topic=name,
                    positive=positive,
                    mentions=round(reviews * pct / 100),
                    occurrence_percentage=pct,
                    star_rating_impact=impact if positive else -impact,
                    snippets=tuple(rng.sample(_SNIPPETS, 2)),
                    trend=tuple(trend),
                )
            )
    return tuple(topics)
