"""Shared fixtures: a fresh home per test, with its real catalog, key file and lake."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of an empty home under tmp_path (the caller's environment is ignored)."""
    return load_settings(tmp_path / "home", env={})


@pytest.fixture
def audit() -> MemorySink:
    """An in-memory audit sink."""
    return MemorySink()


@pytest.fixture
def lake(settings: Settings, audit: MemorySink) -> Iterator[Lake]:
    """An initialised lake."""
    lk = init_home(settings, audit=audit)
    yield lk
    lk.close()


DAY = dt.date(2026, 3, 1)
