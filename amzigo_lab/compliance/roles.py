"""Who may run compliance commands: the `compliance` role from the home's identity store.

The CLI authenticates the caller first (their login session, checked by the home's gateway:
`amzigo_lab.cli.auth`) and passes the session's user as the actor; `require_role` checks that
user's roles and status again here, asking the home's identity store (its read-only
`read_standing`), so a library caller cannot skip it. Without an identity store the command is
refused.
"""

from __future__ import annotations

from pathlib import Path

from amzigo_lab.compliance.common import SYSTEM_ACTOR, ComplianceError
from amzigo_lab.errors import AccessDenied
from amzigo_lab.governance.identity.errors import IdentityError
from amzigo_lab.governance.identity.standing import DATABASE_NAME, MissingDatabase, read_standing

COMPLIANCE = "compliance"


def identity_path(home: Path) -> Path:
    """The identity store of a home."""
    return home / DATABASE_NAME


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
    try:
        standing = read_standing(path, actor)
    except MissingDatabase:
        raise ComplianceError(
            f"no identity store at {path}: create users first (the `{role}` role is required "
            f"for this command), then log in as one (amzigo login NAME)"
        ) from None
    except IdentityError as exc:
        raise ComplianceError(str(exc)) from None
    if standing is None:
        raise AccessDenied(f"unknown user {actor!r}: ask an admin to create it")
    if standing.disabled:
        raise AccessDenied(f"user {actor!r} is disabled")
    if role not in standing.roles:
        raise AccessDenied(
            f"user {actor!r} lacks the {role!r} role needed here (has: "
            f"{', '.join(sorted(standing.roles)) or 'none'}); ask an admin to grant it"
        )
    return actor
