"""A real home with two tenants' data and users, and a real dashboard server in a subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import requests
from argon2 import PasswordHasher

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.home import init_home

PASSWORD = "Velvet-Harbor-Lamp-42"
ROOT = Path(__file__).resolve().parents[2]
# user -> (roles, tenant binding)
USERS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "sam": (("seller",), "acme-outdoor"),
    "bob": (("seller",), "bluebird-home"),
    "ana": (("analyst",), None),
    "ida": (("analyst",), None),  # two more analysts in the lab
    "kim": (("analyst",), None),
    "cyd": (("seller",), "acme-outdoor"),  # owns the kernel the isolation test attacks
    "dee": (("seller",), "acme-outdoor"),  # logs out
    "lou": (("seller",), "acme-outdoor"),  # the lockout victim
    "eve": (("seller",), "acme-outdoor"),  # gets a kernel from the warm pool
    "gus": (("seller",), "acme-outdoor"),  # sees a forced dashboard failure
    "lee": (("analyst",), None),  # logs in to the lab after its address was throttled
    "mia": (("analyst",), None),  # checks the lab's headers
    "una": (("analyst",), None),  # one login into connect() in a lab kernel
    "pat": (("analyst",), None),  # logs in to the lab through its reverse proxy
    "ott": (("seller",), "acme-outdoor"),  # a one-time password, changed at first web login
}
#: Users created with a one-time password (as `amzigo users add` and the demo do).
ONE_TIME_USERS = {"ott"}


def cheap_hasher() -> PasswordHasher:
    """argon2id with tiny costs: tests only."""
    return PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@dataclass
class Home:
    """A populated home and its users' TOTP secrets."""

    settings: Settings
    totp: dict[str, str] = field(default_factory=dict)

    def code(self, user: str) -> str:
        """The user's current TOTP code."""
        return str(pyotp.TOTP(self.totp[user]).now())

    @property
    def ca(self) -> Path:
        """The local CA the dashboard's certificate chains to."""
        return self.settings.state_dir / "serve-tls" / "ca.pem"


def make_home(
    path: Path,
    users: dict[str, tuple[tuple[str, ...], str | None]] = USERS,
    fixtures: bool = True,
) -> Home:
    """Initialise a home, write the report fixtures (two tenants; unless `fixtures` is False)
    and create the users."""
    from amzigo_lab.governance.context import Governance
    from tests.analysis.data import populate

    settings = load_settings(path, env={})
    lake = init_home(settings, audit=MemorySink())
    try:
        if fixtures:
            populate(lake)
    finally:
        lake.close()
    home = Home(settings)
    with Governance.open(settings, hasher=cheap_hasher()) as gov:
        for name, (roles, tenant) in users.items():
            enrollment = gov.identity.add_user(
                name, roles, tenant, password=PASSWORD, one_time=name in ONE_TIME_USERS
            )
            query = urllib.parse.urlparse(enrollment.provisioning_uri).query
            home.totp[name] = urllib.parse.parse_qs(query)["secret"][0]
    return home


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running `amzigo dashboard` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    home: Home
    log: Path

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"https://localhost:{self.port}"

    def warm_kernels(self) -> int:
        """How many pooled kernels the server has warmed up so far (from its log)."""
        return self.log.read_text(errors="replace").count(" is warm")

    def wait_warm(self, count: int, timeout: float = 90.0) -> None:
        """Wait until the server has warmed `count` pooled kernels in total."""
        deadline = time.monotonic() + timeout
        while self.warm_kernels() < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"no warm kernels: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM (the server shuts its kernels down), then kill if needed."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_dashboard(home: Home, log_dir: Path, *extra: str, command: str = "dashboard") -> Server:
    """Start `amzigo dashboard` (or `lab`) on a free port and wait until its login page answers."""
    port = free_port()
    log = log_dir / f"{command}-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMZIGO_")}
    env["AMZIGO_HOME"] = str(home.settings.home)
    env["AMZIGO_TEST_SECRET_TOKEN"] = "must-not-reach-kernels"
    env["PYTHONPATH"] = str(ROOT)
    cmd = [
        sys.executable, "-c", "from amzigo_lab.cli import main; main()",
        command, "--port", str(port), "--home", str(home.settings.home), *extra,
    ]  # fmt: skip
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = Server(proc, port, home, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{command} exited: {log.read_text()[-3000:]}")
        try:
            r = requests.get(f"{server.base}/login", verify=str(home.ca), timeout=2)
            if r.status_code == 200:
                return server
        except (requests.ConnectionError, requests.Timeout, FileNotFoundError, OSError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{command} did not start: {log.read_text()[-3000:]}")


def login(
    server: Server,
    user: str,
    password: str = PASSWORD,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[requests.Session, requests.Response]:
    """Post the login form with requests; return the session and the final response."""
    s = requests.Session()
    s.trust_env = False  # no proxies, and REQUESTS_CA_BUNDLE would override `verify`
    s.headers.update(headers or {})
    s.verify = str(server.home.ca)
    s.get(f"{server.base}/login")
    xsrf = s.cookies.get("_xsrf")
    r = s.post(
        f"{server.base}/login",
        data={
            "_xsrf": xsrf,
            "username": user,
            "password": password,
            "code": code if code is not None else server.home.code(user),
            "next": "/",
        },
        allow_redirects=False,
    )
    return s, r


def tls_handshake(port: int, version: ssl.TLSVersion) -> bool:
    """Whether a client offering only `version` completes a handshake with the server."""
    import warnings

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost"),
        ):
            return True
    except (ssl.SSLError, OSError):
        return False
