"""Access-review rows: who has which roles, and what a reviewer should look at."""

from __future__ import annotations

import datetime as dt

from .passwords import PasswordPolicy, expires_at
from .users import User

STALE_AFTER = dt.timedelta(days=90)


def review_flags(user: User, now: dt.datetime, policy: PasswordPolicy) -> list[str]:
    """Return the review flags of `user`: stale, over_privileged, password_expired."""
    flags: list[str] = []
    if now - (user.last_login or user.created) >= STALE_AFTER:
        flags.append("stale")
    roles = set(user.roles)
    if ("admin" in roles and len(roles) > 1) or ("seller" in roles and user.tenant is None):
        flags.append("over_privileged")
    expiry = expires_at(policy, user.password_changed_at)
    if user.must_change_password or (expiry is not None and now >= expiry):
        flags.append("password_expired")
    return flags


def review_row(user: User, now: dt.datetime, policy: PasswordPolicy) -> dict[str, object]:
    """Return one access-review row for `user`, with no secret in it."""
    return {
        "user": user.user_id,
        "roles": list(user.roles),
        "tenant": user.tenant,
        "status": str(user.status),
        "last_login": user.last_login.isoformat() if user.last_login else None,
        "password_age_days": (now - user.password_changed_at).days,
        "mfa_enrolled": user.mfa_enrolled,
        "flags": review_flags(user, now, policy),
    }
