"""Issue 17: the gateway's hot cache (decrypted files in the gateway's memory) through real
gateway processes and real encrypted homes: the same answers with the cache on and off, a purge
run by the CLI while the gateway holds entries (the gateway is asked to let go, audited), a drop
still refused when another holder does not let go, and grant revocation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import amzigo_lab
from amzigo_lab.cli import main
from amzigo_lab.client import protocol
from amzigo_lab.client.service import operator_token
from amzigo_lab.client.transport import GatewayClient, ensure_gateway
from amzigo_lab.errors import AccessDenied, AmzigoError
from amzigo_lab.lake.catalog import ALL_STATES
from tests.compliance.cache_holder import start_holder
from tests.governance.gov_fixtures import World, build_world

PURGE_DAY = "2026-04-15"  # buyer PII of 2026-03-01 (30 days) is due, orders (18 months) are not
QUERIES = {
    "totals": "SELECT tenant, count(*) AS n, sum(order_total) AS total FROM orders "
    "GROUP BY 1 ORDER BY 1",
    "latest": "SELECT * FROM orders ORDER BY tenant, amazon_order_id",
    "versions": "SELECT * FROM orders_versions ORDER BY tenant, amazon_order_id, ingest_date",
    "join": "SELECT o.tenant, count(*) AS n FROM orders o JOIN orders_versions v "
    "USING (tenant, amazon_order_id) GROUP BY 1 ORDER BY 1",
}


def _world(root: Path, hot_cache_mb: str) -> World:
    """A test home whose config sets `hot_cache_mb` (TOML text: '"auto"' or a number)."""
    world = build_world(root)
    with (world.settings.home / "config.toml").open("a", encoding="utf-8") as fh:
        fh.write(f"\nhot_cache_mb = {hot_cache_mb}\n")
    return world


def _stop(world: World) -> None:
    with GatewayClient(
        ensure_gateway(world.settings.home), operator_token(world.settings.home)
    ) as op:
        op.action(protocol.SHUTDOWN, {})


def _cache(world: World) -> dict[str, Any]:
    with GatewayClient(ensure_gateway(world.settings.home)) as client:
        return dict(client.health()["hot_cache"])


def _audit(world: World, **query: str) -> list[Any]:
    with world.governance() as gov:
        return list(gov.audit_log.search(**query))


def _answers(world: World) -> dict[str, Any]:
    """Every kind of governed read, through amzigo_lab.connect()."""
    out: dict[str, Any] = {}
    with amzigo_lab.connect("sales_analysis", home=world.settings, token=world.tokens["ana"]) as wb:
        for name, query in QUERIES.items():
            out[name] = wb.sql(query)
        out["ibis"] = int(wb.table("orders").count().execute())
        out["polars"] = wb.polars("orders").sort("tenant", "amazon_order_id")
    with amzigo_lab.connect("sales_analysis", home=world.settings, token=world.tokens["sam"]) as wb:
        out["seller"] = wb.sql(QUERIES["latest"])
    with amzigo_lab.connect(
        "order_fulfilment", home=world.settings, token=world.tokens["pia"]
    ) as wb:
        out["buyers"] = wb.sql("SELECT * FROM order_buyers ORDER BY amazon_order_id")
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if hasattr(a[key], "equals"):
            assert a[key].equals(b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, World]]:
    off = _world(tmp_path_factory.mktemp("hot-off"), "0")
    on = _world(tmp_path_factory.mktemp("hot-on"), '"auto"')
    yield off, on
    for world in (off, on):
        _stop(world)


def test_the_same_answers_with_the_cache_on_and_off(worlds: tuple[World, World]) -> None:
    off, on = worlds
    cold = _answers(off)
    assert _cache(off) == {"budget_bytes": 0}  # hot_cache_mb = 0: off
    assert cold["totals"]["n"].to_list() == [5, 7] and cold["ibis"] == 12
    assert cold["buyers"].height == 4 and set(cold["seller"]["tenant"]) == {"acme"}
    first = _answers(on)
    stats = _cache(on)
    assert stats["budget_bytes"] > 0 and stats["files"] > 0 and stats["bytes"] > 0
    repeat = _answers(on)
    _same(cold, first)
    _same(cold, repeat)
    again = _cache(on)
    assert again["hits"] > stats["hits"] and again["misses"] == stats["misses"]
    assert again["files"] == stats["files"]
    shown = CliRunner().invoke(main, ["gateway", "status", "--home", str(on.settings.home)])
    assert shown.exit_code == 0 and "hot cache:" in shown.output and "hit(s)" in shown.output
    shown = CliRunner().invoke(main, ["gateway", "status", "--home", str(off.settings.home)])
    assert "hot cache: off" in shown.output


def _purge(world: World) -> Any:
    return CliRunner().invoke(
        main, ["purge", "--as-of", PURGE_DAY, "--json", "--home", str(world.settings.home)]
    )


def _buyer_partitions(world: World) -> dict[int, str]:
    with world.governance() as gov:
        return {
            p.id: p.state for p in gov.lake.catalog.partitions("order_buyers", states=ALL_STATES)
        }


def test_a_cli_purge_empties_the_gateway_cache_and_the_purged_rows_are_not_served(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    world = _world(tmp_path_factory.mktemp("hot-purge"), '"auto"')
    try:
        pia = amzigo_lab.connect("order_fulfilment", home=world.settings, token=world.tokens["pia"])
        buyers = pia.sql("SELECT buyer_name FROM order_buyers")
        assert buyers.height == 4
        held = _cache(world)
        assert held["files"] >= 1
        # the daily purge, run by the CLI in its own process while the gateway caches buyer PII
        out = _purge(world)
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["certificate_id"]
        assert set(_buyer_partitions(world).values()) == {"dropped"}
        assert _cache(world)["files"] == 0  # emptied at the purge's request, nothing since
        released = _audit(world, action="gateway.hot_cache")
        assert len(released) == 1 and "amzigo purge" in released[0].reason
        assert released[0].actor.startswith("operator:")
        # the session opened before the purge gets an error, never the purged rows
        with pytest.raises(AmzigoError):
            pia.sql("SELECT buyer_name FROM order_buyers")
        pia.close()
        with amzigo_lab.connect(
            "order_fulfilment", home=world.settings, token=world.tokens["pia"]
        ) as fresh:
            assert fresh.sql("SELECT * FROM order_buyers").height == 0
        # caching goes on after the drop; a deletion notice run inside the gateway drops
        # globex while the gateway caches its orders
        with amzigo_lab.connect(
            "sales_analysis", home=world.settings, token=world.tokens["ana"]
        ) as ana:
            assert ana.sql(QUERIES["totals"])["n"].to_list() == [5, 7]
        assert _cache(world)["files"] >= 3
        with GatewayClient(ensure_gateway(world.settings.home), world.tokens["cora"]) as cora:
            cora.action(protocol.NOTICE_DELETE, {"tenant": "globex", "notice": "N-1"})
        with amzigo_lab.connect(
            "sales_analysis", home=world.settings, token=world.tokens["ana"]
        ) as ana:
            assert ana.sql(QUERIES["totals"])["tenant"].to_list() == ["acme"]
            assert ana.sql("SELECT * FROM orders_versions WHERE tenant = 'globex'").height == 0
        assert len(_audit(world, action="gateway.hot_cache")) == 1  # the gateway's own drop
    finally:
        _stop(world)


def test_an_erasure_inside_the_gateway_while_it_caches_the_subject(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`amzigo dsr erase` runs in the gateway: its drop empties the gateway's own cache first."""
    from amzigo_lab.compliance.dsr import index_buyers
    from amzigo_lab.home import open_lake

    world = _world(tmp_path_factory.mktemp("hot-erase"), '"auto"')
    with open_lake(world.settings) as lake:
        index_buyers(lake)
    email, name = world.pii[1], world.pii[0]  # acme's first buyer
    buyers = "SELECT buyer_name, buyer_email FROM order_buyers"
    try:
        pia = amzigo_lab.connect("order_fulfilment", home=world.settings, token=world.tokens["pia"])
        assert email in pia.sql(buyers)["buyer_email"].to_list()
        assert _cache(world)["files"] >= 1
        with GatewayClient(ensure_gateway(world.settings.home), world.tokens["cora"]) as cora:
            done = cora.action(protocol.DSR_ERASE, {"subject": {"email": email}, "tenant": "acme"})
        assert done["certificate_id"]
        assert _cache(world)["files"] == 0  # the gateway's own drop emptied it
        with pytest.raises(AmzigoError):  # the old session: an error, never the erased buyer
            pia.sql(buyers)
        pia.close()
        with amzigo_lab.connect(
            "order_fulfilment", home=world.settings, token=world.tokens["pia"]
        ) as fresh:
            for _ in range(2):  # loaded, then from the cache
                rows = fresh.sql(buyers)
                assert rows.height == 3
                assert email not in rows["buyer_email"].to_list()
                assert name not in rows["buyer_name"].to_list()
        assert _cache(world)["hits"] >= 1
    finally:
        _stop(world)


def test_a_purge_is_refused_when_a_holder_does_not_let_go(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    world = _world(tmp_path_factory.mktemp("hot-refused"), '"auto"')
    home = world.settings.home
    proc = start_holder(home)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert json.loads(proc.stdout.readline())  # another process caches decrypted orders
        with amzigo_lab.connect(
            "order_fulfilment", home=world.settings, token=world.tokens["pia"]
        ) as pia:
            assert pia.sql("SELECT buyer_name FROM order_buyers").height == 4
        assert _cache(world)["files"] >= 1
        before = _buyer_partitions(world)
        out = _purge(world)
        assert out.exit_code != 0
        assert "hot cache" in out.output and "Nothing was changed" in out.output
        assert _buyer_partitions(world) == before and set(before.values()) == {"live"}
        # the gateway was asked and let go (audited); the other holder did not
        assert len(_audit(world, action="gateway.hot_cache")) == 1
        # only the operator credential (the home's service account) may ask
        with (
            GatewayClient(ensure_gateway(home), world.tokens["adm"]) as adm,
            pytest.raises(AccessDenied, match="operator credential"),
        ):
            adm.action(protocol.HOT_CACHE_RELEASE, {"reason": "not mine"})
        assert len(_audit(world, action="gateway.hot_cache")) == 1
        with amzigo_lab.connect(
            "order_fulfilment", home=world.settings, token=world.tokens["pia"]
        ) as pia:  # nothing changed: still readable (and cached again)
            assert pia.sql("SELECT buyer_name FROM order_buyers").height == 4
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "cleared"
        out = _purge(world)
        assert out.exit_code == 0, out.output
        assert set(_buyer_partitions(world).values()) == {"dropped"}
    finally:
        proc.stdin.close()
        proc.wait()
        _stop(world)


def test_a_revoked_tenant_is_not_served_from_the_shared_cache(
    worlds: tuple[World, World],
) -> None:
    _off, on = worlds
    ana = amzigo_lab.connect("sales_analysis", home=on.settings, token=on.tokens["ana"])
    try:
        assert ana.sql(QUERIES["totals"])["tenant"].to_list() == ["acme", "globex"]
        cached = _cache(on)["files"]
        with GatewayClient(ensure_gateway(on.settings.home), on.tokens["adm"]) as adm:
            adm.action(protocol.USERS_GRANT, {"name": "ana", "tenant": "globex", "revoke": True})
        # the same session, at its next read: globex's files are still cached (for whoever
        # may read them), but ana's scans no longer ask for them
        assert ana.sql(QUERIES["totals"])["tenant"].to_list() == ["acme"]
        assert ana.sql("SELECT count(*) AS n FROM orders_versions WHERE tenant = 'globex'")[
            "n"
        ].to_list() == [0]
        assert _cache(on)["files"] == cached
        with amzigo_lab.connect("sales_analysis", home=on.settings, token=on.tokens["nog"]) as nog:
            assert "orders" not in nog.datasets() or nog.sql(QUERIES["totals"]).height == 0
    finally:
        ana.close()
        with GatewayClient(ensure_gateway(on.settings.home), on.tokens["adm"]) as adm:
            adm.action(protocol.USERS_GRANT, {"name": "ana", "tenant": "globex"})


def test_the_budget_setting(tmp_path: Path) -> None:
    from amzigo_lab.config import HOT_CACHE_AUTO_CAP, MIB, load_settings
    from amzigo_lab.errors import ConfigError

    assert load_settings(tmp_path, env={}).hot_cache_bytes == 0  # off unless asked for
    auto = load_settings(tmp_path, env={"AMZIGO_HOT_CACHE_MB": "auto"})
    assert 0 < auto.hot_cache_bytes <= HOT_CACHE_AUTO_CAP
    assert load_settings(tmp_path, env={"AMZIGO_HOT_CACHE_MB": "0"}).hot_cache_bytes == 0
    assert load_settings(tmp_path, env={"AMZIGO_HOT_CACHE_MB": "auto"}).hot_cache_mb is None
    assert load_settings(tmp_path, hot_cache_mb=4096).hot_cache_bytes == 4096 * MIB
    with pytest.raises(ConfigError, match="HOT_CACHE_MB"):
        load_settings(tmp_path, env={"AMZIGO_HOT_CACHE_MB": "lots"})
