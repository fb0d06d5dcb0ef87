"""A real home with encrypted data in three tenants, fake sandbox buyers, and one user per role."""

from __future__ import annotations

import datetime as dt
import random
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyotp
from argon2 import PasswordHasher

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.datasets import ORDER_BUYERS
from amzigo_lab.governance.context import Governance
from amzigo_lab.home import init_home
from amzigo_lab.sandbox.people import make_buyer
from tests.lake.helpers import orders

PASSWORD = "Velvet-Harbor-Lamp-42"
TENANTS = ("acme", "globex", "initech")
ORDERS_PER_TENANT = {"acme": 5, "globex": 7, "initech": 3}
BUYERS_PER_TENANT = {"acme": 4, "globex": 2, "initech": 0}
# user -> (roles, tenant binding, tenant grants)
USERS: dict[str, tuple[tuple[str, ...], str | None, tuple[str, ...]]] = {
    "adm": (("admin",), None, ()),
    "ana": (("analyst",), None, ("acme", "globex")),
    "sam": (("seller",), "acme", ()),
    "pia": (("pii_processor",), None, ("acme",)),
    "cora": (("compliance",), None, ()),
    "mixed": (("seller", "pii_processor"), "acme", ("acme", "globex")),
    "nog": (("analyst",), None, ()),
}


def cheap_hasher() -> PasswordHasher:
    """argon2id with tiny costs: tests only."""
    return PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def buyers_table(tenant: str, n: int) -> tuple[pa.Table, list[str]]:
    """n fake sandbox buyers (names, emails, addresses) and the PII strings they contain."""
    rng = random.Random(f"buyers-{tenant}")
    people = [make_buyer(rng, "US") for _ in range(n)]
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    table = pa.Table.from_pydict(
        {
            "amazon_order_id": [f"{tenant}-b{i}" for i in range(n)],
            "marketplace_id": ["ATVPDKIKX0DER"] * n,
            "fetched_at": [t0] * n,
            "delivered_date": [None] * n,
            "buyer_name": [p.name for p in people],
            "buyer_email": [p.email for p in people],
            "ship_name": [p.address.name for p in people],
            "ship_address_line1": [p.address.line1 for p in people],
            "ship_city": [p.address.city for p in people],
            "ship_state": [p.address.state_or_region for p in people],
            "ship_postal_code": [p.address.postal_code for p in people],
            "ship_country": ["US"] * n,
            "ship_phone": [p.address.phone for p in people],
        },
        schema=ORDER_BUYERS.schema,
    )
    pii = [s for p in people for s in (p.name, p.email, p.address.line1, p.address.phone)]
    return table, pii


@dataclass
class World:
    """The test home: settings, user tokens and TOTP secrets, the fake PII written."""

    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    pii: list[str] = field(default_factory=list)

    def governance(self) -> Governance:
        return Governance.open(self.settings, hasher=cheap_hasher())


def build_world(root: Path) -> World:
    """Write real encrypted data through lake.write and create one user per role."""
    settings = load_settings(root / "home", env={})
    lake = init_home(settings)
    world = World(settings)
    day = "2026-03-01"
    for tenant in TENANTS:
        lake.write("orders", tenant, day, orders(ORDERS_PER_TENANT[tenant], f"{tenant}-"), "o1")
        if BUYERS_PER_TENANT[tenant]:
            table, pii = buyers_table(tenant, BUYERS_PER_TENANT[tenant])
            lake.write("order_buyers", tenant, day, table, "b1")
            world.pii += pii
    # a second version of one acme order: the latest-state view must show it once
    newer = orders(1, "acme-").set_column(
        3,
        "last_update_date",
        pa.array([dt.datetime(2026, 3, 2, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC")),
    )
    lake.write("orders", "acme", "2026-03-02", newer, "o2")
    lake.close()
    with world.governance() as gov:
        for name, (roles, tenant, grants) in USERS.items():
            enrol = gov.identity.add_user(name, roles, tenant, password=PASSWORD)
            query = urllib.parse.urlparse(enrol.provisioning_uri).query
            world.secrets[name] = urllib.parse.parse_qs(query)["secret"][0]
            for g in grants:
                gov.grants.grant(name, g, actor="test")
            code = pyotp.TOTP(world.secrets[name]).now()
            world.tokens[name] = gov.identity.authenticate(name, PASSWORD, code).token
    return world
