"""HTTPS server of the sandbox: LWA, the Selling Partner API routes, rate limits and faults."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import secrets
import socket
import ssl
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from .auth import Grant, TokenAuthority
from .errors import ApiError, unauthorized
from .faults import FaultKind, Faults
from .pagination import Paginator
from .protocol import Call, Request, Response, Route
from .ratelimit import RateLimiter
from .reports import ReportStore, ReportTimings
from .routes import ROUTES
from .routes.ads import AdsApi
from .routes.reports import DOWNLOAD_PREFIX, download_document
from .services import Services, SolicitationLedger
from .tls import ensure_certificates, server_context
from .world import World

LWA_PATH = "/auth/o2/token"
SOCKET_TIMEOUT = 60.0
log = logging.getLogger(__name__)


@dataclasses.dataclass
class ServerStats:
    """Per-operation counters of requests served, 429s and injected faults."""

    requests: Counter[str] = dataclasses.field(default_factory=Counter)
    throttled: Counter[str] = dataclasses.field(default_factory=Counter)
    faults: Counter[str] = dataclasses.field(default_factory=Counter)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, counter: str, operation: str) -> None:
        """Increment ``counter`` (``requests``/``throttled``/``faults``) for ``operation``."""
        with self._lock:
            getattr(self, counter)[operation] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A copy of all counters."""
        with self._lock:
            return {
                "requests": dict(self.requests),
                "throttled": dict(self.throttled),
                "faults": dict(self.faults),
            }


class _HttpServer(ThreadingHTTPServer):
    """Threaded HTTP server doing the TLS handshake in the worker thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer, tls: ssl.SSLContext):
        self.sandbox = sandbox
        self.tls = tls
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Wrap the accepted socket in TLS, then handle it (handshake failures are dropped)."""
        try:
            request.settimeout(SOCKET_TIMEOUT)
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls_socket = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            _Handler(tls_socket, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls_socket.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log connection errors quietly."""
        log.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into :class:`Request` objects for :meth:`SandboxServer.handle`."""

    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def _dispatch(self) -> None:
        """Read, handle and answer one request."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=unquote(url.path),
            query=parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        response = self.server.sandbox.handle(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Log requests at debug level only (no headers, no bodies: tokens and PII stay out)."""
        log.debug("%s %s", self.address_string(), format % args)


class SandboxServer:
    """A fake Selling Partner API + LWA over HTTPS, runnable in-process or blocking."""

    def __init__(
        self,
        world: World,
        state_dir: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float | None = 1.0,
        faults: Faults | None = None,
        pii_role: bool = False,
        token_lifetime: float = 3600.0,
        rdt_lifetime: float = 3600.0,
        report_timings: ReportTimings | None = None,
        report_clock: Callable[[], float] | None = None,
    ) -> None:
        self.world = world
        self.state_dir = Path(state_dir)
        self.host = host
        self.faults = faults or Faults()
        self.stats = ServerStats()
        self.limiter = RateLimiter(time_scale)
        self.auth = TokenAuthority(token_lifetime, rdt_lifetime)
        self.cert_paths = ensure_certificates(self.state_dir)
        pagination_secret = hashlib.sha256(f"sandbox-pagination|{world.seed}".encode()).digest()
        self.services = Services(
            world=world,
            auth=self.auth,
            paginator=Paginator(pagination_secret),
            reports=ReportStore(world, time_scale, report_timings, report_clock or time.monotonic),
            faults=self.faults,
            solicitations=SolicitationLedger(),
            pii_role=pii_role,
            url_secret=secrets.token_bytes(32),
        )
        self._httpd = _HttpServer((host, port), self, server_context(self.cert_paths))
        self.port = int(self._httpd.server_address[1])
        self.services.base_url = self.endpoint
        self.ads = AdsApi(world, time_scale, lambda: self.endpoint, self.stats.add)
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """Base URL of the SP-API, e.g. ``https://127.0.0.1:8443``."""
        return f"https://{self.host}:{self.port}"

    @property
    def lwa_url(self) -> str:
        """URL of the LWA token endpoint."""
        return self.endpoint + LWA_PATH

    @property
    def ca_path(self) -> Path:
        """PEM file of the CA that signed the server certificate."""
        return self.cert_paths.ca_cert

    @property
    def reports(self) -> ReportStore:
        """The report job store."""
        return self.services.reports

    def start(self) -> SandboxServer:
        """Serve in a background daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever, name="spapi-sandbox", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from elsewhere."""
        self._serving.set()
        try:
            self._httpd.serve_forever()
        finally:
            self._serving.clear()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._serving.is_set() or self._thread is not None:
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling ---------------------------------------------------------------------
    def _route(self, request: Request) -> tuple[Route, dict[str, str]]:
        """The route serving ``request`` (404/405 otherwise)."""
        path_known = False
        for route in ROUTES:
            params = route.match(request.method, request.path)
            if params is not None:
                return route, params
            path_known = path_known or route.pattern.match(request.path) is not None
        if path_known:
            raise ApiError(405, "MethodNotAllowed", "Method not allowed for this resource.")
        raise ApiError(404, "NotFound", "Resource not found.")

    def _authenticate(self, request: Request) -> Grant:
        """Grant of the ``x-amz-access-token``; RDTs must cover the requested resource."""
        token = request.headers.get("x-amz-access-token")
        force = bool(token) and self.faults.take_expire()
        grant = self.auth.authenticate(token, force_expired=force)
        if grant.is_rdt and not any(
            r.covers(request.method, request.path) for r in grant.restricted or ()
        ):
            raise unauthorized("The restricted data token does not cover this resource.")
        return grant

    def _lwa(self, request: Request) -> Response:
        """``POST /auth/o2/token``."""
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        status, body = self.auth.exchange(form)
        response = Response.json(body, status)
        response.headers["Cache-Control"] = "no-store"
        return response

    def handle(self, request: Request) -> Response:
        """Answer one request (pure dispatch; used by the HTTP layer and usable directly)."""
        operation: str | None = None
        if self.ads.handles(request):
            return self.ads.handle(request)
        try:
            if request.method == "POST" and request.path == LWA_PATH:
                return self._lwa(request)
            if request.method == "GET" and request.path.startswith(DOWNLOAD_PREFIX):
                return download_document(self.services, request)
            route, params = self._route(request)
            operation = route.operation
            grant = self._authenticate(request)
            self.stats.add("requests", operation)
            response = self._invoke(route, dataclasses.replace(request, path_params=params), grant)
        except ApiError as error:
            response = Response(error.status, error.body(), {"Content-Type": "application/json"})
            response.headers.update(error.headers)
        except Exception:
            log.exception("sandbox handler failed")
            internal = ApiError(500, "InternalFailure", "We encountered an internal error.")
            response = Response(500, internal.body(), {"Content-Type": "application/json"})
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        if operation is not None:
            response.headers.setdefault(
                "x-amzn-RateLimit-Limit", self.limiter.limit_header(operation)
            )
        return response

    def _invoke(self, route: Route, request: Request, grant: Grant) -> Response:
        """Apply faults and rate limits, then run the handler."""
        operation = route.operation
        fault = self.faults.take_request_fault(operation)
        if fault is not None:
            self.stats.add("faults", operation)
            if fault.kind is FaultKind.ERROR:
                raise ApiError(fault.status, "InternalFailure", "We encountered an internal error.")
            if fault.kind is FaultKind.UNAVAILABLE:
                return Response(503, b"", {})
            if fault.kind is FaultKind.SLOW:
                time.sleep(fault.delay)
        if not self.limiter.allow(grant.seller.seller_id, operation):
            self.stats.add("throttled", operation)
            raise ApiError(
                429,
                "QuotaExceeded",
                "You exceeded your quota for the requested resource.",
                headers={"x-amzn-RateLimit-Limit": self.limiter.limit_header(operation)},
            )
        response = route.handler(Call(request, grant, self.services))
        if fault is not None and fault.kind is FaultKind.MALFORMED:
            response.body = response.body[: max(1, len(response.body) // 2)]
        return response


def serve(
    state_dir: Path | str,
    host: str = "127.0.0.1",
    port: int = 8443,
    seed: int = 0,
    today: date | None = None,
    scale: float = 1.0,
    time_scale: float | None = 1.0,
    pii_role: bool = False,
    out: TextIO = sys.stdout,
) -> None:
    """Run the sandbox in the foreground until interrupted, printing its endpoint first."""
    world = World(seed=seed, today=today, scale=scale)
    server = SandboxServer(world, state_dir, host, port, time_scale=time_scale, pii_role=pii_role)
    print(f"SP-API sandbox endpoint: {server.endpoint}", file=out)
    print(f"LWA token URL: {server.lwa_url}", file=out)
    print(f"CA certificate: {server.ca_path}", file=out)
    print("Tenants: " + ", ".join(s.tenant for s in world.sellers), file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound (helper for CLIs choosing a port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
