"""The governed session on a real encrypted home: the access matrix, bypass attempts, audit."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

import amzigo_lab
from amzigo_lab.client.workbench import Workbench
from amzigo_lab.errors import AccessDenied, UnknownDataset
from amzigo_lab.governance.alerting import collect_alerts
from amzigo_lab.governance.policy import Policy, Principal
from tests.governance.gov_fixtures import (
    BUYERS_PER_TENANT,
    ORDERS_PER_TENANT,
    TENANTS,
    USERS,
    World,
    build_world,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("gov"))


_BENCHES: dict[tuple[str, str], Workbench | AccessDenied] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_benches() -> Iterator[None]:
    yield
    for wb in _BENCHES.values():
        if isinstance(wb, Workbench):
            wb.close()
    _BENCHES.clear()


def bench(world: World, user: str, purpose: str) -> Workbench:
    """One workbench per (user, purpose), reused across the matrix (or the connect denial)."""
    key = (user, purpose)
    if key not in _BENCHES:
        try:
            _BENCHES[key] = amzigo_lab.connect(
                purpose, home=world.settings, token=world.tokens[user]
            )
        except AccessDenied as exc:
            _BENCHES[key] = exc
    got = _BENCHES[key]
    if isinstance(got, AccessDenied):
        raise got
    return got


def expected(user: str, dataset: str, tenant: str, purpose: str) -> bool:
    """The policy, written out by hand from the issue."""
    if user in ("sam", "mixed"):  # seller: own tenant, never PII (even with pii_processor)
        return dataset == "orders" and tenant == "acme" and purpose == "sales_analysis"
    if user == "ana":  # analyst: granted tenants, never PII
        return dataset == "orders" and tenant in ("acme", "globex") and purpose == "sales_analysis"
    if user == "pia":  # PII role + PII purpose, granted tenant only
        return purpose == "order_fulfilment" and tenant == "acme"
    return False  # admin, compliance, analyst without grants: no seller data


def true_rows(dataset: str, tenant: str) -> int:
    return (ORDERS_PER_TENANT if dataset == "orders" else BUYERS_PER_TENANT)[tenant]


MATRIX = list(
    itertools.product(
        ["adm", "ana", "sam", "pia", "cora", "mixed", "nog"],
        ["orders", "order_buyers"],
        TENANTS,
        ["sales_analysis", "order_fulfilment", "security"],
    )
)


@pytest.mark.parametrize(("user", "dataset", "tenant", "purpose"), MATRIX)
def test_access_matrix(world: World, user: str, dataset: str, tenant: str, purpose: str) -> None:
    want = expected(user, dataset, tenant, purpose)
    roles, binding, grants = USERS[user]
    who = Principal(user, roles, binding, frozenset(grants))
    spec = amzigo_lab_registry()[dataset]
    decision = Policy.default().decide(who, spec, tenant, purpose)
    assert decision.allowed is want, decision.reason
    try:
        wb = bench(world, user, purpose)
        n = wb.sql(f"SELECT count(*) AS n FROM {dataset} WHERE tenant = '{tenant}'")["n"][0]
    except AccessDenied as exc:
        assert not want, str(exc)
        return
    assert n == (true_rows(dataset, tenant) if want else 0)


def amzigo_lab_registry() -> dict[str, object]:
    from amzigo_lab.datasets import REGISTRY

    return dict(REGISTRY)


# -- a seller trying to reach other tenants ---------------------------------------------------


def test_seller_sees_only_own_tenant_through_every_door(world: World) -> None:
    wb = bench(world, "sam", "sales_analysis")
    assert "order_buyers" not in wb.datasets()
    assert wb.sql("SELECT DISTINCT tenant FROM orders_versions")["tenant"].to_list() == ["acme"]
    assert wb.sql("SELECT count(*) n FROM orders")["n"][0] == 5  # latest state
    assert wb.sql("SELECT count(*) n FROM orders_versions")["n"][0] == 6  # every version
    sub = "SELECT (SELECT count(*) FROM orders_versions WHERE tenant <> 'acme') AS n"
    assert wb.sql(sub)["n"][0] == 0
    join = (
        "SELECT count(*) n FROM orders a JOIN orders_versions b USING (amazon_order_id) "
        "WHERE b.tenant IN ('globex', 'initech')"
    )
    assert wb.sql(join)["n"][0] == 0
    t = wb.table("orders")
    assert t.filter(t.tenant == "globex").count().execute() == 0
    assert wb.polars("orders")["tenant"].unique().to_list() == ["acme"]
    names = set(wb.sql("SELECT table_name FROM information_schema.tables")["table_name"])
    assert "order_buyers" not in names and not any("globex" in n for n in names)
    public = {a for a in dir(wb) if not a.startswith("_")}
    assert public <= {
        "datasets",
        "table",
        "sql",
        "polars",
        "tenants",
        "refresh",
        "close",
        "user",
        "purpose",
    }


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_parquet('{lake}/**/*.parquet')",
        "SELECT * FROM read_parquet('{lake}/amazon/orders/tenant=globex/**/*.parquet')",
        "SELECT * FROM glob('{lake}/**')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY (SELECT * FROM orders) TO '{tmp}/out.csv'",
        "COPY orders_versions TO '{tmp}/out.parquet' (FORMAT parquet)",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET enable_external_access",
        "CALL enable_logging()",
        "SELECT 1; SELECT * FROM read_parquet('{lake}/x.parquet')",
        "EXPORT DATABASE '{tmp}/dump'",
        "CREATE SECRET (TYPE s3)",
        "SELECT * FROM order_buyers",
        "SELECT o.* FROM orders o WHERE o.amazon_order_id IN (SELECT amazon_order_id FROM order_buyers)",
    ],
)
def test_file_functions_and_hidden_datasets_are_refused(
    world: World, tmp_path: Path, query: str
) -> None:
    wb = bench(world, "sam", "sales_analysis")
    q = query.format(lake=world.settings.lake_dir, tmp=tmp_path)
    with pytest.raises(AccessDenied) as info:
        wb.sql(q)
    assert str(world.settings.home) not in str(info.value)
    assert not list(tmp_path.iterdir())


def test_denials_name_what_is_missing(world: World) -> None:
    with pytest.raises(AccessDenied, match="purpose 'tax' is not allowed"):
        bench(world, "ana", "tax")
    wb = bench(world, "ana", "sales_analysis")
    with pytest.raises(AccessDenied, match="buyer PII.*PII role"):
        wb.table("order_buyers")
    wb_pia = bench(world, "pia", "order_fulfilment")
    assert wb_pia.tenants("order_buyers") == ["acme"]
    with pytest.raises(AccessDenied, match="no tenant grant"):
        bench(world, "nog", "sales_analysis").table("orders")
    with pytest.raises(AccessDenied, match="unknown purpose"):
        amzigo_lab.connect("fun", home=world.settings, token=world.tokens["ana"])


def test_a_typo_in_a_dataset_name_names_the_readable_one(world: World) -> None:
    """A typo'd dataset suggests the nearest dataset the session can read (never a hidden PII
    one) and lists what it can read, through every door."""
    wb = bench(world, "ana", "sales_analysis")
    for call in (wb.table, wb.polars, wb.tenants):
        with pytest.raises(UnknownDataset) as info:
            call("ordres")
        message = str(info.value)
        assert "did you mean 'orders'?" in message and "can read: [" in message, message
    with pytest.raises(UnknownDataset) as info:
        wb.table("order_buyer")  # near the hidden order_buyers: not suggested, not named
    assert "order_buyers" not in str(info.value)


def test_pii_processor_reads_buyers_of_granted_tenant_only(world: World) -> None:
    wb = bench(world, "pia", "order_fulfilment")
    df = wb.polars("order_buyers")
    assert df.height == BUYERS_PER_TENANT["acme"]
    assert set(df["tenant"]) == {"acme"}
    with pytest.raises(AccessDenied, match="not allowed for role"):
        bench(world, "pia", "sales_analysis")


# -- audit ------------------------------------------------------------------------------------


def test_every_read_and_denial_is_audited_with_row_counts(world: World) -> None:
    wb = bench(world, "ana", "sales_analysis")
    wb.sql("SELECT * FROM orders")
    wb.polars("orders")
    wb.table("orders").execute()
    with pytest.raises(AccessDenied):
        wb.sql("SELECT * FROM read_parquet('x.parquet')")
    with world.governance() as gov:
        events = gov.audit_log.search(actor="ana", action="data.read")
    last = events[-4:]
    assert [e.decision for e in last] == ["allow", "allow", "allow", "deny"]
    assert [e.row_count for e in last[:3]] == [12, 12, 12]
    assert all(e.resource == "dataset:orders" and e.purpose == "sales_analysis" for e in last[:3])
    assert last[3].reason and last[3].row_count is None
    assert all(e.session for e in last)


def test_disable_revokes_a_live_session_at_once(world: World) -> None:
    wb = amzigo_lab.connect("sales_analysis", home=world.settings, token=world.tokens["mixed"])
    assert wb.sql("SELECT count(*) n FROM orders")["n"][0] == 5
    with world.governance() as gov:
        gov.identity.disable("mixed", actor="adm")
    with pytest.raises(AccessDenied, match="log in again"):
        wb.sql("SELECT count(*) n FROM orders")
    wb.close()
    with world.governance() as gov:
        gov.identity.enable("mixed")


def test_new_grant_takes_effect_on_next_read(world: World) -> None:
    wb = amzigo_lab.connect("sales_analysis", home=world.settings, token=world.tokens["nog"])
    with pytest.raises(AccessDenied):
        wb.sql("SELECT count(*) n FROM orders")
    with world.governance() as gov:
        gov.grants.grant("nog", "initech", actor="adm")
    assert wb.sql("SELECT tenant, count(*) n FROM orders GROUP BY ALL")["n"].to_list() == [3]
    with world.governance() as gov:
        gov.grants.revoke("nog", "initech")
    with pytest.raises(AccessDenied, match="no tenant grant"):
        wb.sql("SELECT count(*) n FROM orders")
    wb.close()


def test_no_buyer_pii_in_audit_log_alerts_or_errors(world: World) -> None:
    assert world.pii
    messages: list[str] = []
    pia = bench(world, "pia", "order_fulfilment")
    names = pia.sql("SELECT buyer_name, buyer_email FROM order_buyers")
    assert names.height == BUYERS_PER_TENANT["acme"]
    sam = bench(world, "sam", "sales_analysis")
    email, name = world.pii[1], world.pii[0]
    for q in [
        f"SELECT * FROM order_buyers WHERE buyer_email = '{email}'",
        f"SELECT * FROM read_csv('/{name}/{email}')",
        f"SELECT '{email}' AS e FROM order_buyers",
    ]:
        with pytest.raises(AccessDenied) as info:
            sam.sql(q)
        messages.append(str(info.value))
    with pytest.raises(AccessDenied) as info:
        sam.table("order_buyers")
    messages.append(str(info.value))
    with world.governance() as gov:
        events = gov.audit_log.search()
        alerts = collect_alerts(gov)
        text = "\n".join(repr(e.to_dict()) for e in events)
        alert_text = "\n".join(a.to_json() for a in alerts)
    raw = b"".join(
        p.read_bytes()
        for d in (world.settings.audit_path, world.settings.checkpoint_path)
        for p in d.rglob("*")
        if p.is_file()
    )
    assert any(e.action == "data.read" and e.resource == "dataset:order_buyers" for e in events)
    for value in world.pii:
        assert value not in text, value
        assert value not in alert_text, value
        assert value.encode() not in raw, value
        assert all(value not in m for m in messages), value


def test_repeated_denials_raise_an_alert(world: World) -> None:
    wb = bench(world, "sam", "sales_analysis")
    for _ in range(5):
        with pytest.raises(AccessDenied):
            wb.table("order_buyers")
    with world.governance() as gov:
        alerts = collect_alerts(gov)
    assert any(a.rule == "repeated_denials" and a.actor == "sam" for a in alerts)
