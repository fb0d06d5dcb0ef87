"""Child process of the report crash test: ingest Sales & Traffic, SIGKILL itself at one step.

    python -m tests.source.crash_child HOME STEP SANDBOX SINCE

STEP: created (a report id just persisted), in_flight (a report IN_QUEUE/IN_PROGRESS), done
(a report DONE, before its download), mid_write (first dataset of a batch written, the other
not, report ids still pending), none. SANDBOX: "embedded" (the sandbox lives and dies with this
process, as with `amzigo ingest`) or a JSON object locating a sandbox run by the test.
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


def die() -> None:
    """SIGKILL: no cleanup, no flush, no atexit."""
    os.kill(os.getpid(), signal.SIGKILL)


def install(step: str) -> None:
    """Patch the step's place to kill the process there."""
    from sp_api.api import Reports

    from amzigo_lab.sandbox.reports import ReportTimings
    from amzigo_lab.source import sync

    # an embedded sandbox's reports take 0.4 s (at its 1000x) so a poll sees them in flight
    ReportTimings.__init__.__defaults__ = (20.0, 400.0, ReportTimings().retention)

    if step == "created":
        update_state = sync.LakeGateway.update_state

        def killing_update(self: Any, tenant: str, stream: str, changes: dict[str, Any]) -> Any:
            out = update_state(self, tenant, stream, changes)
            if stream == "sales_traffic" and changes.get("pending"):
                die()
            return out

        sync.LakeGateway.update_state = killing_update  # type: ignore[method-assign]
    elif step in ("in_flight", "done"):
        get_report = Reports.get_report
        stop = ("IN_QUEUE", "IN_PROGRESS") if step == "in_flight" else ("DONE",)

        def killing_get(self: Any, *args: Any, **kwargs: Any) -> Any:
            res = get_report(self, *args, **kwargs)
            if res.payload.get("processingStatus") in stop:
                die()
            return res

        Reports.get_report = killing_get  # type: ignore[method-assign]
    elif step == "mid_write":
        write = sync.LakeGateway._write

        def killing_write(self: Any, dataset: str, *args: Any) -> int:
            n = write(self, dataset, *args)
            if dataset == "sales_traffic_by_date":
                die()
            return n

        sync.LakeGateway._write = killing_write  # type: ignore[method-assign]


def server_proxy(where: dict[str, Any]) -> Any:
    """What `ingest(server=...)` reads of a SandboxServer running in another process."""
    from amzigo_lab.sandbox import World

    return SimpleNamespace(
        limiter=SimpleNamespace(time_scale=where["time_scale"]),
        lwa_url=where["lwa_url"],
        endpoint=where["endpoint"],
        ca_path=Path(where["ca_path"]),
        world=World(seed=SEED, today=TODAY),
        stats=SimpleNamespace(snapshot=dict),
    )


def main(argv: list[str]) -> int:
    """Run one ingest of sales_traffic (killed at `step` unless it is none)."""
    from amzigo_lab.config import load_settings
    from amzigo_lab.home import open_lake
    from amzigo_lab.source.ingest import ingest

    home, step, sandbox, since = argv
    install(step)
    settings = load_settings(home, env={}, sandbox_seed=SEED, sandbox_today=TODAY)
    server = None if sandbox == "embedded" else server_proxy(json.loads(sandbox))
    with open_lake(settings) as lake:
        report = ingest(
            lake, settings, ["acme-outdoor"], ["sales_traffic"], dt.date.fromisoformat(since),
            server=server, env={},
        )  # fmt: skip
    print(json.dumps(report.to_dict()["results"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
