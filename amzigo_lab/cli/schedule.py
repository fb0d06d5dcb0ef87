"""`amzigo schedule`: run the jobs declared in `[schedule]` of the home's config.toml."""

from __future__ import annotations

import datetime as dt
import shlex
from typing import Any

import click

from amzigo_lab.cli.common import (
    console,
    handle_errors,
    home_option,
    json_option,
    print_json,
    settings_for,
)


@click.command("schedule")
@click.option("--list", "list_only", is_flag=True, help="Show the jobs and their next runs.")
@click.option(
    "--once",
    is_flag=True,
    help="Run each job exactly once (at once if it missed runs, else at its next fire time), "
    "then exit; the exit code is 1 if any run failed.",
)
@click.option(
    "--max-wait",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(0, 7 * 86400),
    help="With --once: jobs not due within this many seconds are reported and not run.",
)
@home_option
@json_option
@handle_errors
def schedule_cmd(
    list_only: bool, once: bool, max_wait: float, home: str | None, as_json: bool
) -> None:
    """Run scheduled `amzigo` commands (ingest, purge, reports) on cron expressions (UTC).

    Without --once this is the long-lived service (run it in the foreground under systemd,
    see docs/operations.md); Ctrl-C or SIGTERM stops it after the running jobs end. Jobs live
    in <home>/config.toml; every home also has the daily `purge` job (03:00 UTC) unless it
    declares its own or sets `default_purge = false`. Each run is a subprocess with a timeout,
    one run per job at a time (a lock per job); outcomes, with their exit status, go to
    <home>/state/schedule.log and the audit log. Runs missed while the scheduler was down are
    reported and caught up with one run, not one per missed slot.

    Example:

        # <home>/config.toml
        [schedule.jobs.sales-acme]
        cron = "0 6 * * 1"
        command = "report sales --tenant acme-outdoor --days 7"
        timeout = 900

        amzigo schedule --list
        amzigo schedule            # runs until Ctrl-C / SIGTERM
    """
    from amzigo_lab.analysis.schedule import FAILED, Runner, ScheduleState, load_jobs, missed_since
    from amzigo_lab.analysis.schedule import next_runs as compute_next
    from amzigo_lab.cli import main
    from amzigo_lab.config import config_sections
    from amzigo_lab.errors import ConfigError
    from amzigo_lab.home import open_lake

    settings = settings_for(home)
    section = config_sections(settings).get("schedule", {})
    jobs = load_jobs(section, set(main.commands))
    if not jobs:
        raise ConfigError(
            f"no jobs in [schedule] of {settings.home / 'config.toml'}: see `amzigo schedule -h`"
        )
    if list_only:
        now = dt.datetime.now(dt.UTC)
        state = ScheduleState.load(settings.state_dir)
        upcoming = compute_next(jobs, now, count=3)
        rows: list[dict[str, Any]] = [
            {
                "job": j.name,
                "cron": j.cron,
                "command": "amzigo " + shlex.join(j.argv),
                "timeout": j.timeout,
                "next_runs": [t.isoformat() for t in upcoming[j.name]],
                "last_run": state.last.get(j.name),
                "last_status": state.records.get(j.name, {}).get("status"),
                "last_exit_code": state.records.get(j.name, {}).get("exit_code"),
                "missed": missed_since(j, state.last_run(j.name), now),
            }
            for j in jobs
        ]
        if as_json:
            print_json(rows)
            return
        for r in rows:
            nxt = ", ".join(t[:19].replace("T", " ") for t in r["next_runs"])
            console.print(f"{r['job']:<20} {r['cron']:<16} next {nxt} UTC", soft_wrap=True)
            console.print(f"{'':<20} {r['command']} (timeout {r['timeout']} s)", soft_wrap=True)
            if r["last_status"]:
                console.print(
                    f"{'':<20} last {r['last_run']}: {r['last_status']}, exit {r['last_exit_code']}"
                )
            if r["missed"]:
                console.print(f"{'':<20} missed {r['missed']} run(s) since {r['last_run']}")
        return
    with open_lake(settings) as lake:
        sink = lake.audit
        if hasattr(sink, "log"):
            _ = sink.log  # open the audit log on this thread before the workers emit
        runner = Runner(
            jobs,
            settings.home,
            settings.state_dir,
            sink.emit,
            echo=lambda s: console.print(s, soft_wrap=True, markup=False),
        )
        if once:
            outcomes = runner.run_once(max_wait)
            if as_json:
                print_json([o.to_json() for o in outcomes])
            if any(o.status in FAILED for o in outcomes):
                raise SystemExit(1)
            return
        _stop_on_sigterm(runner)
        console.print(f"scheduler running {len(jobs)} job(s); Ctrl-C or SIGTERM stops it")
        runner.run_forever()


def _stop_on_sigterm(runner: Any) -> None:
    """SIGTERM (systemd stop) ends the loop; running jobs finish first."""
    import signal

    def stop(_signum: int, _frame: Any) -> None:
        runner.echo("stopping (waiting for running jobs)")
        runner.stop.set()

    signal.signal(signal.SIGTERM, stop)
