"""A SIGKILLed gateway (mid audit append, mid reads, beside a running ingest) breaks nothing.

The gateway writes the audit log (every read appends a durable record) and the identity store;
ingest writes the lake from another process. A gateway killed with SIGKILL while clients read
and a writer ingests must leave: the lock free, a stale socket that the next gateway replaces,
a catalog and files that verify with every batch all-or-nothing, an audit log that verifies
once a gateway has reopened it (a torn tail is cut off and audited), and a gateway that serves
exactly the committed data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import amzigo_lab
from amzigo_lab.client import protocol
from amzigo_lab.client.service import operator_token
from amzigo_lab.client.transport import GatewayClient, ensure_gateway
from amzigo_lab.gateway.run import lock_holder
from amzigo_lab.governance.audit import verify_log
from amzigo_lab.governance.audit.keys import public_key_path
from amzigo_lab.governance.auditing import AUDIT_SECRET, signing_key_path
from amzigo_lab.home import open_lake
from amzigo_lab.lake import doctor
from tests.governance.gov_fixtures import ORDERS_PER_TENANT, World, build_world

ROOT = Path(__file__).resolve().parents[2]
BATCHES = 60
ROWS = 2000
FIRST_DAY = dt.date(2026, 4, 1)
WRITER = f"""
import datetime as dt, sys
from amzigo_lab.config import load_settings
from amzigo_lab.home import open_lake
from tests.lake.helpers import orders

lake = open_lake(load_settings(sys.argv[1], env={{}}))
for i in range({BATCHES}):
    day = dt.date.fromisoformat("{FIRST_DAY}") + dt.timedelta(days=i)
    lake.write("orders", "acme", day, orders({ROWS}, f"w{{i}}-"), f"w{{i}}")
    print(f"committed {{i}}", flush=True)
lake.close()
print("done", flush=True)
"""
COUNT_ACME = "SELECT count(*) AS n FROM orders WHERE tenant = 'acme'"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != protocol.ADDRESS_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _start_gateway(home: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "amzigo_lab.gateway", "--home", str(home)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    address = protocol.default_address(home)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"gateway exited rc={proc.returncode}"
        try:
            with GatewayClient(address) as client:
                client.health(timeout=2.0)
            return proc
        except protocol.GatewayUnavailable:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("the gateway did not answer within 60 s")


class Readers:
    """Threads reading through the gateway until it dies (no reconnect: a fixed address)."""

    def __init__(self, world: World, address: str, n: int = 3) -> None:
        self.reads = [0] * n
        self.errors: list[BaseException | None] = [None] * n
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(i, world, address), daemon=True)
            for i in range(n)
        ]
        for t in self.threads:
            t.start()

    def _run(self, i: int, world: World, address: str) -> None:
        try:
            with amzigo_lab.connect(
                "sales_analysis", token=world.tokens["ana"], address=address
            ) as wb:
                while not self.stop.is_set():
                    assert int(wb.sql(COUNT_ACME)["n"][0]) >= ORDERS_PER_TENANT["acme"]
                    self.reads[i] += 1
        except BaseException as exc:  # the gateway died under us: expected, checked below
            self.errors[i] = exc

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a reader hung after the gateway died"


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("kill_writer", [False, True], ids=["writer-finishes", "writer-killed"])
def test_sigkill_gateway_mid_reads_and_ingest(
    tmp_path_factory: pytest.TempPathFactory, kill_writer: bool
) -> None:
    world = build_world(tmp_path_factory.mktemp("gw-crash"))
    home = world.settings.home
    gateway = _start_gateway(home)
    address = protocol.default_address(home)
    old_token = operator_token(home)
    readers = Readers(world, address)
    writer: subprocess.Popen[str] | None = None
    reported: list[str] = []
    try:
        _wait_for(lambda: min(readers.reads) >= 3 or any(readers.errors), 30, "reads")
        assert not any(readers.errors), readers.errors
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(home)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=ROOT,
        )
        assert writer.stdout is not None
        while len(reported) < 2:
            line = writer.stdout.readline()
            assert line, f"writer ended early: {writer.stderr.read() if writer.stderr else ''}"
            reported.append(line.strip())
        # the writer is committing batches and every reader is reading (each read appends a
        # durable audit record in the gateway): kill the gateway (and the writer, if asked)
        assert writer.poll() is None and min(readers.reads) >= 3
        os.kill(gateway.pid, signal.SIGKILL)
        if kill_writer:
            os.kill(writer.pid, signal.SIGKILL)
        assert gateway.wait(timeout=10) == -signal.SIGKILL
        readers.join()
    finally:
        readers.stop.set()
        if gateway.poll() is None:
            gateway.kill()
        if writer is not None and writer.poll() is None and kill_writer:
            writer.kill()
    assert writer is not None
    out, err = writer.communicate(timeout=120)
    reported += [line.strip() for line in out.splitlines()]
    committed = sum(line.startswith("committed") for line in reported)
    if kill_writer:
        assert writer.returncode == -signal.SIGKILL
    else:  # ingest does not depend on the gateway: it carried on and finished
        assert writer.returncode == 0, err
        assert committed == BATCHES and reported[-1] == "done"

    # the readers failed cleanly (no hang, a gateway error naming the problem)
    assert all(readers.reads), readers.reads
    for exc in readers.errors:
        assert isinstance(exc, protocol.GatewayError | amzigo_lab.AmzigoError), repr(exc)

    # the lock died with the process; the socket it could not remove is still there
    _wait_for(lambda: lock_holder(home) is None, 10, "the gateway lock to be released")
    assert protocol.socket_path(home).exists()

    # catalog and files: every batch is all-or-nothing, nothing half-visible
    with open_lake(world.settings) as lake:
        report = doctor(lake, fix=kill_writer)  # a killed writer may leave an orphan temp file
        assert report.ok, report.problems
        assert lake.verify().ok
        rows_per_day = {
            p.ingest_date: p.row_count
            for p in lake.catalog.partitions(dataset="orders", tenants=["acme"], start=FIRST_DAY)
        }
        visible = lake.scan("orders", tenants=["acme"]).to_arrow().num_rows
        key = lake.secret(AUDIT_SECRET, create=False)
    # the audit log as the kill left it (read-only): intact, at worst a torn last record
    s = world.settings
    left = verify_log(
        s.audit_path, s.checkpoint_path, lambda: key, public_key_path(signing_key_path(s))
    )
    assert left.ok or left.torn_tail, left.problem
    assert set(rows_per_day.values()) <= {ROWS}, rows_per_day
    full = len(rows_per_day)
    assert full in (committed, committed + 1)  # +1: killed after its commit, before printing
    assert sorted(rows_per_day) == [FIRST_DAY + dt.timedelta(days=i) for i in range(full)]
    assert visible == full * ROWS + ORDERS_PER_TENANT["acme"] + 1  # + the world's 2nd version

    # a new gateway starts on demand (stale socket replaced) and serves the committed data
    address2 = ensure_gateway(home)
    try:
        pid = lock_holder(home)
        assert pid is not None and pid != gateway.pid
        assert operator_token(home) != old_token
        with amzigo_lab.connect(
            "sales_analysis", home=world.settings, token=world.tokens["ana"]
        ) as wb:
            n = int(wb.sql(COUNT_ACME)["n"][0])
        assert n == full * ROWS + ORDERS_PER_TENANT["acme"]

        # the audit log verifies (a torn tail from the kill was cut off and audited on reopen)
        with world.governance() as gov:
            audit = gov.audit_log.verify()
            assert audit.ok, audit.problem
            reads = list(gov.audit_log.search(action="data.read"))
        assert len(reads) >= sum(readers.reads)  # every answered read was audited first
    finally:  # clean-up: the gateway may have gone already (its idle exit)
        with (
            contextlib.suppress(protocol.GatewayUnavailable),
            GatewayClient(address2, operator_token(home)) as client,
        ):
            client.action(protocol.SHUTDOWN)
        _wait_for(lambda: lock_holder(home) is None, 30, "the new gateway to stop")
