"""Tests of the tamper-evident audit log: round trip, tamper detection, crashes, retention."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amzigo_lab.governance.audit import (
    GENESIS,
    AuditEvent,
    AuditFieldError,
    AuditIntegrityError,
    AuditLog,
    verify_log,
)
from amzigo_lab.governance.audit.keys import unwrap_segment_key
from amzigo_lab.governance.audit.record import decode_record, encode_record
from amzigo_lab.governance.audit.segment import encode_frame, parse_header

MASTER = bytes(range(32))
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


def open_log(tmp_path: Path, clock: Callable[[], datetime] | None = None, **kw: int) -> AuditLog:
    return AuditLog(
        tmp_path / "log",
        tmp_path / "checkpoints",
        lambda: MASTER,
        tmp_path / "keys" / "audit-signing.key",
        clock=clock or Clock(),
        **kw,
    )


def ev(
    i: int = 0,
    actor: str = "u-alice",
    action: str = "data.read",
    clock: Callable[[], datetime] | None = None,
    **kw: object,
) -> AuditEvent:
    fields: dict[str, object] = {
        "resource": "dataset:orders",
        "tenant": "t1",
        "decision": "allow",
        "row_count": i,
        "request_id": f"req-{i}",
    }
    fields.update(kw)
    return AuditEvent.new(action=action, actor=actor, clock=clock, **fields)


def fill(tmp_path: Path, n: int = 12, max_records: int = 5) -> None:
    """A closed log of n records in segments of max_records (the last one open)."""
    with open_log(tmp_path, segment_max_records=max_records) as log:
        log.append_many(ev(i) for i in range(n))


def seg_path(tmp_path: Path, first_seq: int) -> Path:
    return tmp_path / "log" / f"seg-{first_seq:012d}.log"


def frames(path: Path) -> tuple[bytes, list[tuple[int, int]]]:
    """(header bytes, [(offset, end)] of each frame) of a segment file."""
    buf = path.read_bytes()
    header = parse_header(buf, path.stem)
    pos, out = header.size, []
    while pos + 4 <= len(buf):
        n = int.from_bytes(buf[pos : pos + 4], "big")
        if n == 0:
            break
        out.append((pos, pos + 4 + n))
        pos += 4 + n
    return buf[: header.size], out


def rewrite(path: Path, order: list[int]) -> None:
    """Rewrite a segment keeping only the frames at the given indexes, in that order."""
    buf = path.read_bytes()
    header, spans = frames(path)
    end = spans[-1][1]
    body = b"".join(buf[spans[i][0] : spans[i][1]] for i in order)
    path.write_bytes(header + body + buf[end:])


def verify(tmp_path: Path) -> object:
    return verify_log(
        tmp_path / "log",
        tmp_path / "checkpoints",
        lambda: MASTER,
        tmp_path / "keys" / "audit-signing.key.pub",
    )


def abandon(log: AuditLog) -> None:
    """Simulate a crash: drop the handle without a final checkpoint."""
    assert log._seg is not None
    log._seg.close()
    os.close(log._lock_fd)
    log._lock_fd = -1


# -- events ------------------------------------------------------------------------------------


def test_event_new_fills_schema_fields() -> None:
    e = AuditEvent.new(action="auth.login", actor="u-1", clock=lambda: T0)
    assert e.schema_version == "1.0"
    assert len(e.event_id) == 32
    assert e.time == "2025-01-01T12:00:00.000000Z"
    assert e.timestamp == T0
    assert e.decision == "info" and e.row_count is None and e.session == ""
    assert AuditEvent.from_dict(e.to_dict()) == e


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "alice@example.com"),
        ("reason", "contact bob.smith@mail.co.uk please"),
        ("resource", "dataset:orders\nforged=1"),
        ("reason", "ok\r\n2025-01-01 admin login"),
        ("reason", "tab\there"),
        ("reason", "x" * 257),
        ("tenant", "t1 OR 1=1"),
        ("decision", "maybe"),
        ("row_count", -1),
        ("row_count", True),
        ("purpose", "caf\u00e9"),
    ],
)
def test_event_refuses_pii_and_injection(field: str, value: object) -> None:
    kwargs: dict[str, object] = {"action": "data.read", "actor": "u-1", field: value}
    with pytest.raises(AuditFieldError):
        AuditEvent.new(**kwargs)  # type: ignore[arg-type]


def test_event_allow_list() -> None:
    with pytest.raises(AuditFieldError):
        AuditEvent.new(action="data.read", actor="u-1", email="x")
    good = AuditEvent.new(action="data.read", actor="u-1").to_dict()
    with pytest.raises(AuditFieldError):
        AuditEvent.from_dict({**good, "buyer_name": "X"})
    with pytest.raises(AuditFieldError):
        AuditEvent.new(action="Data Read", actor="u-1")
    with pytest.raises(AuditFieldError):
        AuditEvent.new(action="data.read", actor="u-1", clock=lambda: datetime(2025, 1, 1))
    # a bare '@' that is not an address is fine in free text
    assert AuditEvent.new(action="data.read", actor="u-1", reason="rate @ 10/s").reason


# -- round trip ----------------------------------------------------------------------------------


def test_round_trip_search_and_reopen(tmp_path: Path) -> None:
    clock = Clock()
    log = open_log(tmp_path, clock)
    log.append(AuditEvent.new(action="auth.login", actor="u-alice", decision="allow", clock=clock))
    clock.now += timedelta(hours=1)
    hashes = log.append_many(
        [
            AuditEvent.new(
                action="data.read",
                actor="u-alice",
                resource="dataset:orders",
                tenant="t1",
                decision="allow",
                row_count=10,
                clock=clock,
            ),
            AuditEvent.new(
                action="data.denied",
                actor="u-bob",
                resource="dataset:order_buyers",
                tenant="t2",
                decision="deny",
                clock=clock,
            ),
        ]
    )
    assert len(hashes) == 2 and all(len(h) == 64 for h in hashes)
    assert log.size == 3 and log.head == hashes[-1]
    assert [e.actor for e in log.search(actor="u-alice")] == ["u-alice", "u-alice"]
    assert [e.action for e in log.search(action="data.*")] == ["data.read", "data.denied"]
    assert len(log.search(resource="dataset:order_buyers")) == 1
    assert len(log.search(tenant="t1")) == 1
    assert [e.action for e in log.search(until=T0 + timedelta(minutes=30))] == ["auth.login"]
    assert len(log.search(since=T0 + timedelta(minutes=30), actor="u-bob")) == 1
    before = log.search()
    log.close()
    log.close()  # idempotent
    with open_log(tmp_path) as again:
        assert again.search() == before
        assert again.size == 3
        report = again.verify()
        assert report.ok, report
        assert report.records_checked == 3


def test_files_are_encrypted_and_keys_private(tmp_path: Path) -> None:
    fill(tmp_path, n=3)
    blob = b"".join(p.read_bytes() for p in (tmp_path / "log").iterdir())
    assert b"u-alice" not in blob and b"dataset:orders" not in blob
    key = tmp_path / "keys" / "audit-signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "keys" / "audit-signing.key.pub").read_bytes().startswith(b"-----BEGIN")


def test_segments_seal_and_checkpoints(tmp_path: Path) -> None:
    with open_log(tmp_path, segment_max_records=5) as log:
        log.append_many(ev(i) for i in range(12))
        assert sorted(p.name for p in (tmp_path / "log").glob("*.log")) == [
            "seg-000000000000.log",
            "seg-000000000005.log",
            "seg-000000000010.log",
        ]
        info = log.seal()
        assert info is not None and info.first_seq == 10 and info.records == 2 and info.sealed
        assert log.seal() is None  # nothing new to seal
        cp = log.checkpoint()
        assert cp.tree_size == 12 and cp.last_seq == 11 and cp.head == log.head
        assert [s.sealed for s in cp.segments] == [True, True, True, False]
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names[0] == "checkpoint-000000000005-000000.json"
    doc = json.loads((tmp_path / "checkpoints" / names[-1]).read_text())
    assert doc["tree_size"] == 12 and doc["anchor"] == {"first_seq": 0, "prev": GENESIS}
    assert {"origin", "head", "segments", "time", "signature", "prev_checkpoint"} <= set(doc)
    report = verify(tmp_path)
    assert report.ok and report.checkpoints_checked == len(names)


# -- tampering -----------------------------------------------------------------------------------


def test_bit_flip_is_detected(tmp_path: Path) -> None:
    fill(tmp_path)
    path = seg_path(tmp_path, 5)
    _, spans = frames(path)
    buf = bytearray(path.read_bytes())
    buf[spans[2][1] - 20] ^= 0x01  # record 7's ciphertext
    path.write_bytes(bytes(buf))
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 7
    assert "authentication" in report.problem and not report.torn_tail
    assert "u-alice" not in report.problem


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_bit_in_a_segment_is_detected(tmp_path: Path, data: st.DataObject) -> None:
    base = tmp_path / "base"
    if not base.exists():
        fill(base)
    work = tmp_path / f"w{len(list(tmp_path.iterdir()))}"
    shutil.copytree(base, work)
    first = data.draw(st.sampled_from([0, 5, 10]), label="segment")
    path = seg_path(work, first)
    buf = bytearray(path.read_bytes())
    pos = data.draw(st.integers(0, len(buf) - 1), label="byte")
    buf[pos] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    path.write_bytes(bytes(buf))
    assert not verify(work).ok


def test_removed_record_is_detected(tmp_path: Path) -> None:
    fill(tmp_path)
    rewrite(seg_path(tmp_path, 5), [0, 1, 3, 4])  # drop record 7
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 7 and "expected record 7" in report.problem


def test_reordered_records_are_detected(tmp_path: Path) -> None:
    fill(tmp_path)
    rewrite(seg_path(tmp_path, 5), [0, 2, 1, 3, 4])  # swap records 6 and 7
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 6


def test_reencrypted_edit_breaks_the_chain(tmp_path: Path) -> None:
    fill(tmp_path)
    path = seg_path(tmp_path, 5)
    aes = AESGCM(unwrap_segment_key(path, path.stem, MASTER))
    buf = path.read_bytes()
    _, spans = frames(path)
    start, end = spans[2]
    nonce = buf[start + 12 : start + 24]
    seq, prev, event = decode_record(
        aes.decrypt(nonce, buf[start + 24 : end], b"seg-000000000005/" + (7).to_bytes(8, "big"))
    )
    forged = AuditEvent.from_dict({**event.to_dict(), "row_count": 0})
    frame = encode_frame(aes, path.stem, 7, encode_record(seq, prev, forged))
    path.write_bytes(buf[:start] + frame + buf[end:])
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 7 and "chain break" in report.problem


def test_truncated_tail_is_detected(tmp_path: Path) -> None:
    fill(tmp_path)
    rewrite(seg_path(tmp_path, 10), [0])  # drop the last record (11) cleanly
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 11 and "rolled back" in report.problem
    with pytest.raises(AuditIntegrityError):
        open_log(tmp_path, segment_max_records=5)


def test_deleted_last_segment_is_detected(tmp_path: Path) -> None:
    fill(tmp_path)
    seg_path(tmp_path, 10).unlink()
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 10


def test_missing_middle_segment_is_detected(tmp_path: Path) -> None:
    fill(tmp_path)
    seg_path(tmp_path, 5).unlink()
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 5 and "missing" in report.problem


def test_rollback_of_the_whole_directory_is_detected(tmp_path: Path) -> None:
    fill(tmp_path, n=8)
    shutil.copytree(tmp_path / "log", tmp_path / "backup")
    with open_log(tmp_path, segment_max_records=5) as log:
        log.append_many(ev(i) for i in range(4))
        log.checkpoint()
    shutil.rmtree(tmp_path / "log")
    shutil.copytree(tmp_path / "backup", tmp_path / "log")
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 8 and "rolled back" in report.problem
    with pytest.raises(AuditIntegrityError):
        open_log(tmp_path, segment_max_records=5)


def test_rollback_then_regrowth_is_detected(tmp_path: Path) -> None:
    fill(tmp_path, n=8)
    shutil.copytree(tmp_path / "log", tmp_path / "backup")
    with open_log(tmp_path, segment_max_records=5) as log:
        log.append_many(ev(i) for i in range(4))
    shutil.rmtree(tmp_path / "log")
    shutil.copytree(tmp_path / "backup", tmp_path / "log")
    # an insider with every key hides the checkpoints, regrows the old copy, puts them back
    (tmp_path / "checkpoints").rename(tmp_path / "hidden")
    with open_log(tmp_path, segment_max_records=5) as log:
        log.append_many(ev(i, actor="u-mallory") for i in range(6))
    shutil.rmtree(tmp_path / "checkpoints")
    (tmp_path / "hidden").rename(tmp_path / "checkpoints")
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 8, report


def test_forged_checkpoint_is_detected(tmp_path: Path) -> None:
    fill(tmp_path)
    latest = sorted((tmp_path / "checkpoints").iterdir())[-1]
    doc = json.loads(latest.read_text())
    doc["tree_size"], doc["last_seq"] = 11, 10
    latest.write_text(json.dumps(doc))
    report = verify(tmp_path)
    assert not report.ok and "signature invalid" in report.problem


def test_checkpoint_signed_by_another_key_is_detected(tmp_path: Path) -> None:
    from amzigo_lab.governance.audit.checkpoint import Checkpoint

    fill(tmp_path)
    path = sorted((tmp_path / "checkpoints").iterdir())[-1]
    cp = Checkpoint.from_bytes(path.read_bytes(), path.name)
    path.write_bytes(cp.sign(Ed25519PrivateKey.generate()).to_bytes())
    report = verify(tmp_path)
    assert not report.ok and "signature invalid" in report.problem


def test_deleted_checkpoint_is_detected(tmp_path: Path) -> None:
    fill(tmp_path)
    names = sorted((tmp_path / "checkpoints").iterdir())
    names[1].unlink()
    report = verify(tmp_path)
    assert not report.ok and "checkpoint missing" in report.problem


def test_wrong_master_key_is_reported(tmp_path: Path) -> None:
    fill(tmp_path, n=3)
    report = verify_log(
        tmp_path / "log",
        tmp_path / "checkpoints",
        lambda: b"\x01" * 32,
        tmp_path / "keys" / "audit-signing.key.pub",
    )
    assert not report.ok and report.first_bad_seq == 0 and "another master key" in report.problem


# -- crashes -------------------------------------------------------------------------------------


def test_torn_tail_is_reported_then_repaired(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append_many(ev(i) for i in range(5))
    log.checkpoint()
    log.append(ev(5))
    log.append(ev(6))
    abandon(log)
    path = seg_path(tmp_path, 0)
    _, spans = frames(path)
    start, _ = spans[6]
    os.truncate(path, start + 30)  # record 6 half written
    report = verify(tmp_path)
    assert not report.ok and report.torn_tail and report.first_bad_seq == 6
    assert report.records_checked == 6

    with open_log(tmp_path) as log2:
        assert len(log2.repaired) == 1 and "torn tail" in log2.repaired[0]
        assert log2.size == 7  # 0..5 plus the audit.tail_repaired record
        assert log2.search(action="audit.tail_repaired")[0].actor == "system:audit"
        log2.append(ev(7))
        assert log2.verify().ok
    assert verify(tmp_path).ok


def test_torn_tail_inside_a_checkpoint_is_not_repaired(tmp_path: Path) -> None:
    fill(tmp_path, n=3, max_records=100)
    path = seg_path(tmp_path, 0)
    _, spans = frames(path)
    os.truncate(path, spans[2][0] + 30)
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 2 and "inside the signed" in report.problem
    with pytest.raises(AuditIntegrityError):
        open_log(tmp_path)


def test_crash_between_seal_and_checkpoint_recovers(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_max_records=5)
    log.append_many(ev(i) for i in range(3))
    abandon(log)
    with open_log(tmp_path, segment_max_records=5) as log2:
        log2.append_many(ev(i) for i in range(4))
        assert log2.size == 7
    assert verify(tmp_path).ok


# -- retention -----------------------------------------------------------------------------------


def test_drop_segments_before_shreds_and_keeps_verifying(tmp_path: Path) -> None:
    clock = Clock()
    with open_log(tmp_path, clock, segment_max_records=5) as log:
        log.append_many(ev(i, clock=clock) for i in range(5))  # seg 0: 2025-01-01
        clock.now += timedelta(days=1)
        log.append_many(ev(i, clock=clock) for i in range(5))  # seg 5: 2025-01-02
        clock.now += timedelta(days=400)
        log.append_many(ev(i, clock=clock) for i in range(7))  # seg 10 (sealed), seg 15 open
        clock.now += timedelta(days=400)
        with pytest.raises(ValueError, match="younger than 365 days"):
            log.drop_segments_before(clock.now - timedelta(days=30))
        dropped = log.drop_segments_before(T0 + timedelta(days=2))
        assert [d.segment_id for d in dropped] == ["seg-000000000000", "seg-000000000005"]
        assert dropped[-1].last_seq == 9 and dropped[-1].last_time is not None
        for d in dropped:
            assert not (tmp_path / "log" / f"{d.segment_id}.log").exists()
            assert not (tmp_path / "log" / f"{d.segment_id}.key").exists()
        report = log.verify()
        assert report.ok, report
        assert report.records_checked == 8  # 10..16 and the retention.purge record
        purge = log.search(action="retention.purge")
        assert len(purge) == 1 and purge[0].row_count == 10
        assert log.drop_segments_before(T0 + timedelta(days=2)) == []
        log.append(ev(99, clock=clock))
    with open_log(tmp_path, clock, segment_max_records=5) as log2:
        assert log2.size == 19
        assert log2.verify().ok
    assert verify(tmp_path).ok


def test_dropped_segment_restored_from_backup_is_flagged(tmp_path: Path) -> None:
    clock = Clock()
    with open_log(tmp_path, clock, segment_max_records=5) as log:
        log.append_many(ev(i, clock=clock) for i in range(7))
        clock.now += timedelta(days=800)
        shutil.copy(seg_path(tmp_path, 0), tmp_path / "old.log")
        assert len(log.drop_segments_before(clock.now - timedelta(days=400))) == 1
    shutil.copy(tmp_path / "old.log", seg_path(tmp_path, 0))
    report = verify(tmp_path)
    assert not report.ok and "dropped by retention" in report.problem


# -- concurrency ---------------------------------------------------------------------------------


def test_threads_append_concurrently(tmp_path: Path) -> None:
    with open_log(tmp_path, segment_max_records=50) as log:
        results: list[str] = []

        def worker(k: int) -> None:
            for i in range(40):
                results.append(log.append(ev(i, actor=f"u-{k}")))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(results)) == 160 and log.size == 160
        assert log.verify().ok


def test_processes_append_concurrently(tmp_path: Path) -> None:
    fill(tmp_path, n=1, max_records=20)
    script = (
        "import sys; from pathlib import Path\n"
        "from amzigo_lab.governance.audit import AuditLog, AuditEvent\n"
        "p = Path(sys.argv[1])\n"
        "log = AuditLog(p/'log', p/'checkpoints', lambda: bytes(range(32)),"
        " p/'keys'/'audit-signing.key', segment_max_records=20)\n"
        "for i in range(30): log.append(AuditEvent.new(action='data.read', actor='u-proc'))\n"
        "log.close()\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env) for _ in range(3)
    ]
    with open_log(tmp_path, segment_max_records=20) as log:
        for i in range(30):
            log.append(ev(i))
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    with open_log(tmp_path, segment_max_records=20) as log:
        assert log.size == 121
        assert len(log.search(actor="u-proc")) == 90
        assert log.verify().ok
