"""The gateway as key service for distributed reads (issue 15): job tokens, the HTTPS unwrap
endpoint, revocation by drops, and Dask reads, against a real gateway and real encrypted files."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
import pytest

import amzigo_lab
from amzigo_lab.client import protocol
from amzigo_lab.client import scale as client_scale
from amzigo_lab.client.scale import JobPlan, plan_job, revoke_job
from amzigo_lab.client.transport import GatewayClient, ensure_gateway
from amzigo_lab.client.workbench import Workbench
from amzigo_lab.errors import AccessDenied
from tests.governance.gov_fixtures import World, build_world
from tests.serve.helpers import tls_handshake


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("scale"))


@pytest.fixture(scope="module")
def address(world: World) -> str:
    return ensure_gateway(world.settings.home)


@pytest.fixture(scope="module")
def ana(world: World, address: str) -> Iterator[Workbench]:
    wb = amzigo_lab.connect("sales_analysis", token=world.tokens["ana"], address=address)
    yield wb
    wb.close()


def _audit(world: World, **query: str) -> list[Any]:
    with world.governance() as gov:
        return list(gov.audit_log.search(**query))


def _post(plan: JobPlan, path: str, body: bytes, token: str | None = None) -> tuple[int, dict]:
    """A raw HTTPS call to the unwrap endpoint (method POST), trusting the plan's CA."""
    import http.client

    url = urllib.parse.urlsplit(plan.unwrap_url)
    context = ssl.create_default_context(cadata=plan.ca_pem)
    conn = http.client.HTTPSConnection(url.hostname or "", url.port, context=context, timeout=30)
    headers = {"Authorization": f"Bearer {token or plan.job_token}"}
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    answer = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, answer


class _Recorder(pe.KmsClient):
    """Records the (wrapped KEK, key id) pyarrow asks to unwrap, then refuses."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def __init__(self) -> None:
        pe.KmsClient.__init__(self)

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        raise RuntimeError("read only")

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        _Recorder.seen.append((wrapped_key, master_key_identifier))
        raise RuntimeError("recorded")


def _wrapped_kek(path: str) -> tuple[str, str]:
    """The wrapped KEK and partition key id in a lake file's key material (no key needed)."""
    _Recorder.seen.clear()
    factory = pe.CryptoFactory(lambda _c: _Recorder())
    props = factory.file_decryption_properties(
        pe.KmsConnectionConfig(), pe.DecryptionConfiguration()
    )
    with pytest.raises(Exception, match="recorded"):
        pq.ParquetFile(path, decryption_properties=props)
    return _Recorder.seen[0]


def test_a_plan_right_after_the_gateway_starts_waits_for_its_endpoint(
    world: World, address: str
) -> None:
    # the first test of the module: the gateway was started on demand just now and answers
    # Flight calls before its unwrap endpoint is up; the plan waits for it
    with GatewayClient(address, world.tokens["ana"]) as client:
        plan = plan_job(client, ["orders"], tenants=["acme"], purpose="sales_analysis")
        assert plan.unwrap_url.startswith("https://127.0.0.1:")
        assert "BEGIN CERTIFICATE" in plan.ca_pem
        assert revoke_job(client, plan) is True


def test_plan_lists_the_catalogs_files_for_exactly_the_granted_scope(
    world: World, ana: Workbench
) -> None:
    plan = plan_job(ana, ["orders"], engine="spark")
    assert plan.job_id.startswith("job-") and len(plan.job_token) >= 43
    files = plan.files["orders"]
    assert files and all(f.startswith(plan.lake_dir) for f in files)
    assert {"tenant=acme", "tenant=globex"} == {
        p for f in files for p in f.split("/") if p.startswith("tenant=")
    }  # ana's grants; never initech
    assert len(plan.key_ids) == 3  # acme's two ingest dates and globex's one
    assert plan.datasets["orders"]["latest"] == {
        "keys": ["tenant", "amazon_order_id"],
        "order": ["last_update_date", "ingest_date"],
    }
    later = plan_job(ana, ["orders"], tenants=["acme"], since="2026-03-02")
    assert len(later.key_ids) == 1 and set(later.key_ids) < set(plan.key_ids)
    assert [f.split("/")[-2] for f in later.files["orders"]] == ["ingest_date=2026-03-02"]
    with pytest.raises(AccessDenied, match="initech"):
        plan_job(ana, ["orders"], tenants=["initech"])
    with pytest.raises(AccessDenied, match="PII|pii"):
        plan_job(ana, ["order_buyers"])
    events = _audit(world, action="scale.plan")
    assert [e.decision for e in events][-2:] == ["deny", "deny"]
    allowed = [e for e in events if e.decision == "allow" and e.resource == f"job:{plan.job_id}"]
    assert allowed and "files 3" in allowed[0].reason and allowed[0].actor == "ana"
    assert plan.job_token not in repr([e.to_dict() for e in events])


def test_service_tokens_plan_their_one_tenant_and_other_tokens_cannot_plan(
    world: World, address: str
) -> None:
    from amzigo_lab.client.service import operator_token

    request = {"actor": "svc:reports", "tenant": "acme", "purposes": ["sales_analysis"]}
    operator = operator_token(world.settings.home)
    with GatewayClient(address, operator) as op:
        svc = op.action(protocol.SERVICE_MINT, request)["token"]
        with pytest.raises(AccessDenied, match="operator credential reads no data"):
            plan_job(op, ["orders"], purpose="sales_analysis")
    with GatewayClient(address, svc) as client:
        plan = plan_job(client, ["orders"], purpose="sales_analysis", engine="spark")
        assert {f.split("/")[-3] for f in plan.files["orders"]} == {"tenant=acme"}
        with pytest.raises(AccessDenied):
            plan_job(client, ["orders"], tenants=["globex"], purpose="sales_analysis")
        with pytest.raises(AccessDenied, match="purpose not in the service token"):
            plan_job(client, ["orders"], purpose="inventory_tracking")
    with GatewayClient(address, plan.job_token) as job, pytest.raises(AccessDenied):
        plan_job(job, ["orders"], purpose="sales_analysis")
    assert any(
        e.actor == "svc:reports" and e.decision == "deny"
        for e in _audit(world, action="scale.plan")
    )


def test_unwrap_in_scope_and_refusals(world: World, ana: Workbench) -> None:
    acme = plan_job(ana, ["orders"], tenants=["acme"])
    globex = plan_job(ana, ["orders"], tenants=["globex"])
    wrapped, key_id = _wrapped_kek(acme.files["orders"][0])
    assert key_id in acme.key_ids
    kek = client_scale.unwrap(acme.connection(), wrapped, key_id)
    assert len(kek) in (16, 24, 32)  # pyarrow's KEKs are 128-bit
    # another tenant's key id with this job's token: 403, audited
    other_wrapped, other_key = _wrapped_kek(globex.files["orders"][0])
    status, answer = _post(
        acme, "/v1/unwrap", json.dumps({"key_id": other_key, "wrapped_kek": other_wrapped}).encode()
    )
    assert status == 403 and "outside" in answer["error"]
    with pytest.raises(AccessDenied, match="outside"):
        client_scale.unwrap(acme.connection(), other_wrapped, other_key)
    denied = _audit(world, action="scale.unwrap")
    assert any(e.resource == f"job:{acme.job_id}" and "403" in e.reason for e in denied)
    # malformed, unknown token, wrapKey and other methods
    assert _post(acme, "/v1/unwrap", b"not json")[0] == 400
    assert _post(acme, "/v1/unwrap", b'{"key_id": "x", "wrapped_kek": "%%%"}')[0] == 400
    assert _post(acme, "/v1/unwrap", b'{"key_id": 1}', token="job_forged")[0] == 401
    status, answer = _post(acme, "/v1/wrap", b'{"key_id": "x", "key": "AAAA"}')
    assert status == 405 and "read-only" in answer["error"]
    with pytest.raises(AccessDenied, match="read-only"):
        client_scale.GatewayKmsClient(acme.connection()).wrap_key(b"k" * 32, key_id)
    port = urllib.parse.urlsplit(acme.unwrap_url).port or 0
    assert tls_handshake(port, ssl.TLSVersion.TLSv1_2)
    assert not tls_handshake(port, ssl.TLSVersion.TLSv1_1)
    # a revoked job: 401, and the job's summary audited once with its counts
    assert revoke_job(ana, acme) is True
    with pytest.raises(AccessDenied, match="ended"):
        client_scale.unwrap(acme.connection(), wrapped, key_id)
    ended = [e for e in _audit(world, action="scale.job") if e.resource == f"job:{acme.job_id}"]
    assert len(ended) == 1 and ended[0].row_count == 1 and "revoked" in ended[0].reason
    revoke_job(ana, globex)


def test_an_expired_token_is_refused(world: World, ana: Workbench) -> None:
    plan = plan_job(ana, ["orders"], tenants=["acme"], ttl_s=1)
    wrapped, key_id = _wrapped_kek(plan.files["orders"][0])
    deadline = time.monotonic() + 60
    while True:  # wait for the clock to pass the expiry (no synchronisation involved)
        try:
            client_scale.unwrap(plan.connection(), wrapped, key_id)
        except AccessDenied as exc:
            assert "expired" in str(exc)
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    ended = [e for e in _audit(world, action="scale.job") if e.resource == f"job:{plan.job_id}"]
    assert len(ended) == 1 and "expired" in ended[0].reason


def test_a_revoked_grant_ends_the_job(world: World, address: str) -> None:
    with world.governance() as gov:
        gov.grants.grant("nog", "acme", actor="test")
    nog = amzigo_lab.connect("sales_analysis", token=world.tokens["nog"], address=address)
    try:
        plan = plan_job(nog, ["orders"], tenants=["acme"])
    finally:
        nog.close()
    wrapped, key_id = _wrapped_kek(plan.files["orders"][0])
    client_scale.unwrap(plan.connection(), wrapped, key_id)
    with world.governance() as gov:
        gov.grants.revoke("nog", "acme")
    deadline = time.monotonic() + 60
    while True:  # the planner's rights are re-checked every few seconds, at the next unwrap
        try:
            client_scale.unwrap(plan.connection(), wrapped, key_id)
        except AccessDenied as exc:
            assert "no longer grants" in str(exc) or "ended" in str(exc)
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    ended = [e for e in _audit(world, action="scale.job") if e.resource == f"job:{plan.job_id}"]
    assert len(ended) == 1 and "no longer grants orders" in ended[0].reason


def test_dask_read_equals_the_governed_reader(ana: Workbench) -> None:
    pytest.importorskip("dask.dataframe")
    import amzigo_lab.dask as amzigo_dask

    job = amzigo_dask.plan(ana, "orders")
    frame = amzigo_dask.read(ana, "orders", job=job, decimals="arrow")
    order = [("tenant", "ascending"), ("amazon_order_id", "ascending")]
    want = ana.sql("SELECT * FROM orders", arrow=True)
    assert isinstance(want, pa.Table)
    got = pa.Table.from_pandas(frame.compute(), preserve_index=False)
    assert got.column_names == want.column_names
    assert got.num_rows == want.num_rows == 12  # acme's updated order once
    assert got.cast(want.schema).sort_by(order).equals(want.sort_by(order))
    counts = frame.groupby("tenant").amazon_order_id.count().compute()  # a reduction
    assert counts.to_dict() == {"acme": 5, "globex": 7}
    money = amzigo_dask.read(ana, "orders", job=job)  # decimals as float64: Dask sums them
    totals = want.group_by("tenant").aggregate([("order_total", "sum")]).to_pylist()
    summed = money.groupby("tenant").order_total.sum().compute().round(2).to_dict()
    assert summed == {t["tenant"]: float(t["order_total_sum"]) for t in totals}
    assert round(money.order_total.sum().compute(), 2) == float(
        sum(t["order_total_sum"] for t in totals)
    )
    one = amzigo_dask.read(ana, "orders", tenants=["globex"]).compute()
    assert set(one["tenant"]) == {"globex"} and len(one) == 7
    assert revoke_job(ana, job) is True
    client_scale.forget(job.connection())  # this process's cached KEKs of the job
    with pytest.raises(AccessDenied, match="ended"):
        frame.compute()


def test_a_purge_or_deletion_notice_during_a_job_revokes_it(
    world: World, address: str, ana: Workbench
) -> None:
    from amzigo_lab.compliance.retention import purge
    from amzigo_lab.home import open_lake, release_gateway_cache_on_drop

    globex = plan_job(ana, ["orders"], tenants=["globex"])
    acme = plan_job(ana, ["orders"], tenants=["acme"])
    g_wrapped, g_key = _wrapped_kek(globex.files["orders"][0])
    a_wrapped, a_key = _wrapped_kek(acme.files["orders"][0])
    kek = client_scale.unwrap(globex.connection(), g_wrapped, g_key)
    client_scale.unwrap(acme.connection(), a_wrapped, a_key)
    # a deletion notice run by the gateway: the job ends at once, before any unwrap
    with GatewayClient(address, world.tokens["cora"]) as cora:
        cora.action(protocol.NOTICE_DELETE, {"tenant": "globex", "notice": "N-1"})
    ended = [e for e in _audit(world, action="scale.job") if e.resource == f"job:{globex.job_id}"]
    assert len(ended) == 1 and "dropped" in ended[0].reason
    with pytest.raises(AccessDenied):
        client_scale.unwrap(globex.connection(), g_wrapped, g_key)
    # the daily purge, run in-process by the service account while the gateway serves: the
    # job's next unwrap finds its partition dropped and is refused (401)
    lake = open_lake(world.settings)
    release_gateway_cache_on_drop(lake, "amzigo purge")  # as `amzigo purge` does
    try:
        result = purge(lake, as_of=dt.date(2031, 1, 1))
        assert result.plan.drop
        partition_keys = list(lake.partition_keys(acme.key_ids).values())  # destroyed: none
    finally:
        lake.close()
    assert partition_keys == []
    status, answer = _post(
        acme, "/v1/unwrap", json.dumps({"key_id": a_key, "wrapped_kek": a_wrapped}).encode()
    )
    assert status == 401 and "dropped" in answer["error"]
    # no key bytes (raw, base64, hex) and no job token in the audit log or the gateway log
    needles = [kek, base64.b64encode(kek), kek.hex().encode(), acme.job_token.encode()]
    events = repr([e.to_dict() for e in _audit(world)]).encode()
    gateway_log = (protocol.runtime_dir(world.settings.home) / "gateway.log").read_bytes()
    audit_files = b"".join(
        p.read_bytes() for p in (world.settings.home).rglob("*audit*") if p.is_file()
    )
    for needle in needles:
        assert needle not in events
        assert needle not in gateway_log
        assert needle not in audit_files
