"""Shared CLI plumbing: the home option, opening the lake, errors as clean messages, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.errors import AmzigoError

F = TypeVar("F", bound=Callable[..., Any])

_WIDTH = None if sys.stdout.isatty() else 140
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, width=_WIDTH)


def home_option(func: F) -> F:
    """Add `--home` (default: $AMZIGO_HOME, else ~/.local/share/amzigo/home)."""
    return click.option(
        "--home",
        type=click.Path(file_okay=False),
        default=None,
        help="Home folder (default: $AMZIGO_HOME, else ~/.local/share/amzigo/home).",
    )(func)


def client_home_option(func: F) -> F:
    """`--home` for the gateway's client commands: only names the home (whose gateway to call),
    which they never read (on a hardened home they cannot)."""
    return click.option(
        "--home",
        type=click.Path(file_okay=False, readable=False),
        default=None,
        help="Home folder (default: $AMZIGO_HOME or ./.amzigo).",
    )(func)


def json_option(func: F) -> F:
    """Add `--json` for machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def settings_for(home: str | None) -> Settings:
    """Settings for the given home (validated)."""
    return load_settings(home)


def print_json(data: Any) -> None:
    """Print `data` as JSON to stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def handle_errors(func: F) -> F:
    """Turn AmzigoError into a one-line message and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AmzigoError as exc:
            # messages are plain text: "[schedule]" in one must not be read as rich markup
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
            sys.exit(2)
        except PermissionError as exc:  # typically a hardened home and the wrong OS user
            where = f" {exc.filename}" if exc.filename else ""
            err_console.print(
                f"[bold red]error:[/] permission denied{where}: if this home is hardened, only "
                "its service user (or root) may use it directly; notebooks use "
                "amzigo_lab.connect()"
            )
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
