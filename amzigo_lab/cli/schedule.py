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
@click.option("--once", is_flag=True, help="Let each job fire once from its cron, then exit.")
@click.option(
    "--max-wait",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(0, 7 * 86400),
    help="With --once: stop waiting for jobs not due within this many seconds.",
)
@home_option
@json_option
@handle_errors
def schedule_cmd(
    list_only: bool, once: bool, max_wait: float, home: str | None, as_json: bool
) -> None:
    """Run scheduled `amzigo` commands (ingest, purge, reports) on cron expressions (UTC).

    Jobs live in <home>/config.toml; each runs as a subprocess with a timeout, one instance
    at a time; outcomes go to <home>/state/schedule.log and the audit log; runs missed while
    the scheduler was down are reported.

    Example:

        # <home>/config.toml
        [schedule.jobs.sales-acme]
        cron = "0 6 * * 1"
        command = "report sales --tenant acme-outdoor --days 7"
        timeout = 900

        amzigo schedule --list
        amzigo schedule            # runs until Ctrl-C
    """
    from amzigo_lab.analysis.schedule import Runner, ScheduleState, load_jobs, missed_since
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
        state = ScheduleState.load(settings.state_dir / "schedule.json")
        upcoming = compute_next(jobs, now, count=3)
        rows: list[dict[str, Any]] = [
            {
                "job": j.name,
                "cron": j.cron,
                "command": "amzigo " + shlex.join(j.argv),
                "timeout": j.timeout,
                "next_runs": [t.isoformat() for t in upcoming[j.name]],
                "last_run": state.last.get(j.name),
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
            echo=lambda s: console.print(s, soft_wrap=True),
        )
        runner.report_missed()
        if once:
            outcomes = runner.run_once(max_wait)
            if as_json:
                print_json([o.to_json() for o in outcomes])
            if len(outcomes) < len(jobs) or any(o.status != "ok" for o in outcomes):
                raise SystemExit(1)
            return
        console.print(f"scheduler running {len(jobs)} job(s); Ctrl-C stops it")
        runner.run_forever()
