"""What a pooled dashboard kernel runs before anybody owns it: imports and a dry run, no data.

A fresh kernel spends about 1 s importing pyarrow, polars, ibis and ipywidgets and another
0.2-0.3 s on first-call costs (DuckDB, ibis' SQL compiler, polars). `warm_up()` pays both in a
kernel that no user owns yet, so a seller's page only waits for its own data. It reads NOTHING
from the lake: the dry run computes every section over a few made-up orders (the generator the
demo uses) and empty tables of the declared schemas (no real tenant, no key), and it leaves no
names in the kernel's namespace.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

#: The made-up tenant of the dry run (its rows live in the kernel's memory only, never in the lake).
WARMUP_TENANT = "warm-up"

#: Dashboard kernels kept started and warm for the next page views (`amzigo dashboard
#: --warm-kernels`): a page then waits for its own data only.
DEFAULT_WARM_KERNELS = 2
#: The code the kernel manager executes in each pooled kernel (silently, outside the history).
WARMUP_CODE = (
    "import amzigo_lab.serve.warmup as _amzigo_warmup\n"
    "_amzigo_warmup.warm_up()\n"
    "del _amzigo_warmup\n"
)


def warmup_tables(today: dt.date) -> dict[str, Any]:
    """Every dataset the dashboard reads as Arrow: a few days of made-up orders and order items
    for a made-up tenant (so the charts and tables are drawn too), the others empty."""
    import pyarrow as pa

    from amzigo_lab.datasets import REGISTRY
    from amzigo_lab.serve.dashboard import DATASETS
    from amzigo_lab.synthetic import items_for_orders, orders_for_day

    tables = {name: REGISTRY[name].schema.empty_table() for name in DATASETS}
    days = [today - dt.timedelta(days=n) for n in range(1, 4)]
    orders = [orders_for_day(0, WARMUP_TENANT, day, per_day=5) for day in days]
    tables["orders"] = REGISTRY["orders"].conform(pa.concat_tables(orders))
    items = [items_for_orders(0, o) for o in orders]
    tables["order_items"] = REGISTRY["order_items"].conform(pa.concat_tables(items))
    return tables


def warm_up(today: dt.date | None = None) -> None:
    """Import what the dashboard needs and compute every section once over made-up data."""
    import ipywidgets  # noqa: F401  (the notebook builds widgets next)
    import pyarrow.flight  # noqa: F401  (the data comes from the gateway)

    import amzigo_lab.client.transport  # noqa: F401
    from amzigo_lab.serve.dashboard import ArrowSource, SellerDashboard

    day = today or dt.date.today()
    tables = warmup_tables(day)
    board = SellerDashboard(WARMUP_TENANT, ArrowSource(tables), day - dt.timedelta(days=1))
    board.sections(board.default_view(day))
    board.source.backend.disconnect()
