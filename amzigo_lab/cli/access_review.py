"""`amzigo access-review`: the quarterly access review as CSV and HTML (a gateway client)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click

from amzigo_lab.cli.auth import act, break_glass_option
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    handle_errors,
    json_option,
    print_json,
    write_private,
)
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import home_path


@click.command("access-review")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default="reports", show_default=True
)
@client_home_option
@break_glass_option
@json_option
@handle_errors
def access_review_cmd(
    out_dir: str, break_glass: str | None, home: str | None, as_json: bool
) -> None:
    """Write the quarterly access review as CSV and HTML (audited; needs access_review).

    Example:

        amzigo access-review --out reports/
    """
    answer = act(
        home_path(home),
        protocol.ACCESS_REVIEW,
        {"today": dt.date.today().isoformat()},
        break_glass,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = (
        write_private(out / os.path.basename(f["name"]), str(f["text"]).encode("utf-8"))
        for f in answer["files"]
    )
    n = int(answer["users"])
    if as_json:
        print_json({"csv": str(csv_path), "html": str(html_path), "users": n})
    else:
        console.print(f"access review of {n} users: {csv_path} and {html_path}")
