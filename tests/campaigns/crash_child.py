"""Child process of the campaign crash sweep: `campaign run`, SIGKILL itself at one step.

    python -m tests.campaigns.crash_child HOME STEP SANDBOX [NTH]

STEP: intent (the intent row committed, create not yet called) or called (create answered 201,
the outcome not yet recorded); the kill comes at the NTH order (default 1) reaching the step.
SANDBOX: a JSON object locating the sandbox the test runs (it outlives this process, as Amazon
does).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

SEED = 7
TODAY = dt.date(2026, 11, 20)


def server_proxy(where: dict[str, Any]) -> Any:
    """What `campaigns.run(server=...)` reads of a SandboxServer running in another process."""
    from amzigo_lab.sandbox import World

    return SimpleNamespace(
        limiter=SimpleNamespace(time_scale=where["time_scale"]),
        lwa_url=where["lwa_url"],
        endpoint=where["endpoint"],
        ca_path=Path(where["ca_path"]),
        world=World(seed=SEED, today=TODAY),
    )


def main(argv: list[str]) -> int:
    """Run one campaign for acme-outdoor, killed at `step`."""
    from amzigo_lab.campaigns import run
    from amzigo_lab.config import load_settings
    from amzigo_lab.home import open_lake

    home, step, sandbox = argv[:3]
    nth = int(argv[3]) if len(argv) > 3 else 1
    seen = [0]

    def hook(at: str, order_id: str) -> None:
        if at == step:
            seen[0] += 1
        if at == step and seen[0] == nth:
            print(json.dumps({"killed_at": at, "order": order_id}), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush, no atexit

    settings = load_settings(home, env={}, sandbox_seed=SEED, sandbox_today=TODAY)
    with open_lake(settings) as lake:
        run(
            lake, settings, ["acme-outdoor"], server=server_proxy(json.loads(sandbox)),
            env={}, fault_hook=hook,
        )  # fmt: skip
    print(json.dumps({"killed_at": None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
