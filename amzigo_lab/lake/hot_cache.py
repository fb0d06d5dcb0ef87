"""Decrypt once, query many (issue 17): decrypted lake files kept in memory under a byte budget.

Off unless a process turns it on (`enable(lake, budget_bytes)`). Then `Scan.duckdb()` and
`Scan.ibis()` register an in-memory Arrow table built from cached per-file tables (zero-copy
concatenation) instead of the decrypting pyarrow dataset: the first query over a file pays the
whole decryption and decode of every column; later queries run at DuckDB's in-memory speed.
Entries are per file, keyed by (partition id, partition key id, path, SHA-256 as committed), so
a changed catalog row never matches an old entry. Least recently used entries are evicted
beyond the budget, but never one used within `protect_s` seconds (60 by default): a scan that
would need that reads the dataset instead, so two working sets larger than the budget together
do not evict each other on every query (each load decrypts every column of every file). The
cache keeps decrypted data in this process's memory only (it writes no file).

**A crypto-shred destroys the cached copies first, in every process.** A process holding entries
holds a shared `flock` on `<state>/hot-cache.lock` (an entry is inserted only under it);
`Lake.drop_partitions` calls `before_key_destruction` before it marks anything: that empties
this process's cache, takes `<state>/hot-cache.drop.lock` exclusively (the drop's intent: while
it is held, no process inserts anything: every insert first tests it without waiting), then
takes `hot-cache.lock` exclusively without waiting, and holds both for the whole drop. If another
process still holds cached entries, the drop asks it to let go through the callback the command
layer injected (`on_busy`: the CLI asks the home's running gateway, over its socket, to empty its
cache) and tries once more; if that fails too, the drop is refused with `HotCacheBusy` before any
change (nothing marked, no key touched). So a key is never destroyed while a decrypted copy of
its data is cached anywhere. Rotation empties the cache (`clear`).

Entries are shared between the users of one process: a cached file is handed out only for a
scan that chose that very file from the catalog, after the policy check chose the tenants (the
governed session re-checks grants before every read and rebuilds its scans when they changed),
so a grant change changes what is asked, never what an entry may be given to.

What the cache cannot reach: a table it handed out. A relation from `Scan.duckdb()`/`ibis()`
while the cache is on is registered over the cached (decrypted) table and keeps it alive on
that connection for as long as it stays registered, like the result of `Scan.to_arrow()`; the
decrypting dataset of the uncached path re-reads the files on every query and fails once they
are dropped. So a process that enables the cache registers cached tables per query only: the
governed session (`governance/session.py`) swaps them in for one read and back to the
decrypting dataset before the read returns; `Scan.latest()` unregisters its own.
Freed memory is returned to the allocator, not overwritten (as for any decrypted read).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.dataset as ds

from amzigo_lab.errors import AmzigoError, IntegrityError

if TYPE_CHECKING:
    from amzigo_lab.config import Settings
    from amzigo_lab.lake.catalog import FileEntry, Partition


class LakeLike(Protocol):
    """What the cache needs of an open lake (it imports neither the store nor the reader, so
    the lake's modules form no import loop)."""

    settings: Settings


class ScanLike(Protocol):
    """What the cache needs of a `lake.reader.Scan`."""

    partitions: list[Partition]
    files: list[FileEntry]
    paths: list[str]

    @property
    def schema(self) -> pa.Schema: ...

    def arrow_dataset(self) -> ds.Dataset: ...


_LOCK_NAME = "hot-cache.lock"
_DROP_NAME = "hot-cache.drop.lock"  # held by a drop: no process inserts while it is
#: Entries used within this many seconds are not evicted to make room for another scan.
PROTECT_S = 60.0

#: (partition id, partition key id, lake-relative path, sha256)
EntryKey = tuple[int, str, str, str]


class HotCacheBusy(AmzigoError):
    """Another process holds decrypted copies in its hot cache: a drop must not proceed."""


class HotCache:
    """Decrypted per-file tables of one lake, least recently used evicted beyond `budget`."""

    def __init__(
        self, lock_path: os.PathLike[str] | str, budget_bytes: int, protect_s: float = PROTECT_S
    ) -> None:
        if budget_bytes <= 0:
            raise ValueError("the hot cache budget must be positive")
        self.budget = budget_bytes
        self.protect_s = protect_s
        self._used: dict[EntryKey, float] = {}  # last use (monotonic) of each entry
        self._sizes: dict[EntryKey, int] = {}  # decoded bytes of files loaded before (no data)
        self._lock_path = os.fspath(lock_path)
        self._entries: OrderedDict[EntryKey, pa.Table] = OrderedDict()
        self._bytes = 0
        self._mutex = threading.RLock()
        self._shared: IO[str] | None = None  # the shared flock while entries exist
        self._draining = False  # a drop in this process is destroying keys
        self.hits = 0
        self.misses = 0
        self.skipped = 0  # misses not cached: a drop was running (or one was intended)
        self.too_big = 0  # scans larger than the budget (read from the dataset)
        self.crowded = 0  # scans that would evict entries in use (read from the dataset)

    # -- what scans use -------------------------------------------------------------------
    def table_for(self, scan: ScanLike) -> pa.Table | None:
        """The scan's rows as one in-memory table, loading missing files; None when the
        scan does not fit the budget or the cache cannot take its lock (use the dataset)."""
        key_ids = {p.id: p.key_id for p in scan.partitions}
        keys = [(f.partition_id, key_ids[f.partition_id], f.rel_path, f.sha256) for f in scan.files]
        if not keys:
            return scan.schema.empty_table()
        with self._mutex:
            missing = [i for i, k in enumerate(keys) if k not in self._entries]
            if not missing:
                self.hits += 1
                self._touch(keys)
                return pa.concat_tables([self._entries[k] for k in keys])
            # decoded sizes of files loaded before, else their sizes on disk (compressed, less
            # than decoded): a scan that cannot fit is not decrypted for nothing
            estimate = sum(self._sizes.get(keys[i], scan.files[i].bytes) for i in missing)
            held = sum(self._entries[k].nbytes for k in keys if k in self._entries)
            if estimate + held > self.budget:
                self.too_big += 1
                return None
            if not self._room_for(estimate, set(keys)):
                self.crowded += 1
                return None
            if self._draining or not self._hold_shared():
                self.skipped += 1
                return None
            self.misses += 1
            try:
                loaded = _load(scan, missing)
            except BaseException:
                self._release_if_empty()
                raise
            new = 0
            for i, table in loaded.items():
                self._sizes[keys[i]] = table.nbytes
                new += table.nbytes
            if new + held > self.budget:
                self.too_big += 1
                self._release_if_empty()
                return None
            if not self._room_for(new, set(keys)):
                self.crowded += 1
                self._release_if_empty()
                return None
            for i, table in loaded.items():
                self._entries[keys[i]] = table
                self._bytes += table.nbytes
            self._touch(keys)
            self._evict_to_budget(keep=set(keys))
            return pa.concat_tables([self._entries[k] for k in keys])

    # -- invalidation ---------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every entry (and release the shared lock)."""
        with self._mutex:
            self._entries.clear()
            self._used.clear()
            self._bytes = 0
            self._release_if_empty()

    def forget_partitions(self, partition_ids: Iterable[int]) -> None:
        """Forget the entries of these partitions."""
        ids = set(partition_ids)
        with self._mutex:
            for k in [k for k in self._entries if k[0] in ids]:
                self._bytes -= self._entries.pop(k).nbytes
                self._used.pop(k, None)
            self._release_if_empty()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def stats(self) -> dict[str, Any]:
        """Budget, bytes and entries held, hits and misses (no lock taken: for health checks
        that must answer while a load runs)."""
        return {
            "budget_bytes": self.budget,
            "bytes": self._bytes,
            "files": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "skipped": self.skipped,
            "too_big": self.too_big,
            "crowded": self.crowded,
        }

    def partition_ids(self) -> set[int]:
        with self._mutex:
            return {k[0] for k in self._entries}

    # -- internals ------------------------------------------------------------------------
    def _touch(self, keys: list[EntryKey]) -> None:
        now = time.monotonic()
        for k in keys:
            self._entries.move_to_end(k)
            self._used[k] = now

    def _idle(self, k: EntryKey, now: float) -> bool:
        return now - self._used.get(k, float("-inf")) >= self.protect_s

    def _room_for(self, nbytes: int, keep: set[EntryKey]) -> bool:
        """Whether `nbytes` more fit once idle entries (not in `keep`) are evicted."""
        excess = self._bytes + nbytes - self.budget
        if excess <= 0:
            return True
        now = time.monotonic()
        idle = sum(
            t.nbytes for k, t in self._entries.items() if k not in keep and self._idle(k, now)
        )
        return idle >= excess

    def _evict_to_budget(self, keep: set[EntryKey]) -> None:
        now = time.monotonic()
        for k in list(self._entries):
            if self._bytes <= self.budget:
                break
            if k not in keep and self._idle(k, now):
                self._bytes -= self._entries.pop(k).nbytes
                self._used.pop(k, None)

    def _hold_shared(self) -> bool:
        """Whether this process may insert now: no drop is running or intended anywhere
        (tested on every insert), and the shared lock is held (taken with the first entry)."""
        if _drop_intended(self._lock_path):
            return False
        if self._shared is not None:
            return True
        fh = open(self._lock_path, "a")  # noqa: SIM115 (held while entries exist)
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # a drop is destroying keys right now
            fh.close()
            return False
        self._shared = fh
        return True

    def _release_if_empty(self) -> None:
        if not self._entries and self._shared is not None:
            fcntl.flock(self._shared, fcntl.LOCK_UN)
            self._shared.close()
            self._shared = None


def _drop_intended(lock_path: str) -> bool:
    """Whether a drop holds (or waits to take) the cache locks of this lake: its intent lock
    is held. Taken shared without waiting and released at once."""
    path = os.path.join(os.path.dirname(lock_path), _DROP_NAME)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def _load(scan: ScanLike, indexes: list[int]) -> dict[int, pa.Table]:
    """Decrypt the files at `indexes` of the scan (all columns, partition columns included) in
    one multi-threaded scan; each file's table owns its buffers (its batches), so evicting it
    frees its memory. Row counts are checked against the catalog."""
    dataset = scan.arrow_dataset()
    by_path = {fragment.path: fragment for fragment in dataset.get_fragments()}
    wanted = [scan.paths[i] for i in indexes]
    chosen = ds.FileSystemDataset(
        [by_path[p] for p in wanted], dataset.schema, dataset.format, dataset.filesystem
    )
    batches: dict[str, list[pa.RecordBatch]] = {p: [] for p in wanted}
    for tagged in chosen.scanner().scan_batches():
        batches[tagged.fragment.path].append(tagged.record_batch)
    out = {}
    for i, path in zip(indexes, wanted, strict=True):
        table = pa.Table.from_batches(batches[path], schema=dataset.schema)
        if table.num_rows != scan.files[i].row_count:
            raise IntegrityError(f"{path}: row count differs from the catalog's")
        out[i] = table
    return out


# -- per-lake registry (no attribute on Lake: lake/ module boundaries are moving) ---------
_CACHES: weakref.WeakKeyDictionary[LakeLike, HotCache] = weakref.WeakKeyDictionary()
#: What a drop in this process calls when another process holds cached entries (`on_busy`).
_RELEASERS: weakref.WeakKeyDictionary[LakeLike, Callable[[], object]] = weakref.WeakKeyDictionary()
_REGISTRY_MUTEX = threading.Lock()


def enable(lake: LakeLike, budget_bytes: int, protect_s: float = PROTECT_S) -> HotCache:
    """Turn the hot cache on for `lake` in this process (replacing an existing one)."""
    lake.settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cache = HotCache(lake.settings.state_dir / _LOCK_NAME, budget_bytes, protect_s)
    with _REGISTRY_MUTEX:
        old = _CACHES.get(lake)
        _CACHES[lake] = cache
    if old is not None:
        old.clear()
    return cache


def disable(lake: LakeLike) -> None:
    """Turn the hot cache off for `lake`, forgetting every entry."""
    with _REGISTRY_MUTEX:
        cache = _CACHES.pop(lake, None)
    if cache is not None:
        cache.clear()


def cache_of(lake: LakeLike) -> HotCache | None:
    """The lake's hot cache in this process, if enabled."""
    return _CACHES.get(lake)


def clear(lake: LakeLike) -> None:
    """Forget everything cached for `lake` (rotation, grant changes)."""
    cache = _CACHES.get(lake)
    if cache is not None:
        cache.clear()


def on_busy(lake: LakeLike, release: Callable[[], object] | None) -> None:
    """What this process's drops of `lake` call when another process holds cached entries:
    `release` asks the holders to empty their caches (and not to cache while the drop runs;
    the intent lock makes sure of the latter) and returns once they did, or raises. The command
    layer injects it (the CLI: ask the home's running gateway); the lake imports no client.
    Never inject it in the process that would have to answer (the gateway itself)."""
    with _REGISTRY_MUTEX:
        if release is None:
            _RELEASERS.pop(lake, None)
        else:
            _RELEASERS[lake] = release


_BUSY = (
    "another process holds decrypted lake data in its hot cache; a crypto-shred must destroy "
    "those copies first: clear that process's cache (or stop it) and retry. Nothing was changed."
)


@contextlib.contextmanager
def before_key_destruction(lake: LakeLike) -> Iterator[None]:
    """Held by a drop from before it marks partitions until their keys are destroyed: this
    process's cache is emptied and stays empty, no process inserts (the intent lock), and no
    other process holds cached entries: if one does, the injected `on_busy` callback asks it
    to let go and the lock is tried once more; else `HotCacheBusy`, before any change."""
    cache = _CACHES.get(lake)
    if cache is not None:
        with cache._mutex:
            cache._draining = True
            cache.clear()
    state = lake.settings.state_dir
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    intent = open(state / _DROP_NAME, "a")  # noqa: SIM115
    fh = open(state / _LOCK_NAME, "a")  # noqa: SIM115
    try:
        # inserters test the intent lock for an instant only; drops of one home are already
        # serialised by the lake's write lock, so this wait is short
        fcntl.flock(intent, fcntl.LOCK_EX)
        if not _try_exclusive(fh):
            release = _RELEASERS.get(lake)
            if release is None:
                raise HotCacheBusy(_BUSY)
            try:
                release()
            except Exception as exc:  # the holder was not reached: refused, nothing changed
                raise HotCacheBusy(f"{_BUSY} (asking it to let go failed: {exc})") from None
            if not _try_exclusive(fh):
                raise HotCacheBusy(
                    f"{_BUSY} (the process that was asked let go; another one still holds "
                    "cached entries: a notebook or job that enabled a hot cache on this home)"
                )
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()
        intent.close()  # releases the intent lock: inserts may go on
        if cache is not None:
            with cache._mutex:
                cache._draining = False


def _try_exclusive(fh: IO[str]) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
