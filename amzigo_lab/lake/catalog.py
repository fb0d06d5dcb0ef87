"""The catalog: one SQLite file that is the lake's single commit point.

A partition (and each file in it) is visible exactly when its rows here are committed. The
catalog also holds dataset classifications, wrapped partition keys, batches (for idempotent
re-writes), sync state and encrypted secrets. Its schema is versioned by `PRAGMA user_version`
and upgraded by the ordered `MIGRATIONS`; a catalog from a newer version is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amzigo_lab.errors import CatalogError

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE datasets (
        name TEXT PRIMARY KEY,
        origin TEXT NOT NULL CHECK (origin IN ('amazon', 'internal')),
        pii INTEGER NOT NULL,
        columns_json TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        retention_rule TEXT NOT NULL,
        registered_at TEXT NOT NULL
    );
    CREATE TABLE keys (
        key_id TEXT PRIMARY KEY,
        wrapped BLOB,
        master_key_id TEXT,
        created_at TEXT NOT NULL,
        destroyed_at TEXT
    );
    CREATE TABLE partitions (
        id INTEGER PRIMARY KEY,
        dataset TEXT NOT NULL REFERENCES datasets(name),
        tenant TEXT NOT NULL,
        ingest_date TEXT NOT NULL,
        purge_date TEXT NOT NULL,
        rel_dir TEXT NOT NULL,
        key_id TEXT NOT NULL REFERENCES keys(key_id),
        state TEXT NOT NULL CHECK (state IN ('live', 'dropping', 'dropped')),
        row_count INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        dropped_at TEXT
    );
    CREATE UNIQUE INDEX partitions_live
        ON partitions (dataset, tenant, ingest_date, purge_date) WHERE state != 'dropped';
    CREATE INDEX partitions_purge ON partitions (state, purge_date);
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        partition_id INTEGER NOT NULL REFERENCES partitions(id),
        batch_id TEXT NOT NULL,
        rel_path TEXT NOT NULL UNIQUE,
        row_count INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        deleted_at TEXT
    );
    CREATE INDEX files_partition ON files (partition_id);
    CREATE TABLE batches (
        dataset TEXT NOT NULL,
        tenant TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        row_count INTEGER NOT NULL,
        committed_at TEXT NOT NULL,
        PRIMARY KEY (dataset, tenant, batch_id)
    );
    CREATE TABLE sync_state (
        tenant TEXT NOT NULL,
        stream TEXT NOT NULL,
        state_json TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant, stream)
    );
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        ciphertext BLOB NOT NULL,
        master_key_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        rotated_at TEXT NOT NULL
    );
    CREATE TABLE destructions (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        record_json TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 2: compliance (amzigo_lab/compliance): legal holds, derived outputs, DSR blind index and
    # requests, objections, destruction certificates, resumable compliance runs
    """
    CREATE TABLE legal_holds (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        dataset TEXT,
        from_date TEXT,
        to_date TEXT,
        reason TEXT NOT NULL,
        until TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        released_by TEXT,
        released_at TEXT,
        expired_at TEXT
    );
    CREATE TABLE derived_outputs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        tenant TEXT NOT NULL,
        dataset TEXT NOT NULL,
        source_date TEXT NOT NULL,
        purge_date TEXT NOT NULL,
        subject_id TEXT,
        created_at TEXT NOT NULL,
        deleted_at TEXT
    );
    CREATE INDEX derived_outputs_purge ON derived_outputs (deleted_at, purge_date);
    CREATE TABLE dsr_index (
        token TEXT NOT NULL,
        tenant TEXT NOT NULL,
        partition_id INTEGER NOT NULL,
        amazon_order_id TEXT NOT NULL,
        PRIMARY KEY (token, partition_id, amazon_order_id)
    );
    CREATE INDEX dsr_index_partition ON dsr_index (partition_id);
    CREATE TABLE dsr_indexed (partition_id INTEGER PRIMARY KEY, row_count INTEGER NOT NULL);
    CREATE TABLE dsr_requests (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        received_at TEXT NOT NULL,
        deadline TEXT NOT NULL,
        status TEXT NOT NULL,
        actor TEXT NOT NULL,
        completed_at TEXT,
        detail_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE dsr_objections (
        token TEXT PRIMARY KEY,
        request_id TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE dsr_objected_orders (
        tenant TEXT NOT NULL,
        amazon_order_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        PRIMARY KEY (tenant, amazon_order_id)
    );
    CREATE TABLE certificates (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        reference TEXT NOT NULL,
        created_at TEXT NOT NULL,
        body_json TEXT NOT NULL,
        signature TEXT NOT NULL,
        validation_json TEXT
    );
    CREATE TABLE compliance_runs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        reference TEXT NOT NULL,
        actor TEXT NOT NULL,
        scope_json TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        certificate_id TEXT,
        event_ids_json TEXT NOT NULL DEFAULT '[]'
    );
    """,
    # 3: row MACs (lake/rowmac.py): HMAC-SHA256 of each partition, file and certificate row
    # under a key derived from the master key. Rows of older catalogs are MACed once, when the
    # lake is next opened with its master key (the marker below; see `Lake._migrate_row_macs`).
    """
    ALTER TABLE partitions ADD COLUMN mac TEXT;
    ALTER TABLE files ADD COLUMN mac TEXT;
    ALTER TABLE certificates ADD COLUMN mac TEXT;
    INSERT INTO meta(key, value) VALUES ('row_mac_migration', 'pending');
    """,
    # 4: row MACs of legal holds and derived outputs (a forged hold would keep data past its
    # deadline). Existing rows are MACed once, like migration 3 (`Lake._migrate_row_macs`).
    """
    ALTER TABLE legal_holds ADD COLUMN mac TEXT;
    ALTER TABLE derived_outputs ADD COLUMN mac TEXT;
    INSERT INTO meta(key, value) VALUES ('hold_mac_migration', 'pending');
    """,
)


#: every partition state (live -> dropping -> dropped)
ALL_STATES = ("live", "dropping", "dropped")


def utcnow() -> dt.datetime:
    """The current UTC time (the default clock)."""
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    """UTC ISO-8601 with a Z."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: Below this many free bytes a failure to open the catalog is reported as a full disk.
_FULL_BYTES = 1 << 20


@dataclass(frozen=True)
class Partition:
    """A committed (or dropping/dropped) partition as the catalog knows it."""

    id: int
    dataset: str
    tenant: str
    ingest_date: dt.date
    purge_date: dt.date
    rel_dir: str
    key_id: str
    state: str
    row_count: int
    bytes: int

    @staticmethod
    def from_row(row: sqlite3.Row) -> Partition:
        """Build from a `partitions` row."""
        return Partition(
            id=row["id"],
            dataset=row["dataset"],
            tenant=row["tenant"],
            ingest_date=dt.date.fromisoformat(row["ingest_date"]),
            purge_date=dt.date.fromisoformat(row["purge_date"]),
            rel_dir=row["rel_dir"],
            key_id=row["key_id"],
            state=row["state"],
            row_count=row["row_count"],
            bytes=row["bytes"],
        )


@dataclass(frozen=True)
class FileEntry:
    """One committed Parquet file."""

    partition_id: int
    rel_path: str
    row_count: int
    bytes: int
    sha256: str


class Catalog:
    """The SQLite catalog of one home."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.touch(mode=0o600)  # holds wrapped keys and secrets: owner only
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA secure_delete=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            free = shutil.disk_usage(path.parent).free
            if free < _FULL_BYTES or "disk is full" in str(exc):
                raise CatalogError(
                    f"cannot open catalog {path}: no space left on the device ({free} bytes "
                    f"free; SQLite: {exc}); free space, then re-run (the catalog is unchanged)"
                ) from None
            raise CatalogError(
                f"cannot open catalog {path}: {exc}. Restore it from backup or run `amzigo doctor`"
            ) from None

    @classmethod
    def read_only(cls, path: Path) -> Catalog:
        """Open for reading only, creating and changing no file (for `amzigo audit verify`).

        With no WAL file (no writer active) the database is opened immutable, so SQLite
        creates no -wal/-shm files; with one, it is opened read-only and sees the WAL.
        """
        if not path.exists():
            raise CatalogError(f"no catalog at {path}: run `amzigo init` (or set AMZIGO_HOME)")
        wal = path.with_name(path.name + "-wal")
        mode = "ro" if wal.exists() else "ro&immutable=1"
        cat = cls.__new__(cls)
        cat.path = path
        try:
            cat.db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode={mode}", uri=True, isolation_level=None
            )
            cat.db.row_factory = sqlite3.Row
            version = cat.db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"cannot read catalog {path}: {exc}") from None
        if version != len(MIGRATIONS):
            cat.db.close()
            raise CatalogError(
                f"catalog {path} has schema version {version}, expected {len(MIGRATIONS)}: "
                "open the home with another command first (it upgrades the catalog)"
            )
        return cat

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise CatalogError(
                f"catalog {self.path} has schema version {version}, but this amzigo-lab "
                f"understands up to {len(MIGRATIONS)}: upgrade amzigo-lab"
            )
        for number in range(version, len(MIGRATIONS)):
            with self.transaction():
                for statement in _split(MIGRATIONS[number]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        """The catalog's schema version."""
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def checkpoint(self) -> None:
        """Fold the WAL into the database and truncate it (drops stale copies of deleted rows)."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- meta ------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A meta value."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (inside or outside a transaction)."""
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- queries ---------------------------------------------------------------------------
    def partitions(
        self,
        dataset: str | None = None,
        tenants: list[str] | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        states: tuple[str, ...] = ("live",),
    ) -> list[Partition]:
        """Partitions matching the filters (ingest_date within [start, end])."""
        marks = ",".join("?" * len(states))  # only placeholders are spliced into SQL text
        sql = f"SELECT * FROM partitions WHERE state IN ({marks})"  # noqa: S608
        args: list[Any] = list(states)
        if dataset is not None:
            sql += " AND dataset = ?"
            args.append(dataset)
        if tenants is not None:
            sql += f" AND tenant IN ({','.join('?' * len(tenants))})"
            args.extend(tenants)
        if start is not None:
            sql += " AND ingest_date >= ?"
            args.append(start.isoformat())
        if end is not None:
            sql += " AND ingest_date <= ?"
            args.append(end.isoformat())
        sql += " ORDER BY dataset, tenant, ingest_date, purge_date"
        return [Partition.from_row(r) for r in self.db.execute(sql, args)]

    def partition(self, partition_id: int) -> Partition:
        """One partition by id."""
        row = self.db.execute("SELECT * FROM partitions WHERE id = ?", (partition_id,)).fetchone()
        if row is None:
            raise CatalogError(f"no partition with id {partition_id}; see `amzigo lake ls`")
        return Partition.from_row(row)

    def files(self, partition_ids: list[int], include_deleted: bool = False) -> list[FileEntry]:
        """Files of the given partitions."""
        if not partition_ids:
            return []
        out: list[FileEntry] = []
        for i in range(0, len(partition_ids), 500):
            chunk = partition_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            sql = (
                "SELECT partition_id, rel_path, row_count, bytes, sha256 FROM files "  # noqa: S608
                f"WHERE partition_id IN ({marks})"
            )
            if not include_deleted:
                sql += " AND deleted_at IS NULL"
            out.extend(FileEntry(*r) for r in self.db.execute(sql + " ORDER BY id", chunk))
        return out

    def wrapped_keys(self, key_ids: list[str]) -> dict[str, tuple[bytes, str]]:
        """key_id -> (wrapped key, master key id) for live keys."""
        out: dict[str, tuple[bytes, str]] = {}
        for i in range(0, len(key_ids), 500):
            chunk = key_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT key_id, wrapped, master_key_id FROM keys WHERE destroyed_at IS NULL "  # noqa: S608
                f"AND key_id IN ({marks})",
                chunk,
            )
            out.update({r[0]: (bytes(r[1]), r[2]) for r in rows})
        return out

    def batch_exists(self, dataset: str, tenant: str, batch_id: str) -> bool:
        """Whether a batch was already committed."""
        row = self.db.execute(
            "SELECT 1 FROM batches WHERE dataset = ? AND tenant = ? AND batch_id = ?",
            (dataset, tenant, batch_id),
        ).fetchone()
        return row is not None

    def live_rel_paths(self) -> set[str]:
        """Relative paths of every file a live or dropping partition owns."""
        rows = self.db.execute(
            "SELECT f.rel_path FROM files f JOIN partitions p ON p.id = f.partition_id "
            "WHERE f.deleted_at IS NULL AND p.state != 'dropped'"
        )
        return {r[0] for r in rows}

    def tenants_seen(self) -> set[str]:
        """Every tenant with a partition (in any state, dropped ones too) or sync state."""
        rows = self.db.execute("SELECT tenant FROM partitions UNION SELECT tenant FROM sync_state")
        return {r[0] for r in rows}

    # -- sync state ------------------------------------------------------------------------
    def get_sync_state(self, tenant: str, stream: str) -> dict[str, Any]:
        """The durable sync state of one stream for one tenant ({} if none)."""
        row = self.db.execute(
            "SELECT state_json FROM sync_state WHERE tenant = ? AND stream = ?", (tenant, stream)
        ).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def put_sync_state(self, tenant: str, stream: str, state: dict[str, Any]) -> None:
        """Replace the sync state of one stream for one tenant."""
        self.db.execute(
            "INSERT INTO sync_state(tenant, stream, state_json, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(tenant, stream) DO UPDATE SET state_json = excluded.state_json, "
            "updated_at = excluded.updated_at",
            (tenant, stream, json.dumps(state, sort_keys=True), iso(utcnow())),
        )

    def all_sync_states(self) -> list[tuple[str, str, dict[str, Any], str]]:
        """Every (tenant, stream, state, updated_at)."""
        rows = self.db.execute("SELECT * FROM sync_state ORDER BY tenant, stream")
        return [(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]


def _split(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
