"""The README's example notebook (notebooks/explore.ipynb) runs headless under
`jupyter nbconvert --execute` from any directory, against a real home through the gateway, as
an analyst who sees only the granted tenant. The packaged copy the lab opens is the same. Its
daily orders count each marketplace's local day, as the sales report does."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import ibis
import nbformat
import polars as pl
import pyotp
import pytest

import amzigo_lab
from amzigo_lab.analysis.local_days import local_day, local_day_polars
from amzigo_lab.analysis.money import BY_CODE, MARKETPLACES
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.sales import SalesScope, build_sales_report
from amzigo_lab.config import load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.gateway.sources import LakeTableSource
from amzigo_lab.governance.context import Governance
from amzigo_lab.home import init_home
from tests.analysis.data import (
    ACME,
    END,
    OTHER,
    OTHER_MARKERS,
    PII_MARKERS,
    START,
    _item,
    _order,
    populate,
    table,
)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
PASSWORD = "correct horse battery staple 42"
#: The README's headless command (the kernel's connection encrypted: no plain-TCP warning).
NBCONVERT = ["jupyter", "nbconvert", "--KernelManager.transport_encryption=auto"]
TCP_WARNING = "running over TCP without encryption"

US, DE = BY_CODE["US"], BY_CODE["DE"]
#: Orders near midnight UTC whose local day is another date: 19:30 on 3 March in Los Angeles,
#: 00:30 on 5 March in Berlin (a UTC day count puts them on 4 March).
NEAR_MIDNIGHT = {
    "orders": [
        {**_order("N1", "2026-03-04"), "purchase_date": dt.datetime(2026, 3, 4, 3, 30, tzinfo=dt.UTC)},
        {
            **_order("N2", "2026-03-04", mp=DE.marketplace_id, cur="EUR"),
            "purchase_date": dt.datetime(2026, 3, 4, 23, 30, tzinfo=dt.UTC),
            "sales_channel": DE.sales_channel,
        },
    ],
    "order_items": [
        {**_item("N1", 1, "2026-03-04", "SKU-RED", "B0RED", 2, "40.00"),
         "purchase_date": dt.datetime(2026, 3, 4, 3, 30, tzinfo=dt.UTC)},
        {**_item("N2", 1, "2026-03-04", "SKU-RED", "B0RED", 1, "22.00",
                 mp=DE.marketplace_id, cur="EUR"),
         "purchase_date": dt.datetime(2026, 3, 4, 23, 30, tzinfo=dt.UTC)},
    ],
}  # fmt: skip


@dataclass(frozen=True)
class Run:
    nb: nbformat.NotebookNode
    stderr: str
    elsewhere: Path
    home: Path
    token: str  # ana's session (granted ACME only)
    #: the sales report's daily (orders, units) per (marketplace id, local day) of the period
    report: dict[tuple[str, dt.date], tuple[int, int]]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The fixtures (plus two near-midnight orders) in a real home, the sales report's daily
    figures from it, and the notebook executed once by the README's command as an analyst
    granted ACME only."""
    tmp_path = tmp_path_factory.mktemp("explore")
    settings = load_settings(tmp_path / "home", env={})
    lake = init_home(settings, audit=MemorySink())
    try:
        populate(lake)
        for i, (name, rows) in enumerate(NEAR_MIDNIGHT.items()):
            lake.write(name, ACME, dt.date(2026, 3, 8), table(name, rows), f"near-midnight-{i}")
        report = report_daily(LakeTableSource(lake, ACME))
    finally:
        lake.close()
    with Governance.open(settings) as gov:
        enrol = gov.identity.add_user("ana", ["analyst"], None, password=PASSWORD)
        secret = urllib.parse.parse_qs(urllib.parse.urlparse(enrol.provisioning_uri).query)
        gov.grants.grant("ana", ACME, actor="test")
        token = gov.identity.authenticate("ana", PASSWORD, pyotp.TOTP(secret["secret"][0]).now())
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    out = tmp_path / "executed.ipynb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMZIGO_") and k != "PYTHONPATH"}
    env.update(
        AMZIGO_HOME=str(settings.home),
        AMZIGO_SESSION=token.token,
        PYTHONPATH=str(REPO),  # the kernel imports this checkout's amzigo_lab
    )
    cmd = [
        sys.executable, "-m", *NBCONVERT, "--to", "notebook", "--execute", str(NOTEBOOK),
        "--output", str(out), "--ExecutePreprocessor.timeout=180",
    ]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=400, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    nb = nbformat.read(str(out), as_version=4)
    return Run(nb, done.stderr, elsewhere, settings.home, token.token, report)


def report_daily(source: LakeTableSource) -> dict[tuple[str, dt.date], tuple[int, int]]:
    """The sales report's daily orders and units, per marketplace (its own scope each)."""
    figures = {}
    for m in MARKETPLACES:
        report = build_sales_report(source, SalesScope(Period(START, END), marketplace=m))
        for row in report.daily.iter_rows(named=True):
            figures[(m.marketplace_id, row["day"])] = (row["orders"], row["units"])
    return figures


def notebook_daily(nb: nbformat.NotebookNode) -> dict[tuple[str, dt.date], tuple[int, int]]:
    """The rows of the executed daily-orders cell (tenant, marketplace, day, orders, units),
    read from the polars frame's text output."""
    [cell] = [c for c in nb.cells if "daily-orders" in c.metadata.get("tags", [])]
    [text] = [o["data"]["text/plain"] for o in cell.outputs if "text/plain" in o.get("data", {})]
    rows = {}
    for line in text.splitlines():
        cells = [part.strip() for part in line.strip().strip("│").split("┆")]
        if len(cells) == 5 and cells[0] == ACME:
            key = (cells[1], dt.date.fromisoformat(cells[2]))
            assert key not in rows, key
            rows[key] = (int(cells[3]), int(cells[4]))
    return rows


def test_readme_names_the_notebook_and_the_lab_copy_is_the_same() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "notebooks/explore.ipynb" in readme
    assert NBCONVERT[-1] in readme  # the command the notebook tests run
    ours = nbformat.read(str(NOTEBOOK), as_version=4)
    packaged = nbformat.read(str(REPO / "amzigo_lab" / "notebooks" / "explore.ipynb"), 4)
    assert [c.source for c in ours.cells] == [c.source for c in packaged.cells]
    assert not [c for c in ours.cells if c.cell_type == "code" and c.get("outputs")]
    text = "\n".join(c.source for c in ours.cells if c.cell_type == "markdown")
    for m in MARKETPLACES:  # the notebook states the reports' day rule
        assert f"{m.code} {m.timezone}" in text, m.code
    assert NBCONVERT[-1] in text


def test_explore_notebook_executes_from_any_directory(run: Run) -> None:
    outputs = [o for c in run.nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(json.dumps(o.get("data", {})) + o.get("text", "") for o in outputs)
    assert "order_items" in text and "SKU-RED" in text and ACME in text  # datasets, queries
    for marker in (*OTHER_MARKERS, *PII_MARKERS, OTHER):  # only the granted tenant, no PII
        assert marker not in text, marker
    assert not list(run.elsewhere.iterdir())  # nothing written where it ran
    assert TCP_WARNING not in run.stderr  # the kernel's connection is encrypted


def test_daily_orders_equal_the_sales_reports_on_the_local_day(run: Run) -> None:
    shown = notebook_daily(run.nb)
    in_period = {k: v for k, v in shown.items() if START <= k[1] <= END}
    sold = {k: v for k, v in run.report.items() if v != (0, 0)}
    assert in_period == sold
    # the near-midnight orders are on their local days (A4 and N1 in the US on 3 March, N2 in
    # Germany on 5 March), not on the UTC day 4 March; canceled A3 is left out
    assert shown[(US.marketplace_id, dt.date(2026, 3, 3))] == (2, 5)
    assert shown[(DE.marketplace_id, dt.date(2026, 3, 5))] == (1, 1)
    assert not [k for k in shown if k[1] == dt.date(2026, 3, 4)]


def test_the_ibis_and_polars_forms_the_notebook_names_give_the_same_days(run: Run) -> None:
    """`local_day` (ibis, compiled here and run by the gateway) and `local_day_polars` over the
    analyst's governed session give the sales report's daily orders too."""
    with amzigo_lab.connect("sales_analysis", home=run.home, token=run.token) as wb:
        items, orders = wb.table("order_items"), wb.table("orders")
        canceled = orders.filter(orders.order_status.lower() == "canceled")
        lines = items.anti_join(
            canceled.select("tenant", "amazon_order_id"), ["tenant", "amazon_order_id"]
        )
        lines = lines.mutate(day=local_day(lines.purchase_date, lines.marketplace_id))
        by_ibis = (
            lines.group_by(["marketplace_id", "day"])
            .aggregate(orders=lines.amazon_order_id.nunique(), units=lines.quantity_ordered.sum())
            .filter(ibis._.day.between(START, END))
            .to_polars()
        )
        dropped = wb.polars("orders").filter(
            pl.col("order_status").str.to_lowercase() == "canceled"
        )
        by_polars = (
            wb.polars("order_items")
            .join(dropped, on=["tenant", "amazon_order_id"], how="anti")
            .with_columns(day=local_day_polars("purchase_date", "marketplace_id"))
            .group_by("marketplace_id", "day")
            .agg(
                orders=pl.col("amazon_order_id").n_unique(), units=pl.col("quantity_ordered").sum()
            )
            .filter(pl.col("day").is_between(START, END))
        )
    sold = {k: v for k, v in run.report.items() if v != (0, 0)}
    for frame in (by_ibis, by_polars):
        got = {
            (r["marketplace_id"], r["day"]): (int(r["orders"]), int(r["units"]))
            for r in frame.iter_rows(named=True)
        }
        assert got == sold
