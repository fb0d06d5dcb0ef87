"""The catalog's record tables, each behind a small repository class.

The lake owns these tables (their schema and migrations are in lake/catalog.py, their row MACs in
lake/rowmac.py); the compliance layer decides what goes in them and calls the methods here instead
of writing SQL into the catalog. Each class wraps one `Catalog`; a method that changes rows runs
in its own catalog transaction, and one that changes MAC-sealed rows (certificates, legal holds,
derived outputs) checks them first and seals them in the same transaction.

- `Runs`: resumable compliance runs (`compliance_runs`) and the audit event ids recorded on them;
- `Destructions`: destruction records (`destructions`);
- `Certificates`: signed destruction certificates (`certificates`);
- `Holds`: legal holds (`legal_holds`);
- `DerivedOutputs`: files derived from lake data (`derived_outputs`);
- `SubjectIndex`: the DSR blind index and objections (`dsr_index`, `dsr_indexed`,
  `dsr_objections`, `dsr_objected_orders`);
- `SubjectRequests`: data-subject requests (`dsr_requests`);
- `forget_tenant`: a deletion notice's catalog rows of a tenant (sync state, blind index).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from amzigo_lab.lake.catalog import Catalog
from amzigo_lab.lake.rowmac import (
    RowProblem,
    TamperedRow,
    check_certificates,
    check_derived,
    check_holds,
    seal_certificates,
    seal_derived,
    seal_holds,
)


class Runs:
    """Resumable compliance runs: one row per purge, notice or recovery until it finishes."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def event_ids(self, run_id: str) -> list[str] | None:
        """The audit event ids recorded on a run (None: no such run)."""
        row = self.catalog.db.execute(
            "SELECT event_ids_json FROM compliance_runs WHERE id = ?", (run_id,)
        ).fetchone()
        return list(json.loads(row[0])) if row else None

    def add_event(self, run_id: str, event_id: str) -> None:
        """Record one more audit event id on a run (one transaction)."""
        with self.catalog.transaction() as db:
            row = db.execute(
                "SELECT event_ids_json FROM compliance_runs WHERE id = ?", (run_id,)
            ).fetchone()
            ids = [*json.loads(row[0]), event_id] if row else [event_id]
            db.execute(
                "UPDATE compliance_runs SET event_ids_json = ? WHERE id = ?",
                (json.dumps(ids), run_id),
            )

    def unfinished_id(self, kind: str, reference: str) -> str | None:
        """The oldest unfinished run of this kind and reference, if any."""
        row = self.catalog.db.execute(
            "SELECT id FROM compliance_runs WHERE kind = ? AND reference = ? AND finished_at IS "
            "NULL ORDER BY started_at LIMIT 1",
            (kind, reference),
        ).fetchone()
        return None if row is None else str(row[0])

    def start(
        self,
        run_id: str,
        kind: str,
        reference: str,
        actor: str,
        scope: dict[str, Any],
        started_at: str,
    ) -> None:
        """Record a new run."""
        with self.catalog.transaction() as db:
            db.execute(
                "INSERT INTO compliance_runs(id, kind, reference, actor, scope_json, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, kind, reference, actor, json.dumps(scope, sort_keys=True), started_at),
            )

    def finish(self, run_id: str, finished_at: str, certificate_id: str | None) -> None:
        """Mark a run finished, with the certificate that covers it."""
        with self.catalog.transaction() as db:
            db.execute(
                "UPDATE compliance_runs SET finished_at = ?, certificate_id = ? WHERE id = ?",
                (finished_at, certificate_id, run_id),
            )

    def unfinished(self, kind: str) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(id, reference, actor, scope) of every unfinished run of a kind, oldest first."""
        rows = self.catalog.db.execute(
            "SELECT id, reference, actor, scope_json FROM compliance_runs WHERE kind = ? AND "
            "finished_at IS NULL ORDER BY started_at",
            (kind,),
        ).fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3] or "{}")) for r in rows]

    def unfinished_ids(self) -> list[str]:
        """Ids of every unfinished run, of any kind."""
        rows = self.catalog.db.execute("SELECT id FROM compliance_runs WHERE finished_at IS NULL")
        return [str(r[0]) for r in rows]

    def count_unfinished(self, kind: str) -> int:
        """How many runs of a kind are unfinished."""
        row = self.catalog.db.execute(
            "SELECT count(*) FROM compliance_runs WHERE kind = ? AND finished_at IS NULL", (kind,)
        ).fetchone()
        return int(row[0])

    def certificate_of(self, run_id: str) -> str | None:
        """The certificate recorded on a run, if any."""
        row = self.catalog.db.execute(
            "SELECT certificate_id FROM compliance_runs WHERE id = ?", (run_id,)
        ).fetchone()
        return row[0] if row and row[0] else None


class Destructions:
    """Destruction records: what each drop or deletion destroyed, as stored JSON text."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def add(self, record_id: str, kind: str, record_json: str, created_at: str) -> None:
        """Store one record."""
        with self.catalog.transaction() as db:
            db.execute(
                "INSERT INTO destructions(id, kind, record_json, created_at) VALUES (?, ?, ?, ?)",
                (record_id, kind, record_json, created_at),
            )

    def get(self, record_id: str) -> tuple[str, str] | None:
        """(kind, record JSON text) of one record, or None."""
        row = self.catalog.db.execute(
            "SELECT kind, record_json FROM destructions WHERE id = ?", (record_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def tagged(self, tag: str) -> list[tuple[str, str, str]]:
        """(id, kind, record JSON) of the records whose text contains `[tag]`, oldest first."""
        rows = self.catalog.db.execute(
            "SELECT id, kind, record_json FROM destructions WHERE record_json LIKE ? "
            "ORDER BY created_at",
            (f"%[{tag}]%",),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def of_kind(self, kind: str) -> list[tuple[str, str]]:
        """(id, record JSON) of every record of a kind."""
        rows = self.catalog.db.execute(
            "SELECT id, record_json FROM destructions WHERE kind = ?", (kind,)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]


class Certificates:
    """Signed destruction certificates (MAC-sealed rows)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def count(self) -> int:
        """How many certificates were signed."""
        return int(self.catalog.db.execute("SELECT count(*) FROM certificates").fetchone()[0])

    def add(
        self,
        cert_id: str,
        kind: str,
        reference: str,
        created_at: str,
        body_json: str,
        signature: str,
        mac_key: bytes,
    ) -> None:
        """Store a certificate and seal its row (one transaction)."""
        with self.catalog.transaction() as tx:
            tx.execute(
                "INSERT INTO certificates(id, kind, reference, created_at, body_json, signature) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (cert_id, kind, reference, created_at, body_json, signature),
            )
            seal_certificates(tx, mac_key, [cert_id])

    def bodies_for(self, kind: str, reference: str) -> list[tuple[str, str]]:
        """(id, body JSON) of the certificates of a kind and reference."""
        rows = self.catalog.db.execute(
            "SELECT id, body_json FROM certificates WHERE kind = ? AND reference = ?",
            (kind, reference),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def bodies(self) -> list[str]:
        """The body JSON of every certificate."""
        return [r[0] for r in self.catalog.db.execute("SELECT body_json FROM certificates")]

    def rows(self) -> list[sqlite3.Row]:
        """Every certificate row, oldest first."""
        return self.catalog.db.execute(
            "SELECT * FROM certificates ORDER BY created_at, id"
        ).fetchall()

    def row(self, cert_id: str) -> sqlite3.Row | None:
        """One certificate row, or None."""
        row: sqlite3.Row | None = self.catalog.db.execute(
            "SELECT * FROM certificates WHERE id = ?", (cert_id,)
        ).fetchone()
        return row

    def check(self, mac_key: bytes, cert_ids: Sequence[str]) -> list[RowProblem]:
        """The certificate rows among these that fail their MAC."""
        return check_certificates(self.catalog.db, mac_key, list(cert_ids))

    def set_validation(self, cert_id: str, validation_json: str, mac_key: bytes) -> None:
        """Record a second person's validation; a row that fails its MAC is never re-sealed
        (TamperedRow)."""
        with self.catalog.transaction() as db:
            tampered = check_certificates(db, mac_key, [cert_id])
            if tampered:
                raise TamperedRow(tampered, "validate")
            db.execute(
                "UPDATE certificates SET validation_json = ? WHERE id = ?",
                (validation_json, cert_id),
            )
            seal_certificates(db, mac_key, [cert_id])


class Holds:
    """Legal holds (MAC-sealed rows)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def rows(self) -> list[sqlite3.Row]:
        """Every hold row, oldest first."""
        return self.catalog.db.execute("SELECT * FROM legal_holds ORDER BY created_at").fetchall()

    def check(self, mac_key: bytes, hold_ids: Sequence[str] | None = None) -> list[RowProblem]:
        """The hold rows (all, or these) that fail their MAC."""
        if hold_ids is None:
            return check_holds(self.catalog.db, mac_key)
        return check_holds(self.catalog.db, mac_key, list(hold_ids))

    def add(self, values: Mapping[str, object], mac_key: bytes) -> None:
        """Store a hold (id, tenant, dataset, from_date, to_date, reason, until, created_by,
        created_at) and seal its row (one transaction)."""
        with self.catalog.transaction() as db:
            db.execute(
                "INSERT INTO legal_holds(id, tenant, dataset, from_date, to_date, reason, until, "
                "created_by, created_at) VALUES (:id, :tenant, :dataset, :from_date, :to_date, "
                ":reason, :until, :created_by, :created_at)",
                values,
            )
            seal_holds(db, mac_key, [str(values["id"])])

    def release(self, hold_id: str, actor: str, at: str, mac_key: bytes) -> None:
        """Record a release; a row that fails its MAC is never re-sealed (TamperedRow)."""
        with self.catalog.transaction() as db:
            bad = check_holds(db, mac_key, [hold_id])
            if bad:
                raise TamperedRow(bad, "release")
            db.execute(
                "UPDATE legal_holds SET released_by = ?, released_at = ? WHERE id = ?",
                (actor, at, hold_id),
            )
            seal_holds(db, mac_key, [hold_id])

    def lapsed(self, on: str, mac_key: bytes) -> list[tuple[str, str]]:
        """(id, tenant) of the holds neither released nor expired whose `until` is before `on`
        and whose row verifies."""
        rows = self.catalog.db.execute(
            "SELECT id, tenant FROM legal_holds WHERE released_at IS NULL AND expired_at IS NULL "
            "AND until < ?",
            (on,),
        ).fetchall()
        bad = {p.row_id for p in check_holds(self.catalog.db, mac_key, [r[0] for r in rows])}
        return [(r[0], r[1]) for r in rows if r[0] not in bad]

    def expire(self, hold_ids: Sequence[str], at: str, mac_key: bytes) -> list[str]:
        """Mark these holds expired; those whose row fails its MAC (checked again inside the
        transaction) are left as found. The ids expired."""
        with self.catalog.transaction() as db:
            bad = {p.row_id for p in check_holds(db, mac_key, list(hold_ids))}
            ids = [i for i in hold_ids if i not in bad]
            db.executemany(
                "UPDATE legal_holds SET expired_at = ? WHERE id = ?", [(at, i) for i in ids]
            )
            seal_holds(db, mac_key, ids)
        return ids


class DerivedOutputs:
    """Files derived from lake data (reports, exports), so that their deletion follows it."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def register(self, values: Mapping[str, object], mac_key: bytes) -> None:
        """Insert an output, or lower the purge date of the one at the same path (and undo its
        deletion); the row is checked before it changes (TamperedRow) and sealed after, in one
        transaction. `values`: id, kind, path, tenant, dataset, source_date, purge_date,
        subject_id, created_at."""
        with self.catalog.transaction() as db:
            old = db.execute(
                "SELECT id FROM derived_outputs WHERE path = ?", (values["path"],)
            ).fetchone()
            if old is not None:
                bad = check_derived(db, mac_key, [old[0]])
                if bad:
                    raise TamperedRow(bad, "re-register")
            db.execute(
                "INSERT INTO derived_outputs(id, kind, path, tenant, dataset, source_date, "
                "purge_date, subject_id, created_at) VALUES (:id, :kind, :path, :tenant, "
                ":dataset, :source_date, :purge_date, :subject_id, :created_at) "
                "ON CONFLICT(path) DO UPDATE SET "
                "purge_date = min(purge_date, excluded.purge_date), deleted_at = NULL",
                values,
            )
            row_id = db.execute("SELECT id FROM derived_outputs WHERE path = ?", (values["path"],))
            seal_derived(db, mac_key, [row_id.fetchone()[0]])

    def live(
        self,
        *,
        tenant: str | None = None,
        due_by: str | None = None,
        subject_id: str | None = None,
    ) -> list[sqlite3.Row]:
        """Rows not yet deleted, filtered, by purge date then path."""
        sql = "SELECT * FROM derived_outputs WHERE deleted_at IS NULL"
        args: list[Any] = []
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        if due_by is not None:
            sql += " AND purge_date <= ?"
            args.append(due_by)
        if subject_id is not None:
            sql += " AND subject_id = ?"
            args.append(subject_id)
        return self.catalog.db.execute(sql + " ORDER BY purge_date, path", args).fetchall()

    def rows(self, ids: Iterable[str]) -> list[sqlite3.Row]:
        """Rows by id, deleted or not, in id order."""
        db = self.catalog.db
        return [
            r
            for i in sorted(set(ids))
            for r in db.execute("SELECT * FROM derived_outputs WHERE id = ?", (i,))
        ]

    def check(self, mac_key: bytes, ids: Sequence[str] | None = None) -> list[RowProblem]:
        """The rows among these (all rows, of every state, if None) that fail their MAC."""
        return check_derived(self.catalog.db, mac_key, None if ids is None else list(ids))

    def mark_deleted(self, ids: Sequence[str], at: str, mac_key: bytes) -> set[str]:
        """Mark these rows deleted and re-seal them; rows failing their MAC (checked inside the
        transaction, before any change) are left as found. The ids left as found."""
        with self.catalog.transaction() as db:
            bad = {p.row_id for p in check_derived(db, mac_key, list(ids))}
            intact = [i for i in ids if i not in bad]
            db.executemany(
                "UPDATE derived_outputs SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                [(at, i) for i in intact],
            )
            seal_derived(db, mac_key, intact)
        return bad


class SubjectIndex:
    """The DSR blind index (tokens of buyers -> their orders) and recorded objections."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def indexed(self) -> dict[int, int]:
        """Partition id -> row count, for every partition indexed."""
        return {
            int(r[0]): int(r[1])
            for r in self.catalog.db.execute("SELECT partition_id, row_count FROM dsr_indexed")
        }

    def objected_tokens(self) -> set[str]:
        """Tokens of every subject who objected."""
        return {r[0] for r in self.catalog.db.execute("SELECT token FROM dsr_objections")}

    def replace_partition(
        self,
        partition_id: int,
        row_count: int,
        entries: Iterable[tuple[str, str, int, str]],
        objected: set[str],
    ) -> None:
        """Re-index one partition: `entries` are (token, tenant, partition id, order id); the
        orders of subjects in `objected` are excluded too (one transaction)."""
        entries = sorted(entries)
        with self.catalog.transaction() as db:
            db.execute("DELETE FROM dsr_index WHERE partition_id = ?", (partition_id,))
            db.executemany("INSERT OR IGNORE INTO dsr_index VALUES (?, ?, ?, ?)", entries)
            db.execute(
                "INSERT INTO dsr_indexed VALUES (?, ?) ON CONFLICT(partition_id) DO UPDATE SET "
                "row_count = excluded.row_count",
                (partition_id, row_count),
            )
            db.executemany(
                "INSERT OR IGNORE INTO dsr_objected_orders SELECT ?, ?, request_id FROM "
                "dsr_objections WHERE token = ?",
                [(e[1], e[3], e[0]) for e in entries if e[0] in objected],
            )

    def forget_partitions(self, partition_ids: Sequence[int]) -> None:
        """Drop the index entries of these partitions (one transaction)."""
        with self.catalog.transaction() as db:
            for i in range(0, len(partition_ids), 500):
                chunk = [(pid,) for pid in partition_ids[i : i + 500]]
                db.executemany("DELETE FROM dsr_index WHERE partition_id = ?", chunk)
                db.executemany("DELETE FROM dsr_indexed WHERE partition_id = ?", chunk)

    def hits(self, token: str, tenant: str | None = None) -> list[tuple[str, int, str]]:
        """(tenant, partition id, order id) of a token, optionally in one tenant, ordered."""
        sql = "SELECT tenant, partition_id, amazon_order_id FROM dsr_index WHERE token = ?"
        args: list[Any] = [token]
        if tenant:
            sql += " AND tenant = ?"
            args.append(tenant)
        return [
            (r[0], int(r[1]), r[2]) for r in self.catalog.db.execute(sql + " ORDER BY 2, 3", args)
        ]

    def record_objection(
        self, token: str, request_id: str, at: str, orders: Iterable[tuple[str, str]]
    ) -> None:
        """Record an objection and the (tenant, order id) pairs it excludes (one transaction)."""
        with self.catalog.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO dsr_objections VALUES (?, ?, ?)", (token, request_id, at)
            )
            db.executemany(
                "INSERT OR IGNORE INTO dsr_objected_orders VALUES (?, ?, ?)",
                [(t, o, request_id) for t, o in orders],
            )

    def objected_orders(self, tenant: str) -> set[str]:
        """Order ids of a tenant whose buyer objected."""
        rows = self.catalog.db.execute(
            "SELECT amazon_order_id FROM dsr_objected_orders WHERE tenant = ?", (tenant,)
        )
        return {r[0] for r in rows}

    def orders_of(self, token: str, tenant: str) -> set[str]:
        """Order ids of a token in one tenant."""
        rows = self.catalog.db.execute(
            "SELECT amazon_order_id FROM dsr_index WHERE token = ? AND tenant = ?", (token, tenant)
        )
        return {r[0] for r in rows}


class SubjectRequests:
    """Data-subject requests (access, erasure, rectification, objection) and their deadlines."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def open(
        self,
        req_id: str,
        kind: str,
        subject_id: str,
        received_at: str,
        deadline: str,
        actor: str,
        detail: dict[str, Any],
    ) -> None:
        """Record a received request, in progress."""
        with self.catalog.transaction() as db:
            db.execute(
                "INSERT INTO dsr_requests(id, kind, subject_id, received_at, deadline, status, "
                "actor, detail_json) VALUES (?, ?, ?, ?, ?, 'in_progress', ?, ?)",
                (
                    req_id,
                    kind,
                    subject_id,
                    received_at,
                    deadline,
                    actor,
                    json.dumps(detail, sort_keys=True),
                ),
            )

    def detail(self, req_id: str) -> dict[str, Any] | None:
        """A request's detail, or None if there is no such request."""
        row = self.catalog.db.execute(
            "SELECT detail_json FROM dsr_requests WHERE id = ?", (req_id,)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def actor(self, req_id: str) -> str | None:
        """Who opened a request, or None if there is no such request."""
        row = self.catalog.db.execute(
            "SELECT actor FROM dsr_requests WHERE id = ?", (req_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def update(
        self, req_id: str, detail: dict[str, Any], status: str | None, completed_at: str | None
    ) -> None:
        """Replace a request's detail and, with `status`, its status (one transaction)."""
        with self.catalog.transaction() as db:
            db.execute(
                "UPDATE dsr_requests SET detail_json = ? WHERE id = ?",
                (json.dumps(detail, sort_keys=True), req_id),
            )
            if status is not None:
                db.execute(
                    "UPDATE dsr_requests SET status = ?, completed_at = ? WHERE id = ?",
                    (status, completed_at, req_id),
                )

    def rows(self) -> list[tuple[str, str, str, str, str, str, str, str | None]]:
        """(id, kind, subject id, received, deadline, status, actor, completed) of every
        request, by received time then id."""
        rows = self.catalog.db.execute(
            "SELECT id, kind, subject_id, received_at, deadline, status, actor, completed_at "
            "FROM dsr_requests ORDER BY received_at, id"
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def details_of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The detail of every request of a kind."""
        rows = self.catalog.db.execute(
            "SELECT detail_json FROM dsr_requests WHERE kind = ?", (kind,)
        ).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def ids_of_kind(self, kind: str) -> list[str]:
        """Ids of every request of a kind."""
        rows = self.catalog.db.execute("SELECT id FROM dsr_requests WHERE kind = ?", (kind,))
        return [str(r[0]) for r in rows]

    def in_progress_ids(self) -> list[str]:
        """Ids of every request still in progress."""
        rows = self.catalog.db.execute("SELECT id FROM dsr_requests WHERE status = 'in_progress'")
        return [str(r[0]) for r in rows]

    def interrupted_changes(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(id, kind, actor, detail) of the erasures and rectifications still in progress,
        oldest first."""
        rows = self.catalog.db.execute(
            "SELECT id, kind, actor, detail_json FROM dsr_requests WHERE status = 'in_progress' "
            "AND kind IN ('erasure', 'rectification') ORDER BY received_at"
        ).fetchall()
        return [(r[0], r[1], r[2], dict(json.loads(r[3]))) for r in rows]


def forget_tenant(catalog: Catalog, tenant: str) -> int:
    """Delete a tenant's sync state and blind-index entries (one transaction); the number of
    sync-state rows deleted."""
    with catalog.transaction() as db:
        n = int(db.execute("DELETE FROM sync_state WHERE tenant = ?", (tenant,)).rowcount)
        db.execute("DELETE FROM dsr_index WHERE tenant = ?", (tenant,))
    return n
