"""Per-tenant campaign rules from `<home>/config.toml`.

    [campaigns."acme-outdoor"]
    enable = true
    marketplaces = ["ATVPDKIKX0DER"]   # default: every marketplace of the tenant
    delay_days = 7                      # days after delivery (Amazon: 5 to 30)
    exclude_skus = ["GIFT-CARD-01"]
    exclude_refunded = true             # refunded or returned orders (returns are refunded)

A tenant without a table, or with `enable = false`, gets no review requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amzigo_lab.config import Settings, config_sections
from amzigo_lab.errors import ConfigError

#: Amazon's window: from 5 days after delivery to 30 days after the latest delivery date.
MIN_DELAY_DAYS = 5
MAX_DELAY_DAYS = 30
KEYS = ("enable", "marketplaces", "delay_days", "exclude_skus", "exclude_refunded")


@dataclass(frozen=True)
class Rules:
    """What one tenant's campaign sends."""

    tenant: str
    enable: bool = False
    marketplaces: tuple[str, ...] = ()  # empty: all of the tenant's marketplaces
    delay_days: int = MIN_DELAY_DAYS
    exclude_skus: frozenset[str] = frozenset()
    exclude_refunded: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "tenant": self.tenant,
            "enable": self.enable,
            "marketplaces": list(self.marketplaces),
            "delay_days": self.delay_days,
            "exclude_skus": sorted(self.exclude_skus),
            "exclude_refunded": self.exclude_refunded,
        }


def parse_rules(tenant: str, table: Mapping[str, Any]) -> Rules:
    """One `[campaigns."<tenant>"]` table; a bad key or value raises ConfigError naming it."""
    where = f'[campaigns."{tenant}"] in config.toml'
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(KEYS)}")

    def flag(key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{where} key '{key}': expected true or false, got {value!r}")
        return value

    def strings(key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where} key '{key}': expected a list of strings")
        return tuple(value)

    delay = table.get("delay_days", MIN_DELAY_DAYS)
    if isinstance(delay, bool) or not isinstance(delay, int):
        raise ConfigError(f"{where} key 'delay_days': expected an integer, got {delay!r}")
    if not MIN_DELAY_DAYS <= delay <= MAX_DELAY_DAYS:
        raise ConfigError(
            f"{where} key 'delay_days' = {delay}: Amazon accepts review requests from "
            f"{MIN_DELAY_DAYS} to {MAX_DELAY_DAYS} days after delivery"
        )
    return Rules(
        tenant=tenant,
        enable=flag("enable", False),
        marketplaces=strings("marketplaces"),
        delay_days=delay,
        exclude_skus=frozenset(strings("exclude_skus")),
        exclude_refunded=flag("exclude_refunded", True),
    )


def load_rules(settings: Settings) -> dict[str, Rules]:
    """Every tenant's rules declared in the home's config (tenants not named: disabled)."""
    section = config_sections(settings).get("campaigns", {})
    return {tenant: parse_rules(tenant, table) for tenant, table in sorted(section.items())}


def rules_for(rules: Mapping[str, Rules], tenant: str) -> Rules:
    """The tenant's rules, or the disabled default."""
    return rules.get(tenant) or Rules(tenant)


DEMO_RULES = """
# review-request campaigns (amzigo campaign plan --dry-run | run | status)
[campaigns."acme-outdoor"]
enable = true
delay_days = 7
exclude_refunded = true
"""


def add_demo_rules(settings: Settings) -> bool:
    """Give a demo home a campaign for acme-outdoor (unless its config declares campaigns)."""
    cfg = settings.home / "config.toml"
    text = cfg.read_text(encoding="utf-8") if cfg.exists() else ""
    if "campaigns" in config_sections(settings):
        return False
    cfg.write_text(text + DEMO_RULES, encoding="utf-8")
    return True
