"""Durable sync state, de-duplicated writes and the quarantine, behind one thread-safe gateway.

Fetching runs in one worker thread per tenant; the lake (and its SQLite catalog) stays on the
thread that opened it. Workers reach it only through `LakeGateway`, whose calls are executed by
the owner thread (`serve`), so every catalog transaction happens on one connection.

De-duplication, so that re-running ingest over the same window adds no rows:
1. a row whose (natural key, version) is already stored is dropped;
2. for versioned datasets, a row whose content (every column but the version) equals the latest
   stored version of its key is dropped: re-fetched snapshots (inventory, catalog, a re-requested
   Sales & Traffic day) only add a version when something changed;
3. the batch id is a hash of the rows written, so a retried commit is a no-op in the lake.
Stored versions are looked up in partitions ingested on or after a floor date the stream gives
(a version last updated at T cannot have been ingested before T's date).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from amzigo_lab.lake.catalog import iso

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake
    from amzigo_lab.schema import DatasetSpec

T = TypeVar("T")
QUARANTINE = "quarantine"
#: Sub-objects that may hold buyer PII; removed from a raw record before it is quarantined.
PII_FIELDS = frozenset(
    {"buyer", "recipient", "BuyerInfo", "ShippingAddress", "buyerInfo", "shippingAddress"}
)


def redact(record: Any) -> Any:
    """A copy of a raw API record without buyer/recipient sub-objects."""
    if isinstance(record, dict):
        return {k: redact(v) for k, v in record.items() if k not in PII_FIELDS}
    if isinstance(record, list):
        return [redact(v) for v in record]
    return record


def _hash_columns(table: pa.Table, columns: list[str]) -> pa.Array:
    import polars as pl

    frame = pl.from_arrow(table.select(columns))
    assert isinstance(frame, pl.DataFrame)
    return frame.hash_rows(seed=7).to_arrow()


def batch_id_for(dataset: str, table: pa.Table, spec: DatasetSpec) -> str:
    """A deterministic batch id: the hash of the rows' keys, versions and content."""
    hashes = sorted(_hash_columns(table, [c.name for c in spec.columns]).to_pylist())
    digest = hashlib.sha256(json.dumps(hashes).encode()).hexdigest()[:40]
    return f"{dataset}-{digest}"


def dedup(
    spec: DatasetSpec, new: pa.Table, existing: pa.Table | None, latest: pa.Table | None
) -> pa.Table:
    """Drop rows of `new` already stored (same key+version) or unchanged since the latest one."""
    keys = list(spec.natural_key)
    if not keys or new.num_rows == 0:
        return new
    ident = keys + ([spec.version_column] if spec.version_column else [])
    # duplicates inside the batch: keep the first occurrence
    marker = pa.array(range(new.num_rows), pa.int64())
    firsts = (
        new.select(ident).append_column("__i", marker).group_by(ident).aggregate([("__i", "min")])
    )
    if firsts.num_rows < new.num_rows:
        new = new.take(firsts.column("__i_min").combine_chunks().sort())
    if existing is not None and existing.num_rows:
        new = new.join(existing.select(ident), keys=ident, join_type="left anti")
    if spec.version_column and latest is not None and latest.num_rows and new.num_rows:
        content = [c.name for c in spec.columns if c.name != spec.version_column]
        left = new.append_column("__h", _hash_columns(new, content))
        right = latest.select(keys).append_column("__h", _hash_columns(latest, content))
        new = left.join(right, keys=[*keys, "__h"], join_type="left anti").drop_columns(["__h"])
    return new.select([c.name for c in spec.columns])


class LakeGateway:
    """The lake as seen from worker threads: every call runs on the thread that owns the lake."""

    def __init__(self, lake: Lake, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.lake = lake
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._owner = threading.get_ident()
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], Future[Any]]] = (
            queue.Queue()
        )

    # -- threading ---------------------------------------------------------------------------
    def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if threading.get_ident() == self._owner:
            return fn(*args)
        future: Future[T] = Future()
        self._queue.put((fn, args, future))
        return future.result()

    def serve(self, done: Callable[[], bool], tick: Callable[[], None] | None = None) -> None:
        """Execute queued calls on the owner thread until `done()` and the queue is empty."""
        while True:
            try:
                fn, args, future = self._queue.get(timeout=0.05)
            except queue.Empty:
                if tick is not None:
                    tick()
                if done() and self._queue.empty():
                    return
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # handed to the worker, which re-raises it
                    future.set_exception(exc)

    # -- sync state --------------------------------------------------------------------------
    def get_state(self, tenant: str, stream: str) -> dict[str, Any]:
        """The durable state of (tenant, stream)."""
        return self._run(self.lake.catalog.get_sync_state, tenant, stream)

    def put_state(self, tenant: str, stream: str, state: dict[str, Any]) -> None:
        """Replace the durable state of (tenant, stream) in one transaction."""

        def put() -> None:
            with self.lake.catalog.transaction():
                self.lake.catalog.put_sync_state(tenant, stream, state)

        self._run(put)

    def update_state(self, tenant: str, stream: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge `changes` into the state of (tenant, stream) atomically; return the result."""

        def update() -> dict[str, Any]:
            with self.lake.catalog.transaction():
                state = self.lake.catalog.get_sync_state(tenant, stream)
                state.update(changes)
                self.lake.catalog.put_sync_state(tenant, stream, state)
            return state

        return self._run(update)

    # -- reads -------------------------------------------------------------------------------
    def latest(self, dataset: str, tenant: str, since: dt.date | None = None) -> pa.Table:
        """Latest version per natural key of a tenant's dataset (ingested since `since`)."""

        def read() -> pa.Table:
            scan = self.lake.scan(dataset, [tenant], start=since)
            if not scan.files:
                return self.lake.spec(dataset).schema.empty_table()
            return scan.latest()

        return self._run(read)

    def column(self, dataset: str, tenant: str, columns: list[str]) -> pa.Table:
        """Some columns of every stored row of a tenant's dataset."""

        def read() -> pa.Table:
            scan = self.lake.scan(dataset, [tenant])
            if not scan.files:
                return self.lake.spec(dataset).schema.empty_table().select(columns)
            return scan.arrow_dataset().to_table(columns=columns)

        return self._run(read)

    # -- writes ------------------------------------------------------------------------------
    def write(
        self,
        dataset: str,
        tenant: str,
        ingest_date: dt.date,
        table: pa.Table,
        floor: dt.date | None,
    ) -> int:
        """De-duplicate and write one batch; return the rows actually added."""
        return self._run(self._write, dataset, tenant, ingest_date, table, floor)

    def _write(
        self,
        dataset: str,
        tenant: str,
        ingest_date: dt.date,
        table: pa.Table,
        floor: dt.date | None,
    ) -> int:
        spec = self.lake.spec(dataset)
        table = _cast(spec, table)
        if table.num_rows == 0:
            return 0
        existing = latest = None
        if spec.natural_key:
            scan = self.lake.scan(dataset, [tenant], start=floor)
            if scan.files:
                ident = list(spec.natural_key) + (
                    [spec.version_column] if spec.version_column else []
                )
                existing = scan.arrow_dataset().to_table(columns=ident)
                latest = _cast(spec, scan.latest()) if spec.version_column else None
        table = dedup(spec, table, existing, latest)
        if table.num_rows == 0:
            return 0
        self.lake.write(dataset, tenant, ingest_date, table, batch_id_for(dataset, table, spec))
        return table.num_rows

    def quarantine(
        self,
        stream: str,
        tenant: str,
        ingest_date: dt.date,
        records: Iterable[tuple[str, Any, str]],
    ) -> int:
        """Store invalid records (dataset, raw record, reason) encrypted; return rows added."""
        now = self.clock()
        rows = []
        for dataset, raw, reason in records:
            text = json.dumps(redact(raw), sort_keys=True, default=str)
            rid = hashlib.sha256(f"{stream}|{dataset}|{text}".encode()).hexdigest()[:32]
            rows.append(
                {
                    "record_id": rid,
                    "stream": stream,
                    "dataset": dataset,
                    "quarantined_at": now,
                    "reason": reason[:500],
                    "raw_json": text,
                }
            )
        if not rows:
            return 0
        spec = self.lake.spec(QUARANTINE)
        table = pa.Table.from_pylist(rows, schema=spec.schema)
        return self.write(QUARANTINE, tenant, ingest_date, table, None)

    def audit(self, action: str, **fields: Any) -> None:
        """Emit an audit event (identifiers and counts only)."""
        self._run(lambda: self.lake.audit.emit(action, **fields))


def _cast(spec: DatasetSpec, table: pa.Table) -> pa.Table:
    """`table` restricted to and cast to the declared schema (validated by the writer later)."""
    arrays = [table.column(c.name).cast(c.type) for c in spec.columns]
    return pa.Table.from_arrays(arrays, schema=spec.schema)


def iso_now(clock: Callable[[], dt.datetime] | None = None) -> str:
    """The current UTC time in the catalog's ISO format."""
    return iso((clock or (lambda: dt.datetime.now(dt.UTC)))())
