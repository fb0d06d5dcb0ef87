"""The reports' local-day rule as ibis, DuckDB SQL and polars expressions gives the same day
for every instant, marketplace alias and an unknown marketplace, DST changes included; the
day is the Python zone conversion's."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import duckdb
import ibis
import polars as pl
import pyarrow as pa
import pytest

from amzigo_lab.analysis.local_days import local_day, local_day_polars, local_day_sql
from amzigo_lab.analysis.money import MARKETPLACES
from amzigo_lab.errors import InvalidName


def instants() -> pa.Table:
    """Every 30 minutes over two days around both 2026 DST changes, for every alias."""
    zones = {
        a: m.timezone for m in MARKETPLACES for a in (m.marketplace_id, m.code, m.sales_channel)
    }
    zones["XX-unknown"] = "UTC"
    rows = []
    for edge in (dt.datetime(2026, 3, 28, tzinfo=dt.UTC), dt.datetime(2026, 10, 24, tzinfo=dt.UTC)):
        for q in range(4 * 48):
            at = edge + dt.timedelta(minutes=30 * q)
            rows += [
                {"ts": at, "m": m, "want": at.astimezone(ZoneInfo(z)).date()}
                for m, z in zones.items()
            ]
    return pa.Table.from_pylist(rows, schema=pa.schema(
        [("ts", pa.timestamp("us", tz="UTC")), ("m", pa.string()), ("want", pa.date32())]
    ))  # fmt: skip


def test_ibis_sql_and_polars_give_the_marketplaces_local_day() -> None:
    data = instants()
    want = data["want"].to_pylist()
    assert len(set(want)) > 2 and any(d != t.date() for d, t in zip(want, data["ts"].to_pylist()))

    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    t = ibis.memtable(data)
    assert con.to_pyarrow(t.select(day=local_day(t.ts, t.m)))["day"].to_pylist() == want

    raw = duckdb.connect()
    raw.execute("SET TimeZone = 'America/New_York'")  # the session's zone does not matter
    raw.register("instants", data)
    got = raw.sql(f"SELECT {local_day_sql('x.ts', 'x.m')} AS day FROM instants AS x")
    assert got.to_arrow_table()["day"].to_pylist() == want

    frame = pl.from_arrow(data)
    assert isinstance(frame, pl.DataFrame)
    assert frame.select(day=local_day_polars("ts", "m"))["day"].to_list() == want


def test_sql_column_names_must_be_identifiers() -> None:
    with pytest.raises(InvalidName):
        local_day_sql("purchase_date; DROP TABLE orders", "marketplace_id")
