"""The identity SQLite database: connection settings and the versioned schema migrations.

The schema version lives in `PRAGMA user_version`; `MIGRATIONS[i]` moves a database from
version i to i + 1. A database from a newer version is refused, never downgraded.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from .errors import IdentityError, SchemaTooNew

APPLICATION_ID = 0x415A4944  # "AZID": marks the file as an amzigo-lab identity database

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            roles TEXT NOT NULL DEFAULT '[]',
            tenant TEXT,
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'disabled', 'locked')),
            created TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            password_changed_at TEXT NOT NULL,
            must_change_password INTEGER NOT NULL DEFAULT 0,
            failed_count INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            last_login TEXT,
            totp_secret BLOB,
            last_totp_step INTEGER,
            mfa_enrolled_at TEXT
        ) STRICT
        """,
        """
        CREATE TABLE password_history (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            hash TEXT NOT NULL,
            created TEXT NOT NULL
        ) STRICT
        """,
        "CREATE INDEX password_history_user ON password_history(user_id, id)",
        """
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            revoked_at TEXT,
            revoked_reason TEXT
        ) STRICT
        """,
        "CREATE INDEX sessions_user ON sessions(user_id)",
    ),
    (  # the newest data-policy version each user was shown at login (policy_log.notice)
        """
        CREATE TABLE policy_seen (
            user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            seen_at TEXT NOT NULL
        ) STRICT
        """,
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def _create_private(path: Path) -> None:
    """Create an empty database file readable only by its owner, if it does not exist."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating or migrating as needed) the identity database at `path`."""
    target = Path(path)
    _create_private(target)
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
    try:
        _check_version(conn, str(target))
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        _migrate(conn, str(target))
    except BaseException:
        conn.close()
        raise
    return conn


def _check_version(conn: sqlite3.Connection, path: str) -> int:
    """Return the schema version; refuse newer schemas and files that are not ours."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(path, version, SCHEMA_VERSION)
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    foreign = app_id not in (0, APPLICATION_ID)
    if not foreign and version == 0:
        foreign = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    if foreign:
        raise IdentityError(
            f"{path} is not an amzigo-lab identity database; give the path of the identity "
            "database, or a new file"
        )
    return version


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Apply the pending migrations, each in its own transaction."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _check_version(conn, path)  # again, under the write lock
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
