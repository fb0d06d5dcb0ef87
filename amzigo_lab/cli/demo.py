"""`amzigo demo`: the main job on the embedded default, end to end."""

from __future__ import annotations

import datetime as dt

import click
from rich.progress import Progress

from amzigo_lab.cli.common import console, handle_errors, home_option, settings_for
from amzigo_lab.cli.lake import _summary
from amzigo_lab.home import init_home
from amzigo_lab.synthetic import items_for_orders, orders_for_day

DEMO_TENANTS = ("acme-outdoor", "bluebird-home")


@click.command("demo")
@click.option("--days", default=90, show_default=True, help="Days of history to write.")
@click.option("--no-serve", is_flag=True, help="Run the whole job and return (no server).")
@click.option("--seed", default=7, show_default=True, help="Seed of the synthetic data.")
@home_option
@handle_errors
def demo_cmd(days: int, no_serve: bool, seed: int, home: str | None) -> None:
    """Initialise a home, write a deterministic data set for two tenants, summarise it.

    Example:

        amzigo demo --no-serve --home /tmp/amzigo-demo
    """
    settings = settings_for(home)
    today = dt.datetime.now(dt.UTC).date()
    with init_home(settings) as lake, Progress(console=console, transient=True) as progress:
        task = progress.add_task("writing encrypted partitions", total=days * len(DEMO_TENANTS))
        for tenant in DEMO_TENANTS:
            for offset in range(days, 0, -1):
                day = today - dt.timedelta(days=offset)
                orders = orders_for_day(seed, tenant, day)
                batch = f"demo-{seed}-{day.isoformat()}"
                lake.write("orders", tenant, day, orders, batch)
                lake.write("order_items", tenant, day, items_for_orders(seed, orders), batch)
                progress.advance(task)
        rows = _summary(lake.catalog.partitions())
    for r in rows:
        console.print(
            f"{r['dataset']:<12} {r['tenant']:<14} {r['partitions']:>4} partitions "
            f"{r['rows']:>7} rows  {r['first_ingest']} .. {r['last_ingest']}  "
            f"first purge {r['next_purge']}"
        )
    console.print(f"\nhome     {settings.home}\nlake     {settings.lake_dir} (encrypted Parquet)")
    console.print(f"catalog  {settings.catalog_path}\nkey      {settings.master_key_file}")
    console.print("next     amzigo lake ls | amzigo lake verify | amzigo doctor")
    if not no_serve:
        console.print("(serving dashboards is not built yet; the job is complete)")
