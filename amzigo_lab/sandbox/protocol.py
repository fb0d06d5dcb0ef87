"""Request/response types and the router shared by all API route modules."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import invalid_input

if TYPE_CHECKING:
    from .auth import Grant
    from .services import Services
    from .tenants import Seller

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed HTTP request."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""
    path_params: Mapping[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """First value of query parameter ``name`` (``None`` if absent or empty)."""
        values = self.query.get(name)
        return values[0] if values and values[0] != "" else None

    def params(self, name: str) -> list[str]:
        """All values of ``name``, repeated or comma-separated, in order."""
        return [v for raw in self.query.get(name, []) for v in raw.split(",") if v]

    def int_param(self, name: str, default: int, low: int, high: int) -> int:
        """Integer parameter ``name`` within ``[low, high]`` (400 otherwise)."""
        raw = self.param(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid_input(f"{name} must be an integer.") from None
        if not low <= value <= high:
            raise invalid_input(f"{name} must be between {low} and {high}.")
        return value

    def json(self) -> JsonObject:
        """Body parsed as a JSON object (400 if it is not one)."""
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            raise invalid_input("The request body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise invalid_input("The request body must be a JSON object.")
        return value


@dataclass(slots=True)
class Response:
    """An HTTP response."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: object, status: int = 200) -> Response:
        """A JSON response with a stable (sorted-key) encoding."""
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json"})


@dataclass(frozen=True, slots=True)
class Call:
    """Everything a route handler needs: the request, the caller's grant and the services."""

    request: Request
    grant: Grant
    services: Services

    @property
    def seller(self) -> Seller:
        """The seller the access token belongs to."""
        return self.grant.seller


Handler = Callable[[Call], Response]


@dataclass(frozen=True, slots=True)
class Route:
    """One API operation: method, path template (as in the model) and handler."""

    method: str
    template: str
    operation: str
    handler: Handler
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, method: str, template: str, operation: str, handler: Handler) -> Route:
        """Build a route, compiling ``{name}`` placeholders of ``template``."""
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        return cls(method, template, operation, handler, re.compile(f"^{regex}$"))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters if this route serves ``method path``."""
        if method != self.method:
            return None
        found = self.pattern.match(path)
        return found.groupdict() if found else None
