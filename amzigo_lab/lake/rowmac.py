"""Catalog row MACs: edits made to the catalog outside amzigo-lab are detected.

Anyone who can write the catalog file could otherwise change a row with `sqlite3` (extend a
`purge_date`, move a partition to another tenant, mark it `dropped`, change a file's SHA-256) and
nothing would notice. Every `partitions`, `files`, `certificates`, `legal_holds` and
`derived_outputs` row therefore carries `mac` (a forged legal hold would otherwise keep data past
its deadline, and an edited derived output's `purge_date` keep a report file forever):
HMAC-SHA256 over a canonical encoding of every column that matters, under a key only the
service holding the master key has.

Key: `HKDF-SHA256(master key, salt=None, info=MAC_INFO)`, a dedicated key (the raw master key is
never used as a MAC key). It rotates with the master key: `rotate_master_key` checks every row
under the old key and re-MACs it under the new one in the same transaction that re-wraps the
partition keys, so an old (destroyed) master key cannot forge rows of the rotated catalog, and a
tampered row is never laundered by a rotation.

Canonical encoding: compact JSON of a list `[label, primary key, column values in a fixed
order]` (strings, integers, nulls). The label separates the tables; the primary key binds a MAC
to its row, so a MAC copied onto another row fails. A partition's MAC also covers the sorted ids
of its file rows, so deleting or adding a file row is detected; each file row's own MAC covers
its path, partition, size, row count and SHA-256.

Every writer verifies a row's MAC before it changes the row and re-MACs it in the same catalog
transaction (the commit point), so a tampered row is never re-sealed.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from amzigo_lab.errors import IntegrityError

MAC_INFO = b"amzigo-lab/catalog-row-mac/v1"

PARTITION_COLUMNS = (
    "dataset",
    "tenant",
    "ingest_date",
    "purge_date",
    "rel_dir",
    "key_id",
    "state",
    "row_count",
    "bytes",
    "created_at",
    "dropped_at",
)
FILE_COLUMNS = (
    "partition_id",
    "batch_id",
    "rel_path",
    "row_count",
    "bytes",
    "sha256",
    "created_at",
    "deleted_at",
)
CERTIFICATE_COLUMNS = (
    "kind",
    "reference",
    "created_at",
    "body_json",
    "signature",
    "validation_json",
)

HOLD_COLUMNS = (
    "tenant",
    "dataset",
    "from_date",
    "to_date",
    "reason",
    "until",
    "created_by",
    "created_at",
    "released_by",
    "released_at",
    "expired_at",
)
DERIVED_COLUMNS = (
    "kind",
    "path",
    "tenant",
    "dataset",
    "source_date",
    "purge_date",
    "subject_id",
    "created_at",
    "deleted_at",
)

#: meta key of the one-time migration that MACs rows of catalogs from before schema 3
MIGRATION_META = "row_mac_migration"
#: meta key of the one-time migration that MACs legal_holds / derived_outputs rows (schema 4)
HOLD_MIGRATION_META = "hold_mac_migration"

_ADVICE = (
    "it was edited outside amzigo-lab. Run `amzigo lake verify` to list every such row, "
    "find out who could write the catalog, and restore the catalog from backup "
    "(docs/operations.md, 'A catalog row was edited outside amzigo-lab')"
)


def derive_key(master_secret: bytes) -> bytes:
    """The catalog-MAC key of a master key (HKDF-SHA256, its own info label)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=MAC_INFO).derive(
        master_secret
    )


def _mac(key: bytes, payload: list[Any]) -> str:
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()
    return hmac.new(key, data, sha256).hexdigest()


def partition_mac(key: bytes, row: sqlite3.Row, file_ids: list[int]) -> str:
    """The MAC of a `partitions` row and the set of its file rows."""
    values = [row[c] for c in PARTITION_COLUMNS]
    return _mac(key, ["partitions/v1", row["id"], *values, sorted(file_ids)])


def file_mac(key: bytes, row: sqlite3.Row) -> str:
    """The MAC of a `files` row."""
    return _mac(key, ["files/v1", row["id"], *(row[c] for c in FILE_COLUMNS)])


def certificate_mac(key: bytes, row: sqlite3.Row) -> str:
    """The MAC of a `certificates` row."""
    return _mac(key, ["certificates/v1", row["id"], *(row[c] for c in CERTIFICATE_COLUMNS)])


def hold_mac(key: bytes, row: sqlite3.Row) -> str:
    """The MAC of a `legal_holds` row (scope, reason, who, dates, release and expiry)."""
    return _mac(key, ["legal_holds/v1", row["id"], *(row[c] for c in HOLD_COLUMNS)])


def derived_mac(key: bytes, row: sqlite3.Row) -> str:
    """The MAC of a `derived_outputs` row (path, source, purge date, deletion)."""
    return _mac(key, ["derived_outputs/v1", row["id"], *(row[c] for c in DERIVED_COLUMNS)])


@dataclass(frozen=True)
class RowProblem:
    """One catalog row whose MAC does not match (or that has none)."""

    table: str  # partitions | files | certificates | keys | meta | legal_holds | derived_outputs
    row_id: str
    check: str  # which check failed
    dataset: str = ""
    tenant: str = ""
    ingest_date: str = ""
    detail: str = ""

    @property
    def subject(self) -> str:
        """The row as a person reads it (values as the row now reads, maybe tampered)."""
        if self.table == "certificates":
            return f"certificate {self.row_id}"
        if self.table == "keys":
            return f"partition key {self.row_id}"
        if self.table == "files":
            return f"file row {self.row_id}"
        if self.table == "meta":
            return f"catalog meta {self.row_id}"
        if self.table == "legal_holds":
            return f"legal hold {self.row_id} (tenant {self.tenant}, dataset {self.dataset or '*'})"
        if self.table == "derived_outputs":
            return f"derived output {self.row_id} (tenant {self.tenant}, dataset {self.dataset})"
        where = f"dataset {self.dataset}, tenant {self.tenant}, ingest_date {self.ingest_date}"
        return f"partition {self.row_id} ({where})"

    def message(self) -> str:
        """One line: the row, the failed check and any detail."""
        return f"{self.subject}: {self.check}" + (f" [{self.detail}]" if self.detail else "")


class TamperedRow(IntegrityError):
    """Catalog rows whose MAC does not match: refused, never read or dropped silently."""

    def __init__(self, problems: list[RowProblem], action: str = "use", note: str = "") -> None:
        self.problems = problems
        shown = "; ".join(p.message() for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(
            f"refusing to {action} catalog row(s) that fail their MAC check: {shown}{more}. "
            f"The row's values cannot be trusted: {_ADVICE}." + (f" {note}" if note else "")
        )


def _chunks(ids: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _partition_rows(db: sqlite3.Connection, ids: list[int] | None) -> list[sqlite3.Row]:
    if ids is None:
        return list(db.execute("SELECT * FROM partitions ORDER BY id"))
    rows: list[sqlite3.Row] = []
    for chunk in _chunks(sorted(set(ids))):
        marks = ",".join("?" * len(chunk))
        rows += db.execute(f"SELECT * FROM partitions WHERE id IN ({marks})", chunk)  # noqa: S608
    return rows


def _file_rows(db: sqlite3.Connection, ids: list[int] | None) -> dict[int, list[sqlite3.Row]]:
    out: dict[int, list[sqlite3.Row]] = {}
    if ids is None:
        rows: list[sqlite3.Row] = list(db.execute("SELECT * FROM files ORDER BY id"))
    else:
        rows = []
        for chunk in _chunks(sorted(set(ids))):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT * FROM files WHERE partition_id IN ({marks}) ORDER BY id"  # noqa: S608
            rows += db.execute(sql, chunk)
    for r in rows:
        out.setdefault(int(r["partition_id"]), []).append(r)
    return out


def _problem(row: sqlite3.Row, check: str, detail: str = "") -> RowProblem:
    return RowProblem(
        "partitions",
        str(row["id"]),
        check,
        str(row["dataset"]),
        str(row["tenant"]),
        str(row["ingest_date"]),
        detail,
    )


def check_partitions(
    db: sqlite3.Connection, key: bytes, ids: list[int] | None = None
) -> list[RowProblem]:
    """Problems of the given partitions (all if None) and their file rows; [] if intact."""
    parts = _partition_rows(db, ids)
    files = _file_rows(db, ids)
    problems: list[RowProblem] = []
    known = {int(r["id"]) for r in parts}
    for row in parts:
        own = files.get(int(row["id"]), [])
        if row["mac"] is None:
            problems.append(_problem(row, "partition row has no MAC"))
        elif not hmac.compare_digest(row["mac"], partition_mac(key, row, [f["id"] for f in own])):
            problems.append(
                _problem(
                    row,
                    "partition row MAC mismatch",
                    "a column of the row (dates, tenant, state, key, counts) or its set of "
                    "file rows was changed",
                )
            )
        for f in own:
            if f["mac"] is None or not hmac.compare_digest(f["mac"], file_mac(key, f)):
                what = "has no MAC" if f["mac"] is None else "MAC mismatch"
                problems.append(
                    _problem(
                        row, f"file row {what}", f"{f['rel_path']}: path, size, rows or SHA-256"
                    )
                )
    if ids is None:  # file rows whose partition row is gone
        for pid, own in sorted(files.items()):
            if pid not in known:
                problems += [
                    RowProblem("files", str(f["id"]), "file row without a partition row",
                               detail=f"{f['rel_path']}: the partition row was deleted")
                    for f in own
                ]  # fmt: skip
    return problems


def check_orphan_keys(db: sqlite3.Connection) -> list[RowProblem]:
    """Live partition keys that no partition row uses (a partition row deleted outside)."""
    rows = db.execute(
        "SELECT k.key_id FROM keys k LEFT JOIN partitions p ON p.key_id = k.key_id "
        "WHERE k.destroyed_at IS NULL AND p.id IS NULL ORDER BY k.key_id"
    )
    return [
        RowProblem(
            "keys",
            str(r[0]),
            "live key without a partition row",
            detail="the partition row was deleted: its data would escape retention",
        )
        for r in rows
    ]


def require_intact(db: sqlite3.Connection, key: bytes, ids: list[int], action: str = "use") -> None:
    """Raise `TamperedRow` naming every given partition (or file row of it) that fails."""
    problems = check_partitions(db, key, ids)
    if problems:
        raise TamperedRow(problems, action)


def seal_partitions(db: sqlite3.Connection, key: bytes, ids: Iterable[int]) -> None:
    """(Re)compute the MACs of partitions and their file rows. Call inside the transaction that
    changed them, after checking them with `require_intact` (never seal what was not checked)."""
    id_list = sorted(set(ids))
    if not id_list:
        return
    files = _file_rows(db, id_list)
    for row in _partition_rows(db, id_list):
        own = files.get(int(row["id"]), [])
        for f in own:
            db.execute("UPDATE files SET mac = ? WHERE id = ?", (file_mac(key, f), f["id"]))
        db.execute(
            "UPDATE partitions SET mac = ? WHERE id = ?",
            (partition_mac(key, row, [f["id"] for f in own]), row["id"]),
        )


def check_certificates(
    db: sqlite3.Connection, key: bytes, ids: list[str] | None = None
) -> list[RowProblem]:
    """Problems of the given certificate rows (all if None)."""
    if ids is None:
        rows = list(db.execute("SELECT * FROM certificates ORDER BY id"))
    else:
        rows = [r for i in ids for r in db.execute("SELECT * FROM certificates WHERE id = ?", (i,))]
    problems = []
    for r in rows:
        if r["mac"] is None:
            problems.append(RowProblem("certificates", r["id"], "certificate row has no MAC"))
        elif not hmac.compare_digest(r["mac"], certificate_mac(key, r)):
            problems.append(
                RowProblem(
                    "certificates",
                    r["id"],
                    "certificate row MAC mismatch",
                    detail="body, signature, validation, kind, reference or date was changed",
                )
            )
    return problems


def seal_certificates(db: sqlite3.Connection, key: bytes, ids: Iterable[str]) -> None:
    """(Re)compute the MAC of certificate rows (inside the transaction that wrote them)."""
    for cert_id in ids:
        for r in db.execute("SELECT * FROM certificates WHERE id = ?", (cert_id,)).fetchall():
            db.execute(
                "UPDATE certificates SET mac = ? WHERE id = ?", (certificate_mac(key, r), r["id"])
            )


_TABLES = {  # table -> (row MAC function, what a person calls it, columns in the detail)
    "legal_holds": (hold_mac, "legal hold row", "scope, reason, until, release or expiry"),
    "derived_outputs": (derived_mac, "derived output row", "path, purge date or deletion"),
}


def _rows(db: sqlite3.Connection, table: str, ids: Iterable[str] | None) -> list[sqlite3.Row]:
    if ids is None:
        return list(db.execute(f"SELECT * FROM {table} ORDER BY id"))  # noqa: S608
    sql = f"SELECT * FROM {table} WHERE id = ?"  # noqa: S608
    return [r for i in sorted(set(ids)) for r in db.execute(sql, (i,))]


def _check_table(
    db: sqlite3.Connection, key: bytes, table: str, ids: Iterable[str] | None
) -> list[RowProblem]:
    fn, what, columns = _TABLES[table]
    problems = []
    for r in _rows(db, table, ids):
        if r["mac"] is None:
            check, detail = f"{what} has no MAC", "inserted outside amzigo-lab or its MAC removed"
        elif not hmac.compare_digest(r["mac"], fn(key, r)):
            check, detail = f"{what} MAC mismatch", f"{columns} was changed"
        else:
            continue
        problems.append(
            RowProblem(
                table, str(r["id"]), check, str(r["dataset"] or ""), str(r["tenant"]), "", detail
            )
        )
    return problems


def _seal_table(db: sqlite3.Connection, key: bytes, table: str, ids: Iterable[str]) -> None:
    fn = _TABLES[table][0]
    for r in _rows(db, table, list(ids)):
        db.execute(f"UPDATE {table} SET mac = ? WHERE id = ?", (fn(key, r), r["id"]))  # noqa: S608


def check_holds(
    db: sqlite3.Connection, key: bytes, ids: Iterable[str] | None = None
) -> list[RowProblem]:
    """Problems of the given `legal_holds` rows (all if None): a hold that fails is never
    honoured (lake/../compliance/holds.py `trusted_holds`)."""
    return _check_table(db, key, "legal_holds", ids)


def seal_holds(db: sqlite3.Connection, key: bytes, ids: Iterable[str]) -> None:
    """(Re)compute the MAC of hold rows, inside the transaction that wrote them."""
    _seal_table(db, key, "legal_holds", ids)


def check_derived(
    db: sqlite3.Connection, key: bytes, ids: Iterable[str] | None = None
) -> list[RowProblem]:
    """Problems of the given `derived_outputs` rows (all if None)."""
    return _check_table(db, key, "derived_outputs", ids)


def seal_derived(db: sqlite3.Connection, key: bytes, ids: Iterable[str]) -> None:
    """(Re)compute the MAC of derived-output rows, inside the transaction that wrote them."""
    _seal_table(db, key, "derived_outputs", ids)


#: migration marker -> the tables whose rows it seals
_MIGRATED = {
    MIGRATION_META: ("partitions", "files", "certificates"),
    HOLD_MIGRATION_META: ("legal_holds", "derived_outputs"),
}


def _sealed(db: sqlite3.Connection, marker: str) -> int:
    return sum(
        int(db.execute(f"SELECT count(*) FROM {t} WHERE mac IS NOT NULL").fetchone()[0])  # noqa: S608
        for t in _MIGRATED[marker]
    )


def check_migration_marker(db: sqlite3.Connection) -> list[RowProblem]:
    """A migration marker still `pending` while rows are sealed: the meta row was edited."""
    problems = []
    for marker in _MIGRATED:
        value = db.execute("SELECT value FROM meta WHERE key = ?", (marker,)).fetchone()
        if value is None or value[0] != "pending" or not _sealed(db, marker):
            continue
        what = "row-MAC" if marker == MIGRATION_META else "hold/derived row-MAC"
        problems.append(
            RowProblem(
                "meta",
                marker,
                f"{what} migration marker reset to 'pending'",
                detail="an attempt to have unsealed rows MACed; they are not",
            )
        )
    return problems


def check_all(db: sqlite3.Connection, key: bytes) -> list[RowProblem]:
    """Every MAC problem of the catalog: partitions, files, certificates, orphan keys, meta."""
    return (
        check_partitions(db, key)
        + check_certificates(db, key)
        + check_holds(db, key)
        + check_derived(db, key)
        + check_orphan_keys(db)
        + check_migration_marker(db)
    )


def reseal_all(db: sqlite3.Connection, old_key: bytes, new_key: bytes) -> int:
    """Check every row under `old_key` (raise `TamperedRow` if any fails), then re-MAC every row
    under `new_key`. Used by master-key rotation, inside its transaction. Returns rows sealed."""
    problems = (
        check_partitions(db, old_key)
        + check_certificates(db, old_key)
        + check_holds(db, old_key)
        + check_derived(db, old_key)
    )
    if problems:
        raise TamperedRow(problems, "rotate the master key over")
    part_ids = [int(r[0]) for r in db.execute("SELECT id FROM partitions")]
    cert_ids = [str(r[0]) for r in db.execute("SELECT id FROM certificates")]
    hold_ids = [str(r[0]) for r in db.execute("SELECT id FROM legal_holds")]
    out_ids = [str(r[0]) for r in db.execute("SELECT id FROM derived_outputs")]
    seal_partitions(db, new_key, part_ids)
    seal_certificates(db, new_key, cert_ids)
    seal_holds(db, new_key, hold_ids)
    seal_derived(db, new_key, out_ids)
    n_files = db.execute("SELECT count(*) FROM files").fetchone()[0]
    return len(part_ids) + len(cert_ids) + len(hold_ids) + len(out_ids) + int(n_files)


def migrate_unsealed(db: sqlite3.Connection, key: bytes) -> dict[str, int] | None:
    """The one-time migration of a catalog from before row MACs (schema 3): MAC every row.

    Runs only while the meta marker says `pending` (set by schema migration 3) and only if no
    row has a MAC yet (a genuine pre-MAC catalog): once any row is sealed, a row without a MAC
    is a tampered row, not a migration. Call inside a transaction; returns counts, or None if
    there was nothing to migrate.
    """
    marker = db.execute("SELECT value FROM meta WHERE key = ?", (MIGRATION_META,)).fetchone()
    if marker is None or marker[0] != "pending":
        return None
    if _sealed(
        db, MIGRATION_META
    ):  # the marker was reset: never MAC unsealed rows (`check_all` reports both)
        return None
    part_ids = [int(r[0]) for r in db.execute("SELECT id FROM partitions")]
    cert_ids = [str(r[0]) for r in db.execute("SELECT id FROM certificates")]
    seal_partitions(db, key, part_ids)
    seal_certificates(db, key, cert_ids)
    n_files = int(db.execute("SELECT count(*) FROM files").fetchone()[0])
    return {"partitions": len(part_ids), "files": n_files, "certificates": len(cert_ids)}


def migrate_unsealed_holds(db: sqlite3.Connection, key: bytes) -> dict[str, list[str]] | None:
    """The one-time migration of a catalog from before hold/derived MACs (schema 4): MAC every
    `legal_holds` and `derived_outputs` row. Same rules as `migrate_unsealed`: only while its
    marker says `pending` and no such row is sealed yet. Returns the ids sealed per table (the
    audit event names the holds), or None if there was nothing to migrate."""
    marker = db.execute("SELECT value FROM meta WHERE key = ?", (HOLD_MIGRATION_META,)).fetchone()
    if marker is None or marker[0] != "pending" or _sealed(db, HOLD_MIGRATION_META):
        return None
    hold_ids = [str(r[0]) for r in db.execute("SELECT id FROM legal_holds ORDER BY id")]
    out_ids = [str(r[0]) for r in db.execute("SELECT id FROM derived_outputs ORDER BY id")]
    seal_holds(db, key, hold_ids)
    seal_derived(db, key, out_ids)
    return {"legal_holds": hold_ids, "derived_outputs": out_ids}
