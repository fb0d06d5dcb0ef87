"""Hardened mode: the home belongs to a service user; kernels run as an unprivileged kernel user.

`amzigo init --service-user S [--kernel-user K]` (as root) creates both OS users if missing
(system accounts, no login shell), makes S own the home recursively (directories 0700, files
0600), writes the marker `<home>/state/hardened` (JSON: the two user names and the socket
directory) and creates the gateway's socket directory OUTSIDE the home:
`/run/amzigo/<sha256(home)[:20]>/` (or under the temp dir when /run is not writable), owned by
S, group K's group, mode 2750 (setgid: the socket inherits the group; it is made 0660). The
kernel user can connect to the gateway and read nothing else of the home. Re-running is safe
and repairs owners and modes (run it again after a reboot: /run is emptied; the systemd unit in
docs/operations.md does so in ExecStartPre).

Who runs what on a hardened home:
- the gateway runs as S only (`check_gateway_user` refuses root and anybody else);
- `amzigo lab` / `amzigo dashboard` run as S with the capabilities CAP_SETUID, CAP_SETGID,
  CAP_KILL and CAP_CHOWN (systemd `AmbientCapabilities=`), which they use only to start, signal
  and hand connection files to kernels running as K (`amzigo_lab.serve.oskernel`); run as root,
  they re-execute themselves as S with exactly those capabilities;
- every other `amzigo` command run as root re-executes itself as S (so nothing in the home is
  ever created root-owned); run as anybody else it fails with "permission denied".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amzigo_lab.client import protocol
from amzigo_lab.errors import ConfigError

MARKER = "hardened"
#: Capabilities the lab and dashboard servers keep (as the service user) to run kernels as K.
SERVER_CAPS = ("setuid", "setgid", "kill", "chown")
_CAP_BITS = {"chown": 0, "kill": 5, "setgid": 6, "setuid": 7}
SOCKET_DIR_MODE = 0o2750
SOCKET_MODE = 0o660
NOLOGIN = next(
    (s for s in ("/usr/sbin/nologin", "/sbin/nologin") if Path(s).exists()), "/bin/false"
)
DOCS = "docs/operations.md"


class HardeningError(ConfigError):
    """A hardened home is used by the wrong OS user, or cannot be hardened (the message says how
    to fix it)."""


@dataclass(frozen=True)
class OsUser:
    """An OS account and its primary group."""

    name: str
    uid: int
    gid: int
    group: str


@dataclass(frozen=True)
class Marker:
    """What `<home>/state/hardened` records."""

    service_user: str
    kernel_user: str
    socket_dir: str
    hardened_at: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "service_user": self.service_user,
            "kernel_user": self.kernel_user,
            "socket_dir": self.socket_dir,
            "hardened_at": self.hardened_at,
        }


def os_user(name: str) -> OsUser | None:
    """The account `name` (or a numeric uid), or None if there is none."""
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        return None
    try:
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        group = str(entry.pw_gid)
    return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid, group)


def user_name(uid: int) -> str:
    """The account name of `uid` (or the number)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def ensure_user(name: str) -> OsUser:
    """The account `name`, created (`useradd --system`, own group, no home, no login shell) if
    it does not exist."""
    found = os_user(name)
    if found is not None:
        return found
    if name.isdigit() or not name.replace("-", "").replace("_", "").isalnum():
        raise HardeningError(f"{name!r} is not a valid user name")
    command = ["useradd", "--system", "--user-group", "--no-create-home"]
    command += ["--home-dir", "/nonexistent", "--shell", NOLOGIN, name]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    created = os_user(name)
    if created is None:
        raise HardeningError(f"could not create the OS user {name!r}: {done.stderr.strip()}")
    return created


def marker_path(home: Path) -> Path:
    """`<home>/state/hardened`."""
    return home / "state" / MARKER


def read_marker(home: Path) -> Marker | None:
    """The home's marker, None if it is not hardened (PermissionError if it cannot be read)."""
    try:
        data = json.loads(marker_path(home).read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return None
    except ValueError:
        data = {}
    return Marker(
        service_user=str(data.get("service_user", "")),
        kernel_user=str(data.get("kernel_user", "")),
        socket_dir=str(data.get("socket_dir", "")),
        hardened_at=str(data.get("hardened_at", "")),
    )


def read_marker_quiet(home: Path) -> Marker | None:
    """The marker, or None when absent or unreadable."""
    try:
        return read_marker(home)
    except OSError:
        return None


def is_hardened(home: Path) -> bool:
    """True for a hardened home (also when the caller cannot look inside it)."""
    from amzigo_lab.client.transport import hardened

    return hardened(home)


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise HardeningError(
            f"{what} needs root (it creates OS users and changes owners): run it with sudo"
        )


def socket_base() -> Path:
    """Where `init` creates socket directories: /run/amzigo, else under the temp dir."""
    for base in protocol.HARDENED_SOCKET_BASES:
        try:
            base.mkdir(mode=0o755, exist_ok=True)
        except OSError:
            continue
        st = os.lstat(base)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
            return base
        if st.st_uid == 0 and stat.S_ISDIR(st.st_mode):
            os.chmod(base, 0o755)  # noqa: S103 - root-owned, others may only traverse
            return base
    raise HardeningError(
        "no place for the gateway socket: /run/amzigo and "
        f"{protocol.HARDENED_SOCKET_BASES[-1]} are not usable (they must be root-owned dirs)"
    )


def ensure_socket_dir(home: Path, service: OsUser, kernel: OsUser) -> Path:
    """The home's socket directory, created or repaired: owner S, group K's, mode 2750."""
    existing = protocol.hardened_socket_dir(home)
    path = existing or socket_base() / protocol.home_digest(home)
    path.mkdir(mode=0o700, exist_ok=True)
    os.lchown(path, service.uid, kernel.gid)
    os.chmod(path, SOCKET_DIR_MODE)
    return path


def _fix(path: Path, uid: int, gid: int, mode: int | None) -> None:
    st = os.lstat(path)
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.lchown(path, uid, gid)
    if mode is not None and not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


def own_tree(root: Path, uid: int, gid: int, *, modes: bool = True) -> None:
    """Make `uid:gid` own `root` and everything below it (symlinks not followed); with `modes`,
    directories 0700 and files 0600."""
    if not root.exists():
        return
    if not root.is_dir() or root.is_symlink():
        _fix(root, uid, gid, 0o600 if modes else None)
        return
    for top, dirs, files in os.walk(root, followlinks=False):
        _fix(Path(top), uid, gid, 0o700 if modes else None)
        for name in files:
            _fix(Path(top) / name, uid, gid, 0o600 if modes else None)
        for name in dirs:
            if (Path(top) / name).is_symlink():
                _fix(Path(top) / name, uid, gid, None)


def _outside(home: Path, paths: Iterable[Path | None]) -> list[Path]:
    out = []
    for p in paths:
        if p is None:
            continue
        p = p.resolve()
        if p != home and home not in p.parents:
            out.append(p)
    return out


def harden(settings: Any, service_user: str, kernel_user: str | None = None) -> Marker:
    """Harden an initialised home (see the module docstring); idempotent. Root only."""
    _require_root("amzigo init --service-user")
    home = settings.home.resolve()
    if not settings.catalog_path.exists():
        raise HardeningError(f"{home} is not an initialised home")
    kernel_user = kernel_user or f"{service_user}-kernel"
    if kernel_user == service_user:
        raise HardeningError("the kernel user must differ from the service user")
    previous = read_marker(home)
    if previous and previous.service_user and previous.service_user != service_user:
        raise HardeningError(
            f"{home} is already hardened for the service user {previous.service_user!r}; "
            f"re-run with --service-user {previous.service_user}"
        )
    service = ensure_user(service_user)
    kernel = ensure_user(kernel_user)
    if service.uid == 0 or kernel.uid == 0:
        raise HardeningError("the service and kernel users must not be root")
    socket_dir = ensure_socket_dir(home, service, kernel)
    marker = Marker(
        service_user,
        kernel_user,
        str(socket_dir),
        previous.hardened_at if previous and previous.hardened_at else _now(),
    )
    path = marker_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(MARKER + ".tmp")
    tmp.write_text(json.dumps(marker.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    own_tree(home, service.uid, service.gid)
    for extra in _outside(home, [settings.key_file]):
        own_tree(extra, service.uid, service.gid)
    audit = [settings.audit_dir, settings.audit_checkpoint_dir, settings.audit_anchor]
    for extra in _outside(home, audit):
        own_tree(extra, service.uid, service.gid, modes=False)
    return marker


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# -- who may run what ---------------------------------------------------------------------------
def service_of(home: Path) -> OsUser:
    """The service user of a hardened home (its marker, else the home's owner)."""
    try:
        marker = read_marker(home)
    except PermissionError:
        marker = None
    if marker is not None and marker.service_user:
        found = os_user(marker.service_user)
        if found is not None:
            return found
    owner = home.stat().st_uid
    return os_user(str(owner)) or OsUser(str(owner), owner, -1, "?")


def check_gateway_user(home: Path) -> None:
    """Refuse to serve a hardened home as anybody but its service user (root included), or
    without its socket directory."""
    if not is_hardened(home):
        return
    service = service_of(home)
    me = os.geteuid()
    if me != service.uid:
        raise HardeningError(
            f"{home} is a hardened home: its gateway runs as the service user "
            f"{service.name!r} only, not as {user_name(me)!r}. Start it with "
            f"`runuser -u {service.name} -- amzigo gateway --home {home}` or the systemd unit "
            f"(see {DOCS})"
        )
    socket_dir = protocol.hardened_socket_dir(home)
    if socket_dir is None or socket_dir.stat().st_uid != me:
        raise HardeningError(
            f"the gateway socket directory of {home} is missing or not owned by "
            f"{service.name!r} (/run is emptied at boot): as root, run `amzigo init --home "
            f"{home} --service-user {service.name}` again (the systemd unit's ExecStartPre does)"
        )


def effective_caps() -> int:
    """This process's effective capability bits (0 if unknown)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def has_server_caps() -> bool:
    """True if this process may start kernels as another user (root, or the capabilities)."""
    want = sum(1 << _CAP_BITS[c] for c in SERVER_CAPS)
    return os.geteuid() == 0 or effective_caps() & want == want


def check_server_user(home: Path) -> Marker:
    """For `amzigo lab`/`amzigo dashboard` on a hardened home: this process must be the service
    user with SERVER_CAPS; the home's marker."""
    service = service_of(home)
    marker = read_marker(home)
    if os.geteuid() != service.uid or marker is None:
        raise HardeningError(
            f"{home} is a hardened home: its lab and dashboard servers run as the service user "
            f"{service.name!r} (start them as root, they switch to it, or use the systemd unit "
            f"in {DOCS}), not as {user_name(os.geteuid())!r}"
        )
    if not has_server_caps():
        raise HardeningError(
            f"starting kernels as {marker.kernel_user!r} needs the capabilities "
            f"{', '.join('CAP_' + c.upper() for c in SERVER_CAPS)}: set AmbientCapabilities= in "
            f"the unit (see {DOCS}) or start the server as root"
        )
    if os_user(marker.kernel_user) is None:
        raise HardeningError(
            f"the kernel user {marker.kernel_user!r} does not exist: as root, run `amzigo init "
            f"--home {home} --service-user {service.name} --kernel-user {marker.kernel_user}`"
        )
    return marker


def service_home(home: Path) -> Path:
    """The service user's HOME for servers (Jupyter's runtime and data files): inside the home."""
    return home / "state" / "service-home"


def reexec_as_service_user(home: Path, argv: Sequence[str], *, caps: Sequence[str] = ()) -> None:
    """Replace this (root) process by `argv` run as the home's service user, with only `caps`
    (ambient) kept. Does not return."""
    service = service_of(home)
    env_home = service_home(home)
    env_home.mkdir(mode=0o700, exist_ok=True)
    os.chown(env_home, service.uid, service.gid)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise HardeningError("setpriv (util-linux) is needed to switch to the service user")
    command = [setpriv, f"--reuid={service.uid}", f"--regid={service.gid}", "--init-groups"]
    if caps:
        spec = ",".join(f"+{c}" for c in caps)
        command += [f"--inh-caps={spec}", f"--ambient-caps={spec}"]
    env = dict(os.environ, HOME=str(env_home), USER=service.name, LOGNAME=service.name)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with contextlib.suppress(OSError):
        sys.stdout.flush()
        sys.stderr.flush()
    os.execve(setpriv, [*command, "--", *argv], env)  # noqa: S606 - fixed argv, no shell


def home_from_argv(argv: Sequence[str]) -> Path:
    """The home a command line names (`--home X` / `--home=X`), else $AMZIGO_HOME or default."""
    from amzigo_lab.config import resolve_home

    given: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--home" and i + 1 < len(argv):
            given = argv[i + 1]
        elif arg.startswith("--home="):
            given = arg.split("=", 1)[1]
    return resolve_home(given)


# -- amzigo doctor ------------------------------------------------------------------------------
def inspect(settings: Any) -> dict[str, Any]:
    """Whether the home is hardened and, if so, what is missing (for `amzigo doctor`)."""
    home = settings.home.resolve()
    try:
        marker = read_marker(home)
    except PermissionError:
        return {
            "hardened": True,
            "ok": False,
            "problems": [
                f"cannot read {marker_path(home)}: run doctor as root or the service user"
            ],
        }
    if marker is None:
        return {
            "hardened": False,
            "ok": True,
            "problems": [],
            "note": f"single-user home (not hardened): see {DOCS} and `amzigo init --service-user`",
        }
    problems: list[str] = []
    service = os_user(marker.service_user)
    kernel = os_user(marker.kernel_user)
    if service is None:
        problems.append(f"service user {marker.service_user!r} does not exist")
    if kernel is None:
        problems.append(f"kernel user {marker.kernel_user!r} does not exist")
    st = home.stat()
    if service is not None and st.st_uid != service.uid:
        problems.append(f"{home} is owned by {user_name(st.st_uid)!r}, not {service.name!r}")
    if stat.S_IMODE(st.st_mode) != 0o700:
        problems.append(f"{home} has mode {stat.S_IMODE(st.st_mode):o}, not 700")
    if service is not None:
        bad = _loose_entries(home, service.uid)
        if bad:
            shown = ", ".join(str(p) for p in bad[:3])
            problems.append(
                f"{len(bad)} path(s) in the home not owned by {service.name!r} (e.g. {shown}): "
                f"run `amzigo init --service-user {service.name}` again as root"
            )
    socket_dir = protocol.hardened_socket_dir(home)
    if socket_dir is None:
        problems.append(
            "no gateway socket directory (/run is emptied at boot): run `amzigo init "
            f"--service-user {marker.service_user}` again as root"
        )
    else:
        sd = socket_dir.stat()
        if service is not None and sd.st_uid != service.uid:
            problems.append(f"{socket_dir} is owned by {user_name(sd.st_uid)!r}")
        if kernel is not None and sd.st_gid != kernel.gid:
            problems.append(f"{socket_dir} has group {sd.st_gid}, not {kernel.group!r}")
        if stat.S_IMODE(sd.st_mode) != SOCKET_DIR_MODE:
            problems.append(f"{socket_dir} has mode {stat.S_IMODE(sd.st_mode):o}, not 2750")
        sock = socket_dir / protocol.SOCKET_NAME
        bulk = protocol.bulk_socket_path(f"grpc+unix://{sock}")
        for path in (sock, bulk):
            if (
                path is not None
                and path.exists()
                and stat.S_IMODE(path.stat().st_mode) != SOCKET_MODE
            ):
                problems.append(f"{path} has mode {stat.S_IMODE(path.stat().st_mode):o}, not 660")
    return {
        "hardened": True,
        "ok": not problems,
        "problems": problems,
        "service_user": marker.service_user,
        "kernel_user": marker.kernel_user,
        "socket_dir": str(socket_dir) if socket_dir else marker.socket_dir,
    }


def _loose_entries(home: Path, uid: int) -> list[Path]:
    bad = []
    for top, dirs, files in os.walk(home, followlinks=False):
        for name in [*dirs, *files]:
            p = Path(top) / name
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_uid != uid:  # modes inside do not matter: nobody else can enter
                bad.append(p)
    return bad
