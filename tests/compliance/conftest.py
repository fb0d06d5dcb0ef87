"""Fixtures: a home with a real audit log, an injectable clock and compliance users."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from argon2 import PasswordHasher

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.datasets import ORDER_BUYERS
from amzigo_lab.governance.identity import IdentityStore
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake

T0 = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)


class Clock:
    """A settable clock."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set_day(self, day: dt.date) -> None:
        self.now = dt.datetime.combine(day, dt.time(9), dt.UTC)


def make_users(home: Path) -> None:
    """alice and bob (compliance), carol (analyst) in <home>/identity.sqlite."""
    store = IdentityStore(
        home / "identity.sqlite",
        lambda: b"k" * 32,
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )
    for user, roles in (("alice", ["compliance"]), ("bob", ["compliance"]), ("carol", ["analyst"])):
        store.add_user(user, roles, password="Zq8!Violet-Tundra-Kettle")
    store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path / "home", env={}, reports_dir=tmp_path / "home" / "reports")


@pytest.fixture
def lake(settings: Settings, clock: Clock) -> Iterator[Lake]:
    """A home with the real audit log (the home's AuditLogSink) and compliance users."""
    lk = init_home(settings, clock=clock)
    make_users(settings.home)
    yield lk
    close = getattr(lk.audit, "close", None)
    if close is not None:
        close()
    lk.close()


def buyers(
    delivered: list[dt.date | None], prefix: str = "b", person: str = "Canary Buyer"
) -> pa.Table:
    """Fake-PII buyer rows: order ids `<prefix><i>`, e-mail `<prefix><i>@example.com`."""
    n = len(delivered)
    return pa.Table.from_pydict(
        {
            "amazon_order_id": [f"{prefix}{i}" for i in range(n)],
            "marketplace_id": ["ATVPDKIKX0DER"] * n,
            "fetched_at": [T0] * n,
            "delivered_date": delivered,
            "buyer_name": [f"{person} {prefix}{i}" for i in range(n)],
            "buyer_email": [f"{prefix}{i}@example.com" for i in range(n)],
            "ship_name": [f"{person} {prefix}{i}" for i in range(n)],
            "ship_address_line1": [f"{i} Canary Wharf Lane {prefix}" for i in range(n)],
            "ship_city": ["Springfield"] * n,
            "ship_state": ["ST"] * n,
            "ship_postal_code": ["SW1A 1AA"] * n,
            "ship_country": ["US"] * n,
            "ship_phone": [None] * n,
        },
        schema=ORDER_BUYERS.schema,
    )


def canary_hits(home: Path, needles: list[str]) -> list[Path]:
    """Every file under the whole home (lake, catalog, audit, reports, exports, state, temp)
    holding any needle in plaintext."""
    from amzigo_lab.compliance.common import scan_for

    return scan_for(home, needles)


def compliance_session(home: Path, user: str = "dora") -> str:
    """A new compliance user `user` created through the home's governance (its real TOTP key),
    logged in: the $AMZIGO_SESSION token for a CLI run of a compliance command."""
    import pyotp

    from amzigo_lab.governance.context import Governance

    password = "Zq8!Violet-Tundra-Kettle"
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    with Governance.open(load_settings(home, env={}), hasher=hasher) as gov:
        uri = gov.identity.add_user(user, ["compliance"], password=password).provisioning_uri
        return gov.identity.authenticate(user, password, pyotp.parse_uri(uri).now()).token


def cli_sessions(home: Path) -> dict[str, str]:
    """alice and bob (compliance), carol (analyst) created through the home's governance (its
    real TOTP key), each logged in: user -> $AMZIGO_SESSION token for CLI runs."""
    import pyotp

    from amzigo_lab.governance.context import Governance

    password = "Zq8!Violet-Tundra-Kettle"
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    tokens = {}
    with Governance.open(load_settings(home, env={}), hasher=hasher) as gov:
        for user, roles in (
            ("alice", ["compliance"]),
            ("bob", ["compliance"]),
            ("carol", ["analyst"]),
        ):
            uri = gov.identity.add_user(user, roles, password=password).provisioning_uri
            code = pyotp.parse_uri(uri).now()
            tokens[user] = gov.identity.authenticate(user, password, code).token
    return tokens
