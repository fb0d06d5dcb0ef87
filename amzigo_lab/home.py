"""Opening a home: the lake with the dataset registry and the home's audit sink."""

from __future__ import annotations

from typing import Any

from amzigo_lab.config import Settings
from amzigo_lab.datasets import REGISTRY
from amzigo_lab.lake.store import Lake


def init_home(settings: Settings, **kwargs: Any) -> Lake:
    """Create or re-open a home and write a commented config file if there is none."""
    lake = Lake.init(settings, REGISTRY, **kwargs)
    cfg = settings.home / "config.toml"
    if not cfg.exists():
        cfg.write_text(DEFAULT_CONFIG, encoding="utf-8")
    return lake


def open_lake(settings: Settings, **kwargs: Any) -> Lake:
    """Open the lake of an initialised home."""
    return Lake.open(settings, REGISTRY, **kwargs)


DEFAULT_CONFIG = """\
# amzigo-lab settings. Environment variables AMZIGO_<SETTING> override these.
# key_provider = "file"            # or "env" (base64 key in $AMZIGO_MASTER_KEY)
# key_file = "/secure/place/master.key"
# audit_checkpoint_dir = "/other/storage/audit-checkpoints"
# sandbox_seed = 7
# sandbox_today = "2026-11-27"
# pii_purposes = []                # e.g. ["order_fulfilment"] to ingest buyer PII
"""
