"""Identity errors; every message says what went wrong and what to do next.

One branch of the package's exception tree (`amzigo_lab.errors`)::

    AmzigoError
    └── IdentityError
        ├── InvalidCredentials   wrong user, password or code (one message for all three)
        ├── AccountLocked        too many failures; timed unlock or `amzigo users unlock NAME`
        ├── AccountDisabled      deprovisioned; an administrator must enable it
        ├── PasswordRejected     (also a ValueError) a new password breaks a named policy rule
        ├── PasswordExpired      correct credentials, but the password must be changed first
        │   ├── PasswordChangeRequired  ... and a ticket completes the login with a new one
        │   └── OneTimePasswordExpired  a one-time password not changed in time (admin resets)
        ├── SessionExpired       idle or absolute timeout, revoked or unknown token
        ├── UnknownUser          (also a LookupError) no such user id
        ├── UserExists           the user id is taken
        ├── InvalidUserId        (also a ValueError) a user id, role or tenant with a bad format
        └── SchemaTooNew         the database was written by a newer amzigo-lab
"""

from __future__ import annotations

import datetime as dt

from amzigo_lab.errors import AmzigoError


class IdentityError(AmzigoError):
    """Base class of every error the identity store raises on purpose."""


class InvalidCredentials(IdentityError):
    """Wrong user id, password or TOTP code; deliberately does not say which."""

    def __init__(self) -> None:
        super().__init__("invalid username, password or code")


class AccountLocked(IdentityError):
    """The account is locked after too many consecutive failures."""

    def __init__(self, user_id: str, until: dt.datetime) -> None:
        self.user_id = user_id
        self.until = until
        super().__init__(
            f"account {user_id!r} is locked until {until:%Y-%m-%d %H:%M} UTC after too many "
            f"failed logins; try again after that, or ask an administrator to run "
            f"`amzigo users unlock {user_id}`"
        )


class AccountDisabled(IdentityError):
    """The account is disabled (deprovisioned)."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        super().__init__(
            f"account {user_id!r} is disabled; ask an administrator to enable it if you still "
            "need access"
        )


class PasswordRejected(IdentityError, ValueError):
    """A new password breaks a rule of the active preset; `rule` names it."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"password rejected ({rule}): {message}")


class PasswordExpired(IdentityError):
    """Credentials were right but the password must be changed before logging in."""

    def __init__(self, user_id: str, since: dt.datetime | None) -> None:
        self.user_id = user_id
        self.since = since
        when = f" on {since:%Y-%m-%d}" if since is not None else ""
        super().__init__(
            f"the password of {user_id!r} expired{when}; choose a new one by giving the "
            "current password (set_password with current=...), then log in again"
        )


class PasswordChangeRequired(PasswordExpired):
    """Password and code were right, but the password must be changed before a session is
    issued (a one-time password at first login, a forced change, or an expired password).

    `ticket` (a secret: single use, valid a few minutes, never logged) completes the login with
    a new password through `IdentityStore.complete_password_change`, without a second code."""

    def __init__(
        self, user_id: str, since: dt.datetime | None, ticket: str, why: str, minutes: int
    ) -> None:
        self.user_id = user_id
        self.since = since
        self.ticket = ticket
        self.why = why
        IdentityError.__init__(
            self,
            f"{user_id!r} must choose a new password before logging in ({why}); set it within "
            f"{minutes} min, or log in again",
        )


class OneTimePasswordExpired(PasswordExpired):
    """A one-time (initial or admin-set) password was not changed in time."""

    def __init__(self, user_id: str, since: dt.datetime) -> None:
        self.user_id = user_id
        self.since = since
        IdentityError.__init__(
            self,
            f"the one-time password of {user_id!r} expired on {since:%Y-%m-%d %H:%M} UTC without "
            "being changed; ask an administrator to set a new one (amzigo users passwd NAME)",
        )


class SessionExpired(IdentityError):
    """The session token is no longer valid; the user must log in again."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"session {reason}; log in again")


class UnknownUser(IdentityError, LookupError):
    """No user has this id."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        super().__init__(f"no user {user_id!r}; check the spelling or add the user first")


class UserExists(IdentityError):
    """The user id is already taken."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        super().__init__(
            f"user {user_id!r} already exists; choose another id, or change this user's "
            "roles or password instead"
        )


class InvalidUserId(IdentityError, ValueError):
    """A user id, role name or tenant id that does not match the allowed format."""


class SchemaTooNew(IdentityError):
    """The identity database has a schema version newer than this code understands."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"identity database {path} has schema version {found}, newer than the {supported} "
            "this amzigo-lab understands; upgrade amzigo-lab, or use a database made by it"
        )
