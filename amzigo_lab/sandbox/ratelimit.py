"""Token-bucket rate limits per (seller, operation), with Amazon's documented rates."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Documented usage plans: operation -> (requests per second, burst).
USAGE_PLANS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrders": (0.0167, 20),
    "getOrder": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "createReport": (0.0167, 15),
    "getReport": (2.0, 15),
    "getReportDocument": (0.0167, 15),
    "getOrderMetrics": (0.5, 15),
    "getInventorySummaries": (2.0, 2),
    "listFinancialEvents": (0.5, 30),
    "searchCatalogItems": (2.0, 2),
    "getCatalogItem": (2.0, 2),
    "getItemReviewTopics": (1.0, 5),
    "getItemReviewTrends": (1.0, 5),
    "getItemBrowseNode": (1.0, 5),
    "getSolicitationActionsForOrder": (1.0, 5),
    "createProductReviewAndSellerFeedbackSolicitation": (1.0, 5),
    "createRestrictedDataToken": (1.0, 10),
}
DEFAULT_PLAN = (1.0, 5)


def format_rate(rate: float) -> str:
    """Render a rate the way the ``x-amzn-RateLimit-Limit`` header does (e.g. ``0.0167``)."""
    return f"{rate:.4f}".rstrip("0").rstrip(".") if rate < 1000 else f"{rate:.0f}"


@dataclass(slots=True)
class TokenBucket:
    """A classic token bucket."""

    rate: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        """Refill up to ``now`` and consume one token if available."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """Buckets per (seller, operation); ``time_scale`` speeds refill up (``None``/0 = off)."""

    def __init__(
        self,
        time_scale: float | None = 1.0,
        plans: dict[str, tuple[float, int]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.time_scale = time_scale
        self.plans = dict(USAGE_PLANS if plans is None else plans)
        self._clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether throttling is active."""
        return bool(self.time_scale)

    def plan(self, operation: str) -> tuple[float, int]:
        """Documented (rate, burst) of ``operation``."""
        return self.plans.get(operation, DEFAULT_PLAN)

    def effective_rate(self, operation: str) -> float:
        """Refill rate actually applied (documented rate times ``time_scale``)."""
        rate, _ = self.plan(operation)
        return rate * self.time_scale if self.time_scale else rate

    def limit_header(self, operation: str) -> str:
        """Value of ``x-amzn-RateLimit-Limit`` for ``operation`` (the effective rate)."""
        return format_rate(self.effective_rate(operation))

    def allow(self, seller: str, operation: str) -> bool:
        """Consume one request of ``seller`` for ``operation``; ``False`` means throttled."""
        if not self.enabled:
            return True
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((seller, operation))
            if bucket is None:
                _, burst = self.plan(operation)
                bucket = TokenBucket(self.effective_rate(operation), burst, float(burst), now)
                self._buckets[(seller, operation)] = bucket
            return bucket.take(now)

    def reset(self) -> None:
        """Refill every bucket (forget all history)."""
        with self._lock:
            self._buckets.clear()
