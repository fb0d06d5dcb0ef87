"""Settings validation and catalog versioning."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from amzigo_lab.config import load_settings
from amzigo_lab.errors import CatalogError, ConfigError
from amzigo_lab.home import init_home, open_lake
from amzigo_lab.lake.catalog import MIGRATIONS


def test_defaults_and_env_overrides(tmp_path: Path) -> None:
    s = load_settings(env={"AMZIGO_HOME": str(tmp_path), "AMZIGO_ROW_GROUP_ROWS": "1000"})
    assert s.home == tmp_path.resolve() and s.row_group_rows == 1000
    assert s.master_key_file == tmp_path.resolve() / "keys" / "master.key"
    assert s.pii_purposes == ()


@pytest.mark.parametrize(
    ("config", "env", "message"),
    [
        ('key_provider = "vault"', {}, "config.toml key 'key_provider'.*expected one of file, env"),
        ("row_group_rows = -5", {}, "key 'row_group_rows'.*positive integer"),
        ('colour = "blue"', {}, "unknown setting.*'colour'.*known settings are"),
        ("this is not toml", {}, "not valid TOML"),
        ("", {"AMZIGO_PII_PURPOSES": "marketing"}, "AMZIGO_PII_PURPOSES.*not a PII purpose"),
        ("", {"AMZIGO_SANDBOX_TODAY": "yesterday"}, "AMZIGO_SANDBOX_TODAY"),
    ],
)
def test_invalid_settings_name_the_setting(tmp_path: Path, config, env, message) -> None:
    (tmp_path / "config.toml").write_text(config)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, env=env)


def test_home_and_reports_never_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch
) -> None:
    from amzigo_lab.config import DEFAULT_HOME, explain_settings

    monkeypatch.chdir(tmp_path)
    settings, origins = explain_settings(env={})
    assert settings.home == DEFAULT_HOME and tmp_path not in settings.home.parents
    assert origins["home"].startswith("default")
    assert settings.reports_dir == DEFAULT_HOME / "reports"
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text('reports_dir = "out/r"\n')
    settings, origins = explain_settings(home, env={"AMZIGO_ROW_GROUP_ROWS": "5"})
    assert settings.reports_dir == home / "out" / "r"  # relative: inside the home
    assert "config.toml" in origins["reports_dir"] and origins["home"] == "argument --home"
    assert origins["row_group_rows"] == "environment variable AMZIGO_ROW_GROUP_ROWS"
    absolute = load_settings(home, env={"AMZIGO_REPORTS_DIR": str(tmp_path / "abs")})
    assert absolute.reports_dir == tmp_path / "abs"


def test_config_show_prints_each_setting_with_its_source(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from amzigo_lab.cli import main

    result = CliRunner().invoke(
        main,
        ["config", "show", "--json", "--home", str(tmp_path / "h")],
        env={"AMZIGO_SANDBOX_SEED": "9"},
    )
    assert result.exit_code == 0, result.output
    rows = {r["setting"]: r for r in json.loads(result.output)}
    assert rows["sandbox_seed"] == {
        "setting": "sandbox_seed",
        "value": 9,
        "source": "environment variable AMZIGO_SANDBOX_SEED",
    }
    assert rows["key_file"]["value"] == str(tmp_path / "h" / "keys" / "master.key")
    assert not (tmp_path / "h").exists()  # showing the configuration creates nothing


def test_open_without_init_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="amzigo init"):
        open_lake(load_settings(tmp_path, env={}))


def test_catalog_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={})
    init_home(settings).close()
    db = sqlite3.connect(settings.catalog_path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(CatalogError, match="newer|upgrade amzigo-lab"):
        open_lake(settings)


def test_init_is_safe_to_rerun(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={})
    init_home(settings).close()
    key = settings.master_key_file.read_bytes()
    init_home(settings).close()
    assert settings.master_key_file.read_bytes() == key
    assert settings.catalog_path.stat().st_mode & 0o777 == 0o600
