"""Hardened mode, attacked for real with OS users (issue 11, item 3).

A small world is hardened with `amzigo_lab.hardening.harden` (service user `amzigo-tsvc`, kernel
user `amzigo-tkern`: created if missing and left in place for the next run), its gateway runs
as the service user, and every attack runs in a process of the kernel user (setpriv).

Needs root (skipped otherwise). The kernel user must be able to execute this interpreter and
import this checkout: the `access` fixture adds o+x (traverse only, never read or list) to the
directories on the way to the interpreter, the venv and the checkout that lack it (e.g. /root
when Python lives in /root/.pyenv, or a checkout under /root in CI), and says which it changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from amzigo_lab.client import protocol
from amzigo_lab.client.transport import GatewayClient
from amzigo_lab.hardening import Marker, harden, inspect, os_user
from tests.governance.gov_fixtures import World, build_world

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="needs root: creates OS users and runs processes as them",
    ),
]

SVC, KERN = "amzigo-tsvc", "amzigo-tkern"
REPO = Path(__file__).resolve().parents[2]
CLI_MAIN = "from amzigo_lab.cli import main; main()"


def _add_traverse(paths: list[Path]) -> list[str]:
    changed = []
    for path in paths:
        for d in [path, *path.parents]:
            if d.is_dir() and not d.stat().st_mode & 0o001:
                os.chmod(d, stat.S_IMODE(d.stat().st_mode) | 0o001)
                changed.append(str(d))
    return changed


def _env(**extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


def as_user(user: str, code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run Python `code` as `user` (uid and primary group only)."""
    u = os_user(user)
    assert u is not None
    command = ["setpriv", f"--reuid={u.uid}", f"--regid={u.gid}", "--clear-groups", "--"]
    command += [sys.executable, "-c", textwrap.dedent(code), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=180, cwd="/", env=_env(**env)
    )


def _json(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Hardened:
    world: World
    marker: Marker
    gateway: subprocess.Popen[str]

    @property
    def home(self) -> Path:
        return self.world.settings.home


@pytest.fixture(scope="module")
def hw() -> Iterator[Hardened]:
    interpreter = Path(os.path.realpath(sys.executable))
    changed = _add_traverse([REPO, Path(sys.prefix), interpreter.parent, Path(sys.base_prefix)])
    if changed:
        print(f"added o+x (traverse) to {changed} so the test users can run Python")
    root = Path(tempfile.mkdtemp(prefix="amzigo-hardened-", dir="/tmp"))
    os.chmod(root, 0o755)
    world = build_world(root)
    from amzigo_lab.serve import tls

    tls.resolve(world.settings.state_dir, None, None)  # the local CA (its key must stay private)
    (world.settings.home / "demo-credentials.txt").write_text("adm: secret\n")
    marker = harden(world.settings, SVC, KERN)
    probe = as_user(KERN, "import amzigo_lab.client.workbench; print('ok')")
    if probe.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"the kernel user cannot run this Python/checkout: {probe.stderr[-300:]}")
    svc = os_user(SVC)
    assert svc is not None
    switch = ["setpriv", f"--reuid={svc.uid}", f"--regid={svc.gid}", "--init-groups", "--"]
    gateway = subprocess.Popen(
        [*switch, sys.executable, "-m", "amzigo_lab.gateway", "--home", str(world.settings.home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
        env=_env(),
    )
    address = protocol.default_address(world.settings.home)
    deadline = time.monotonic() + 90
    while True:
        try:
            with GatewayClient(address) as client:
                client.health()
            break
        except protocol.GatewayUnavailable:
            if gateway.poll() is not None or time.monotonic() > deadline:
                gateway.kill()
                raise AssertionError(f"gateway did not start: {gateway.communicate()[1][-2000:]}")
            time.sleep(0.2)
    try:
        yield Hardened(world, marker, gateway)
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            gateway.kill()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(marker.socket_dir, ignore_errors=True)


def test_home_and_socket_layout(hw: Hardened) -> None:
    svc, kern = os_user(SVC), os_user(KERN)
    assert svc and kern
    st = hw.home.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (svc.uid, 0o700)
    for p in hw.home.rglob("*"):
        assert p.lstat().st_uid == svc.uid, p
    sock_dir = Path(hw.marker.socket_dir)
    assert hw.home not in sock_dir.parents
    sd = sock_dir.stat()
    assert (sd.st_uid, sd.st_gid, stat.S_IMODE(sd.st_mode)) == (svc.uid, kern.gid, 0o2750)
    sock = protocol.socket_path(hw.home)
    assert sock.parent == sock_dir
    ss = sock.stat()
    assert (ss.st_uid, ss.st_gid, stat.S_IMODE(ss.st_mode)) == (svc.uid, kern.gid, 0o660)
    bulk = protocol.bulk_socket_path(f"grpc+unix://{sock}")  # large results: same permissions
    assert bulk is not None
    bs = bulk.stat()
    assert (bs.st_uid, bs.st_gid, stat.S_IMODE(bs.st_mode)) == (svc.uid, kern.gid, 0o660)
    report = inspect(hw.world.settings)
    assert report["hardened"] and report["ok"], report
    # idempotent: hardening again changes nothing and keeps the first date
    again = harden(hw.world.settings, SVC, KERN)
    assert again == hw.marker


def test_kernel_user_cannot_read_anything_in_the_home(hw: Hardened) -> None:
    files = [str(p) for p in hw.home.rglob("*") if p.is_file()]
    names = {Path(f).name for f in files}
    assert {"master.key", "identity.sqlite", "demo-credentials.txt", "ca-key.pem"} & names
    assert any("serve-tls" in f for f in files)
    done = as_user(
        KERN,
        """
        import json, os, sys
        out = {}
        for p in [sys.argv[1], *json.loads(sys.argv[2])]:
            try:
                if p == sys.argv[1]:
                    os.listdir(p)
                else:
                    open(p, "rb").read(1)
                out[p] = "READ"
            except PermissionError:
                out[p] = "denied"
        print(json.dumps(out))
        """,
        str(hw.home),
        json.dumps(files),
    )
    result = _json(done)
    assert len(result) == len(files) + 1
    assert set(result.values()) == {"denied"}, {k: v for k, v in result.items() if v != "denied"}


def test_kernel_user_cannot_open_the_lake_or_run_admin_commands(hw: Hardened) -> None:
    direct = as_user(
        KERN,
        """
        import sys
        from amzigo_lab.config import load_settings
        from amzigo_lab.home import open_lake
        try:
            settings = load_settings(sys.argv[1])
            open_lake(settings).catalog.partitions()
        except PermissionError as exc:
            print("denied", exc.filename)
        """,
        str(hw.home),
    )
    assert direct.returncode == 0 and direct.stdout.startswith("denied"), direct.stderr[-2000:]
    cli = "import sys; from amzigo_lab.cli import main; sys.argv[0] = 'amzigo'; main()"
    # the CLI's client commands read nothing in the home: they reach the gateway (through the
    # hardened socket), which wants a person's session
    grant = as_user(KERN, cli, "users", "grant", "ana", "--tenant", "initech", AMZIGO_HOME=str(hw.home))  # fmt: skip
    assert grant.returncode == 2 and "log in first" in grant.stderr, grant.stderr
    for args in (("lake", "ls"), ("hold", "list"), ("users", "list")):
        listed = as_user(KERN, cli, *args, "--home", str(hw.home))
        assert listed.returncode == 2 and "log in first" in listed.stderr, listed.stderr
    # the break-glass credential is the service account's alone
    glass = as_user(KERN, cli, "lake", "ls", "--break-glass", "x", "--home", str(hw.home))
    assert glass.returncode == 2 and "only the service account" in glass.stderr, glass.stderr
    # with an admin's session, an OS user who cannot read the home lists the lake through it
    adm = hw.world.tokens["adm"]
    listed = as_user(KERN, cli, "lake", "ls", "--json", "--home", str(hw.home), AMZIGO_SESSION=adm)
    assert listed.returncode == 0, listed.stderr
    assert {r["tenant"] for r in json.loads(listed.stdout)} >= {"acme"}
    gateway = as_user(
        KERN, "from amzigo_lab.gateway.__main__ import main; raise SystemExit(main())",
        "--home", str(hw.home),
    )  # fmt: skip
    assert gateway.returncode == 2 and f"service user {SVC!r} only" in gateway.stderr


def test_gateway_refuses_root_and_other_users(hw: Hardened) -> None:
    for command in (
        [sys.executable, "-m", "amzigo_lab.gateway", "--home", str(hw.home)],
        [sys.executable, "-c", CLI_MAIN, "gateway", "--home", str(hw.home)],
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, env=_env(COLUMNS="300")
        )
        assert done.returncode == 2, done.stderr
        text = " ".join(done.stderr.split())
        assert f"service user {SVC!r} only, not as 'root'" in text
        assert f"runuser -u {SVC} -- amzigo gateway --home {hw.home}" in text
    assert hw.gateway.poll() is None  # the real one is untouched


CONNECT = """
import json, sys
import amzigo_lab
from amzigo_lab.errors import AccessDenied
out = {}
try:
    wb = amzigo_lab.connect(sys.argv[2], home=sys.argv[1])
except AccessDenied as exc:
    print(json.dumps({"refused": str(exc)}))
    raise SystemExit(0)
out["user"] = wb.user
out["datasets"] = wb.datasets()
if "orders" in wb.datasets():
    out["tenants"] = sorted(wb.sql("SELECT DISTINCT tenant FROM orders")["tenant"].to_list())
# a result large enough for the bulk socket (~12 MB), received by the kernel user
out["big"] = wb.sql("SELECT range AS i, repeat('x', 200) AS pad FROM range(60000)", arrow=True).num_rows
try:
    wb.tenants("order_buyers")
    out["pii"] = "READ"
except AccessDenied as exc:
    out["pii"] = "denied: " + str(exc)
wb.close()
print(json.dumps(out))
"""


def test_kernel_user_reads_through_the_gateway_only_what_is_granted(hw: Hardened) -> None:
    ana = _json(as_user(KERN, CONNECT, str(hw.home), "sales_analysis", AMZIGO_TOKEN=hw.world.tokens["ana"]))  # fmt: skip
    assert ana["user"] == "ana" and ana["tenants"] == ["acme", "globex"]
    assert ana["big"] == 60_000  # over the bulk socket, reachable by the kernel user's group
    assert ana["pii"].startswith("denied")
    # a PII processor gets no session without a PII purpose; with one, its granted tenant only
    pia = _json(as_user(KERN, CONNECT, str(hw.home), "sales_analysis", AMZIGO_TOKEN=hw.world.tokens["pia"]))  # fmt: skip
    assert "is not allowed for role(s) pii_processor" in pia["refused"]
    pia = _json(as_user(KERN, CONNECT, str(hw.home), "order_fulfilment", AMZIGO_TOKEN=hw.world.tokens["pia"]))  # fmt: skip
    assert pia["user"] == "pia" and "order_buyers" in pia["datasets"] and pia["pii"] == "READ"
    # a bad token and a forged operator request are refused
    forged = as_user(
        KERN,
        """
        import json, sys
        from amzigo_lab.client import protocol
        from amzigo_lab.client.transport import GatewayClient
        from amzigo_lab.errors import AccessDenied
        out = []
        address = protocol.default_address(__import__("pathlib").Path(sys.argv[1]))
        for token, action, body in [
            ("not-a-token", protocol.SESSION_OPEN, {"purpose": "sales_analysis"}),
            (sys.argv[2], protocol.SERVICE_MINT, {"actor": "svc:reports", "tenant": "initech",
                                                  "purposes": ["sales_analysis"]}),
            (sys.argv[2], protocol.SHUTDOWN, {}),
        ]:
            try:
                with GatewayClient(address, token) as client:
                    client.action(action, body)
                out.append("ALLOWED")
            except AccessDenied as exc:
                out.append(str(exc))
        print(json.dumps({"refusals": out, "address": address}))
        """,
        str(hw.home),
        hw.world.tokens["ana"],
    )
    result = _json(forged)
    assert "ALLOWED" not in result["refusals"], result
    assert result["address"] == f"grpc+unix://{hw.marker.socket_dir}/gateway.sock"
    assert hw.gateway.poll() is None
    # every refusal that reached the gateway is in the audit log (read as the service user)
    audit = as_user(
        SVC,
        """
        import json, sys
        from amzigo_lab.config import load_settings
        from amzigo_lab.governance.context import Governance
        with Governance.open(load_settings(sys.argv[1])) as gov:
            events = [e.to_dict() for e in gov.audit_log.search() if e.decision == "deny"]
        print(json.dumps([[e.get("actor"), e.get("action"), e.get("resource"), e.get("reason")]
                          for e in events]))
        """,
        str(hw.home),
    )
    denials = _json_list(audit)
    text = json.dumps(denials)
    assert "service.mint needs the gateway's operator credential" in text, text
    assert "shutdown needs the gateway's operator credential" in text
    assert any("order_buyers" in json.dumps(d) and d[0] == "ana" for d in denials), text
    assert any(d[0] == "pia" and "sales_analysis" in json.dumps(d) for d in denials), text
    assert any(d[1] in ("gateway.denied", "auth.session") or "token" in str(d[3]) for d in denials)


def _json_list(done: subprocess.CompletedProcess[str]) -> list:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_harden_needs_root(hw: Hardened) -> None:
    done = as_user(
        KERN,
        """
        import sys
        from amzigo_lab.config import load_settings
        from amzigo_lab.hardening import HardeningError, harden
        try:
            harden(load_settings("/tmp/nowhere-amzigo", env={}), "x")
        except HardeningError as exc:
            print(exc)
        """,
    )
    assert "needs root" in done.stdout, done.stderr[-2000:]


def test_root_cli_switches_to_the_service_user(hw: Hardened) -> None:
    """`amzigo doctor` run as root on a hardened home re-executes itself as the service user."""
    script = hw.home.parent / "bin" / "amzigo"  # readable by the service user
    script.parent.mkdir(mode=0o755)
    script.write_text("import sys\nfrom amzigo_lab.cli import main\nsys.exit(main())\n")
    os.chmod(script, 0o644)
    done = subprocess.run(
        [sys.executable, str(script), "doctor", "--home", str(hw.home), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["hardening"]["hardened"] and report["hardening"]["ok"], report["hardening"]
    svc = os_user(SVC)
    assert svc is not None
    for p in hw.home.rglob("*"):  # nothing root-owned appeared
        assert p.lstat().st_uid == svc.uid, p


def test_non_hardened_home_is_unchanged(tmp_path: Path) -> None:
    from amzigo_lab.client.transport import hardened
    from amzigo_lab.config import load_settings

    settings = load_settings(tmp_path / "plain", env={})
    assert not hardened(settings.home)
    sock = protocol.socket_path(settings.home)
    default = protocol.runtime_dir(settings.home.resolve()) / "gateway.sock"
    if len(str(default)) <= 100:  # else the short fallback under the temp dir (socket limit)
        assert sock == default
    else:
        assert sock.parent.name == f"amzigo-{os.getuid()}"
    from amzigo_lab.home import init_home

    init_home(settings).close()
    info = inspect(settings)
    assert info == {**info, "hardened": False, "ok": True}
    assert "single-user home (not hardened)" in info["note"]


KERNEL_PROBE = """
import json, os
import amzigo_lab
out = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd(),
       "env_home": os.environ.get("HOME"), "secret_env": sorted(k for k in os.environ if "KEY" in k)}
for name, path in PATHS.items():
    try:
        os.listdir(path) if name == "home" else open(path, "rb").read(1)
        out[name] = "READ"
    except PermissionError:
        out[name] = "denied"
wb = amzigo_lab.connect("sales_analysis", home=HOME)
out["user"] = wb.user
out["tenants"] = sorted(wb.sql("SELECT DISTINCT tenant FROM orders")["tenant"].to_list())
wb.close()
print("RESULT" + json.dumps(out))
"""


async def _kernels_as_the_kernel_user(hw: Hardened) -> tuple[dict, list[str]]:
    from amzigo_lab.serve.kernels import kernel_env
    from amzigo_lab.serve.oskernel import KernelUserManager

    kernel_dir = hw.home.parent / "kernels"
    env = kernel_env({**_env(AMZIGO_HOME=str(hw.home)), "AMZIGO_MASTER_KEY": "x"})
    managers = []
    try:
        for user in ("ana", "nog"):
            km = KernelUserManager(
                kernel_name="python3",
                kernel_user=KERN,
                kernel_dir=str(kernel_dir),
                transport_encryption="required",
            )
            await km.start_kernel(env={**env, "AMZIGO_TOKEN": hw.world.tokens[user]})
            managers.append(km)
        for km in managers:
            assert km._revoke_task is not None
            await km._revoke_task  # the kernel answered: its connection file is the server's again
        ana, nog = managers
        for km in managers:  # the kernel's own copy of its connection file is gone once read
            copy = Path(km.connection_file)
            assert not copy.with_name(copy.stem + ".kernel.json").exists()
        paths = {
            "own_connection_file": ana.connection_file,
            "other_connection_file": nog.connection_file,
            "other_environ": f"/proc/{nog.provisioner.pid}/environ",  # type: ignore[union-attr]
            "home": str(hw.home),
            "master_key": str(hw.world.settings.master_key_file),
        }
        code = f"PATHS = {paths!r}\nHOME = {str(hw.home)!r}\n{KERNEL_PROBE}"
        client = ana.client()
        client.start_channels()
        out: list[str] = []

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        try:
            await client.wait_for_ready(timeout=120)
            await client.execute_interactive(code, output_hook=hook, timeout=180)
        finally:
            client.stop_channels()
        text = "".join(out)
        assert "RESULT" in text, text
        result = json.loads(text.split("RESULT", 1)[1].strip().splitlines()[0])
        listing = sorted(p.name for p in kernel_dir.iterdir())
        return result, listing
    finally:
        for km in managers:
            await km.shutdown_kernel(now=True)


def test_kernels_run_as_the_kernel_user_and_cannot_read_each_other(hw: Hardened) -> None:
    import asyncio

    kern = os_user(KERN)
    assert kern is not None
    # in a thread of its own: browser tests in the same worker may leave an event loop running
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        result, listing = pool.submit(asyncio.run, _kernels_as_the_kernel_user(hw)).result()
    assert (result["uid"], result["gid"], result["groups"]) == (kern.uid, kern.gid, [])
    assert result["cwd"] == result["env_home"] and "scratch-" in result["cwd"]
    assert result["secret_env"] == []  # no master key (nor anything named like one)
    for name in ("own_connection_file", "other_connection_file", "other_environ", "home"):
        assert result[name] == "denied", (name, result)
    assert result["master_key"] == "denied"
    assert result["user"] == "ana" and result["tenants"] == ["acme", "globex"]
    assert len([n for n in listing if n.startswith("scratch-")]) == 2
    kernel_dir = hw.home.parent / "kernels"
    assert kernel_dir.stat().st_mode & 0o777 == 0o711  # (jupyter adds the sticky bit)
    assert not any(p.name.startswith("scratch-") for p in kernel_dir.iterdir())  # cleaned up


LAB_PROBE = """
import json, os
import amzigo_lab
out = {"uid": os.getuid()}
for name, path in PATHS.items():
    try:
        os.listdir(path) if name == "home" else open(path, "rb").read(1)
        out[name] = "READ"
    except PermissionError:
        out[name] = "denied"
wb = amzigo_lab.connect("sales_analysis")
out["user"] = wb.user
out["tenants"] = wb.tenants("orders")
out["rows"] = int(wb.sql("SELECT count(*) AS n FROM orders")["n"][0])
try:
    from amzigo_lab.config import load_settings
    from amzigo_lab.home import open_lake
    open_lake(load_settings(HOME)).scan("order_buyers").to_arrow()
    out["lake"] = "OPENED"
except Exception as exc:
    out["lake"] = type(exc).__name__
print("PROBE " + json.dumps(out))
"""


def test_the_red_team_probe_fails_in_a_real_lab_kernel(hw: Hardened, tmp_path: Path) -> None:
    """The issue's probe, end to end: `amzigo lab` started by root on a hardened home (it runs
    as the service user), an analyst logs in once (password + TOTP), and a cell in their kernel
    (the kernel user) cannot read the home, the key or the CA key, cannot open the lake, and
    reads through connect() exactly the granted tenants with no second login."""
    import pyotp
    import requests

    from amzigo_lab.client.service import operator_token
    from tests.governance.gov_fixtures import PASSWORD
    from tests.serve.helpers import free_port
    from tests.serve.test_lab_server import _run_in_kernel

    home = hw.home
    address = protocol.default_address(home)
    with GatewayClient(address, operator_token(home)) as op:  # the service account's break-glass
        glass = {"break_glass": "test: enrol a lab analyst", "os_user": "root"}
        added = op.action(
            protocol.USERS_ADD,
            {"name": "ria", "roles": ["analyst"], "password": PASSWORD, **glass},
        )
        op.action(protocol.USERS_GRANT, {"name": "ria", "tenant": "acme", **glass})
    secret = pyotp.parse_uri(added["provisioning_uri"]).secret
    svc = os_user(SVC)
    assert svc is not None
    root = Path(tempfile.mkdtemp(prefix="amzigo-labroot-", dir="/tmp"))
    os.chown(root, svc.uid, svc.gid)
    port = free_port()
    log = tmp_path / "lab.log"
    with log.open("wb") as fh:
        amzigo = str(Path(sys.executable).parent / "amzigo")  # the entry point drops root
        lab = subprocess.Popen(
            [amzigo, "lab", "--home", str(home), "--port", str(port), "--root", str(root)],
            stdout=fh, stderr=subprocess.STDOUT, cwd="/", env=_env(),
        )  # fmt: skip

    class _Lab:  # what _run_in_kernel needs
        base = f"https://localhost:{port}"

        class home:
            ca = home / "state" / "serve-tls" / "ca.pem"

    _Lab.port = port  # type: ignore[attr-defined]
    try:
        s = requests.Session()
        s.trust_env = False
        s.verify = str(_Lab.home.ca)
        deadline = time.monotonic() + 90
        while True:
            try:
                if s.get(f"{_Lab.base}/login", timeout=3).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert lab.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        form = {"_xsrf": s.cookies.get("_xsrf"), "username": "ria", "password": PASSWORD,
                "code": pyotp.TOTP(secret).now(), "next": "/"}  # fmt: skip
        r = s.post(f"{_Lab.base}/login", data=form, allow_redirects=False)
        # users.add gives a one-time password: the lab asks for a new one before any session
        assert r.status_code == 200 and 'id="change-form"' in r.text, r.text[-500:]
        ticket = re.search(r'name="ticket" value="([^"]+)"', r.text)
        assert ticket
        new = "Fresh-Orchard-Lantern-31"
        change = {"_xsrf": s.cookies.get("_xsrf"), "ticket": ticket.group(1), "user": "ria",
                  "next": "/", "new_password": new, "new_password2": new}  # fmt: skip
        r = s.post(f"{_Lab.base}/login", data=change, allow_redirects=False)
        assert r.status_code == 302, r.text[-500:]
        headers = {"X-XSRFToken": s.cookies.get("_xsrf"), "Referer": f"{_Lab.base}/lab"}
        created = s.post(
            f"{_Lab.base}/api/sessions",
            json={"path": "probe.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        paths = {
            "home": str(home),
            "master_key": str(home / "keys" / "master.key"),
            "ca_key": str(home / "state" / "serve-tls" / "ca.key"),
            "identity": str(home / "identity.sqlite"),
        }
        code = f"PATHS = {paths!r}\nHOME = {str(home)!r}\n" + LAB_PROBE
        out = _run_in_kernel(_Lab, s, created.json()["kernel"]["id"], code)  # type: ignore[arg-type]
        probe = json.loads(out.split("PROBE ", 1)[1].splitlines()[0])
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.kill()
        shutil.rmtree(root, ignore_errors=True)
    kern = os_user(KERN)
    assert kern is not None and probe["uid"] == kern.uid, probe
    assert {k: probe[k] for k in paths} == dict.fromkeys(paths, "denied"), probe
    assert probe["lake"] != "OPENED", probe
    assert probe["user"] == "ria" and probe["tenants"] == ["acme"] and probe["rows"] == 5, probe
