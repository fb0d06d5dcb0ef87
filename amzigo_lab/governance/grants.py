"""Tenant grants (which tenants an analyst or PII processor may read) and governance metadata.

A small SQLite file `<home>/grants.sqlite`, separate from the identity database so identity
stays a self-contained package. Grants are audited by the caller (`Governance`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from pathlib import Path

from amzigo_lab.governance.identity.users import tenant as check_tenant
from amzigo_lab.governance.identity.users import user_id as check_user

#: The file of a home's grants and governance metadata, under the home.
GRANTS_DB = "grants.sqlite"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS grants (user_id TEXT NOT NULL, tenant TEXT NOT NULL,"
    " granted_by TEXT NOT NULL, granted_at TEXT NOT NULL, PRIMARY KEY (user_id, tenant)) STRICT",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT",
)


class GrantStore:
    """Tenant grants per user, plus key/value metadata (e.g. the last policy digest)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._lock = threading.RLock()
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA journal_mode = WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def grant(self, user_id: str, tenant: str, *, actor: str) -> bool:
        """Grant `tenant` to `user_id`; False if it was already granted."""
        uid, tid = check_user(user_id), check_tenant(tenant)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO grants VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (uid, tid, actor, now),
            )
        return cur.rowcount > 0

    def revoke(self, user_id: str, tenant: str) -> bool:
        """Withdraw a grant; False if there was none."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM grants WHERE user_id = ? AND tenant = ?", (user_id, tenant)
            )
        return cur.rowcount > 0

    def tenants_of(self, user_id: str) -> frozenset[str]:
        """The tenants granted to `user_id`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT tenant FROM grants WHERE user_id = ?", (user_id,)
            ).fetchall()
        return frozenset(r[0] for r in rows)

    def all_grants(self) -> dict[str, list[str]]:
        """user id -> sorted granted tenants."""
        out: dict[str, list[str]] = {}
        with self._lock:
            rows = self._db.execute("SELECT user_id, tenant FROM grants ORDER BY 1, 2").fetchall()
        for uid, tenant in rows:
            out.setdefault(uid, []).append(tenant)
        return out

    def count(self) -> int:
        """How many (user, tenant) grants there are."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM grants").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        """A metadata value, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a metadata value."""
        with self._lock:
            self._db.execute(
                "INSERT INTO meta VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
