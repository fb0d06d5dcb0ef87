"""Counting rows in a home's SQLite file without opening it for writing (the ROPA's counts)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def count(path: Path, sql: str) -> int | None:
    """The number `sql` answers in the SQLite file at `path`, opened read-only: never created
    or changed (None: the file is absent or cannot be read)."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(db.execute(sql).fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return None
