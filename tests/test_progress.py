"""Progress on long steps: drawn on a terminal, silent off one and under --quiet."""

from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from amzigo_lab.cli import main
from amzigo_lab.cli.progress import DemoProgress, busy, live_enabled
from amzigo_lab.source.streams import ProgressEvent


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=120), out


def test_the_demo_view_draws_ingestion_and_reports_on_a_terminal() -> None:
    console, out = _console(True)
    view = DemoProgress(console)
    with view.shown():
        view.ingest(ProgressEvent("acme-outdoor", "orders", "status", "running"))
        view.ingest(ProgressEvent("acme-outdoor", "orders", "rows", 120))
        view.ingest(ProgressEvent("acme-outdoor", "orders", "wait", 0.5))
        view.live.refresh()
        drawn_ingest = out.getvalue()
        view.report(3, 9, Path("r.html"))
        view.live.refresh()
    assert "acme-outdoor" in drawn_ingest and "120" in drawn_ingest
    assert "1 rate-limit waits" in drawn_ingest
    assert "3/9" in out.getvalue()


def test_nothing_is_drawn_off_a_terminal_or_when_quiet() -> None:
    for terminal, quiet in ((False, False), (True, True)):
        console, out = _console(terminal)
        console.quiet = quiet
        assert not live_enabled(console)
        view = DemoProgress(console)
        with view.shown(), busy(console, "running"):
            view.ingest(ProgressEvent("t", "orders", "rows", 5))
            view.report(1, 9, Path("r.html"))
        assert out.getvalue() == ""


def test_quiet_keeps_requested_output_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    home = str(tmp_path / "h")
    assert runner.invoke(main, ["-q", "config", "show", "--home", home]).output == ""
    shown = runner.invoke(main, ["-q", "config", "show", "--json", "--home", home])
    assert shown.exit_code == 0 and json.loads(shown.output)[0]["setting"] == "home"
    loud = runner.invoke(main, ["config", "show", "--home", home])  # quiet is per invocation
    assert "configuration of" in loud.output
    bad = runner.invoke(main, ["-q", "lake", "ls", "--tenant", "../x", "--home", home])
    assert bad.exit_code == 2 and "error" in bad.output
