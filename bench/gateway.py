"""Gateway benchmark: governed queries through the gateway (Arrow Flight, Unix socket) vs the
same governed session in-process, measured in the same run on the same encrypted lake.

Run: python -m bench gateway [--quick] [--rows 5000000] [--days 25] [--reps 7] [--scan-reps 3]

1. fixed cost per query: `SELECT 1` through `amzigo_lab.connect()` (a gateway client) minus
   the same through `amzigo_lab.governance.session.connect()` (no transport). Both re-validate
   the session, check the policy and append a durable audit record. Target <= 5 ms.
2. a ~1M-row result: a GROUP BY per order id over the first days (~1M orders, so ~1M groups),
   as Arrow. Target gateway / in-process <= 1.15x. `connect()` receives a result this large
   over the gateway's bulk socket (`gateway/bulk.py`); the "taken apart" figures in the note
   are the same call over the Flight stream alone (no bulk), for comparison.
3. Arrow throughput of a full scan (`SELECT * FROM orders_versions`, 5M rows): bytes of the
   Arrow result / seconds, end to end (decrypt, decode, serialise, socket, client). Target
   >= 500 MB/s through the gateway.

   Also measured alone: the streaming phase of the same call at the client (bytes after the
   first record batch / time from the first batch to the last), i.e. the socket's own rate;
   the server materialises the result before it streams, so this excludes the scan.

4. the gateway's hot cache (issue 17, `lake/hot_cache.py`): the same governed aggregation
   through a gateway with the cache on vs one with it off (`hot_cache_mb = 0`), all days and
   the last 7 days. "repeat": the cache warm; "first": the cache emptied (the operator's
   `hot_cache.release`, as a drop asks) before every timed query, so it decrypts every column
   of every file. Info rows (ratio < 1: the cache is faster). Rows 1-3 run with the cache off
   on both sides, so they still measure the transport.

The gateway is a real process started with `python -m amzigo_lab.gateway --home H` (what
`amzigo gateway` and on-demand starts run); its socket is the home's `gateway.sock`. Data is
written once through `lake.write` (real encrypted partitions, not timed). The in-process
session runs on a copy of the home (same files, same key), so the two processes do not append
to one audit log: interleaved appends from two processes make each append reload the other's
records, a cost that does not exist in production (only the gateway opens a home). Variants
are interleaved (alternating order) and each row reports the median over the repetitions.
Exit status is 0 even when a target is missed (the table says FAIL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
from argon2 import PasswordHasher

from bench.common import Row, log, median, render_table, timed, write_json

TENANT = "acme"
PURPOSE = "sales_analysis"
PASSWORD = "Velvet-Harbor-Lamp-42"
MB = 1_000_000  # throughput in MB/s (10^6 bytes), as link speeds are quoted
START = dt.date(2026, 1, 1)
FULL = {"rows": 5_000_000, "days": 25, "reps": 7, "scan_reps": 3, "fixed_reps": 60}
QUICK = {"rows": 500_000, "days": 25, "reps": 3, "scan_reps": 3, "fixed_reps": 30}
ROOT = Path(__file__).resolve().parent.parent


def build(root: Path, rows: int, days: int) -> tuple[Any, str]:
    """A home with `rows` orders of one tenant over `days` daily partitions, and an analyst's
    login token (argon2 with small costs: the bench measures queries, not logins)."""
    from amzigo_lab.config import load_settings
    from amzigo_lab.governance.context import Governance
    from amzigo_lab.home import init_home
    from amzigo_lab.synthetic import bulk_orders

    settings = load_settings(root / "home", env={})
    lake = init_home(settings)
    full = bulk_orders(42, rows, days, START)
    day = full.column("day").to_numpy()
    data = full.drop_columns(["day"])
    offset = 0
    for d in range(days):
        n = int((day == d).sum())
        lake.write("orders", TENANT, START + dt.timedelta(days=d), data.slice(offset, n), f"b{d}")
        offset += n
    lake.close()
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    with Governance.open(settings, hasher=hasher) as gov:
        enrol = gov.identity.add_user("bench", ["analyst"], password=PASSWORD)
        query = urllib.parse.urlparse(enrol.provisioning_uri).query
        secret = urllib.parse.parse_qs(query)["secret"][0]
        gov.grants.grant("bench", TENANT, actor="bench")
        token = gov.identity.authenticate("bench", PASSWORD, pyotp.TOTP(secret).now()).token
    return settings, token


def start_gateway(home: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """A gateway process for `home` (as `amzigo gateway` runs it); returns once it answers."""
    from amzigo_lab.client import protocol
    from amzigo_lab.client.transport import GatewayClient

    env = {k: v for k, v in os.environ.items() if k != protocol.ADDRESS_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "amzigo_lab.gateway", "--home", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
        )
    address = protocol.default_address(home)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited rc={proc.returncode}: see {log_path}")
        try:
            with GatewayClient(address) as client:
                client.health(timeout=2.0)
            return proc
        except protocol.GatewayUnavailable:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gateway did not answer within 60 s: see {log_path}")


def stop_gateway(home: Path, proc: subprocess.Popen[bytes]) -> None:
    """Graceful stop through the operator's `shutdown` action; SIGKILL only as a fallback."""
    from amzigo_lab.client import protocol
    from amzigo_lab.client.service import operator_token
    from amzigo_lab.client.transport import GatewayClient

    try:
        with GatewayClient(protocol.default_address(home), operator_token(home)) as client:
            client.action(protocol.SHUTDOWN)
        proc.wait(timeout=60)
    except Exception as exc:  # report and make sure it is gone
        log(f"gateway did not stop cleanly ({exc}); killing pid {proc.pid}")
        proc.kill()
        proc.wait()


def interleave(
    fns: dict[str, Callable[[], Any]], reps: int, label: str
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Run each variant `reps` times, alternating the order; ms per call and the last result."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    last: dict[str, Any] = {}
    names = list(fns)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else reversed(names):
            ms, last[name] = timed(fns[name])
            times[name].append(ms)
        if label:
            log(
                f"{label} rep {rep + 1}/{reps}: "
                + ", ".join(f"{k} {times[k][-1]:.0f} ms" for k in names)
            )
    return times, last


class Phases:
    """The same gateway call over the Flight stream alone (its ticket does not ask for the bulk
    socket), taken apart at the client, on a session of its own: time to the first record
    batch (the query runs and is audited in the gateway, which materialises the result before
    streaming it) and the streaming phase after it (the socket's own rate)."""

    def __init__(self, settings: Any, token: str) -> None:
        import pyarrow.flight as flight

        from amzigo_lab.client import protocol

        self._flight, self._protocol = flight, protocol
        self._client = flight.FlightClient(protocol.default_address(settings.home))
        bearer = f"Bearer {token}".encode()
        self._options = flight.FlightCallOptions(headers=[(b"authorization", bearer)])
        [answer] = self._action(protocol.SESSION_OPEN, {"purpose": PURPOSE})
        self._handle = protocol.decode(answer.body.to_pybytes())["handle"]
        self.first_ms: list[float] = []
        self.stream_ms: list[float] = []
        self.rates: list[float] = []

    def _action(self, name: str, body: dict[str, Any]) -> list[Any]:
        action = self._flight.Action(name, self._protocol.encode(body))
        return list(self._client.do_action(action, self._options))

    def run(self, query: str) -> int:
        """One query; records its phases and returns the bytes of the Arrow result."""
        p = self._protocol
        ticket = {"op": p.TICKET_SQL, "query": query, "via": "sql", "handle": self._handle}
        t0 = time.perf_counter()
        reader = self._client.do_get(self._flight.Ticket(p.encode(ticket)), self._options)
        first = reader.read_chunk().data.nbytes
        t1, rest = time.perf_counter(), 0
        while True:
            try:
                rest += reader.read_chunk().data.nbytes
            except StopIteration:
                break
        t2 = time.perf_counter()
        self.first_ms.append((t1 - t0) * 1000)
        self.stream_ms.append((t2 - t1) * 1000)
        self.rates.append(rest / MB / (t2 - t1))
        return first + rest

    def close(self) -> None:
        self._action(self._protocol.SESSION_CLOSE, {"handle": self._handle})
        self._client.close()


def measure(settings: Any, local_settings: Any, token: str, cfg: dict[str, int]) -> list[Row]:
    import amzigo_lab
    from amzigo_lab.governance.session import connect as connect_in_process

    remote = amzigo_lab.connect(PURPOSE, home=settings, token=token)
    local = connect_in_process(PURPOSE, home=local_settings, token=token)
    rows: list[Row] = []
    try:
        # -- 1. fixed cost -----------------------------------------------------------------
        one = "SELECT 1 AS x"
        fixed = {"gateway": lambda: remote.sql(one), "in-process": lambda: local.sql(one)}
        interleave(fixed, 5, "")  # warm-up: connections, plans, first audit appends
        t, _ = interleave(fixed, cfg["fixed_reps"], "")
        g1, l1 = median(t["gateway"]), median(t["in-process"])
        log(f"fixed cost: gateway {g1:.2f} ms, in-process {l1:.2f} ms")
        rows.append(
            Row("1. fixed cost", "per query (SELECT 1), gateway minus in-process", g1 - l1, "ms",
                None, "<= 5 ms", 5.0, "value",
                note=f"gateway {g1:.2f} ms vs in-process {l1:.2f} ms (medians of "
                f"{cfg['fixed_reps']}); both re-validate the session and append a durable "
                "audit record", samples=t["gateway"], baseline_samples=t["in-process"])
        )  # fmt: skip

        # -- 2. ~1M-row result -------------------------------------------------------------
        agg_days = max(1, round(cfg["days"] * 1_000_000 / cfg["rows"])) if cfg["rows"] else 1
        agg_days = min(agg_days, cfg["days"])
        last = (START + dt.timedelta(days=agg_days - 1)).isoformat()
        agg = (
            "SELECT amazon_order_id, any_value(marketplace_id) AS marketplace_id, "
            "sum(order_total) AS total, count(*) AS n FROM orders_versions "
            f"WHERE ingest_date <= DATE '{last}' GROUP BY amazon_order_id"
        )
        phases = Phases(settings, token)
        fns = {
            "gateway": lambda: remote.sql(agg, arrow=True),
            "in-process": lambda: local.sql(agg, arrow=True),
            "gateway, phases": lambda: phases.run(agg),
        }
        interleave(fns, 1, "")
        phases.close()
        phases = Phases(settings, token)  # only the measured reps
        t, res = interleave(fns, cfg["reps"], "1M-row result")
        phases.close()
        n_rows = res["gateway"].num_rows
        assert n_rows == res["in-process"].num_rows, "gateway and in-process disagree"
        mb = res["gateway"].nbytes / MB
        rows.append(
            Row("2. result transfer", f"GROUP BY -> {n_rows:,} rows ({mb:.0f} MB Arrow)",
                median(t["gateway"]), "ms", median(t["in-process"]), "ratio <= 1.15", 1.15,
                note=f"gateway / in-process; {agg_days} of {cfg['days']} days, Arrow result; "
                f"over Flight alone: {median(phases.first_ms):.0f} ms to the first batch "
                f"(query + audit in the gateway) + {median(phases.stream_ms):.0f} ms streaming "
                f"= {median(phases.first_ms) + median(phases.stream_ms):.0f} ms",
                samples=t["gateway"], baseline_samples=t["in-process"])
        )  # fmt: skip
        del res

        # -- 3. full-scan throughput -------------------------------------------------------
        scan = "SELECT * FROM orders_versions"
        phases = Phases(settings, token)
        fns = {
            "gateway": lambda: remote.sql(scan, arrow=True).nbytes,
            "in-process": lambda: local.sql(scan, arrow=True).nbytes,
            "gateway, phases": lambda: phases.run(scan),
        }
        t, res = interleave(fns, cfg["scan_reps"], "full scan")
        phases.close()
        rates = phases.rates
        nbytes = int(res["gateway"])
        g_ms, l_ms = median(t["gateway"]), median(t["in-process"])
        g_mbs, l_mbs = nbytes / MB / (g_ms / 1000), nbytes / MB / (l_ms / 1000)
        rows.append(
            Row("3. scan throughput",
                f"Arrow over the socket, streaming phase of a {cfg['rows']:,}-row scan",
                median(rates), "MB/s", None, ">= 500 MB/s", 500.0, "min",
                note="client side: bytes after the first record batch / first-to-last batch "
                f"time; runs {', '.join(f'{r:,.0f}' for r in rates)} MB/s; "
                f"{median(phases.first_ms):.0f} ms to the first batch + "
                f"{median(phases.stream_ms):.0f} ms streaming", samples=rates)
        )  # fmt: skip
        rows.append(
            Row("3. scan throughput",
                f"end to end, SELECT * of {cfg['rows']:,} rows ({nbytes / MB:,.0f} MB Arrow)",
                g_mbs, "MB/s", l_mbs, "info; baseline in-process",
                note=f"medians {g_ms:.0f} ms through the gateway vs {l_ms:.0f} ms in-process; "
                "both include the scan (decrypt, decode); ratio < 1 = slower",
                samples=t["gateway"], baseline_samples=t["in-process"])
        )  # fmt: skip
    finally:
        remote.close()
        local.close()
    return rows


def measure_hot(off: Any, hot: Any, token: str, cfg: dict[str, int]) -> list[Row]:
    """Section 4: governed queries through a gateway with the hot cache vs one without."""
    import amzigo_lab
    from amzigo_lab.client import protocol
    from amzigo_lab.client.service import operator_token
    from amzigo_lab.client.transport import GatewayClient

    week = (START + dt.timedelta(days=max(0, cfg["days"] - 7))).isoformat()
    queries = {
        "all days": "SELECT marketplace_id, count(*) AS n, sum(order_total) AS total "
        "FROM orders_versions GROUP BY 1 ORDER BY 1",
        "last 7 days": "SELECT marketplace_id, count(*) AS n, sum(order_total) AS total "
        f"FROM orders_versions WHERE ingest_date >= DATE '{week}' GROUP BY 1 ORDER BY 1",
    }
    cold = amzigo_lab.connect(PURPOSE, home=off, token=token)
    warm = amzigo_lab.connect(PURPOSE, home=hot, token=token)
    operator = GatewayClient(protocol.default_address(hot.home), operator_token(hot.home))

    def first(query: str) -> Any:
        operator.action(protocol.HOT_CACHE_RELEASE, {"reason": "bench first query"})
        return warm.sql(query, arrow=True)

    rows: list[Row] = []
    try:
        for label, query in queries.items():
            fns = {"cache off": lambda q=query: cold.sql(q, arrow=True),
                   "hot, repeat": lambda q=query: warm.sql(q, arrow=True)}  # fmt: skip
            interleave(fns, 2, "")  # warm-up: the cache loads, plans, first audit appends
            t, res = interleave(fns, cfg["reps"], f"hot cache, repeat, {label}")
            assert res["cache off"].equals(res["hot, repeat"]), "cache on and off disagree"
            rows.append(
                Row("4. hot cache", f"repeat query, {label} (gateway, cache warm)",
                    median(t["hot, repeat"]), "ms", median(t["cache off"]), "info",
                    note="the same governed aggregation through a gateway with the cache off; "
                    "ratio < 1: faster", samples=t["hot, repeat"],
                    baseline_samples=t["cache off"])
            )  # fmt: skip
            fns = {"cache off": lambda q=query: cold.sql(q, arrow=True),
                   "hot, first": lambda q=query: first(q)}  # fmt: skip
            t, res = interleave(fns, cfg["reps"], f"hot cache, first, {label}")
            assert res["cache off"].equals(res["hot, first"]), "cache on and off disagree"
            rows.append(
                Row("4. hot cache", f"first query, {label} (gateway, cache emptied before)",
                    median(t["hot, first"]), "ms", median(t["cache off"]), "info",
                    note="includes the hot_cache.release call (one round trip, audited) and "
                    "the decryption of every column of every file", samples=t["hot, first"],
                    baseline_samples=t["cache off"])
            )  # fmt: skip
    finally:
        cold.close()
        warm.close()
        operator.close()
    return rows


def _set_hot_cache(home: Path, mb: int) -> None:
    with (home / "config.toml").open("a", encoding="utf-8") as fh:
        fh.write(f"\nhot_cache_mb = {mb}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gateway", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500k rows, 3 reps (< 1 minute)")
    parser.add_argument("--rows", type=int, help="orders in the lake (default 5,000,000)")
    parser.add_argument("--days", type=int, help="daily partitions (default 25)")
    parser.add_argument("--reps", type=int, help="repetitions of the ~1M-row query (default 7)")
    parser.add_argument("--scan-reps", type=int, help="repetitions of the full scan (default 3)")
    parser.add_argument("--fixed-reps", type=int, help="repetitions of SELECT 1 (default 60)")
    parser.add_argument("--dir", type=Path, default=None, help="temp dir on the target disk")
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    for name in ("rows", "days", "reps", "scan_reps", "fixed_reps"):
        if getattr(args, name) is not None:
            cfg[name] = getattr(args, name)
    if min(cfg["reps"], cfg["scan_reps"]) < 3 or cfg["rows"] < cfg["days"] or cfg["days"] < 1:
        parser.error("need --reps and --scan-reps >= 3, --days >= 1 and --rows >= --days")

    root = Path(tempfile.mkdtemp(prefix="amzigo-gwbench-", dir=args.dir))
    proc: subprocess.Popen[bytes] | None = None
    hot_proc: subprocess.Popen[bytes] | None = None
    try:
        log(f"writing {cfg['rows']:,} orders in {cfg['days']} encrypted partitions")
        ms, (settings, token) = timed(lambda: build(root, cfg["rows"], cfg["days"]))
        from amzigo_lab.config import load_settings

        shutil.copytree(settings.home, root / "home-in-process")
        local_settings = load_settings(root / "home-in-process", env={})
        shutil.copytree(settings.home, root / "home-hot")
        _set_hot_cache(settings.home, 0)  # rows 1-3: the transport, both sides decrypting
        _set_hot_cache(root / "home-hot", 2048)
        hot_settings = load_settings(root / "home-hot", env={})
        log(f"built in {ms / 1000:.1f} s (not measured); starting the gateways")
        proc = start_gateway(settings.home, root / "gateway.log")
        rows = measure(settings, local_settings, token, cfg)
        hot_proc = start_gateway(hot_settings.home, root / "gateway-hot.log")
        rows += measure_hot(settings, hot_settings, token, cfg)
    finally:
        if proc is not None:
            stop_gateway(settings.home, proc)
        if hot_proc is not None:
            stop_gateway(root / "home-hot", hot_proc)
        shutil.rmtree(root, ignore_errors=True)

    title = (
        f"amzigo_lab gateway benchmark: {cfg['rows']:,} orders, {cfg['days']} partitions, "
        f"Arrow Flight over a Unix socket vs in-process, and the hot cache on vs off; medians "
        "of interleaved reps"
    )
    print(title)
    print(render_table(rows))
    if not args.no_json:
        print(f"\nresults: {write_json('gateway', rows, {'config': cfg, 'title': title})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
