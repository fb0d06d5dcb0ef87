"""`amzigo ingest` (embedded sandbox), `amzigo sync status`, and their help."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from amzigo_lab.cli import main

ENV = {"AMZIGO_SANDBOX_TODAY": "2026-11-20", "AMZIGO_SANDBOX_SEED": "7"}


def test_ingest_starts_the_embedded_sandbox_and_reports(tmp_path: Path) -> None:
    home = str(tmp_path / "h")
    runner = CliRunner()
    args = [
        "ingest",
        "--tenant",
        "bluebird-home",
        "--streams",
        "orders,inventory",
        "--since",
        "2026-11-17",
        "--home",
        home,
    ]
    first = runner.invoke(main, [*args, "--json"], env=ENV)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert (
        report["source"] == "sandbox"
        and report["rows"]["orders"] > 0
        and report["throttled_429"] == 0
    )
    second = runner.invoke(main, args, env=ENV)  # live display + summary table
    assert second.exit_code == 0, second.output
    assert "nothing new" in second.output
    status = json.loads(
        runner.invoke(main, ["sync", "status", "--json", "--home", home], env=ENV).output
    )
    assert {(r["tenant"], r["stream"]) for r in status} == {
        ("bluebird-home", "orders"),
        ("bluebird-home", "inventory"),
    }
    assert all(r["last_status"] == "ok" and r["pending_reports"] == 0 for r in status)


def test_unknown_stream_is_a_clean_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["ingest", "--streams", "nope", "--home", str(tmp_path / "h")], env=ENV
    )
    assert result.exit_code == 2 and "unknown stream" in result.output


def test_commands_have_examples() -> None:
    runner = CliRunner()
    for path in (["ingest"], ["sync", "status"], ["sandbox", "serve"]):
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


def test_ingest_refuses_what_an_open_incident_paused(tmp_path: Path) -> None:
    from amzigo_lab.incident_pauses import pauses_path

    home = tmp_path / "home"
    assert CliRunner().invoke(main, ["init", "--home", str(home)]).exit_code == 0
    path = pauses_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pauses": [{"incident": "INC-7", "tenants": ["acme"]}]}))
    result = CliRunner().invoke(
        main, ["ingest", "--tenant", "acme", "--home", str(home), "--json"],
        env={"AMZIGO_HOME": str(home)},
    )  # fmt: skip
    assert result.exit_code != 0 and "paused by incident INC-7" in result.output
