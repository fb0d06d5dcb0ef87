"""Opening a home: the lake with the dataset registry and the home's audit sink."""

from __future__ import annotations

from typing import Any

from amzigo_lab.config import Settings
from amzigo_lab.datasets import REGISTRY
from amzigo_lab.lake.store import Lake


def _with_audit(lake: Lake, settings: Settings, given: bool) -> Lake:
    """Give the lake the home's tamper-evident audit log as its sink (unless one was given)."""
    if not given:
        from amzigo_lab.governance.auditing import AuditLogSink, open_audit_log

        lake.audit = AuditLogSink(lambda: open_audit_log(settings, lake))
    lake.emit_deferred()  # e.g. the one-time row-MAC migration, now into the home's audit log
    return lake


def init_home(settings: Settings, *, sandbox: bool = False, **kwargs: Any) -> Lake:
    """Create or re-open a home and write a commented config file if there is none.

    This (`amzigo init`, and the demo) is the only place a master key is created. With
    `sandbox` the home becomes a sandbox home (source/mode.py): refused on a home ever
    connected to Amazon."""
    lake = Lake.init(settings, REGISTRY, **kwargs)
    try:
        if sandbox:
            from amzigo_lab.source.mode import set_sandbox

            set_sandbox(lake)
        from amzigo_lab.compliance.certificates import signing_key

        signing_key(lake)  # created here, with the master key; later commands only load it
        from amzigo_lab.governance.policy_log import record_at_init

        record_at_init(lake)  # the policy in force is version 1 of the change log
        cfg = settings.home / "config.toml"
        if not cfg.exists() and not cfg.is_symlink():
            tmp = cfg.with_name("config.toml.tmp")
            try:
                tmp.write_text(DEFAULT_CONFIG, encoding="utf-8")
                tmp.replace(cfg)
            finally:
                tmp.unlink(missing_ok=True)
    except BaseException:
        lake.close()
        raise
    return _with_audit(lake, settings, kwargs.get("audit") is not None)


def open_lake(settings: Settings, **kwargs: Any) -> Lake:
    """Open the lake of an initialised home (its audit sink is the home's audit log)."""
    return _with_audit(
        Lake.open(settings, REGISTRY, **kwargs), settings, kwargs.get("audit") is not None
    )


def release_gateway_cache_on_drop(lake: Lake, reason: str) -> Lake:
    """Let this process's drops of `lake` ask the home's running gateway to empty its hot cache
    when it holds decrypted copies (else they are refused with `HotCacheBusy`). For processes
    other than the gateway (the CLI's purge, doctor --fix, the demo); never inside the gateway,
    which would be asking itself."""
    from amzigo_lab.client.cache_release import release_gateway_cache
    from amzigo_lab.lake import hot_cache

    home = lake.settings.home
    hot_cache.on_busy(lake, lambda: release_gateway_cache(home, reason))
    return lake


DEFAULT_CONFIG = """\
# amzigo-lab settings. Environment variables AMZIGO_<SETTING> override these.
# key_provider = "file"            # or "env" (base64 key in $AMZIGO_MASTER_KEY)
# key_file = "/secure/place/master.key"
# audit_checkpoint_dir = "/other/storage/audit-checkpoints"
# sandbox_seed = 7
# sandbox_today = "2026-11-27"
# pii_purposes = []                # e.g. ["order_fulfilment"] to ingest buyer PII
# hot_cache_mb = "auto"            # the gateway's cache of decrypted files (MiB); 0 turns it off
#
# [audit]
# anchor = "/other/storage/amzigo-audit-anchor"  # a copy of every checkpoint (make it chattr +a)
# checkpoint_every_events = 100
# checkpoint_every_seconds = 300
"""
