"""What the lake holds for one tenant and dataset, counted as a breach notification counts it.

The lake keeps every ingested version of a record (an order updated three times is three rows
across partitions), so the catalog's row counts are row versions, not orders. A notification
to Amazon or an authority states how many orders (and buyers) are affected: here each record
counts once, whatever its number of stored versions. Counts only; no value leaves this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb

from amzigo_lab.names import sql_name

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake

ORDER_ID = "amazon_order_id"
#: The data class that identifies a buyer (Amazon's buyer e-mail address).
BUYER_CLASS = "pii.email"


def held_records(lake: Lake, dataset: str, tenant: str) -> dict[str, Any]:
    """Counts for `dataset` and `tenant` over its live partitions:

    * `records`: distinct records (natural keys; every row for a dataset without one),
    * `row_versions`: stored rows, every ingested version (what `amzigo lake ls` shows),
    * `orders`: distinct Amazon order ids, for a dataset that has them,
    * `buyers`: distinct buyers, for a dataset that names them (by e-mail address; an order
      without one counts as a buyer of its own, so the count never understates).
    """
    spec = lake.spec(dataset)
    names = {c.name for c in spec.columns}
    keys = ", ".join(_q(k) for k in spec.natural_key)
    measures = {"records": f"count(DISTINCT ({keys}))" if keys else "count(*)"}
    if ORDER_ID in names:
        measures["orders"] = f"count(DISTINCT {_q(ORDER_ID)})"
    if buyer := next((c.name for c in spec.columns if c.data_class == BUYER_CLASS), None):
        order = f"'order:' || {_q(ORDER_ID)}" if ORDER_ID in names else "NULL"
        measures["buyers"] = f"count(DISTINCT coalesce({_q(buyer)}, {order}))"
    scan = lake.scan(dataset, [tenant])
    counts: dict[str, Any] = {"row_versions": scan.row_count} | dict.fromkeys(measures, 0)
    if not scan.files:
        return counts
    con = duckdb.connect()
    try:
        con.register("held", scan.engine_source())
        sql = f"SELECT {', '.join(measures.values())} FROM held"  # noqa: S608
        row = con.sql(sql).fetchone()
    finally:
        con.close()
    assert row is not None  # an aggregate returns one row
    return counts | {name: int(v) for name, v in zip(measures, row, strict=True)}


def describe(counts: dict[str, Any]) -> str:
    """`counts` as a notification line reads it: '5 orders, 4 buyers'."""
    parts = []
    if "orders" not in counts or counts["records"] != counts["orders"]:
        parts.append(f"{counts['records']} records")
    parts += [f"{counts[k]} {k}" for k in ("orders", "buyers") if k in counts]
    return ", ".join(parts)


def _q(name: str) -> str:
    return f'"{sql_name(name)}"'
