"""The unwrap endpoint: HTTPS (TLS 1.2 minimum) in the gateway process, for distributed readers.

    POST /v1/unwrap   Authorization: Bearer <job token>
    {"key_id": "<partition key id>", "wrapped_kek": "<base64>"}  ->  200 {"kek": "<base64>"}

401 for an unknown, expired or revoked job token, 403 for a key id outside the job's scope,
400 for a malformed request, 405 for anything that would wrap or write (`/v1/wrap`: read-only),
503 while the gateway stops. The decision is `amzigo_lab.gateway.scale.ScaleKeys.unwrap`, run
on the gateway's home thread like every other call; this module is only the HTTPS plumbing.

`start(server, listen, tls)` binds `HOST:PORT` (default `127.0.0.1:0`: a free port on this
machine only) and serves from a daemon thread; the TLS handshake runs in each connection's own
thread (a silent client never blocks the others). Its log lines name the status, never a
token, a key id, a body or a key.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from amzigo_lab.gateway.scale import UNWRAP_PATH

if TYPE_CHECKING:
    from amzigo_lab.gateway.server import GatewayServer
    from amzigo_lab.serve.tls import TlsFiles

LOG = logging.getLogger("amzigo.gateway")
MAX_BODY = 64 * 1024
READ_TIMEOUT = 30.0


class _Handler(BaseHTTPRequestHandler):
    server: _HttpsServer
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT
    server_version = "amzigo-unwrap"
    sys_version = ""

    def _answer(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/v1/wrap"):
            self._answer(405, {"error": "the key service is read-only: wrapKey is refused"})
            return
        if path != UNWRAP_PATH:
            self._answer(404, {"error": f"unknown path; POST {UNWRAP_PATH}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self._answer(400, {"error": f"a JSON body of at most {MAX_BODY} bytes is required"})
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            self._answer(400, {"error": "the body is not JSON"})
            return
        auth = self.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        status, answer = self.server.call(token, body)
        self._answer(status, answer)

    def _refuse_method(self) -> None:
        self._answer(405, {"error": f"POST {UNWRAP_PATH} only (the key service is read-only)"})

    do_GET = do_PUT = do_DELETE = do_PATCH = _refuse_method

    def log_message(self, format: str, *args: Any) -> None:
        return  # no line per request (thousands per job); refusals are audited instead

    def log_error(self, format: str, *args: Any) -> None:
        LOG.info("unwrap_http_error", extra={"fields": {"client": self.client_address[0]}})


class _HttpsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], core: GatewayServer, context: ssl.SSLContext):
        self.core = core
        self.context = context
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # the handshake happens on the first read, in the connection's own thread
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def call(self, token: str, body: Any) -> tuple[int, dict[str, str]]:
        core = self.core
        if core.stopping.is_set():
            return 503, {"error": "the gateway is shutting down; retry in a moment"}
        try:
            return core._work.submit(lambda: core.scale.serve_unwrap(token, body)).result()
        except RuntimeError:  # the home thread is gone: stopping
            return 503, {"error": "the gateway is shutting down; retry in a moment"}
        except Exception as exc:
            LOG.error("unwrap_failed", extra={"fields": {"error": type(exc).__name__}})
            return 500, {"error": "internal error in the key service; see the gateway log"}

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hung up or failed the handshake: nothing to report per call


class UnwrapEndpoint:
    """A running endpoint: its URL, the CA clients trust, and `close()`."""

    def __init__(self, httpd: _HttpsServer, url: str, ca_pem: str) -> None:
        self._httpd = httpd
        self.url = url
        self.ca_pem = ca_pem
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True,
            name="amzigo-unwrap",
        )  # fmt: skip
        self._thread.start()

    def close(self) -> None:
        """Stop accepting requests and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


def start(server: GatewayServer, listen: str, tls: TlsFiles) -> UnwrapEndpoint:
    """Serve the unwrap endpoint of `server` on `listen` (HOST:PORT; port 0 picks a free one)
    with the certificate of `tls`; clients trust `tls.cafile` (else the chain itself)."""
    from amzigo_lab.serve.tls import server_context

    host, _, port = listen.rpartition(":")
    host = (host or "127.0.0.1").strip("[]")
    context = server_context(tls)  # TLS 1.2 minimum, no compression
    httpd = _HttpsServer((host, int(port)), server, context)
    bound = httpd.server_address[1]
    name = socket.getfqdn() if host in ("0.0.0.0", "::") else host  # noqa: S104 - a check
    if ":" in name:
        name = f"[{name}]"
    ca = tls.cafile or tls.certfile
    url = f"https://{name}:{bound}{UNWRAP_PATH}"
    return UnwrapEndpoint(httpd, url, ca.read_text(encoding="utf-8"))
