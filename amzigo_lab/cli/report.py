"""`amzigo report`: generate a sales, reviews, inventory or account-health report for one
tenant."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from amzigo_lab.cli.common import (
    MAX_LOOKBACK_DAYS,
    console,
    handle_errors,
    home_option,
    json_option,
    print_json,
    settings_for,
)


class _ReportKind(click.Choice):
    """The report's name; `account-health` is accepted for `account_health`."""

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        if isinstance(value, str):
            value = value.strip().replace("-", "_")
        return str(super().convert(value, param, ctx))


@click.command("report")
@click.argument("report", type=_ReportKind(["sales", "reviews", "inventory", "account_health"]))
@click.option("--tenant", required=True, help="The tenant (seller) the report is about.")
@click.option("--start", default=None, help="First day, YYYY-MM-DD (default: see --days).")
@click.option(
    "--end",
    default=None,
    help="Last day, YYYY-MM-DD (inventory: the as-of date); alone: the --days days ending there.",
)
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(1, MAX_LOOKBACK_DAYS),
    help="Without --start: the last N full days (ending at --end if given).",
)
@click.option("--marketplace", default="", help="US, UK or DE (default: all, per currency).")
@click.option(
    "--comparison",
    default="previous_period",
    show_default=True,
    help="Sales: previous_period, previous_year, none, or START..END.",
)
@click.option(
    "--costs",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Sales: CSV sku,currency,unit_cost replacing the tenant's product costs (amzigo "
    "costs import) for this run only.",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="Where the sales report computes: duckdb in the report kernel, or spark (local[2], "
    "extra amzigo-lab[spark]; keys unwrapped per job by the gateway).",
)
@click.option("--pdf", is_flag=True, help="Also print a PDF with Debian's chromium.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder (default: <home>/reports, or reports_dir in config).",
)
@click.option(
    "--timeout",
    default=600,
    show_default=True,
    type=click.IntRange(1, 86400),
    help="Seconds allowed per notebook cell.",
)
@home_option
@json_option
@handle_errors
def report_cmd(
    report: str,
    tenant: str,
    start: str | None,
    end: str | None,
    days: int,
    marketplace: str,
    comparison: str,
    costs: str | None,
    engine: str,
    pdf: bool,
    out: str | None,
    timeout: int,
    home: str | None,
    as_json: bool,
) -> None:
    """Write a sales, reviews, inventory or account-health report (HTML; PDF with --pdf).

    Runs the packaged report notebook (papermill) with its code hidden. Files go to
    <out>/<tenant>/<report>/<start>_<end>.{ipynb,html[,pdf]}. The run happens under the
    reports service identity with the report's purpose and is audited. Every argument (tenant,
    marketplace, comparison, cost file, bounds) is checked before the notebook runs, and a
    failed run leaves no file. --json prints the paths, period, as-of date and the row
    counts of each section.

    Example:

        amzigo report sales --tenant acme-outdoor --start 2026-10-01 --end 2026-10-31 --pdf
        amzigo report sales --tenant acme-outdoor --days 90 --engine spark
        amzigo report inventory --tenant acme-outdoor --days 30 --out /srv/reports
    """
    from amzigo_lab.analysis.generate import generate
    from amzigo_lab.analysis.period import Period
    from amzigo_lab.analysis.source import ReportError
    from amzigo_lab.home import open_lake

    settings = settings_for(home)
    given = click.get_current_context().get_parameter_source("comparison")
    if report != "sales" and given is click.core.ParameterSource.COMMANDLINE:
        raise ReportError(  # never silently ignored, like --costs and --engine
            "--comparison applies to the sales report only (the reviews report compares each "
            "month with the one before; inventory and account health compare nothing)"
        )
    try:
        if start is not None and end is None:
            raise ReportError("--start needs --end (or give --end alone: the --days days to it)")
        if start is None and end is not None:  # the N days ending at --end
            last = Period.parse(end, end).end
            period = Period(last - dt.timedelta(days=days - 1), last)
        else:
            period = Period.parse(start, end) if start and end else Period.last_days(days)
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    from amzigo_lab.cli.progress import busy

    running = f"running the {report} notebook for {tenant} ({period.label()})"
    with open_lake(settings) as lake, busy(console, running):
        result = generate(
            settings,
            report,
            tenant,
            period,
            out_dir=Path(out) if out else None,
            marketplace=marketplace,
            comparison=comparison,
            costs_file=costs or "",
            pdf=pdf,
            timeout=timeout,
            audit=lake.audit,
            engine=engine,
        )
    if as_json:
        print_json(result.summary())
        return
    for path in result.paths():
        console.print(str(path), soft_wrap=True)
