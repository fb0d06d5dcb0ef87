"""Issue 12 item 3: recovery that destroys data runs inside a compliance run and is certified.

A purge is SIGKILLed mid-run (a subprocess; deterministic kill points through the lake's fault
hook, and a slow sweep of random kill times); `amzigo doctor --fix` then finishes it inside the
purge's own run, so its certificate covers every destroyed partition, and verify passes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.compliance import purge, verify_certificate
from amzigo_lab.compliance.recovery import resume_interrupted, uncovered_partitions
from amzigo_lab.config import load_settings
from amzigo_lab.home import init_home, open_lake
from amzigo_lab.lake import Lake
from tests.compliance.conftest import Clock, buyers
from tests.lake.helpers import orders

ROOT = Path(__file__).resolve().parents[2]
D0 = dt.date(2020, 3, 1)
PARTITIONS = 64


def _build(home: Path) -> None:
    """64 partitions long past their purge dates (32 PII with canaries, 32 orders)."""
    clock = Clock(dt.datetime(2020, 3, 1, 9, tzinfo=dt.UTC))
    with init_home(load_settings(home, env={}), clock=clock, sandbox=True) as lake:
        for i in range(PARTITIONS // 2):
            day = D0 + dt.timedelta(days=i)
            lake.write("order_buyers", "acme", day, buyers([day], prefix=f"c{i}-"), f"b{i}")
            lake.write("orders", "acme", day, orders(2, prefix=f"o{i}-"), f"o{i}")
        lake.audit.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("recovery") / "template"
    _build(home)
    return home


def _copy(template: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(template, home, symlinks=True)
    return home


def _purge_process(home: Path, step: str, n: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests/compliance/crash_purge.py"), str(home), step, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _doctor(home: Path, fix: bool) -> tuple[int, dict]:  # type: ignore[type-arg]
    args = ["doctor", "--json", "--home", str(home)] + (["--fix"] if fix else [])
    result = CliRunner().invoke(main, args, env={"AMZIGO_HOME": None})
    return result.exit_code, json.loads(result.stdout)


def _assert_fully_certified(home: Path) -> None:
    with open_lake(load_settings(home, env={})) as lake:
        dropped = lake.catalog.partitions(states=("dropped",))
        assert len(dropped) == PARTITIONS
        assert lake.catalog.partitions(states=("live", "dropping")) == []
        assert uncovered_partitions(lake) == []
        certs = [r[0] for r in lake.catalog.db.execute("SELECT id FROM certificates")]
        assert certs
        covered = 0
        for cert_id in certs:
            report = verify_certificate(lake, cert_id)
            assert report["ok"], report["problems"]
            body = json.loads(
                lake.catalog.db.execute(
                    "SELECT body_json FROM certificates WHERE id = ?", (cert_id,)
                ).fetchone()[0]
            )
            covered += sum(1 for i in body["items"] if i["type"] == "lake partition")
        assert covered == PARTITIONS  # each destroyed partition certified exactly once
        runs = lake.catalog.db.execute(
            "SELECT count(*) FROM compliance_runs WHERE finished_at IS NULL"
        ).fetchone()[0]
        assert runs == 0
        assert lake.verify().ok


@pytest.mark.parametrize(
    ("step", "n"),
    [("drop_marked", 3), ("keys_destroyed", 5), ("files_deleted", 9), ("purge_batch_done", 16)],
)
def test_doctor_fix_certifies_a_killed_purge(template: Path, tmp_path: Path, step, n) -> None:  # type: ignore[no-untyped-def]
    home = _copy(template, tmp_path)
    proc = _purge_process(home, step, n)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == -9, err
    with open_lake(load_settings(home, env={})) as lake:
        assert (
            lake.catalog.db.execute(
                "SELECT count(*) FROM compliance_runs WHERE kind = 'purge' AND finished_at IS NULL"
            ).fetchone()[0]
            == 1
        )
    # the unfixed doctor names the interrupted drop (when one is) and changes nothing
    code, before = _doctor(home, fix=False)
    if step in ("drop_marked", "keys_destroyed", "files_deleted"):
        assert code == 1 and any("drop interrupted" in p["detail"] for p in before["problems"])
    code, fixed = _doctor(home, fix=True)
    assert code == 0, fixed["problems"]
    assert fixed["recovered"]["purge_runs"] and fixed["recovered"]["certificates"]
    _assert_fully_certified(home)
    code, again = _doctor(home, fix=False)
    assert code == 0 and again["ok"], again["problems"]


def test_a_resumed_drop_samples_canaries_while_keys_remain(template: Path, tmp_path: Path) -> None:
    home = _copy(template, tmp_path)
    proc = _purge_process(home, "drop_marked", 1)  # first batch (PII) marked, keys intact
    proc.communicate(timeout=300)
    assert proc.returncode == -9
    with open_lake(load_settings(home, env={})) as lake:
        assert len(lake.catalog.partitions(states=("dropping",))) == 4
        done = resume_interrupted(lake)
        assert done.purges and len(done.certificates) == 1
        rec = json.loads(
            lake.catalog.db.execute(
                "SELECT record_json FROM destructions ORDER BY created_at LIMIT 1"
            ).fetchone()[0]
        )
        assert rec["verification"]["canaries_checked"] > 0
    _assert_fully_certified(home)


def test_verify_names_destroyed_partitions_no_certificate_covers(lake: Lake, clock: Clock) -> None:
    day = dt.date(2026, 3, 1)
    lake.write("orders", "acme", day, orders(2), "o1")
    lake.write("orders", "beta", day, orders(2), "o2")
    beta = lake.catalog.partitions(None, ["beta"])[0]
    lake.drop_partition(beta.id, reason="outside any compliance run")
    clock.set_day(dt.date(2028, 1, 1))
    result = purge(lake)
    assert result.certificate_id
    report = verify_certificate(lake, result.certificate_id)
    assert not report["ok"] and report["uncovered_partitions"] == [beta.id]
    assert any("no certificate covers it" in p for p in report["problems"])
    lake.audit.close()  # type: ignore[attr-defined]
    for command in (["lake", "verify", "--break-glass", "test: coverage"], ["doctor"]):
        result = CliRunner().invoke(main, [*command, "--json", "--home", str(lake.settings.home)])
        assert result.exit_code == 1
        problems = json.loads(result.stdout)["problems"]
        assert [p["subject"] for p in problems if p["kind"] == "uncertified"] == [
            f"partition {beta.id}"
        ]
    fixed = CliRunner().invoke(
        main, ["doctor", "--fix", "--json", "--home", str(lake.settings.home)]
    )
    assert fixed.exit_code == 0, fixed.stdout  # certified late, from its destruction record
    late = json.loads(fixed.stdout)["recovered"]["certificates"]
    with open_lake(lake.settings) as again:
        assert uncovered_partitions(again) == [] and verify_certificate(again, late[0])["ok"]
        assert (
            "certified late"
            in json.loads(
                again.catalog.db.execute(
                    "SELECT body_json FROM certificates WHERE id = ?", (late[0],)
                ).fetchone()[0]
            )["notes"]
        )
        again.audit.close()  # type: ignore[attr-defined]


def test_orphaned_dropping_partitions_get_a_recovery_certificate(lake: Lake) -> None:
    lake.write("orders", "acme", dt.date(2026, 3, 1), orders(2), "o1")
    p = lake.catalog.partitions()[0]

    class Killed(Exception):
        pass

    def hook(step: str) -> None:
        if step == "keys_destroyed":
            raise Killed

    lake.fault_hook = hook
    with pytest.raises(Killed):
        lake.drop_partition(p.id)
    lake.fault_hook = lambda _s: None
    done = resume_interrupted(lake)
    assert done.recovered_run and len(done.certificates) == 1
    assert uncovered_partitions(lake) == []
    assert verify_certificate(lake, done.certificates[0])["ok"]


@pytest.mark.slow
def test_random_kill_sweep_ends_fully_certified(template: Path, tmp_path: Path) -> None:
    """20 purges SIGKILLed at random times; each ends with doctor --fix, verify, full cover."""
    rng = random.Random(12)
    # how long an unkilled purge takes on this machine (kill times are drawn within it)
    probe = _copy(template, tmp_path / "probe")
    t0 = time.monotonic()
    proc = _purge_process(probe, "never", 0)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    t_start = time.monotonic() - t0
    proc.communicate(timeout=600)
    assert proc.returncode == 0
    span = max(time.monotonic() - t0 - t_start, 0.2)
    for i in range(20):
        home = _copy(template, tmp_path / f"k{i}")
        proc = _purge_process(home, "never", 0)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        time.sleep(rng.uniform(0, span))
        proc.kill()
        proc.communicate(timeout=300)
        code, fixed = _doctor(home, fix=True)
        assert code == 0, (i, fixed["problems"])
        _assert_fully_certified(home)
        code, again = _doctor(home, fix=False)
        assert code == 0, (i, again["problems"])
        shutil.rmtree(home)


def test_a_purge_leaves_an_interrupted_notice_to_its_own_certificate(
    lake: Lake, clock: Clock
) -> None:
    from amzigo_lab.compliance import delete_scope

    day = dt.date(2026, 3, 1)
    for i in range(3):
        lake.write(
            "orders", "acme", day + dt.timedelta(days=i), orders(2, prefix=f"a{i}-"), f"a{i}"
        )
    lake.write("orders", "beta", day, orders(2), "b0")

    class Killed(Exception):
        pass

    def hook(step: str) -> None:
        if step == "keys_destroyed":
            raise Killed

    lake.fault_hook = hook
    with pytest.raises(Killed):
        delete_scope(lake, tenant="acme", notice="N-1", actor="alice")
    lake.fault_hook = lambda _s: None
    assert len(lake.catalog.partitions(states=("dropping",))) == 3
    clock.set_day(dt.date(2028, 1, 1))  # beta's partition is due too
    result = purge(lake)
    notice_cert = lake.catalog.db.execute(
        "SELECT body_json FROM certificates WHERE kind = 'deletion_notice' AND reference = 'N-1'"
    ).fetchone()
    assert notice_cert is not None
    notice_items = json.loads(notice_cert[0])["items"]
    assert {i["tenant"] for i in notice_items} == {"acme"} and len(notice_items) == 3
    purge_body = json.loads(
        lake.catalog.db.execute(
            "SELECT body_json FROM certificates WHERE id = ?", (result.certificate_id,)
        ).fetchone()[0]
    )
    assert [i["tenant"] for i in purge_body["items"]] == ["beta"]
    assert uncovered_partitions(lake) == []


def test_a_drop_killed_after_its_keys_are_destroyed_resumes_with_the_same_canaries(
    template: Path, tmp_path: Path
) -> None:
    home = _copy(template, tmp_path)
    proc = _purge_process(home, "keys_destroyed", 1)  # first (PII) batch: keys gone, files left
    proc.communicate(timeout=300)
    assert proc.returncode == -9
    with open_lake(load_settings(home, env={})) as lake:
        dropping = lake.catalog.partitions(states=("dropping",))
        assert len(dropping) == 4 and lake.partition_keys(p.key_id for p in dropping) == {}
        resume_interrupted(lake)
        rec = json.loads(
            lake.catalog.db.execute(
                "SELECT record_json FROM destructions ORDER BY created_at LIMIT 1"
            ).fetchone()[0]
        )
        assert {p.id for p in dropping} <= {p["partition_id"] for p in rec["partitions"]}
        # 3 canaries (name, e-mail, address) from each of the 32 PII partitions: the 4 whose
        # keys were already destroyed contribute theirs, kept (wrapped) since the sampling
        assert rec["verification"]["canaries_checked"] == 3 * 32
        names = [n for n, _c, _r in lake.secret_names() if n.startswith("drop-canaries-")]
        assert names == []  # destroyed once the drop completed
    _assert_fully_certified(home)
