"""`python -m amzigo_lab.serve.kernel_main -f CONNECTION_FILE`: ipykernel, non-dumpable.

Used instead of `ipykernel_launcher` for kernels run as the kernel user on a hardened home
(`amzigo_lab.serve.oskernel`). All such kernels share one OS user; marking the process
non-dumpable (prctl PR_SET_DUMPABLE 0) makes its /proc entries root's, so another kernel cannot
read its environment (its gateway token), memory or file descriptors, nor attach a debugger.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

PR_SET_DUMPABLE = 4


def make_undumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0); False if it is not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def main() -> None:
    """Make this process non-dumpable, then run ipykernel exactly as ipykernel_launcher does."""
    if not make_undumpable():
        sys.exit("amzigo kernel: could not make the process non-dumpable; refusing to start")
    scratch = os.environ.pop("AMZIGO_KERNEL_CWD", "")
    if scratch:  # the private scratch dir, entered as the kernel user (the server cannot)
        os.chdir(scratch)
    if sys.path and sys.path[0] == "":
        del sys.path[0]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
