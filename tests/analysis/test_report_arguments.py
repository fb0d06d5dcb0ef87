"""`amzigo report` checks every argument before a kernel starts, leaves no file when a run
fails, and says what it wrote (`--json`); `amzigo demo` bounds its numbers; error messages
are printed as text, never as rich markup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from amzigo_lab.analysis import generate as gen
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.source import ReportError
from amzigo_lab.cli import main
from amzigo_lab.events import MemorySink
from tests.analysis.data import ACME, END, START

PERIOD = Period(START, END)


class KernelStarted(Exception):
    """Raised instead of starting a kernel: the arguments got through every check."""


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def fake_execute(src: Path, dest: Path, params: dict, *args: Any, **kw: Any) -> None:
        calls.append(params)
        dest.write_text("{}", encoding="utf-8")  # a half-written notebook
        raise KernelStarted(params["marketplace"])

    monkeypatch.setattr(gen, "_execute", fake_execute)
    return calls


def files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("report", "kwargs", "message"),
    [
        ("sales", {"tenant": "acme-outdor"}, "'acme-outdor' has no data"),
        ("sales", {"tenant": "Acme Outdoor"}, "--tenant: invalid tenant id"),
        ("sales", {"marketplace": "FR"}, "--marketplace: unknown marketplace 'FR'"),
        ("sales", {"marketplace": "DE"}, "--marketplace DE is not a marketplace of tenant"),
        ("reviews", {"marketplace": "UK"}, r"\(its review_topics data: US\)"),  # US reviews only
        ("sales", {"comparison": "lastweek"}, "--comparison: unknown comparison"),
        ("sales", {"timeout": 0}, "--timeout 0"),
        ("inventory", {"costs_file": "x.csv"}, "--costs applies to the sales report only"),
        ("reviews", {"engine": "spark"}, "--engine spark: only the sales report runs on it"),
        ("sales", {"engine": "polars"}, "--engine 'polars': use duckdb or spark"),
    ],
)
def test_bad_arguments_fail_before_any_kernel_and_leave_no_file(
    report_settings, tmp_path: Path, no_kernel, report: str, kwargs: dict, message: str
) -> None:
    args = {"tenant": ACME, **kwargs}
    tenant = args.pop("tenant")
    sink = MemorySink()
    with pytest.raises(ReportError, match=message):
        gen.generate(report_settings, report, tenant, PERIOD, out_dir=tmp_path, audit=sink, **args)
    assert no_kernel == [] and files(tmp_path) == [] and list(tmp_path.iterdir()) == []
    assert [e["action"] for e in sink.events] == ["report.failed"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sku,cost\nA,1\n", "needs the header sku,currency,unit_cost"),
        ("sku,currency,unit_cost\nA,USD,abc\n", "line 2: unit_cost 'abc' is not a number"),
        (b"\xff\xfe\x00bad", "not a CSV cost file"),
    ],
)
def test_a_bad_cost_file_fails_before_any_kernel(
    report_settings, tmp_path: Path, no_kernel, content: str | bytes, message: str
) -> None:
    costs = tmp_path / "costs.csv"
    if isinstance(content, bytes):
        costs.write_bytes(content)
    else:
        costs.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(ReportError, match=message):
        gen.generate(report_settings, "sales", ACME, PERIOD, out_dir=out, costs_file=str(costs))
    assert no_kernel == [] and not out.exists()


def test_good_arguments_reach_the_kernel_normalised(report_settings, tmp_path, no_kernel) -> None:
    with pytest.raises(KernelStarted, match="UK"):
        gen.generate(report_settings, "sales", ACME, PERIOD, out_dir=tmp_path, marketplace="uk")
    assert no_kernel[0]["marketplace"] == "UK" and no_kernel[0]["tenant"] == ACME
    assert "engine" not in no_kernel[0]  # the default engine: the notebook's own default
    assert files(tmp_path) == []  # the half-written notebook went with the failure


def test_the_engine_reaches_the_sales_notebook(report_settings, tmp_path, no_kernel) -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed (extra amzigo-lab[spark])")
    with pytest.raises(KernelStarted):
        gen.generate(report_settings, "sales", ACME, PERIOD, out_dir=tmp_path, engine="spark")
    assert no_kernel[0]["engine"] == "spark"


def test_a_run_failing_late_leaves_no_file(
    report_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notebook ran, the HTML export failed: neither the notebook nor a partial HTML
    stays (files are written under temporary names and renamed at the very end)."""

    def fake_execute(src: Path, dest: Path, *args: Any, **kw: Any) -> None:
        dest.write_text('{"cells": []}', encoding="utf-8")

    def broken_html(notebook: Path) -> str:
        raise ReportError("export broke")

    monkeypatch.setattr(gen, "_execute", fake_execute)
    monkeypatch.setattr(gen, "to_html", broken_html)
    with pytest.raises(ReportError, match="export broke"):
        gen.generate(report_settings, "reviews", ACME, PERIOD, out_dir=tmp_path)
    assert files(tmp_path) == []


def test_cli_bounds_and_errors_as_plain_text(report_home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for cmd in (
        ["report", "sales", "--tenant", ACME, "--days", "-5"],
        ["report", "sales", "--tenant", ACME, "--days", "0"],
        ["report", "sales", "--tenant", ACME, "--timeout", "-1"],
        ["demo", "--no-serve", "--days", "-5"],
        ["demo", "--no-serve", "--pii-weeks", "-1"],
        ["demo", "--no-serve", "--port", "70000"],
    ):
        res = runner.invoke(main, [*cmd, "--home", str(tmp_path / "home")])
        assert res.exit_code == 2 and "is not in the range" in res.output, (cmd, res.output)
    assert not (tmp_path / "home").exists()  # refused before anything was created
    # an error naming a config table: "[schedule.jobs.nightly]" printed as written, not eaten
    # as rich markup (every home has the default daily purge, so --list alone is no error)
    home = tmp_path / "sched"
    home.mkdir()
    (home / "config.toml").write_text(
        '[schedule.jobs.nightly]\ncron = "61 * * * *"\ncommand = ["lake", "ls"]\n'
    )
    res = runner.invoke(main, ["schedule", "--list", "--home", str(home)])
    assert res.exit_code == 2
    assert "[schedule.jobs.nightly]" in " ".join(res.output.split()), res.output


@pytest.mark.slow
def test_a_cell_failing_in_a_real_kernel_names_the_cell_and_leaves_no_file(
    report_settings, tmp_path: Path
) -> None:
    # a parameter slipped past the checks (here forced through `extra`) fails in the kernel
    sink = MemorySink()
    with pytest.raises(ReportError) as err:
        gen.generate(
            report_settings,
            "reviews",
            ACME,
            PERIOD,
            out_dir=tmp_path,
            extra={"marketplace": "XX"},
            audit=sink,
        )
    assert "reviews report failed in cell 1" in str(err.value)
    assert "unknown marketplace 'XX'" in str(err.value)
    assert files(tmp_path) == []
    assert [e["action"] for e in sink.events] == ["report.failed"]


@pytest.mark.slow
def test_end_alone_reports_the_days_ending_there(report_home: Path, tmp_path: Path) -> None:
    """`--end D` alone (the inventory's as-of date, per --help) was refused with "give both
    --start and --end"; it is the --days days ending at D. `--start` alone is still an error."""
    import json

    runner = CliRunner()
    home = ["--home", str(report_home), "--out", str(tmp_path)]
    end = END.isoformat()
    res = runner.invoke(
        main,
        ["report", "inventory", "--tenant", ACME, "--end", end, "--days", "7", "--json", *home],
    )
    assert res.exit_code == 0, res.output
    period = json.loads(res.output)["period"]
    assert (period["end"], period["days"]) == (end, 7)
    alone = runner.invoke(main, ["report", "sales", "--tenant", ACME, "--start", end, *home])
    assert alone.exit_code == 2 and "--start needs --end" in alone.output
    bad = runner.invoke(main, ["report", "sales", "--tenant", ACME, "--end", "2026-02-30", *home])
    assert bad.exit_code == 2 and "'2026-02-30' is not a date" in bad.output
    assert sorted(p.suffix for p in tmp_path.rglob("*") if p.is_file()) == [".html", ".ipynb"]


def test_comparison_outside_the_sales_report_is_refused(report_home: Path, tmp_path: Path) -> None:
    """`--comparison` given to a report that compares nothing is an error (as --costs and
    --engine are), never silently ignored; its default is no error."""
    home = ["--home", str(report_home), "--out", str(tmp_path / "out")]
    for name in ("reviews", "inventory", "account_health", "account-health"):  # both spellings
        res = CliRunner().invoke(
            main, ["report", name, "--tenant", ACME, "--comparison", "previous_year", *home]
        )
        assert res.exit_code == 2, res.output
        assert "--comparison applies to the sales report only" in res.output
    assert not (tmp_path / "out").exists()  # refused before any kernel ran
