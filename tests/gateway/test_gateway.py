"""The gateway as a real process: one per home, health, graceful stop, tokens, refusals audited."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import amzigo_lab
from amzigo_lab.client import protocol
from amzigo_lab.client.service import operator_token
from amzigo_lab.client.transport import GatewayClient, ensure_gateway
from amzigo_lab.errors import AccessDenied, UnknownTenant
from amzigo_lab.gateway.run import EXIT_LOCKED, lock_holder
from tests.governance.gov_fixtures import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("gw"))


@pytest.fixture(scope="module")
def address(world: World) -> Iterator[str]:
    addr = ensure_gateway(world.settings.home)
    yield addr


def _audit(world: World, **query: str) -> list[object]:
    with world.governance() as gov:
        return list(gov.audit_log.search(**query))


def test_one_gateway_per_home(world: World, address: str) -> None:
    pid = lock_holder(world.settings.home)
    assert pid and pid != os.getpid()
    second = subprocess.run(
        [sys.executable, "-m", "amzigo_lab.gateway", "--home", str(world.settings.home)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == EXIT_LOCKED
    assert "another gateway already serves" in second.stderr
    assert lock_holder(world.settings.home) == pid  # the first one is untouched
    with GatewayClient(address) as client:
        health = client.health()
    assert health["status"] == "ok" and health["ready"] and health["pid"] == pid


def test_runtime_files_are_private(world: World, address: str) -> None:
    runtime = protocol.runtime_dir(world.settings.home)
    assert (runtime.stat().st_mode & 0o077) == 0
    assert ((runtime / "operator.token").stat().st_mode & 0o077) == 0
    sock = protocol.socket_path(world.settings.home)
    assert (sock.stat().st_mode & 0o077) == 0


def test_bad_tokens_are_refused_and_audited(world: World, address: str) -> None:
    for token in ("", "not-a-token", "svc_forged"):
        with pytest.raises(AccessDenied):
            amzigo_lab.connect("sales_analysis", home=world.settings, token=token or "x")
    with GatewayClient(address) as client, pytest.raises(AccessDenied, match="no token"):
        client.action(protocol.SESSION_OPEN, {"purpose": "sales_analysis"})
    denied = _audit(world, action="gateway.denied")
    assert any("no token" in (e.reason or "") for e in denied)  # type: ignore[attr-defined]
    assert any("is unknown" in (e.reason or "") for e in denied)  # type: ignore[attr-defined]


def test_service_tokens_need_the_operator_and_bind_one_tenant(world: World, address: str) -> None:
    ana = world.tokens["ana"]
    request = {"actor": "svc:reports", "tenant": "acme", "purposes": ["sales_analysis"]}
    with GatewayClient(address, ana) as client, pytest.raises(AccessDenied, match="operator"):
        client.action(protocol.SERVICE_MINT, request)
    with GatewayClient(address, operator_token(world.settings.home)) as op:
        minted = op.action(protocol.SERVICE_MINT, request)
        with pytest.raises(UnknownTenant, match="no data"):
            op.action(protocol.SERVICE_MINT, {**request, "tenant": "nobody"})
    token = minted["token"]
    with GatewayClient(address, token) as svc:
        orders = svc.table({"op": "latest", "dataset": "orders", "purpose": "sales_analysis"})
        assert orders.num_rows == 5 and "tenant" not in orders.column_names
        with pytest.raises(AccessDenied, match="does not cover purpose"):
            svc.table({"op": "latest", "dataset": "orders", "purpose": "inventory_tracking"})
        with pytest.raises(AccessDenied, match="buyer PII"):
            svc.table({"op": "latest", "dataset": "order_buyers", "purpose": "sales_analysis"})
        with pytest.raises(AccessDenied, match="service token cannot open"):
            svc.action(protocol.SESSION_OPEN, {"purpose": "sales_analysis"})
        assert svc.action(protocol.SERVICE_REVOKE, {"token": token})["revoked"] is True
        with pytest.raises(AccessDenied, match="expired, revoked or unknown"):
            svc.table({"op": "latest", "dataset": "orders", "purpose": "sales_analysis"})
    reads = _audit(world, actor="svc:reports", action="data.read")
    assert [e.decision for e in reads[-3:]] == ["allow", "deny", "deny"]  # type: ignore[attr-defined]
    assert reads[-3].row_count == 5 and reads[-3].tenant == "acme"  # type: ignore[attr-defined]
    minted_events = _audit(world, action="gateway.token")
    assert token not in repr([e.to_dict() for e in minted_events])  # type: ignore[attr-defined]


def test_gateway_down_fails_fast_naming_the_address(tmp_path: Path) -> None:
    bogus = f"grpc+unix://{tmp_path}/nobody.sock"
    start = time.monotonic()
    with pytest.raises(protocol.GatewayUnavailable, match="nobody.sock"):
        amzigo_lab.connect("sales_analysis", token="t", address=bogus)
    assert time.monotonic() - start < 10


def test_sigterm_stops_gracefully(tmp_path_factory: pytest.TempPathFactory) -> None:
    w = build_world(tmp_path_factory.mktemp("gw-stop"))
    home = w.settings.home
    proc = subprocess.Popen(
        [sys.executable, "-m", "amzigo_lab.gateway", "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    address = protocol.default_address(home)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with GatewayClient(address) as c:
                c.health()
            break
        except protocol.GatewayUnavailable:
            time.sleep(0.1)
    wb = amzigo_lab.connect("sales_analysis", home=w.settings, token=w.tokens["ana"])
    assert wb.sql("SELECT count(*) AS n FROM orders")["n"][0] == 12
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert '"event": "stopped"' in err
    assert not protocol.socket_path(home).exists()
    assert not (protocol.runtime_dir(home) / "operator.token").exists()
    assert lock_holder(home) is None
    # the client starts a new gateway on demand (non-hardened home) and re-opens its session
    assert wb.sql("SELECT count(*) AS n FROM orders")["n"][0] == 12
    wb.close()
    # the audit log the first gateway closed still verifies
    with w.governance() as gov:
        assert gov.audit_log.verify().ok


def test_kernel_tokens_live_exactly_as_long_as_the_login_session(
    world: World, address: str
) -> None:
    with GatewayClient(address, world.tokens["mixed"]) as user:
        kernel = user.action(protocol.KERNEL_MINT)["token"]
    assert kernel.startswith("knl_")
    wb = amzigo_lab.connect("sales_analysis", home=world.settings, token=kernel)
    assert wb.user == "mixed" and wb.sql("SELECT count(*) AS n FROM orders")["n"][0] == 5
    with GatewayClient(address, kernel) as k:
        assert k.action(protocol.SESSION_CHECK)["user"] == "mixed"
        with pytest.raises(AccessDenied, match="cannot mint another"):
            k.action(protocol.KERNEL_MINT)
    with world.governance() as gov:  # an administrator disables the account
        gov.identity.disable("mixed", actor="adm")
    try:
        with pytest.raises(AccessDenied, match="log in again"):
            wb.sql("SELECT count(*) AS n FROM orders")
        with GatewayClient(address, kernel) as k, pytest.raises(AccessDenied):
            k.action(protocol.SESSION_CHECK)
    finally:
        wb.close()
        with world.governance() as gov:
            gov.identity.enable("mixed")


def test_a_revoked_kernel_token_stops_its_open_session(world: World, address: str) -> None:
    with GatewayClient(address, world.tokens["ana"]) as user:
        kernel = user.action(protocol.KERNEL_MINT)["token"]
    wb = amzigo_lab.connect("sales_analysis", home=world.settings, token=kernel)
    assert wb.sql("SELECT count(*) AS n FROM orders")["n"][0] == 12
    with GatewayClient(address, kernel) as k:
        assert k.action(protocol.KERNEL_REVOKE, {"token": kernel})["revoked"] is True
    with pytest.raises(AccessDenied, match="revoked"):
        wb.sql("SELECT count(*) AS n FROM orders")
    wb.close()


def test_large_results_stream_in_bounded_batches(world: World, address: str) -> None:
    """The gateway slices a result into STREAM_ROWS-row batches (zero-copy) so serialising,
    sending and decoding overlap; the client still gets every row, in order."""
    import pyarrow.flight as flight

    from amzigo_lab.gateway.server import STREAM_ROWS

    n = 3 * STREAM_ROWS + 123
    query = f"SELECT range AS i FROM range({n}) ORDER BY i"
    with GatewayClient(address, world.tokens["ana"]) as client:
        handle = client.action(protocol.SESSION_OPEN, {"purpose": "sales_analysis"})["handle"]
        ticket = {"op": protocol.TICKET_SQL, "query": query, "via": "sql", "handle": handle}
        reader = client._client.do_get(  # the raw stream, to see the batches
            flight.Ticket(protocol.encode(ticket)), client._options(None)
        )
        sizes = [chunk.data.num_rows for chunk in reader]
        client.action(protocol.SESSION_CLOSE, {"handle": handle})
    assert sum(sizes) == n and max(sizes) <= STREAM_ROWS and len(sizes) >= 4
    with amzigo_lab.connect("sales_analysis", token=world.tokens["ana"], address=address) as wb:
        table = wb.sql(query, arrow=True)
    assert table.num_rows == n
    assert table.column("i").to_pylist() == list(range(n))


def test_admin_actions_act_as_the_session_user_or_break_glass(world: World, address: str) -> None:
    grant = {"name": "nog", "tenant": "initech", "new_tenant": True}
    with (
        GatewayClient(address, world.tokens["ana"]) as ana,
        pytest.raises(AccessDenied, match="manage_users"),
    ):
        ana.action(protocol.USERS_GRANT, grant)
    with GatewayClient(address) as nobody, pytest.raises(AccessDenied, match="log in"):
        nobody.action(protocol.USERS_GRANT, grant)
    with GatewayClient(address, world.tokens["adm"]) as adm:
        assert adm.action(protocol.USERS_GRANT, grant) == {"changed": True, "actor": "adm"}
        who = {"action": "hold.add", "role": "compliance"}
        with pytest.raises(AccessDenied, match="compliance role"):
            adm.action(protocol.ADMIN_AUTHORIZE, who)
    with GatewayClient(address, world.tokens["cora"]) as cora:
        assert cora.action(protocol.ADMIN_AUTHORIZE, who) == {"user": "cora"}
    with GatewayClient(address, operator_token(world.settings.home)) as op:
        with pytest.raises(AccessDenied, match="break-glass"):
            op.action(protocol.USERS_GRANT, {**grant, "revoke": True})
        with pytest.raises(AccessDenied, match="cannot stand in"):
            op.action(protocol.ADMIN_AUTHORIZE, {**who, "break_glass": "r", "os_user": "op"})
        glass = {"break_glass": "INC-1", "os_user": "svc"}
        answer = op.action(protocol.USERS_GRANT, {**grant, "revoke": True, **glass})
        assert answer == {"changed": True, "actor": "break-glass:svc"}
    denied = [e for e in _audit(world, action="users.grant") if e.decision == "deny"]  # type: ignore[attr-defined]
    assert [e.actor for e in denied] == ["ana"]  # type: ignore[attr-defined]
    glass_events = _audit(world, action="admin.break_glass")
    assert [(e.actor, e.reason) for e in glass_events] == [("break-glass:svc", "INC-1")]  # type: ignore[attr-defined]


def test_the_gateway_writes_time_based_audit_checkpoints(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The gateway is the long-running owner of the log: its timer writes the checkpoint that
    `audit.checkpoint_every_seconds` asks for even when no further event arrives."""
    from amzigo_lab.config import load_settings
    from amzigo_lab.gateway.server import GatewayServer

    w = build_world(tmp_path_factory.mktemp("gw-tick"))
    settings = load_settings(w.settings.home, env={"AMZIGO_AUDIT_CHECKPOINT_EVERY_SECONDS": "3"})
    server = GatewayServer(
        settings, f"grpc+unix://{tmp_path}/tick.sock", operator_token="operator-secret"
    )
    try:
        client = GatewayClient(f"grpc+unix://{tmp_path}/tick.sock", "not-a-token")
        with client:
            # Two audited events: on a slow start-up the first may itself be written with a
            # checkpoint (one is due at the next append); the second is then news to checkpoint.
            for _ in range(2):
                with pytest.raises(AccessDenied):
                    client.action(protocol.SESSION_OPEN, {"purpose": "sales_analysis"})
        before = sorted(p.name for p in settings.checkpoint_path.iterdir())
        time.sleep(3.2)  # due now, and no event arrives: only the timer's tick can write it
        assert server.tick_audit()
        after = sorted(p.name for p in settings.checkpoint_path.iterdir())
        assert len(after) == len(before) + 1
        assert not server.tick_audit()  # nothing new since: no checkpoint
    finally:
        server.stop()


def test_a_second_stop_returns_only_once_the_first_has_closed_the_home(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """`amzigo gateway stop` (the SHUTDOWN action) stops the gateway from a thread of its own
    while the main loop, seeing it stopping, calls `stop` too and then lets the process exit.
    That second call returned at once: the process could exit with the home half closed and
    the SHUTDOWN answer unsent (test_kernel_tokens_credentials_analysts_and_everything failed
    at its SHUTDOWN with "no gateway answers", 1 run in 8 on a busy machine)."""
    import threading

    from amzigo_lab.gateway.server import GatewayServer

    w = build_world(tmp_path_factory.mktemp("gw-stop"))
    server = GatewayServer(w.settings, f"grpc+unix://{tmp_path}/stop.sock", operator_token="op")
    busy = threading.Event()
    server._work.submit(busy.wait)  # the home thread is busy: closing the home waits for it
    first = threading.Thread(target=server.stop)
    first.start()
    server.stopping.wait()
    second = threading.Thread(target=server.stop)
    second.start()
    second.join(timeout=2.0)  # correct code cannot return before `busy` is set
    returned_while_open = not second.is_alive()
    busy.set()
    first.join()
    second.join()
    assert not returned_while_open, "a second stop returned while the home was still open"
    assert server.stopped.is_set()


def test_latest_for_a_period_filters_below_the_window(world: World, address: str) -> None:
    """Issue 17: `latest` with a period reduces only the versions purchased near it; over a
    period covering everything it is the whole latest state, far away it is empty."""
    request = {"actor": "svc:reports", "tenant": "acme", "purposes": ["sales_analysis"]}
    with GatewayClient(address, operator_token(world.settings.home)) as op:
        token = op.action(protocol.SERVICE_MINT, request)["token"]
    base = {"op": "latest", "dataset": "orders", "purpose": "sales_analysis"}
    with GatewayClient(address, token) as svc:
        full = svc.table(base)
        every = svc.table({**base, "start": "2000-01-01", "end": "2099-12-31"})
        assert every.sort_by("amazon_order_id").equals(full.sort_by("amazon_order_id"))
        assert svc.table({**base, "start": "1990-01-01", "end": "1990-01-31"}).num_rows == 0
        with pytest.raises(Exception, match="bad period"):
            svc.table({**base, "start": "2026-02-01", "end": "2026-01-01"})


def test_gateway_source_reports_are_identical_with_period_tables(
    world: World, address: str
) -> None:
    """Issue 17: `GatewayTableSource.period_table` (the gateway filters below its window) gives
    the same sales report as the full latest state filtered in the kernel."""
    import datetime as dt

    from amzigo_lab.analysis.period import Period
    from amzigo_lab.analysis.sales import SalesScope, build_sales_report
    from amzigo_lab.analysis.source import GatewayTableSource
    from tests.analysis.test_period_pushdown import FullHistory, _same_report

    request = {"actor": "svc:reports", "tenant": "acme", "purposes": ["sales_analysis"]}
    with GatewayClient(address, operator_token(world.settings.home)) as op:
        token = op.action(protocol.SERVICE_MINT, request)["token"]
    with GatewayClient(address, token) as svc:
        fast = GatewayTableSource(svc, "acme", "sales_analysis")
        slow = GatewayTableSource(svc, "acme", "sales_analysis")
        days = sorted(
            {t.date() for t in slow.table("orders").purchase_date.to_pyarrow().to_pylist()}
        )
        assert days
        periods = [
            Period(days[0] - dt.timedelta(days=1), days[-1] + dt.timedelta(days=1)),
            Period(days[0], days[0]),
            Period(days[-1] + dt.timedelta(days=3), days[-1] + dt.timedelta(days=9)),
        ]
        for period in periods:
            scope = SalesScope(period)
            _same_report(
                build_sales_report(fast, scope), build_sales_report(FullHistory(slow), scope)
            )


def test_a_home_created_again_at_the_same_path_never_reaches_the_old_gateway(
    tmp_path: Path,
) -> None:
    """A long home path puts the socket outside the home (/tmp), where it outlives the home: a
    home deleted and initialised again at that path must get its own gateway, and the old one
    (holding the old home's keys) exits by itself."""
    import shutil

    from amzigo_lab.config import load_settings
    from amzigo_lab.events import MemorySink
    from amzigo_lab.home import init_home

    home = tmp_path / ("x" * 80) / "home"
    assert len(str(protocol.runtime_dir(home) / protocol.SOCKET_NAME)) > 104  # socket in /tmp
    init_home(load_settings(home, env={}), audit=MemorySink()).close()
    address = ensure_gateway(home)
    with GatewayClient(address) as client:
        old = client.health()
    shutil.rmtree(home)
    init_home(load_settings(home, env={}), audit=MemorySink()).close()
    assert protocol.home_identity(home) != old["home_id"]
    again = ensure_gateway(home)
    with GatewayClient(again) as client:
        new = client.health()
    assert new["home_id"] == protocol.home_identity(home) and new["pid"] != old["pid"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the old gateway noticed its home is gone
        status = Path(f"/proc/{old['pid']}/status")
        if not status.exists() or "\nState:\tZ" in status.read_text():  # gone (or a zombie:
            break  # ensure_gateway started it from this process and never waits for it)
        time.sleep(0.1)
    else:
        pytest.fail("the gateway of the deleted home is still running")
    # leaving, the old gateway wrote nothing into the new home and removed none of its files:
    # the new gateway still answers at its socket, its credential is there, its log verifies
    with GatewayClient(again, operator_token(home)) as client:
        assert client.health()["pid"] == new["pid"]
        client.action(protocol.SHUTDOWN, {})
    from click.testing import CliRunner

    from amzigo_lab.cli import main

    verified = CliRunner().invoke(main, ["audit", "verify", "--home", str(home)])
    assert verified.exit_code == 0, verified.output
