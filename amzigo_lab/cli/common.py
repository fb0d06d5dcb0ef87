"""Shared CLI plumbing: the home option, opening the lake, errors as clean messages, JSON output,
passwords from stdin or a prompt, private (0600) files."""

from __future__ import annotations

import errno
import functools
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.errors import AmzigoError

F = TypeVar("F", bound=Callable[..., Any])

# Bounds of the numeric options: a value outside is a usage error (exit 2) before anything runs.
#: Days of history an ingest may reach back (SP-API serves about two years of orders).
MAX_BACKFILL_DAYS = 730
#: Days a report or the demo may look back.
MAX_LOOKBACK_DAYS = 730
PORT = click.IntRange(1, 65535)
SEED = click.IntRange(0, 2**31 - 1)

_WIDTH = None if sys.stdout.isatty() else 140
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, width=_WIDTH)


def set_verbosity(quiet: bool, verbose: int) -> None:
    """`amzigo -q`: only errors and requested output (JSON, tokens, files) are printed;
    `amzigo -v`/`-vv`: the package's log records (INFO/DEBUG) go to stderr."""
    import logging

    console.quiet = quiet
    log = logging.getLogger("amzigo_lab")
    if verbose and not any(getattr(h, "amzigo_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.amzigo_cli = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
    if verbose:
        log.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


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
        help="Home folder (default: $AMZIGO_HOME, else ~/.local/share/amzigo/home).",
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
    """Turn AmzigoError, a permission error and a full disk (ENOSPC from any writer, SQLite
    "database or disk is full") into a one-line message and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AmzigoError as exc:
            # messages are plain text: "[schedule]" in one must not be read as rich markup
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            sys.exit(2)
        except PermissionError as exc:  # typically a hardened home and the wrong OS user
            where = f" {exc.filename}" if exc.filename else ""
            err_console.print(
                f"[bold red]error:[/] permission denied{where}: if this home is hardened, only "
                "its service user (or root) may use it directly; notebooks use "
                "amzigo_lab.connect()",
                soft_wrap=True,
            )
            sys.exit(2)
        except Exception as exc:  # a full disk surfaces from many writers and wrappers
            if not is_disk_full(exc):
                raise
            name = getattr(exc, "filename", None)
            where = f" (writing {name})" if name else ""
            err_console.print(f"[bold red]error:[/] {disk_full_message(where)}", soft_wrap=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC / EDQUOT from any writer, or SQLite's "database or disk is full" (also when a
    library wrapped it: the cause chain is followed)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(seen, sqlite3.OperationalError) and "disk is full" in str(seen):
            return True
        if "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full_message(where: str) -> str:
    """The one-line message for a full disk (ENOSPC, quota, SQLite "disk is full")."""
    return (
        f"no space left on the device{where}: nothing half-written was kept (catalog "
        "transactions roll back); free space, then re-run the command and `amzigo doctor --fix`"
    )


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def write_private(path: Path, data: bytes) -> Path:
    """Write `data` to `path` with mode 0600 (refusing a symlink there)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(path, flags, 0o600), "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)  # an existing file would keep its old mode otherwise
        fh.write(data)
    return path


def read_password(password_stdin: bool, confirm: bool) -> str:
    """A password from the next line of stdin, or a hidden prompt (twice when `confirm`)."""
    if password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    return str(click.prompt("password", hide_input=True, confirmation_prompt=confirm, err=True))
