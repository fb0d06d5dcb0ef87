"""Shared fixtures: a fresh home per test, with its real catalog, key file and lake."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake

# Gateways started on demand by tests exit on their own after this many idle seconds.
os.environ.setdefault("AMZIGO_GATEWAY_IDLE_EXIT", "120")


@pytest.fixture(scope="session", autouse=True)
def _stop_test_gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Stop every gateway this test session's homes started (each home holds its pid)."""
    yield
    from amzigo_lab.gateway.run import lock_holder

    for lock in tmp_path_factory.getbasetemp().rglob("state/gateway/gateway.lock"):
        pid = lock_holder(lock.parents[2])
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


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
