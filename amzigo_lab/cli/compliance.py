"""`amzigo purge`: an operator command (the daily retention job of the service account).

It opens the home in-process (it holds the master key legitimately). When the home's gateway
holds decrypted copies in its hot cache, the purge asks it to empty the cache first
(`home.release_gateway_cache_on_drop`; audited by the gateway). Holds, deletion notices,
certificates and the ROPA are gateway clients: `amzigo_lab.cli.compliance_client`.
"""

from __future__ import annotations

import datetime as dt

import click

from amzigo_lab.cli.common import console, handle_errors, home_option, json_option, print_json
from amzigo_lab.cli.common import settings_for as _settings
from amzigo_lab.cli.compliance_client import DATE


@click.command("purge")
@click.option("--as-of", type=DATE, default=None, help="Purge as of this date (default: today).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@home_option
@json_option
@handle_errors
def purge_cmd(as_of: dt.date | None, dry_run: bool, home: str | None, as_json: bool) -> None:
    """Drop everything past its purge date that no legal hold keeps; sign a certificate.

    Run daily from cron (see docs/compliance.md).

    Example:

        amzigo purge --dry-run
        amzigo purge --as-of 2026-06-01 --json
    """
    from amzigo_lab.compliance.retention import purge
    from amzigo_lab.home import open_lake, release_gateway_cache_on_drop

    with open_lake(_settings(home)) as lake:
        release_gateway_cache_on_drop(lake, "amzigo purge")
        result = purge(lake, as_of, dry_run=dry_run)
        data = result.to_dict(lake)
    if as_json:
        print_json(data)
        if data["plan"]["refused_tampered"]:
            raise SystemExit(1)
        return
    plan = data["plan"]
    verb = "would drop" if dry_run else "dropped"
    for cat, c in sorted(plan["drop_summary"].items()):
        console.print(f"{verb} {c['partitions']:>6} {cat} partition(s), {c['rows']} rows")
    if not plan["drop_summary"]:
        console.print(f"{verb} 0 partitions: nothing is past its purge date as of {plan['as_of']}")
    console.print(f"{verb} {len(plan['outputs_drop'])} derived output(s)")
    for k in plan["kept_under_hold"]:
        console.print(
            f"kept   partition {k['partition_id']} {k['dataset']} {k['tenant']} "
            f"(due {k['purge_date']}) under hold {k['hold']}"
        )
    for k in plan["outputs_kept_under_hold"]:
        console.print(f"kept   output {k['output_id']} under hold {k['hold']}")
    for k in plan["refused_tampered"]:
        console.print(
            f"[red]REFUSED[/] partition {k['partition_id']} {k['dataset']} {k['tenant']} "
            f"ingest {k['ingest_date']}: {k['check']} (edited outside amzigo-lab; run "
            "`amzigo lake verify`, restore the catalog from backup)"
        )
    if not dry_run:
        console.print(f"audit  {data['audit_note']}")
        if data["certificate_id"]:
            console.print(f"certificate {data['certificate_id']} (amzigo certificate show ID)")
        else:
            console.print("nothing was due: no certificate")
    if plan["refused_tampered"]:
        raise SystemExit(1)


COMMANDS = (purge_cmd,)
