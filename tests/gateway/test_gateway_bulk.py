"""Large results over the local gateway's bulk socket (`gateway/bulk.py`): a real on-demand
gateway, a real client, the same rows as the Flight stream; an id works once, for its own
result only, and not after it expired; the socket is the gateway user's alone."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import amzigo_lab
from amzigo_lab.client import protocol
from amzigo_lab.client.bulk import fetch
from amzigo_lab.client.protocol import GatewayError, GatewayUnavailable
from amzigo_lab.client.transport import GatewayClient, ensure_gateway
from amzigo_lab.gateway.bulk import BULK_MIN_BYTES, BulkResults
from tests.governance.gov_fixtures import World, build_world

N = 60_000
#: ~12 MB of Arrow: over the bulk threshold
BIG = f"SELECT range AS i, repeat('x', 200) || range AS pad FROM range({N})"
COUNT = "SELECT count(*) AS n FROM orders"  # ana sees acme (5) + globex (7)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("gw-bulk"))


@pytest.fixture(scope="module")
def address(world: World) -> Iterator[str]:
    yield ensure_gateway(world.settings.home)


def _get(client: GatewayClient, handle: str, query: str, **extra: Any) -> pa.Table:
    """One raw ticket, read whole as Flight delivers it (no bulk fetch)."""
    ticket = {"op": protocol.TICKET_SQL, "query": query, "via": "sql", "handle": handle, **extra}
    reader = client._client.do_get(flight.Ticket(protocol.encode(ticket)), client._options(None))
    return reader.read_all()


def _key(table: pa.Table) -> str | None:
    value = (table.schema.metadata or {}).get(protocol.BULK_META_KEY)
    return None if value is None else value.decode()


def test_a_large_result_arrives_over_the_bulk_socket_with_the_same_rows(
    world: World, address: str
) -> None:
    bulk = protocol.bulk_socket_path(address)
    assert bulk is not None and bulk.exists()
    mode = bulk.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) & 0o077 == 0  # the gateway user's only
    token = world.tokens["ana"]
    with GatewayClient(address, token) as client:
        handle = str(client.action(protocol.SESSION_OPEN, {"purpose": "sales_analysis"})["handle"])
        streamed = _get(client, handle, BIG)  # no "bulk": the Flight stream, as before
        assert _key(streamed) is None and streamed.num_rows == N
        assert streamed.nbytes >= BULK_MIN_BYTES

        offered = _get(client, handle, BIG, bulk=1)  # the schema alone, with a one-time id
        key = _key(offered)
        assert offered.num_rows == 0 and key is not None and len(key) == 64
        fetched = fetch(bulk, key, timeout=60)
        assert fetched.equals(streamed)
        with pytest.raises(GatewayError, match="no longer holds this result"):
            fetch(bulk, key, timeout=60)  # once only

        small = _get(client, handle, COUNT, bulk=1)  # small results stream as before
        assert _key(small) is None and small.column("n").to_pylist() == [12]

        other = _key(_get(client, handle, BIG, bulk=1))
        assert other is not None and other != key
        with pytest.raises(GatewayError, match="no longer holds this result"):
            fetch(bulk, "0" * 64, timeout=60)  # a guessed id: nothing, and no harm done
        assert fetch(bulk, other, timeout=60).num_rows == N
        client.action(protocol.SESSION_CLOSE, {"handle": handle})

    with amzigo_lab.connect("sales_analysis", token=token, address=address) as wb:
        table = wb.sql(BIG, arrow=True)  # the public API: the bulk path, whole
        assert isinstance(table, pa.Table) and table.equals(streamed)
        assert protocol.BULK_META_KEY not in (table.schema.metadata or {})

    with world.governance() as gov:  # each read audited once, in the gateway, with its rows
        reads = list(gov.audit_log.search(actor="ana", action="data.read"))
    assert [e.row_count for e in reads[-5:]] == [N, N, 1, N, N]


def test_an_unclaimed_result_expires_and_the_socket_goes_with_its_gateway(tmp_path: Path) -> None:
    now = [100.0]
    path = tmp_path / "gw-bulk.sock"
    table = pa.table({"pad": pa.array(["y" * 100] * 1000)})
    results = BulkResults(path, min_bytes=1, ttl=30, max_bytes=250_000, clock=lambda: now[0])
    try:
        kept = results.offer(table)
        late = results.offer(table)
        assert kept and late and results.offer(table) is None  # over max_bytes: Flight instead
        now[0] += 31
        with pytest.raises(GatewayError, match="no longer holds this result"):
            fetch(path, late, timeout=30)
        assert results.waiting() == 0
        fresh = results.offer(table)  # room again once the expired ones are gone
        assert fresh is not None and fetch(path, fresh, timeout=30).equals(table)
    finally:
        results.close()
    assert not path.exists()  # removed at close
    with pytest.raises(GatewayUnavailable, match="does not answer"):
        fetch(path, "0" * 64, timeout=5)


def test_a_socket_that_is_no_longer_its_own_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "gw-bulk.sock"
    results = BulkResults(path)
    path.unlink()
    path.write_text("someone else's")  # e.g. a new home's gateway at the same path
    results.close()
    assert path.read_text() == "someone else's"


def test_a_result_is_received_into_memory_made_ready_while_the_query_ran(tmp_path: Path) -> None:
    """`Spare`: memory for about the last large result's size, prepared on a thread of its
    own; `fetch` receives into it when the result fits and uses at least half of it (else a
    buffer of its own), and the table read from it is whole."""
    from amzigo_lab.client.bulk import Spare

    table = pa.table({"pad": pa.array([f"{i:06d}" * 20 for i in range(20_000)])})
    assert Spare(1000).take(2000) is None  # too small for the result
    assert Spare(10_000).take(2000) is None  # would waste most of it
    ready = Spare(3000).take(2000)
    assert ready is not None and ready.size == 3000
    path = tmp_path / "gw-bulk.sock"
    results = BulkResults(path, min_bytes=1)
    try:
        for spare_size in (table.nbytes + 65_536, 1000):  # fits / does not: same table
            key = results.offer(table)
            assert key is not None
            got = fetch(path, key, timeout=30, spare=Spare(spare_size))
            assert got.equals(table)
    finally:
        results.close()
