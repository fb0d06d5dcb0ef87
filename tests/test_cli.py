"""The `amzigo` command: help everywhere, JSON for scripts, clear errors, the demo job."""

from __future__ import annotations

import inspect
import json
import re
from html import unescape
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            out.extend(all_commands(cmd, path))
        else:
            out.append(path)
    return out


@pytest.mark.parametrize("path", all_commands(main), ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`amzigo {' '.join(path)} --help` has no example"


@pytest.mark.parametrize("path", [(), *all_commands(main)], ids=lambda p: " ".join(p) or "amzigo")
def test_help_prints_examples_line_by_line(path: tuple[str, ...]) -> None:
    """Every indented line of a help text (examples, config snippets) appears on a line of its
    own in `--help` at 80 columns: Click's rewrapping once joined `amzigo purge --dry-run` and
    `amzigo purge --as-of ...` into one line, and a TOML snippet into a paragraph."""
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    printed = {line.strip() for line in result.output.splitlines()}
    written = inspect.cleandoc(command.help or "").splitlines()
    examples = [line.strip() for line in written if line.startswith("    ") and line.strip()]
    missing = [line for line in examples if line not in printed]
    assert not missing, f"`amzigo {' '.join(path)} --help` rewrapped: {missing}"


def test_help_examples_start_their_own_paragraph() -> None:
    """ "Example:" opens its own paragraph in every `--help` (it once ended a prose line, e.g.
    "Run daily from cron (see docs/compliance.md). Example:" in `amzigo purge --help`)."""
    for path in all_commands(main):
        result = CliRunner().invoke(main, [*path, "--help"], terminal_width=100)
        lines = result.output.splitlines()
        for i, line in enumerate(lines):
            if line.rstrip().endswith(("Example:", "Examples:")):
                where = f"`amzigo {' '.join(path)} --help`: {line.strip()!r}"
                assert line.strip() in ("Example:", "Examples:"), where
                assert not lines[i - 1].strip(), where


def test_python_dash_m_runs_the_command() -> None:
    """`python -m amzigo_lab.cli` is the `amzigo` command (the team's notes run it that way from
    a worktree); it once failed with "cannot be directly executed"."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "amzigo_lab.cli", "report", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: amzigo report")


def test_every_option_says_what_it_takes() -> None:
    """An option shows help text, or at least its default or its choices (`audit search
    --actor TEXT` once said nothing)."""
    bare = []
    for path in all_commands(main):
        command: click.Command = main
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        for p in command.params:
            if not isinstance(p, click.Option) or p.hidden or p.help:
                continue
            if not p.show_default and not isinstance(p.type, click.Choice):
                bare.append(f"amzigo {' '.join(path)} {p.opts[0]}")
    assert not bare, bare


def test_client_commands_name_the_real_default_home() -> None:
    """`--home` defaults to $AMZIGO_HOME, else the user data folder, for every command (never
    ./.amzigo, which some helps used to claim)."""
    for path in all_commands(main):
        result = CliRunner().invoke(main, [*path, "--help"], terminal_width=200)
        assert "./.amzigo" not in result.output, " ".join(path)


def test_demo_then_init_ls_verify_doctor_round(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    home = str(tmp_path / "h")
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--home", home]).exit_code == 0
    assert runner.invoke(main, ["init", "--home", home]).exit_code == 0  # re-runnable
    result = runner.invoke(
        main, ["demo", "--no-serve", "--days", "2", "--pii-weeks", "5", "--home", home]
    )
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and "destroyed" in result.output
    reports = sorted(Path(home, "reports").rglob("*.html"))
    assert (
        len(reports) == 12
    )  # 3 tenants x (sales, reviews, inventory, account_health), in the home
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h"]  # not ./reports, not ./.amzigo
    # every report covers the same period, account health included (it used to end a day
    # later); it still judges the account-health report fetched today
    assert len({p.name for p in reports}) == 1, [str(p) for p in reports]
    end = reports[0].stem.split("_")[1]
    for html in (p for p in reports if p.parent.name == "account_health"):
        text = unescape(html.read_text())
        assert f"as of {end}" in text and "judged on Amazon's newest report" in text, html
    # --no-serve serves nothing: no bare URL, but the command that serves it
    assert "dashboard not started (--no-serve): amzigo dashboard --home" in result.output
    assert "\ndashboard https://" not in result.output
    # the next commands are told which home (this is not the default one)
    assert "next     export AMZIGO_HOME=" in result.output
    # no empty inventory (the bug of the first round) and profit from the demo's product costs
    for html in (p for p in reports if p.parent.name == "inventory"):
        counts = [int(n) for n in re.findall(r"data-rows=[\"'](\d+)", html.read_text())]
        assert counts and max(counts) > 0, f"{html}: every stock table is empty"
    for html in (p for p in reports if p.parent.name == "sales"):
        text = html.read_text()
        start = re.search(r"id=[\"']profit[\"']", text)  # nbconvert rewrites the quotes
        assert start, f"{html}: no profit table"
        table = text[start.start() :].split("</table>", 1)[0]
        assert re.search(r">-?\d+\.\d%<", table), f"{html}: no margin in the profit table"
        assert "Units without cost" in table  # one product in ten is left uncosted
    creds = Path(home, "demo-credentials.txt")
    assert creds.stat().st_mode & 0o777 == 0o600
    header = [ln for ln in creds.read_text().splitlines() if ln.startswith("#")]
    assert header and all(len(ln) <= 80 for ln in header), header  # reads well at 80 columns
    assert next(ln for ln in header if "python -c" in ln).startswith("#     python -c")
    assert "seller-acme" in creds.read_text() and "password" not in result.output
    glass = ["--break-glass", "test round", "--home", home]  # the service account, audited
    ls = json.loads(runner.invoke(main, ["lake", "ls", "--json", *glass]).output)
    assert {r["tenant"] for r in ls} >= {"acme-outdoor", "bluebird-home"}
    assert all(r["rows"] > 0 and r["partitions"] >= 1 for r in ls)
    verify = runner.invoke(main, ["lake", "verify", "--json", *glass])
    assert verify.exit_code == 0 and json.loads(verify.output)["ok"]
    assert runner.invoke(main, ["doctor", "--home", home]).exit_code == 0
    files = sorted(Path(home, "lake").rglob("*.parquet"))
    assert files and all(f.read_bytes()[-4:] == b"PARE" for f in files)
    # tamper with one file: verify names it and exits 1
    data = bytearray(files[0].read_bytes())
    data[100] ^= 0xFF
    files[0].write_bytes(bytes(data))
    bad = runner.invoke(main, ["lake", "verify", *glass])
    assert bad.exit_code == 1 and files[0].name in bad.output
    rotate = runner.invoke(main, ["keys", "rotate", "--home", home])
    assert rotate.exit_code == 0 and "re-wrapped" in rotate.output


def test_errors_are_one_clean_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["lake", "ls", "--home", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "amzigo init" in result.output and "Traceback" not in result.output


def test_client_commands_do_not_load_the_home_packages() -> None:
    """The CLI's gateway-client modules import no lake, home, compliance or governance code
    (the identity errors the wire protocol maps back excepted), checked in a fresh interpreter
    that loads them without the `amzigo` command group (which also holds operator commands)."""
    import subprocess
    import sys

    cli_dir = Path(__file__).parents[1] / "amzigo_lab" / "cli"
    code = f"""
import sys, types
pkg = types.ModuleType("amzigo_lab.cli")
pkg.__path__ = [{str(cli_dir)!r}]
sys.modules["amzigo_lab.cli"] = pkg
import amzigo_lab.cli.lake_client, amzigo_lab.cli.compliance_client
import amzigo_lab.cli.dsr, amzigo_lab.cli.governance, amzigo_lab.cli.auth
import amzigo_lab.cli.costs_client
loaded = [m for m in sys.modules if m.startswith("amzigo_lab.")]
assert "amzigo_lab.cli.governance" in loaded and "amzigo_lab.cli.lake" not in loaded
print(sorted(m for m in loaded if m.startswith(("amzigo_lab.lake", "amzigo_lab.home",
      "amzigo_lab.compliance", "amzigo_lab.governance."))
      and not m.startswith("amzigo_lab.governance.identity")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


#: What `import amzigo_lab.cli` must not load: ibis (with sqlglot, DuckDB, pandas), the lake
#: (pyarrow.dataset, the home, the sources, compliance, campaigns) and pyarrow itself (numpy,
#: Flight) cost over a second of CPU at every `amzigo` start; the commands that need them
#: import them when they run (a client command with its first gateway connection).
HEAVY_AT_IMPORT = (
    "ibis", "sqlglot", "duckdb", "pandas", "pyarrow", "numpy", "amzigo_lab.lake",
    "amzigo_lab.home", "amzigo_lab.source", "amzigo_lab.compliance", "amzigo_lab.campaigns",
)  # fmt: skip


def test_importing_the_cli_loads_neither_ibis_nor_the_lake_nor_pyarrow() -> None:
    """`amzigo --help`, any command's start and the scheduler (`main.commands`) import the
    whole command tree; checked in a fresh interpreter running this checkout, which also
    sees every command registered."""
    import os
    import subprocess
    import sys

    root = Path(__file__).parents[1]
    code = f"""
import sys
from amzigo_lab.cli import main
assert {{"ingest", "campaign", "purge", "init", "doctor", "keys", "lake"}} <= set(main.commands)
assert sys.modules["amzigo_lab"].__file__.startswith({str(root)!r})
heavy = {HEAVY_AT_IMPORT!r}
print(sorted(h for h in heavy if any(m == h or m.startswith(h + ".") for m in sys.modules)))
"""
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_purge_dry_run_with_nothing_due_says_so(tmp_path: Path) -> None:
    """`amzigo purge --dry-run` on a home with nothing due printed only "would drop 0 derived
    output(s)", saying nothing about partitions."""
    home = str(tmp_path / "h")
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--home", home]).exit_code == 0
    result = runner.invoke(main, ["purge", "--dry-run", "--as-of", "2026-11-02", "--home", home])
    assert result.exit_code == 0, result.output
    assert "would drop 0 partitions: nothing is past its purge date as of 2026-11-02" in (
        result.output
    )
