"""The launchers behind `amzigo dashboard` (Voila) and `amzigo lab` (JupyterLab).

Both use `AmzigoIdentityProvider`, `OwnerAuthorizer` and `OwnedKernelManager`, serve over TLS
(TLS 1.2 minimum) unless explicitly told not to on a loopback address, cull idle kernels, and
keep secrets out of kernel environments. Voila 0.5.13 has no TLS option of its own (`listen()`
ignores certificates), so `DashboardApp` overrides `listen()`; it also swaps Voila's shutdown
handler for `OwnedShutdownHandler`.

On a hardened home (`amzigo_lab.hardening`) both run as the home's service user with the
capabilities to start kernels as its kernel user (`amzigo_lab.serve.oskernel`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import ssl
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from traitlets.config import Config
from voila.app import Voila
from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler

from amzigo_lab.config import Settings
from amzigo_lab.errors import ConfigError
from amzigo_lab.hardening import check_server_user, is_hardened, read_marker_quiet
from amzigo_lab.serve import tls, web
from amzigo_lab.serve.hooks import prelaunch_hook
from amzigo_lab.serve.identity import ANALYSIS_ROLES, AmzigoIdentityProvider
from amzigo_lab.serve.kernels import (
    OwnedKernelManager,
    OwnedSessionManager,
    OwnedShutdownHandler,
    OwnerAuthorizer,
)
from amzigo_lab.serve.oskernel import default_kernel_dir
from amzigo_lab.serve.warmup import DEFAULT_WARM_KERNELS, WARMUP_CODE

DEFAULT_DASHBOARD_PORT = 8866
DEFAULT_LAB_PORT = 8888
CULL_IDLE_SECONDS = 600
CULL_INTERVAL_SECONDS = 60
#: `/voila/files` serves images only: never data, notebooks, keys or databases.
FILE_ALLOWLIST = [r".*\.(png|jpg|jpeg|gif|svg)"]
FILE_DENYLIST = [r".*\.(ipynb|py|parquet|sqlite|db|csv|json|toml|key|pem|log)$", r"(^|.*/)\..*"]
SELLER_DASHBOARD = "seller.ipynb"
KERNEL_USER_MANAGER = "amzigo_lab.serve.oskernel.KernelUserManager"
DEFAULT_ADDRESS_MAX_FAILURES = 30
DEFAULT_ADDRESS_WINDOW = 900.0
#: What a seller sees instead of a failed cell's error (the details are in the server log).
CELL_ERROR_TEXT = (
    "The dashboard hit an error. Reload the page; if it keeps happening, tell your "
    "administrator (the details are in the server log)."
)


def dashboards_dir() -> Path:
    """The dashboard notebooks shipped with the package."""
    return Path(str(resources.files("amzigo_lab") / "notebooks" / "dashboards"))


def templates_dir() -> Path:
    """The page templates shipped with the package (they extend Voila's)."""
    return Path(str(resources.files("amzigo_lab") / "serve" / "templates"))


def explore_notebook() -> Path:
    """The analysts' starter notebook shipped with the package."""
    return Path(str(resources.files("amzigo_lab") / "notebooks" / "explore.ipynb"))


@dataclass(frozen=True)
class ServeOptions:
    """Where and how to serve."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_DASHBOARD_PORT
    certfile: str | None = None
    keyfile: str | None = None
    no_tls: bool = False
    cull_idle_timeout: int = CULL_IDLE_SECONDS
    warm_kernels: int = DEFAULT_WARM_KERNELS
    #: failed logins from one client address within `address_window` seconds before 429
    address_max_failures: int = DEFAULT_ADDRESS_MAX_FAILURES
    address_window: float = DEFAULT_ADDRESS_WINDOW
    #: reverse proxies whose X-Forwarded-For names the client (addresses or CIDR networks)
    trusted_proxies: tuple[str, ...] = ()


def _prepare(settings: Settings, opts: ServeOptions) -> ssl.SSLContext | None:
    """Checks shared by both servers; returns the TLS context (None only for loopback HTTP)."""
    tls.check_bind(opts.host, not opts.no_tls)
    if settings.key_provider != "file":
        raise ConfigError(
            "serving notebooks needs key_provider = file: kernels never receive the master key "
            f"through their environment (${settings.key_env_var} is removed from it)"
        )
    if not settings.catalog_path.exists():
        raise ConfigError(f"{settings.home} is not an initialised home; run `amzigo init` first")
    if read_marker_quiet(settings.home) is not None or is_hardened(settings.home):
        check_server_user(settings.home)  # the service user, able to start kernels as K
    # kernels find the home through this (non-secret) variable; secrets are stripped from them
    os.environ["AMZIGO_HOME"] = str(settings.home)
    if opts.no_tls:
        return None
    files = tls.resolve(settings.state_dir, opts.certfile, opts.keyfile)
    context = tls.server_context(files)
    tls.quiet_rejected_certificates(files)
    return context


def _common_config(c: Config, settings: Settings, opts: ServeOptions) -> None:
    c.AmzigoIdentityProvider.home = str(settings.home)
    c.MappingKernelManager.cull_idle_timeout = opts.cull_idle_timeout
    c.MappingKernelManager.cull_interval = CULL_INTERVAL_SECONDS
    c.MappingKernelManager.cull_connected = False
    # CurveZMQ between server and kernels: other local users cannot read or drive a kernel
    c.MappingKernelManager.transport_encryption = "required"
    c.AmzigoIdentityProvider.address_max_failures = opts.address_max_failures
    c.AmzigoIdentityProvider.address_window = opts.address_window
    c.AmzigoIdentityProvider.trusted_proxies = list(opts.trusted_proxies)
    c.OwnedKernelManager.gateway_home = str(settings.home)
    marker = read_marker_quiet(settings.home)
    if marker is not None:  # a hardened home: kernels run as its kernel user (oskernel.py)
        c.MappingKernelManager.kernel_manager_class = KERNEL_USER_MANAGER
        c.KernelUserManager.kernel_user = marker.kernel_user
        c.KernelUserManager.kernel_dir = str(default_kernel_dir(settings.home))


def dashboard_config(settings: Settings, opts: ServeOptions) -> Config:
    """The Voila configuration: login, hook, kernel ownership, files, culling."""
    c = Config()
    _common_config(c, settings, opts)
    c.Voila.ip = opts.host
    c.Voila.port = opts.port
    c.Voila.port_retries = 0
    c.Voila.open_browser = False
    c.Voila.root_dir = str(dashboards_dir())
    c.Voila.identity_provider_class = AmzigoIdentityProvider
    c.Voila.authorizer_class = OwnerAuthorizer
    c.Voila.tornado_settings = web.tornado_settings(web.DASHBOARD_CSP, tls=not opts.no_tls)
    c.AmzigoIdentityProvider.app_label = "dashboard"
    c.VoilaConfiguration.prelaunch_hook = prelaunch_hook
    c.VoilaConfiguration.multi_kernel_manager_class = OwnedKernelManager
    c.OwnedKernelManager.pool_size = max(0, opts.warm_kernels)
    c.OwnedKernelManager.warmup_code = WARMUP_CODE
    c.VoilaConfiguration.file_allowlist = FILE_ALLOWLIST
    c.VoilaConfiguration.file_denylist = FILE_DENYLIST
    c.VoilaConfiguration.show_tracebacks = False
    c.VoilaExecutor.show_tracebacks = False
    c.VoilaExecutor.cell_error_instruction = CELL_ERROR_TEXT
    c.VoilaConfiguration.http_header_envs = []
    c.VoilaConfiguration.preheat_kernel = False
    c.VoilaConfiguration.extension_denylist = ["jupyterlab-jupytext"]
    # notebook signatures in memory under a per-process secret (nothing written to the user's
    # Jupyter data dir); the packaged dashboards are signed at start (see DashboardApp.listen)
    c.NotebookNotary.db_file = ":memory:"
    c.NotebookNotary.secret = secrets.token_bytes(32)
    return c


def _is_page_handler(handler: Any) -> bool:
    """Voila's HTML page handlers (render, tree): their errors must not show exception text."""
    from voila.handler import BaseVoilaHandler

    return isinstance(handler, type) and issubclass(handler, BaseVoilaHandler)


class DashboardApp(Voila):
    """Voila with TLS, the owner-checking shutdown handler and a clean stop on SIGTERM."""

    ssl_context: ssl.SSLContext | None = None

    def setup_template_dirs(self) -> None:
        """Voila's template paths, with ours first (its lab template, offline: see the file)."""
        super().setup_template_dirs()
        voila_paths: list[str] = list(getattr(self, "template_paths", []))
        self.template_paths = [str(templates_dir()), *voila_paths]

    def init_handlers(self) -> list[Any]:
        """Voila's handlers, with `/voila/api/shutdown/<id>` checking the kernel's owner and
        the page handlers' errors shown as plain pages (see `web.error_page`)."""
        out = []
        for spec in super().init_handlers():
            if len(spec) > 1 and spec[1] is VoilaShutdownKernelHandler:
                spec = (spec[0], OwnedShutdownHandler, *spec[2:])
            elif len(spec) > 1 and _is_page_handler(spec[1]):
                spec = (spec[0], web.with_safe_errors(spec[1]), *spec[2:])
            out.append(spec)
        return out

    @property
    def display_url(self) -> str:
        """The URL to print (https unless serving plain HTTP on loopback)."""
        scheme = "https" if self.ssl_context is not None else "http"
        host = "localhost" if self.ip in ("127.0.0.1", "localhost", "") else self.ip
        return f"{scheme}://{host}:{self.port}{self.base_url}"

    def listen(self) -> None:
        """Bind (with TLS) and run until stopped."""
        import tornado.ioloop

        self._trust_dashboards()
        try:
            self.app.listen(self.port, self.ip, ssl_options=self.ssl_context)
        except OSError as exc:
            self.stop()
            raise ConfigError(
                f"cannot listen on {self.ip}:{self.port} ({exc.strerror}): is another server "
                "using it? Pick another port with --port"
            ) from None
        self.log.info("amzigo dashboard at %svoila/render/%s", self.display_url, SELLER_DASHBOARD)
        self.ioloop = tornado.ioloop.IOLoop.current()
        kernels = self.kernel_manager
        if isinstance(kernels, OwnedKernelManager):
            self.ioloop.add_callback(kernels.schedule_refill, 0.0)  # warm the pool now
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle_signal_stop)
        try:
            self.ioloop.start()
        finally:
            self.stop()

    def _trust_dashboards(self) -> None:
        """Sign the packaged dashboard notebooks (our code) so page views load them trusted."""
        import nbformat

        notary = self.contents_manager.notary
        for path in sorted(dashboards_dir().glob("*.ipynb")):
            notary.sign(nbformat.read(path, as_version=4))

    def stop(self) -> None:
        """Shut kernels down and close the identity store and audit log."""
        try:
            super().stop()
        finally:
            provider = getattr(self, "identity_provider", None)
            if isinstance(provider, AmzigoIdentityProvider):
                provider.close()


def run_dashboard(settings: Settings, opts: ServeOptions) -> None:
    """Serve the seller dashboards until interrupted."""
    context = _prepare(settings, opts)
    app = DashboardApp(config=dashboard_config(settings, opts))
    app.ssl_context = context
    app.initialize(argv=[])
    app.start()


# -- JupyterLab -------------------------------------------------------------------------------


def lab_config(settings: Settings, opts: ServeOptions, root: Path) -> Config:
    """The JupyterLab (jupyter_server) configuration."""
    c = Config()
    _common_config(c, settings, opts)
    c.ServerApp.ip = opts.host
    c.ServerApp.port = opts.port
    c.ServerApp.port_retries = 0
    c.ServerApp.open_browser = False
    c.ServerApp.root_dir = str(root)
    c.ServerApp.identity_provider_class = AmzigoIdentityProvider
    c.ServerApp.authorizer_class = OwnerAuthorizer
    c.ServerApp.kernel_manager_class = OwnedKernelManager
    c.OwnedKernelManager.kernel_tokens = True  # connect() in a kernel: no second login
    c.ServerApp.session_manager_class = OwnedSessionManager
    c.ServerApp.terminals_enabled = False
    c.ServerApp.tornado_settings = web.tornado_settings(web.LAB_CSP, tls=not opts.no_tls)
    # containers and CI run as root; jupyter_server refuses that unless told (the kernel still
    # gets no secrets: see kernels.py). Production should run the lab as an unprivileged user.
    c.ServerApp.allow_root = os.geteuid() == 0
    c.ServerApp.default_url = "/lab/tree/explore.ipynb"
    c.ServerApp.jpserver_extensions = {"jupyterlab": True}
    c.AmzigoIdentityProvider.allowed_roles = list(ANALYSIS_ROLES)
    c.AmzigoIdentityProvider.app_label = "lab"
    if not opts.no_tls:
        c.ServerApp.certfile = ""  # the TLS context is installed by AmzigoServerApp
    return c


def _lab_server_class() -> Any:
    from jupyter_server.serverapp import ServerApp

    class AmzigoServerApp(ServerApp):
        """jupyter_server with an SSLContext (TLS 1.2 minimum) instead of ssl_options."""

        amzigo_ssl_context: ssl.SSLContext | None = None

        def init_httpserver(self) -> None:
            # As ServerApp.init_httpserver, but with our SSLContext (the `ssl_options` trait
            # only takes a dict, which cannot carry a minimum TLS version).
            if self.amzigo_ssl_context is None:
                super().init_httpserver()
                return
            from tornado import httpserver

            self._http_server = httpserver.HTTPServer(
                self.web_app,
                ssl_options=self.amzigo_ssl_context,
                xheaders=self.trust_xheaders,
                max_body_size=self.max_body_size,
                max_buffer_size=self.max_buffer_size,
            )
            if not self.sock:
                self._find_http_port()
            self.io_loop.add_callback(self._bind_http_server)

        @property
        def connection_url(self) -> str:
            url: str = super().connection_url
            if self.amzigo_ssl_context is not None:
                url = url.replace("http://", "https://", 1)
            return url

    return AmzigoServerApp


def prepare_lab_root(root: Path, settings: Settings) -> Path:
    """The lab's notebook folder (outside the home), with `explore.ipynb` copied in if absent."""
    root = root.expanduser().resolve()
    if root == settings.home or settings.home in root.parents or root in settings.home.parents:
        raise ConfigError(
            f"the lab folder {root} must not contain or be inside the home {settings.home} "
            "(keys and databases live there); pass --root DIR"
        )
    root.mkdir(parents=True, exist_ok=True)
    target = root / "explore.ipynb"
    if not target.exists():
        shutil.copyfile(explore_notebook(), target)
    return root


def run_lab(settings: Settings, opts: ServeOptions, root: Path) -> None:
    """Serve JupyterLab for analysts until interrupted."""
    context = _prepare(settings, opts)
    root = prepare_lab_root(root, settings)
    server_class = _lab_server_class()
    server = server_class.instance(config=lab_config(settings, opts, root))
    server.amzigo_ssl_context = context
    server.initialize(argv=[], find_extensions=False)
    server.start()
