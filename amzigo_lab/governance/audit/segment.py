"""Segment files: a small header, then length-prefixed AES-256-GCM frames, one per record."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amzigo_lab.governance.audit.errors import AuditIntegrityError
from amzigo_lab.governance.audit.keys import NONCE_BYTES
from amzigo_lab.governance.audit.record import canonical

MAGIC = b"AZAUDSG1"
_LEN = 4
_SEQ = 8
TAG_BYTES = 16
MIN_FRAME = _SEQ + NONCE_BYTES + TAG_BYTES
MAX_FRAME = 64 * 1024
PREALLOC = 4 << 20
"""Open segments are pre-zeroed (up to 4 MiB at a time) so a durable append changes no size."""

_NAME = re.compile(r"^seg-(\d{12})\.log$")
_ZERO_LEN = b"\0" * _LEN
_sync = getattr(os, "fdatasync", os.fsync)


def segment_id(first_seq: int) -> str:
    """The id (and file stem) of the segment whose first record is `first_seq`."""
    return f"seg-{first_seq:012d}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Segment files in `directory` as (first_seq, path), in seq order."""
    found = []
    for entry in os.scandir(directory):
        m = _NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), Path(entry.path)))
    return sorted(found)


def aad(seg_id: str, seq: int) -> bytes:
    """Associated data binding a frame to its segment and seq (moving a frame breaks it)."""
    return seg_id.encode() + b"/" + seq.to_bytes(_SEQ, "big")


def encode_header(seg_id: str, first_seq: int, origin: str, created: str) -> bytes:
    """The header bytes that start every segment file."""
    body = canonical(
        {
            "created": created,
            "first_seq": first_seq,
            "format": 1,
            "origin": origin,
            "segment": seg_id,
        }
    )
    return MAGIC + len(body).to_bytes(_LEN, "big") + body


def encode_frame(aes: AESGCM, seg_id: str, seq: int, record: bytes) -> bytes:
    """Encrypt one record into a length-prefixed frame: len | seq | nonce | ciphertext+tag."""
    nonce = os.urandom(NONCE_BYTES)
    body = seq.to_bytes(_SEQ, "big") + nonce + aes.encrypt(nonce, record, aad(seg_id, seq))
    return len(body).to_bytes(_LEN, "big") + body


@dataclass(frozen=True)
class SegmentHeader:
    """The parsed header of a segment file."""

    segment_id: str
    first_seq: int
    origin: str
    created: str
    size: int


def parse_header(buf: bytes, name: str) -> SegmentHeader:
    """Parse a segment header; AuditIntegrityError if it is malformed."""
    if buf[: len(MAGIC)] != MAGIC or len(buf) < len(MAGIC) + _LEN:
        raise AuditIntegrityError(f"segment {name}: bad magic or truncated header")
    n = int.from_bytes(buf[len(MAGIC) : len(MAGIC) + _LEN], "big")
    start = len(MAGIC) + _LEN
    try:
        doc: dict[str, Any] = json.loads(buf[start : start + n])
        header = SegmentHeader(
            segment_id=str(doc["segment"]),
            first_seq=int(doc["first_seq"]),
            origin=str(doc["origin"]),
            created=str(doc["created"]),
            size=start + n,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditIntegrityError(f"segment {name}: malformed header") from exc
    if header.segment_id != name or segment_id(header.first_seq) != name:
        raise AuditIntegrityError(f"segment {name}: header names another segment")
    return header


@dataclass(frozen=True)
class Frame:
    """One frame found in a segment: its seq, byte range and (if decrypted) record bytes."""

    seq: int
    offset: int
    end: int
    record: bytes


@dataclass
class SegmentScan:
    """What scanning a segment found: good frames, where data ends, and the first problem."""

    header: SegmentHeader
    frames: list[Frame] = field(default_factory=list)
    data_end: int = 0
    problem: str | None = None
    bad_seq: int | None = None
    torn: bool = False
    detail: str | None = None
    """The damage itself, without the torn-tail interpretation."""


def _frame_at(buf: bytes, pos: int, seq: int, seg_id: str, aes: AESGCM | None) -> Frame | None:
    """The frame with `seq` at `pos` if it is well formed (and authenticates), else None."""
    if len(buf) - pos < _LEN + MIN_FRAME:
        return None
    length = int.from_bytes(buf[pos : pos + _LEN], "big")
    end = pos + _LEN + length
    if not MIN_FRAME <= length <= MAX_FRAME or end > len(buf):
        return None
    if int.from_bytes(buf[pos + _LEN : pos + _LEN + _SEQ], "big") != seq:
        return None
    if aes is None:
        return Frame(seq, pos, end, b"")
    nonce_at = pos + _LEN + _SEQ
    nonce = buf[nonce_at : nonce_at + NONCE_BYTES]
    try:
        record = aes.decrypt(nonce, buf[nonce_at + NONCE_BYTES : end], aad(seg_id, seq))
    except InvalidTag:
        return None
    return Frame(seq, pos, end, record)


def _later_frame(buf: bytes, pos: int, seq: int, seg_id: str, aes: AESGCM | None) -> bool:
    """True if a good frame for `seq` or `seq + 1` exists after `pos` (damage, not a torn tail)."""
    for want in (seq, seq + 1):
        pattern = want.to_bytes(_SEQ, "big")
        at = buf.find(pattern, pos + 1)
        while at != -1:
            if at - _LEN > pos and _frame_at(buf, at - _LEN, want, seg_id, aes) is not None:
                return True
            at = buf.find(pattern, at + 1)
    return False


def scan_segment(buf: bytes, name: str, aes: AESGCM | None, *, is_open: bool) -> SegmentScan:
    """Walk a segment's frames, decrypting them if `aes` is given, and classify any damage."""
    header = parse_header(buf, name)
    scan = SegmentScan(header=header, data_end=header.size)
    pos, seq, seg_id = header.size, header.first_seq, header.segment_id
    while pos < len(buf):
        head = buf[pos : pos + _LEN]
        if is_open and head.count(0) == len(head) and buf.count(0, pos) == len(buf) - pos:
            break  # the pre-zeroed space after the last record
        frame = _frame_at(buf, pos, seq, seg_id, aes)
        if frame is None:
            _diagnose(scan, buf, pos, seq, aes, is_open)
            break
        scan.frames.append(frame)
        pos = scan.data_end = frame.end
        seq += 1
    return scan


SECTOR = 512


def _unwritten(buf: bytes, start: int, end: int) -> bool:
    """Whether the frame at buf[start:end] shows what a write cut short leaves in the
    pre-zeroed space: a zero tag, a run of 32 zeros, or a whole (512-byte aligned) sector of
    it still zero. Random ciphertext has none of these; a flipped byte adds none."""
    body = buf[start:end]
    if body[-TAG_BYTES:].count(0) == TAG_BYTES or b"\0" * 32 in body:
        return True
    at = (start // SECTOR + 1) * SECTOR
    while at < end:
        chunk = buf[at : min(at + SECTOR, end)]
        if chunk.count(0) == len(chunk):
            return True
        at += SECTOR
    return False


def _diagnose(
    scan: SegmentScan, buf: bytes, pos: int, seq: int, aes: AESGCM | None, is_open: bool
) -> None:
    """Fill in what is wrong at `pos`, where the frame for `seq` was expected."""
    scan.bad_seq = seq
    seg_id = scan.header.segment_id
    length = int.from_bytes(buf[pos : pos + _LEN], "big") if len(buf) - pos >= _LEN else -1
    has_seq = len(buf) - pos >= _LEN + _SEQ
    found = int.from_bytes(buf[pos + _LEN : pos + _LEN + _SEQ], "big") if has_seq else -1
    if MIN_FRAME <= length <= MAX_FRAME and pos + _LEN + length <= len(buf):
        if found != seq:
            scan.problem = f"seq discontinuity: expected record {seq}, found record {found}"
            return
        scan.problem = f"record {seq} fails authentication (edited or corrupted ciphertext)"
        if not _unwritten(buf, pos + _LEN, pos + _LEN + length):
            return  # a whole frame that does not authenticate: damage, not a write cut short
    elif length == -1 or pos + _LEN + max(length, 0) > len(buf):
        scan.problem = f"record {seq}: frame incomplete at offset {pos}"
    else:
        scan.problem = f"record {seq}: bad frame length {length} at offset {pos}"
    scan.detail = scan.problem
    if is_open and not _later_frame(buf, pos, seq, seg_id, aes):
        scan.torn = True
        scan.problem = f"torn tail: {scan.problem} (a write cut short; nothing valid follows)"


@dataclass(frozen=True)
class SegmentInfo:
    """A segment as listed in checkpoints: id, seq range, size and SHA-256 of its bytes."""

    segment_id: str
    first_seq: int
    records: int
    size: int
    sha256: str
    sealed: bool
    last_time: str | None = None

    @property
    def last_seq(self) -> int:
        """The seq of the segment's last record (first_seq - 1 if empty)."""
        return self.first_seq + self.records - 1

    def to_json(self) -> dict[str, Any]:
        """The checkpoint form of this entry."""
        return {
            "bytes": self.size,
            "first_seq": self.first_seq,
            "id": self.segment_id,
            "records": self.records,
            "sealed": self.sealed,
            "sha256": self.sha256,
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> SegmentInfo:
        """Parse a checkpoint entry."""
        return SegmentInfo(
            segment_id=str(doc["id"]),
            first_seq=int(doc["first_seq"]),
            records=int(doc["records"]),
            size=int(doc["bytes"]),
            sha256=str(doc["sha256"]),
            sealed=bool(doc["sealed"]),
        )


def fsync_dir(directory: Path) -> None:
    """fsync a directory so created, renamed or deleted entries are durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OpenSegment:
    """The segment being appended to: pre-zeroed, written with pwrite, synced per commit."""

    def __init__(
        self,
        path: Path,
        header: SegmentHeader,
        aes: AESGCM,
        data: bytes,
        records: int,
        prealloc: int = PREALLOC,
    ) -> None:
        """Wrap an existing segment file whose valid bytes are `data` (header + frames)."""
        self.path = path
        self.header = header
        self.aes = aes
        self.records = records
        self.data_end = len(data)
        self._hash = hashlib.sha256(data)
        self.fd = os.open(path, os.O_RDWR)
        size = os.fstat(self.fd).st_size
        if size > self.data_end:
            os.ftruncate(self.fd, self.data_end)  # drop a torn tail / stale zeros, then re-zero
        self.alloc_end = self.data_end
        self.prealloc = prealloc
        self._grow(prealloc)
        os.fsync(self.fd)

    @property
    def segment_id(self) -> str:
        """This segment's id."""
        return self.header.segment_id

    @property
    def next_seq(self) -> int:
        """The seq the next record written here will get."""
        return self.header.first_seq + self.records

    @staticmethod
    def create(
        directory: Path,
        first_seq: int,
        origin: str,
        created: str,
        seg_key: bytes,
        prealloc: int = PREALLOC,
    ) -> OpenSegment:
        """Create a new empty segment file starting at `first_seq` (key file made by caller)."""
        seg_id = segment_id(first_seq)
        path = directory / f"{seg_id}.log"
        header_bytes = encode_header(seg_id, first_seq, origin, created)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, header_bytes)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(directory)
        header = parse_header(header_bytes, seg_id)
        return OpenSegment(path, header, AESGCM(seg_key), header_bytes, 0, prealloc)

    def _grow(self, need: int) -> None:
        """Make sure at least `need` zero bytes (plus an end marker) follow the data."""
        if self.data_end + need + _LEN <= self.alloc_end:
            return
        add = max(self.prealloc, need + _LEN)
        os.pwrite(self.fd, b"\0" * add, self.alloc_end)
        self.alloc_end += add

    def at_expected_end(self) -> bool:
        """True if nobody else wrote past our view of the data (cheap multi-process check)."""
        return os.pread(self.fd, _LEN, self.data_end) == _ZERO_LEN

    def write(self, frames: bytes, count: int) -> None:
        """Write encoded frames after the data and make them durable with one sync."""
        grew = self.data_end + len(frames) + _LEN > self.alloc_end
        self._grow(len(frames))
        os.pwrite(self.fd, frames, self.data_end)
        if grew:
            os.fsync(self.fd)
        else:
            _sync(self.fd)
        self._hash.update(frames)
        self.data_end += len(frames)
        self.records += count

    def info(self, *, sealed: bool = False) -> SegmentInfo:
        """The checkpoint entry for the current contents (a prefix hash while open)."""
        return SegmentInfo(
            segment_id=self.segment_id,
            first_seq=self.header.first_seq,
            records=self.records,
            size=self.data_end,
            sha256=self._hash.hexdigest(),
            sealed=sealed,
        )

    def seal(self) -> SegmentInfo:
        """Cut the pre-zeroed space, sync and close; the file is immutable from now on."""
        os.ftruncate(self.fd, self.data_end)
        os.fsync(self.fd)
        self.close()
        return self.info(sealed=True)

    def close(self) -> None:
        """Close the file descriptor (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
