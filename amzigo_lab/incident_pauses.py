"""Ingestion and schedule pauses an open incident placed (a leaf module: reads one JSON file).

The gateway publishes `<home>/state/incident-pauses.json` (0600) whenever an isolation pauses
or a restore resumes ingestion for a scope (amzigo_lab.governance.incidents). `amzigo ingest`
skips paused tenants (and refuses when everything is paused); the scheduler does not start a
paused job. '*' pauses every tenant.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

PAUSES_FILE = "incident-pauses.json"


def pauses_path(home: Path) -> Path:
    """Where the gateway publishes the pauses of a home."""
    return home / "state" / PAUSES_FILE


def paused_tenants(home: Path) -> dict[str, str]:
    """Paused tenant ('*': all) -> the incident that paused it."""
    try:
        data = json.loads(pauses_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, str] = {}
    for pause in data.get("pauses", []):
        for tenant in pause.get("tenants", []):
            out[str(tenant)] = str(pause.get("incident", ""))
    return out


def job_paused(home: Path, argv: Sequence[str]) -> str | None:
    """Why a scheduled job must not start now (an incident paused it), or None.

    Everything paused: every job but the retention purge (legal holds keep the evidence).
    A tenant paused: jobs naming that tenant (`--tenant T`)."""
    paused = paused_tenants(home)
    if not paused:
        return None
    if "*" in paused and (not argv or argv[0] != "purge"):
        return f"paused by incident {paused['*']} (all ingestion and schedules)"
    for flag, value in itertools.pairwise(argv):
        if flag == "--tenant" and value in paused:
            return f"paused by incident {paused[value]} (tenant {value})"
    return None
