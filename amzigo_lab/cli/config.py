"""`amzigo config show`: the effective settings of a home and where each value came from."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from amzigo_lab.cli.common import console, handle_errors, home_option, json_option, print_json
from amzigo_lab.config import Settings, explain_settings


def effective_settings(settings: Settings, origins: dict[str, str]) -> list[dict[str, Any]]:
    """One row per setting: name, effective value (derived paths filled in), and its source."""
    derived = {
        "key_file": settings.master_key_file,
        "audit_dir": settings.audit_path,
        "audit_checkpoint_dir": settings.checkpoint_path,
    }
    rows = [{"setting": "home", "value": str(settings.home), "source": origins["home"]}]
    for field in dataclasses.fields(Settings):
        if field.name == "home":
            continue
        value = getattr(settings, field.name)
        if value is None and field.name in derived:
            value, source = derived[field.name], "default (inside the home)"
        else:
            source = origins.get(field.name, "default")
        if isinstance(value, tuple):
            value = ", ".join(value) or "(none)"
        elif isinstance(value, Path):
            value = str(value)
        elif value is None and field.name == "hot_cache_mb":
            value = f"auto ({settings.hot_cache_bytes // (1024 * 1024)} MiB)"
        elif value is None:
            value = "(unset)"
        rows.append({"setting": field.name, "value": value, "source": source})
    return rows


@click.group("config")
def config_group() -> None:
    """Show the effective configuration of a home.

    Settings come from defaults, <home>/config.toml and AMZIGO_<SETTING> variables (later wins).
    """


@config_group.command("show")
@home_option
@json_option
@handle_errors
def show_cmd(home: str | None, as_json: bool) -> None:
    """Print every setting, its effective value and where it came from.

    Reads only config.toml and the environment: needs no key and no gateway.

    Example:

        amzigo config show --json
    """
    settings, origins = explain_settings(home)
    rows = effective_settings(settings, origins)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"configuration of {settings.home}")
    for column in ("setting", "value", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["setting"], str(row["value"]), row["source"])
    console.print(table)
