"""Property tests over random ingestion, delivery and clock sequences (hypothesis).

For every sequence: after the purge of day d, no row whose deadline is <= d is readable (unless
an active legal hold covers it), and every row whose deadline is after d is still readable.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amzigo_lab.compliance import add_hold, purge
from amzigo_lab.config import load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.home import init_home
from amzigo_lab.retention_rules import add_months
from tests.compliance.conftest import Clock, buyers, make_users
from tests.lake.helpers import orders

BASE = dt.date(2026, 1, 1)

ingest_st = st.integers(0, 40)
# delivery relative to ingestion: up to 30 days before (older is refused at ingestion), after, or none
row_st = st.one_of(st.none(), st.integers(-30, 25))
batch_st = st.tuples(
    st.sampled_from(["t1", "t2"]), ingest_st, st.lists(row_st, min_size=1, max_size=4)
)


def _deadline(ingest: dt.date, delta: int | None) -> dt.date:
    cap = ingest + dt.timedelta(days=30)
    return cap if delta is None else min(ingest + dt.timedelta(days=delta + 30), cap)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    batches=st.lists(batch_st, min_size=1, max_size=5),
    purge_days=st.lists(st.integers(0, 100), min_size=1, max_size=4).map(sorted),
    hold_until=st.one_of(st.none(), st.integers(20, 90)),
    with_orders=st.booleans(),
)
def test_no_row_outlives_its_deadline_none_dies_early_holds_win(
    batches: list[tuple[str, int, list[int | None]]],
    purge_days: list[int],
    hold_until: int | None,
    with_orders: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        clock.set_day(BASE)
        lake = init_home(load_settings(Path(tmp) / "h", env={}), clock=clock, audit=MemorySink())
        make_users(lake.settings.home)
        expected: dict[str, tuple[str, dt.date]] = {}  # order id -> (tenant, deadline)
        for i, (tenant, ingest_off, deltas) in enumerate(batches):
            ingest = BASE + dt.timedelta(days=ingest_off)
            delivered = [None if d is None else ingest + dt.timedelta(days=d) for d in deltas]
            table = buyers(delivered, prefix=f"p{i}-")
            lake.write("order_buyers", tenant, ingest, table, f"b{i}")
            for j, d in enumerate(deltas):
                expected[f"p{i}-{j}"] = (tenant, _deadline(ingest, d))
            if with_orders:
                lake.write("orders", tenant, ingest, orders(1, prefix=f"o{i}-"), f"o{i}")
        until = None if hold_until is None else BASE + dt.timedelta(days=hold_until)
        if until is not None:
            add_hold(
                lake, tenant="t1", dataset="order_buyers", reason="case", until=until, actor="alice"
            )
        for off in purge_days:
            day = BASE + dt.timedelta(days=off)
            clock.set_day(day)
            purge(lake)
            readable = set(
                lake.scan("order_buyers").to_arrow().column("amazon_order_id").to_pylist()
            )
            for order, (tenant, deadline) in expected.items():
                held = until is not None and tenant == "t1" and day <= until
                if deadline > day or held:
                    assert order in readable, f"{order} deleted before {deadline} (day {day})"
                else:
                    assert order not in readable, f"{order} kept past {deadline} (day {day})"
            if with_orders:
                # Amazon non-PII: 18 months, far beyond these days: nothing may be dropped
                n = lake.scan("orders").to_arrow().num_rows
                assert n == len(batches) and add_months(BASE, 18) > day
        lake.close()
