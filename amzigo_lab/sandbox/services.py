"""Shared state handed to every route handler (world, tokens, reports, ledgers, options)."""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass, field

from .auth import TokenAuthority
from .faults import Faults
from .pagination import Paginator
from .reports import ReportStore
from .world import World


@dataclass
class SolicitationLedger:
    """Orders for which a review solicitation has already been sent."""

    _sent: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def was_sent(self, order_id: str) -> bool:
        """Whether a solicitation was already sent for ``order_id``."""
        with self._lock:
            return order_id in self._sent

    def record(self, order_id: str) -> bool:
        """Record a sent solicitation; ``False`` if one was already recorded."""
        with self._lock:
            if order_id in self._sent:
                return False
            self._sent.add(order_id)
            return True


@dataclass
class Services:
    """Everything the API routes share."""

    world: World
    auth: TokenAuthority
    paginator: Paginator
    reports: ReportStore
    faults: Faults
    solicitations: SolicitationLedger
    pii_role: bool
    url_secret: bytes
    base_url: str = ""
    document_url_lifetime: float = 300.0

    def sign(self, *parts: str) -> str:
        """HMAC signature of ``parts`` (pre-signed document URLs)."""
        message = "\n".join(parts).encode("utf-8")
        return hmac.new(self.url_secret, message, hashlib.sha256).hexdigest()
