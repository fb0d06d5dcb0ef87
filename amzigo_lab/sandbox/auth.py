"""Login with Amazon (refresh -> access tokens) and Restricted Data Tokens (Tokens API)."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import ApiError, token_expired, unauthorized
from .tenants import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SELLERS, Seller

MAX_RESTRICTED_RESOURCES = 50
#: Restricted operations and the data elements they accept.
RESTRICTED_PATHS: tuple[tuple[str, re.Pattern[str], frozenset[str]], ...] = (
    (
        "GET",
        re.compile(r"^/orders/v0/orders$"),
        frozenset({"buyerInfo", "shippingAddress", "buyerTaxInformation"}),
    ),
    (
        "GET",
        re.compile(r"^/orders/v0/orders/[^/]+$"),
        frozenset({"buyerInfo", "shippingAddress", "buyerTaxInformation"}),
    ),
    ("GET", re.compile(r"^/orders/v0/orders/[^/]+/orderItems$"), frozenset({"buyerInfo"})),
    ("GET", re.compile(r"^/orders/v0/orders/[^/]+/buyerInfo$"), frozenset()),
    ("GET", re.compile(r"^/orders/v0/orders/[^/]+/address$"), frozenset()),
)


@dataclass(frozen=True, slots=True)
class RestrictedResource:
    """A resource an RDT grants access to."""

    method: str
    path: str
    data_elements: frozenset[str]

    def covers(self, method: str, path: str) -> bool:
        """Whether this resource authorises ``method path`` (``{orderId}`` is a wildcard)."""
        if method != self.method:
            return False
        pattern = re.escape(self.path).replace(re.escape("{orderId}"), "[^/]+")
        return re.fullmatch(pattern, path) is not None


@dataclass(frozen=True, slots=True)
class Grant:
    """An issued token: whose it is, when it expires, and (for RDTs) what it covers."""

    token: str
    seller: Seller
    expires_at: float
    restricted: tuple[RestrictedResource, ...] | None = None

    @property
    def is_rdt(self) -> bool:
        """Whether this is a Restricted Data Token."""
        return self.restricted is not None

    def data_elements(self, method: str, path: str) -> frozenset[str]:
        """Data elements this grant unlocks for ``method path`` (empty for access tokens)."""
        found: set[str] = set()
        for resource in self.restricted or ():
            if resource.covers(method, path):
                found |= resource.data_elements
        return frozenset(found)


class TokenAuthority:
    """Issues and checks access tokens and RDTs; lifetimes are in (unscaled) seconds."""

    def __init__(
        self,
        access_token_lifetime: float = 3600.0,
        rdt_lifetime: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.access_token_lifetime = access_token_lifetime
        self.rdt_lifetime = rdt_lifetime
        self._clock = clock
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        self._by_refresh = {s.refresh_token: s for s in SELLERS}

    def exchange(self, form: Mapping[str, str]) -> tuple[int, dict[str, object]]:
        """Handle an LWA token request; returns (HTTP status, JSON body)."""
        if form.get("grant_type") != "refresh_token":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "Only refresh_token is supported by the sandbox",
            }
        if (form.get("client_id"), form.get("client_secret")) != (
            SANDBOX_CLIENT_ID,
            SANDBOX_CLIENT_SECRET,
        ):
            return 401, {
                "error": "invalid_client",
                "error_description": "Client authentication failed",
            }
        refresh_token = form.get("refresh_token", "")
        seller = self._by_refresh.get(refresh_token)
        if seller is None:
            return 400, {
                "error": "invalid_grant",
                "error_description": "The request has an invalid grant parameter : refresh_token",
            }
        grant = self._issue("sandbox-access-", seller, self.access_token_lifetime, None)
        return 200, {
            "access_token": grant.token,
            "token_type": "bearer",
            "expires_in": round(self.access_token_lifetime),
            "refresh_token": refresh_token,
        }

    def _issue(
        self,
        prefix: str,
        seller: Seller,
        lifetime: float,
        restricted: tuple[RestrictedResource, ...] | None,
    ) -> Grant:
        """Create and remember a new grant."""
        grant = Grant(
            token=prefix + secrets.token_urlsafe(32),
            seller=seller,
            expires_at=self._clock() + lifetime,
            restricted=restricted,
        )
        with self._lock:
            self._grants[grant.token] = grant
        return grant

    def authenticate(self, token: str | None, force_expired: bool = False) -> Grant:
        """Grant for ``token``; 403 if missing, unknown or expired."""
        if not token:
            raise unauthorized()
        with self._lock:
            grant = self._grants.get(token)
            if grant is not None and force_expired:
                grant = Grant(grant.token, grant.seller, self._clock() - 1, grant.restricted)
                self._grants[token] = grant
        if grant is None:
            raise unauthorized("The access token you provided is revoked, malformed or invalid.")
        if grant.expires_at <= self._clock():
            raise token_expired()
        return grant

    def create_rdt(self, grant: Grant, body: Mapping[str, object]) -> dict[str, object]:
        """Issue an RDT for the resources in a ``createRestrictedDataToken`` body."""
        if grant.is_rdt:
            raise unauthorized("An RDT cannot be used to create another RDT.")
        raw = body.get("restrictedResources")
        if not isinstance(raw, list) or not raw:
            raise ApiError(400, "InvalidInput", "restrictedResources is required.")
        if len(raw) > MAX_RESTRICTED_RESOURCES:
            raise ApiError(400, "InvalidInput", "At most 50 restrictedResources are allowed.")
        resources = tuple(self._resource(item) for item in raw)
        issued = self._issue("sandbox-rdt-", grant.seller, self.rdt_lifetime, resources)
        return {"restrictedDataToken": issued.token, "expiresIn": round(self.rdt_lifetime)}

    @staticmethod
    def _resource(item: object) -> RestrictedResource:
        """Validate one restricted resource of an RDT request."""
        if not isinstance(item, dict):
            raise ApiError(400, "InvalidInput", "Each restrictedResource must be an object.")
        method, path = item.get("method"), item.get("path")
        elements = item.get("dataElements") or []
        if (
            not isinstance(method, str)
            or not isinstance(path, str)
            or not isinstance(elements, list)
        ):
            raise ApiError(400, "InvalidInput", "method and path are required.")
        concrete = path.replace("{orderId}", "X")
        for r_method, pattern, allowed in RESTRICTED_PATHS:
            if method == r_method and pattern.match(concrete):
                unknown = set(elements) - allowed
                if unknown:
                    raise ApiError(400, "InvalidInput", f"Invalid dataElements: {sorted(unknown)}")
                return RestrictedResource(method, path, frozenset(str(e) for e in elements))
        raise ApiError(400, "InvalidInput", f"{method} {path} is not a restricted operation.")
