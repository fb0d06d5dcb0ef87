"""The synthetic world: determinism, laziness, lifecycles, fake PII, plain-Python view."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from amzigo_lab.sandbox import SELLERS, OrderStatus, SandboxServer, World
from tests.sandbox.helpers import SEED, TODAY, US, Api


def test_roster() -> None:
    assert [s.tenant for s in SELLERS] == ["acme-outdoor", "bluebird-home", "cobalt-tech"]
    for seller in SELLERS:
        assert re.fullmatch(r"^[a-z0-9][a-z0-9_-]{0,63}$", seller.tenant)
        assert seller.refresh_token == f"sandbox-refresh-{seller.tenant}"
        assert not seller.refresh_token.startswith(("Atzr|", "amzn1."))
    markets = {m.marketplace_id for s in SELLERS for m in s.marketplaces}
    assert markets == {"ATVPDKIKX0DER", "A1F83G8C2ARO7P", "A1PA6795UKMFR9"}


def test_same_inputs_same_bytes(state_dir: Path) -> None:
    bodies = []
    for _ in range(2):
        with SandboxServer(World(seed=SEED, today=TODAY), state_dir, time_scale=None) as server:
            api = Api(server)
            bodies.append(
                (
                    api.get(
                        "/orders/v0/orders", CreatedAfter="2026-11-15", MarketplaceIds=US
                    ).content,
                    api.get("/finances/v0/financialEvents", PostedAfter="2026-11-10").content,
                    api.get(
                        "/fba/inventory/v1/summaries",
                        details="true",
                        granularityType="Marketplace",
                        granularityId=US,
                        marketplaceIds=US,
                    ).content,
                )
            )
    assert bodies[0] == bodies[1]
    other = World(seed=SEED + 1, today=TODAY)
    assert next(other.orders("acme-outdoor", TODAY - timedelta(days=3))) != next(
        World(seed=SEED, today=TODAY).orders("acme-outdoor", TODAY - timedelta(days=3))
    )


def test_orders_keep_content_and_evolve_status() -> None:
    day = TODAY - timedelta(days=2)
    early = {o.order_id: o for o in World(seed=SEED, today=TODAY).orders("acme-outdoor", day)}
    later = {
        o.order_id: o
        for o in World(seed=SEED, today=TODAY + timedelta(days=10)).orders("acme-outdoor", day)
    }
    assert early.keys() == later.keys()
    assert all(early[k].items == later[k].items for k in early)
    assert any(o.status is OrderStatus.UNSHIPPED for o in early.values())
    assert all(o.status in (OrderStatus.SHIPPED, OrderStatus.CANCELED) for o in later.values())
    changed = [k for k in early if early[k].last_update_date != later[k].last_update_date]
    assert changed and all(later[k].last_update_date > early[k].last_update_date for k in changed)


def test_lifecycle_mix_and_money(world: World) -> None:
    orders = [
        o for d in world.days(TODAY - timedelta(days=60)) for o in world.orders("cobalt-tech", d)
    ]
    statuses = Counter(o.status for o in orders)
    assert statuses[OrderStatus.SHIPPED] > statuses[OrderStatus.CANCELED] > 0
    assert statuses[OrderStatus.UNSHIPPED] > 0
    channels = Counter(o.fulfillment_channel for o in orders)
    assert channels["AFN"] > channels["MFN"] > 0
    assert any(o.refund is not None for o in orders)
    assert any(o.delivered_at is not None for o in orders)
    for order in orders:
        assert (order.buyer is not None) == (order.fulfillment_channel == "MFN")
        if order.buyer:
            assert order.buyer.email.endswith(("@example.com", "@marketplace.example"))
        assert order.earliest_delivery_date < order.latest_delivery_date
        assert order.purchase_date <= order.last_update_date <= world.now
    assert {o.currency for o in orders} == {"USD", "GBP", "EUR"}


def test_history_window_and_lookup(world: World) -> None:
    assert (world.today - world.first_day).days >= 120
    assert list(world.orders("acme-outdoor", TODAY)) == []
    assert list(world.orders("acme-outdoor", world.first_day - timedelta(days=1))) == []
    order = next(world.orders("bluebird-home", date(2026, 9, 1)))
    assert world.order(order.order_id) == order
    assert world.order("not-an-order") is None


def test_scale_multiplies_orders() -> None:
    day = TODAY - timedelta(days=5)
    base = sum(1 for _ in World(seed=SEED, today=TODAY).orders("cobalt-tech", day))
    big = sum(1 for _ in World(seed=SEED, today=TODAY, scale=50).orders("cobalt-tech", day))
    assert 35 * base < big < 65 * base


def test_inventory_and_traffic(world: World) -> None:
    market = world.marketplace(US)
    levels = world.inventory("acme-outdoor", market)
    assert len(levels) == 60 and all(level.fulfillable >= 0 for level in levels)
    assert any(
        level.inbound_shipped or level.inbound_working or level.inbound_receiving
        for level in levels
    )
    traffic = world.traffic("acme-outdoor", market, TODAY - timedelta(days=1))
    assert all(t.sessions > 0 and t.page_views >= t.sessions for t in traffic)
