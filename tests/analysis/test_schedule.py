"""`amzigo schedule`: cron parsing, --list, and --once running a real subprocess job."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from amzigo_lab.analysis.schedule import Job, cron_trigger, load_jobs, missed_since
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
    assert jobs == [Job("a", "0 * * * *", ("report", "sales"), 5)]


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
    assert set(rows) == {"version", "broken"} and len(rows["version"]["next_runs"]) == 3


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
    assert status == {"version": "ok", "broken": "failed"}
    state = json.loads((sched_home / "state" / "schedule.json").read_text())
    assert set(state) == {"version", "broken"}
    # the outcome is in the home's audit log
    audit_files = list((sched_home / "audit").rglob("*"))
    assert audit_files
