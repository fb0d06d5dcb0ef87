"""Benchmark of durable audit appends: single `append` and group-commit `append_many`.

Run: .venv/bin/python bench/bench_audit.py [--n 5000] [--dir /path/on/the/target/disk]
Every append is durable (fdatasync into pre-zeroed segment space) before it returns.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

from amzigo_lab.governance.audit import AuditEvent, AuditLog


def events(n: int) -> list[AuditEvent]:
    """n realistic events (prebuilt, so only the append is timed)."""
    return [
        AuditEvent.new(
            action="data.read",
            actor=f"u-{i % 17}",
            session="s-3f9a2c",
            resource="dataset:orders",
            tenant="t-acme",
            purpose="reporting",
            decision="allow",
            reason="report orders_daily",
            row_count=i,
            request_id=f"req-{i:08d}",
        )
        for i in range(n)
    ]


def main() -> None:
    """Print appends/s for single durable appends, threaded appends and group commit."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(dir=args.dir))
    key = secrets.token_bytes(32)
    log = AuditLog(root / "log", root / "checkpoints", lambda: key, root / "keys" / "sign.key")
    evs = events(args.n)

    t = time.perf_counter()
    for e in evs:
        log.append(e)
    single = args.n / (time.perf_counter() - t)

    per = args.n // args.threads

    def worker(chunk: list[AuditEvent]) -> None:
        for e in chunk:
            log.append(e)

    threads = [
        threading.Thread(target=worker, args=(evs[k * per : (k + 1) * per],))
        for k in range(args.threads)
    ]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    threaded = per * args.threads / (time.perf_counter() - t)

    t = time.perf_counter()
    for i in range(0, args.n, args.batch):
        log.append_many(evs[i : i + args.batch])
    group = args.n / (time.perf_counter() - t)

    t = time.perf_counter()
    report = log.verify()
    verify_rate = report.records_checked / (time.perf_counter() - t)
    log.close()
    fd = os.open(root / "probe", os.O_WRONLY | os.O_CREAT)
    t = time.perf_counter()
    for _ in range(1000):
        os.write(fd, b"x" * 400)
        os.fsync(fd)
    raw = 1000 / (time.perf_counter() - t)
    os.close(fd)
    shutil.rmtree(root)
    print(f"single append (durable):        {single:9.0f} appends/s")
    print(f"append from {args.threads} threads (grouped):  {threaded:9.0f} appends/s")
    print(f"append_many batch={args.batch} (1 sync): {group:9.0f} appends/s")
    print(f"verify:                         {verify_rate:9.0f} records/s (ok={report.ok})")
    print(f"raw write+fsync of 400 B:       {raw:9.0f} /s (the disk's ceiling)")


if __name__ == "__main__":
    main()
