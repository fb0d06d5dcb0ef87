"""Filesystem helpers the lake's operations share: durable renames, hashes, byte scans.

Plain functions over paths (no lake, no catalog), so that every operation module can use them
without importing another operation.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename or unlink in it is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def files_under(root: Path) -> list[Path]:
    """Every file below `root` (walked, unsorted)."""
    out: list[Path] = []
    for dirpath, _dirs, names in os.walk(root):
        out.extend(Path(dirpath) / n for n in names)
    return out


def remove_empty_dirs(dirs: Iterable[Path], stop: Path) -> None:
    """Remove each directory and its parents while empty, never `stop` or anything above it."""
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        cur = d
        while cur != stop and cur.is_relative_to(stop):
            try:
                cur.rmdir()
            except OSError:
                break
            cur = cur.parent


#: Bytes read at a time by the scans.
CHUNK = 1 << 22


def scan_bytes(paths: list[Path], needles: list[bytes]) -> list[str]:
    """Names of files containing any needle (chunked, overlapping reads)."""
    if not needles:
        return []
    hits = []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                if contains(lambda offset: os.pread(fh.fileno(), CHUNK, offset), needles):
                    hits.append(path.name)
        except FileNotFoundError:
            continue
    return hits


def contains(read: Callable[[int], bytes], needles: list[bytes]) -> bool:
    """True if the bytes `read(offset)` returns chunk by chunk (b"" at the end) hold a needle,
    also across chunk boundaries."""
    longest = max(len(n) for n in needles)
    offset, tail = 0, b""
    while chunk := read(offset):
        offset += len(chunk)
        buf = tail + chunk
        if any(n in buf for n in needles):
            return True
        tail = buf[-longest:]
    return False
