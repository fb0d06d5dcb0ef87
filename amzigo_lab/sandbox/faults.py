"""Run-time switchable fault injection: errors, outages, slowness, broken documents and tokens."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum

ANY_OPERATION = "*"


class FaultKind(StrEnum):
    """Faults that hit a single API request."""

    ERROR = "error"  # 5xx with an Amazon-style JSON error body
    UNAVAILABLE = "unavailable"  # 503 with an empty body
    SLOW = "slow"  # sleep, then answer normally
    MALFORMED = "malformed"  # 200 with a body that is not valid JSON


@dataclass(frozen=True, slots=True)
class RequestFault:
    """A fault to apply to one request."""

    kind: FaultKind
    status: int = 500
    delay: float = 0.0


@dataclass(slots=True)
class _Armed:
    """A fault armed for the next ``remaining`` matching requests."""

    fault: RequestFault
    remaining: int


class Faults:
    """Thread-safe registry of armed faults; each arming fires for the next ``times`` matches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._request: dict[str, list[_Armed]] = {}
        self._counters: dict[str, int] = {"truncate": 0, "fatal": 0, "expire": 0}

    def _arm(self, operation: str, fault: RequestFault, times: int) -> None:
        """Queue ``fault`` for ``operation`` (``"*"`` = any operation)."""
        with self._lock:
            self._request.setdefault(operation, []).append(_Armed(fault, times))

    def fail(self, operation: str, times: int = 1, status: int = 500) -> None:
        """Next ``times`` requests to ``operation`` get ``status`` with a JSON error body."""
        if not 500 <= status <= 599:
            raise ValueError("status must be a 5xx code")
        self._arm(operation, RequestFault(FaultKind.ERROR, status=status), times)

    def unavailable(self, operation: str, times: int = 1) -> None:
        """Next ``times`` requests to ``operation`` get 503 with an EMPTY body."""
        self._arm(operation, RequestFault(FaultKind.UNAVAILABLE, status=503), times)

    def slow(self, operation: str, seconds: float, times: int = 1) -> None:
        """Next ``times`` requests to ``operation`` are delayed by ``seconds``."""
        self._arm(operation, RequestFault(FaultKind.SLOW, status=200, delay=seconds), times)

    def malformed(self, operation: str, times: int = 1) -> None:
        """Next ``times`` requests to ``operation`` get 200 with a truncated, invalid JSON page."""
        self._arm(operation, RequestFault(FaultKind.MALFORMED, status=200), times)

    def truncate_documents(self, times: int = 1) -> None:
        """Next ``times`` report document downloads return a truncated GZIP stream."""
        self._add("truncate", times)

    def fatal_reports(self, times: int = 1) -> None:
        """Next ``times`` created reports end in ``FATAL``."""
        self._add("fatal", times)

    def expire_tokens(self, times: int = 1) -> None:
        """The access tokens of the next ``times`` authenticated requests are expired."""
        self._add("expire", times)

    def _add(self, name: str, times: int) -> None:
        """Increase counter ``name`` by ``times``."""
        with self._lock:
            self._counters[name] += times

    def _consume(self, name: str) -> bool:
        """Decrease counter ``name`` if positive; report whether it was."""
        with self._lock:
            if self._counters[name] > 0:
                self._counters[name] -= 1
                return True
            return False

    def take_request_fault(self, operation: str) -> RequestFault | None:
        """Pop the next armed fault for ``operation`` (specific arming first, then ``"*"``)."""
        with self._lock:
            for key in (operation, ANY_OPERATION):
                queue = self._request.get(key)
                if queue:
                    armed = queue[0]
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        queue.pop(0)
                    return armed.fault
        return None

    def take_truncate(self) -> bool:
        """Whether this document download must be truncated."""
        return self._consume("truncate")

    def take_fatal(self) -> bool:
        """Whether this new report must end in FATAL."""
        return self._consume("fatal")

    def take_expire(self) -> bool:
        """Whether this request's token must be treated as expired."""
        return self._consume("expire")

    def clear(self) -> None:
        """Disarm everything."""
        with self._lock:
            self._request.clear()
            for name in self._counters:
                self._counters[name] = 0
