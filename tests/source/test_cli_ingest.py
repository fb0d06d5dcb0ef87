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
    init = runner.invoke(main, ["init", "--sandbox", "--home", home], env=ENV)
    assert init.exit_code == 0 and "mode      sandbox" in init.output, init.output
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
        and report["mode"].startswith("sandbox")
        and report["rows"]["orders"] > 0
        and report["throttled_429"] == 0
    )
    second = runner.invoke(main, args, env=ENV)  # live display + summary table
    assert second.exit_code == 0, second.output
    assert "nothing new" in second.output and "mode: sandbox" in second.output
    status = json.loads(
        runner.invoke(main, ["sync", "status", "--json", "--home", home], env=ENV).output
    )
    assert {(r["tenant"], r["stream"]) for r in status} == {
        ("bluebird-home", "orders"),
        ("bluebird-home", "inventory"),
    }
    assert all(r["last_status"] == "ok" and r["pending_reports"] == 0 for r in status)


def test_unknown_stream_is_a_clean_error(tmp_path: Path) -> None:
    CliRunner().invoke(main, ["init", "--sandbox", "--home", str(tmp_path / "h")], env=ENV)
    result = CliRunner().invoke(
        main, ["ingest", "--streams", "nope", "--home", str(tmp_path / "h")], env=ENV
    )
    assert result.exit_code == 2 and "unknown stream" in result.output


def test_since_after_today_is_a_clean_error_and_changes_nothing(tmp_path: Path) -> None:
    """A future --since went to the API, which failed each stream with a cut-off "The 'Before'
    time must be equ..." in the summary table (exit 1)."""
    home = str(tmp_path / "h")
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--sandbox", "--home", home], env=ENV).exit_code == 0
    args = ["ingest", "--tenant", "bluebird-home", "--streams", "orders", "--home", home]
    result = runner.invoke(main, [*args, "--since", "2026-11-21"], env=ENV)  # sandbox today +1
    assert result.exit_code == 2, result.output
    assert "--since 2026-11-21 is after today (2026-11-20" in result.output
    status = runner.invoke(main, ["sync", "status", "--json", "--home", home], env=ENV)
    assert json.loads(status.output) == []  # no run, no cursor
    today = runner.invoke(main, [*args, "--since", "2026-11-20", "--json"], env=ENV)
    assert today.exit_code == 0, today.output


def test_commands_have_examples() -> None:
    runner = CliRunner()
    for path in (["ingest"], ["sync", "status"], ["sandbox", "serve"]):
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


def test_ingest_never_creates_a_home_or_a_key(tmp_path: Path) -> None:
    """A typo in --home: a one-line error naming `amzigo init`; nothing is created."""
    typo = tmp_path / "hmoe"
    result = CliRunner().invoke(main, ["ingest", "--home", str(typo)], env=ENV)
    assert result.exit_code == 2 and "run `amzigo init`" in result.output
    assert "Traceback" not in result.output and not typo.exists()


def test_ingest_with_the_master_key_missing_writes_no_new_key(tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert CliRunner().invoke(main, ["init", "--sandbox", "--home", str(home)]).exit_code == 0
    key = home / "keys" / "master.key"
    key.rename(tmp_path / "elsewhere.key")
    result = CliRunner().invoke(main, ["ingest", "--home", str(home)], env=ENV)
    assert result.exit_code == 2 and "restore it from backup" in result.output, result.output
    assert not key.exists() and not (home / "keys" / "master.key.next").exists()
    again = CliRunner().invoke(main, ["init", "--home", str(home)], env=ENV)  # nor does init
    assert again.exit_code == 2 and "restore that key from backup" in again.output
    assert not key.exists()


def test_a_plain_home_ingests_nothing_and_says_what_to_do(tmp_path: Path) -> None:
    from amzigo_lab.config import load_settings
    from amzigo_lab.home import open_lake

    home = tmp_path / "h"
    init = CliRunner().invoke(main, ["init", "--home", str(home)], env=ENV)
    assert init.exit_code == 0 and "credentials set" in init.output
    env = {**ENV, "AMZIGO_LWA_CLIENT_ID": None, "AMZIGO_LWA_CLIENT_SECRET": None}
    result = CliRunner().invoke(main, ["ingest", "--home", str(home)], env=env)
    assert result.exit_code == 2, result.output
    assert "init --sandbox" in result.output and "credentials set" in result.output
    with open_lake(load_settings(home, env={})) as lake:
        assert lake.catalog.partitions() == []
    ls = CliRunner().invoke(  # a gateway client: the operator's break-glass, audited
        main, ["lake", "ls", "--break-glass", "test: mode", "--home", str(home)]
    )
    assert "mode unset" in ls.output


def test_a_home_connected_to_amazon_never_falls_back_to_the_sandbox(tmp_path: Path) -> None:
    from amzigo_lab.config import load_settings
    from amzigo_lab.home import open_lake
    from amzigo_lab.source.mode import mark_amazon

    home = tmp_path / "h"
    assert CliRunner().invoke(main, ["init", "--home", str(home)]).exit_code == 0
    with open_lake(load_settings(home, env={})) as lake:
        mark_amazon(lake)  # what `amzigo credentials set` does
    env = {**ENV, "AMZIGO_LWA_CLIENT_ID": None, "AMZIGO_LWA_CLIENT_SECRET": None}
    result = CliRunner().invoke(main, ["ingest", "--home", str(home)], env=env)
    assert result.exit_code == 2 and "never falls back to the sandbox" in result.output
    sandbox = CliRunner().invoke(main, ["init", "--sandbox", "--home", str(home)])
    assert sandbox.exit_code == 2 and "connected to Amazon" in sandbox.output
    doctor = CliRunner().invoke(main, ["doctor", "--json", "--home", str(home)])
    assert json.loads(doctor.stdout)["mode_name"] == "amazon"


def test_a_sandbox_home_refuses_amazon_credentials(tmp_path: Path) -> None:
    import pytest

    from amzigo_lab.config import load_settings
    from amzigo_lab.errors import ConfigError
    from amzigo_lab.home import open_lake
    from amzigo_lab.source.mode import mark_amazon

    home = tmp_path / "h"
    assert CliRunner().invoke(main, ["init", "--sandbox", "--home", str(home)]).exit_code == 0
    with open_lake(load_settings(home, env={})) as lake, pytest.raises(ConfigError) as err:
        mark_amazon(lake)
    assert "sandbox home" in str(err.value)


def test_numeric_options_are_bounded(tmp_path: Path) -> None:
    for args in (
        ["ingest", "--backfill-days", "100000"],
        ["ingest", "--backfill-days", "0"],
        ["demo", "--days", "100000", "--no-serve"],
        ["report", "sales", "--tenant", "acme", "--days", "100000"],
        ["sandbox", "serve", "--port", "70000"],
        ["audit", "search", "--limit", "0"],
    ):
        result = CliRunner().invoke(main, [*args, "--home", str(tmp_path / "h")])
        assert result.exit_code == 2 and "is not in the range" in result.output, (
            args,
            result.output,
        )
        assert not (tmp_path / "h").exists()


def test_ingest_refuses_what_an_open_incident_paused(tmp_path: Path) -> None:
    from amzigo_lab.incident_pauses import pauses_path

    home = tmp_path / "home"
    assert CliRunner().invoke(main, ["init", "--sandbox", "--home", str(home)]).exit_code == 0
    path = pauses_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pauses": [{"incident": "INC-7", "tenants": ["acme"]}]}))
    result = CliRunner().invoke(
        main, ["ingest", "--tenant", "acme", "--home", str(home), "--json"],
        env={"AMZIGO_HOME": str(home)},
    )  # fmt: skip
    assert result.exit_code != 0 and "paused by incident INC-7" in result.output


def test_the_summary_prints_long_errors_whole_and_as_text(capsys) -> None:
    """The summary table cut errors at 60 characters ("The 'Before' time must be equ") and read
    them as rich markup (a "[...]" in an error vanished)."""
    import datetime as dt

    from amzigo_lab.cli.ingest import print_summary
    from amzigo_lab.source import IngestReport
    from amzigo_lab.source.streams.base import StreamResult

    long = (
        "SellingApiBadRequestException: The 'Before' time must be equal to or later than "
        "the 'After' time [CreatedBefore]"
    )
    report = IngestReport("sandbox", dt.date(2026, 11, 20))
    report.results = [
        StreamResult("bluebird-home", "orders", status="failed", error=long),
        StreamResult("bluebird-home", "inventory", status="failed", error="short [x]"),
    ]
    print_summary(report)
    out = " ".join(capsys.readouterr().out.split())
    assert f"error bluebird-home orders: {long}" in out
    assert "short [x]" in out
