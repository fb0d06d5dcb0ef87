"""Validation of names that end up in paths and SQL text (tenant ids, dataset names, key names)."""

from __future__ import annotations

import datetime as dt
import re

from amzigo_lab.errors import InvalidName

_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SQL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def tenant_id(value: str) -> str:
    """Return `value` if it is a valid tenant id (lowercase slug), else raise InvalidName."""
    if not isinstance(value, str) or not _TENANT.fullmatch(value):
        raise InvalidName(
            f"invalid tenant id {value!r}: use 1-64 characters a-z, 0-9, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


def dataset_name(value: str) -> str:
    """Return `value` if it is a valid dataset name, else raise InvalidName."""
    if not isinstance(value, str) or not _DATASET.fullmatch(value):
        raise InvalidName(
            f"invalid dataset name {value!r}: use 1-64 characters a-z, 0-9 or '_', "
            "starting with a letter"
        )
    return value


def sql_name(value: str) -> str:
    """Return `value` if it is safe to splice into SQL as an identifier, else raise InvalidName."""
    if not isinstance(value, str) or not _SQL_NAME.fullmatch(value):
        raise InvalidName(f"invalid SQL identifier {value!r}: use [A-Za-z0-9_], at most 64")
    return value


def iso_date(value: dt.date | str) -> dt.date:
    """Parse an ISO date (YYYY-MM-DD) or pass a date through; raise InvalidName otherwise."""
    if isinstance(value, dt.datetime):
        raise InvalidName(f"expected a date, got a datetime {value!r}")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidName(f"invalid date {value!r}: use YYYY-MM-DD") from None
