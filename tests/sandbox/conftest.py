"""Fixtures for the sandbox tests: a world and a running HTTPS server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amzigo_lab.sandbox import ReportTimings, SandboxServer, World
from tests.sandbox.helpers import SEED, TODAY, Api


@pytest.fixture(scope="session")
def world() -> World:
    """The shared test world."""
    return World(seed=SEED, today=TODAY)


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding the sandbox CA and server certificate."""
    return tmp_path_factory.mktemp("sandbox-state")


@pytest.fixture(scope="session")
def server(world: World, state_dir: Path) -> Iterator[SandboxServer]:
    """A fast sandbox (rate limits refilled 1000x faster, reports done in ~0.5 s)."""
    with SandboxServer(
        world, state_dir, time_scale=1000, report_timings=ReportTimings(200, 300)
    ) as running:
        yield running


@pytest.fixture()
def api(server: SandboxServer) -> Iterator[Api]:
    """Client for the shared server as ``acme-outdoor``."""
    client = Api(server)
    yield client
    client.http.close()
