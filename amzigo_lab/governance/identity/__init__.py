"""Identity: users, argon2id passwords under named presets, TOTP MFA, lockout and sessions.

Owns the identity SQLite database and nothing else; imports no other amzigo_lab layer.
Entry point: `IdentityStore(db_path, key_provider, ...)`.
"""

from .errors import (
    AccountDisabled,
    AccountLocked,
    IdentityError,
    InvalidCredentials,
    InvalidUserId,
    OneTimePasswordExpired,
    PasswordChangeRequired,
    PasswordExpired,
    PasswordRejected,
    SchemaTooNew,
    SessionExpired,
    UnknownUser,
    UserExists,
)
from .passwords import COMPANY, DEFAULT_POLICY, NIST_800_63B, PRESETS, PasswordPolicy, preset
from .sessions import Session
from .store import Clock, EventSink, IdentityStore, utc_now
from .users import Enrollment, User, UserStatus

__all__ = [
    "COMPANY",
    "DEFAULT_POLICY",
    "NIST_800_63B",
    "PRESETS",
    "AccountDisabled",
    "AccountLocked",
    "Clock",
    "Enrollment",
    "EventSink",
    "IdentityError",
    "IdentityStore",
    "InvalidCredentials",
    "InvalidUserId",
    "OneTimePasswordExpired",
    "PasswordChangeRequired",
    "PasswordExpired",
    "PasswordPolicy",
    "PasswordRejected",
    "SchemaTooNew",
    "Session",
    "SessionExpired",
    "UnknownUser",
    "User",
    "UserExists",
    "UserStatus",
    "preset",
    "utc_now",
]
