"""The scheduler with a fake clock: buckets, adaptation, retries per call, token refresh."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sp_api.base.exceptions import (
    SellingApiForbiddenException,
    SellingApiRequestThrottledException,
    SellingApiServerException,
)

from amzigo_lab.sandbox.ratelimit import RateLimiter
from amzigo_lab.source.client import EmptyErrorResponse
from amzigo_lab.source.ratelimit import SAFETY, Scheduler


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Response:
    def __init__(self, rate: str | None = None) -> None:
        self.rate_limit = rate


def test_burst_then_documented_rate() -> None:
    clock = FakeClock()
    s = Scheduler(clock=clock, limits={"op": (0.5, 3)})
    for _ in range(5):
        s.call("t", "op", lambda: Response())
    assert clock.slept == pytest.approx([2 * SAFETY, 2 * SAFETY])  # burst 3, then 1 per 2 s
    assert s.stats.waits == 2


def test_buckets_are_per_tenant_and_operation() -> None:
    clock = FakeClock()
    s = Scheduler(clock=clock, limits={"op": (1.0, 1)})
    s.call("a", "op", lambda: Response())
    s.call("b", "op", lambda: Response())
    assert clock.slept == []


def test_adapts_to_the_rate_limit_header() -> None:
    clock = FakeClock()
    s = Scheduler(clock=clock, limits={"op": (0.01, 1)})
    s.call("t", "op", lambda: Response("10"))
    s.call("t", "op", lambda: Response("10"))
    assert clock.slept == pytest.approx([0.1 * SAFETY])


def test_429_is_retried_per_call_after_one_over_rate() -> None:
    clock = FakeClock()
    s = Scheduler(clock=clock, limits={"op": (2.0, 5)})
    calls = []

    def request() -> Response:
        calls.append(clock.now)
        if len(calls) == 1:
            raise SellingApiRequestThrottledException(
                [{"code": "QuotaExceeded", "message": "x"}], headers={"x-amzn-RateLimit-Limit": "4"}
            )
        return Response()

    s.call("t", "op", request)
    assert len(calls) == 2 and s.stats.throttled == 1
    assert calls[1] - calls[0] >= 0.25 * SAFETY  # waited 1/rate of the reported rate


def test_5xx_and_empty_bodies_back_off_then_give_up() -> None:
    clock = FakeClock()
    s = Scheduler(clock=clock, max_retries=3, backoff=1.0)
    failures = iter(
        [SellingApiServerException([{"message": "boom"}], headers={}), EmptyErrorResponse(503, {})]
    )

    def flaky() -> Response:
        exc = next(failures, None)
        if exc is not None:
            raise exc
        return Response()

    s.call("t", "op", flaky)
    assert s.stats.retries["op"] == 2
    with pytest.raises(Exception, match="failed after 3 retries"):
        s.call("t", "op", lambda: (_ for _ in ()).throw(EmptyErrorResponse(503, {})))


def test_expired_token_refreshes_once() -> None:
    s = Scheduler(clock=FakeClock())
    refreshed = []
    expired = SellingApiForbiddenException(
        [{"code": "Unauthorized", "message": "The access token you provided has expired."}],
        headers={},
    )

    def request() -> Response:
        raise expired

    with pytest.raises(SellingApiForbiddenException):
        s.call("t", "op", request, refresh_token=lambda: refreshed.append(1))
    assert refreshed == [1]


def test_client_errors_are_not_retried() -> None:
    s = Scheduler(clock=FakeClock())
    with pytest.raises(SellingApiForbiddenException):
        s.call(
            "t",
            "op",
            lambda: (_ for _ in ()).throw(
                SellingApiForbiddenException([{"message": "denied"}], headers={})
            ),
        )
    assert not s.stats.retries


def _sandbox_api(clock: FakeClock, lags: list[float]) -> Callable[[], Response]:
    """The sandbox's own token bucket (20 requests/s, burst 5) on the fake clock, behind
    requests that each reach it `lags[i]` seconds after they were sent (then answer at once)."""
    api = RateLimiter(time_scale=20, plans={"op": (1.0, 5)}, clock=clock.monotonic)
    lag = iter(lags)

    def request() -> Response:
        clock.now += next(lag, 0.001)
        if not api.allow("seller", "op"):
            raise SellingApiRequestThrottledException(
                [{"code": "QuotaExceeded", "message": "x"}],
                headers={"x-amzn-RateLimit-Limit": api.limit_header("op")},
            )
        return Response(api.limit_header("op"))

    return request


@pytest.mark.parametrize(
    "lags",
    [
        [0.1],  # the first call also fetches the access token and shakes hands: it lands late
        [0.001] * 10 + [0.3] + [0.001] * 10,  # one request held up (a busy machine)
        [0.05, 0.001, 0.08, 0.001, 0.002, 0.12, 0.001, 0.001, 0.03] * 3,
    ],
)
def test_requests_that_reach_the_api_late_are_never_throttled(lags: list[float]) -> None:
    """The API's bucket counts a request when it arrives, ours when we schedule it: a late
    arrival followed by one on time must not look like a burst the API refuses (429)."""
    clock = FakeClock()
    s = Scheduler(clock=clock, limits={"op": (20.0, 5)})
    request = _sandbox_api(clock, lags)
    for _ in range(40):
        s.call("t", "op", request)
    assert s.stats.throttled == 0
    # and no slower than needed: 40 requests at 20/s with a burst of 5 need 1.75 s, plus the lags
    assert clock.now < (40 - 5) / 20 * SAFETY + sum(lags) + 40 * 0.001 + 5 / 20
