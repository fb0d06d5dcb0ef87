"""`amzigo demo`: the main job on the embedded default, end to end (logic in amzigo_lab.demo)."""

from __future__ import annotations

import dataclasses
import shlex

import click

from amzigo_lab.cli.common import (
    MAX_LOOKBACK_DAYS,
    PORT,
    SEED,
    console,
    handle_errors,
    home_option,
    settings_for,
)
from amzigo_lab.cli.ingest import print_summary
from amzigo_lab.cli.lake_client import _summary

DEFAULT_PORT = 8866


@click.command("demo")
@click.option(
    "--days",
    default=60,
    show_default=True,
    type=click.IntRange(1, MAX_LOOKBACK_DAYS),
    help="Days of history to ingest (reports compare the last 30 days with the 30 before).",
)
@click.option(
    "--pii-weeks",
    default=5,
    show_default=True,
    type=click.IntRange(0, 52),
    help="Weekly PII ingestions before today for the PII demo tenant.",
)
@click.option("--no-serve", is_flag=True, help="Run the whole job and return (no server).")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=PORT,
    help="Dashboard port when serving.",
)
@click.option("--seed", type=SEED, default=None, help="Sandbox world seed (default: the home's).")
@home_option
@handle_errors
def demo_cmd(
    days: int, pii_weeks: int, no_serve: bool, port: int, seed: int | None, home: str | None
) -> None:
    """Run the main job on the local SP-API sandbox, then serve the seller dashboards.

    Initialises the home as a sandbox home first (as `amzigo init --sandbox`; refused on a
    home connected to Amazon).

    Ingests every sandbox tenant (and weekly buyer-PII snapshots for one tenant), purges what is
    past its deadline with a verified destruction certificate, writes the sales, reviews,
    inventory and account-health reports, creates demo users, and serves the dashboards until
    Ctrl-C (--no-serve: returns instead).

    Example:

        amzigo demo --no-serve --home /tmp/amzigo-demo
    """
    from amzigo_lab.demo import PII_TENANT, run_demo

    settings = settings_for(home)
    if seed is not None:
        settings = dataclasses.replace(settings, sandbox_seed=seed)
    from amzigo_lab.cli.progress import DemoProgress

    view = DemoProgress(console)
    with view.shown():
        result = run_demo(
            settings, days=days, pii_weeks=pii_weeks, say=console.print,
            progress=view.ingest, on_report=view.report,
        )  # fmt: skip
    print_summary(result.ingest_reports[-1])
    from amzigo_lab.home import open_lake

    with open_lake(settings) as lake:
        parts = [
            {"dataset": p.dataset, "tenant": p.tenant, "ingest_date": p.ingest_date,
             "purge_date": p.purge_date, "rows": p.row_count, "bytes": p.bytes}
            for p in lake.catalog.partitions()
        ]  # fmt: skip
        rows = _summary(parts)
    for r in rows:
        console.print(
            f"{r['dataset']:<24} {r['tenant']:<14} {r['partitions']:>4} partitions "
            f"{r['rows']:>7} rows  {r['first_ingest']} .. {r['last_ingest']}  "
            f"first purge {r['next_purge']}"
        )
    purge, cert = result.purge, result.certificate
    console.print(
        f"\npurge as of {result.today}: {purge.get('partitions_dropped', 0)} partitions, "
        f"{purge.get('rows_dropped', 0)} rows destroyed (buyer PII of {PII_TENANT} past "
        "30 days after delivery); analytic data kept"
    )
    if purge.get("certificate_id"):
        status = "[green]verified[/]" if cert.get("ok") else f"[red]NOT verified[/] {cert}"
        console.print(f"certificate {purge['certificate_id']}: {status}")
        console.print(f"            amzigo certificate show {purge['certificate_id']}")
    console.print(f"\nreports  {len(result.reports)} HTML reports under {settings.reports_dir}/")
    console.print(f"home     {settings.home}\nlake     {settings.lake_dir} (encrypted Parquet)")
    from amzigo_lab.hardening import read_marker_quiet

    if read_marker_quiet(settings.home) is None:
        console.print("single-user demo home (not hardened): see docs/operations.md")
    console.print(f"users    {', '.join(u for u, _, _ in result.users)}")
    console.print(f"         one-time credentials: {result.credentials} (mode 0600)")
    url = f"https://localhost:{port}/voila/render/seller.ipynb"
    if no_serve:  # nothing serves the URL: say how to start the server that will
        start = f"amzigo dashboard --home {shlex.quote(str(settings.home))}"
        start += f" --port {port}" if port != DEFAULT_PORT else ""
        console.print(f"dashboard not started (--no-serve): {start}", soft_wrap=True)
        console.print(f"          then open {url}", soft_wrap=True)
    else:
        console.print(f"dashboard {url}")
    if not result.ok:
        raise SystemExit(1)
    if no_serve:
        from amzigo_lab.config import resolve_home

        # the next commands find this home by $AMZIGO_HOME unless it is the default one
        here = (
            ""
            if settings.home == resolve_home(None, env={})
            else (f"export AMZIGO_HOME={shlex.quote(str(settings.home))}; ")
        )
        console.print(
            f'next     {here}eval "$(amzigo login admin-demo)"; amzigo lake ls',
            soft_wrap=True,
        )
        return
    from amzigo_lab.serve.app import ServeOptions, run_dashboard

    console.print("serving the dashboards; Ctrl-C stops")
    run_dashboard(settings, ServeOptions("127.0.0.1", port, None, None, False))
