"""The audit anchor: every checkpoint copied to other storage, so wiping, truncating,
re-initialising or rolling back the log fails verification. Real files, real keys."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.config import load_settings
from amzigo_lab.governance.audit import (
    AuditEvent,
    AuditIntegrityError,
    AuditLog,
    Checkpoint,
    VerifyReport,
    verify_log,
)
from amzigo_lab.governance.audit import anchor as anchor_mod
from amzigo_lab.governance.audit.anchor import ANCHOR_LOG

MASTER = bytes(range(32))
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ACTOR = "u-zelda-unique-actor"


class Clock:
    """A settable clock (each reading advances it by 1 µs)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


def open_log(
    tmp: Path,
    clock: Callable[[], datetime] | None = None,
    *,
    anchored: bool = True,
    **kw: object,
) -> AuditLog:
    kw.setdefault("segment_max_records", 10)
    kw.setdefault("checkpoint_every_events", 5)
    return AuditLog(
        tmp / "log",
        tmp / "checkpoints",
        lambda: MASTER,
        tmp / "keys" / "audit-signing.key",
        clock=clock or Clock(),
        anchor=tmp / "anchor" if anchored else None,
        **kw,  # type: ignore[arg-type]
    )


def ev(i: int = 0, clock: Callable[[], datetime] | None = None) -> AuditEvent:
    return AuditEvent.new(
        action="data.read",
        actor=ACTOR,
        resource="dataset:orders",
        tenant="t1",
        decision="allow",
        row_count=i,
        request_id=f"req-{i}",
        clock=clock,
    )


def build(tmp: Path, n: int = 30) -> None:
    """A closed, anchored log of n events appended one by one (checkpoint every 5)."""
    with open_log(tmp) as log:
        for i in range(n):
            log.append(ev(i))


def verify(tmp: Path, *, anchored: bool = True) -> VerifyReport:
    return verify_log(
        tmp / "log",
        tmp / "checkpoints",
        lambda: MASTER,
        tmp / "keys" / "audit-signing.key.pub",
        anchor=tmp / "anchor" if anchored else None,
    )


def newest_anchored(tmp: Path) -> Checkpoint:
    cp = anchor_mod.read(tmp / "anchor").newest
    assert cp is not None
    return cp


def assert_fails_naming_anchor(tmp: Path, *words: str) -> VerifyReport:
    """Verification fails and names the newest anchored checkpoint: index, tree size, time."""
    cp = newest_anchored(tmp)
    report = verify(tmp)
    assert not report.ok, report
    named = f"checkpoint #{cp.index} (tree size {cp.tree_size}, {cp.time})"
    assert named in report.problem, report.problem
    assert report.anchored == named
    for word in words:
        assert word in report.problem, report.problem
    return report


def local_checkpoints(tmp: Path) -> list[Path]:
    return sorted((tmp / "checkpoints").iterdir())


def delete_checkpoints_after(tmp: Path, tree_size: int) -> None:
    for path in local_checkpoints(tmp):
        if Checkpoint.from_bytes(path.read_bytes(), path.name).tree_size > tree_size:
            path.unlink()


def seg(tmp: Path, first_seq: int) -> Path:
    return tmp / "log" / f"seg-{first_seq:012d}.log"


def frame_ends(path: Path) -> tuple[int, list[int]]:
    """(header size, end offset of each frame) of a segment file."""
    from amzigo_lab.governance.audit.segment import parse_header

    buf = path.read_bytes()
    pos = parse_header(buf, path.stem).size
    start, ends = pos, []
    while pos + 4 <= len(buf) and (n := int.from_bytes(buf[pos : pos + 4], "big")):
        pos += 4 + n
        ends.append(pos)
    return start, ends


def files_and_mtimes(*roots: Path) -> dict[str, tuple[bool, int, int]]:
    """Every file and directory under the roots: (is dir, size, mtime in ns)."""
    out: dict[str, tuple[bool, int, int]] = {}
    for root in roots:
        if not root.exists():
            out[str(root)] = (False, -1, -1)
            continue
        for dirpath, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                p = Path(dirpath) / name
                st = p.lstat()
                out[str(p)] = (p.is_dir(), 0 if p.is_dir() else st.st_size, st.st_mtime_ns)
        st = root.stat()
        out[str(root)] = (True, 0, st.st_mtime_ns)
    return out


# -- what the anchor holds -----------------------------------------------------------------------


def test_every_checkpoint_is_anchored_once_with_a_log_line_and_no_pii(tmp_path: Path) -> None:
    build(tmp_path)
    local = {p.name: p.read_bytes() for p in local_checkpoints(tmp_path)}
    anchor = tmp_path / "anchor"
    held = {p.name: p.read_bytes() for p in anchor.glob("checkpoint-*.json")}
    assert held == local and len(held) == 6  # tree sizes 5, 10, ..., 30
    lines = [json.loads(x) for x in (anchor / ANCHOR_LOG).read_text().splitlines()]
    assert [x["index"] for x in lines] == list(range(6))
    assert set(lines[0]) == {
        "digest", "file", "head", "index", "key_id", "origin", "signature", "time", "tree_size"
    }  # fmt: skip
    assert [x["tree_size"] for x in lines] == [5, 10, 15, 20, 25, 30]
    assert list((anchor / ".tmp").iterdir()) == []
    everything = b"".join(p.read_bytes() for p in anchor.rglob("*") if p.is_file())
    for secret in (ACTOR.encode(), b"dataset:orders", b"req-1", b't1"', MASTER.hex().encode()):
        assert secret not in everything
    report = verify(tmp_path)
    assert report.ok and report.records_checked == 30 and report.warnings == ()
    assert "checkpoint #5 (tree size 30" in report.anchored


def test_anchor_never_overwrites(tmp_path: Path) -> None:
    build(tmp_path, n=10)
    anchor = tmp_path / "anchor"
    cp = newest_anchored(tmp_path)
    assert anchor_mod.write(anchor, cp) is False  # already anchored: nothing written
    lines = (anchor / ANCHOR_LOG).read_text()
    other = Checkpoint.from_bytes(cp.to_bytes(), "x")
    from dataclasses import replace

    forged = replace(other, time="2030-01-01T00:00:00.000000Z")
    with pytest.raises(AuditIntegrityError, match="already holds another checkpoint"):
        anchor_mod.write(anchor, forged)
    assert (anchor / ANCHOR_LOG).read_text() == lines
    fresh = tmp_path / "fresh"
    assert anchor_mod.write(fresh, cp) is True
    first = Checkpoint.from_bytes(local_checkpoints(tmp_path)[0].read_bytes(), "first")
    with pytest.raises(AuditIntegrityError, match="newer than local checkpoint #0"):
        anchor_mod.write(fresh, first)  # an older history after a newer one: refused


def test_anchor_configured_later_catches_up(tmp_path: Path) -> None:
    with open_log(tmp_path, anchored=False) as log:
        for i in range(12):
            log.append(ev(i))
    assert not (tmp_path / "anchor").exists()
    open_log(tmp_path).close()  # close anchors every local checkpoint the anchor lacks
    assert len(list((tmp_path / "anchor").glob("checkpoint-*.json"))) == len(
        local_checkpoints(tmp_path)
    )
    assert verify(tmp_path).ok


# -- attacks: each fails once anchored, and names the anchored checkpoint ------------------------


def test_wiped_log_fails(tmp_path: Path) -> None:
    build(tmp_path)
    shutil.rmtree(tmp_path / "log")
    shutil.rmtree(tmp_path / "checkpoints")
    assert verify(tmp_path, anchored=False).ok  # the red team's finding, without an anchor
    assert_fails_naming_anchor(tmp_path, "wiped")
    (tmp_path / "log").mkdir()
    (tmp_path / "checkpoints").mkdir()  # empty directories: the same
    assert_fails_naming_anchor(tmp_path, "wiped")
    with pytest.raises(AuditIntegrityError, match="wiped"):  # the writer refuses to start over
        open_log(tmp_path)


def test_truncated_log_with_later_checkpoints_deleted_fails(tmp_path: Path) -> None:
    build(tmp_path)  # segments 0, 10, 20, 30 (open, empty); checkpoints at 5, 10, ..., 30
    k = 14  # keep records 0..14: cut seg-10 after its 5th frame, drop the later segments
    path = seg(tmp_path, 10)
    _, ends = frame_ends(path)
    path.write_bytes(path.read_bytes()[: ends[k - 10]])
    for first in (20, 30):
        for p in (seg(tmp_path, first), seg(tmp_path, first).with_suffix(".key")):
            p.unlink()
    delete_checkpoints_after(tmp_path, k + 1)
    assert verify(tmp_path, anchored=False).ok  # undetectable without the anchor
    report = assert_fails_naming_anchor(tmp_path, "local checkpoints #3..#5 are missing")
    assert "truncated" in report.problem


def test_reinitialised_log_fails(tmp_path: Path) -> None:
    build(tmp_path)
    shutil.rmtree(tmp_path / "log")
    shutil.rmtree(tmp_path / "checkpoints")
    with open_log(tmp_path, anchored=False) as log:  # a new log, same keys, no anchor
        for i in range(40):
            log.append(ev(i))
    assert verify(tmp_path, anchored=False).ok
    assert_fails_naming_anchor(tmp_path, "re-initialised")
    with open_log(tmp_path) as log:  # and the writer refuses to anchor the new history
        with pytest.raises(AuditIntegrityError, match="re-initialised or rolled back"):
            log.append_many([ev(i) for i in range(5)])
        log.anchor = None  # let close() finish without the anchor


def test_reinitialised_log_with_new_origin_and_key_fails(tmp_path: Path) -> None:
    build(tmp_path)
    for d in ("log", "checkpoints", "keys"):
        shutil.rmtree(tmp_path / d)
    with open_log(tmp_path, anchored=False, origin="someone/else") as log:
        log.append(ev())
    report = assert_fails_naming_anchor(tmp_path, "signature invalid")
    assert "signing key was replaced" in report.problem


def test_rolled_back_newest_segment_fails(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        for i in range(12):
            log.append(ev(i))
        log.checkpoint()  # tree size 12
        old = seg(tmp_path, 10).read_bytes()  # the newest (open) segment as it is now
        for i in range(8):
            log.append(ev(i))  # 20 records: seg-10 sealed, checkpoints at 15 and 20
    seg(tmp_path, 10).write_bytes(old)  # restore the older copy
    for p in (seg(tmp_path, 20), seg(tmp_path, 20).with_suffix(".key")):
        p.unlink()
    delete_checkpoints_after(tmp_path, 12)
    assert verify(tmp_path, anchored=False).ok
    assert_fails_naming_anchor(tmp_path, "rolled back")


def test_deleted_local_checkpoints_fail(tmp_path: Path) -> None:
    build(tmp_path)
    local_checkpoints(tmp_path)[-1].unlink()  # just the newest
    assert_fails_naming_anchor(tmp_path, "local checkpoint #5 is missing")
    for p in local_checkpoints(tmp_path):
        p.unlink()  # all of them
    assert_fails_naming_anchor(tmp_path, "local checkpoints #0..#5 are missing")


def test_forged_record_fails(tmp_path: Path) -> None:
    build(tmp_path)
    path = seg(tmp_path, 0)
    start, _ = frame_ends(path)
    data = bytearray(path.read_bytes())
    data[start + 40] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify(tmp_path)
    assert report.first_bad_seq == 0
    assert_fails_naming_anchor(tmp_path)


def test_deleted_anchor_file_named_in_anchor_log_fails(tmp_path: Path) -> None:
    build(tmp_path)
    newest = sorted((tmp_path / "anchor").glob("checkpoint-*.json"))[-1]
    newest.unlink()  # hides the newest anchored checkpoint, but anchor.log still names it
    report = verify(tmp_path)
    assert not report.ok and "anchor.log names checkpoint #5" in report.problem


# -- legitimate histories pass -------------------------------------------------------------------


def test_untouched_log_passes_and_no_anchor_warns(tmp_path: Path) -> None:
    build(tmp_path)
    assert verify(tmp_path).ok
    with open_log(tmp_path) as log:
        report = log.verify()
    assert report.ok and "extends the last anchored checkpoint #" in report.problem
    bare = verify(tmp_path, anchored=False)
    assert bare.ok and any("set audit.anchor" in w for w in bare.warnings)
    empty = tmp_path / "empty-anchor"
    report = verify_log(
        tmp_path / "log",
        tmp_path / "checkpoints",
        lambda: MASTER,
        tmp_path / "keys" / "audit-signing.key.pub",
        anchor=empty,
    )
    assert report.ok and "holds no checkpoint yet" in report.warnings[0]
    assert not empty.exists()


def test_retention_drops_still_verify_against_the_anchor(tmp_path: Path) -> None:
    clock = Clock()
    with open_log(tmp_path, clock, segment_max_records=5) as log:
        log.append_many(ev(i, clock=clock) for i in range(5))  # seg 0
        clock.now += timedelta(days=1)
        log.append_many(ev(i, clock=clock) for i in range(5))  # seg 5
        clock.now += timedelta(days=400)
        log.append_many(ev(i, clock=clock) for i in range(7))  # seg 10 sealed, 15 open
        clock.now += timedelta(days=400)
        dropped = log.drop_segments_before(T0 + timedelta(days=2))
        assert [d.segment_id for d in dropped] == ["seg-000000000000", "seg-000000000005"]
        assert log.verify().ok
        log.append(ev(99, clock=clock))
    report = verify(tmp_path)
    assert report.ok, report
    first = Checkpoint.from_bytes(
        sorted((tmp_path / "anchor").glob("checkpoint-*.json"))[0].read_bytes(), "first"
    )
    assert first.tree_size <= 15  # anchored checkpoints of the dropped prefix are kept
    with open_log(tmp_path, clock, segment_max_records=5) as log:
        assert log.verify().ok


# -- verify is read-only -------------------------------------------------------------------------


def test_verify_creates_and_changes_nothing(tmp_path: Path) -> None:
    build(tmp_path)
    before = files_and_mtimes(tmp_path)
    assert verify(tmp_path).ok
    assert verify(tmp_path, anchored=False).ok
    assert files_and_mtimes(tmp_path) == before
    shutil.rmtree(tmp_path / "log")
    shutil.rmtree(tmp_path / "checkpoints")
    before = files_and_mtimes(tmp_path)
    assert not verify(tmp_path).ok
    assert verify(tmp_path, anchored=False).ok  # 0 records, with the no-anchor warning
    missing = tmp_path / "nowhere"
    verify_log(
        missing / "log",
        missing / "checkpoints",
        lambda: MASTER,
        tmp_path / "keys" / "audit-signing.key.pub",
        anchor=missing / "anchor",
    )
    assert files_and_mtimes(tmp_path) == before and not missing.exists()


# -- checkpoint cadence (injected clock, no sleeping) --------------------------------------------


def sizes(tmp: Path) -> list[int]:
    return [Checkpoint.from_bytes(p.read_bytes(), p.name).tree_size for p in local_checkpoints(tmp)]


def test_checkpoint_every_n_events(tmp_path: Path) -> None:
    log = open_log(
        tmp_path,
        checkpoint_every_events=4,
        checkpoint_every_seconds=0,
        segment_max_records=1000,
    )
    for i in range(9):
        log.append(ev(i))
    assert sizes(tmp_path) == [4, 8]
    log.append_many([ev(i) for i in range(5)])  # one batch: one checkpoint after it
    assert sizes(tmp_path) == [4, 8, 14]
    assert len(list((tmp_path / "anchor").glob("checkpoint-*.json"))) == 3
    log.close()


def test_checkpoint_every_t_seconds(tmp_path: Path) -> None:
    clock = Clock()
    log = open_log(tmp_path, clock, checkpoint_every_events=0, checkpoint_every_seconds=300)
    log.append(ev(0, clock=clock))
    clock.now += timedelta(seconds=200)
    log.append(ev(1, clock=clock))
    assert sizes(tmp_path) == []
    clock.now += timedelta(seconds=101)  # 301 s since the log was opened
    log.append(ev(2, clock=clock))
    assert sizes(tmp_path) == [3]
    clock.now += timedelta(seconds=299)
    log.append(ev(3, clock=clock))
    assert log.tick() is None and sizes(tmp_path) == [3]
    clock.now += timedelta(seconds=2)
    cp = log.tick()  # a timer's call: due, with news since the last one
    assert cp is not None and cp.tree_size == 4 and sizes(tmp_path) == [3, 4]
    assert newest_anchored(tmp_path).index == cp.index
    clock.now += timedelta(hours=1)
    assert log.tick() is None  # nothing new: nothing to checkpoint
    log.close()


# -- settings and the CLI ------------------------------------------------------------------------


def test_settings_from_config_section_and_environment(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[audit]\nanchor = "/mnt/worm/amzigo"\ncheckpoint_every_events = 50\n'
    )
    s = load_settings(home, env={})
    assert s.audit_anchor == Path("/mnt/worm/amzigo")
    assert (s.audit_checkpoint_every_events, s.audit_checkpoint_every_seconds) == (50, 300)
    s = load_settings(home, env={"AMZIGO_AUDIT_ANCHOR": "/elsewhere"})
    assert s.audit_anchor == Path("/elsewhere")
    assert load_settings(tmp_path / "other", env={}).audit_anchor is None


def test_cli_audit_verify_fails_on_a_wiped_log_and_is_read_only(tmp_path: Path) -> None:
    home, anchor = tmp_path / "home", tmp_path / "anchor"
    env = {"AMZIGO_SESSION": None, "AMZIGO_HOME": str(home), "AMZIGO_AUDIT_ANCHOR": str(anchor)}

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, list(args), env=env)

    assert run("init").exit_code == 0
    from amzigo_lab.governance.context import Governance

    settings = load_settings(home, env={"AMZIGO_AUDIT_ANCHOR": str(anchor)})
    Governance.open(settings).close()  # the audit log records the policy, checkpoints, anchors
    assert list(anchor.glob("checkpoint-*.json"))
    before = files_and_mtimes(home, anchor)
    ok = run("audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and "anchored checkpoint #" in ok.output
    assert files_and_mtimes(home, anchor) == before
    settings = load_settings(home, env={})
    shutil.rmtree(settings.audit_path)
    shutil.rmtree(settings.checkpoint_path)
    before = files_and_mtimes(home, anchor)
    res = run("audit", "verify")
    assert res.exit_code == 1, res.output
    assert "FAILED" in res.output and "last anchored checkpoint #" in res.output
    as_json = run("audit", "verify", "--json")
    doc = json.loads(as_json.output)
    assert as_json.exit_code == 1 and doc["ok"] is False and doc["anchored"].startswith("check")
    assert files_and_mtimes(home, anchor) == before  # nothing re-created by verify


def test_cli_audit_verify_warns_without_an_anchor(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"AMZIGO_SESSION": None, "AMZIGO_HOME": str(home), "AMZIGO_AUDIT_ANCHOR": None}
    assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
    res = CliRunner().invoke(main, ["audit", "verify"], env=env)
    assert res.exit_code == 0 and "set audit.anchor" in res.output
    doc = json.loads(CliRunner().invoke(main, ["audit", "verify", "--json"], env=env).output)
    assert doc["ok"] is True and any("audit.anchor" in w for w in doc["warnings"])


def test_cli_audit_verify_record_logs_the_outcome(tmp_path: Path) -> None:
    from amzigo_lab.governance.context import Governance

    home = tmp_path / "home"
    env = {"AMZIGO_SESSION": None, "AMZIGO_HOME": str(home), "AMZIGO_AUDIT_ANCHOR": None}
    assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
    res = CliRunner().invoke(main, ["audit", "verify", "--record"], env=env)
    assert res.exit_code == 0, res.output
    with Governance.open(load_settings(home, env={})) as gov:
        found = gov.audit_log.search(action="audit.verified")
    assert len(found) == 1 and found[0].decision == "allow"
