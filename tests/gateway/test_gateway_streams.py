"""Result streams through a real gateway: a client that stops reading early, and a query that
fails late in its result, leave the gateway serving the next call; the audit is written before
any row leaves (with the row count of the whole result)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow.flight as flight
import pytest

import amzigo_lab
from amzigo_lab.client import protocol
from amzigo_lab.client.protocol import QueryError
from amzigo_lab.client.transport import GatewayClient, ensure_gateway
from amzigo_lab.gateway.server import STREAM_ROWS
from tests.governance.gov_fixtures import World, build_world

COUNT = "SELECT count(*) AS n FROM orders"  # ana sees acme (5) + globex (7)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("gw-streams"))


@pytest.fixture(scope="module")
def address(world: World) -> Iterator[str]:
    yield ensure_gateway(world.settings.home)


def _open(client: GatewayClient) -> str:
    return str(client.action(protocol.SESSION_OPEN, {"purpose": "sales_analysis"})["handle"])


def _stream(client: GatewayClient, handle: str, query: str) -> Any:
    """The raw Flight stream of one query (GatewayClient.table reads it whole)."""
    ticket = {"op": protocol.TICKET_SQL, "query": query, "via": "sql", "handle": handle}
    return client._client.do_get(flight.Ticket(protocol.encode(ticket)), client._options(None))


def _reads(world: World, actor: str) -> list[Any]:
    with world.governance() as gov:
        return list(gov.audit_log.search(actor=actor, action="data.read"))


def test_a_client_that_stops_reading_early_leaves_the_gateway_serving(
    world: World, address: str
) -> None:
    n = 8 * STREAM_ROWS
    big = f"SELECT range AS i, repeat('x', 200) AS pad FROM range({n})"
    token = world.tokens["ana"]
    with GatewayClient(address, token) as client:
        handle = _open(client)
        reader = _stream(client, handle, big)
        first = reader.read_chunk().data
        assert 0 < first.num_rows <= STREAM_ROWS
        reader.cancel()  # the client gives up after one batch
        # the same session (same engine connection) answers the next query at once
        again = client.table({"op": protocol.TICKET_SQL, "query": COUNT, "handle": handle})
        assert again.column("n").to_pylist() == [12]
        client.action(protocol.SESSION_CLOSE, {"handle": handle})
    # the read that was cut short was audited before its first batch left, whole
    assert [e.row_count for e in _reads(world, "ana")[-2:]] == [n, 1]

    # a client that vanishes mid-stream (its channel closed, no cancel)
    gone = GatewayClient(address, token)
    reader = _stream(gone, _open(gone), big)
    assert reader.read_chunk().data.num_rows > 0
    gone.close()
    with amzigo_lab.connect("sales_analysis", token=token, address=address) as wb:
        assert wb.sql(COUNT)["n"][0] == 12
        assert wb.sql(big, arrow=True).num_rows == n  # a whole stream still arrives whole
    with GatewayClient(address) as probe:
        assert probe.health()["ready"] is True


def test_a_query_failing_late_in_its_result_reaches_the_client_as_a_query_error(
    world: World, address: str
) -> None:
    """The engine fails after producing many rows: the client gets QueryError with the engine's
    message (no partial table, no hang), no read is audited, and the session goes on."""
    n = 4 * STREAM_ROWS
    late = (
        f"SELECT CASE WHEN range < {n - 10} THEN range "
        f"ELSE error('row ' || range || ' is refused') END AS i FROM range({n})"
    )
    token = world.tokens["ana"]
    before = len(_reads(world, "ana"))
    with amzigo_lab.connect("sales_analysis", token=token, address=address) as wb:
        with pytest.raises(QueryError, match=r"row \d+ is refused"):
            wb.sql(late, arrow=True)
        assert len(_reads(world, "ana")) == before  # nothing was read, nothing audited as read
        assert wb.sql(COUNT)["n"][0] == 12
    with GatewayClient(address, token) as client:  # the raw stream: the error, not a batch
        handle = _open(client)
        with pytest.raises(flight.FlightServerError, match="is refused") as caught:
            _stream(client, handle, late).read_all()
        assert protocol.error_from(caught.value.extra_info, "").__class__ is QueryError
        client.action(protocol.SESSION_CLOSE, {"handle": handle})
