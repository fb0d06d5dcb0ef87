"""A user's standing (roles and status) read from the identity database, for other layers.

Read-only: it needs no key, writes nothing and creates nothing (a missing database is reported
as such, never made), so a check elsewhere (the compliance role) asks the identity store's own
code rather than reading its tables.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .errors import IdentityError
from .users import UserStatus

#: The identity database's file name inside a home.
DATABASE_NAME = "identity.sqlite"


@dataclass(frozen=True)
class Standing:
    """What another layer may ask of a user: their roles and their stored account status."""

    user_id: str
    roles: frozenset[str]
    status: UserStatus

    @property
    def disabled(self) -> bool:
        """True for a disabled (deprovisioned) account."""
        return self.status is UserStatus.DISABLED


class MissingDatabase(IdentityError):
    """There is no identity database at the given path."""


def read_standing(db_path: str | os.PathLike[str], user_id: str) -> Standing | None:
    """The standing of `user_id`, or None for an unknown user.

    Raises MissingDatabase when the file does not exist, and IdentityError naming the path
    when it cannot be read."""
    path = Path(db_path)
    if not path.exists():
        raise MissingDatabase(f"no identity store at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT roles, status FROM users WHERE id = ?", (user_id,)).fetchone()
    except sqlite3.DatabaseError as exc:
        raise IdentityError(f"cannot read the identity store {path}: {exc}") from None
    finally:
        db.close()
    if row is None:
        return None
    return Standing(user_id, frozenset(json.loads(row[0])), UserStatus(row[1]))
