"""Kernels as an unprivileged OS user (hardened homes; see `amzigo_lab.hardening`).

`KernelUserManager` is the per-kernel manager the lab and dashboard servers use on a hardened
home (`MappingKernelManager.kernel_manager_class`); `OwnedKernelManager.start_kernel` is not
involved. Before each launch it:

- moves the connection file into the server's kernel directory (mode 0711: enterable, not
  listable), owned by the kernel user, 0600, for the kernel to read at start-up; once the kernel
  answers (it has read the file) the file goes back to the server's user, so no kernel (all run
  as the same OS user) can read another's connection file later;
- gives the kernel a private scratch directory (0700, the kernel user's) as cwd, HOME and TMPDIR;
- prefixes the command with `setpriv`: the kernel user's uid and primary group, no
  supplementary groups, no capabilities, no_new_privs; and starts ipykernel through
  `amzigo_lab.serve.kernel_main`, which makes the process non-dumpable (another kernel of the
  same user cannot read its /proc environ or memory, nor ptrace it).

The environment is the one `kernel_env` already stripped of secrets. The server needs
CAP_SETUID, CAP_SETGID (setpriv), CAP_CHOWN (the connection file and scratch directory) and
CAP_KILL (interrupting and stopping kernels of another uid), or root.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from jupyter_server.services.kernels.kernelmanager import ServerKernelManager
from traitlets import Float, Unicode

from amzigo_lab.hardening import OsUser, os_user

#: The module that replaces `ipykernel_launcher` for kernels run as the kernel user.
KERNEL_MAIN = "amzigo_lab.serve.kernel_main"
READY_TIMEOUT = 120.0


def setpriv_prefix(user: OsUser) -> list[str]:
    """The command prefix running the rest as `user`: its uid and primary group only, every
    capability dropped (inheritable and ambient), and no way to regain privileges."""
    setpriv = shutil.which("setpriv") or "setpriv"
    return [
        setpriv,
        f"--reuid={user.uid}",
        f"--regid={user.gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--no-new-privs",
        "--",
    ]


def kernel_command(cmd: list[str], user: OsUser) -> list[str]:
    """`cmd` run as `user`, with `-m ipykernel_launcher` replaced by `-m KERNEL_MAIN`."""
    out = list(cmd)
    for i in range(len(out) - 1):
        if out[i] == "-m" and out[i + 1] == "ipykernel_launcher":
            out[i + 1] = KERNEL_MAIN
            break
    return [*setpriv_prefix(user), *out]


def prepare_kernel_dir(path: Path) -> Path:
    """The server's directory for connection files and kernel scratch dirs: owned by this
    process's user, mode 0711 (kernels can enter it to open their own entries, not list it)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o711)
    st = path.stat()
    if st.st_uid != os.geteuid():
        raise PermissionError(f"{path} belongs to another user; remove it")
    os.chmod(path, 0o711)  # noqa: S103 - enterable by kernels, not listable
    return path


def _own_tree(path: Path, uid: int, gid: int) -> None:
    os.lchown(path, uid, gid)
    for top, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(Path(top) / name, uid, gid)


class KernelUserManager(ServerKernelManager):
    """A kernel manager whose kernels run as `kernel_user` (see the module docstring)."""

    kernel_user = Unicode("", config=True, help="The OS user kernels run as (empty: this one).")
    kernel_dir = Unicode(
        "", config=True, help="The server's directory for connection files and kernel scratch."
    )
    ready_timeout = Float(READY_TIMEOUT, config=True, help="Seconds a kernel may take to start.")

    _revoke_task: asyncio.Task[None] | None = None

    def _user(self) -> OsUser | None:
        if not self.kernel_user:
            return None
        user = os_user(self.kernel_user)
        if user is None:
            raise RuntimeError(f"the kernel user {self.kernel_user!r} does not exist")
        return user

    def scratch_dir(self) -> Path:
        """This kernel's private working directory."""
        return Path(self.kernel_dir) / f"scratch-{self.kernel_id}"

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        user = self._user()
        if user is None:
            return await super()._async_pre_start_kernel(**kw)
        base = prepare_kernel_dir(Path(self.kernel_dir))
        if not self._connection_file_written:  # in our directory, not the runtime dir
            name = Path(self.connection_file).name if self.connection_file else ""
            self.connection_file = str(base / (name or f"kernel-{uuid.uuid4()}.json"))
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        # the kernel gets its own copy (its user's, 0600: ipykernel insists); the server keeps
        # reading its original (it holds no CAP_DAC_OVERRIDE); the copy is deleted once the
        # kernel has read it (`revoke_connection_file`), so other kernels never find it
        connection = Path(self.connection_file)
        copy = connection.with_name(connection.stem + ".kernel.json")
        shutil.copyfile(connection, copy)
        os.chmod(copy, 0o600)
        os.chown(copy, user.uid, user.gid)
        self._kernel_copy = copy
        cmd = [str(copy) if part == str(connection) else part for part in cmd]
        scratch = self.scratch_dir()
        scratch.mkdir(mode=0o700, exist_ok=True)
        os.chown(scratch, user.uid, user.gid)
        env = dict(kw.get("env") or os.environ)
        env.update(HOME=str(scratch), TMPDIR=str(scratch), USER=user.name, LOGNAME=user.name)
        env.pop("JUPYTER_RUNTIME_DIR", None)
        env.pop("XDG_RUNTIME_DIR", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        # the server may not enter the kernel user's 0700 scratch dir: the kernel does (as
        # itself) at start, in kernel_main
        env[KERNEL_CWD_ENV] = str(scratch)
        kw["env"] = env
        kw["cwd"] = "/"
        return kernel_command(cmd, user), kw

    async def _async_post_start_kernel(self, **kw: Any) -> None:
        await super()._async_post_start_kernel(**kw)
        if self.kernel_user:
            self._revoke_task = asyncio.ensure_future(self._revoke_when_ready())

    async def _revoke_when_ready(self) -> None:
        """Give the connection file back to the server's user once the kernel has read it."""
        client: Any = self.client()
        try:
            client.start_channels()
            with contextlib.suppress(Exception):  # dead or slow: revoke anyway
                await client.wait_for_ready(timeout=self.ready_timeout)
        finally:
            with contextlib.suppress(Exception):
                client.stop_channels()
            self.revoke_connection_file()

    def revoke_connection_file(self) -> None:
        """The connection file owned by the server's user again (0600)."""
        copy = getattr(self, "_kernel_copy", None)
        if copy is not None:
            with contextlib.suppress(FileNotFoundError):
                copy.unlink()

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        if self._revoke_task is not None and not self._revoke_task.done():
            self._revoke_task.cancel()
        await super()._async_cleanup_resources(restart=restart)
        if self.kernel_user and not restart and self.kernel_dir and self.kernel_id:
            scratch = self.scratch_dir()
            if scratch.exists():
                try:
                    _own_tree(scratch, os.geteuid(), os.getegid())
                    shutil.rmtree(scratch)
                except OSError as exc:
                    self.log.warning("could not remove %s: %s", scratch, exc)


#: The directory a kernel changes into at start (its private scratch dir).
KERNEL_CWD_ENV = "AMZIGO_KERNEL_CWD"


def default_kernel_dir(home: Path) -> Path:
    """Where a hardened home's servers keep kernel connection files and scratch dirs (outside
    the 0700 home, so the kernel user can enter its own entries)."""
    import tempfile

    from amzigo_lab.client.protocol import home_digest

    return Path(tempfile.gettempdir()) / f"amzigo-kernels-{os.geteuid()}-{home_digest(home)}"
