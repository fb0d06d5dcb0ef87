"""Shared state handed to every route handler (world, tokens, reports, ledgers, options)."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .auth import TokenAuthority
from .faults import Faults
from .pagination import Paginator
from .reports import ReportStore
from .world import World


@dataclass
class SolicitationLedger:
    """Orders for which a review solicitation has already been sent.

    With a ``path`` the ledger survives restarts (one order id per line, appended and fsynced
    before the 201 answer), as Amazon remembers a sent request: an embedded sandbox started
    anew by each ``amzigo campaign run`` still refuses a second request for the same order.
    ``attempts`` counts every create request received per order (refused ones included), so
    tests can prove that no order was ever asked twice.
    """

    path: Path | None = None
    _sent: set[str] = field(default_factory=set)
    attempts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.path is not None and self.path.exists():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            self._sent.update(line.strip() for line in lines if line.strip())

    def was_sent(self, order_id: str) -> bool:
        """Whether a solicitation was already sent for ``order_id``."""
        with self._lock:
            return order_id in self._sent

    def attempt(self, order_id: str) -> None:
        """Count one create request received for ``order_id``."""
        with self._lock:
            self.attempts[order_id] += 1

    def record(self, order_id: str) -> bool:
        """Record a sent solicitation; ``False`` if one was already recorded."""
        with self._lock:
            if order_id in self._sent:
                return False
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(order_id + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
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
