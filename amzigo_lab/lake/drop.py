"""Dropping partitions: cryptographic erase, file deletion, verification (NIST SP 800-88 Purge).

Order of work, each step durable before the next:
1. mark the partitions `dropping` (a crash from here on is resumed by dropping again);
2. destroy their keys: the only copy of each partition key (wrapped by the master key) is
   overwritten in the catalog (`secure_delete`) and the WAL is truncated;
3. delete their files and fsync the folders;
4. verify: a read with the erased key fails, no file remains, the wrapped key bytes are found
   nowhere in the catalog files, and no given canary value appears in the remaining lake bytes;
5. mark them `dropped` and store a `DestructionRecord` (the basis of destruction certificates).
Cost is O(partitions), not O(bytes), unless canaries ask for a byte scan of the lake.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import uuid
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from amzigo_lab.errors import IntegrityError
from amzigo_lab.lake.catalog import Partition, iso
from amzigo_lab.lake.fs import (
    CHUNK,
    contains,
    files_under,
    fsync_dir,
    remove_empty_dirs,
    scan_bytes,
)
from amzigo_lab.lake.handle import LakeHandle
from amzigo_lab.lake.rowmac import require_intact, seal_partitions


@dataclass(frozen=True)
class DroppedPartition:
    """One destroyed partition."""

    partition_id: int
    dataset: str
    tenant: str
    ingest_date: str
    purge_date: str
    key_id: str
    files: list[dict[str, Any]]
    rows: int
    bytes: int


@dataclass(frozen=True)
class DestructionRecord:
    """What a drop destroyed and how it was verified."""

    record_id: str
    performed_at: str
    reason: str
    method: str
    partitions: list[DroppedPartition]
    verification: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows destroyed."""
        return sum(p.rows for p in self.partitions)

    def to_json(self) -> str:
        """Canonical JSON."""
        return json.dumps(asdict(self), sort_keys=True)


_KEY_SCAN_SAMPLE = 16

METHOD = "cryptographic erase (AES-256 partition key destroyed) + file deletion"


def drop_partitions(
    lake: LakeHandle, partitions: list[Partition], canaries: list[str], reason: str
) -> DestructionRecord:
    """See `Lake.drop_partitions`."""
    from amzigo_lab.lake.hot_cache import before_key_destruction

    # decrypted copies in any process's hot cache are gone before a key is destroyed
    with lake.write_lock(), before_key_destruction(lake):
        fresh = [lake.catalog.partition(p.id) for p in partitions]
        todo = [p for p in fresh if p.state != "dropped"]
        ids = [p.id for p in todo]
        files = lake.catalog.files(ids, include_deleted=True)
        wrapped = lake.catalog.wrapped_keys([p.key_id for p in todo])
        now = iso(lake.clock())
        mac_key = lake.row_mac_key()
        with lake.catalog.transaction() as db:
            # every requested row, dropped ones too: a row edited to `dropped` is not skipped
            # silently, and a tampered row is never dropped (nor certified) on its word
            require_intact(db, mac_key, [p.id for p in fresh], "drop")
            db.executemany(
                "UPDATE partitions SET state = 'dropping' WHERE id = ?", [(i,) for i in ids]
            )
            seal_partitions(db, mac_key, ids)
        lake.fault_hook("drop_marked")
        # 2. cryptographic erase
        with lake.catalog.transaction() as db:
            db.executemany(
                "UPDATE keys SET wrapped = NULL, master_key_id = NULL, destroyed_at = ? "
                "WHERE key_id = ?",
                [(now, p.key_id) for p in todo],
            )
        lake.catalog.checkpoint()
        lake.fault_hook("keys_destroyed")
        # 3. delete files
        dirs: set[Path] = set()
        for f in files:
            path = lake.path(f.rel_path)
            path.unlink(missing_ok=True)
            dirs.add(path.parent)
        for d in dirs:
            if d.exists():
                fsync_dir(d)
        remove_empty_dirs(dirs, lake.root)  # lake.root is absolute: settings resolve the home
        lake.fault_hook("files_deleted")
        # 4. verify
        verification = _verify(lake, todo, files, [w for w, _ in wrapped.values()], canaries)
        by_part: dict[int, list[dict[str, Any]]] = {}
        for f in files:
            by_part.setdefault(f.partition_id, []).append(
                {"path": f.rel_path, "sha256": f.sha256, "bytes": f.bytes, "rows": f.row_count}
            )
        record = DestructionRecord(
            record_id="dr-" + uuid.uuid4().hex,
            performed_at=now,
            reason=reason,
            method=METHOD,
            partitions=[
                DroppedPartition(
                    p.id,
                    p.dataset,
                    p.tenant,
                    p.ingest_date.isoformat(),
                    p.purge_date.isoformat(),
                    p.key_id,
                    by_part.get(p.id, []),
                    p.row_count,
                    p.bytes,
                )
                for p in todo
            ],
            verification=verification,
        )
        # 5. commit the outcome
        with lake.catalog.transaction() as db:
            require_intact(db, mac_key, ids, "drop")
            db.executemany(
                "UPDATE partitions SET state = 'dropped', dropped_at = ? WHERE id = ?",
                [(now, i) for i in ids],
            )
            db.executemany(
                "UPDATE files SET deleted_at = ? WHERE partition_id = ?", [(now, i) for i in ids]
            )
            seal_partitions(db, mac_key, ids)
            db.execute(
                "INSERT INTO destructions(id, kind, record_json, created_at) VALUES (?, ?, ?, ?)",
                (record.record_id, "partition_drop", record.to_json(), now),
            )
    for p in todo:
        lake.audit.emit(
            "lake.drop",
            resource=f"dataset:{p.dataset}",
            tenant=p.tenant,
            row_count=p.row_count,
            reason=(reason or "drop")[:200],
        )
    return record


def _verify(
    lake: LakeHandle,
    parts: list[Partition],
    files: list[Any],
    wrapped_blobs: list[bytes],
    canaries: list[str],
) -> dict[str, Any]:
    """Check that nothing of the dropped partitions can be read; raise IntegrityError if not."""
    from amzigo_lab.errors import KeyProviderError

    problems: list[str] = []
    # a read attempt with the catalog's keys must fail: the keys are gone
    still_keyed = lake.catalog.wrapped_keys([p.key_id for p in parts])
    if still_keyed:
        problems.append(f"{len(still_keyed)} partition key(s) still present in the catalog")
    with contextlib.suppress(KeyProviderError):
        lake.partition_keys(p.key_id for p in parts)
    remaining = [f.rel_path for f in files if lake.path(f.rel_path).exists()]
    if remaining:
        problems.append(f"{len(remaining)} file(s) still present")
    # Byte-scan the catalog files for the erased wrapped keys. Each needle costs a pass over the
    # catalog, so large batches scan a random sample (recorded in the result); the SQL check
    # above covers every key.
    blobs = [b for b in wrapped_blobs if b]
    sample = blobs if len(blobs) <= _KEY_SCAN_SAMPLE else random.sample(blobs, _KEY_SCAN_SAMPLE)
    key_copies = _scan_catalog_bytes(_catalog_files(lake), sample)
    if key_copies:
        problems.append(f"wrapped key bytes still found in {', '.join(key_copies)}")
    needles = [c.encode() for c in canaries if c]
    canary_hits = scan_bytes(files_under(lake.root), needles) if needles else []
    if canary_hits:
        problems.append(f"canary values found in {len(canary_hits)} file(s)")
    result = {
        "read_attempt": "failed as expected: partition keys destroyed, files absent",
        "keys_present_after": len(still_keyed),
        "files_present_after": len(remaining),
        "wrapped_keys_byte_scanned": len(sample),
        "wrapped_key_copies_found": len(key_copies),
        "canaries_checked": len(canaries),
        "canary_hits": len(canary_hits),
        "ok": not problems,
    }
    if problems:
        raise IntegrityError("drop verification failed: " + "; ".join(problems))
    return result


def _catalog_files(lake: LakeHandle) -> list[Path]:
    base = lake.settings.catalog_path
    return [p for p in (base, Path(f"{base}-wal"), Path(f"{base}-journal")) if p.exists()]


def _scan_catalog_bytes(paths: list[Path], needles: list[bytes]) -> list[str]:
    """`fs.scan_bytes` of the catalog's own files without releasing this process's SQLite locks.

    Opening and closing a SQLite database file in a process that holds a connection to it drops
    that process's POSIX locks on it (sqlite.org "How To Corrupt", 2.2): another process closing
    its connection then deletes the WAL under this one (the gateway then reads a stale catalog
    and its writes are lost). So a file this process already has open (SQLite's own descriptor)
    is read through that descriptor with `os.pread`, which neither moves its offset nor closes
    it; a file it has no descriptor for holds no lock of ours and is opened normally. Without
    /proc (not Linux), the scan runs in a child process, which holds no connection (~20 ms)."""
    if not needles or not paths:
        return []
    own = _own_descriptors()
    if own is None:
        return _scan_in_child(paths, needles)
    hits = []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        fd = own.get((st.st_dev, st.st_ino))
        if fd is None:
            hits.extend(scan_bytes([path], needles))
        elif contains(partial(_pread, fd), needles):  # SQLite's descriptor, never closed
            hits.append(path.name)
    return hits


def _pread(fd: int, offset: int) -> bytes:
    return os.pread(fd, CHUNK, offset)


def _own_descriptors() -> dict[tuple[int, int], int] | None:
    """(device, inode) -> one of this process's open descriptors, from /proc/self/fd."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return None
    out: dict[tuple[int, int], int] = {}
    for entry in os.listdir(fd_dir):
        try:
            st = os.fstat(int(entry))
        except (OSError, ValueError):  # the listing's own descriptor, already closed
            continue
        out.setdefault((st.st_dev, st.st_ino), int(entry))
    return out


#: The byte scan of the catalog files in a child process (where /proc is missing).
_CHILD_SCAN = """
import sys
needles = [bytes.fromhex(h) for h in sys.stdin.read().split()]
longest = max(len(n) for n in needles)
for name in sys.argv[1:]:
    try:
        with open(name, "rb") as fh:
            tail = b""
            while chunk := fh.read(1 << 22):
                buf = tail + chunk
                if any(n in buf for n in needles):
                    print(name)
                    break
                tail = buf[-longest:]
    except FileNotFoundError:
        pass
"""


def _scan_in_child(paths: list[Path], needles: list[bytes]) -> list[str]:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-I", "-c", _CHILD_SCAN, *map(str, paths)],
        input=" ".join(n.hex() for n in needles),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise IntegrityError(
            f"drop verification could not scan the catalog files (exit {done.returncode})"
        )
    return [Path(line).name for line in done.stdout.splitlines() if line]
