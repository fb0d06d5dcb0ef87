"""The web servers' view of identity, served by the gateway: logins, sessions, audit, bindings.

The lab and dashboard servers never open the identity store, the audit log or the lake: they
log people in, check sessions (every request), end sessions, write their own audit events and
look up a seller's tenant through gateway actions. Server-only actions present the gateway's
operator credential (the servers run as the service account on a hardened home).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amzigo_lab.client import protocol
from amzigo_lab.client.service import home_action


@dataclass(frozen=True)
class LoginSession:
    """A live login session as the gateway describes it (the token is the secret)."""

    token: str
    user_id: str
    roles: tuple[str, ...]
    tenant: str | None
    session_id: str
    password_days: int | None = None  # days until the password expires (login answers only)
    password_warn: bool = False
    #: login answers only: {"version", "effective", "unread": [{version, effective, summary,
    #: by, ...}]}, the data-policy version in force and the changes this user had not seen
    policy: dict[str, Any] | None = None

    @classmethod
    def from_answer(cls, token: str, answer: dict[str, Any]) -> LoginSession:
        """From a `login` or `session.check` answer."""
        return cls(
            token=token,
            user_id=str(answer["user"]),
            roles=tuple(str(r) for r in answer.get("roles", ())),
            tenant=answer.get("tenant") or None,
            session_id=str(answer.get("session_id", "")),
            password_days=answer.get("password_days"),
            password_warn=answer.get("password_warn") is True,
            policy=answer.get("policy") if isinstance(answer.get("policy"), dict) else None,
        )


class Directory:
    """Identity operations for one home's servers, through its gateway."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def _action(
        self, name: str, payload: dict[str, Any], token: str | None = None
    ) -> dict[str, Any]:
        return home_action(self.home, name, payload, token=token, operator=token is None)

    def authenticate(self, user: str, password: str, code: str) -> LoginSession:
        """Password + TOTP (lockout and audit in the gateway's identity store)."""
        credentials = {"user": user, "password": password, "code": code}
        answer = protocol.check_login_answer(home_action(self.home, protocol.LOGIN, credentials))
        return LoginSession.from_answer(str(answer["token"]), answer)

    def change_password(self, ticket: str, new_password: str) -> LoginSession:
        """Finish a login that raised PasswordChangeRequired: set the new password (checked by
        the gateway's password policy) and receive the session."""
        body = {"ticket": ticket, "new_password": new_password}
        answer = home_action(self.home, protocol.LOGIN_CHANGE_PASSWORD, body)
        return LoginSession.from_answer(str(answer["token"]), answer)

    def session(self, token: str, *, touch: bool = True) -> LoginSession:
        """The live session of `token` (AccessDenied when it ended); `touch` refreshes its idle
        timer (a request by the user does; a background check does not)."""
        answer = self._action(protocol.SESSION_CHECK, {"touch": touch}, token)
        return LoginSession.from_answer(token, answer)

    def end(self, token: str, reason: str = "logout") -> bool:
        """End the session of `token` (logout, or a role this server does not admit); False if
        it had already ended."""
        return self._action(protocol.SESSION_END, {"reason": reason}, token).get("ended") is True

    def audit(self, action: str, **fields: Any) -> None:
        """Write one of the server's audit events (operator credential)."""
        self._action(protocol.AUDIT_EMIT, {"action": action, "fields": fields})

    def seller_binding(self, user: str, purpose: str) -> tuple[str | None, str]:
        """(tenant, "") for a seller bound to a tenant and allowed `purpose`; else (None, why)."""
        answer = self._action(protocol.SELLER_BINDING, {"user": user, "purpose": purpose})
        return answer.get("tenant") or None, str(answer.get("why", ""))
