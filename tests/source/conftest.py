"""Fixtures: a sandbox per test (fresh stats and rate buckets) and a home whose today matches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake
from amzigo_lab.sandbox import ReportTimings, SandboxServer, World

TODAY = dt.date(2026, 11, 20)
SEED = 7
ACME = "acme-outdoor"


@pytest.fixture(scope="session")
def world() -> World:
    """The shared test world."""
    return World(seed=SEED, today=TODAY)


@pytest.fixture(scope="session")
def sandbox_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sandbox certificates, generated once per session."""
    return tmp_path_factory.mktemp("sandbox-state")


def start_server(world: World, state: Path, **kwargs: object) -> SandboxServer:
    """A fast sandbox: limits refill 1000x faster, reports finish in ~0.1 s."""
    options: dict[str, object] = {"time_scale": 1000, "report_timings": ReportTimings(50, 50)}
    options.update(kwargs)
    return SandboxServer(world, state, **options).start()  # type: ignore[arg-type]


@pytest.fixture
def server(world: World, sandbox_state: Path) -> Iterator[SandboxServer]:
    """A fresh sandbox for one test."""
    running = start_server(world, sandbox_state)
    yield running
    running.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A home whose sandbox world is the test world (no PII purpose)."""
    return load_settings(tmp_path / "home", env={}, sandbox_seed=SEED, sandbox_today=TODAY)


@pytest.fixture
def lake(settings: Settings) -> Iterator[Lake]:
    """An initialised lake with an in-memory audit sink."""
    lk = init_home(settings, audit=MemorySink())
    yield lk
    lk.close()
