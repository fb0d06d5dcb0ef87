"""Writing one batch: validate, encrypt to temp files, fsync, rename, then one catalog commit.

Commit protocol (each step is a `fault_hook` name, used by the crash tests):
  validated -> file_written (temp name, fsynced) -> file_renamed -> catalog_begin -> committed
A crash before `committed` leaves at most orphan files that no catalog row owns; readers never
see them and `amzigo doctor --fix` removes them. Re-writing a committed batch id is a no-op.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from amzigo_lab.errors import InvalidName, SchemaMismatch, WriteError
from amzigo_lab.lake.catalog import iso
from amzigo_lab.lake.fs import fsync_dir
from amzigo_lab.lake.handle import LakeHandle
from amzigo_lab.lake.keys import wrap
from amzigo_lab.lake.pme import encryption_properties
from amzigo_lab.lake.rowmac import require_intact, seal_partitions
from amzigo_lab.names import iso_date, tenant_id
from amzigo_lab.retention_rules import MonthsAfterIngestion, WhileTenantActive

if TYPE_CHECKING:
    from amzigo_lab.schema import DatasetSpec

_BATCH = re.compile(r"^[A-Za-z0-9._:=-]{1,160}$")


@dataclass(frozen=True)
class WriteResult:
    """What a write did."""

    dataset: str
    tenant: str
    batch_id: str
    rows: int
    files: list[str] = field(default_factory=list)
    partition_ids: list[int] = field(default_factory=list)
    already_committed: bool = False


@dataclass
class _PendingFile:
    purge_date: dt.date
    rel_dir: str
    rel_path: str
    key_id: str
    key: bytes
    new_partition: bool
    rows: int
    size: int
    sha256: str


def _rel_dir(spec: DatasetSpec, tenant: str, ingest: dt.date, purge: dt.date) -> str:
    parts = [spec.origin, spec.name, f"tenant={tenant}", f"ingest_date={ingest.isoformat()}"]
    if spec.retention.row_dependent:
        parts.append(f"purge_date={purge.isoformat()}")
    return "/".join(parts)


def _encrypt_to_buffer(table: pa.Table, key_id: str, key: bytes, row_group_rows: int) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        row_group_size=row_group_rows,
        store_decimal_as_integer=True,
        encryption_properties=encryption_properties(key_id, key),
    )
    return sink.getvalue()


def _durable_write(target: Path, data: pa.Buffer, lake: LakeHandle) -> None:
    """Write `data` under a temp name, fsync, rename to `target`, fsync the directory."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name("." + target.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        lake.fault_hook("file_written")
        os.rename(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        hint = (
            "the disk is full or a size limit was hit: free space and retry"
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
            else "check the lake folder's permissions and free space, then retry"
        )
        raise WriteError(f"could not write {target.name}: {exc.strerror}; {hint}") from None
    lake.fault_hook("file_renamed")


def _split_by_purge(spec: DatasetSpec, table: pa.Table, ingest: dt.date) -> dict[dt.date, pa.Table]:
    if isinstance(spec.retention, MonthsAfterIngestion | WhileTenantActive):
        return {spec.retention.purge_date(ingest): table} if table.num_rows else {}
    dates = spec.retention.purge_dates(table, ingest)
    expired = pc.sum(pc.less(dates, pa.scalar(ingest, pa.date32()))).as_py() or 0
    if expired:
        raise SchemaMismatch(
            f"{spec.name}: {expired} row(s) are already past their retention deadline "
            f"({spec.retention.describe()}); such data must not be ingested"
        )
    out: dict[dt.date, pa.Table] = {}
    for value in pc.unique(dates).to_pylist():
        out[value] = table.filter(pc.equal(dates, pa.scalar(value, pa.date32())))
    return out


def write_batch(
    lake: LakeHandle,
    dataset: str,
    tenant: str,
    ingest_date: dt.date | str,
    table: pa.Table,
    batch_id: str,
) -> WriteResult:
    """See `Lake.write`."""
    spec = lake.spec(dataset)
    tenant_id(tenant)
    ingest = iso_date(ingest_date)
    if not isinstance(batch_id, str) or not _BATCH.fullmatch(batch_id):
        raise InvalidName(f"invalid batch id {batch_id!r}: use 1-160 of [A-Za-z0-9._:=-]")
    table = spec.conform(table)
    groups = _split_by_purge(spec, table, ingest)
    lake.fault_hook("validated")
    with lake.write_lock():
        if lake.catalog.batch_exists(dataset, tenant, batch_id):
            return WriteResult(dataset, tenant, batch_id, 0, already_committed=True)
        pending: list[_PendingFile] = []
        try:
            for purge, part in sorted(groups.items()):
                pending.append(_write_file(lake, spec, tenant, ingest, purge, part))
        except BaseException:
            for p in pending:
                lake.path(p.rel_path).unlink(missing_ok=True)
            raise
        ids = _commit(lake, spec, tenant, ingest, batch_id, table.num_rows, pending)
    lake.audit.emit(
        "lake.write",
        resource=f"dataset:{dataset}",
        tenant=tenant,
        row_count=table.num_rows,
        reason=f"batch {batch_id}",
    )
    return WriteResult(
        dataset, tenant, batch_id, table.num_rows, [p.rel_path for p in pending], ids
    )


def _write_file(
    lake: LakeHandle,
    spec: DatasetSpec,
    tenant: str,
    ingest: dt.date,
    purge: dt.date,
    part: pa.Table,
) -> _PendingFile:
    rel_dir = _rel_dir(spec, tenant, ingest, purge)
    row = lake.catalog.db.execute(
        "SELECT id, key_id FROM partitions WHERE dataset = ? AND tenant = ? AND ingest_date = ? "
        "AND purge_date = ? AND state = 'live'",
        (spec.name, tenant, ingest.isoformat(), purge.isoformat()),
    ).fetchone()
    if row is not None:
        lake.require_intact([row[0]], "append to")  # never extend (and re-MAC) a tampered row
        key_id = row[1]
        key = lake.partition_keys([key_id])[key_id]
        new = False
    else:
        key_id, key = lake.new_partition_key()
        new = True
    data = _encrypt_to_buffer(part, key_id, key, lake.settings.row_group_rows)
    rel_path = f"{rel_dir}/part-{uuid.uuid4().hex}.parquet"
    _durable_write(lake.path(rel_path), data, lake)
    return _PendingFile(
        purge, rel_dir, rel_path, key_id, key, new, part.num_rows, data.size,
        hashlib.sha256(memoryview(data)).hexdigest(),
    )  # fmt: skip


def _commit(
    lake: LakeHandle,
    spec: DatasetSpec,
    tenant: str,
    ingest: dt.date,
    batch_id: str,
    rows: int,
    pending: list[_PendingFile],
) -> list[int]:
    now = iso(lake.clock())
    master = lake.master()
    mac_key = lake.row_mac_key()
    ids: list[int] = []

    with lake.catalog.transaction() as db:
        lake.fault_hook("catalog_begin")
        lake.ensure_registered(spec)
        for p in pending:
            if p.new_partition:
                db.execute(
                    "INSERT INTO keys(key_id, wrapped, master_key_id, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (p.key_id, wrap(master.secret, p.key, p.key_id), master.key_id, now),
                )
                cur = db.execute(
                    "INSERT INTO partitions(dataset, tenant, ingest_date, purge_date, rel_dir, "
                    "key_id, state, created_at) VALUES (?, ?, ?, ?, ?, ?, 'live', ?)",
                    (spec.name, tenant, ingest.isoformat(), p.purge_date.isoformat(),
                     p.rel_dir, p.key_id, now),
                )  # fmt: skip
                pid = int(cur.lastrowid or 0)
            else:
                pid = int(
                    db.execute(
                        "SELECT id FROM partitions WHERE key_id = ? AND state = 'live'",
                        (p.key_id,),
                    ).fetchone()[0]
                )
                require_intact(db, mac_key, [pid], "append to")  # checked before it changes
            db.execute(
                "INSERT INTO files(partition_id, batch_id, rel_path, row_count, bytes, sha256, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (pid, batch_id, p.rel_path, p.rows, p.size, p.sha256, now),
            )
            db.execute(
                "UPDATE partitions SET row_count = row_count + ?, bytes = bytes + ? WHERE id = ?",
                (p.rows, p.size, pid),
            )
            ids.append(pid)
        seal_partitions(db, mac_key, ids)  # MACs set in the commit transaction itself
        db.execute(
            "INSERT INTO batches(dataset, tenant, batch_id, row_count, committed_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (spec.name, tenant, batch_id, rows, now),
        )
        lake.fault_hook("catalog_commit")
    lake.fault_hook("committed")
    return ids
