"""Service tokens: short-lived bearer tokens the gateway mints for one service, tenant and purpose.

Reports (`svc:reports`) and dashboards (`svc:dashboard`) never log in as a person: the process
that starts them (the CLI, the scheduler, the dashboard server) asks the gateway for a token
bound to one tenant and the purposes the run needs, hands it to the kernel, and revokes it when
the run ends. Tokens live only in the gateway's memory (a restart revokes them all); only their
SHA-256 is kept, so a memory dump of the table reveals no usable token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from amzigo_lab.errors import AccessDenied

SERVICE_ACTORS = frozenset({"svc:reports", "svc:dashboard"})
MAX_TTL = dt.timedelta(hours=12)


@dataclass(frozen=True)
class ServiceGrant:
    """What a service token allows: one actor, one tenant, a set of purposes, until a time."""

    actor: str
    tenant: str
    purposes: frozenset[str]
    expires: dt.datetime
    token_id: str  # first 12 hex of the token's digest: safe for logs and audit


def digest(token: str) -> str:
    """The SHA-256 of a token: what the gateway keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class ServiceTokens:
    """The gateway's table of live service tokens."""

    PREFIX = "svc_"

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._clock = clock
        self._grants: dict[str, ServiceGrant] = {}
        self._lock = threading.Lock()

    @classmethod
    def looks_like(cls, token: str) -> bool:
        """True for a service token (they carry a prefix; login tokens do not)."""
        return token.startswith(cls.PREFIX)

    def mint(
        self, actor: str, tenant: str, purposes: frozenset[str], ttl: dt.timedelta
    ) -> tuple[str, ServiceGrant]:
        """A new token and its grant."""
        if actor not in SERVICE_ACTORS:
            raise AccessDenied(f"unknown service {actor!r}; services: {sorted(SERVICE_ACTORS)}")
        ttl = min(ttl, MAX_TTL)
        token = self.PREFIX + secrets.token_urlsafe(32)
        key = digest(token)
        grant = ServiceGrant(actor, tenant, purposes, self._clock() + ttl, key[:12])
        with self._lock:
            self._prune()
            self._grants[key] = grant
        return token, grant

    def check(self, token: str) -> ServiceGrant:
        """The live grant of `token`, else AccessDenied (expired, revoked or unknown)."""
        key = digest(token)
        with self._lock:
            grant = self._grants.get(key)
            if grant is not None and grant.expires <= self._clock():
                del self._grants[key]
                grant = None
        if grant is None:
            raise AccessDenied(
                "the service token is expired, revoked or unknown; the run must ask the "
                "gateway for a new one"
            )
        return grant

    def revoke(self, token: str) -> bool:
        """Revoke one token; True if it was live."""
        with self._lock:
            return self._grants.pop(digest(token), None) is not None

    def revoke_where(self, keep_out: Callable[[ServiceGrant], bool]) -> list[ServiceGrant]:
        """Revoke every live token whose grant matches (incident isolation); their grants."""
        with self._lock:
            self._prune()
            hit = [d for d, g in self._grants.items() if keep_out(g)]
            return [self._grants.pop(d) for d in hit]

    def __len__(self) -> int:
        with self._lock:
            self._prune()
            return len(self._grants)

    def _prune(self) -> None:
        now = self._clock()
        for d in [d for d, g in self._grants.items() if g.expires <= now]:
            del self._grants[d]


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(a.encode(), b.encode())
