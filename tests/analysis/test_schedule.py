"""`amzigo schedule`: cron parsing, --list, and --once running a real subprocess job."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from amzigo_lab.analysis import schedule
from amzigo_lab.analysis.schedule import (
    Job,
    JobLock,
    Outcome,
    Runner,
    cron_trigger,
    load_jobs,
    missed_since,
)
from amzigo_lab.cli import main
from amzigo_lab.errors import ConfigError
from amzigo_lab.home import init_home


def test_crontab_weekdays_mean_what_crontab_says() -> None:
    friday = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    nxt = cron_trigger("0 6 * * 1").get_next_fire_time(None, friday)
    assert nxt == dt.datetime(2026, 11, 30, 6, tzinfo=dt.UTC)  # Monday, not Tuesday
    assert cron_trigger("0 6 * * 0").get_next_fire_time(None, friday).weekday() == 6  # Sunday
    with pytest.raises(ValueError):
        cron_trigger("* * *")


def test_config_errors_name_the_job() -> None:
    with pytest.raises(ConfigError, match=r"schedule.jobs.bad.*unknown amzigo command"):
        load_jobs({"jobs": {"bad": {"cron": "* * * * *", "command": "nonsense"}}}, {"report"})
    with pytest.raises(ConfigError, match="bad2"):
        load_jobs({"jobs": {"bad2": {"cron": "61 * * * *", "command": "report"}}})
    jobs = load_jobs(
        {"timeout": 5, "jobs": {"a": {"cron": "0 * * * *", "command": "amzigo report sales"}}}
    )
    assert jobs == [
        Job("a", "0 * * * *", ("report", "sales"), 5),
        Job("purge", "0 3 * * *", ("purge",), 5),
    ]
    assert [j.name for j in load_jobs({"default_purge": False})] == []


def test_bad_cron_error_names_the_job_on_the_cli(settings) -> None:
    """The message used to lose "[schedule.jobs.x]" to console markup ("error: : Error ...")."""
    init_home(settings).close()
    cfg = settings.home / "config.toml"
    cfg.write_text(
        cfg.read_text() + '\n[schedule.jobs.nightly]\ncron = "61 * * * *"\ncommand = "purge"\n'
    )
    res = CliRunner().invoke(main, ["schedule", "--list", "--home", str(settings.home)])
    assert res.exit_code == 2
    assert "schedule job 'nightly'" in res.output and "[schedule.jobs.nightly]" in res.output


def test_missed_runs_are_counted() -> None:
    job = Job("h", "0 * * * *", ("report",))
    last = dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC)
    assert missed_since(job, last, dt.datetime(2026, 3, 1, 5, 30, tzinfo=dt.UTC)) == 5
    assert missed_since(job, None, dt.datetime(2026, 3, 1, 5, 30, tzinfo=dt.UTC)) == 0


@pytest.fixture
def sched_home(settings) -> Path:
    init_home(settings).close()
    cfg = settings.home / "config.toml"
    cfg.write_text(
        cfg.read_text()
        + "\n[schedule]\ntimeout = 60\n"
        + '[schedule.jobs.version]\ncron = "* * * * * *"\ncommand = "--version"\n'
        + '[schedule.jobs.broken]\ncron = "* * * * * *"\ncommand = "report sales --tenant nobody --days 1"\ntimeout = 120\n'
    )
    return settings.home


def test_list_shows_next_runs(sched_home: Path) -> None:
    res = CliRunner().invoke(main, ["schedule", "--list", "--json", "--home", str(sched_home)])
    assert res.exit_code == 0, res.output
    rows = {r["job"]: r for r in json.loads(res.output)}
    assert set(rows) == {"version", "broken", "purge"} and len(rows["version"]["next_runs"]) == 3
    assert rows["purge"]["cron"] == "0 3 * * *"  # the daily purge is a default job


@pytest.mark.slow
def test_once_runs_each_job_from_its_cron(sched_home: Path) -> None:
    res = CliRunner().invoke(
        main, ["schedule", "--once", "--max-wait", "60", "--json", "--home", str(sched_home)]
    )
    assert res.exit_code == 1  # the broken job failed, and that is reported
    log = [
        json.loads(line)
        for line in (sched_home / "state" / "schedule.log").read_text().splitlines()
    ]
    status = {r["job"]: r["status"] for r in log}
    assert status == {"version": "ok", "broken": "failed"} and len(log) == 2  # once each
    state = {p.stem for p in (sched_home / "state" / "schedule").glob("*.json")}
    assert state == {"version", "broken"}
    # the outcome is in the home's audit log
    audit_files = list((sched_home / "audit").rglob("*"))
    assert audit_files


# -- the runner with an injected clock (no wall-clock waits) ----------------------------------


class FakeClock:
    """A clock that `sleep` advances."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


def _fake_run(failing: set[str] = frozenset(), calls: list[str] | None = None):  # type: ignore[assignment]
    def run(job: Job, home: Path) -> Outcome:
        if calls is not None:
            calls.append(job.name)
        if job.name in failing:
            return Outcome(job.name, dt.datetime.now(dt.UTC), 0.1, "failed", 3, "boom")
        return Outcome(job.name, dt.datetime.now(dt.UTC), 0.1, "ok", 0)

    return run


def _runner(tmp_path: Path, jobs: list[Job], clock: FakeClock, **kw: object) -> tuple[Runner, list]:
    events: list[tuple[str, dict]] = []
    runner = Runner(
        jobs,
        tmp_path,
        tmp_path / "state",
        lambda action, **f: events.append((action, f)),
        echo=lambda _s: None,
        clock=clock,
        sleep=clock.sleep,
        **kw,  # type: ignore[arg-type]
    )
    return runner, events


def test_two_jobs_sharing_a_minute_both_run_and_are_recorded(tmp_path: Path) -> None:
    clock = FakeClock(dt.datetime(2026, 3, 1, 11, 59, 30, tzinfo=dt.UTC))
    jobs = [Job("a", "* * * * *", ("report",)), Job("b", "* * * * *", ("purge",))]
    calls: list[str] = []
    runner, events = _runner(tmp_path, jobs, clock, run=_fake_run(calls=calls))
    outcomes = runner.run_once(max_wait=90)
    assert sorted(calls) == ["a", "b"]  # each exactly once, in the same minute
    assert clock.slept == [30.0] and {o.status for o in outcomes} == {"ok"}
    log = [json.loads(x) for x in (tmp_path / "state" / "schedule.log").read_text().splitlines()]
    assert sorted(r["job"] for r in log) == ["a", "b"]
    assert all(r["exit_code"] == 0 for r in log)
    for name in ("a", "b"):
        rec = json.loads((tmp_path / "state" / "schedule" / f"{name}.json").read_text())
        assert rec == {"last_fire": "2026-03-01T12:00:00+00:00", "status": "ok", "exit_code": 0}
    assert sorted(f["resource"] for a, f in events if a == "schedule.job") == ["job:a", "job:b"]
    assert not list((tmp_path / "state" / "schedule").glob("*.tmp"))  # no temp file left


def test_a_job_never_runs_twice_at_once(tmp_path: Path) -> None:
    clock = FakeClock(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC))
    job = Job("a", "* * * * *", ("report",))
    calls: list[str] = []
    runner, events = _runner(tmp_path, [job], clock, run=_fake_run(calls=calls))
    held = JobLock(tmp_path / "state" / "schedule", "a")
    assert held.acquire()  # another process is running the job
    try:
        out = runner.execute(job)
    finally:
        held.release()
    assert out.status == "skipped" and calls == []
    assert events[-1][0] == "schedule.missed" and "still going" in events[-1][1]["reason"]
    assert runner.execute(job).status == "ok" and calls == ["a"]


def test_catch_up_after_downtime_runs_once(tmp_path: Path) -> None:
    clock = FakeClock(dt.datetime(2026, 3, 1, 17, 30, tzinfo=dt.UTC))
    job = Job("h", "0 * * * *", ("report",))
    calls: list[str] = []
    runner, events = _runner(tmp_path, [job], clock, run=_fake_run(calls=calls))
    runner.state.mark("h", dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC), status="ok")
    runner.run_once(max_wait=60)
    assert calls == ["h"] and clock.slept == []  # at once, one run for the 5 missed slots
    missed = [f for a, f in events if a == "schedule.missed"]
    assert missed[0]["row_count"] == 5 and "one catch-up run" in missed[0]["reason"]


def test_service_loop_runs_jobs_on_time_with_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock(dt.datetime(2026, 3, 1, 12, 0, 10, tzinfo=dt.UTC))
    jobs = [Job("a", "* * * * *", ("report",)), Job("b", "*/2 * * * *", ("purge",))]
    calls: list[str] = []
    runner, _events = _runner(tmp_path, jobs, clock, run=_fake_run(calls=calls))

    def sleep(seconds: float) -> None:
        for thread in runner._threads:  # fake minutes pass in microseconds: let runs finish
            thread.join()
        clock.sleep(seconds)
        if clock.now >= dt.datetime(2026, 3, 1, 12, 4, 30, tzinfo=dt.UTC):
            runner.stop.set()

    runner._sleep = sleep
    runner.run_forever(tick=30)
    assert calls.count("a") == 4 and calls.count("b") == 2  # 12:01..12:04; 12:02, 12:04


def test_failing_job_exits_non_zero_and_is_audited(
    sched_home: Path, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    noon = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(schedule, "_utcnow", lambda: noon)  # both jobs due now: no waiting
    monkeypatch.setattr(schedule, "run_job", _fake_run(failing={"broken"}))
    res = CliRunner().invoke(
        main, ["schedule", "--once", "--max-wait", "5", "--json", "--home", str(sched_home)]
    )
    assert res.exit_code == 1, res.output
    log = [json.loads(x) for x in (sched_home / "state" / "schedule.log").read_text().splitlines()]
    assert {r["job"]: (r["status"], r["exit_code"]) for r in log} == {
        "version": ("ok", 0),
        "broken": ("failed", 3),
    }
    from amzigo_lab.home import open_lake

    with open_lake(settings) as lake:
        events = [e for e in lake.audit.log.search() if e.action.startswith("schedule.")]
    assert {(e.action, e.resource) for e in events} == {
        ("schedule.job", "job:version"),
        ("schedule.job_failed", "job:broken"),
    }
    failed = [e for e in events if e.resource == "job:broken"]
    assert failed[0].reason.startswith("failed; exit 3")
    from amzigo_lab.governance.audit import ScheduledJobFailed

    alerts = ScheduledJobFailed().evaluate(events)
    assert len(alerts) == 1 and alerts[0].detail.startswith("job:broken: failed; exit 3")


def test_state_writes_of_jobs_firing_together_never_collide(tmp_path: Path) -> None:
    """The old shared `schedule.tmp` made the second writer crash with FileNotFoundError."""
    import threading

    from amzigo_lab.analysis.schedule import ScheduleState

    state = ScheduleState.load(tmp_path)
    names = [f"job{i}" for i in range(16)]
    start = threading.Barrier(len(names))
    errors: list[BaseException] = []
    when = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

    def mark(name: str) -> None:
        start.wait()
        try:
            for _ in range(20):
                state.mark(name, when, status="ok", exit_code=0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=mark, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(ScheduleState.load(tmp_path).last) == set(names)
    assert not list((tmp_path / "schedule").glob("*.tmp"))


def test_a_job_an_incident_paused_does_not_start(tmp_path: Path) -> None:
    from amzigo_lab.analysis.schedule import Job, run_job
    from amzigo_lab.incident_pauses import pauses_path

    path = pauses_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pauses": [{"incident": "INC-1", "tenants": ["acme"]}]}))
    out = run_job(Job("r", "0 * * * *", ("report", "--tenant", "acme")), tmp_path)
    assert out.status == "paused" and "INC-1" in out.stderr_tail and out.exit_code is None
    path.write_text(json.dumps({"pauses": [{"incident": "INC-2", "tenants": ["*"]}]}))
    assert run_job(Job("i", "0 * * * *", ("ingest",)), tmp_path).status == "paused"
