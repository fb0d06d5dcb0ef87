"""Storage-layer benchmarks: encrypted lake vs plaintext Parquet, measured in the same run.

1. write: 60 `lake.write` calls (one per day) vs `pq.write_table` of the same day-tables
   (zstd, same row-group size, file + directory fsync);
2. aggregation (all days, last 7 days) through the reader API (DuckDB, polars, ibis) vs
   DuckDB `read_parquet` (polars: `scan_parquet`) over the same data as plaintext hive Parquet;
   DuckDB and ibis also through a second `Lake` on the same home with the hot cache enabled
   (`lake/hot_cache.py`): repeat queries (cache warm, interleaved with the rest) and first
   queries (cache emptied before each run) are reported separately;
3. `drop_partition` at 1x and 4x partition size (median over several partitions);
4. peak RSS of the whole encrypted write in a fresh subprocess.

Data is generated once (not timed); the measured variants are interleaved, and each row reports
the median over the repetitions. Everything is written to a temp dir under /tmp and removed.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import io
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from bench.common import Row, fsync_path, log, median, render_table, timed, write_json

DATASET = "orders"
MB = 1024 * 1024


@dataclass
class Config:
    """Sizes and repetitions of one run."""

    rows: int = 5_000_000
    days: int = 60
    tenants: int = 1
    reps: int = 5
    read_reps: int = 5
    drops: int = 5
    row_group_rows: int = 131_072
    seed: int = 42
    start: dt.date = dt.date(2026, 1, 1)
    memory: bool = True
    profile: bool = False
    keep: bool = False

    @property
    def tenant_ids(self) -> list[str]:
        return [f"seller-{chr(ord('a') + i)}" for i in range(self.tenants)]

    @property
    def last_day(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def last7_start(self) -> dt.date:
        return self.start + dt.timedelta(days=max(0, self.days - 7))


@dataclass
class Part:
    """One lake.write call: a tenant's table for one ingestion day."""

    tenant: str
    day: dt.date
    table: pa.Table

    @property
    def batch_id(self) -> str:
        return f"bench-{self.tenant}-{self.day.isoformat()}"


# -- data ------------------------------------------------------------------------------------
def generate(cfg: Config) -> pa.Table:
    """The synthetic orders (with the `day` column), generated once per run."""
    from amzigo_lab.synthetic import bulk_orders

    return bulk_orders(cfg.seed, cfg.rows, cfg.days, cfg.start)


def split_parts(full: pa.Table, cfg: Config) -> list[Part]:
    """Zero-copy day (and tenant) slices of `full`; `day` is sorted by construction."""
    day = full.column("day").to_numpy()
    if len(day) and np.any(np.diff(day) < 0):
        full = full.sort_by("day")
        day = full.column("day").to_numpy()
    counts = np.bincount(day, minlength=cfg.days)
    data = full.drop_columns(["day"])
    tenants = cfg.tenant_ids
    parts: list[Part] = []
    offset = 0
    for d in range(cfg.days):
        n = int(counts[d])
        day_table = data.slice(offset, n)
        offset += n
        for k, tenant in enumerate(tenants):
            a, b = n * k // len(tenants), n * (k + 1) // len(tenants)
            parts.append(Part(tenant, cfg.start + dt.timedelta(days=d), day_table.slice(a, b - a)))
    return parts


def open_home(home: Path, cfg: Config) -> Any:
    """A fresh home (key, catalog) whose settings ignore the caller's environment."""
    from amzigo_lab.config import load_settings
    from amzigo_lab.home import init_home

    settings = load_settings(home, env={}, row_group_rows=cfg.row_group_rows)
    return init_home(settings)


def lake_write_all(lake: Any, parts: list[Part]) -> None:
    for p in parts:
        lake.write(DATASET, p.tenant, p.day, p.table, p.batch_id)


def plain_write_all(root: Path, parts: list[Part], row_group_rows: int) -> None:
    """Plaintext hive-partitioned Parquet, same codec and row groups, fsync file and folder."""
    for p in parts:
        folder = root / f"tenant={p.tenant}" / f"ingest_date={p.day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "part-0.parquet"
        pq.write_table(p.table, path, compression="zstd", row_group_size=row_group_rows)
        fsync_path(path)
        fsync_path(folder)


def dir_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*.parquet"))


# -- 1. write --------------------------------------------------------------------------------
def bench_write(cfg: Config, parts: list[Part], work: Path) -> tuple[list[Row], Any, Path]:
    """Interleaved encrypted/plaintext writes; returns rows, the last lake and plaintext dir."""
    # warm-up (imports, encryption library init, first-file costs), not timed
    warm = work / "warm"
    lake = open_home(warm / "home", cfg)
    lake_write_all(lake, parts[:2])
    lake.close()
    plain_write_all(warm / "plain", parts[:2], cfg.row_group_rows)
    shutil.rmtree(warm)

    lake_ms: list[float] = []
    plain_ms: list[float] = []
    last_lake: Any = None
    last_plain: Path | None = None
    for rep in range(cfg.reps):
        home, plain = work / f"w{rep}-home", work / f"w{rep}-plain"
        lake = open_home(home, cfg)

        def run_lake(lake: Any = lake) -> None:
            lake_write_all(lake, parts)

        def run_plain(plain: Path = plain) -> None:
            plain_write_all(plain, parts, cfg.row_group_rows)

        order = [("lake", run_lake), ("plain", run_plain)]
        if rep % 2:
            order.reverse()
        for name, fn in order:
            ms, _ = timed(fn)
            (lake_ms if name == "lake" else plain_ms).append(ms)
        log(
            f"write rep {rep + 1}/{cfg.reps}: "
            f"lake {lake_ms[-1]:.0f} ms, plain {plain_ms[-1]:.0f} ms"
        )
        if last_lake is not None:
            last_lake.close()
            shutil.rmtree(last_lake.settings.home)
        if last_plain is not None:
            shutil.rmtree(last_plain)
        last_lake, last_plain = lake, plain

    assert last_lake is not None and last_plain is not None
    n = len(parts)
    lake_bytes = sum(p.bytes for p in last_lake.catalog.partitions(dataset=DATASET))
    plain_bytes = dir_bytes(last_plain)
    rows = [
        Row(
            "1. write",
            f"encrypted write, {cfg.rows:,} rows, {n} lake.write calls",
            median(lake_ms),
            "ms",
            median(plain_ms),
            target="ratio <= 1.15",
            limit=1.15,
            note="baseline: pq.write_table of the same day-tables, zstd, same row groups, fsync",
            samples=lake_ms,
            baseline_samples=plain_ms,
        ),
        Row(
            "1. write",
            "bytes on disk (encrypted vs plaintext)",
            lake_bytes / MB,
            "MB",
            plain_bytes / MB,
        ),
    ]
    return rows, last_lake, last_plain


# -- 2. aggregation --------------------------------------------------------------------------
AGG_SQL = (
    "SELECT marketplace_id, sum(order_total) AS total, count(*) AS n FROM {src} {where} "
    "GROUP BY marketplace_id ORDER BY marketplace_id"
)


def _norm(rows: Any) -> list[tuple[str, str, int]]:
    """Comparable (marketplace, total, count) rows from any engine's result."""
    if isinstance(rows, pa.Table):
        rows = [tuple(r.values()) for r in rows.to_pylist()]
    elif hasattr(rows, "rows"):  # polars DataFrame
        rows = rows.rows()
    return sorted((str(m), f"{t:.2f}", int(c)) for m, t, c in rows)


def open_existing(home: Path, cfg: Config) -> Any:
    from amzigo_lab.config import load_settings
    from amzigo_lab.home import open_lake

    return open_lake(load_settings(home, env={}, row_group_rows=cfg.row_group_rows))


def bench_read(cfg: Config, lake_home: Path, plain: Path, work: Path) -> list[Row]:
    """Section 2 in a child process with a watchdog: a hung reader is reported, not waited on.

    A first run hung forever inside `scan().duckdb()`/`ibis()`: DuckDB calls pyarrow's
    `Scanner.to_reader()` holding the GIL, while a pyarrow I/O thread holding the KeyToolkit
    mutex waits for the GIL to create the Python KMS client (lock-order inversion).
    """
    timeout = 60 + 20 * cfg.rows * cfg.read_reps / 5_000_000  # normal: ~11 s at full size
    timeout += 30 * cfg.rows / 1_000_000  # the hot cache's first queries (full decrypts)
    notes: list[str] = []
    for attempt in range(1, 3):
        out = work / f"read-{attempt}.json"
        spec = {
            "cfg": _cfg_json(cfg),
            "home": str(lake_home),
            "plain": str(plain),
            "out": str(out),
            "watchdog": timeout - 10,
        }
        hang = work / f"read-{attempt}.hang"
        spec["hang"] = str(hang)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.lake", "--read-child", json.dumps(spec)],
                timeout=timeout,
                check=False,
                cwd=Path(__file__).resolve().parent.parent,
            )
            rc: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        if rc != 0:
            dump = hang.read_text() if hang.exists() else ""
            if dump:
                sys.stderr.write(f"--- hung reader, stacks (attempt {attempt}) ---\n{dump}\n")
            why = "hung (watchdog fired)" if dump or rc == "timeout" else f"failed rc={rc}"
            notes.append(f"attempt {attempt}: reader child {why}")
            log(notes[-1])
            continue
        rows = [Row(**r) for r in json.loads(out.read_text())]
        if notes:
            rows.insert(
                0,
                Row(
                    "2. aggregation",
                    "reader runs that hung before a clean run",
                    float(len(notes)),
                    "",
                    target="0",
                    limit=0.5,
                    on="value",
                    note="; ".join(notes),
                ),
            )
        return rows
    return [
        Row(
            "2. aggregation",
            "reader benchmark did not complete",
            float(len(notes)),
            "",
            target="0",
            limit=0.5,
            on="value",
            note="; ".join(notes),
        )
    ]


def read_child(spec: dict[str, Any]) -> None:
    import faulthandler

    hang = open(spec["hang"], "w")  # noqa: SIM115 (must outlive a hung main thread)
    faulthandler.dump_traceback_later(spec["watchdog"], exit=True, file=hang)
    d = dict(spec["cfg"])
    d["start"] = dt.date.fromisoformat(d["start"])
    cfg = Config(**d)
    lake = open_existing(Path(spec["home"]), cfg)
    hot = open_existing(Path(spec["home"]), cfg)  # the same home, hot cache on (issue 17)
    rows = read_rows(cfg, lake, Path(spec["plain"]), hot)
    hot.close()
    lake.close()
    faulthandler.cancel_dump_traceback_later()
    Path(spec["out"]).write_text(json.dumps([_row_fields(r) for r in rows]))


def _row_fields(r: Row) -> dict[str, Any]:
    d = r.to_dict()
    d.pop("ratio")
    d.pop("status")
    return d


#: Byte budget of the bench's hot cache (decrypted files in memory, all columns): 2M rows of
#: orders take about 0.3 GB, 5M about 0.7 GB.
HOT_BUDGET = 1536 * MB


def read_rows(cfg: Config, lake: Any, plain: Path, hot: Any) -> list[Row]:
    import duckdb
    import ibis
    import polars as pl

    from amzigo_lab.lake import hot_cache

    cache = hot_cache.enable(hot, HOT_BUDGET)

    tenants = cfg.tenant_ids
    glob = f"{plain}/*/*/*.parquet"
    part_schema = pa.schema([("tenant", pa.string()), ("ingest_date", pa.date32())])
    plain_ds = ds.dataset(
        str(plain), format="parquet", partitioning=ds.partitioning(part_schema, flavor="hive")
    )

    def variants(lo: dt.date | None) -> dict[str, Callable[[], Any]]:
        """Each variant: a setup (untimed) returning the timed callable."""
        where = "" if lo is None else f"WHERE ingest_date >= DATE '{lo.isoformat()}'"
        start = lo or cfg.start

        def lake_duckdb() -> Callable[[], Any]:
            con = duckdb.connect()

            def run() -> Any:
                scan = lake.scan(DATASET, tenants=tenants, start=start, end=cfg.last_day)
                scan.duckdb(con, name="orders")
                return con.sql(AGG_SQL.format(src="orders", where="")).fetchall()

            return run

        def lake_polars() -> Callable[[], Any]:
            def run() -> Any:
                scan = lake.scan(DATASET, tenants=tenants, start=start, end=cfg.last_day)
                return (
                    scan.polars()
                    .group_by("marketplace_id")
                    .agg(pl.col("order_total").sum(), pl.len())
                    .collect()
                )

            return run

        def lake_ibis() -> Callable[[], Any]:
            backend = ibis.duckdb.connect()

            def run() -> Any:
                scan = lake.scan(DATASET, tenants=tenants, start=start, end=cfg.last_day)
                t = scan.ibis(backend, name="orders")
                expr = t.group_by("marketplace_id").aggregate(
                    total=t.order_total.sum(), n=t.count()
                )
                return expr.to_pyarrow()

            return run

        def hot_duckdb() -> Callable[[], Any]:
            con = duckdb.connect()

            def run() -> Any:
                scan = hot.scan(DATASET, tenants=tenants, start=start, end=cfg.last_day)
                scan.duckdb(con, name="orders")
                return con.sql(AGG_SQL.format(src="orders", where="")).fetchall()

            return run

        def hot_ibis() -> Callable[[], Any]:
            backend = ibis.duckdb.connect()

            def run() -> Any:
                scan = hot.scan(DATASET, tenants=tenants, start=start, end=cfg.last_day)
                t = scan.ibis(backend, name="orders")
                expr = t.group_by("marketplace_id").aggregate(
                    total=t.order_total.sum(), n=t.count()
                )
                return expr.to_pyarrow()

            return run

        def plain_duckdb() -> Callable[[], Any]:
            con = duckdb.connect()
            src = f"read_parquet('{glob}', hive_partitioning = true)"

            def run() -> Any:
                return con.sql(AGG_SQL.format(src=src, where=where)).fetchall()

            return run

        def plain_polars() -> Callable[[], Any]:
            def run() -> Any:
                lf = pl.scan_parquet(glob, hive_partitioning=True)
                if lo is not None:
                    lf = lf.filter(pl.col("ingest_date") >= lo)
                return (
                    lf.group_by("marketplace_id")
                    .agg(pl.col("order_total").sum(), pl.len())
                    .collect()
                )

            return run

        def plain_arrow_duckdb() -> Callable[[], Any]:
            con = duckdb.connect()
            con.register("plain_ds", plain_ds)

            def run() -> Any:
                return con.sql(AGG_SQL.format(src="plain_ds", where=where)).fetchall()

            return run

        return {
            "lake_duckdb": lake_duckdb,
            "lake_polars": lake_polars,
            "lake_ibis": lake_ibis,
            "hot_duckdb": hot_duckdb,
            "hot_ibis": hot_ibis,
            "plain_duckdb": plain_duckdb,
            "plain_polars": plain_polars,
            "plain_arrow_duckdb": plain_arrow_duckdb,
        }

    out: list[Row] = []
    for label, lo in (("all days", None), ("last 7 days", cfg.last7_start)):
        setups = variants(lo)
        runs = {name: setup() for name, setup in setups.items()}
        # first query through the hot cache: emptied before each (not interleaved: each run
        # decrypts every column of every file in range), against read_parquet right after
        first: list[float] = []
        first_base: list[float] = []
        for _ in range(max(2, cfg.read_reps // 2)):
            cache.clear()
            first.append(timed(runs["hot_duckdb"])[0])
            first_base.append(timed(runs["plain_duckdb"])[0])
        cache.clear()
        # warm-up and correctness: every engine must agree with DuckDB over plaintext
        expected = _norm(runs["plain_duckdb"]())
        for name, fn in runs.items():
            got = _norm(fn())
            if got != expected:
                raise AssertionError(f"{name} ({label}) disagrees: {got} != {expected}")
        samples: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for rep in range(cfg.read_reps):
            rotated = names[rep % len(names) :] + names[: rep % len(names)]
            for name in rotated:
                ms, _ = timed(runs[name])
                samples[name].append(ms)
        med = {k: median(v) for k, v in samples.items()}
        log(f"read {label}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in med.items()))
        sec = "2. aggregation"
        gated = dict(target="ratio <= 1.2", limit=1.2)
        # (what, measured run, baseline run, target or diagnostic note)
        compared: list[tuple[str, str, str, dict[str, Any]]] = [
            ("scan().duckdb() vs DuckDB read_parquet", "lake_duckdb", "plain_duckdb", gated),
            ("scan().ibis() vs DuckDB read_parquet", "lake_ibis", "plain_duckdb", gated),
            ("scan().polars() vs polars scan_parquet", "lake_polars", "plain_polars", gated),
            (
                "hot cache, repeat query: scan().duckdb() vs DuckDB read_parquet",
                "hot_duckdb",
                "plain_duckdb",
                {**gated, "note": "decrypt once, query many: lake/hot_cache.py, cache warm"},
            ),
            (
                "hot cache, repeat query: scan().ibis() vs DuckDB read_parquet",
                "hot_ibis",
                "plain_duckdb",
                gated,
            ),
            (
                "diag scan().duckdb() vs DuckDB over plaintext pyarrow dataset",
                "lake_duckdb",
                "plain_arrow_duckdb",
                {"note": "isolates decryption: same engine path (pyarrow scan -> DuckDB), no PME"},
            ),
            (
                "diag DuckDB over plaintext pyarrow dataset vs read_parquet",
                "plain_arrow_duckdb",
                "plain_duckdb",
                {"note": "isolates the engine path: pyarrow dataset scan vs DuckDB's own reader"},
            ),
        ]
        out += [
            Row(
                sec,
                f"{label}: {what}",
                med[run],
                "ms",
                med[base],
                samples=samples[run],
                baseline_samples=samples[base],
                **extra,
            )
            for what, run, base, extra in compared
        ]
        out.append(
            Row(
                sec,
                f"{label}: hot cache, first query: scan().duckdb() vs DuckDB read_parquet",
                median(first),
                "ms",
                median(first_base),
                samples=first,
                baseline_samples=first_base,
                note="cache emptied before each run: decrypts and decodes every column once",
            )
        )
    hot_cache.disable(hot)
    return out


# -- 3. drop ---------------------------------------------------------------------------------
def _spread(ids: list[int], k: int) -> list[int]:
    """k ids spread over the list (excluding the last 7 days is not needed: reads are done)."""
    k = min(k, len(ids))
    return [ids[(i * len(ids)) // k] for i in range(k)]


def bench_drop(cfg: Config, parts: list[Part], lake1: Any, work: Path) -> list[Row]:
    """drop_partition at 1x (the write benchmark's lake) and 4x partition size, interleaved."""
    # 4x lake: 4 consecutive days of one tenant per partition (same total rows as the 1x lake)
    lake4 = open_home(work / "drop4x-home", cfg)
    by_tenant: dict[str, list[Part]] = {}
    for p in parts:
        by_tenant.setdefault(p.tenant, []).append(p)
    for tenant, ps in by_tenant.items():
        for i in range(0, len(ps) - 3, 4):
            group = ps[i : i + 4]
            table = pa.concat_tables([g.table for g in group])
            lake4.write(DATASET, tenant, group[0].day, table, f"bench4x-{tenant}-{i}")
    p1 = lake1.catalog.partitions(dataset=DATASET)
    p4 = lake4.catalog.partitions(dataset=DATASET)
    drops = min(cfg.drops, len(p4), len(p1))
    ids1 = _spread([p.id for p in p1], drops)
    ids4 = _spread([p.id for p in p4], drops)
    rows1 = median([p.row_count for p in p1])
    rows4 = median([p.row_count for p in p4])
    mb1 = median([p.bytes for p in p1]) / MB
    mb4 = median([p.bytes for p in p4]) / MB
    os.sync()  # no dirty pages from the setup in the timed section
    ms1: list[float] = []
    ms4: list[float] = []
    for i in range(drops):
        order = [(lake1, ids1[i], ms1), (lake4, ids4[i], ms4)]
        if i % 2:
            order.reverse()
        for lake, pid, acc in order:
            ms, record = timed(lambda lake=lake, pid=pid: lake.drop_partition(pid, reason="bench"))
            if not record.verification.get("ok"):
                raise AssertionError(f"drop of partition {pid} did not verify")
            acc.append(ms)
    log(f"drop: 1x {ms1} ms, 4x {ms4} ms")
    lake4.close()
    sec = "3. drop"
    return [
        Row(
            sec,
            f"drop_partition 1x (~{rows1:,.0f} rows, {mb1:.1f} MB)",
            median(ms1),
            "ms",
            target="< 10 ms",
            limit=10.0,
            on="value",
            note=f"median of {drops} drops",
            samples=ms1,
        ),
        Row(
            sec,
            f"drop_partition 4x (~{rows4:,.0f} rows, {mb4:.1f} MB)",
            median(ms4),
            "ms",
            target="< 10 ms",
            limit=10.0,
            on="value",
            note=f"median of {drops} drops",
            samples=ms4,
        ),
        Row(
            sec,
            "drop_partition 4x vs 1x (size scaling)",
            median(ms4),
            "ms",
            median(ms1),
            target="ratio <= 1.5 (flat)",
            limit=1.5,
            samples=ms4,
            baseline_samples=ms1,
        ),
    ]


# -- 4. memory -------------------------------------------------------------------------------
def bench_memory(cfg: Config, full: pa.Table, work: Path) -> list[Row]:
    """Peak RSS of the whole write in fresh subprocesses (encrypted lake vs plaintext)."""
    src = work / "input.arrow"
    with pa.OSFile(str(src), "wb") as sink, pa.ipc.new_file(sink, full.schema) as writer:
        writer.write_table(full)
    results = {}
    for mode in ("lake", "plain"):
        target = work / f"mem-{mode}"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.lake",
                "--memory-child",
                json.dumps(
                    {"mode": mode, "input": str(src), "out": str(target), "cfg": _cfg_json(cfg)}
                ),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory child ({mode}) failed:\n{proc.stderr}")
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        shutil.rmtree(target, ignore_errors=True)
    src.unlink()
    lake, plain = results["lake"], results["plain"]
    log(f"memory: lake {lake}, plain {plain}")
    sec = "4. memory"
    lake_w = lake["write_peak_mb"] if lake["write_peak_mb"] is not None else lake["peak_mb"]
    plain_w = plain["write_peak_mb"] if plain["write_peak_mb"] is not None else plain["peak_mb"]
    return [
        Row(
            sec,
            f"peak RSS, {cfg.rows:,}-row encrypted write (fresh process)",
            lake["peak_mb"],
            "MB",
            plain["peak_mb"],
            target="< 2048 MB",
            limit=2048.0,
            on="value",
            note=(
                f"VmHWM; includes the input table: RSS {lake['start_mb']:.0f} MB after imports, "
                f"{lake['loaded_mb']:.0f} MB with the input loaded; baseline: same child "
                "writing plaintext"
            ),
        ),
        Row(
            sec,
            "peak RSS during the write phase only (HWM reset after loading)",
            lake_w,
            "MB",
            plain_w,
            note=f"above loaded input: lake +{lake_w - lake['loaded_mb']:.0f} MB, "
            f"plaintext +{plain_w - plain['loaded_mb']:.0f} MB",
        ),
    ]


def _cfg_json(cfg: Config) -> dict[str, Any]:
    d = asdict(cfg)
    d["start"] = cfg.start.isoformat()
    return d


def _proc_status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_hwm() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_child(spec: dict[str, Any]) -> None:
    """Load the input (Arrow IPC, so no decode peak), split, write everything; print peak RSS.

    Peak RSS is VmHWM, not `ru_maxrss`: on Linux `ru_maxrss` survives exec, so a child forked
    from the (large) benchmark process would report the parent's RSS. VmHWM belongs to the
    exec'd image. After loading, VmHWM is reset so the write's own peak is measured too.
    """
    d = dict(spec["cfg"])
    d["start"] = dt.date.fromisoformat(d["start"])
    cfg = Config(**d)
    import amzigo_lab.lake.writer  # noqa: F401  (imports before the baseline reading)
    from amzigo_lab.config import load_settings  # noqa: F401

    start_mb = _proc_status_mb("VmHWM")
    with pa.OSFile(spec["input"], "rb") as f:
        full = pa.ipc.open_file(f).read_all()
    parts = split_parts(full, cfg)
    loaded_mb = _proc_status_mb("VmRSS")
    load_peak_mb = _proc_status_mb("VmHWM")
    reset = _reset_hwm()
    out = Path(spec["out"])
    if spec["mode"] == "lake":
        lake = open_home(out / "home", cfg)
        ms, _ = timed(lambda: lake_write_all(lake, parts))
        lake.close()
    else:
        ms, _ = timed(lambda: plain_write_all(out / "plain", parts, cfg.row_group_rows))
    write_peak_mb = _proc_status_mb("VmHWM")
    print(
        json.dumps(
            {
                "start_mb": start_mb,
                "loaded_mb": loaded_mb,
                "peak_mb": max(load_peak_mb, write_peak_mb),
                "write_peak_mb": write_peak_mb if reset else None,
                "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "write_ms": ms,
            }
        )
    )


# -- profiling (diagnosis) -------------------------------------------------------------------
def profile(cfg: Config, parts: list[Part], work: Path) -> str:
    """cProfile of one full lake write pass and of a few drops (for diagnosis)."""
    out = io.StringIO()
    lake = open_home(work / "prof-home", cfg)
    prof = cProfile.Profile()
    prof.enable()
    lake_write_all(lake, parts)
    prof.disable()
    out.write(f"== cProfile: lake.write x {len(parts)} (cumulative, top 30) ==\n")
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
    prof = cProfile.Profile()
    ids = [p.id for p in lake.catalog.partitions(dataset=DATASET)][: max(1, cfg.drops)]
    prof.enable()
    for pid in ids:
        lake.drop_partition(pid)
    prof.disable()
    out.write(f"== cProfile: drop_partition x {len(ids)} (cumulative, top 30) ==\n")
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
    lake.close()
    return out.getvalue()


# -- entry -----------------------------------------------------------------------------------
def run(cfg: Config, write_results: bool = True) -> int:
    work = Path(tempfile.mkdtemp(prefix="amzigo-bench-", dir="/tmp"))
    rows: list[Row] = []
    lake: Any = None
    try:
        log(f"generating {cfg.rows:,} rows over {cfg.days} days, {cfg.tenants} tenant(s)")
        gen_ms, full = timed(lambda: generate(cfg))
        parts = split_parts(full, cfg)
        log(f"generated in {gen_ms / 1000:.1f} s (not measured); {len(parts)} day-tables")
        w_rows, lake, plain = bench_write(cfg, parts, work)
        rows += w_rows
        rows += bench_read(cfg, lake.settings.home, plain, work)
        rows += bench_drop(cfg, parts, lake, work)
        lake.close()
        lake = None
        if cfg.memory:
            rows += bench_memory(cfg, full, work)
        prof_text = profile(cfg, parts, work) if cfg.profile else ""
    finally:
        if lake is not None:
            lake.close()
        if cfg.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    title = (
        f"amzigo_lab lake benchmark: {cfg.rows:,} rows, {cfg.days} days, {cfg.tenants} "
        f"tenant(s), row groups {cfg.row_group_rows:,}; medians of {cfg.reps} (write) / "
        f"{cfg.read_reps} (read) interleaved reps"
    )
    print(title)
    print(render_table(rows))
    if prof_text:
        print()
        print(prof_text)
    if write_results:
        path = write_json("lake", rows, {"config": _cfg_json(cfg), "title": title})
        print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory-child":
        memory_child(json.loads(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--read-child":
        read_child(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: python -m bench lake [options]  (see python -m bench --help)")
