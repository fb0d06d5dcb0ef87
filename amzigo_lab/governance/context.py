"""`Governance`: one home's lake, audit log, identity store, grants and policy, opened together."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from types import TracebackType
from typing import Any

from argon2 import PasswordHasher

from amzigo_lab.config import Settings, config_sections, load_settings
from amzigo_lab.errors import AccessDenied, ConfigError
from amzigo_lab.governance.audit import AuditLog
from amzigo_lab.governance.auditing import AuditLogSink, open_audit_log
from amzigo_lab.governance.grants import GRANTS_DB, GrantStore
from amzigo_lab.governance.identity import IdentityStore, Session, utc_now
from amzigo_lab.governance.identity.standing import DATABASE_NAME
from amzigo_lab.governance.policy import Policy, Principal, archive_policy, load_policy
from amzigo_lab.governance.policy_log import record_current
from amzigo_lab.home import open_lake
from amzigo_lab.lake.store import Lake

IDENTITY_DB = DATABASE_NAME
TOTP_SECRET = "identity-totp-key"  # noqa: S105 - a secret's name


class Governance:
    """Everything governance needs for one home. Open with `Governance.open(home)`."""

    def __init__(
        self,
        settings: Settings,
        lake: Lake,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.lake = lake
        sink = lake.audit
        if not isinstance(sink, AuditLogSink):  # a lake opened with a test sink: use the log
            sink = AuditLogSink(lambda: open_audit_log(settings, lake))
            self._own_sink = True
        else:
            self._own_sink = False
        self.sink: AuditLogSink = sink
        ident = config_sections(settings).get("identity", {})
        totp_key = lake.secret(TOTP_SECRET)
        self.identity = IdentityStore(
            settings.home / IDENTITY_DB,
            lambda: totp_key,
            clock=clock,
            policy=str(ident.get("password_preset", "company")),
            max_failures=_int(ident, "max_failures", 10, 1, 10),
            lockout_minutes=_int(ident, "lockout_minutes", 15, 1, 24 * 60),
            session_idle=dt.timedelta(minutes=_int(ident, "session_idle_minutes", 30, 1, 1440)),
            session_absolute=dt.timedelta(
                hours=_int(ident, "session_absolute_hours", 12, 1, 24 * 7)
            ),
            hasher=hasher,
            on_event=self.sink.identity_event,
            one_time_ttl=dt.timedelta(hours=_int(ident, "one_time_password_hours", 72, 1, 24 * 30)),
        )
        self.grants = GrantStore(settings.home / GRANTS_DB)
        self.policy = self.load_policy()

    @classmethod
    def open(
        cls,
        home: str | Settings | None = None,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> Governance:
        """Open the governance of an initialised home (default: $AMZIGO_HOME, else the user's
        data directory)."""
        settings = home if isinstance(home, Settings) else load_settings(home)
        lake = open_lake(settings)
        try:
            return cls(settings, lake, hasher=hasher, clock=clock)
        except BaseException:
            lake.close()
            raise

    @property
    def audit_log(self) -> AuditLog:
        """The home's audit log."""
        return self.sink.log

    def emit(self, action: str, **fields: Any) -> str:
        """Write one audit event."""
        return self.sink.emit(action, **fields)

    def load_policy(self) -> Policy:
        """Load the policy; record its digest and audit `policy.changed` when it differs."""
        policy = load_policy(self.settings.home)
        archive_policy(self.settings.home, policy)  # before the event that names it
        previous = self.grants.get_meta("policy_sha256")
        if previous != policy.sha256:
            action = "policy.loaded" if previous is None else "policy.changed"
            source = (
                "home"
                if policy.source.endswith(str(self.settings.home / "policy.toml"))
                else "default"
            )
            self.emit(
                action,
                resource="policy",
                reason=f"sha256 {(previous or '-')[:16]} -> {policy.sha256[:16]} ({source})",
            )
            self.grants.set_meta("policy_sha256", policy.sha256)
        record_current(self, policy)  # a home older than the change log: version 1
        return policy

    def principal(self, user_id: str) -> Principal:
        """The policy's view of a user: roles, tenant binding, grants."""
        user = self.identity.get(user_id)
        return Principal(user.user_id, user.roles, user.tenant, self.grants.tenants_of(user_id))

    def principal_of(self, session: Session) -> Principal:
        """The policy's view of the user of a live session."""
        return Principal(
            session.user_id, session.roles, session.tenant, self.grants.tenants_of(session.user_id)
        )

    def require_right(self, session: Session, right: str, action: str) -> Principal:
        """The session's principal if it holds `right`; else audit the denial and raise."""
        who = self.principal_of(session)
        if not self.policy.has_right(who, right):
            self._refuse(
                session,
                who,
                action,
                f"{action} needs a role with the {right} right (admin or compliance)",
                "ask an administrator for such a role",
            )
        return who

    def require_role(self, session: Session, role: str, action: str) -> Principal:
        """The session's principal if one of its effective roles is `role` (compliance
        commands need a named person in that role); else audit the denial and raise."""
        who = self.principal_of(session)
        if role not in {r.name for r in self.policy.effective_roles(who)}:
            self._refuse(
                session,
                who,
                action,
                f"{action} needs the {role} role",
                "ask an administrator for it",
            )
        return who

    def _refuse(
        self, session: Session, who: Principal, action: str, need: str, next_step: str
    ) -> None:
        """Audit an administrative denial naming the user, then raise AccessDenied."""
        reason = f"{need}; {who.user_id} has role(s) {', '.join(who.roles) or '(none)'}"
        self.emit(
            action,
            actor=who.user_id,
            session=f"s{session.session_id}",
            resource="governance",
            decision="deny",
            reason=reason,
        )
        raise AccessDenied(f"{reason}; {next_step}")

    def close(self) -> None:
        """Close every store (the audit log writes a final signed checkpoint)."""
        self.grants.close()
        self.identity.close()
        if self._own_sink:
            self.sink.close()
        self.lake.close()

    def __enter__(self) -> Governance:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _int(section: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(
            f"invalid [identity] {key} = {value!r} in config.toml: expected an integer "
            f"from {lo} to {hi}"
        )
    return value
