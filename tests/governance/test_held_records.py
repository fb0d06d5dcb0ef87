"""The incident notification counts what the lake holds as records, never as row versions."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from amzigo_lab.governance.held_records import describe, held_records
from amzigo_lab.lake import Lake
from tests.governance.gov_fixtures import buyers_table
from tests.lake.helpers import orders

LATER = pa.array([dt.datetime(2026, 3, 2, tzinfo=dt.UTC)] * 2, pa.timestamp("us", tz="UTC"))


def test_versions_of_one_order_are_one_order(lake: Lake) -> None:
    lake.write("orders", "acme", "2026-03-01", orders(5, "acme-"), "o1")
    # orders acme-0 and acme-1 updated and ingested again, twice (same content the second time)
    again = orders(2, "acme-").set_column(3, "last_update_date", LATER)
    lake.write("orders", "acme", "2026-03-02", again, "o2")
    lake.write("orders", "acme", "2026-03-03", again, "o3")
    lake.write("orders", "globex", "2026-03-01", orders(3, "globex-"), "o1")

    counts = held_records(lake, "orders", "acme")
    assert counts == {"row_versions": 9, "records": 5, "orders": 5}
    assert describe(counts) == "5 orders"
    assert held_records(lake, "orders", "initech") == {
        "row_versions": 0, "records": 0, "orders": 0,
    }  # fmt: skip


def test_buyers_are_distinct_and_an_order_without_an_email_counts_as_its_own_buyer(
    lake: Lake,
) -> None:
    table, _pii = buyers_table("acme", 4)
    emails = table.column("buyer_email").to_pylist()
    # acme-b1 bought from the same buyer as acme-b0; acme-b3 carries no address
    table = table.set_column(5, "buyer_email", pa.array([emails[0], emails[0], emails[2], None]))
    lake.write("order_buyers", "acme", "2026-03-01", table, "b1")
    lake.write("order_buyers", "acme", "2026-03-08", table.slice(0, 2), "b2")  # weekly refetch

    counts = held_records(lake, "order_buyers", "acme")
    assert counts == {"row_versions": 6, "records": 4, "orders": 4, "buyers": 3}
    assert describe(counts) == "4 orders, 3 buyers"


def test_order_lines_name_their_orders() -> None:
    counts = {"row_versions": 12, "records": 9, "orders": 4}
    assert describe(counts) == "9 records, 4 orders"
