"""Shared helpers for the benchmarks: timing, result rows, the printed table, JSON output."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One line of the report: a measured value, its baseline, and the target it is held to.

    `target` is a human-readable rule; `limit` + `on` say which number it applies to:
    on="ratio" checks ratio <= limit, on="value" checks value < limit, on="min" checks
    value >= limit (higher is better: throughput).
    """

    section: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    limit: float | None = None
    on: str = "ratio"
    note: str = ""
    samples: list[float] = field(default_factory=list)
    baseline_samples: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def status(self) -> str:
        if self.limit is None:
            return "info"
        subject = self.ratio if self.on == "ratio" else self.value
        if subject is None:
            return "n/a"
        if self.on == "min":
            return "PASS" if subject >= self.limit else "FAIL"
        ok = subject <= self.limit if self.on == "ratio" else subject < self.limit
        return "PASS" if ok else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["status"] = self.status
        return d


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(milliseconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000.0, out


def fsync_path(path: Path | str) -> None:
    """fsync a file or a directory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fmt_num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if unit == "MB" or abs(x) >= 100:
        s = f"{x:,.0f}"
    elif abs(x) >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.2f}"
    return f"{s} {unit}".strip()


def render_table(rows: Sequence[Row]) -> str:
    """A fixed-width table: metric, value, baseline, ratio, target, status."""
    header = ("metric", "value", "baseline", "ratio", "target", "status")
    body = []
    for r in rows:
        body.append(
            (
                r.metric,
                fmt_num(r.value, r.unit),
                fmt_num(r.baseline, r.unit),
                "-" if r.ratio is None else f"{r.ratio:.2f}x",
                r.target or "-",
                r.status,
            )
        )
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    align = ["<", ">", ">", ">", "<", "<"]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True))

    out = [line(header), "  ".join("-" * w for w in widths)]
    section = None
    for r, b in zip(rows, body, strict=True):
        if r.section != section:
            section = r.section
            out.append(f"[{section}]")
        out.append(line(b))
        if r.note:
            out.append(" " * 4 + "- " + r.note)
    return "\n".join(out)


def environment() -> dict[str, Any]:
    """Versions and host facts recorded with each run."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    for mod in ("pyarrow", "duckdb", "polars", "ibis", "numpy"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as exc:  # a missing engine is reported, not fatal
            info[mod] = f"unavailable: {exc}"
    return info


def write_json(suite: str, rows: Sequence[Row], meta: dict[str, Any]) -> Path:
    """Write `bench/results/<suite>-<timestamp>.json` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{suite}-{stamp}.json"
    payload = {
        "suite": suite,
        "created_at": stamp,
        "environment": environment(),
        "meta": meta,
        "rows": [r.to_dict() for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def log(msg: str) -> None:
    """Progress to stderr (the table goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
