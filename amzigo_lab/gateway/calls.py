"""What every gateway call works with: the open home, the token tables, who is calling.

The Flight server (`amzigo_lab.gateway.server`) opens the home and builds one `Calls`;
it hands that object to the action modules (`commands`, `incident_actions`, `policy_actions`),
to the key service (`scale.ScaleKeys`) and to an incident's `Isolator`. None of them imports
the server: they see the home (Governance, the DuckDB connection, the incident store), the
live token tables (service tokens, kernel tokens) and the checks of a caller's credential,
each refusal audited as `gateway.denied`. `text_of`, `date_of` and `moment_of` read the fields
of a request body.

Every method runs on the gateway's home thread.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from amzigo_lab.client import protocol
from amzigo_lab.client.protocol import GatewayProtocolError
from amzigo_lab.errors import AccessDenied
from amzigo_lab.gateway.tokens import ServiceGrant, ServiceTokens, same_secret
from amzigo_lab.gateway.tokens import digest as _digest
from amzigo_lab.governance.identity.errors import SessionExpired

if TYPE_CHECKING:
    import duckdb

    from amzigo_lab.config import Settings
    from amzigo_lab.governance.context import Governance
    from amzigo_lab.governance.incidents import IncidentStore

#: Kernel tokens start with this; each rides on one login session (`kernel_tokens`).
KERNEL_PREFIX = "knl_"
#: An action: (the caller's bearer token, the request body) -> the JSON answer.
Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


def text_of(body: dict[str, Any], key: str) -> str | None:
    """A request field as text (None when absent or empty)."""
    value = body.get(key)
    return None if value in (None, "") else str(value)


def date_of(body: dict[str, Any], key: str) -> dt.date | None:
    """A request field as a date (YYYY-MM-DD; None when absent)."""
    value = text_of(body, key)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise GatewayProtocolError(f"{key} must be a date (YYYY-MM-DD)") from None


def moment_of(body: dict[str, Any], key: str) -> dt.datetime | None:
    """A request field as an ISO time (UTC when it names no zone; None when absent)."""
    value = text_of(body, key)
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise GatewayProtocolError(f"{key} must be an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class Calls:
    """The home one gateway serves and the credentials it has handed out.

    `reload_policy` re-reads the home's policy if it changed on disk; `deliver_alerts`
    evaluates and delivers alerts at once (after a security-relevant event). Both are the
    server's, which owns the policy stamp and the alert pipeline.
    """

    def __init__(
        self,
        settings: Settings,
        gov: Governance,
        con: duckdb.DuckDBPyConnection,
        clock: Callable[[], dt.datetime],
        operator: str,
        incidents: IncidentStore,
        *,
        reload_policy: Callable[[], None],
        deliver_alerts: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.gov = gov
        self.con = con
        self.clock = clock
        self.incidents = incidents
        self.tokens = ServiceTokens(clock)
        #: digest of a kernel token -> the login token it rides on
        self.kernel_tokens: dict[str, str] = {}
        self._operator = operator
        self.reload_policy_if_changed = reload_policy
        self.deliver_alerts = deliver_alerts

    # -- refusals and the operator credential --------------------------------------------------
    def deny(self, reason: str, action: str = "gateway.call") -> None:
        """Refuse, audited as `gateway.denied`."""
        self.gov.emit("gateway.denied", resource=action, decision="deny", reason=reason)
        raise AccessDenied(reason)

    def is_operator(self, token: str) -> bool:
        """Whether `token` is the gateway's operator credential (the service account's)."""
        return bool(token) and same_secret(token, self._operator)

    def require_operator(self, token: str, action: str) -> None:
        """Refuse, audited, unless `token` is the operator credential."""
        if not self.is_operator(token):
            reason = f"{action} needs the gateway's operator credential (the service account)"
            self.deny(reason, action)

    # -- people's sessions ---------------------------------------------------------------------
    def user_session(self, token: str, action: str, *, touch: bool = True) -> Any:
        """The live login session behind `token` (a login token, or a kernel token whose login
        session still lives: logout, disable and expiry end both)."""
        if not token:
            self.deny("no token: log in (`amzigo login NAME`, or amzigo_lab.connect())", action)
        if ServiceTokens.looks_like(token):
            self.deny("a service token cannot open a person's session", action)
        login = token
        if token.startswith(KERNEL_PREFIX):
            parent = self.kernel_tokens.get(_digest(token))
            if parent is None:
                self.deny("the kernel token is revoked or unknown: restart the kernel", action)
            assert parent is not None
            login = parent
        try:
            return self.gov.identity.validate_session(login, touch=touch)
        except SessionExpired as exc:
            if login is not token:
                self.kernel_tokens.pop(_digest(token), None)
            if touch:  # a person's call (background checks are the servers' own)
                self.gov.emit("gateway.denied", resource=action, decision="deny", reason=str(exc))
            raise AccessDenied(f"{exc}: run `amzigo login NAME`") from None

    def login_owner(self, login_token: str) -> str | None:
        """The user of a login token (live or not)."""
        return self.gov.identity.session_owner(login_token)

    def revoke_session_id(self, session_id: int, actor: str, reason: str) -> str | None:
        """Revoke one login session by id, and the kernel tokens riding on it; the user, or
        None if no live session has that id."""
        return self.gov.identity.revoke_session_id(session_id, actor=actor, reason=reason)

    # -- services ------------------------------------------------------------------------------
    def service_grant(self, token: str, action: str) -> ServiceGrant:
        """The grant of a live service token; refused, audited, for any other credential."""
        if not ServiceTokens.looks_like(token):
            self.deny(f"{action} is for service tokens", action)
        try:
            return self.tokens.check(token)
        except AccessDenied as exc:
            self.deny(str(exc), action)
            raise

    # -- administration ------------------------------------------------------------------------
    def admin_actor(
        self,
        token: str,
        body: dict[str, Any],
        action: str,
        *,
        right: str | None = None,
        role: str | None = None,
    ) -> str:
        """Who performs an administrative action.

        A login session whose roles hold `right` (or include `role`): its user. The operator
        credential (only the service account can read it) with a non-empty `break_glass`
        reason: `break-glass:<os user>`, audited with the reason, alerts delivered. A `role`
        (compliance) always needs a named person: break-glass cannot stand in for one.
        """
        if self.is_operator(token):
            reason = " ".join(str(body.get("break_glass") or "").split())[:500]
            os_user = re.sub(r"[^A-Za-z0-9._@-]", "_", str(body.get("os_user") or "unknown"))
            if not reason:
                self.deny(
                    f"{action} with the operator credential needs --break-glass REASON", action
                )
            if role is not None:
                self.deny(
                    f"{action} needs a person with the {role} role; break-glass cannot stand in "
                    f"(create one: amzigo users add NAME --role {role} --break-glass REASON)",
                    action,
                )
            actor = f"break-glass:{os_user[:64]}"
            self.gov.emit(
                protocol.BREAK_GLASS, actor=actor, resource=action, decision="allow", reason=reason
            )
            self.deliver_alerts()
            return actor
        if token.startswith(KERNEL_PREFIX):
            self.deny(f"{action}: a kernel token reads data only; use `amzigo login`", action)
        session = self.user_session(token, action)
        if role is not None:
            self.gov.require_role(session, role, action)
        else:
            self.gov.require_right(session, right or "manage_users", action)
        return str(session.user_id)
