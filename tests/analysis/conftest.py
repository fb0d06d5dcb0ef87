"""A real encrypted home holding the report fixtures (built once per test session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.gateway.sources import LakeTableSource
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake
from tests.analysis.data import ACME, populate


@pytest.fixture(scope="session")
def report_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, populated home (shared by every test of the folder; read-only)."""
    home = tmp_path_factory.mktemp("reports") / "home"
    settings = load_settings(home, env={})
    lake = init_home(settings, audit=MemorySink())
    try:
        populate(lake)
    finally:
        lake.close()
    return home


@pytest.fixture(scope="session")
def report_settings(report_home: Path) -> Settings:
    return load_settings(report_home, env={})


@pytest.fixture(scope="session")
def report_lake(report_settings: Settings) -> Iterator[Lake]:
    from amzigo_lab.datasets import REGISTRY

    lk = Lake.open(report_settings, REGISTRY, audit=MemorySink())
    yield lk
    lk.close()


@pytest.fixture(scope="session")
def acme(report_lake: Lake) -> LakeTableSource:
    return LakeTableSource(report_lake, ACME)
