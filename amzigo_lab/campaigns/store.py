"""Campaign state: one row per order ever attempted, in `<home>/state/campaigns.sqlite`.

Owned by the service side (the home's owner: the operator commands and scheduled jobs), apart
from the lake catalog. States of a row:

- `intent`: written and committed (synchronous=FULL) *before* the create call; a row left in
  this state by a crash is reconciled by the next run;
- `sent`: Amazon answered 201, or a reconciliation found the action no longer offered
  (`how` says which);
- `refused`: Amazon refused the call (400/403): never tried again.

An order with a row is never planned again, except an intent that reconciliation proves never
took effect (the action is still offered): that row is deleted and the order planned anew.
No buyer data is stored: order id, marketplace, times and the outcome only.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amzigo_lab import readonly_db
from amzigo_lab.errors import AmzigoError

#: The store's file, under the home's state directory.
DATABASE = "campaigns.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    tenant TEXT NOT NULL,
    amazon_order_id TEXT NOT NULL,
    marketplace_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('intent', 'sent', 'refused')),
    run_id TEXT NOT NULL,
    intent_at TEXT NOT NULL,
    outcome_at TEXT,
    how TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, amazon_order_id)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    source TEXT NOT NULL,
    summary_json TEXT NOT NULL DEFAULT '{}'
);
"""


class CampaignBusy(AmzigoError):
    """Another campaign run of this home is in progress."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Send:
    """One order's campaign row."""

    tenant: str
    amazon_order_id: str
    marketplace_id: str
    state: str
    run_id: str
    intent_at: str
    outcome_at: str | None
    how: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "tenant": self.tenant,
            "amazon_order_id": self.amazon_order_id,
            "marketplace_id": self.marketplace_id,
            "state": self.state,
            "run_id": self.run_id,
            "intent_at": self.intent_at,
            "outcome_at": self.outcome_at,
            "how": self.how,
        }


class CampaignStore:
    """The SQLite state file (WAL, synchronous=FULL: a committed intent survives SIGKILL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    @classmethod
    def for_home(cls, state_dir: Path) -> CampaignStore:
        """The store of a home (`<state>/campaigns.sqlite`)."""
        return cls(state_dir / DATABASE)

    @staticmethod
    def count_in(state_dir: Path) -> int | None:
        """Orders with a row (any state) in the store of a home, read without creating or
        changing it (None: the home has no campaign state yet, or it cannot be read)."""
        return readonly_db.count(state_dir / DATABASE, "SELECT COUNT(*) FROM sends")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rows ------------------------------------------------------------------------------
    def sends(self, tenant: str | None = None, state: str | None = None) -> list[Send]:
        """Rows, optionally of one tenant and/or state, oldest intent first."""
        sql = (
            "SELECT tenant, amazon_order_id, marketplace_id, state, run_id, intent_at, "
            "outcome_at, how FROM sends WHERE 1 = 1"
        )
        args: list[str] = []
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        rows = self.db.execute(sql + " ORDER BY intent_at, amazon_order_id", args)
        return [Send(*r) for r in rows.fetchall()]

    def by_order(self, tenant: str) -> dict[str, Send]:
        """The tenant's rows by order id."""
        return {s.amazon_order_id: s for s in self.sends(tenant)}

    def record_intent(self, tenant: str, order_id: str, marketplace_id: str, run_id: str) -> bool:
        """Commit the intent to send (before the call); False if the order already has a row."""
        try:
            with self.db:
                self.db.execute(
                    "INSERT INTO sends(tenant, amazon_order_id, marketplace_id, state, run_id, "
                    "intent_at) VALUES (?, ?, ?, 'intent', ?, ?)",
                    (tenant, order_id, marketplace_id, run_id, _now()),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the home's campaign lock (`flock`, across processes) or raise CampaignBusy."""
        import fcntl

        lock = self.path.with_suffix(".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise CampaignBusy(
                    f"another `campaign run` holds {lock}: wait for it to finish"
                ) from None
            yield
        finally:
            os.close(fd)

    def record_outcome(self, tenant: str, order_id: str, state: str, how: str) -> None:
        """Commit the outcome of an intent (`sent` or `refused`)."""
        with self.db:
            cur = self.db.execute(
                "UPDATE sends SET state = ?, outcome_at = ?, how = ? "
                "WHERE tenant = ? AND amazon_order_id = ? AND state = 'intent'",
                (state, _now(), how[:300], tenant, order_id),
            )
            if cur.rowcount != 1:
                raise RuntimeError(f"no pending intent for order {order_id} of {tenant}")

    def clear_intent(self, tenant: str, order_id: str) -> None:
        """Forget an intent that never took effect (the action is still offered)."""
        with self.db:
            self.db.execute(
                "DELETE FROM sends WHERE tenant = ? AND amazon_order_id = ? AND state = 'intent'",
                (tenant, order_id),
            )

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, run_id: str, source: str) -> None:
        """Record a run's start."""
        with self.db:
            self.db.execute(
                "INSERT INTO runs(run_id, started_at, source) VALUES (?, ?, ?)",
                (run_id, _now(), source),
            )

    def finish_run(self, run_id: str, summary_json: str) -> None:
        """Record a run's end and summary."""
        with self.db:
            self.db.execute(
                "UPDATE runs SET finished_at = ?, summary_json = ? WHERE run_id = ?",
                (_now(), summary_json, run_id),
            )

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The latest runs, newest first (a run without `finished_at` crashed or is running)."""
        import json

        rows = self.db.execute(
            "SELECT run_id, started_at, finished_at, source, summary_json FROM runs "
            "ORDER BY started_at DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "run_id": r[0],
                "started_at": r[1],
                "finished_at": r[2],
                "source": r[3],
                "summary": json.loads(r[4]),
            }
            for r in rows
        ]

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per tenant and state."""
        out: dict[str, dict[str, int]] = {}
        for tenant, state, n in self.db.execute(
            "SELECT tenant, state, COUNT(*) FROM sends GROUP BY tenant, state ORDER BY 1, 2"
        ):
            out.setdefault(tenant, {})[state] = int(n)
        return out
