"""Who may run compliance commands: the `compliance` role from the home's identity store.

The CLI authenticates the caller first (their login session, checked by the home's gateway:
`amzigo_lab.cli.auth`) and passes the session's user as the actor; `require_role` checks that
user's roles and status again in `<home>/identity.sqlite` here, so a library caller cannot skip
it. Without an identity store the command is refused.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from amzigo_lab.compliance.common import SYSTEM_ACTOR, ComplianceError
from amzigo_lab.errors import AccessDenied

COMPLIANCE = "compliance"


def identity_path(home: Path) -> Path:
    """The identity store of a home."""
    return home / "identity.sqlite"


def require_role(actor: str, role: str, home: Path) -> str:
    """Return `actor` if it is an active user holding `role`; raise otherwise.

    The scheduled purge runs as `system:retention` without this check; that name is refused
    here, so it can never be borrowed to place holds or erase data.
    """
    if actor == SYSTEM_ACTOR or ":" in actor:
        raise AccessDenied(
            f"{actor!r} is a system identity: log in as a person (amzigo login NAME)"
        )
    path = identity_path(home)
    if not path.exists():
        raise ComplianceError(
            f"no identity store at {path}: create users first (the `{role}` role is required "
            f"for this command), then log in as one (amzigo login NAME)"
        )
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT roles, status FROM users WHERE id = ?", (actor,)).fetchone()
    except sqlite3.DatabaseError as exc:
        raise ComplianceError(f"cannot read the identity store {path}: {exc}") from None
    finally:
        db.close()
    if row is None:
        raise AccessDenied(f"unknown user {actor!r}: ask an admin to create it")
    roles = set(json.loads(row[0]))
    if row[1] == "disabled":
        raise AccessDenied(f"user {actor!r} is disabled")
    if role not in roles:
        raise AccessDenied(
            f"user {actor!r} lacks the {role!r} role needed here (has: "
            f"{', '.join(sorted(roles)) or 'none'}); ask an admin to grant it"
        )
    return actor
