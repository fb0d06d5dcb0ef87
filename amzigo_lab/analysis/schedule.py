"""Scheduled jobs: `amzigo` commands run on cron expressions from `<home>/config.toml`.

    [schedule]
    timeout = 1800                      # default seconds per job
    # default_purge = false             # opt out of the built-in daily purge job
    [schedule.jobs.ingest]
    cron = "15 * * * *"
    command = "ingest"
    [schedule.jobs.sales-acme]
    cron = "0 6 * * 1"                  # Mondays 06:00 UTC (crontab semantics: 0/7 = Sunday)
    command = "report sales --tenant acme-outdoor --days 7 --pdf"
    timeout = 900

Every home has a `purge` job (`amzigo purge`, daily at 03:00 UTC) unless the config declares its
own `[schedule.jobs.purge]` or sets `default_purge = false`.

Cron expressions have 5 fields (crontab), or 6 with seconds first. All times are UTC. Each run is
a subprocess of the `amzigo` CLI with a timeout. Per job:

- state (last fire time, last status and exit code) is one small JSON file,
  `<home>/state/schedule/<job>.json`, replaced atomically through a uniquely named temporary
  file, so jobs firing in the same second never share a file;
- a lock file (`<job>.lock`, `flock`) makes sure a job never runs twice at once, even across
  processes (a service and a `schedule --once`); a run due while the previous one still holds
  the lock is skipped and recorded as missed;
- every outcome (ok, failed, timeout, error, skipped) goes to `<home>/state/schedule.log`
  (JSON lines, with the exit status) and the audit log: `schedule.job` (ok),
  `schedule.job_failed` (failed, timeout, could not start; the reason names the status and
  exit code) or `schedule.missed` (skipped, missed while down, interrupted); the
  `scheduled_job_failed` alert rule (`amzigo alerts`) raises one alert per failed or missed run.

Catch-up policy: runs missed while the scheduler was down are counted and reported once
(`schedule.missed`), and the job runs once at start-up, never once per missed slot.

APScheduler 3's `CronTrigger.from_crontab` numbers weekdays from Monday = 0, unlike crontab;
numeric weekdays are translated to names here so "1" means Monday as in crontab. Only its
trigger arithmetic is used: the loop is ours, with an injectable clock and sleep for tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amzigo_lab.errors import ConfigError
from amzigo_lab.incident_pauses import job_paused

SERVICE_ACTOR = "svc:scheduler"
DEFAULT_TIMEOUT = 1800
#: The built-in daily retention purge (every home; see `load_jobs`).
DEFAULT_PURGE_CRON = "0 3 * * *"
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
    status: str  # ok | failed | timeout | error (did not start) | skipped (still running)
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
    if "purge" not in tables and section.get("default_purge", True) is not False:
        tables["purge"] = {"cron": DEFAULT_PURGE_CRON, "command": "purge"}
    jobs = []
    for name, spec in sorted(tables.items()):
        where = f"schedule job {name!r} ([schedule.jobs.{name}] in config.toml)"
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
    """Run the job's `amzigo` command in a subprocess with the job's timeout (not at all while
    an open incident pauses it: status `paused`)."""
    why = job_paused(home, job.argv)
    if why is not None:
        return Outcome(job.name, dt.datetime.now(dt.UTC), 0.0, "paused", None, why)
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


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` through a uniquely named temporary file in its folder."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class ScheduleState:
    """Per-job state in `<state>/schedule/<job>.json` (last fire time, status, exit code).

    `<state>/schedule.json` (one shared file, written by older versions) is read as a fallback
    for jobs that have no file of their own yet."""

    folder: Path
    last: dict[str, str] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> ScheduleState:
        """Read every job's state (empty if absent; an unreadable file counts as absent)."""
        state = cls(state_dir / "schedule")
        try:
            legacy = json.loads((state_dir / "schedule.json").read_text(encoding="utf-8"))
            state.last.update({str(k): str(v) for k, v in legacy.items()})
        except (OSError, ValueError, AttributeError):
            pass
        if state.folder.is_dir():
            for path in sorted(state.folder.glob("*.json")):
                try:
                    rec = json.loads(path.read_text(encoding="utf-8"))
                    state.records[path.stem] = rec
                    state.last[path.stem] = str(rec["last_fire"])
                except (OSError, ValueError, KeyError, TypeError):
                    continue
        return state

    def mark(self, job: str, when: dt.datetime, **fields: Any) -> None:
        """Record a fire time (and status fields) of one job, atomically, in its own file."""
        rec = {**self.records.get(job, {}), "last_fire": when.isoformat(), **fields}
        self.records[job] = rec
        self.last[job] = rec["last_fire"]
        _write_atomic(self.folder / f"{job}.json", json.dumps(rec, indent=1, sort_keys=True))

    def last_run(self, job: str) -> dt.datetime | None:
        """The last recorded fire time of a job."""
        v = self.last.get(job)
        return dt.datetime.fromisoformat(v) if v else None


class JobLock:
    """An exclusive, non-blocking `flock` on `<state>/schedule/<job>.lock` (across processes)."""

    def __init__(self, folder: Path, job: str) -> None:
        self.path = folder / f"{job}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False if another run of the job holds it."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Release the lock (closing the descriptor drops it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def next_fire(job: Job, after: dt.datetime) -> dt.datetime | None:
    """The first fire time of `job` strictly after `after`."""
    t = job.trigger().get_next_fire_time(None, after + dt.timedelta(microseconds=1))
    return t if t is None else t.astimezone(dt.UTC)


def missed_since(job: Job, last: dt.datetime | None, now: dt.datetime, cap: int = 1000) -> int:
    """Fire times of `job` strictly between its last run and `now` (capped)."""
    if last is None:
        return 0
    n, t = 0, next_fire(job, last)
    while t is not None and t < now and n < cap:
        n += 1
        t = next_fire(job, t)
    return n


FAILED = ("failed", "timeout", "error", "skipped")


class Runner:
    """Runs jobs on their cron triggers: one thread per run, one run per job at a time.

    `clock` and `sleep` are injectable (tests advance a fake clock instead of waiting)."""

    def __init__(
        self,
        jobs: list[Job],
        home: Path,
        state_dir: Path,
        emit: Callable[..., Any],
        echo: Callable[[str], None] = print,
        run: Callable[[Job, Path], Outcome] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.jobs = jobs
        self.home = home
        self.state_dir = state_dir
        self.state = ScheduleState.load(state_dir)
        self.log_path = state_dir / "schedule.log"
        self._emit = emit
        self.echo = echo
        self._run = run or run_job
        self.clock = clock or _utcnow
        self.stop = threading.Event()
        self._sleep = sleep if sleep is not None else self.stop.wait
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.outcomes: list[Outcome] = []

    # -- recording ---------------------------------------------------------------------------
    def emit(self, action: str, **fields: Any) -> None:
        """Audit (serialised: the sink is shared by the worker threads)."""
        with self._lock:
            self._emit(action, actor=SERVICE_ACTOR, **fields)

    def _record(self, out: Outcome) -> None:
        """schedule.log, the job's state file and the audit log, for one outcome."""
        with self._lock:
            self.outcomes.append(out)
            self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(out.to_json()) + "\n")
        self.echo(f"{out.status:<8} {out.job}: {out.seconds:.1f} s, exit {out.exit_code}")
        tail = f"; {out.stderr_tail}" if out.stderr_tail and out.status != "ok" else ""
        action = {"ok": "schedule.job", "skipped": "schedule.missed", "paused": "schedule.paused"}
        self.emit(
            action.get(out.status, "schedule.job_failed"),
            resource=f"job:{out.job}",
            decision="allow" if out.status == "ok" else "info",
            reason=f"{out.status}; exit {out.exit_code}; {out.seconds:.1f} s{tail}"[:250],
            **({"row_count": 1} if out.status == "skipped" else {}),
        )

    def report_missed(self, now: dt.datetime | None = None) -> dict[str, int]:
        """Count and report runs missed since each job's last recorded run (and runs a crash
        interrupted); these jobs are due for one catch-up run."""
        now = now or self.clock()
        missed = {}
        for job in self.jobs:
            rec = self.state.records.get(job.name, {})
            if rec.get("status") == "running" and self._lock_free(job):
                self.echo(f"missed   {job.name}: the run started {rec['last_fire']} never ended")
                self.emit(
                    "schedule.missed",
                    resource=f"job:{job.name}",
                    decision="info",
                    reason="a run was interrupted (scheduler stopped or crashed during it)",
                    row_count=1,
                )
            n = missed_since(job, self.state.last_run(job.name), now)
            if n:
                missed[job.name] = n
                self.echo(
                    f"missed   {job.name}: {n} run(s) while the scheduler was not running; "
                    "catching up with one run"
                )
                self.emit(
                    "schedule.missed",
                    resource=f"job:{job.name}",
                    decision="info",
                    reason=f"{n} runs missed while the scheduler was down; one catch-up run",
                    row_count=n,
                )
        return missed

    def _lock_free(self, job: Job) -> bool:
        lock = JobLock(self.state.folder, job.name)
        if lock.acquire():
            lock.release()
            return True
        return False

    # -- running -----------------------------------------------------------------------------
    def execute(self, job: Job, fire: dt.datetime | None = None) -> Outcome:
        """Run one job now (unless a run of it holds the lock) and record the outcome."""
        fire = fire or self.clock()
        lock = JobLock(self.state.folder, job.name)
        if not lock.acquire():
            out = Outcome(job.name, fire, 0.0, "skipped", None, "previous run still going")
            self.echo(f"missed   {job.name}: run skipped (previous run still going)")
            self._record(out)
            return out
        try:
            self.state.mark(job.name, fire, status="running", exit_code=None)
            self.echo(f"start    {job.name}: amzigo {shlex.join(job.argv)}")
            try:
                out = self._run(job, self.home)
            except Exception as exc:  # a run that could not even start is a failed run
                out = Outcome(job.name, fire, 0.0, "error", None, f"{type(exc).__name__}: {exc}")
            self.state.mark(job.name, fire, status=out.status, exit_code=out.exit_code)
            self._record(out)
            return out
        finally:
            lock.release()

    def _start(self, job: Job, fire: dt.datetime) -> threading.Thread:
        thread = threading.Thread(
            target=self.execute, args=(job, fire), name=f"job-{job.name}", daemon=True
        )
        thread.start()
        return thread

    def _due_at_start(self, now: dt.datetime) -> dict[str, dt.datetime]:
        """When each job is due next: now for a catch-up run, else its next fire time."""
        missed = self.report_missed(now)
        due: dict[str, dt.datetime] = {}
        for job in self.jobs:
            t = now if job.name in missed else next_fire(job, now - dt.timedelta(microseconds=1))
            if t is not None:
                due[job.name] = t
        return due

    def _wait_until(self, when: dt.datetime, cap: float | None = None) -> None:
        delay = (when - self.clock()).total_seconds()
        if cap is not None:
            delay = min(delay, cap)
        if delay > 0:
            self._sleep(delay)

    def run_once(self, max_wait: float) -> list[Outcome]:
        """Run each job exactly once: at once if it missed runs (catch-up), else at its next
        fire time; jobs not due within `max_wait` seconds are reported and not run."""
        by_name = {j.name: j for j in self.jobs}
        now = self.clock()
        deadline = now + dt.timedelta(seconds=max_wait)
        pending = self._due_at_start(now)
        for name in [n for n, t in pending.items() if t > deadline]:
            self.echo(f"not run  {name}: not due within {max_wait:.0f} s")
            del pending[name]
        while pending and not self.stop.is_set():
            first = min(pending.values())
            self._wait_until(first)
            batch = sorted(n for n, t in pending.items() if t <= max(first, self.clock()))
            threads = [self._start(by_name[n], pending.pop(n)) for n in batch]
            for thread in threads:
                thread.join()
        return self.outcomes

    def run_forever(self, tick: float = 30.0) -> None:
        """Run until `stop` is set (or Ctrl-C): the long-lived service mode."""
        by_name = {j.name: j for j in self.jobs}
        due = self._due_at_start(self.clock())
        try:
            while not self.stop.is_set():
                now = self.clock()
                for name in sorted(n for n, t in due.items() if t <= now):
                    job = by_name[name]
                    # a run still going holds the job's lock: this one is recorded as missed
                    self._threads = [t for t in self._threads if t.is_alive()]
                    self._threads.append(self._start(job, due[name]))
                    nxt = next_fire(job, now)
                    if nxt is None:
                        del due[name]
                    else:
                        due[name] = nxt
                if not due:
                    break
                self._wait_until(min(due.values()), cap=tick)
        except KeyboardInterrupt:
            self.echo("stopping (waiting for running jobs)")
        finally:
            for thread in self._threads:
                thread.join()


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
