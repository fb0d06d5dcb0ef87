"""Run a retention purge on a home and SIGKILL this process at a chosen step (crash tests).

    python tests/compliance/crash_purge.py HOME STEP N [BATCH]

STEP is a lake fault-hook step (drop_marked, keys_destroyed, files_deleted, purge_batch_done)
and N its occurrence at which the process kills itself; STEP `never` runs to the end. Prints
`started` once the purge begins (for tests that kill it at a random time instead).
"""

from __future__ import annotations

import os
import signal
import sys

from amzigo_lab.compliance.retention import purge
from amzigo_lab.config import load_settings
from amzigo_lab.home import open_lake


def main() -> None:
    home, step, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    seen = {"count": 0}

    def hook(name: str) -> None:
        if name == step:
            seen["count"] += 1
            if seen["count"] == n:
                os.kill(os.getpid(), signal.SIGKILL)

    with open_lake(load_settings(home, env={}), fault_hook=hook) as lake:
        print("started", flush=True)
        purge(lake, batch_size=batch)


if __name__ == "__main__":
    main()
