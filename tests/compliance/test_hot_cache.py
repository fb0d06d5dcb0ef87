"""Issue 17: the hot cache (decrypt once, query many) gives the same rows and never outlives a
crypto-shred, in this process or another one."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import duckdb
import ibis
import pytest

from amzigo_lab.compliance import purge
from amzigo_lab.lake import Lake, hot_cache
from amzigo_lab.lake.hot_cache import HotCacheBusy
from tests.compliance.cache_holder import start_holder
from tests.compliance.conftest import Clock, buyers
from tests.lake.helpers import orders

D0 = dt.date(2026, 3, 1)
DAYS = [D0 + dt.timedelta(days=i) for i in range(4)]
AGG = "SELECT tenant, count(*), sum(order_total) FROM t GROUP BY 1 ORDER BY 1"


@pytest.fixture
def filled(lake: Lake) -> Iterator[Lake]:
    for i, day in enumerate(DAYS):
        for tenant in ("acme", "bluebird"):
            lake.write("orders", tenant, day, orders(40 + i, f"{tenant}-{i}-"), f"o{i}")
    yield lake
    hot_cache.disable(lake)


def _agg(scan) -> list[tuple]:  # type: ignore[no-untyped-def]
    con = duckdb.connect()
    scan.duckdb(con, name="t")
    return con.sql(AGG).fetchall()


def test_cached_reads_give_the_same_rows_as_the_dataset(filled: Lake) -> None:
    cold = {
        "all": _agg(filled.scan("orders")),
        "acme": _agg(filled.scan("orders", ["acme"], DAYS[1], DAYS[2])),
    }
    latest_cold = filled.scan("orders").latest().sort_by("amazon_order_id")
    cache = hot_cache.enable(filled, 64 * 1024 * 1024)
    for _ in range(2):  # first (loads) and repeat (hits)
        assert _agg(filled.scan("orders")) == cold["all"]
        assert _agg(filled.scan("orders", ["acme"], DAYS[1], DAYS[2])) == cold["acme"]
    assert cache.hits >= 3 and cache.misses == 1
    backend = ibis.duckdb.connect()
    t = filled.scan("orders", ["acme"], DAYS[1], DAYS[2]).ibis(backend, name="t")
    assert int(t.count().execute()) == 41 + 42
    assert filled.scan("orders").latest().sort_by("amazon_order_id").equals(latest_cold)
    rel = filled.scan("orders", ["acme"]).duckdb(duckdb.connect(), name="t")
    types = dict(zip(rel.columns, [str(x) for x in rel.types], strict=True))
    assert types["ingest_date"] == "DATE" and types["order_total"] == "DECIMAL(18,2)"


def test_budget_is_kept_and_a_scan_too_big_reads_the_dataset(filled: Lake) -> None:
    one_day = filled.scan("orders", ["acme"], DAYS[0], DAYS[0])
    size = one_day.to_arrow().nbytes
    cache = hot_cache.enable(filled, int(size * 2.5), protect_s=0)  # plain LRU
    assert _agg(filled.scan("orders")) == _agg(filled.scan("orders"))  # 8 files: too big
    assert cache.nbytes == 0 and not cache.partition_ids()
    assert cache.too_big == 2 and cache.misses == 0  # not even decrypted: too big on disk
    for day in DAYS:  # one file each: least recently used evicted beyond 2 files
        _agg(filled.scan("orders", ["acme"], day, day))
        assert cache.nbytes <= cache.budget
    assert len(cache.partition_ids()) == 2
    last_two = {p.id for d in DAYS[2:] for p in filled.catalog.partitions("orders", ["acme"], d, d)}
    assert cache.partition_ids() == last_two


def test_entries_in_use_are_not_evicted_for_another_scan(filled: Lake) -> None:
    """Two working sets that do not fit together: the one in use stays cached, the other
    reads the dataset (no load that would evict it on every alternation)."""
    size = filled.scan("orders", ["acme"], DAYS[0], DAYS[0]).to_arrow().nbytes
    expected = _agg(filled.scan("orders", ["acme"], DAYS[2], DAYS[2]))  # before the cache
    cache = hot_cache.enable(filled, int(size * 2.5))  # protect_s: 60 s
    first = [filled.scan("orders", ["acme"], d, d) for d in DAYS[:2]]
    other = filled.scan("orders", ["acme"], DAYS[2], DAYS[2])
    for scan in first:
        _agg(scan)
    kept = cache.partition_ids()
    assert len(kept) == 2
    for _ in range(3):
        assert _agg(other) == expected  # read from the dataset
        assert cache.partition_ids() == kept
    assert cache.crowded == 3 and cache.misses <= 3  # loaded at most once: then its size is known
    assert cache.nbytes <= cache.budget


def test_a_drop_empties_the_cache_before_the_keys_are_destroyed(filled: Lake) -> None:
    cache = hot_cache.enable(filled, 64 * 1024 * 1024)
    _agg(filled.scan("orders"))
    victim = filled.catalog.partitions("orders", ["acme"], DAYS[0], DAYS[0])[0]
    assert victim.id in cache.partition_ids()
    seen: dict[str, set[int]] = {}

    def hook(step: str) -> None:  # the lake's own fault hook, called between drop steps
        seen[step] = cache.partition_ids()
        if step == "drop_marked":  # a read between the mark and the key destruction
            _agg(filled.scan("orders"))
            seen["read_while_dropping"] = cache.partition_ids()

    filled.fault_hook = hook
    filled.drop_partition(victim.id, reason="test")
    assert seen["drop_marked"] == set() and seen["keys_destroyed"] == set()
    assert seen["read_while_dropping"] == set()  # nothing cached while a drop runs
    after = _agg(filled.scan("orders"))
    assert victim.id not in cache.partition_ids() and cache.partition_ids()
    assert after == [
        ("acme", 41 + 42 + 43, after[0][2]),
        ("bluebird", 40 + 41 + 42 + 43, after[1][2]),
    ]


def test_purge_then_the_cache_does_not_serve_the_purged_rows(lake: Lake, clock: Clock) -> None:
    lake.write("order_buyers", "acme", D0, buyers([D0], person="Shredded Canary"), "b1")
    clock.set_day(D0 + dt.timedelta(days=10))  # purged 30 days after ingestion: not yet due
    lake.write("order_buyers", "acme", D0 + dt.timedelta(days=10), buyers([None], "k"), "b2")
    cache = hot_cache.enable(lake, 64 * 1024 * 1024)
    try:
        con = duckdb.connect()
        lake.scan("order_buyers").duckdb(con, name="t")
        names = {r[0] for r in con.sql("SELECT buyer_name FROM t").fetchall()}
        assert "Shredded Canary b0" in names and cache.nbytes > 0
        cached = cache.partition_ids()
        clock.set_day(D0 + dt.timedelta(days=31))
        assert purge(lake).certificate_id
        dropped = {p.id for p in lake.catalog.partitions("order_buyers", states=("dropped",))}
        assert dropped and dropped <= cached
        assert not cache.partition_ids() & dropped
        con = duckdb.connect()
        lake.scan("order_buyers").duckdb(con, name="t")
        names = {r[0] for r in con.sql("SELECT buyer_name FROM t").fetchall()}
        assert names == {"Canary Buyer k0"}
        assert not cache.partition_ids() & dropped
    finally:
        hot_cache.disable(lake)


def test_a_drop_is_refused_while_another_process_caches_decrypted_data(filled: Lake) -> None:
    home = filled.settings.home
    proc = start_holder(home)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        held = json.loads(proc.stdout.readline())
        victim = filled.catalog.partition(held[0])
        with pytest.raises(HotCacheBusy, match="Nothing was changed"):
            filled.drop_partition(victim.id, reason="test")
        # nothing changed: still live, key still there, rows still readable
        assert filled.catalog.partition(victim.id).state == "live"
        scan = filled.scan("orders", [victim.tenant], victim.ingest_date, victim.ingest_date)
        assert scan.to_arrow().num_rows == victim.row_count
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "cleared"
        record = filled.drop_partition(victim.id, reason="test")
        assert record.verification["ok"]
    finally:
        proc.stdin.close()
        proc.wait()


def test_rotation_empties_the_cache(filled: Lake) -> None:
    cache = hot_cache.enable(filled, 64 * 1024 * 1024)
    before = _agg(filled.scan("orders"))
    assert cache.nbytes > 0
    filled.rotate_master_key()
    assert cache.nbytes == 0 and not cache.partition_ids()
    assert _agg(filled.scan("orders")) == before


def test_nothing_is_cached_while_a_drop_intends_to_destroy_keys(filled: Lake) -> None:
    """A drop holds its intent lock from before it asks holders to let go until it ends: an
    insert meanwhile (here: this process, through another open file) reads the dataset."""
    import fcntl

    cache = hot_cache.enable(filled, 64 * 1024 * 1024)
    with open(filled.settings.state_dir / "hot-cache.drop.lock", "a") as intent:
        fcntl.flock(intent, fcntl.LOCK_EX)
        before = _agg(filled.scan("orders"))
        assert cache.nbytes == 0 and cache.skipped == 1
    assert _agg(filled.scan("orders")) == before and cache.nbytes > 0


def test_a_drop_asks_the_holder_through_the_injected_callback(filled: Lake) -> None:
    home = filled.settings.home
    proc = start_holder(home)
    assert proc.stdin is not None and proc.stdout is not None
    asked: list[str] = []

    def refuse() -> None:
        asked.append("refuse")
        raise RuntimeError("the holder did not answer")

    def let_go() -> None:  # what the CLI's callback has the gateway do
        asked.append("let go")
        proc.stdin.write("\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        assert proc.stdout.readline().strip() == "cleared"  # type: ignore[union-attr]

    try:
        held = json.loads(proc.stdout.readline())
        victim = filled.catalog.partition(held[0])
        hot_cache.on_busy(filled, refuse)
        with pytest.raises(HotCacheBusy, match="did not answer"):
            filled.drop_partition(victim.id, reason="test")
        assert filled.catalog.partition(victim.id).state == "live"
        hot_cache.on_busy(filled, let_go)
        record = filled.drop_partition(victim.id, reason="test")
        assert record.verification["ok"] and asked == ["refuse", "let go"]
        filled.drop_partition(victim.id, reason="test")  # nobody holds: not asked again
        assert asked == ["refuse", "let go"]
    finally:
        hot_cache.on_busy(filled, None)
        proc.stdin.close()
        proc.wait()
