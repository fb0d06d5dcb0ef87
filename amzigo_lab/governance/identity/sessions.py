"""Login sessions: the token handed to the client and the hash that is all the database keeps."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Session:
    """A live session; `token` is shown once to the client and never stored."""

    token: str = field(repr=False)
    session_id: int
    user_id: str
    roles: tuple[str, ...]
    tenant: str | None
    created: dt.datetime
    last_seen: dt.datetime
    expires_at: dt.datetime  # absolute expiry; the idle timeout counts from last_seen


def new_token() -> str:
    """Return a fresh session token (256 bits from the OS CSPRNG, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the hex SHA-256 of `token`, the only form stored in the database."""
    return hashlib.sha256(token.encode()).hexdigest()
