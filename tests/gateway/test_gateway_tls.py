"""The gateway over TLS on TCP (`amzigo gateway --listen`): the same governed reads, TLS 1.2+."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import amzigo_lab
from amzigo_lab.client import protocol
from amzigo_lab.client.transport import CA_ENV, GatewayClient
from tests.governance.gov_fixtures import World, build_world
from tests.serve.helpers import free_port, tls_handshake


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, int]]:
    world = build_world(tmp_path_factory.mktemp("gw-tls"))
    port = free_port()
    home = world.settings.home
    proc = subprocess.Popen(
        [sys.executable, "-c", "from amzigo_lab.cli import main; main()", "gateway",
         "--home", str(home), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            with GatewayClient(protocol.default_address(home)) as c:
                c.health()
            break
        except protocol.GatewayUnavailable:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.1)
    while True:  # the TLS listener starts just after the socket answers: wait for it too
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.1)
    yield world, port
    proc.terminate()
    proc.communicate(timeout=60)


def test_governed_reads_over_tls(
    tls_gateway: tuple[World, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, port = tls_gateway
    ca = world.settings.state_dir / "serve-tls" / "ca.pem"
    monkeypatch.setenv(protocol.ADDRESS_ENV, f"grpc+tls://localhost:{port}")
    monkeypatch.setenv(CA_ENV, str(ca))
    wb = amzigo_lab.connect("sales_analysis", token=world.tokens["ana"])
    try:
        assert wb.tenants("orders") == ["acme", "globex"]
        assert wb.sql("SELECT count(*) AS n FROM orders")["n"][0] == 12
    finally:
        wb.close()


def test_plain_and_old_tls_are_refused(tls_gateway: tuple[World, int]) -> None:
    _, port = tls_gateway
    with pytest.raises(protocol.GatewayError), GatewayClient(f"grpc://localhost:{port}") as c:
        c.health(timeout=5)
    assert not tls_handshake(port, ssl.TLSVersion.TLSv1_1)
    assert tls_handshake(port, ssl.TLSVersion.TLSv1_2)


def test_an_untrusted_certificate_is_refused(
    tls_gateway: tuple[World, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, port = tls_gateway
    monkeypatch.delenv(CA_ENV, raising=False)  # the system's CAs do not know the local CA
    with pytest.raises(protocol.GatewayError), GatewayClient(f"grpc+tls://localhost:{port}") as c:
        c.health(timeout=5)
    assert os.environ.get(CA_ENV) is None
