"""`python -m bench [SUITE] [options]`: run the benchmarks and print medians and ratios.

Suites: lake (default), ingest, governance, retention, reports, dashboard, gateway, scale, all.
Options after the suite name go to that suite (`python -m bench reports --help`).

Examples:
    python -m bench all                   # every suite, full sizes (about 15 minutes)
    python -m bench                       # full lake benchmark (5M rows, 60 days)
    python -m bench lake --quick          # smoke run, < 60 s
    python -m bench lake --rows 2000000 --tenants 3 --reps 3
    python -m bench lake --profile        # adds cProfile of the write and drop paths
    python -m bench gateway --quick       # gateway vs in-process, 500k rows

Exit status is 0 even when a target is missed (the table says FAIL); non-zero only on errors.
"""

from __future__ import annotations

import argparse
import sys

from bench.lake import Config, run

QUICK = {"rows": 300_000, "reps": 3, "read_reps": 3, "drops": 3}


SUITES = ("ingest", "governance", "retention", "reports", "dashboard", "gateway", "scale")


def run_suite(name: str, argv: list[str]) -> int:
    """Run one of the other suites' `main` with its own arguments."""
    import importlib

    module = importlib.import_module(f"bench.{name}")
    if name == "dashboard":  # argparse reads sys.argv there
        sys.argv = [f"bench.{name}", *argv]
        module.main()
        return 0
    return int(module.main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUITES:
        return run_suite(argv[0], argv[1:])
    if argv and argv[0] == "all":
        status = main(["lake", *argv[1:]])
        for name in SUITES:
            status |= run_suite(name, [])
        return status
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("suite", nargs="?", default="lake", choices=["lake"])
    parser.add_argument("--quick", action="store_true", help="small smoke run (< 60 s)")
    parser.add_argument("--rows", type=int, help="rows of synthetic orders (default 5,000,000)")
    parser.add_argument("--days", type=int, help="daily partitions (default 60)")
    parser.add_argument("--tenants", type=int, help="tenants sharing the rows (default 1)")
    parser.add_argument("--reps", type=int, help="write repetitions (default 5, min 3)")
    parser.add_argument("--read-reps", type=int, help="aggregation repetitions (default 5)")
    parser.add_argument("--drops", type=int, help="partitions dropped per size (default 5)")
    parser.add_argument("--row-group-rows", type=int, help="rows per row group (default 131072)")
    parser.add_argument("--seed", type=int, help="data seed (default 42)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocess")
    parser.add_argument("--profile", action="store_true", help="append cProfile of write/drop")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir for inspection")
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)

    values = dict(QUICK) if args.quick else {}
    for name in ("rows", "days", "tenants", "reps", "read_reps", "drops", "row_group_rows", "seed"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    cfg = Config(**values, memory=not args.no_memory, profile=args.profile, keep=args.keep)
    if cfg.reps < 3 or cfg.read_reps < 3:
        parser.error("--reps and --read-reps must be at least 3")
    if cfg.tenants < 1 or cfg.tenants > 26 or cfg.days < 1 or cfg.rows < cfg.days:
        parser.error("need 1 <= tenants <= 26, days >= 1 and rows >= days")
    return run(cfg, write_results=not args.no_json)


if __name__ == "__main__":
    sys.exit(main())
