"""Scheduled jobs: `amzigo` commands run on cron expressions from `<home>/config.toml`.

    [schedule]
    timeout = 1800                      # default seconds per job
    [schedule.jobs.ingest]
    cron = "15 * * * *"
    command = "ingest"
    [schedule.jobs.sales-acme]
    cron = "0 6 * * 1"                  # Mondays 06:00 UTC (crontab semantics: 0/7 = Sunday)
    command = "report sales --tenant acme-outdoor --days 7 --pdf"
    timeout = 900

Cron expressions have 5 fields (crontab), or 6 with seconds first. All times are UTC. Each run is
a subprocess of the `amzigo` CLI with a timeout, at most one instance per job at a time (a run
due while the previous one is still going is skipped and reported), coalesced after downtime.
Outcomes go to `<home>/state/schedule.log` (JSON lines) and the audit log (`schedule.job`);
runs missed while the scheduler was down or busy are reported (`schedule.missed`).

APScheduler 3's `CronTrigger.from_crontab` numbers weekdays from Monday = 0, unlike crontab;
numeric weekdays are translated to names here so "1" means Monday as in crontab.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amzigo_lab.errors import ConfigError

SERVICE_ACTOR = "svc:scheduler"
DEFAULT_TIMEOUT = 1800
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUM = re.compile(r"(?<![/\d])(\d+)")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CLI_ENTRY = "from amzigo_lab.cli import main; main()"


@dataclass(frozen=True)
class Job:
    """One scheduled command."""

    name: str
    cron: str
    argv: tuple[str, ...]
    timeout: int = DEFAULT_TIMEOUT

    def trigger(self) -> Any:
        """The APScheduler trigger (UTC)."""
        return cron_trigger(self.cron)


@dataclass
class Outcome:
    """What one run did."""

    job: str
    started: dt.datetime
    seconds: float
    status: str  # ok | failed | timeout
    exit_code: int | None
    stderr_tail: str = ""

    def to_json(self) -> dict[str, Any]:
        """A log record."""
        return {
            "job": self.job,
            "started": self.started.isoformat(),
            "seconds": round(self.seconds, 3),
            "status": self.status,
            "exit_code": self.exit_code,
            "stderr_tail": self.stderr_tail,
        }


def cron_trigger(expr: str) -> Any:
    """A UTC CronTrigger from a 5-field crontab or a 6-field (seconds first) expression."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"cron expression {expr!r} needs 5 fields (or 6 with seconds first)")
    sec = fields[0] if len(fields) == 6 else "0"
    minute, hour, day, month, dow = fields[-5:]
    dow = _NUM.sub(lambda m: _day_name(m.group(1), expr), dow)
    return CronTrigger(
        second=sec, minute=minute, hour=hour, day=day, month=month, day_of_week=dow,
        timezone=dt.UTC,
    )  # fmt: skip


def _day_name(num: str, expr: str) -> str:
    n = int(num)
    if n > 7:
        raise ValueError(f"cron expression {expr!r}: weekday {n} is not 0-7")
    return _DAYS[n]


def load_jobs(section: Mapping[str, Any], known_commands: set[str] | None = None) -> list[Job]:
    """Jobs from the `[schedule]` section; a bad entry raises ConfigError naming it."""
    default_timeout = int(section.get("timeout", DEFAULT_TIMEOUT))
    tables: dict[str, Any] = dict(section.get("jobs", {}))
    tables.update({k: v for k, v in section.items() if isinstance(v, dict) and k != "jobs"})
    jobs = []
    for name, spec in sorted(tables.items()):
        where = f"[schedule.jobs.{name}]"
        if not _NAME.match(name):
            raise ConfigError(f"{where}: job names use letters, digits, '-', '_' and '.'")
        if not isinstance(spec, dict) or "cron" not in spec or "command" not in spec:
            raise ConfigError(f"{where}: needs `cron` and `command`")
        cmd = spec["command"]
        argv = tuple(shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd])
        if argv and argv[0] == "amzigo":
            argv = argv[1:]
        if not argv:
            raise ConfigError(f"{where}: empty command")
        command = argv[0]
        if (
            known_commands is not None
            and not command.startswith("-")
            and (command not in known_commands)
        ):
            known = ", ".join(sorted(known_commands))
            raise ConfigError(f"{where}: unknown amzigo command {command!r}; known: {known}")
        try:
            cron_trigger(str(spec["cron"]))
            timeout = int(spec.get("timeout", default_timeout))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if timeout <= 0:
            raise ConfigError(f"{where}: timeout must be positive seconds")
        jobs.append(Job(name, str(spec["cron"]), argv, timeout))
    return jobs


def run_job(job: Job, home: Path) -> Outcome:
    """Run the job's `amzigo` command in a subprocess with the job's timeout."""
    cmd = [sys.executable, "-c", CLI_ENTRY, *job.argv]
    env = {**os.environ, "AMZIGO_HOME": str(home)}
    env.pop("AMZIGO_SESSION", None)  # jobs never ride on a person's session
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=job.timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return Outcome(job.name, started, time.monotonic() - t0, "timeout", None, "")
    tail = (proc.stderr.strip().splitlines() or [""])[-1][:300]
    status = "ok" if proc.returncode == 0 else "failed"
    return Outcome(job.name, started, time.monotonic() - t0, status, proc.returncode, tail)


@dataclass
class ScheduleState:
    """Last scheduled fire time per job, kept in `<home>/state/schedule.json`."""

    path: Path
    last: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ScheduleState:
        """Read the state (empty if absent or unreadable)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, {str(k): str(v) for k, v in data.items()})
        except (OSError, ValueError):
            return cls(path)

    def mark(self, job: str, when: dt.datetime) -> None:
        """Record a fire time and save atomically."""
        self.last[job] = when.isoformat()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.last, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)

    def last_run(self, job: str) -> dt.datetime | None:
        """The last recorded fire time of a job."""
        v = self.last.get(job)
        return dt.datetime.fromisoformat(v) if v else None


def missed_since(job: Job, last: dt.datetime | None, now: dt.datetime, cap: int = 1000) -> int:
    """Fire times of `job` strictly between its last run and `now` (capped)."""
    if last is None:
        return 0
    trigger = job.trigger()
    n, prev, t = 0, last, trigger.get_next_fire_time(None, last + dt.timedelta(microseconds=1))
    while t is not None and t < now and n < cap:
        n += 1
        prev = t
        t = trigger.get_next_fire_time(prev, prev + dt.timedelta(microseconds=1))
    return n


class Runner:
    """Runs jobs on their triggers with APScheduler 3 (background thread pool)."""

    def __init__(
        self,
        jobs: list[Job],
        home: Path,
        state_dir: Path,
        emit: Callable[..., Any],
        echo: Callable[[str], None] = print,
        run: Callable[[Job, Path], Outcome] = run_job,
    ) -> None:
        self.jobs = jobs
        self.home = home
        self.state = ScheduleState.load(state_dir / "schedule.json")
        self.log_path = state_dir / "schedule.log"
        self._emit = emit
        self.echo = echo
        self._run = run
        self._lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self.done: dict[str, threading.Event] = {j.name: threading.Event() for j in jobs}

    def emit(self, action: str, **fields: Any) -> None:
        """Audit (serialised: the sink is shared by the worker threads)."""
        with self._lock:
            self._emit(action, actor=SERVICE_ACTOR, **fields)

    def report_missed(self, now: dt.datetime | None = None) -> dict[str, int]:
        """Count and report runs missed since each job's last recorded run."""
        now = now or dt.datetime.now(dt.UTC)
        missed = {}
        for job in self.jobs:
            n = missed_since(job, self.state.last_run(job.name), now)
            if n:
                missed[job.name] = n
                self.echo(f"missed   {job.name}: {n} run(s) while the scheduler was not running")
                self.emit(
                    "schedule.missed",
                    resource=f"job:{job.name}",
                    decision="error",
                    reason=f"{n} runs missed while the scheduler was down",
                    row_count=n,
                )
        return missed

    def execute(self, job: Job) -> Outcome:
        """Run one job now and record its outcome."""
        self.state.mark(job.name, dt.datetime.now(dt.UTC))
        self.echo(f"start    {job.name}: amzigo {shlex.join(job.argv)}")
        out = self._run(job, self.home)
        with self._lock:
            self.outcomes.append(out)
            self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(out.to_json()) + "\n")
        self.echo(f"{out.status:<8} {job.name}: {out.seconds:.1f} s, exit {out.exit_code}")
        self.emit(
            "schedule.job",
            resource=f"job:{job.name}",
            decision="allow" if out.status == "ok" else "error",
            reason=f"{out.status}; exit {out.exit_code}; {out.seconds:.1f} s",
        )
        self.done[job.name].set()
        return out

    def scheduler(self) -> Any:
        """A started BackgroundScheduler with every job added."""
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.schedulers.background import BackgroundScheduler

        sched = BackgroundScheduler(timezone=dt.UTC)
        for job in self.jobs:
            sched.add_job(
                self.execute,
                job.trigger(),
                args=[job],
                id=job.name,
                name=job.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=60,
            )

        def on_event(event: Any) -> None:
            why = "still running" if event.code == EVENT_JOB_MAX_INSTANCES else "misfired"
            self.echo(f"missed   {event.job_id}: run skipped ({why})")
            self.emit(
                "schedule.missed",
                resource=f"job:{event.job_id}",
                decision="error",
                reason=f"run skipped: {why}",
                row_count=1,
            )

        sched.add_listener(on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        sched.start()
        return sched

    def run_once(self, max_wait: float) -> list[Outcome]:
        """Let every job fire once from its trigger, then stop (or stop after `max_wait` s)."""
        sched = self.scheduler()
        deadline = time.monotonic() + max_wait
        try:
            for ev in self.done.values():
                ev.wait(max(0.0, deadline - time.monotonic()))
        finally:
            sched.shutdown(wait=True)
        for name, ev in self.done.items():
            if not ev.is_set():
                self.echo(f"not run  {name}: not due within {max_wait:.0f} s")
        return self.outcomes

    def run_forever(self) -> None:
        """Run until interrupted."""
        sched = self.scheduler()
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            self.echo("stopping (waiting for running jobs)")
        finally:
            sched.shutdown(wait=True)


def next_runs(
    jobs: list[Job], now: dt.datetime | None = None, count: int = 1
) -> dict[str, list[dt.datetime]]:
    """The next `count` fire times of each job."""
    now = now or dt.datetime.now(dt.UTC)
    out: dict[str, list[dt.datetime]] = {}
    for job in jobs:
        trigger, prev = job.trigger(), None
        times: list[dt.datetime] = []
        t = trigger.get_next_fire_time(None, now)
        while t is not None and len(times) < count:
            times.append(t)
            prev = t
            t = trigger.get_next_fire_time(prev, prev + dt.timedelta(microseconds=1))
        out[job.name] = times
    return out
