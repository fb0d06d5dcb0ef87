"""Buyer PII: off by default (nothing requested, nothing stored), only order_buyers when on."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pyarrow.compute as pc

from amzigo_lab.config import Settings
from amzigo_lab.events import MemorySink
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake
from amzigo_lab.sandbox import SandboxServer, World
from amzigo_lab.source import ingest
from tests.source.conftest import ACME, TODAY, start_server

SINCE = TODAY - dt.timedelta(days=5)


def buyer_strings(world: World, since: dt.date) -> set[bytes]:
    """Names and e-mails of the fake buyers of recent merchant-fulfilled orders."""
    out: set[bytes] = set()
    for day in world.days(since):
        for o in world.orders(ACME, day):
            if o.buyer is not None:
                out.add(o.buyer.email.encode())
                out.add(o.buyer.name.encode())
    return out


def test_pii_is_off_by_default(
    lake: Lake, settings: Settings, server: SandboxServer, world: World
) -> None:
    report = ingest(lake, settings, [ACME], ["orders", "solicitations"], SINCE, server=server)
    assert report.ok
    assert server.stats.requests["createRestrictedDataToken"] == 0  # no RDT requested
    assert not lake.catalog.partitions("order_buyers")
    needles = buyer_strings(world, SINCE)
    assert needles
    for path in Path(settings.home).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"buyer data in {path}"


def test_pii_on_writes_only_order_buyers(
    tmp_path: Path, settings: Settings, world: World, sandbox_state: Path
) -> None:
    pii = dataclasses.replace(settings, pii_purposes=("order_fulfilment",))
    server = start_server(world, sandbox_state, pii_role=True)
    try:
        with init_home(pii, audit=MemorySink()) as lake:
            since = TODAY - dt.timedelta(days=45)
            report = ingest(lake, pii, [ACME], ["orders"], since, server=server)
            assert report.ok, report.results
            assert (
                server.stats.requests["createRestrictedDataToken"] == 0
            )  # 2026-01-01: role, no RDT
            buyers = lake.scan("order_buyers", [ACME]).to_arrow()
            assert buyers.num_rows > 0
            # rows already past their 30-day deadline are skipped and counted, never written
            assert report.results[0].pii_skipped_expired > 0
            deadline = TODAY - dt.timedelta(days=30)
            assert pc.all(
                pc.greater_equal(pc.fill_null(buyers.column("delivered_date"), TODAY), deadline)
            ).as_py()
            emails = set(buyers.column("buyer_email").to_pylist())
            for dataset in ("orders", "order_items"):
                table = lake.scan(dataset, [ACME]).to_arrow()
                for column in table.column_names:
                    values = {str(v) for v in table.column(column).to_pylist()}
                    assert not values & emails, f"{dataset}.{column} holds buyer e-mails"
    finally:
        server.stop()
