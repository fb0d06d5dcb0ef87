"""The shared rate-limit scheduler: one token bucket per (tenant, operation), retries per call.

Every SP-API request goes through `Scheduler.call`, which
1. waits for a token of the (tenant, operation) bucket (documented rate and burst, then the rate
   the API reports in `x-amzn-RateLimit-Limit`);
2. makes exactly one request, and records how late it may have reached the API (`Bucket.settle`);
3. on 429 waits `1/rate` plus jitter and retries; on 5xx, empty-body errors and transport errors
   backs off exponentially with jitter and retries; on an expired access token refreshes it once.
Retries wrap a single request, never a paginated loop, so a 429 on page 7 retries page 7.
Waits are counted for the progress display. The clock is injectable for tests.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from amzigo_lab.source.client import EmptyErrorResponse, SourceError

T = TypeVar("T")

#: Documented (rate per second, burst) of each operation the streams call.
DOCUMENTED_LIMITS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrders": (0.0167, 20),
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
    "getSolicitationActionsForOrder": (1.0, 5),
    "createRestrictedDataToken": (1.0, 10),
    # Amazon Ads: limits are not published; these are the conservative rates we schedule at
    "adsListProfiles": (1.0, 5),
    "adsCreateReport": (1.0, 5),
    "adsGetReport": (2.0, 10),
    "adsDownloadReport": (2.0, 10),
}
DEFAULT_LIMIT = (1.0, 5)
#: Spacing margin: requests are spaced 2 % wider than the rate allows, so network jitter
#: between our clock and the server's never turns an on-time request into a 429.
SAFETY = 1.02


class Clock(Protocol):
    """Monotonic time and sleeping (a seam for tests)."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""

    def sleep(self, seconds: float) -> None:
        """Block for `seconds`."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """time.sleep()."""
        time.sleep(seconds)


@dataclass
class Bucket:
    """A token bucket that may go negative: a negative balance is a queue of reservations.

    The API's bucket counts a request when it arrives, ours when the request is scheduled; the
    two differ by the request's lag (waking up, the first call's access token and TLS
    handshake, a busy machine), and a request that arrives late followed by one on time looks
    to the API like two requests closer together than we spaced them: a 429. So the bucket
    keeps `rate * lag` tokens in hand, `lag` being the longest a request took from its
    scheduled time to its answer (it arrived at the API no later than that); a new longest lag
    is also debited at once, for the requests already scheduled behind it.
    """

    rate: float
    burst: int
    tokens: float
    updated: float
    lag: float = 0.0

    def capacity(self) -> float:
        """The burst less the tokens kept in hand for the lag (at least one request)."""
        return max(1.0, self.burst - self.rate * self.lag)

    def reserve(self, now: float) -> float:
        """Take one token; return how long the caller must wait before using it."""
        rate = self.rate / SAFETY
        self.tokens = min(self.capacity(), self.tokens + (now - self.updated) * rate)
        self.updated = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / rate

    def settle(self, scheduled: float, answered: float) -> None:
        """A request scheduled at `scheduled` was answered at `answered`: a longer lag than
        any before lowers the capacity and debits the tokens it may have cost."""
        lag = answered - scheduled
        if lag > self.lag:
            self.tokens -= (lag - self.lag) * self.rate
            self.lag = lag


@dataclass
class SchedulerStats:
    """Counters for the progress display and the ingest report."""

    requests: Counter[str] = field(default_factory=Counter)
    waits: int = 0
    wait_seconds: float = 0.0
    throttled: int = 0  # 429 responses received
    retries: Counter[str] = field(default_factory=Counter)
    token_refreshes: int = 0


def parse_rate(value: Any) -> float | None:
    """The rate of an `x-amzn-RateLimit-Limit` header value, if valid and positive."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return None
    return rate if rate > 0 else None


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def _headers(exc: BaseException) -> dict[str, Any]:
    headers = getattr(exc, "headers", None)
    try:
        return dict(headers or {})
    except (TypeError, ValueError):
        return {}


def retry_after(exc: BaseException) -> float | None:
    """Seconds a 429 asks to wait (`Retry-After`, in seconds), if given."""
    headers = _headers(exc)
    value = headers.get("Retry-After", headers.get("retry-after"))
    try:
        seconds = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def is_expired_token(exc: BaseException) -> bool:
    """Whether `exc` is the 403 an expired access token gets."""
    message = str(getattr(exc, "message", "") or "")
    return _status(exc) == 403 and "expired" in message.lower()


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: 5xx, empty-body errors, transport errors, truncated downloads."""
    import zlib

    import httpx

    if isinstance(exc, EmptyErrorResponse):
        return exc.code >= 500 or exc.code == 429
    if isinstance(exc, httpx.TransportError | zlib.error | EOFError):
        return True
    status = _status(exc)
    return status is not None and 500 <= status <= 599


class Scheduler:
    """Token buckets per (tenant, operation) shared by every stream and thread of an ingest."""

    def __init__(
        self,
        clock: Clock | None = None,
        limits: dict[str, tuple[float, int]] | None = None,
        max_retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        rng: random.Random | None = None,
        on_wait: Callable[[str, str, float], None] | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.limits = dict(DOCUMENTED_LIMITS if limits is None else limits)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.rng = rng or random.Random()  # jitter only; not security-relevant
        self.on_wait = on_wait
        self.time_scale = time_scale  # Retry-After is in API seconds (the sandbox runs faster)
        self.stats = SchedulerStats()
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()

    def bucket(self, tenant: str, operation: str) -> Bucket:
        """The bucket of (tenant, operation), created full at the documented limits."""
        key = (tenant, operation)
        bucket = self._buckets.get(key)
        if bucket is None:
            rate, burst = self.limits.get(operation, DEFAULT_LIMIT)
            bucket = Bucket(rate, burst, float(burst), self.clock.monotonic())
            self._buckets[key] = bucket
        return bucket

    def acquire(self, tenant: str, operation: str) -> float:
        """Wait for a token; return the seconds waited."""
        now = self.clock.monotonic()
        return self._acquire(tenant, operation, now) - now

    def _acquire(self, tenant: str, operation: str, now: float) -> float:
        """Wait for a token reserved at `now`; return the time the request was scheduled for."""
        with self._lock:
            delay = self.bucket(tenant, operation).reserve(now)
            self.stats.requests[operation] += 1
            if delay > 0:
                self.stats.waits += 1
                self.stats.wait_seconds += delay
        if delay > 0:
            if self.on_wait is not None:
                self.on_wait(tenant, operation, delay)
            self.clock.sleep(delay)
        return now + max(delay, 0.0)

    def settle(self, tenant: str, operation: str, scheduled: float) -> None:
        """Record that a request scheduled at `scheduled` has been answered (`Bucket.settle`)."""
        with self._lock:
            self.bucket(tenant, operation).settle(scheduled, self.clock.monotonic())

    def observe(self, tenant: str, operation: str, header: Any) -> None:
        """Adopt the rate the API reported for (tenant, operation)."""
        rate = parse_rate(header)
        if rate is None:
            return
        with self._lock:
            bucket = self.bucket(tenant, operation)
            if abs(bucket.rate - rate) > 1e-9:
                now = self.clock.monotonic()
                bucket.tokens = min(
                    bucket.capacity(), bucket.tokens + (now - bucket.updated) * bucket.rate / SAFETY
                )
                bucket.updated = now
                bucket.rate = rate

    def _penalise(self, tenant: str, operation: str) -> float:
        """After a 429: empty the bucket (the next `acquire` then waits 1/rate); return 1/rate."""
        with self._lock:
            bucket = self.bucket(tenant, operation)
            now = self.clock.monotonic()
            bucket.tokens = min(0.0, bucket.tokens + (now - bucket.updated) * bucket.rate / SAFETY)
            bucket.updated = now
            return 1.0 / bucket.rate

    def call(
        self,
        tenant: str,
        operation: str,
        request: Callable[[], T],
        refresh_token: Callable[[], None] | None = None,
    ) -> T:
        """Make one request within the limits, retrying 429/5xx with jitter, refreshing once."""
        refreshed = False
        attempt = 0
        while True:
            scheduled = self._acquire(tenant, operation, self.clock.monotonic())
            try:
                result = request()
            except Exception as exc:
                self.observe(tenant, operation, _headers(exc).get("x-amzn-RateLimit-Limit"))
                self.settle(tenant, operation, scheduled)  # at the rate the API just reported
                if is_expired_token(exc) and refresh_token is not None and not refreshed:
                    refreshed = True
                    self.stats.token_refreshes += 1
                    refresh_token()
                    continue
                status = _status(exc)
                throttled = status == 429 and not isinstance(exc, EmptyErrorResponse)
                if not (throttled or is_transient(exc)) or attempt >= self.max_retries:
                    if attempt >= self.max_retries:
                        raise SourceError(
                            f"{operation} for {tenant} failed after {attempt} retries: "
                            f"{type(exc).__name__} {getattr(exc, 'message', '') or exc}"
                        ) from exc
                    raise
                attempt += 1
                self.stats.retries[operation] += 1
                if throttled:
                    self.stats.throttled += 1
                    # acquire() waits the 1/rate; add up to 10 % of it as jitter
                    delay = self._penalise(tenant, operation) * 0.1 * self.rng.random()
                    asked = retry_after(exc)
                    if asked is not None:
                        delay = max(delay, asked / self.time_scale)
                else:
                    cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                    delay = cap * (0.5 + 0.5 * self.rng.random())
                with self._lock:
                    self.stats.waits += 1
                    self.stats.wait_seconds += delay
                if self.on_wait is not None:
                    self.on_wait(tenant, operation, delay)
                self.clock.sleep(delay)
                continue
            self.observe(tenant, operation, getattr(result, "rate_limit", None))
            self.settle(tenant, operation, scheduled)
            return result
