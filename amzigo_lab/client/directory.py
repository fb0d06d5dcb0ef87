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
from amzigo_lab.client.service import operator_token
from amzigo_lab.client.transport import GatewayClient, ensure_gateway


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
        )


class Directory:
    """Identity operations for one home's servers, through its gateway."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def _client(self, token: str | None) -> GatewayClient:
        return GatewayClient(ensure_gateway(self.home), token)

    def _operator(self) -> GatewayClient:
        address = ensure_gateway(self.home)  # first: a gateway started now writes the credential
        return GatewayClient(address, operator_token(self.home))

    def authenticate(self, user: str, password: str, code: str) -> LoginSession:
        """Password + TOTP (lockout and audit in the gateway's identity store)."""
        with self._client(None) as client:
            answer = client.action(
                protocol.LOGIN, {"user": user, "password": password, "code": code}
            )
        return LoginSession.from_answer(str(answer["token"]), answer)

    def session(self, token: str, *, touch: bool = True) -> LoginSession:
        """The live session of `token` (AccessDenied when it ended); `touch` refreshes its idle
        timer (a request by the user does; a background check does not)."""
        with self._client(token) as client:
            answer = client.action(protocol.SESSION_CHECK, {"touch": touch})
        return LoginSession.from_answer(token, answer)

    def end(self, token: str, reason: str = "logout") -> bool:
        """End the session of `token` (logout, or a role this server does not admit); False if
        it had already ended."""
        with self._client(token) as client:
            return client.action(protocol.SESSION_END, {"reason": reason}).get("ended") is True

    def audit(self, action: str, **fields: Any) -> None:
        """Write one of the server's audit events (operator credential)."""
        with self._operator() as client:
            client.action(protocol.AUDIT_EMIT, {"action": action, "fields": fields})

    def seller_binding(self, user: str, purpose: str) -> tuple[str | None, str]:
        """(tenant, "") for a seller bound to a tenant and allowed `purpose`; else (None, why)."""
        with self._operator() as client:
            answer = client.action(protocol.SELLER_BINDING, {"user": user, "purpose": purpose})
        return answer.get("tenant") or None, str(answer.get("why", ""))
