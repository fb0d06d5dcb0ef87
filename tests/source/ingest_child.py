"""Fork server of the ingest kill sweep: imports amzigo once, then runs `amzigo ARGS` (the real
CLI, e.g. `ingest --tenant acme-outdoor`) in a forked child per request, for the test to SIGKILL.

    python -m tests.source.ingest_child

Reads one request per stdin line, a JSON object {"args": [...], "log": PATH}; forks a child that
runs `amzigo ARGS` with its stdout and stderr in PATH, prints the child's pid, waits for it and
prints how it ended, `exit N` or `signal N`, and its CPU seconds. {"gateway": HOME, "log": PATH}
starts the home's gateway as an on-demand start would (`python -m amzigo_lab.gateway --home HOME
--on-demand`), detached, and prints `started`. An empty line ends the server. Forking after the
imports (no thread, socket or home opened yet) spares each run the seconds of imports, so the
kill times fall inside the ingest itself.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading

PRELOAD = (
    "amzigo_lab.cli",
    "amzigo_lab.source.ingest",
    "amzigo_lab.source.streams",
    "amzigo_lab.sandbox",
    "amzigo_lab.home",
    "sp_api.api",
    "pyarrow.parquet",
    "amzigo_lab.gateway.__main__",
)
RUN_TIMEOUT = 300  # seconds


def redirect(log: str) -> None:
    """stdout and stderr into `log`."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def start_gateway(home: str, log: str) -> None:
    """Fork the home's gateway, detached (a grandchild in its own session, as on demand)."""
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.setsid()
            if os.fork() == 0:
                redirect(log)
                from amzigo_lab.gateway.__main__ import main as gateway

                code = gateway(["--home", home, "--idle-exit", "120", "--on-demand"])
            else:
                code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def run_child(args: list[str], log: str) -> None:
    """In the forked child: `amzigo ARGS`, output to `log`; never returns."""
    code = 70
    signal.alarm(RUN_TIMEOUT)  # a hung run ends (SIGALRM) instead of hanging the test
    try:
        with open(log, "w"):  # emptied: the log holds this run's output only
            pass
        redirect(log)
        from amzigo_lab.cli import main

        try:
            main(args, prog_name="amzigo")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # anything else: a traceback in the log, exit 70
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> int:
    """Serve requests until an empty line."""
    for name in PRELOAD:
        importlib.import_module(name)
    if threading.active_count() != 1:  # forking a process with threads could deadlock
        print(f"error: {threading.active_count()} threads after the imports", flush=True)
        return 1
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        request = json.loads(line)
        if "gateway" in request:
            start_gateway(request["gateway"], request["log"])
            print("started", flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            run_child(request["args"], request["log"])
        print(pid, flush=True)
        _pid, status, usage = os.wait4(pid, 0)
        cpu = usage.ru_utime + usage.ru_stime
        if os.WIFSIGNALED(status):
            print(f"signal {os.WTERMSIG(status)} {cpu:.3f}", flush=True)
        else:
            print(f"exit {os.WEXITSTATUS(status)} {cpu:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
