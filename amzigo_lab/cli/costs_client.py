"""`amzigo costs import|ls`: product costs of a tenant, through the home's gateway.

Costs are tenant data: the user of $AMZIGO_SESSION needs the policy's sales_analysis access to
the tenant's `product_costs` (an analyst granted the tenant with `amzigo users grant`; a seller
account may list its own tenant's costs but not import), or the service account with
`--break-glass REASON` (audited, alerted). The CLI only reads the file and sends its bytes; the
gateway validates every row (`amzigo_lab.analysis.cost_file`) and writes all rows or none.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from amzigo_lab.cli.auth import act, break_glass_option
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    handle_errors,
    json_option,
    print_json,
)
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import home_path

#: The largest file sent (the gateway enforces the same limit).
MAX_BYTES = 2 * 1024 * 1024


class _Date(click.ParamType):
    name = "DATE"

    def convert(self, value: Any, param: Any, ctx: Any) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date: use YYYY-MM-DD", param, ctx)


@click.group("costs")
def costs_group() -> None:
    """Product costs (cost of goods) per SKU: the sales report's and dashboard's profit."""


@costs_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--tenant", required=True, help="The tenant whose costs these are.")
@click.option(
    "--valid-from",
    type=_Date(),
    default=None,
    help="First day (marketplace-local) for rows whose valid_from cell is empty.",
)
@break_glass_option
@client_home_option
@json_option
@handle_errors
def import_cmd(
    file: str,
    tenant: str,
    valid_from: dt.date | None,
    break_glass: str | None,
    home: str | None,
    as_json: bool,
) -> None:
    """Import a cost file (CSV, UTF-8, header row); all rows or none.

    Columns: sku, unit_cost, currency (required); marketplace (US, UK, DE or empty = every
    marketplace), valid_from (YYYY-MM-DD). History is kept: an import adds rows, and a sale
    uses the latest cost whose valid_from is on or before its day. Importing the same key
    (sku, marketplace, currency, valid_from) again corrects it. XLSX is accepted only where
    the openpyxl package is installed (it is not in this environment's dependencies): save the
    sheet as CSV otherwise.

    Example:

        amzigo costs import costs.csv --tenant acme --valid-from 2026-03-01
    """
    path = Path(file)
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise click.ClickException(f"{path}: {len(data):,} bytes; at most {MAX_BYTES:,}")
    answer = act(
        home_path(home),
        protocol.COSTS_IMPORT,
        {"tenant": tenant, "name": path.name, "data_b64": base64.b64encode(data).decode(),
         "valid_from": valid_from.isoformat() if valid_from else None},
        break_glass,
    )  # fmt: skip
    if as_json:
        print_json(answer)
    elif answer["already_imported"]:
        console.print(
            f"{path.name} was already imported for {answer['tenant']} (sha256 "
            f"{answer['sha256'][:16]}): nothing written"
        )
    else:
        console.print(
            f"imported {answer['rows']} cost rows ({answer['skus']} SKUs) for "
            f"{answer['tenant']} from {path.name} (sha256 {answer['sha256'][:16]})"
        )


@costs_group.command("ls")
@click.option("--tenant", required=True, help="The tenant whose costs to list.")
@break_glass_option
@client_home_option
@json_option
@handle_errors
def ls_cmd(tenant: str, break_glass: str | None, home: str | None, as_json: bool) -> None:
    """List a tenant's product costs (every valid_from; `*` marks the cost in effect today).

    Example:

        amzigo costs ls --tenant acme --json
    """
    answer = act(home_path(home), protocol.COSTS_LIST, {"tenant": tenant}, break_glass)
    rows: list[dict[str, Any]] = answer["costs"]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(
            f"no product costs for {answer['tenant']}: amzigo costs import FILE --tenant "
            f"{answer['tenant']}"
        )
        return
    table = Table("", "sku", "marketplace", "currency", "unit cost", "valid from", "imported",
                  "file sha256")  # fmt: skip
    for r in rows:
        table.add_row(
            "*" if r["in_effect"] else "", r["sku"], r["marketplace"], r["currency"],
            r["unit_cost"], r["valid_from"], r["imported_at"][:19], r["source_sha256"][:12],
        )  # fmt: skip
    console.print(table)
    console.print(f"* = in effect on {answer['today']}")


COMMANDS = (costs_group,)
