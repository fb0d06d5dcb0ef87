"""Verification: decrypt every frame, walk the hash chain, and hold it against the checkpoints."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amzigo_lab.governance.audit import anchor as anchor_mod
from amzigo_lab.governance.audit import checkpoint as ckpt
from amzigo_lab.governance.audit.errors import AuditError, AuditFieldError
from amzigo_lab.governance.audit.keys import load_public_key, master_key, unwrap_segment_key
from amzigo_lab.governance.audit.record import GENESIS, decode_record, record_hash
from amzigo_lab.governance.audit.segment import list_segments, scan_segment

LOCK_NAME = ".lock"


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of `verify`: the first bad record (by seq) and what is wrong with it."""

    ok: bool
    records_checked: int
    first_bad_seq: int | None
    problem: str
    torn_tail: bool = False
    checkpoints_checked: int = 0
    warnings: tuple[str, ...] = ()
    """What verification could not rule out (e.g. a rollback, when no anchor is configured)."""
    anchored: str = ""
    """The newest anchored checkpoint (index, tree size, time), if an anchor holds one."""


@dataclass
class _Finding:
    """A problem found while verifying."""

    seq: int | None
    problem: str
    torn: bool = False


@contextmanager
def shared_lock(directory: Path) -> Iterator[None]:
    """Hold a shared lock on the log (if its lock file exists) so no writer is mid-frame."""
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def verify_log(
    directory: Path,
    checkpoint_dir: Path,
    key_provider: Callable[[], bytes],
    public_key: Ed25519PublicKey | Path,
    *,
    origin: str | None = None,
    anchor: Path | None = None,
) -> VerifyReport:
    """Verify a log read-only (the auditor's entry point); pin the checkpoint public key.

    With `anchor` (the directory every checkpoint is also written to), a log that does not
    contain the newest anchored checkpoint fails: wiped, truncated, rolled back or re-created.
    Nothing is created or modified, not even a missing directory.
    """
    missing = ""
    if isinstance(public_key, Ed25519PublicKey):
        public = public_key
    elif public_key.exists():
        public = load_public_key(public_key)
    else:  # no key (a home that never audited, or a wiped one): no signature can verify
        public, missing = Ed25519PrivateKey.generate().public_key(), str(public_key)
    with shared_lock(directory):
        snap = snapshot(directory, checkpoint_dir, anchor)
    report = check(snap, key_provider, public, origin)
    if missing and not report.ok:
        return replace(report, problem=f"audit public key {missing} is missing; {report.problem}")
    return report


@dataclass(frozen=True)
class Snapshot:
    """A consistent view taken under the lock: checkpoints, segment list, open segment bytes."""

    directory: Path
    checkpoints: list[tuple[str, ckpt.Checkpoint]] | AuditError
    segments: list[tuple[int, Path]]
    open_bytes: bytes
    anchor: anchor_mod.Held | None = None

    def read(self, path: Path) -> bytes:
        """Bytes of a segment: the snapshot for the open one, the (immutable) file otherwise."""
        if self.segments and path == self.segments[-1][1]:
            return self.open_bytes
        return path.read_bytes()


def snapshot(directory: Path, checkpoint_dir: Path, anchor: Path | None = None) -> Snapshot:
    """Take a snapshot (call with the log locked); sealed segments are read later, unlocked.

    Missing directories read as empty (a wiped log): nothing is created.
    """
    try:
        cps: list[tuple[str, ckpt.Checkpoint]] | AuditError = ckpt.load_all(checkpoint_dir)
    except FileNotFoundError:
        cps = []
    except AuditError as exc:
        cps = exc
    try:
        segments = list_segments(directory)
    except FileNotFoundError:
        segments = []
    open_bytes = segments[-1][1].read_bytes() if segments else b""
    held = anchor_mod.read(anchor) if anchor is not None else None
    return Snapshot(directory, cps, segments, open_bytes, held)


def _check_checkpoints(
    cps: list[tuple[str, ckpt.Checkpoint]], public: Ed25519PublicKey, origin: str | None
) -> _Finding | None:
    """Signatures, origin, consecutive indices, the digest chain and monotonic growth."""
    prev: ckpt.Checkpoint | None = None
    for i, (name, cp) in enumerate(cps):
        where = f"checkpoint {name}"
        if not cp.signature_ok(public):
            return _Finding(None, f"{where}: signature invalid (forged or altered)")
        if origin is not None and cp.origin != origin:
            return _Finding(None, f"{where}: origin {cp.origin!r} is not this log's")
        if cp.index != i:
            return _Finding(None, f"{where}: index {cp.index}, expected {i} (checkpoint missing)")
        expected_prev = prev.digest() if prev else ckpt.first_prev()
        if cp.prev_checkpoint != expected_prev:
            return _Finding(None, f"{where}: does not chain to the previous checkpoint")
        if not 0 <= cp.anchor_seq <= cp.tree_size:
            return _Finding(None, f"{where}: anchor outside the log")
        if prev is not None:
            if cp.tree_size < prev.tree_size or cp.anchor_seq < prev.anchor_seq:
                return _Finding(None, f"{where}: not monotonic (log shrank between checkpoints)")
            if cp.tree_size == prev.tree_size and cp.head != prev.head:
                return _Finding(None, f"{where}: same size as the previous one, different head")
        prev = cp
    return None


def check(
    snap: Snapshot,
    key_provider: Callable[[], bytes],
    public: Ed25519PublicKey,
    origin: str | None,
) -> VerifyReport:
    """Verify a snapshot (no lock needed: sealed segments never change, only get dropped).

    The local log is checked against its own checkpoints, then (if the snapshot has an
    anchor) against the newest anchored checkpoint: its signature, the same checkpoint held
    locally, and the same head at its tree size. Every failure names that checkpoint.
    """
    held = snap.anchor
    anchored = held.newest if held is not None else None
    extra = anchored.last_seq if anchored is not None else None
    report, hash_at, anchor_seq = _walk(snap, key_provider, public, origin, extra)
    if held is None:
        return replace(report, warnings=(anchor_mod.NO_ANCHOR_WARNING,))
    if anchored is None:
        if held.problem:
            return replace(
                report, ok=False, problem=f"audit anchor {held.directory}: {held.problem}"
            )
        warning = (
            f"the audit anchor {held.directory} holds no checkpoint yet: a wipe or rollback "
            "is detectable once a checkpoint has been anchored"
        )
        return replace(report, warnings=(warning,))
    named = anchor_mod.describe(anchored)
    local = [] if isinstance(snap.checkpoints, AuditError) else snap.checkpoints
    if origin is None and local:
        origin = local[-1][1].origin
    problem = anchor_mod.check(held, local, public, origin)
    if (
        not problem
        and report.ok
        and anchored.last_seq >= anchor_seq
        and hash_at.get(anchored.last_seq) != anchored.head
    ):
        problem = (
            f"the log does not extend the anchored tree: record {anchored.last_seq} does "
            "not have the anchored head (truncated, rolled back or rewritten)"
        )
    where = f"last anchored {named} in {held.directory}"
    warnings: tuple[str, ...] = ()
    if local and local[-1][1].index > anchored.index:
        warnings = (
            f"local checkpoints #{anchored.index + 1}..#{local[-1][1].index} are not anchored "
            "yet (anchor unreachable?): records after the anchored tree size are not protected "
            "against a rollback",
        )
    if problem:
        detail = f"; also: {report.problem}" if not report.ok else ""
        return replace(
            report,
            ok=False,
            problem=f"anchor check failed: {problem}; {where}{detail}",
            anchored=named,
            warnings=warnings,
        )
    if not report.ok:
        return replace(report, problem=f"{report.problem}; {where}", anchored=named)
    return replace(
        report, problem=f"{report.problem}; extends the {where}", anchored=named, warnings=warnings
    )


def _walk(
    snap: Snapshot,
    key_provider: Callable[[], bytes],
    public: Ed25519PublicKey,
    origin: str | None,
    extra_seq: int | None,
) -> tuple[VerifyReport, dict[int, str], int]:
    """Walk every retained record; remember the hashes at checkpoint heads and `extra_seq`."""
    directory = snap.directory
    hash_at: dict[int, str] = {}
    if isinstance(snap.checkpoints, AuditError):
        return VerifyReport(False, 0, None, str(snap.checkpoints)), hash_at, 0
    cps = snap.checkpoints
    bad = _check_checkpoints(cps, public, origin)
    if bad is not None:
        return VerifyReport(False, 0, None, bad.problem, checkpoints_checked=len(cps)), {}, 0
    last = cps[-1][1] if cps else None
    try:  # no segment, no key needed (a home that never audited, or a wiped log)
        master = master_key(key_provider()) if snap.segments else b""
    except AuditError as exc:
        return VerifyReport(False, 0, None, str(exc), checkpoints_checked=len(cps)), {}, 0
    anchor_seq, prev = (last.anchor_seq, last.anchor_prev) if last else (0, GENESIS)
    dropped = {s.segment_id for s in last.dropped} if last else set()
    listed = {s.segment_id: s for s in last.segments} if last else {}
    heads = {cp.last_seq: cp.head for _, cp in cps if cp.last_seq >= anchor_seq}
    if extra_seq is not None:
        heads.setdefault(extra_seq, "")
    coverage: list[_Finding] = []
    checked = 0
    expected = anchor_seq
    finding: _Finding | None = None
    segments = snap.segments
    for _, path in segments:
        if path.stem in dropped:
            finding = _Finding(
                None, f"segment {path.stem} was dropped by retention but is still on disk"
            )
            break
    for sid in sorted(dropped):
        if not finding and (directory / f"{sid}.key").exists():
            finding = _Finding(None, f"key of dropped segment {sid} still exists (not shredded)")
    is_last = {p: i == len(segments) - 1 for i, (_, p) in enumerate(segments)}
    for first_seq, path in [] if finding else segments:
        sid = path.stem
        if first_seq != expected:
            what = "missing" if first_seq > expected else "overlapping"
            finding = _Finding(expected, f"records from {expected} {what}: next file is {sid}")
            break
        try:
            buf = snap.read(path)
        except FileNotFoundError:
            finding = _Finding(first_seq, f"segment {sid} vanished during verification; retry")
            break
        try:
            aes = AESGCM(unwrap_segment_key(path, sid, master))
            scan = scan_segment(buf, sid, aes, is_open=is_last[path])
        except AuditError as exc:
            finding = _Finding(first_seq, str(exc))
            break
        entry = listed.get(sid)
        if entry is not None and last is not None:
            present = len(scan.frames)
            digest = hashlib.sha256(buf[: entry.size]).hexdigest()
            if present < entry.records:
                coverage.append(
                    _Finding(
                        first_seq + present,
                        f"segment {sid} holds {present} records, checkpoint #{last.index} "
                        f"signed {entry.records}: truncated or rolled back",
                    )
                )
            elif len(buf) < entry.size or (entry.sealed and len(buf) != entry.size):
                coverage.append(_Finding(first_seq, f"segment {sid} has another size than signed"))
            elif digest != entry.sha256:
                coverage.append(_Finding(first_seq, f"segment {sid} bytes differ from checkpoint"))
        for frame in scan.frames:
            seq = frame.seq
            try:
                rseq, rprev, _ = decode_record(frame.record)
            except (ValueError, AuditFieldError):
                finding = _Finding(seq, f"record {seq} is malformed or breaks the event schema")
                break
            if rseq != seq:
                finding = _Finding(seq, f"record {seq} claims seq {rseq}")
                break
            if rprev != prev:
                if seq > anchor_seq:
                    finding = _Finding(
                        seq - 1,
                        f"chain break: record {seq} does not commit to record {seq - 1} "
                        f"(record {seq - 1} edited, or a record replaced)",
                    )
                else:
                    finding = _Finding(seq, f"record {seq} does not match the signed anchor")
                break
            prev = record_hash(frame.record)
            if seq in heads:
                hash_at[seq] = prev
            checked += 1
            expected = seq + 1
        if finding:
            break
        if scan.problem is not None:
            finding = _Finding(scan.bad_seq, f"segment {sid}: {scan.problem}", scan.torn)
            if last is not None and scan.bad_seq is not None and scan.bad_seq < last.tree_size:
                # a signed record was complete once: this is not a write cut short
                finding = _Finding(
                    scan.bad_seq,
                    f"segment {sid}: {scan.detail or scan.problem} (inside the signed "
                    "checkpoints: truncated or tampered)",
                )
            break
        if not scan.frames and not is_last[path]:
            finding = _Finding(expected, f"sealed segment {sid} is empty")
            break
    n = len(cps)
    if finding is not None:
        report = VerifyReport(False, checked, finding.seq, finding.problem, finding.torn, n)
        return report, hash_at, anchor_seq
    if last is not None:
        for sid, entry in listed.items():
            if not (directory / f"{sid}.log").exists():
                coverage.append(_Finding(entry.first_seq, f"segment {sid} is missing"))
        if expected < last.tree_size:
            coverage.append(
                _Finding(
                    expected,
                    f"log has records up to {expected - 1} but checkpoint #{last.index} "
                    f"covers {last.tree_size}: truncated or rolled back",
                )
            )
        vouched = anchor_seq - 1
        for _, cp in cps:
            if cp.last_seq < anchor_seq or cp.last_seq >= expected:
                continue
            if hash_at.get(cp.last_seq) != cp.head:
                coverage.append(
                    _Finding(
                        vouched + 1,
                        f"record {cp.last_seq} differs from the head signed in checkpoint "
                        f"#{cp.index}: records after {vouched} rewritten or rolled back",
                    )
                )
                break
            vouched = cp.last_seq
        for f in coverage:  # a matching signed head vouches for every record up to it
            if f.seq is not None and f.seq <= vouched < expected - 1:
                f.seq = vouched + 1
    if coverage:
        first = min(coverage, key=lambda f: -1 if f.seq is None else f.seq)
        return VerifyReport(False, checked, first.seq, first.problem, False, n), hash_at, anchor_seq
    note = "" if last else " (no checkpoint yet: truncation and rollback are not detectable)"
    span = f"records {anchor_seq}..{expected - 1}" if expected > anchor_seq else "no records"
    report = VerifyReport(True, checked, None, f"ok: {span}, {n} checkpoint(s){note}", False, n)
    return report, hash_at, anchor_seq
