"""The append-only audit log: chained, encrypted, durable, sealed into segments, checkpointed."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amzigo_lab.governance.audit import anchor as anchor_mod
from amzigo_lab.governance.audit import checkpoint as ckpt
from amzigo_lab.governance.audit.checkpoint import Checkpoint
from amzigo_lab.governance.audit.errors import AuditError, AuditIntegrityError
from amzigo_lab.governance.audit.event import AuditEvent, format_time, parse_time, utc_now
from amzigo_lab.governance.audit.keys import (
    create_segment_key,
    load_or_create_signing_key,
    master_key,
    public_key_path,
    shred_segment_key,
    unwrap_segment_key,
)
from amzigo_lab.governance.audit.record import GENESIS, decode_record, encode_record, record_hash
from amzigo_lab.governance.audit.segment import (
    PREALLOC,
    OpenSegment,
    SegmentInfo,
    encode_frame,
    fsync_dir,
    list_segments,
    scan_segment,
)
from amzigo_lab.governance.audit.verify import LOCK_NAME, VerifyReport, check, snapshot

DEFAULT_ORIGIN = "amzigo-lab/audit"
MIN_RETENTION = timedelta(days=365)
CHECKPOINT_EVERY_EVENTS = 100
CHECKPOINT_EVERY_SECONDS = 300
SYSTEM_ACTOR = "system:audit"


class AuditLog:
    """An append-only, hash-chained, encrypted audit log with signed checkpoints kept apart."""

    def __init__(
        self,
        directory: Path,
        checkpoint_dir: Path,
        key_provider: Callable[[], bytes],
        signing_key_path: Path,
        clock: Callable[[], datetime] = utc_now,
        segment_max_records: int = 10_000,
        *,
        origin: str = DEFAULT_ORIGIN,
        anchor: Path | None = None,
        checkpoint_every_events: int = CHECKPOINT_EVERY_EVENTS,
        checkpoint_every_seconds: float = CHECKPOINT_EVERY_SECONDS,
    ) -> None:
        """Open (or create) the log; repairs a torn tail left by a crash and audits the repair.

        `anchor` is a directory on other storage that receives a copy of every checkpoint
        (see `anchor.py`); a checkpoint is written at least every `checkpoint_every_events`
        records and, at the next append, once `checkpoint_every_seconds` have passed since
        the last one (0 turns either off), besides on sealing, retention drops and close.
        """
        if segment_max_records < 1:
            raise ValueError("segment_max_records must be >= 1")
        if checkpoint_every_events < 0 or checkpoint_every_seconds < 0:
            raise ValueError("checkpoint intervals must be >= 0 (0: off)")
        self.directory = Path(directory)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.anchor = Path(anchor) if anchor is not None else None
        self._every_events = checkpoint_every_events
        self._every_seconds = checkpoint_every_seconds
        self._ck_size = 0
        self._ck_time = clock()
        self._anchored = -1
        self.origin = origin
        self._key_provider = key_provider
        self._clock = clock
        self._max = segment_max_records
        self._prealloc = min(PREALLOC, max(64 * 1024, segment_max_records * 512))
        for d in (self.directory, self.checkpoint_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._signing = load_or_create_signing_key(Path(signing_key_path))
        self.public_key_path = public_key_path(Path(signing_key_path))
        self._lock = threading.RLock()
        self._queue_cond = threading.Condition(threading.Lock())
        self._queue: list[_Pending] = []
        self._committing = False
        self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        self._seg: OpenSegment | None = None
        self._sealed: list[SegmentInfo] = []
        self._head = GENESIS
        self._next_seq = 0
        self._ck_index = -1
        self.repaired: list[str] = []
        """Torn tails this handle cut off (each also logged as `audit.tail_repaired`)."""
        self._repairs_logged = 0
        try:
            with self._locked():
                self._load_state()
                self._audit_repairs()
        except BaseException:
            if self._seg is not None:
                self._seg.close()
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise

    # -- locking and state -------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the thread lock and the inter-process lock file."""
        with self._lock:
            if self._lock_fd < 0:
                raise AuditError("audit log is closed")
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _master(self) -> bytes:
        """The master (key-wrapping) key from the provider."""
        return master_key(self._key_provider())

    def _load_state(self) -> None:
        """(Re)read the log's state from disk: sealed segments, open segment, head, next seq."""
        if self._seg is not None:
            self._seg.close()
            self._seg = None
        latest = ckpt.latest(self.checkpoint_dir)
        self._ck_index = latest.index if latest else -1
        if latest is not None:
            self._ck_size, self._ck_time = latest.tree_size, parse_time(latest.time)
            self._finish_drops(latest)
        segs = list_segments(self.directory)
        master = self._master()
        if not segs:
            if latest is not None and latest.tree_size > 0:
                raise AuditIntegrityError(
                    f"{self.directory} has no segments but checkpoint #{latest.index} covers "
                    f"{latest.tree_size} records: restore the log, do not start a new one here"
                )
            if latest is None and self.anchor is not None:
                held = anchor_mod.read(self.anchor).newest
                if held is not None:
                    raise AuditIntegrityError(
                        f"{self.directory} is empty but the audit anchor {self.anchor} holds "
                        f"{anchor_mod.describe(held)}: the log was wiped; restore it, do not "
                        "start a new one here"
                    )
            self._sealed, self._head = [], GENESIS
            self._seg = self._new_segment(0, master)
            self._next_seq = 0
            return
        signed = {s.segment_id: s for s in latest.segments if s.sealed} if latest else {}
        self._sealed = [signed.get(p.stem) or self._describe(p) for _, p in segs[:-1]]
        path = segs[-1][1]
        buf = path.read_bytes()
        aes = AESGCM(unwrap_segment_key(path, path.stem, master))
        scan = scan_segment(buf, path.stem, aes, is_open=True)
        if scan.problem is not None:
            if not scan.torn:
                raise AuditIntegrityError(f"segment {path.stem}: {scan.problem}; run verify")
            if latest is not None and (scan.bad_seq or 0) < latest.tree_size:
                raise AuditIntegrityError(
                    f"segment {path.stem}: {scan.detail or scan.problem}, inside checkpoint "
                    f"#{latest.index}: truncated or tampered; refusing to repair: run verify"
                )
            self.repaired.append(f"{path.stem}: {scan.problem}")
        if scan.frames:
            self._head = record_hash(scan.frames[-1].record)
        else:
            self._head = self._head_before(scan.header.first_seq, latest, master)
        self._seg = OpenSegment(
            path, scan.header, aes, buf[: scan.data_end], len(scan.frames), self._prealloc
        )  # truncates a torn tail
        self._next_seq = self._seg.next_seq
        if latest is not None and (
            self._next_seq < latest.tree_size
            or (self._next_seq == latest.tree_size and self._head != latest.head)
        ):
            self._seg.close()
            raise AuditIntegrityError(
                f"log ends at record {self._next_seq - 1} but checkpoint #{latest.index} covers "
                f"{latest.tree_size} records with another head: truncated or rolled back; "
                "run verify"
            )

    def _describe(self, path: Path) -> SegmentInfo:
        """Checkpoint entry for a sealed segment not yet in a checkpoint (after a crash)."""
        buf = path.read_bytes()
        scan = scan_segment(buf, path.stem, None, is_open=False)
        if scan.problem is not None:
            raise AuditIntegrityError(f"segment {path.stem}: {scan.problem}; run verify")
        return SegmentInfo(
            segment_id=path.stem,
            first_seq=scan.header.first_seq,
            records=len(scan.frames),
            size=len(buf),
            sha256=hashlib.sha256(buf).hexdigest(),
            sealed=True,
        )

    def _head_before(self, first_seq: int, latest: Checkpoint | None, master: bytes) -> str:
        """The hash of record `first_seq - 1` (the `prev` of an empty open segment)."""
        if first_seq == 0:
            return GENESIS
        if self._sealed:
            return record_hash(self._last_record(self._sealed[-1], master))
        if latest is not None and latest.anchor_seq == first_seq:
            return latest.anchor_prev
        raise AuditIntegrityError(f"cannot find record {first_seq - 1}: run verify")

    def _last_record(self, info: SegmentInfo, master: bytes) -> bytes:
        """Decrypt the last record of a sealed segment."""
        path = self.directory / f"{info.segment_id}.log"
        aes = AESGCM(unwrap_segment_key(path, info.segment_id, master))
        scan = scan_segment(path.read_bytes(), info.segment_id, aes, is_open=False)
        if scan.problem is not None or not scan.frames:
            raise AuditIntegrityError(f"segment {info.segment_id}: unreadable; run verify")
        return scan.frames[-1].record

    def _new_segment(self, first_seq: int, master: bytes) -> OpenSegment:
        """Create the key and file of a new open segment."""
        sid = f"seg-{first_seq:012d}"
        path = self.directory / f"{sid}.log"
        key = path.with_suffix(".key")
        if key.exists() and not path.exists():
            key.unlink()  # a key written just before a crash, without its segment
        seg_key = create_segment_key(path, sid, master)
        return OpenSegment.create(
            self.directory, first_seq, self.origin, self._now(), seg_key, self._prealloc
        )

    def _now(self) -> str:
        """The clock's time, formatted."""
        return format_time(self._clock())

    def _refresh(self) -> OpenSegment:
        """Reload state if another process wrote, sealed or repaired since our last look."""
        if self._seg is None or self._seg.fd < 0 or not self._seg.at_expected_end():
            self._load_state()
        assert self._seg is not None
        return self._seg

    def _sync_checkpoints(self) -> Checkpoint | None:
        """Reload state if another process wrote a checkpoint (sealed or dropped segments)."""
        latest = ckpt.latest(self.checkpoint_dir)
        if (latest.index if latest else -1) != self._ck_index:
            self._load_state()
        return latest

    # -- appending ---------------------------------------------------------------------------

    def append(self, event: AuditEvent) -> str:
        """Append one event durably (encrypt, write, fsync); return its record hash.

        Concurrent callers are committed together: whoever gets the lock writes every queued
        event with one fsync (leader/follower group commit), so threads rarely wait on a sync.
        """
        if not isinstance(event, AuditEvent):
            raise TypeError("append expects an AuditEvent")
        slot = _Pending(event)
        batch: list[_Pending] = []
        with self._queue_cond:
            self._queue.append(slot)
            while not slot.done:
                if not self._committing:
                    self._committing = True
                    batch, self._queue = self._queue, []
                    break
                self._queue_cond.wait()
        if batch:  # this thread leads: commit everything queued so far with one sync
            try:
                with self._locked():
                    self._commit(batch)
            except Exception as exc:
                for p in batch:
                    p.error, p.done = exc, True
            finally:
                with self._queue_cond:
                    self._committing = False
                    self._queue_cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _commit(self, batch: list[_Pending]) -> None:
        """Write a batch of queued appends and hand each caller its result or the error."""
        try:
            hashes = self._append_locked([p.event for p in batch])
            self._audit_repairs()
        except Exception as exc:
            for p in batch:
                p.error, p.done = exc, True
            return
        for p, h in zip(batch, hashes, strict=True):
            p.result, p.done = h, True

    def append_many(self, events: Iterable[AuditEvent]) -> list[str]:
        """Append events with one fsync per segment touched (group commit); return hashes."""
        batch = list(events)
        for ev in batch:
            if not isinstance(ev, AuditEvent):
                raise TypeError("append expects AuditEvent instances")
        with self._locked():
            hashes = self._append_locked(batch)
            self._audit_repairs()
        return hashes

    def _append_locked(self, batch: Sequence[AuditEvent]) -> list[str]:
        """Append while holding the lock, sealing segments that fill up."""
        seg = self._refresh()
        hashes: list[str] = []
        pending: list[bytes] = []
        head, seq = self._head, self._next_seq
        try:
            for ev in batch:
                if seg.records + len(pending) >= self._max:
                    seg.write(b"".join(pending), len(pending))
                    self._head, self._next_seq, pending = head, seq, []
                    seg = self._rotate()
                record = encode_record(seq, head, ev)
                pending.append(encode_frame(seg.aes, seg.segment_id, seq, record))
                head = record_hash(record)
                hashes.append(head)
                seq += 1
            if pending:
                seg.write(b"".join(pending), len(pending))
                self._head, self._next_seq = head, seq
            if seg.records >= self._max:
                self._rotate()
            elif self._checkpoint_due():
                self._write_checkpoint()
        except BaseException:
            self._load_state()  # the disk is the truth after a failed write
            raise
        return hashes

    def _rotate(self) -> OpenSegment:
        """Seal the open segment, start the next one and write a signed checkpoint."""
        assert self._seg is not None
        self._sealed.append(self._seg.seal())
        self._seg = self._new_segment(self._next_seq, self._master())
        self._write_checkpoint()
        return self._seg

    def _audit_repairs(self) -> None:
        """Write an `audit.tail_repaired` event for every torn tail cut off and not yet logged."""
        while self._repairs_logged < len(self.repaired):
            reason = self.repaired[self._repairs_logged][:200]
            self._repairs_logged += 1
            ev = AuditEvent.new(
                action="audit.tail_repaired",
                actor=SYSTEM_ACTOR,
                resource="audit:log",
                reason=reason.replace("\n", " "),
                clock=self._clock,
            )
            self._append_locked([ev])

    # -- sealing and checkpoints -------------------------------------------------------------

    def _checkpoint_due(self) -> bool:
        """True if N records or T seconds have passed since the last checkpoint (with news)."""
        pending = self._next_seq - self._ck_size
        if pending <= 0:
            return False
        if self._every_events and pending >= self._every_events:
            return True
        if not self._every_seconds:
            return False
        return (self._clock() - self._ck_time).total_seconds() >= self._every_seconds

    def tick(self) -> Checkpoint | None:
        """Write a checkpoint if one is due (for a timer in long-running processes)."""
        with self._locked():
            self._refresh()
            return self._write_checkpoint() if self._checkpoint_due() else None

    def seal(self) -> SegmentInfo | None:
        """Seal the open segment now (if it has records) and write a checkpoint."""
        with self._locked():
            self._sync_checkpoints()
            seg = self._refresh()
            if seg.records == 0:
                self._write_checkpoint()
                return None
            info = seg.seal()
            self._sealed.append(info)
            self._seg = self._new_segment(self._next_seq, self._master())
            self._write_checkpoint()
            return info

    def checkpoint(self) -> Checkpoint:
        """Write a signed checkpoint of the current state (or return the latest if unchanged)."""
        with self._locked():
            self._refresh()
            return self._write_checkpoint()

    def _write_checkpoint(
        self, anchor: tuple[int, str] | None = None, dropped: Sequence[SegmentInfo] = ()
    ) -> Checkpoint:
        """Sign and store a checkpoint unless the latest one already states the same."""
        latest = self._sync_checkpoints()
        self._refresh()
        assert self._seg is not None
        if anchor is None:
            anchor = (latest.anchor_seq, latest.anchor_prev) if latest else (0, GENESIS)
        cp = Checkpoint(
            origin=self.origin,
            index=latest.index + 1 if latest else 0,
            tree_size=self._next_seq,
            head=self._head,
            anchor_seq=anchor[0],
            anchor_prev=anchor[1],
            segments=(*self._sealed, self._seg.info()),
            dropped=(*(latest.dropped if latest else ()), *dropped),
            prev_checkpoint=latest.digest() if latest else ckpt.first_prev(),
            time=self._now(),
            key_id="",
        )
        if latest is not None and latest.same_state(cp):
            self._anchor_up_to(latest)
            return latest
        signed = cp.sign(self._signing)
        ckpt.store(signed, self.checkpoint_dir)
        self._ck_index = signed.index
        self._ck_size, self._ck_time = signed.tree_size, parse_time(signed.time)
        self._anchor_up_to(signed)
        return signed

    def _anchor_up_to(self, latest: Checkpoint) -> None:
        """Copy every local checkpoint up to `latest` that the anchor lacks (if configured).

        Fails (AuditError) if the anchor is unreachable or holds another history: the local
        checkpoint is stored by then, and the next checkpoint write catches the anchor up.
        """
        if self.anchor is None or self._anchored >= latest.index:
            return
        try:
            self._anchored = anchor_mod.newest_index(self.anchor)
            if self._anchored == latest.index - 1:
                anchor_mod.write(self.anchor, latest)
            elif self._anchored < latest.index:
                for _, cp in ckpt.load_all(self.checkpoint_dir):
                    if self._anchored < cp.index <= latest.index:
                        anchor_mod.write(self.anchor, cp)
            else:
                anchor_mod.write(self.anchor, latest)  # the same one, or an integrity error
        except OSError as exc:
            raise AuditError(f"cannot write to the audit anchor {self.anchor}: {exc}") from exc
        self._anchored = latest.index

    # -- retention ---------------------------------------------------------------------------

    def drop_segments_before(
        self,
        cutoff: datetime,
        *,
        min_age: timedelta = MIN_RETENTION,
        actor: str = "system:retention",
    ) -> list[SegmentInfo]:
        """Crypto-shred and delete the oldest sealed segments whose last record is before cutoff."""
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware")
        if cutoff > self._clock() - min_age:
            raise ValueError(f"refusing to drop audit records younger than {min_age.days} days")
        with self._locked():
            self._sync_checkpoints()
            self._refresh()
            master = self._master()
            victims: list[SegmentInfo] = []
            last_hash = ""
            for info in self._sealed:
                record = self._last_record(info, master)
                last_time = decode_record(record)[2].time
                if parse_time(last_time) >= cutoff:
                    break
                victims.append(
                    SegmentInfo(
                        info.segment_id,
                        info.first_seq,
                        info.records,
                        info.size,
                        info.sha256,
                        True,
                        last_time,
                    )
                )
                last_hash = record_hash(record)
            if not victims:
                return []
            self._sealed = self._sealed[len(victims) :]
            dropped = [
                SegmentInfo(v.segment_id, v.first_seq, v.records, v.size, v.sha256, True)
                for v in victims
            ]
            cp = self._write_checkpoint((victims[-1].last_seq + 1, last_hash), dropped)
            self._finish_drops(cp)
            ev = AuditEvent.new(
                action="retention.purge",
                actor=actor,
                resource="audit:log",
                decision="info",
                reason=(
                    f"crypto-shredded and deleted {len(victims)} audit segment(s), records "
                    f"{victims[0].first_seq}-{victims[-1].last_seq}, checkpoint #{cp.index}"
                ),
                row_count=sum(v.records for v in victims),
                clock=self._clock,
            )
            self._append_locked([ev])
            return victims

    def _finish_drops(self, latest: Checkpoint) -> None:
        """Shred keys and delete files of segments a checkpoint records as dropped."""
        touched = False
        for info in latest.dropped:
            path = self.directory / f"{info.segment_id}.log"
            touched |= shred_segment_key(path)
            if path.exists():
                path.unlink()
                touched = True
        if touched:
            fsync_dir(self.directory)

    # -- reading -----------------------------------------------------------------------------

    def search(
        self,
        actor: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        tenant: str | None = None,
    ) -> list[AuditEvent]:
        """Events matching all given filters (action 'auth.*' matches a prefix), in seq order."""
        prefix = action[:-1] if action and action.endswith(".*") else None
        lo = format_time(since) if since else None
        hi = format_time(until) if until else None
        out: list[AuditEvent] = []
        for ev in self._all_events():
            if actor is not None and ev.actor != actor:
                continue
            if action is not None and not (
                ev.action.startswith(prefix) if prefix else ev.action == action
            ):
                continue
            if resource is not None and ev.resource != resource:
                continue
            if tenant is not None and ev.tenant != tenant:
                continue
            if (lo is not None and ev.time < lo) or (hi is not None and ev.time >= hi):
                continue
            out.append(ev)
        return out

    def _all_events(self) -> list[AuditEvent]:
        """Decrypt every retained event in seq order (under the lock: a consistent snapshot)."""
        events: list[AuditEvent] = []
        with self._locked():
            seg = self._refresh()
            segs = list_segments(self.directory)
            open_bytes = segs[-1][1].read_bytes()[: seg.data_end]
        master = self._master()
        for i, (_, path) in enumerate(segs):  # sealed segments are immutable: read unlocked
            aes = AESGCM(unwrap_segment_key(path, path.stem, master))
            is_open = i == len(segs) - 1
            buf = open_bytes if is_open else path.read_bytes()
            scan = scan_segment(buf, path.stem, aes, is_open=is_open)
            if scan.problem is not None:
                raise AuditIntegrityError(f"segment {path.stem}: {scan.problem}; run verify")
            events.extend(decode_record(frame.record)[2] for frame in scan.frames)
        return events

    def verify(self) -> VerifyReport:
        """Verify the whole log against the checkpoints signed by this log's key."""
        with self._locked():
            self._refresh()
            snap = snapshot(self.directory, self.checkpoint_dir, self.anchor)
        return check(snap, self._key_provider, self._signing.public_key(), self.origin)

    @property
    def size(self) -> int:
        """Records ever appended (the next seq), including dropped ones."""
        with self._locked():
            return self._refresh().next_seq

    @property
    def head(self) -> str:
        """Hash of the last record (64 zeros for an empty log)."""
        with self._locked():
            self._refresh()
            return self._head

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Write a final checkpoint and release files (idempotent)."""
        with self._lock:
            if self._lock_fd < 0:
                return
            try:
                with self._locked():
                    try:
                        self._refresh()
                        self._write_checkpoint()
                    finally:
                        if self._seg is not None:
                            self._seg.close()
            finally:
                os.close(self._lock_fd)
                self._lock_fd = -1

    def __enter__(self) -> AuditLog:
        """Use as a context manager; closes (with a checkpoint) on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the log."""
        self.close()


class _Pending:
    """One queued single append, filled in by whichever thread commits it."""

    __slots__ = ("done", "error", "event", "result")

    def __init__(self, event: AuditEvent) -> None:
        """Queue `event` with no result yet."""
        self.event = event
        self.result = ""
        self.error: Exception | None = None
        self.done = False
