"""Amazon-style API errors (``{"errors": [{"code", "message", "details"}]}``)."""

from __future__ import annotations

import json


class ApiError(Exception):
    """An error response of the Selling Partner API."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> bytes:
        """JSON body in Amazon's error format."""
        error = {"code": self.code, "message": self.message, "details": self.details}
        return json.dumps({"errors": [error]}).encode("utf-8")


def invalid_input(message: str, details: str = "") -> ApiError:
    """400 ``InvalidInput``."""
    return ApiError(400, "InvalidInput", message, details)


def not_found(message: str = "The requested resource was not found.") -> ApiError:
    """404 ``NotFound``."""
    return ApiError(404, "NotFound", message)


def unauthorized(details: str = "") -> ApiError:
    """403 ``Unauthorized`` as returned for a missing, invalid or revoked token."""
    return ApiError(403, "Unauthorized", "Access to requested resource is denied.", details)


def token_expired() -> ApiError:
    """403 ``Unauthorized`` for an expired access token."""
    return ApiError(403, "Unauthorized", "The access token you provided has expired", "")


def quota_exceeded(limit: str) -> ApiError:
    """429 ``QuotaExceeded`` with the rate-limit header."""
    return ApiError(
        429,
        "QuotaExceeded",
        "You exceeded your quota for the requested resource.",
        "",
        headers={"x-amzn-RateLimit-Limit": limit},
    )
