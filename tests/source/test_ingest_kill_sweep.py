"""SIGKILL sweep of `amzigo ingest` (issue 12): 20 kills at random times of a whole ingest.

Each run is `amzigo ingest --tenant acme-outdoor --backfill-days 7` (all streams, the real
python-amazon-sp-api client, the embedded sandbox at its 1000x clock) on a fresh sandbox home,
forked from tests/source/ingest_child.py (imports done once, so kill times fall in the ingest
itself). The kill times are seeded and stratified over the duration of an uninterrupted run
measured first; after each kill `amzigo lake verify` and `amzigo doctor` are OK and a re-run
completes, and then the rows of every dataset (latest versions) and the Sales & Traffic figures
per marketplace and currency are those of the uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.config import load_settings
from amzigo_lab.home import open_lake
from amzigo_lab.source.streams import STREAMS
from tests.source.conftest import ACME, SEED, TODAY

ROOT = Path(__file__).resolve().parents[2]
ENV = {"AMZIGO_SANDBOX_TODAY": TODAY.isoformat(), "AMZIGO_SANDBOX_SEED": str(SEED)}
KILLS = 20
RNG_SEED = 12
SALES_TRAFFIC = ("sales_traffic_by_date", "sales_traffic_by_asin")
Figures = dict[tuple[str, ...], Any]


class ForkServer:
    """tests/source/ingest_child.py: `amzigo ARGS` in forked children."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMZIGO_")}
        env.update(ENV)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.source.ingest_child"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        assert self._read() == "ready"
        self.cpu = 0.0  # CPU seconds of the ingest runs

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line, f"fork server ended ({self.proc.poll()})"
        return line

    def start(self, home: Path) -> int:
        """Fork `amzigo ingest` on `home`; its pid."""
        args = ["ingest", "--tenant", ACME, "--backfill-days", "7", "--json", "--home", str(home)]
        self._send({"args": args, "log": str(_log(home))})
        return int(self._read())

    def gateway(self, home: Path) -> None:
        """Start `home`'s gateway (forked: no second of imports) and wait until it answers."""
        from amzigo_lab.client import protocol
        from amzigo_lab.client.transport import _answers

        runtime = protocol.runtime_dir(home)
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._send({"gateway": str(home), "log": str(runtime / "gateway.log")})
        assert self._read() == "started"
        address, deadline = protocol.default_address(home), time.monotonic() + 60
        while not _answers(address):
            assert time.monotonic() < deadline, (runtime / "gateway.log").read_text()[-2000:]
            time.sleep(0.02)

    def _send(self, request: dict[str, Any]) -> None:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()

    def wait(self) -> str:
        """How the last child ended: `exit N` or `signal N` (its CPU time is added up)."""
        ended, cpu = self._read().rsplit(" ", 1)
        self.cpu += float(cpu)
        return ended

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _log(home: Path) -> Path:
    return home.parent / f"{home.name}-ingest.log"


def _run_to_completion(server: ForkServer, home: Path) -> dict[str, Any]:
    """Re-run ingest until no report is pending (at most 3 runs); its last JSON summary."""
    for _ in range(3):
        server.start(home)
        ended = server.wait()
        assert ended == "exit 0", (ended, _log(home).read_text()[-3000:])
        summary = json.loads(_log(home).read_text())
        statuses = {r["stream"]: r["status"] for r in summary["results"]}
        assert set(statuses.values()) <= {"ok", "skipped", "pending"}, summary["results"]
        if "pending" not in statuses.values():  # (reviews are skipped when fresh)
            return summary
    raise AssertionError(f"reports still pending after 3 runs: {summary['results']}")


def _figures(home: Path) -> Figures:
    """Latest rows per dataset; Sales & Traffic (rows, units, sales) per marketplace/currency."""
    out: Figures = {}
    names = [name for stream in STREAMS.values() for name in stream.datasets]
    with open_lake(load_settings(home, env=ENV)) as lake:
        for name in names:
            if not lake.catalog.partitions(name, [ACME]):
                continue
            latest = lake.scan(name, [ACME]).latest()
            out[("rows", name)] = latest.num_rows
            if name in SALES_TRAFFIC:
                for row in latest.to_pylist():
                    key = (name, row["marketplace_id"], row["currency"])
                    n, units, sales = out.get(key, (0, 0, Decimal(0)))
                    out[key] = (
                        n + 1,
                        units + (row["units_ordered"] or 0),
                        sales + (row["ordered_product_sales"] or Decimal(0)),
                    )
        for stream in STREAMS:
            state = lake.catalog.get_sync_state(ACME, stream)
            assert not state.get("pending"), (stream, state.get("pending"))
    return out


def _doctor(home: Path) -> int:
    """`amzigo doctor` after a kill: the only problems it may find are orphan files (a kill
    between a file's rename and its catalog commit; writer.py's commit protocol), which it names
    and `doctor --fix` removes. Returns how many there were."""
    result = CliRunner().invoke(main, ["doctor", "--json", "--home", str(home)], env=ENV)
    report = json.loads(result.stdout)
    problems = report["problems"]
    assert all(p["kind"] == "orphan" for p in problems), problems
    assert result.exit_code == (1 if problems else 0), result.output[-3000:]
    if problems:
        assert _check(home, ["doctor", "--fix"])["problems"] == []
        _check(home, ["doctor"])
    return len(problems)


def _check(home: Path, command: list[str]) -> dict[str, Any]:
    """`amzigo COMMAND --json` on `home`: exit 0 and ok."""
    result = CliRunner().invoke(main, [*command, "--json", "--home", str(home)], env=ENV)
    assert result.exit_code == 0, (command, result.output[-3000:])
    report = json.loads(result.stdout)
    assert report["ok"], (command, report["problems"])
    return report


def _stop_gateway(home: Path) -> None:
    """Stop the gateway `lake verify` started for this home (one per home)."""
    from amzigo_lab.gateway.run import lock_holder

    pid = lock_holder(home)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


@pytest.fixture(scope="module")
def fork_server() -> Iterator[ForkServer]:
    running = ForkServer()
    yield running
    running.close()


@pytest.mark.slow
def test_sigkill_sweep_of_ingest_ends_with_the_rows_of_an_uninterrupted_run(
    fork_server: ForkServer, tmp_path: Path
) -> None:
    server = fork_server
    t_sweep = time.monotonic()
    template = tmp_path / "template"
    init = CliRunner().invoke(main, ["init", "--sandbox", "--home", str(template)], env=ENV)
    assert init.exit_code == 0, init.output
    # the uninterrupted run on a fresh home: the figures to match, and the span to kill within
    fresh = tmp_path / "fresh"
    shutil.copytree(template, fresh, symlinks=True)
    t0 = time.monotonic()
    baseline_summary = _run_to_completion(server, fresh)
    span = time.monotonic() - t0
    baseline = _figures(fresh)
    # the first run warms caches (a quiet machine then runs the next ones faster, and kills
    # timed on the first would land after the end): the span is the shorter of two runs
    warm = tmp_path / "warm"
    shutil.copytree(template, warm, symlinks=True)
    t0 = time.monotonic()
    _run_to_completion(server, warm)
    span = min(span, time.monotonic() - t0)
    assert _figures(warm) == baseline  # two uninterrupted runs agree
    shutil.rmtree(warm, ignore_errors=True)
    assert {k[1] for k in baseline if k[0] == "rows"} == set(baseline_summary["rows"])
    assert {k[1:] for k in baseline if k[0] == "sales_traffic_by_date"} == {
        ("ATVPDKIKX0DER", "USD"),
        ("A1F83G8C2ARO7P", "GBP"),
    }
    rng = random.Random(RNG_SEED)
    kill_times = [span * (i + rng.random()) / KILLS for i in range(KILLS)]  # one per 20th
    ended: list[str] = []
    orphans = 0  # files of a kill between rename and commit, removed by `doctor --fix`
    phases = dict.fromkeys(("killed run", "lake verify", "doctor", "re-run", "compare"), 0.0)

    def timed(phase: str, t: float) -> float:
        now = time.monotonic()
        phases[phase] += now - t
        return now

    for i, at in enumerate(kill_times):
        home = tmp_path / f"k{i}"
        shutil.copytree(template, home, symlinks=True)
        t = time.monotonic()
        pid = server.start(home)
        time.sleep(at)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        ended.append(server.wait())
        t = timed("killed run", t)
        server.gateway(home)  # what `lake verify` would start on demand, without the imports
        _check(home, ["lake", "verify", "--break-glass", "ingest kill sweep"])
        _stop_gateway(home)
        t = timed("lake verify", t)
        orphans += _doctor(home)
        t = timed("doctor", t)
        _run_to_completion(server, home)
        t = timed("re-run", t)
        assert _figures(home) == baseline, (i, at, ended[-1])
        shutil.rmtree(home, ignore_errors=True)  # (its stopped gateway may still be exiting)
        timed("compare", t)
    killed = ended.count(f"signal {signal.SIGKILL}")
    assert killed >= KILLS // 2, ended  # most kills land inside the run
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"ingest kill sweep: span {span:.1f} s, {killed}/{KILLS} killed, "
        f"{orphans} orphan file(s) removed by doctor --fix, "
        f"{time.monotonic() - t_sweep:.1f} s in all ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items())
        + f"; CPU: ingests {server.cpu:.1f} s, test process "
        f"{usage.ru_utime + usage.ru_stime:.1f} s)"
    )
