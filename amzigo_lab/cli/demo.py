"""`amzigo demo`: the main job on the embedded default, end to end."""

from __future__ import annotations

import dataclasses

import click

from amzigo_lab.cli.common import console, handle_errors, home_option, settings_for
from amzigo_lab.cli.ingest import print_summary
from amzigo_lab.cli.lake import _summary
from amzigo_lab.home import init_home
from amzigo_lab.source import embedded_sandbox, ingest


@click.command("demo")
@click.option("--days", default=30, show_default=True, help="Days of history to ingest.")
@click.option("--no-serve", is_flag=True, help="Run the whole job and return (no server).")
@click.option("--seed", type=int, default=None, help="Sandbox world seed (default: the home's).")
@home_option
@handle_errors
def demo_cmd(days: int, no_serve: bool, seed: int | None, home: str | None) -> None:
    """Start the local SP-API sandbox, ingest every tenant into a home, summarise what landed.

    Example:

        amzigo demo --no-serve --home /tmp/amzigo-demo
    """
    settings = settings_for(home)
    if seed is not None:
        settings = dataclasses.replace(settings, sandbox_seed=seed)
    with init_home(settings) as lake, embedded_sandbox(settings) as server:
        console.print(f"sandbox  {server.endpoint} (seed {settings.sandbox_seed}, today "
                      f"{server.world.today})")  # fmt: skip
        with console.status("ingesting every tenant from the sandbox ..."):
            report = ingest(lake, settings, server=server, backfill_days=days)
        print_summary(report)
        rows = _summary(lake.catalog.partitions())
    for r in rows:
        console.print(
            f"{r['dataset']:<24} {r['tenant']:<14} {r['partitions']:>4} partitions "
            f"{r['rows']:>7} rows  {r['first_ingest']} .. {r['last_ingest']}  "
            f"first purge {r['next_purge']}"
        )
    console.print(f"\nhome     {settings.home}\nlake     {settings.lake_dir} (encrypted Parquet)")
    console.print(f"catalog  {settings.catalog_path}\nkey      {settings.master_key_file}")
    console.print("next     amzigo lake ls | amzigo sync status | amzigo ingest | amzigo doctor")
    if not no_serve:
        console.print("(serving dashboards is not built yet; the job is complete)")
    if not report.ok:
        raise SystemExit(1)
