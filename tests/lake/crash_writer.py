"""A writer process for the crash tests: SIGKILLs itself at a named step of the commit protocol.

Usage: python crash_writer.py HOME STEP [--disk-full]
"""

from __future__ import annotations

import os
import resource
import signal
import sys

from amzigo_lab.config import load_settings
from amzigo_lab.home import open_lake
from tests.conftest import DAY
from tests.lake.helpers import buyers, orders


def main() -> None:
    home, step = sys.argv[1], sys.argv[2]

    def hook(name: str) -> None:
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    lake = open_lake(load_settings(home, env={}), fault_hook=hook)
    # one batch that spans two PII partitions (two files) so a crash can fall between files
    import datetime as dt

    lake.write("order_buyers", "acme", DAY, buyers([DAY - dt.timedelta(days=2), None]), "batch-1")
    if "--disk-full" in sys.argv:
        # from here, no file may grow past the largest lake file + 8 KiB (the orders file is
        # far larger; the catalog is not written before the data file fails)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = max(p.stat().st_size for p in lake.root.rglob("*") if p.is_file())
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit + 8192, limit + 8192))
    lake.write("orders", "acme", DAY, orders(20000), "batch-1")
    print("done")


if __name__ == "__main__":
    main()
