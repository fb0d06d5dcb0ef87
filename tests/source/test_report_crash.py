"""SIGKILL at each step of a report's life, then a re-run: exactly the rows of an uninterrupted
run (issue 12 item 1).

The ingest runs in a child process that kills itself (tests/source/crash_child.py) after a
report is created, while one is in flight, once one is DONE before its download, and between
the two datasets of a write. With the embedded sandbox (as `amzigo ingest` runs it) the
reports die with the child: the re-run finds the stored ids unknown (404), discards and
re-requests them. With a sandbox that outlives the child, the re-run resumes the same reports.
Rows are compared per dataset, marketplace and currency (count, units, sales), both as stored
and as latest versions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.home import init_home, open_lake
from amzigo_lab.sandbox import ReportTimings, SandboxServer, World
from amzigo_lab.source.ingest import ingest
from tests.source.conftest import ACME, SEED, TODAY

ROOT = Path(__file__).resolve().parents[2]
SINCE = TODAY - dt.timedelta(days=2)  # two days x (US, UK): four reports
DATASETS = ("sales_traffic_by_date", "sales_traffic_by_asin")
STEPS = ("created", "in_flight", "done", "mid_write")
Figures = dict[tuple[str, str, str, str], tuple[int, int, Decimal]]


def _settings(home: Path) -> Settings:
    return load_settings(home, env={}, sandbox_seed=SEED, sandbox_today=TODAY)


def _home(tmp: Path, name: str) -> Settings:
    settings = _settings(tmp / name)
    init_home(settings, audit=MemorySink(), sandbox=True).close()  # ingest needs a source
    return settings


def _child(settings: Settings, step: str, sandbox: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMZIGO_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "tests.source.crash_child", str(settings.home), step, sandbox,
         SINCE.isoformat()],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip


def _figures(settings: Settings) -> Figures:
    """(dataset, view, marketplace, currency) -> (rows, units, sales)."""
    out: Figures = {}
    with open_lake(settings) as lake:
        for name in DATASETS:
            scan = lake.scan(name, [ACME])
            for view, table in (("stored", scan.to_arrow()), ("latest", scan.latest())):
                for row in table.to_pylist():
                    key = (name, view, row["marketplace_id"], row["currency"])
                    n, units, sales = out.get(key, (0, 0, Decimal(0)))
                    out[key] = (
                        n + 1,
                        units + (row["units_ordered"] or 0),
                        sales + (row["ordered_product_sales"] or Decimal(0)),
                    )
        state = lake.catalog.get_sync_state(ACME, "sales_traffic")
    assert state.get("pending") == {}, state
    return out


def _rerun(settings: Settings, server: SandboxServer | None) -> Any:
    with open_lake(settings) as lake:
        report = ingest(lake, settings, [ACME], ["sales_traffic"], SINCE, server=server, env={})
    (result,) = report.results
    assert result.status == "ok", result.error
    return result


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Figures:
    """An uninterrupted run with the embedded sandbox (same world, same days)."""
    settings = _home(tmp_path_factory.mktemp("baseline"), "home")
    _rerun(settings, None)
    figures = _figures(settings)
    currencies = {(k[2], k[3]) for k in figures}
    assert len(currencies) == 2 and all(k[1] for k in figures)  # US in USD, UK in GBP
    assert figures[("sales_traffic_by_date", "stored", "ATVPDKIKX0DER", "USD")][0] == 2
    return figures


@pytest.fixture
def outside_server(tmp_path: Path) -> Iterator[SandboxServer]:
    """A sandbox that outlives the child; reports take 0.3 s of processing."""
    world = World(seed=SEED, today=TODAY)
    server = SandboxServer(
        world, tmp_path / "sandbox", time_scale=1000, report_timings=ReportTimings(0, 300)
    ).start()
    yield server
    server.stop()


def _where(server: SandboxServer) -> str:
    return json.dumps(
        {"time_scale": 1000.0, "lwa_url": server.lwa_url, "endpoint": server.endpoint,
         "ca_path": str(server.ca_path)}
    )  # fmt: skip


def _crash_and_rerun(tmp: Path, step: str, server: SandboxServer | None) -> tuple[Figures, Any]:
    settings = _home(tmp, f"home-{step}")
    killed = _child(settings, step, "embedded" if server is None else _where(server))
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    with open_lake(settings) as lake:
        assert lake.catalog.get_sync_state(ACME, "sales_traffic").get("pending"), step
    return _figures_after(settings, server)


def _figures_after(settings: Settings, server: SandboxServer | None) -> tuple[Figures, Any]:
    result = _rerun(settings, server)
    return _figures(settings), result


def test_sigkill_mid_write_then_rerun_embedded(tmp_path: Path, baseline: Figures) -> None:
    figures, result = _crash_and_rerun(tmp_path, "mid_write", None)
    assert figures == baseline
    assert result.reports_discarded >= 1  # the killed process's reports are unknown now


@pytest.mark.slow
@pytest.mark.parametrize("step", ["created", "in_flight", "done"])
def test_sigkill_at_each_step_then_rerun_embedded(
    tmp_path: Path, baseline: Figures, step: str
) -> None:
    figures, result = _crash_and_rerun(tmp_path, step, None)
    assert figures == baseline
    assert result.reports_discarded >= 1


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_step_then_resume_on_a_live_sandbox(
    tmp_path: Path, baseline: Figures, outside_server: SandboxServer, step: str
) -> None:
    created = outside_server.stats.requests["createReport"]
    figures, result = _crash_and_rerun(tmp_path, step, outside_server)
    assert figures == baseline
    assert result.reports_discarded == 0  # the same reports, resumed
    assert outside_server.stats.requests["createReport"] - created == 4  # none asked twice
