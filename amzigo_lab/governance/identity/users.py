"""Users as the rest of the system sees them (no secrets), their enrolment, and name rules."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from .errors import InvalidUserId
from .qr import write_qr_png

_USER_ID = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class UserStatus(StrEnum):
    """Account status as stored; `locked` ends by itself at `locked_until`."""

    ACTIVE = "active"
    DISABLED = "disabled"
    LOCKED = "locked"


@dataclass(frozen=True)
class User:
    """A user without any secret: no password hash, no TOTP secret."""

    user_id: str
    roles: tuple[str, ...]
    tenant: str | None
    status: UserStatus
    created: dt.datetime
    password_changed_at: dt.datetime
    must_change_password: bool
    failed_count: int
    locked_until: dt.datetime | None
    last_login: dt.datetime | None
    mfa_enrolled_at: dt.datetime | None
    #: When a one-time password (set by an administrator) stops working; None if not one.
    one_time_expires: dt.datetime | None = None

    @property
    def mfa_enrolled(self) -> bool:
        """Tell whether the user has a TOTP secret."""
        return self.mfa_enrolled_at is not None


@dataclass(frozen=True)
class Enrollment:
    """The one-time TOTP provisioning data handed to a new user; never stored in clear."""

    user_id: str
    provisioning_uri: str = field(repr=False)

    def write_qr(self, path: str | os.PathLike[str]) -> Path:
        """Write the provisioning URI as a QR PNG (mode 0600) for an authenticator app."""
        return write_qr_png(self.provisioning_uri, path)


def user_id(value: str) -> str:
    """Return `value` if it is a valid user id, else raise InvalidUserId."""
    if not isinstance(value, str) or not _USER_ID.fullmatch(value):
        raise InvalidUserId(
            f"invalid user id {value!r}: use 3-64 characters a-z, 0-9, '.', '_' or '-', "
            "starting with a letter"
        )
    return value


def roles(values: Iterable[str]) -> tuple[str, ...]:
    """Return the validated roles in order, without duplicates."""
    if isinstance(values, str):
        raise InvalidUserId(f"roles must be a list of names, not the string {values!r}")
    out: list[str] = []
    for role in values:
        if not isinstance(role, str) or not _ROLE.fullmatch(role):
            raise InvalidUserId(
                f"invalid role {role!r}: use 1-32 characters a-z, 0-9 or '_', "
                "starting with a letter"
            )
        if role not in out:
            out.append(role)
    return tuple(out)


def tenant(value: str | None) -> str | None:
    """Return `value` if it is None or a valid tenant id, else raise InvalidUserId."""
    if value is not None and (not isinstance(value, str) or not _TENANT.fullmatch(value)):
        raise InvalidUserId(
            f"invalid tenant id {value!r}: use 1-64 characters a-z, 0-9, '-' or '_', "
            "starting with a letter or digit"
        )
    return value
