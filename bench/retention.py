"""`python -m bench.retention [--quick]`: purge cost follows partitions, not bytes.

Builds a lake of T tenants x D daily partitions x the datasets (orders, order_items) at 1x and at
4x rows per partition, then purges as of a date where about half of the partitions are past
their 18-month deadline, and compares:
  * the purge (`amzigo_lab.compliance.purge`: crypto-erase + delete + verify, in batches);
  * a row-level delete that decrypts every file of the sampled tenants, drops the expired
    rows, and re-encrypts the survivors (what a lakehouse "DELETE WHERE" + rewrite costs).

Seeding is direct (catalog rows + copies of one encrypted template file per dataset and scale,
each partition with its own wrapped key) so that the run fits the time budget; the drop path
does not read file contents, so this measures the same work as written data. The row-level
baseline is measured on a sample of tenants and scaled linearly to all tenants.
The audit sink is in-memory: the durable audit log's per-event fsync is not measured here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from amzigo_lab.compliance import purge
from amzigo_lab.config import load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.home import init_home
from amzigo_lab.lake.catalog import iso
from amzigo_lab.lake.keys import wrap
from amzigo_lab.lake.pme import encryption_properties, read_file
from amzigo_lab.lake.rowmac import seal_partitions
from amzigo_lab.lake.store import Lake
from amzigo_lab.retention_rules import add_months
from amzigo_lab.synthetic import items_for_orders, orders_for_day
from bench.common import Row, render_table

D0 = dt.date(2024, 1, 1)
DATASETS = ("orders", "order_items")


def _template(dataset: str, rows: int, key_id: str, key: bytes) -> tuple[bytes, int]:
    orders = orders_for_day(7, "bench", D0, per_day=rows)
    table = orders if dataset == "orders" else items_for_orders(7, orders)
    sink = pa.BufferOutputStream()
    pq.write_table(
        table, sink, compression="zstd", encryption_properties=encryption_properties(key_id, key)
    )
    return sink.getvalue().to_pybytes(), table.num_rows


def seed(lake: Lake, tenants: int, days: int, rows: int) -> dict[str, bytes]:
    """Catalog rows + files for tenants x days x datasets; the template keys by key id."""
    master = lake.master()
    now = iso(lake.clock())
    template_keys: dict[str, bytes] = {}
    for ds_name in DATASETS:
        spec = lake.spec(ds_name)
        tkid, tkey = f"pk-template-{ds_name}", secrets.token_bytes(32)
        template_keys[tkid] = tkey
        data, nrows = _template(ds_name, rows, tkid, tkey)
        with lake.catalog.transaction() as db:
            lake.ensure_registered(spec)
            pids: list[int] = []
            for t in range(tenants):
                tenant = f"t{t:03d}"
                for d in range(days):
                    day = D0 + dt.timedelta(days=d)
                    rel_dir = f"{spec.origin}/{ds_name}/tenant={tenant}/ingest_date={day}"
                    rel = f"{rel_dir}/part-0.parquet"
                    path = lake.path(rel)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                    key_id, key = lake.new_partition_key()
                    db.execute(
                        "INSERT INTO keys(key_id, wrapped, master_key_id, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        (key_id, wrap(master.secret, key, key_id), master.key_id, now),
                    )
                    cur = db.execute(
                        "INSERT INTO partitions(dataset, tenant, ingest_date, purge_date, rel_dir, "
                        "key_id, state, row_count, bytes, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, 'live', ?, ?, ?)",
                        (
                            ds_name,
                            tenant,
                            day.isoformat(),
                            add_months(day, 18).isoformat(),
                            rel_dir,
                            key_id,
                            nrows,
                            len(data),
                            now,
                        ),
                    )
                    db.execute(
                        "INSERT INTO files(partition_id, batch_id, rel_path, row_count, bytes, "
                        "sha256, created_at) VALUES (?, 'bench', ?, ?, ?, '-', ?)",
                        (cur.lastrowid, rel, nrows, len(data), now),
                    )
                    pids.append(int(cur.lastrowid or 0))
            # rows written outside `Lake.write` still need their MACs, or every scan and purge
            # would refuse them as tampered (lake/rowmac.py)
            seal_partitions(db, lake.row_mac_key(), pids)
    return template_keys


def row_level_delete(lake: Lake, keys: dict[str, bytes], tenants: list[str], as_of: dt.date) -> int:
    """Decrypt every file of `tenants`, drop expired rows, rewrite the survivors (new file)."""
    n = 0
    for ds_name in DATASETS:
        for p in lake.catalog.partitions(ds_name, tenants):
            for f in lake.catalog.files([p.id]):
                path = lake.path(f.rel_path)
                table = read_file(str(path), keys).read()
                # the row predicate a row-level delete evaluates on every row
                expired = pc.less_equal(
                    pa.array([add_months(p.ingest_date, 18)] * table.num_rows, pa.date32()),
                    pa.scalar(as_of, pa.date32()),
                )
                kept = table.filter(pc.invert(expired))
                kid = f"pk-template-{ds_name}"
                tmp = path.with_suffix(".rewrite")
                pq.write_table(
                    kept,
                    tmp,
                    compression="zstd",
                    encryption_properties=encryption_properties(kid, keys[kid]),
                )
                tmp.replace(path)
                n += 1
    return n


def measure(tenants: int, days: int, rows: int, sample: int, batch: int) -> dict[str, float]:
    """Seed one lake at `rows` per partition and time purge and row-level delete."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    try:
        lake = init_home(load_settings(tmp / "home", env={}), audit=MemorySink())
        t0 = time.perf_counter()
        keys = seed(lake, tenants, days, rows)
        seed_s = time.perf_counter() - t0
        as_of = add_months(D0, 18) + dt.timedelta(days=days // 2)
        lake_bytes = sum(p.bytes for p in lake.catalog.partitions())
        sampled = [f"t{t:03d}" for t in range(min(sample, tenants))]
        t0 = time.perf_counter()
        row_level_delete(lake, keys, sampled, as_of)
        row_s = (time.perf_counter() - t0) * tenants / len(sampled)
        t0 = time.perf_counter()
        result = purge(lake, as_of, batch_size=batch)
        purge_s = time.perf_counter() - t0
        lake.close()
        return {
            "seed_s": seed_s,
            "purge_s": purge_s,
            "row_level_s": row_s,
            "dropped": result.partitions_dropped,
            "bytes": lake_bytes,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.retention", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="3 tenants x 120 days (< 1 min)")
    parser.add_argument("--tenants", type=int, default=None, help="default 20 (quick: 3)")
    parser.add_argument("--days", type=int, default=550)
    parser.add_argument("--rows", type=int, default=400, help="orders per partition at 1x")
    parser.add_argument(
        "--sample", type=int, default=2, help="tenants the row-level delete runs on"
    )
    parser.add_argument("--batch", type=int, default=500, help="partitions per drop batch")
    args = parser.parse_args(argv)
    tenants = args.tenants or (3 if args.quick else 20)
    days = 120 if args.quick else args.days
    print(
        f"retention bench: {tenants} tenants x {days} days x {len(DATASETS)} datasets "
        f"= {tenants * days * len(DATASETS)} partitions per scale; 1x={args.rows} orders/partition"
    )
    one = measure(tenants, days, args.rows, args.sample, args.batch)
    four = measure(tenants, days, args.rows * 4, args.sample, args.batch)
    for name, m in (("1x", one), ("4x", four)):
        print(
            f"  {name}: {m['bytes'] / 2**20:.1f} MiB, seeded in {m['seed_s']:.1f} s, purge dropped "
            f"{m['dropped']} partitions in {m['purge_s']:.2f} s, row-level delete "
            f"(extrapolated from {args.sample} tenants) {m['row_level_s']:.1f} s"
        )
    rows = [
        Row(
            "retention",
            "purge wall time 1x",
            one["purge_s"],
            "s",
            note=f"{one['dropped']} partitions",
        ),
        Row(
            "retention",
            "purge 4x data / 1x",
            four["purge_s"],
            "s",
            baseline=one["purge_s"],
            target="<= 1.1",
            limit=1.1,
            note="cost follows partitions, not bytes",
        ),
        Row(
            "retention",
            "row-level delete 4x / 1x",
            four["row_level_s"],
            "s",
            baseline=one["row_level_s"],
            note="decrypt + filter + re-encrypt every file",
        ),
        Row(
            "retention",
            "purge vs row-level delete (4x)",
            four["purge_s"],
            "s",
            baseline=four["row_level_s"],
            target="< 1",
            limit=1.0,
        ),
    ]
    print(render_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
